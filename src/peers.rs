//! Other bee-trace monitors on the same host. Each running monitor registers
//! itself in the root-only state directory (`instance-<pid>`, holding its
//! start time), and treats the file and memory activity of the registered
//! ones as their housekeeping, not findings: one monitor reading a target's
//! environ to name its secret variables would otherwise be a memory event
//! for the other, which would read it again, and so on without end.
//!
//! Only root can register (the directory is root's alone), each peer is
//! checked to be the very process that registered (its start time), and
//! every new peer is said on stderr, so a registration is never unseen.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use crate::fsafe::Dir;

/// This process's registration; removed on drop.
pub struct Registration {
    dir: Dir,
    name: Vec<u8>,
}

impl Registration {
    pub fn new(dir: Dir) -> std::io::Result<Registration> {
        let pid = std::process::id();
        let name = format!("instance-{pid}").into_bytes();
        let start = start_time(pid).unwrap_or(0);
        dir.replace(&name, format!("{start}\n").as_bytes(), 0o600)?;
        Ok(Registration { dir, name })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = self.dir.unlink(&self.name);
    }
}

/// The start time of `pid` (field 22 of /proc/<pid>/stat, in clock ticks
/// since boot): with the pid, it names one process for good.
fn start_time(pid: u32) -> Option<u64> {
    let mut stat = String::new();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .take(4096)
        .read_to_string(&mut stat)
        .ok()?;
    // The comm (field 2) may hold spaces and parentheses: count from the
    // last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The monitors registered beside this one, re-read when the directory
/// changes.
pub struct Peers {
    dir: Dir,
    seen_mtime: Option<i128>,
    known: HashMap<u32, u64>,
}

impl Peers {
    pub fn new(dir: Dir) -> Peers {
        Peers {
            dir,
            seen_mtime: None,
            known: HashMap::new(),
        }
    }

    /// Is `tgid` another registered bee-trace monitor?
    pub fn is_peer(&mut self, tgid: u32) -> bool {
        if tgid == std::process::id() {
            return false;
        }
        self.refresh();
        match self.known.get(&tgid) {
            // Still the process that registered (not a reused pid).
            Some(&start) => start_time(tgid) == Some(start),
            None => false,
        }
    }

    fn refresh(&mut self) {
        let Ok(st) = self.dir.stat() else {
            return;
        };
        if self.seen_mtime == Some(st.mtime_ns) {
            return;
        }
        self.seen_mtime = Some(st.mtime_ns);
        let listing = format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&self.dir))
        );
        let Ok(rd) = std::fs::read_dir(listing) else {
            return;
        };
        let mut now = HashMap::new();
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = std::str::from_utf8(name.as_bytes())
                .ok()
                .and_then(|n| n.strip_prefix("instance-"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() {
                continue;
            }
            let Some(start) = self.read_start(name.as_bytes()) else {
                continue;
            };
            if start_time(pid) != Some(start) {
                continue;
            }
            if !self.known.contains_key(&pid) {
                eprintln!(
                    "bee-trace: another bee-trace monitor runs (pid {pid}): its own file and memory activity is not reported by this one (docs/security.md)"
                );
            }
            now.insert(pid, start);
        }
        self.known = now;
    }

    /// A registration: a root-owned regular file holding one number.
    fn read_start(&self, name: &[u8]) -> Option<u64> {
        let (f, st) = self.dir.open_regular(name, libc::O_RDONLY).ok()?;
        if st.uid != 0 {
            return None;
        }
        let mut s = String::new();
        f.take(32).read_to_string(&mut s).ok()?;
        s.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_names_this_process() {
        let me = start_time(std::process::id()).unwrap();
        assert!(me > 0);
        assert_eq!(start_time(std::process::id()), Some(me));
        assert_eq!(start_time(0), None);
    }

    #[test]
    fn a_registered_live_process_is_a_peer_and_a_dead_one_is_not() {
        let d = std::env::temp_dir().join(format!("bt-peers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = start_time(pid).unwrap();
        std::fs::write(d.join(format!("instance-{pid}")), format!("{start}\n")).unwrap();
        std::fs::write(d.join("instance-1"), "12345\n").unwrap(); // not pid 1's start
        let mut peers = Peers::new(Dir::open(&d).unwrap());
        assert!(peers.is_peer(pid));
        assert!(!peers.is_peer(1));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!peers.is_peer(pid), "a gone process is no peer");
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("bt-peers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_registration_holds_this_start_time_until_dropped_and_is_not_its_own_peer() {
        let d = scratch("reg");
        let me = std::process::id();
        let file = d.join(format!("instance-{me}"));
        let reg = Registration::new(Dir::open(&d).unwrap()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{}\n", start_time(me).unwrap())
        );
        let mut peers = Peers::new(Dir::open(&d).unwrap());
        assert!(!peers.is_peer(me));
        assert!(peers.known.is_empty(), "its own registration is skipped");
        drop(reg);
        assert!(!file.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_root_owned_registrations_of_the_right_name_count_and_new_ones_are_seen() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED only_root_owned_registrations: needs root to own the files");
            return;
        }
        let d = scratch("owner");
        let mut a = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut b = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let reg = |pid: u32| d.join(format!("instance-{pid}"));
        let start = |pid: u32| format!("{}\n", start_time(pid).unwrap());
        std::fs::write(reg(a.id()), start(a.id())).unwrap();
        std::os::unix::fs::chown(reg(a.id()), Some(65534), None).unwrap();
        std::fs::write(d.join(format!("peer-{}", b.id())), start(b.id())).unwrap();
        std::fs::write(d.join("instance-x"), "1\n").unwrap();
        let mut peers = Peers::new(Dir::open(&d).unwrap());
        assert!(
            !peers.is_peer(a.id()),
            "not root's: anyone could have written it"
        );
        assert!(!peers.is_peer(b.id()), "not an instance- name");
        // A registration made since the last look is read: the directory's
        // mtime changed (set apart here, as two writes can share a clock tick).
        std::fs::write(reg(b.id()), start(b.id())).unwrap();
        std::fs::File::open(&d)
            .unwrap()
            .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(peers.is_peer(b.id()));
        for c in [&mut a, &mut b] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
