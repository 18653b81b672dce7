//! Planting decoys through directory fds, recording each step first, and
//! removing exactly what was planted.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::record::{fnv1a, MadeDir, Planted};
use super::{MAX_DECOY, STATE_DIR};
use crate::fsafe::{walk, Dir, Stat, Walk};
use crate::policy::Canary;

/// What this run holds of a decoy it planted: the directory it is in, the
/// file itself, and each created directory's parent.
#[derive(Debug)]
struct Held {
    parent: Dir,
    name: Vec<u8>,
    file: File,
    dirs: Vec<(Dir, Vec<u8>, u64, u64)>,
}

/// What `plant` did with one canary.
#[derive(Debug)]
pub enum Outcome {
    Planted,
    /// Something already exists at the path: it is left untouched.
    Exists,
    /// The path cannot hold a decoy (a parent is not a directory, or is a
    /// link bee-trace will not follow): skipped, with the reason.
    Skipped(String),
    Failed(String),
}

/// The planted decoys of this run; removed on drop.
#[derive(Debug, Default)]
pub struct Canaries {
    pub planted: Vec<Planted>,
    held: Vec<Held>,
    state: Option<State>,
}

/// The state directory and this run's record in it.
#[derive(Debug)]
struct State {
    dir: Dir,
    name: Vec<u8>,
    path: PathBuf,
}

fn join(base: &Path, name: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(name))
}

impl Canaries {
    /// Plants every canary whose path is free, recording what it plants in
    /// `state_dir` (None: not recorded). Returns the outcome of each, in
    /// order.
    pub fn plant(list: &[Canary], state_dir: Option<Dir>) -> (Canaries, Vec<Outcome>) {
        let mut c = Canaries {
            state: state_dir.map(|dir| {
                let name = format!("canaries-{}.json", std::process::id()).into_bytes();
                State {
                    path: PathBuf::from(STATE_DIR).join(OsStr::from_bytes(&name)),
                    dir,
                    name,
                }
            }),
            planted: Vec::new(),
            held: Vec::new(),
        };
        let outcomes = c.add(list);
        (c, outcomes)
    }

    /// Plants more canaries (a reloaded policy's new ones).
    pub fn add(&mut self, list: &[Canary]) -> Vec<Outcome> {
        list.iter().map(|c| self.plant_one(c)).collect()
    }

    /// Removes the planted canaries whose path is not in `keep`.
    pub fn retain(&mut self, keep: &[PathBuf]) {
        let mut i = 0;
        while i < self.planted.len() {
            if keep.contains(&self.planted[i].path) {
                i += 1;
                continue;
            }
            let p = self.planted.remove(i);
            let h = self.held.remove(i);
            remove_held(&p, h);
        }
        self.save();
    }

    pub fn is_planted(&self, path: &Path) -> bool {
        self.planted.iter().any(|p| p.path == path)
    }

    fn plant_one(&mut self, c: &Canary) -> Outcome {
        let w = match walk(&c.path) {
            Ok(w) => w,
            Err(why) => return Outcome::Skipped(why.0),
        };
        if w.missing.len() == 1 {
            match w.dir.stat_at(&w.missing[0]) {
                Ok(None) => {}
                Ok(Some(_)) => return Outcome::Exists,
                Err(e) => return Outcome::Failed(e.to_string()),
            }
        }
        let content = crate::decoy::make(c.kind);
        // Recorded before anything is made: a kill from here on still
        // leaves a record the next start cleans up by.
        self.planted.push(Planted {
            path: c.path.clone(),
            dev: None,
            ino: None,
            ctime_ns: None,
            fingerprint: fnv1a(content.as_bytes()),
            dirs: Vec::new(),
        });
        self.save();
        match self.make(c, w, content.as_bytes()) {
            Ok(h) => {
                self.held.push(h);
                self.save();
                Outcome::Planted
            }
            Err((why, dirs)) => {
                self.planted.pop();
                remove_dirs(dirs);
                self.save();
                Outcome::Failed(why)
            }
        }
    }

