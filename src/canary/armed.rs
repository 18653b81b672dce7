//! The inodes armed in the kernel, each held open with O_PATH while armed.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::abi::{InodeKey, INODE_KILL, INODE_WATCH};
use crate::fsafe::walk;
use crate::policy::Policy;

/// The inodes armed in the kernel, each held open so it stays the same file.
#[derive(Debug, Default)]
pub struct Armed {
    pins: HashMap<InodeKey, OwnedFd>,
}

impl Armed {
    /// Flags for every seeded file under `policy`, pinning the tripwires.
    /// Returns (what to put in the inode filter, what to disarm: armed
    /// before, not now). Call `release` with the second after the kernel
    /// has disarmed them.
    pub fn arm(
        &mut self,
        policy: &Policy,
        seeds: &[(InodeKey, PathBuf)],
    ) -> (Vec<(InodeKey, u8)>, Vec<InodeKey>) {
        let mut now: HashMap<InodeKey, OwnedFd> = HashMap::new();
        let mut flags = Vec::with_capacity(seeds.len());
        for (k, path) in seeds {
            let mut f = INODE_WATCH;
            if policy.is_tripwire(path) {
                let pin = self.pins.remove(k).or_else(|| pin(path, k));
                match pin {
                    Some(fd) => {
                        now.insert(*k, fd);
                        f |= INODE_KILL;
                    }
                    // A glob found this name: anyone may have chosen it.
                    None => log::warn!(
                        "{} changed while being armed; it is watched, not armed",
                        crate::escape::terminal(&crate::escape::decode_path(path))
                    ),
                }
            }
            flags.push((*k, f));
        }
        let disarm: Vec<InodeKey> = self.pins.keys().copied().collect();
        // The old pins stay held until `release`, after the kernel update.
        let old = std::mem::replace(&mut self.pins, now);
        self.pins.extend(old);
        (flags, disarm)
    }

    /// Closes the pins of disarmed inodes.
    pub fn release(&mut self, disarmed: &[InodeKey]) {
        for k in disarmed {
            self.pins.remove(k);
        }
    }

    pub fn count(&self) -> usize {
        self.pins.len()
    }
}

/// Opens `path` with O_PATH and checks it is still the inode `key` names,
/// a regular file reached without following a link the job could have
/// made (`walk`): a link in a directory the job owns would arm whatever
/// file of the host's it points to, and kill every reader of that file.
fn pin(path: &Path, key: &InodeKey) -> Option<OwnedFd> {
    let w = walk(path).ok()?;
    let [name] = &w.missing[..] else {
        return None;
    };
    let (fd, st) = w.dir.path_fd(name).ok()?;
    (st.is_file() && crate::kernel::kernel_dev(st.dev) == key.dev && st.ino == key.ino)
        .then_some(fd)
}
