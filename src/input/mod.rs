//! The files a user names for bee-trace to read (policy, rules, keys,
//! records, signed logs): regular files only, read through the fd that was
//! checked, never past a bound, and, for those that steer a root monitor,
//! trusted the way sshd's StrictModes trusts a key file.
//!
//! Trusted means: the file and every directory above it (to /) are owned by
//! root (or by the real uid running bee-trace, which for the monitor is
//! root) and are writable by neither group nor others, so no other user can
//! change, replace or rename what bee-trace reads. One exception, unlike
//! sshd: a root-owned directory with the sticky bit (/tmp) is accepted,
//! since there nobody else can rename or remove an entry they do not own.
//! A symbolic link is refused where the file is named (O_NOFOLLOW): what
//! is checked is then the file the kernel opened, found through
//! /proc/self/fd, and the directories above it.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Most bytes read from a policy file.
pub const POLICY_MAX: u64 = 4 << 20;
/// Most bytes read from one rule file.
pub const RULES_MAX: u64 = 4 << 20;
/// Most bytes read from a key file.
pub const KEY_MAX: u64 = 4 << 10;
/// Most bytes read from /etc/resolv.conf.
pub const RESOLV_MAX: u64 = 1 << 20;
/// Most bytes read from a record or a signed log.
pub const LOG_MAX: u64 = 1 << 30;

/// Who must be unable to have written a file for bee-trace to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Data to examine (a record, a signed log): any regular file.
    Data,
    /// It steers the monitor: trusted as the module comment says.
    Owner,
    /// A secret: trusted, and not readable by group or others either.
    Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    // The io error is in the message and deliberately not a `source`: an
    // anyhow chain would print it a second time.
    #[error("cannot open the {what} {path}: {error}")]
    Open {
        what: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("the {what} {path} is a symbolic link; name the file itself (`readlink -f {path}`)")]
    Symlink { what: &'static str, path: PathBuf },
    #[error("the {what} {path} is {kind}, not a regular file; name a regular file")]
    NotRegular {
        what: &'static str,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("the {what} {path} is not a directory")]
    NotDir { what: &'static str, path: PathBuf },
    #[error("{dir}, on the way to the {what} {path}, is not a directory")]
    AncestorNotDir {
        what: &'static str,
        dir: PathBuf,
        path: PathBuf,
    },
    #[error("the {what} {path} is larger than {max} bytes, the most bee-trace reads from it")]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        max: u64,
    },
    #[error("cannot read the {what} {path}: {error}")]
    Read {
        what: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("refusing the {what} {path}: {place} is owned by uid {uid}, so that user can change what bee-trace reads; make root own it (`chown root {place}`)")]
    Owner {
        what: &'static str,
        path: PathBuf,
        place: PathBuf,
        uid: u32,
    },
    #[error("refusing the {what} {path}: {place} has mode {mode:04o}, so other users can change what bee-trace reads; `chmod go-w {place}`")]
    Writable {
        what: &'static str,
        path: PathBuf,
        place: PathBuf,
        mode: u32,
    },
    #[error("refusing the {what} {path}: mode {mode:04o} lets other users read it (and forge what it signs); `chmod 600 {path}`")]
    Readable {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
}

/// Reads all of the regular file `path`, at most `max` bytes, checked for
/// `trust`; `what` names it in errors ("policy file").
pub fn read_regular(
    path: &Path,
    max: u64,
    what: &'static str,
    trust: Trust,
) -> Result<Vec<u8>, InputError> {
    let (file, meta) = open_regular(path, what, trust)?;
    read_bounded(file, &meta, path, max, what)
}

/// Opens the regular file `path` for reading, checked for `trust`: the
/// open never blocks (a FIFO) and the checks are made on the open fd.
pub fn open_regular(
    path: &Path,
    what: &'static str,
    trust: Trust,
) -> Result<(File, Metadata), InputError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    let nofollow = if trust == Trust::Data {
        0
    } else {
        libc::O_NOFOLLOW
    };
    opts.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY | nofollow);
    let file = opts.open(path).map_err(|e| open_error(e, path, what))?;
    let meta = checked_file(&file, path, what, trust)?;
    if trust != Trust::Data {
        let real = real_path(&file, path, what)?;
        check_ancestors(&real, path, what)?;
    }
    Ok((file, meta))
}

