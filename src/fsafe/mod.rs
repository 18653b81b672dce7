//! Filesystem operations that cannot be turned by whoever owns the
//! directories involved: everything is done relative to a directory fd, no
//! final component is ever followed, files are created new (`O_EXCL`) or
//! opened only after they are checked to be plain regular files, and a
//! check is always followed by use of the very fd that was checked.
//!
//! bee-trace runs as root beside the job it watches, and the places it is
//! asked to write to (`$GITHUB_STEP_SUMMARY`, a home directory, a canary's
//! parent) are often owned by that job.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A directory held open: names are looked up in it, never re-resolved
/// from a path.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// What `lstat` (fstatat with AT_SYMLINK_NOFOLLOW) found under a name.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub size: i64,
    pub ctime_ns: i128,
    pub mtime_ns: i128,
}

impl Stat {
    // st_nlink is 64-bit on x86_64 and 32-bit on aarch64.
    #[allow(clippy::useless_conversion)]
    fn from_raw(s: &libc::stat) -> Stat {
        Stat {
            mode: s.st_mode,
            uid: s.st_uid,
            gid: s.st_gid,
            dev: s.st_dev,
            ino: s.st_ino,
            nlink: u64::from(s.st_nlink),
            size: s.st_size,
            ctime_ns: i128::from(s.st_ctime) * 1_000_000_000 + i128::from(s.st_ctime_nsec),
            mtime_ns: i128::from(s.st_mtime) * 1_000_000_000 + i128::from(s.st_mtime_nsec),
        }
    }
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
    /// Writable by someone other than its owner.
    pub fn others_can_write(&self) -> bool {
        self.mode & 0o022 != 0
    }
    /// A directory whose entries only root can change: root-owned and not
    /// group/world-writable.
    pub fn root_only(&self) -> bool {
        self.uid == 0 && !self.others_can_write()
    }
}

fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// fstat of any fd.
pub fn fstat(fd: &impl AsFd) -> io::Result<Stat> {
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut s: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the call; s is a valid out-pointer.
    check(unsafe { libc::fstat(fd.as_fd().as_raw_fd(), &mut s) })?;
    Ok(Stat::from_raw(&s))
}

/// A single path component: not empty, not `.` or `..`, no `/`.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

impl Dir {
    /// Opens a directory by path, following links in it: for a path the
    /// user named on the command line. What is then done inside it is done
    /// through this fd.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str().as_bytes())?;
        // SAFETY: c is a valid NUL-terminated string.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: fd was just opened and is owned by nobody else.
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The root directory.
    pub fn root() -> io::Result<Dir> {
        Dir::open(Path::new("/"))
    }

    pub fn stat(&self) -> io::Result<Stat> {
        fstat(&self.fd)
    }

