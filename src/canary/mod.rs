//! Canaries: decoy credential files planted where none exist, watched as
//! tripwires, and removed on exit - exactly what was planted, nothing else.
//!
//! The directories on the way are often owned by the job bee-trace watches,
//! so every step is done through directory fds (`fsafe`): no path is
//! resolved twice, a link is followed only where only root could have made
//! it, a directory bee-trace creates is checked to be the one it created
//! before it is handed to its owner, and removal unlinks a name only in the
//! very directory the decoy was made in, after checking the file it names.
//!
//! What is about to be planted is recorded under /run/bee-trace (a root-only
//! directory, refused otherwise) before each step, so a bee-trace killed
//! mid-way leaves nothing the next start cannot clean up.
//!
//! Every armed file (a canary, or a file a kill rule names) is also held
//! open with O_PATH while it is armed: the kernel arms an inode number, and a
//! held inode is never freed, so its number cannot pass to an innocent new
//! file whose reader would then be killed.

mod armed;
mod plant;
mod record;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::fsafe::Dir;

pub use armed::Armed;
pub use plant::{Canaries, Outcome};
pub use record::{clean_leftovers, MadeDir, Planted};

/// Where the records of planted canaries live.
pub const STATE_DIR: &str = "/run/bee-trace";

/// A decoy is small; anything bigger at its name is not ours.
const MAX_DECOY: u64 = 64 * 1024;
/// A state record is a list of paths; bound what is read back.
const MAX_RECORD: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(
        "{path} is {what}: bee-trace keeps its state only in a directory that root alone \
         owns and can use (mode 0700); remove it and start again (it is recreated)"
    )]
    UnsafeStateDir { path: PathBuf, what: String },
}

/// Opens (creating it 0700) the state directory and checks that root alone
/// owns and can use it.
pub fn open_state_dir(path: &Path) -> Result<Dir, CanaryError> {
    let io = |e| CanaryError::Io(path.to_path_buf(), e);
    let (parent, name) = crate::fsafe::split(path).map_err(io)?;
    let up = Dir::open(&parent).map_err(|e| CanaryError::Io(parent.clone(), e))?;
    if up.stat_at(&name).map_err(io)?.is_none() {
        match up.mkdir(&name, 0o700) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(e)),
            _ => {}
        }
    }
    let unsafe_dir = |what: String| CanaryError::UnsafeStateDir {
        path: path.to_path_buf(),
        what,
    };
    let dir = match up.subdir(&name) {
        Ok(d) => d,
        // O_NOFOLLOW with O_DIRECTORY refuses a link to a directory with
        // ENOTDIR, not ELOOP: what is there says which it was.
        Err(e)
            if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
                && matches!(up.stat_at(&name), Ok(Some(st)) if st.is_symlink()) =>
        {
            return Err(unsafe_dir("a symbolic link".into()))
        }
        Err(e) => return Err(io(e)),
    };
    let st = dir.stat().map_err(io)?;
    if st.uid != 0 || st.mode & 0o077 != 0 {
        return Err(unsafe_dir(format!(
            "owned by uid {} with mode {:04o}",
            st.uid,
            st.mode & 0o7777
        )));
    }
    Ok(dir)
}