/// Opens the directory `path`, trusted as the module comment says.
pub fn open_dir(path: &Path, what: &'static str) -> Result<File, InputError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
    let dir = opts.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTDIR) => InputError::NotDir {
            what,
            path: path.into(),
        },
        _ => open_error(e, path, what),
    })?;
    let meta = dir
        .metadata()
        .map_err(|source| read_error(source, path, what))?;
    check_owner(&meta, path, path, what)?;
    let real = real_path(&dir, path, what)?;
    check_ancestors(&real, path, what)?;
    Ok(dir)
}

/// Opens the entry `name` of a directory opened with `open_dir`, by that
/// fd, checked like a file `open_regular` opens (its directories are).
pub fn open_in(
    dir: &File,
    name: &OsStr,
    path: &Path,
    what: &'static str,
    trust: Trust,
) -> Result<(File, Metadata), InputError> {
    let fd = crate::fsafe::open_unchecked(dir, name.as_bytes(), libc::O_RDONLY)
        .map_err(|e| open_error(e, path, what))?;
    let file = File::from(fd);
    let meta = checked_file(&file, path, what, trust)?;
    Ok((file, meta))
}

/// Reads `file` to its end, refusing it past `max` bytes (also when it
/// grows while read).
pub fn read_bounded(
    file: File,
    meta: &Metadata,
    path: &Path,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, InputError> {
    let too_large = || InputError::TooLarge {
        what,
        path: path.into(),
        max,
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|source| read_error(source, path, what))?;
    if buf.len() as u64 > max {
        return Err(too_large());
    }
    Ok(buf)
}

fn open_error(source: io::Error, path: &Path, what: &'static str) -> InputError {
    if source.raw_os_error() == Some(libc::ELOOP) {
        return InputError::Symlink {
            what,
            path: path.into(),
        };
    }
    InputError::Open {
        what,
        path: path.into(),
        error: source,
    }
}

fn read_error(source: io::Error, path: &Path, what: &'static str) -> InputError {
    InputError::Read {
        what,
        path: path.into(),
        error: source,
    }
}

/// fstat of the open file: a regular file, and trusted as `trust` asks.
fn checked_file(
    file: &File,
    path: &Path,
    what: &'static str,
    trust: Trust,
) -> Result<Metadata, InputError> {
    let meta = file
        .metadata()
        .map_err(|source| read_error(source, path, what))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(InputError::NotRegular {
            what,
            path: path.into(),
            kind,
        });
    }
    if trust == Trust::Data {
        return Ok(meta);
    }
    check_owner(&meta, path, path, what)?;
    if trust == Trust::Secret && meta.mode() & 0o044 != 0 {
        return Err(InputError::Readable {
            what,
            path: path.into(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(meta)
}

/// Is `uid` one bee-trace trusts to own its inputs: root or the real uid.
fn trusted_uid(uid: u32) -> bool {
    // SAFETY: getuid has no preconditions.
    uid == 0 || uid == unsafe { libc::getuid() }
}

/// `place` (the file, or a directory above it) is owned by a trusted uid
/// and writable by no one else; a sticky root-owned directory may be.
fn check_owner(
    meta: &Metadata,
    place: &Path,
    path: &Path,
    what: &'static str,
) -> Result<(), InputError> {
    if !trusted_uid(meta.uid()) {
        return Err(InputError::Owner {
            what,
            path: path.into(),
            place: place.into(),
            uid: meta.uid(),
        });
    }
    let sticky_root_dir = meta.is_dir() && meta.uid() == 0 && meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !sticky_root_dir {
        return Err(InputError::Writable {
            what,
            path: path.into(),
            place: place.into(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

/// Where the open file really is: the kernel's name for the fd.
fn real_path(file: &File, path: &Path, what: &'static str) -> Result<PathBuf, InputError> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|source| read_error(source, path, what))
}

/// Checks every directory above `real` up to /, each by lstat: `real` is
/// the kernel's name for an open file, so none of them is a link unless
/// one was swapped meanwhile, which is refused too.
fn check_ancestors(real: &Path, path: &Path, what: &'static str) -> Result<(), InputError> {
    for dir in real.ancestors().skip(1) {
        let meta =
            std::fs::symlink_metadata(dir).map_err(|source| read_error(source, path, what))?;
        if !meta.is_dir() {
            return Err(InputError::AncestorNotDir {
                what,
                dir: dir.into(),
                path: path.into(),
            });
        }
        check_owner(&meta, dir, path, what)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