    /// lstat of `name` in this directory; None when nothing is there.
    pub fn stat_at(&self, name: &[u8]) -> io::Result<Option<Stat>> {
        let c = cstr(name)?;
        // SAFETY: an all-zero stat is a valid out-parameter.
        let mut s: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the dir fd is open, c is NUL-terminated, s is valid.
        let rc = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut s,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match check(rc) {
            Ok(_) => Ok(Some(Stat::from_raw(&s))),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn openat(&self, name: &[u8], flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        openat(self, name, flags, mode)
    }

    /// The subdirectory `name`, never through a symlink.
    pub fn subdir(&self, name: &[u8]) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?,
        })
    }

    /// Creates `name` as a new file (fails if anything is there, a link
    /// included), opened read-write.
    pub fn create_new(&self, name: &[u8], mode: u32) -> io::Result<File> {
        let fd = self.openat(
            name,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            mode & 0o7777,
        )?;
        Ok(File::from(fd))
    }

    /// Opens an existing regular file (never a link, FIFO or device: the
    /// open does not block and the fd is checked), with `flags` (O_RDONLY,
    /// O_WRONLY or O_RDWR).
    pub fn open_regular(&self, name: &[u8], flags: libc::c_int) -> io::Result<(File, Stat)> {
        let fd = open_unchecked(self, name, flags)?;
        let st = fstat(&fd)?;
        if !st.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let f = File::from(fd);
        // Back to blocking writes now that it is known to be a plain file.
        // SAFETY: fcntl on an open fd with integer arguments.
        unsafe {
            let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
            }
        }
        Ok((f, st))
    }

    /// An O_PATH descriptor of `name` itself (a link is not followed: the
    /// descriptor is then the link's), with what it is.
    pub fn path_fd(&self, name: &[u8]) -> io::Result<(OwnedFd, Stat)> {
        let fd = self.openat(name, libc::O_PATH, 0)?;
        let st = fstat(&fd)?;
        Ok((fd, st))
    }

    pub fn mkdir(&self, name: &[u8], mode: u32) -> io::Result<()> {
        if !valid_name(name) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let c = cstr(name)?;
        // SAFETY: the dir fd is open and c is NUL-terminated.
        check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })?;
        Ok(())
    }

    pub fn unlink(&self, name: &[u8]) -> io::Result<()> {
        self.unlinkat(name, 0)
    }

    /// Removes the empty directory `name` (fails on a non-empty one).
    pub fn rmdir(&self, name: &[u8]) -> io::Result<()> {
        self.unlinkat(name, libc::AT_REMOVEDIR)
    }

    fn unlinkat(&self, name: &[u8], flags: libc::c_int) -> io::Result<()> {
        if !valid_name(name) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let c = cstr(name)?;
        // SAFETY: the dir fd is open and c is NUL-terminated.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), flags) })?;
        Ok(())
    }

    /// Renames `from` to `to` inside this directory. Whatever `to` named
    /// (a link included) is replaced, never written through.
    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        if !valid_name(from) || !valid_name(to) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let (f, t) = (cstr(from)?, cstr(to)?);
        // SAFETY: the dir fd is open and both names are NUL-terminated.
        check(unsafe {
            libc::renameat(
                self.fd.as_raw_fd(),
                f.as_ptr(),
                self.fd.as_raw_fd(),
                t.as_ptr(),
            )
        })?;
        Ok(())
    }

    /// The target of the symlink `name`, at most PATH_MAX bytes.
    pub fn readlink(&self, name: &[u8]) -> io::Result<PathBuf> {
        let c = cstr(name)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: the dir fd is open, c is NUL-terminated, buf has len bytes.
        let n = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        let os: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(buf);
        Ok(PathBuf::from(os))
    }

    /// Writes `bytes` as the new content of `name`: a new file with a random
    /// name is written and renamed over it, so a link or another file put
    /// at `name` is replaced, never written through.
    pub fn replace(&self, name: &[u8], bytes: &[u8], mode: u32) -> io::Result<()> {
        use std::io::Write;
        let tmp = temp_name(name);
        let mut f = self.create_new(&tmp, mode)?;
        let written = f.write_all(bytes).and_then(|()| f.sync_data());
        if let Err(e) = written.and_then(|()| self.rename(&tmp, name)) {
            let _ = self.unlink(&tmp);
            return Err(e);
        }
        Ok(())
    }
}

