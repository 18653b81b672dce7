//! The record of planted canaries kept under /run/bee-trace, and the cleanup
//! by it of what a run that is gone left behind.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{MAX_DECOY, MAX_RECORD, STATE_DIR};
use crate::fsafe::{walk, Dir, Stat};

/// A directory created for a decoy, and which one it was: None in a record
/// written just before it was made (then only a root-owned, mode 0700,
/// empty directory there is taken for it: the job cannot make one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeDir {
    pub path: PathBuf,
    pub dev: Option<u64>,
    pub ino: Option<u64>,
}

/// One planted file and the directories created for it (deepest last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    pub path: PathBuf,
    /// Userspace st_dev and st_ino of the planted file: removal only unlinks
    /// a name that still names this very file. None in a record written
    /// just before the file was made.
    pub dev: Option<u64>,
    pub ino: Option<u64>,
    /// Its change time: an inode number can be reused by a file created
    /// after the decoy was deleted; the ctime tells them apart.
    pub ctime_ns: Option<i128>,
    /// FNV-1a of the decoy's bytes: what it holds now must be what was
    /// written. The decoy is random, so nothing else has these bytes.
    pub fingerprint: u64,
    pub dirs: Vec<MadeDir>,
}

/// Removes the canaries recorded by bee-trace processes that are gone (killed
/// before they could clean up). Returns how many files were removed.
pub fn clean_leftovers(state: &Dir) -> usize {
    let listing = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(state))
    );
    let Ok(rd) = std::fs::read_dir(listing) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name().as_bytes().to_vec();
        let Some(pid) = std::str::from_utf8(&name)
            .ok()
            .and_then(|n| n.strip_prefix("canaries-"))
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let Some(list) = read_record(state, &name) else {
            log::warn!(
                "ignoring an unreadable canary record {}/{}",
                STATE_DIR,
                String::from_utf8_lossy(&name)
            );
            continue;
        };
        for p in list.iter().rev() {
            if remove_recorded(p) {
                removed += 1;
            }
        }
        let _ = state.unlink(&name);
    }
    removed
}

/// A record: a root-owned regular file of bounded size holding a list.
fn read_record(state: &Dir, name: &[u8]) -> Option<Vec<Planted>> {
    let (f, st) = state.open_regular(name, libc::O_RDONLY).ok()?;
    if st.uid != 0 || st.size as u64 > MAX_RECORD {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(MAX_RECORD).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes a decoy recorded by a run that is gone, found again by walking
/// its path as planting did; then its directories, if still the ones made
/// and empty. True when the file was removed.
fn remove_recorded(p: &Planted) -> bool {
    let mut removed = false;
    if let Ok(w) = walk(&p.path) {
        if let [name] = &w.missing[..] {
            let same = w
                .dir
                .open_regular(name, libc::O_RDONLY)
                .is_ok_and(|(f, st)| {
                    let mut bytes = Vec::new();
                    st.nlink == 1
                        && (st.size as u64) <= MAX_DECOY
                        && p.dev.is_none_or(|d| d == st.dev)
                        && p.ino.is_none_or(|i| i == st.ino)
                        && p.ctime_ns.is_none_or(|c| c == st.ctime_ns)
                        && f.take(MAX_DECOY).read_to_end(&mut bytes).is_ok()
                        && (fnv1a(&bytes) == p.fingerprint
                            || p.dev.is_none() && bytes.is_empty() && st.uid == 0)
                });
            if same {
                removed = w.dir.unlink(name).is_ok();
            } else if w.dir.stat_at(name).is_ok_and(|s| s.is_some()) {
                log::warn!(
                    "the canary {} was changed or replaced since it was planted; left in place",
                    p.path.display()
                );
            }
        }
    }
    for d in p.dirs.iter().rev() {
        let gone = walk(&d.path).ok().is_some_and(|w| match &w.missing[..] {
            [name] => {
                matches!(w.dir.stat_at(name), Ok(Some(st)) if st.is_dir() && made_dir(d, &st))
                    && w.dir.rmdir(name).is_ok()
            }
            _ => false,
        });
        if !gone {
            break;
        }
    }
    removed
}

/// Whether `st` is the directory `d` records: the very one, or, when the
/// record was written before it was made, one only root could have made
/// as planting makes it (root's, mode 0700; rmdir then fails unless empty).
fn made_dir(d: &MadeDir, st: &Stat) -> bool {
    match (d.dev, d.ino) {
        (Some(dev), Some(ino)) => st.dev == dev && st.ino == ino,
        _ => st.uid == 0 && st.mode & 0o7777 == 0o700,
    }
}

pub(super) fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