    /// Makes the missing directories and the decoy; the last planted entry
    /// is filled in as it goes. On failure returns what was made.
    #[allow(clippy::type_complexity)]
    fn make(
        &mut self,
        c: &Canary,
        w: Walk,
        content: &[u8],
    ) -> Result<Held, (String, Vec<(Dir, Vec<u8>, u64, u64)>)> {
        let (uid, gid) = w.owner;
        let mut dir = w.dir;
        let mut made: Vec<(Dir, Vec<u8>, u64, u64)> = Vec::new();
        let mut at = c.path.clone();
        for _ in 0..w.missing.len() {
            at.pop();
        }
        let (file_name, dirs) = w.missing.split_last().expect("walk keeps the file name");
        for name in dirs {
            at = join(&at, name);
            // Recorded before it is made, filled in after, handed to its
            // owner last: a kill anywhere in between leaves a record that
            // finds it.
            if let Some(p) = self.planted.last_mut() {
                p.dirs.push(MadeDir {
                    path: at.clone(),
                    dev: None,
                    ino: None,
                });
            }
            self.save();
            let (sub, st) = match mkdir_checked(&dir, name) {
                Ok(s) => s,
                Err(e) => return Err((format!("cannot create {}: {e}", at.display()), made)),
            };
            if let Some(d) = self.planted.last_mut().and_then(|p| p.dirs.last_mut()) {
                (d.dev, d.ino) = (Some(st.dev), Some(st.ino));
            }
            self.save();
            let _ = std::os::unix::fs::fchown(&sub, Some(uid), Some(gid));
            made.push((
                std::mem::replace(&mut dir, sub),
                name.clone(),
                st.dev,
                st.ino,
            ));
        }
        let made_file = (|| -> std::io::Result<(File, Stat)> {
            let mut f = dir.create_new(file_name, 0o600)?;
            f.write_all(content)?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            let st = crate::fsafe::fstat(&f)?;
            Ok((f, st))
        })();
        let (file, st) = match made_file {
            Ok(x) => x,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    let _ = dir.unlink(file_name);
                }
                return Err((format!("cannot create {}: {e}", c.path.display()), made));
            }
        };
        if let Some(p) = self.planted.last_mut() {
            (p.dev, p.ino, p.ctime_ns) = (Some(st.dev), Some(st.ino), Some(st.ctime_ns));
        }
        Ok(Held {
            parent: dir,
            name: file_name.clone(),
            file,
            dirs: made,
        })
    }

    /// Writes the record of planted files (or removes it when there are
    /// none). Best effort: failing to record is logged, not fatal.
    fn save(&mut self) {
        let Some(s) = &self.state else {
            return;
        };
        if self.planted.is_empty() {
            let _ = s.dir.unlink(&s.name);
            return;
        }
        let bytes = serde_json::to_vec(&self.planted).unwrap_or_default();
        if let Err(e) = s.dir.replace(&s.name, &bytes, 0o600) {
            log::warn!(
                "cannot record the planted canaries in {}: {e}; if bee-trace is killed they stay",
                s.path.display()
            );
        }
    }
}

impl Drop for Canaries {
    fn drop(&mut self) {
        while let (Some(p), Some(h)) = (self.planted.pop(), self.held.pop()) {
            remove_held(&p, h);
        }
        self.planted.clear();
        self.save();
    }
}

/// mkdir, then open what is now at the name and check it is a directory
/// root made and nobody changed: root-owned, mode 0700, empty.
fn mkdir_checked(dir: &Dir, name: &[u8]) -> std::io::Result<(Dir, Stat)> {
    dir.mkdir(name, 0o700)?;
    let sub = dir.subdir(name)?;
    let st = sub.stat()?;
    if st.uid != 0 || st.mode & 0o7777 != 0o700 || st.nlink != 2 {
        return Err(std::io::Error::other(
            "the new directory was replaced before it could be used",
        ));
    }
    Ok((sub, st))
}

/// Removes created directories, deepest first, each only if it is still
/// the one created and empty.
fn remove_dirs(mut dirs: Vec<(Dir, Vec<u8>, u64, u64)>) {
    while let Some((parent, name, dev, ino)) = dirs.pop() {
        let same = matches!(parent.stat_at(&name), Ok(Some(st)) if st.is_dir() && st.dev == dev && st.ino == ino);
        // rmdir fails (and the directory stays) when someone put something in it.
        if !same || parent.rmdir(&name).is_err() {
            break;
        }
    }
}

/// Removes a decoy this run still holds: its name is unlinked in the very
/// directory it was made in, if it still names the file made, unchanged.
fn remove_held(p: &Planted, mut h: Held) {
    let ours = crate::fsafe::fstat(&h.file).ok();
    let now = h.parent.stat_at(&h.name).ok().flatten();
    let same = matches!((ours, now), (Some(a), Some(b)) if a.dev == b.dev && a.ino == b.ino && b.is_file());
    let mut bytes = Vec::new();
    let unchanged = same
        && std::io::Seek::rewind(&mut h.file).is_ok()
        && (&h.file).take(MAX_DECOY).read_to_end(&mut bytes).is_ok()
        && fnv1a(&bytes) == p.fingerprint;
    if unchanged {
        if let Err(e) = h.parent.unlink(&h.name) {
            log::warn!("cannot remove the canary {}: {e}", p.path.display());
        }
    } else if now.is_some() {
        log::warn!(
            "the canary {} was changed or replaced since it was planted; left in place",
            p.path.display()
        );
    }
    remove_dirs(h.dirs);
}