/// openat(2) of the single component `name` in the directory `dir`, never
/// following a final link, close-on-exec.
fn openat(dir: &impl AsFd, name: &[u8], flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    if !valid_name(name) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let c = cstr(name)?;
    // SAFETY: the dir fd is open and c is NUL-terminated.
    let fd = check(unsafe {
        libc::openat(
            dir.as_fd().as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The one way an existing file that should be regular is opened in a
/// directory fd: `name` itself (never a link), without blocking on a FIFO
/// or taking a terminal as the controlling one, with `flags` (O_RDONLY,
/// O_WRONLY or O_RDWR). What it opened is not checked yet: the caller
/// checks the fd (`Dir::open_regular`, `input::open_in`).
pub fn open_unchecked(dir: &impl AsFd, name: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    openat(dir, name, flags | libc::O_NONBLOCK | libc::O_NOCTTY, 0)
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `.<name>.<random>.tmp`, a name nobody can predict.
pub fn temp_name(name: &[u8]) -> Vec<u8> {
    let mut r = [0u8; 8];
    // SAFETY: r is a valid buffer of its length.
    let got = unsafe { libc::getrandom(r.as_mut_ptr().cast(), r.len(), 0) };
    let rand = if got == r.len() as isize {
        u64::from_ne_bytes(r)
    } else {
        crate::sys::boot_now_ns() ^ u64::from(std::process::id()) << 32
    };
    let mut t = b".".to_vec();
    t.extend_from_slice(&name[..name.len().min(200)]);
    t.extend_from_slice(format!(".{rand:016x}.tmp").as_bytes());
    t
}

/// Splits a path into the directory to open and the final name.
pub fn split(path: &Path) -> io::Result<(PathBuf, Vec<u8>)> {
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => n.as_bytes().to_vec(),
        _ => return Err(io::Error::other("does not end in a file name")),
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Links followed while walking one path (as the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Why a path could not be walked without following a link the job could
/// have made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WalkError(pub String);

/// Where a path leads: the deepest existing directory, held open,
/// its owner, and the names still missing below it (the file's last).
pub struct Walk {
    pub dir: Dir,
    pub owner: (u32, u32),
    pub missing: Vec<Vec<u8>>,
}

/// Walks `path`'s parents from `/` through directory fds. A link is
/// followed only when root owns it and its directory is root-only (one the
/// job cannot have made); any other link, or a parent that is not a
/// directory, is refused.
pub fn walk(path: &Path) -> Result<Walk, WalkError> {
    let mut todo: Vec<Vec<u8>> = components(path)?;
    let mut dir = Dir::root().map_err(|e| WalkError(format!("cannot open /: {e}")))?;
    let mut here = dir.stat().map_err(|e| WalkError(e.to_string()))?;
    let mut links = 0;
    todo.reverse();
    while todo.len() > 1 {
        let name = todo.pop().unwrap_or_default();
        let shown = String::from_utf8_lossy(&name).into_owned();
        match dir
            .stat_at(&name)
            .map_err(|e| WalkError(format!("{shown}: {e}")))?
        {
            None => {
                todo.push(name);
                break;
            }
            Some(st) if st.is_dir() => {
                dir = dir
                    .subdir(&name)
                    .map_err(|e| WalkError(format!("{shown}: {e}")))?;
                here = dir.stat().map_err(|e| WalkError(e.to_string()))?;
            }
            Some(st) if st.is_symlink() => {
                links += 1;
                if links > MAX_LINKS || !(st.uid == 0 && here.root_only()) {
                    return Err(WalkError(format!(
                        "{shown} is a symbolic link owned by uid {} in a directory others \
                         can change; bee-trace does not follow it",
                        st.uid
                    )));
                }
                let target = dir
                    .readlink(&name)
                    .map_err(|e| WalkError(format!("{shown}: {e}")))?;
                let mut more = components_rel(&target)?;
                if target.is_absolute() {
                    dir = Dir::root().map_err(|e| WalkError(e.to_string()))?;
                    here = dir.stat().map_err(|e| WalkError(e.to_string()))?;
                }
                more.reverse();
                todo.extend(more);
            }
            Some(_) => return Err(WalkError(format!("{shown} is not a directory"))),
        }
    }
    todo.reverse();
    Ok(Walk {
        dir,
        owner: (here.uid, here.gid),
        missing: todo,
    })
}

/// The components of an absolute, `..`-free path.
fn components(path: &Path) -> Result<Vec<Vec<u8>>, WalkError> {
    if !path.is_absolute() {
        return Err(WalkError("not an absolute path".into()));
    }
    components_rel(path)
}

fn components_rel(path: &Path) -> Result<Vec<Vec<u8>>, WalkError> {
    let mut v = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => v.push(n.as_bytes().to_vec()),
            Component::RootDir | Component::CurDir => {}
            _ => {
                return Err(WalkError(format!(
                    "{} has a `..` component",
                    path.display()
                )))
            }
        }
    }
    if v.is_empty() {
        return Err(WalkError("no file name".into()));
    }
    Ok(v)
}

pub mod lookout;

#[cfg(test)]
mod tests;
