//! Expected programs (ssh reading a key is routine): whether the executable
//! a process runs is a system program of an expected name, judged by the
//! inode the kernel ran and who may change it, never by comm or a basename.
//!
//! A program is expected when all of these hold:
//! - its path lies in a system directory (SYSTEM_DIRS, or below one of
//!   SYSTEM_TREES for helpers such as /usr/lib/openssh/ssh-keysign) and its
//!   basename is in the rule's list;
//! - the inode the kernel executed is a regular file owned by root and
//!   writable by neither group nor others;
//! - that path names that same inode here (dev, ino, owner and mode), so a
//!   copy elsewhere, a container's own /usr/bin or a truncated path does
//!   not pass for it;
//! - every directory above it is owned by root and writable by nobody else.
//!
//! An interpreter is the program: a script node runs is node (npm and npx
//! are node scripts), so /usr/bin/node reading .npmrc is expected, and a
//! node anywhere users can write to (a copy in /tmp, a tool cache the CI
//! user owns) is not. Verdicts are cached by inode and path; a program
//! root replaces is a new inode.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Directories whose programs may be expected.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// Trees whose programs may be expected, at any depth.
pub const SYSTEM_TREES: &[&str] = &[
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/lib32/",
    "/usr/libexec/",
    "/lib/",
    "/lib64/",
];

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const CACHE_MAX: usize = 4096;

/// The inode a process executes: dev in the kernel's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExeId {
    pub dev: u64,
    pub ino: u64,
    pub uid: u32,
    pub mode: u32,
}

impl ExeId {
    /// The inode a live process runs: /proc/<pid>/exe leads to the inode
    /// executed, even one since replaced or removed.
    pub fn of_pid(pid: u32) -> Option<ExeId> {
        use crate::fsafe::lookout;
        // A stat of the executable itself: its file system answers it.
        let what = format!("looking at /proc/{pid}/exe");
        lookout::shared()
            .run(&what, lookout::WHILE_RUNNING, move || {
                std::fs::metadata(format!("/proc/{pid}/exe")).ok()
            })
            .ok()
            .flatten()
            .map(|m| ExeId::of(&m))
    }

    fn of(m: &Metadata) -> ExeId {
        ExeId {
            dev: crate::kernel::kernel_dev(m.dev()),
            ino: m.ino(),
            uid: m.uid(),
            mode: m.mode(),
        }
    }
}

/// Verdicts on executables, cached.
#[derive(Default)]
pub struct Programs {
    verdicts: HashMap<(ExeId, String), bool>,
}

impl Programs {
    /// Is `exe`, the inode `id` as the kernel ran it, one of `expected`?
    /// Without an inode (the exec was not seen and the process is gone) it
    /// is not.
    pub fn is_expected(&mut self, exe: &str, id: Option<ExeId>, expected: &[String]) -> bool {
        let Some(id) = id else {
            return false;
        };
        let Some(name) = system_program_name(exe) else {
            return false;
        };
        if !expected.iter().any(|x| x == name) {
            return false;
        }
        let key = (id, exe.to_string());
        if let Some(v) = self.verdicts.get(&key) {
            return *v;
        }
        // The file and its directories are looked at; a file system that
        // does not answer makes the program not an expected one.
        let at = exe.to_string();
        let what = format!(
            "looking at {} (not taken as an expected program)",
            crate::escape::terminal(exe)
        );
        let v = crate::fsafe::lookout::shared()
            .run(&what, crate::fsafe::lookout::WHILE_RUNNING, move || {
                trusted_file(&at, id)
            })
            .unwrap_or(false);
        if self.verdicts.len() >= CACHE_MAX {
            self.verdicts.clear();
        }
        self.verdicts.insert(key, v);
        v
    }
}

/// The basename of `exe` when it lies in a system directory.
fn system_program_name(exe: &str) -> Option<&str> {
    let (dir, name) = exe.rsplit_once('/')?;
    if name.is_empty() || exe.split('/').any(|c| c == "." || c == "..") {
        return None;
    }
    let in_dir = SYSTEM_DIRS.contains(&dir);
    let in_tree = SYSTEM_TREES.iter().any(|t| exe.starts_with(t));
    (in_dir || in_tree).then_some(name)
}

/// Root's file, writable by nobody else, that `exe` names here, in
/// directories only root can change.
fn trusted_file(exe: &str, id: ExeId) -> bool {
    if id.uid != 0 || id.mode & S_IFMT != S_IFREG || id.mode & 0o022 != 0 {
        return false;
    }
    match std::fs::symlink_metadata(exe) {
        Ok(m) if m.file_type().is_file() && ExeId::of(&m) == id => {}
        _ => return false,
    }
    Path::new(exe)
        .ancestors()
        .skip(1)
        .all(|d| match std::fs::symlink_metadata(d) {
            Ok(m) => m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0,
            Err(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(path: &str) -> ExeId {
        ExeId::of(&std::fs::metadata(path).unwrap())
    }

    fn cat() -> String {
        ["/usr/bin/cat", "/bin/cat"]
            .into_iter()
            .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
            .expect("cat is installed")
            .to_string()
    }

    #[test]
    fn a_system_program_is_expected_by_inode_and_owner() {
        let cat = cat();
        let expected = vec!["cat".to_string()];
        let mut p = Programs::default();
        assert!(p.is_expected(&cat, Some(id_of(&cat)), &expected));
        // Nothing without the inode, another name, or another inode.
        assert!(!p.is_expected(&cat, None, &expected));
        assert!(!p.is_expected(&cat, Some(id_of(&cat)), &["ssh".to_string()]));
        let other = ExeId {
            ino: id_of(&cat).ino + 1,
            ..id_of(&cat)
        };
        assert!(!p.is_expected(&cat, Some(other), &expected));
        // The kernel ran it group-writable, or owned by someone else.
        let loose = ExeId {
            mode: id_of(&cat).mode | 0o020,
            ..id_of(&cat)
        };
        assert!(!p.is_expected(&cat, Some(loose), &expected));
        let theirs = ExeId {
            uid: 65534,
            ..id_of(&cat)
        };
        assert!(!p.is_expected(&cat, Some(theirs), &expected));
    }

    #[test]
    fn a_copy_outside_the_system_directories_is_not() {
        let dir = std::env::temp_dir().join(format!("bee-trace-programs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("ssh");
        std::fs::copy(cat(), &copy).unwrap();
        let copy = copy.to_str().unwrap().to_string();
        let mut p = Programs::default();
        assert!(!p.is_expected(&copy, Some(id_of(&copy)), &["ssh".to_string()]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn system_paths_are_exact() {
        assert_eq!(system_program_name("/usr/bin/ssh"), Some("ssh"));
        assert_eq!(
            system_program_name("/usr/lib/openssh/ssh-keysign"),
            Some("ssh-keysign")
        );
        for p in [
            "ssh",
            "/tmp/ssh",
            "/usr/bin/",
            "/usr/bin/../../tmp/ssh",
            "/usr/bin/x/ssh",
            "/home/u/usr/bin/ssh",
            "/usr/binx/ssh",
            "/usr/lib",
        ] {
            assert_eq!(system_program_name(p), None, "{p}");
        }
    }
}
