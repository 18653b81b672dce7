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

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::abi::{InodeKey, INODE_KILL, INODE_WATCH};
use crate::fsafe::{walk, Dir, Stat, Walk};
use crate::policy::{Canary, Policy};

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
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
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

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::CanaryKind;
    use crate::policy::FileAction;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bt-canary-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn canary(path: PathBuf) -> Canary {
        Canary {
            kind: CanaryKind::guess(&path),
            path,
            action: FileAction::Kill,
        }
    }

    #[test]
    fn decoys_differ_each_time_and_look_like_their_kind() {
        assert_ne!(
            crate::decoy::make(CanaryKind::Aws),
            crate::decoy::make(CanaryKind::Aws)
        );
        assert!(crate::decoy::make(CanaryKind::Aws).contains("aws_access_key_id = AKIA"));
        assert!(crate::decoy::make(CanaryKind::Ssh)
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(crate::decoy::make(CanaryKind::Npm).contains("_authToken=npm_"));
    }

    #[test]
    fn plants_with_its_directories_and_removes_exactly_that() {
        let d = scratch("plant");
        let path = d.join("home/.aws/credentials");
        let (c, out) = Canaries::plant(&[canary(path.clone())], None);
        assert!(matches!(out[0], Outcome::Planted), "{out:?}");
        assert!(fs::read_to_string(&path).unwrap().contains("AKIA"));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        drop(c);
        assert!(!path.exists());
        assert!(!d.join("home").exists(), "planted directories are removed");
        assert!(d.exists(), "the existing ancestor stays");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn never_touches_an_existing_file_or_a_replaced_one() {
        let d = scratch("exists");
        let real = d.join("credentials");
        fs::write(&real, "real").unwrap();
        let (c, out) = Canaries::plant(&[canary(real.clone())], None);
        assert!(matches!(out[0], Outcome::Exists));
        drop(c);
        assert_eq!(fs::read_to_string(&real).unwrap(), "real");

        let swapped = d.join(".netrc");
        let (c, out) = Canaries::plant(&[canary(swapped.clone())], None);
        assert!(matches!(out[0], Outcome::Planted));
        fs::remove_file(&swapped).unwrap();
        fs::write(&swapped, "someone else's").unwrap();
        drop(c);
        assert_eq!(fs::read_to_string(&swapped).unwrap(), "someone else's");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn leftovers_of_a_dead_process_are_removed_and_nothing_else() {
        let d = scratch("leftover");
        let state = d.join("state");
        let path = d.join("x/.env");
        let (mut c, _) = Canaries::plant(
            &[canary(path.clone())],
            Some(open_state_dir(&state).unwrap()),
        );
        let record = state.join(format!("canaries-{}.json", std::process::id()));
        assert!(record.exists());
        // Pretend a killed run (pid 0 never names a live bee-trace) left it.
        let planted = std::mem::take(&mut c.planted);
        let dead = state.join("canaries-0.json");
        fs::rename(&record, &dead).unwrap();
        fs::write(d.join("other"), "x").unwrap();
        assert_eq!(clean_leftovers(&open_state_dir(&state).unwrap()), 1);
        assert!(!path.exists() && !dead.exists());
        assert!(d.join("other").exists());
        drop(planted);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn retain_removes_only_the_canaries_no_longer_wanted() {
        let d = scratch("retain");
        let a = d.join("a/.npmrc");
        let b = d.join("b/.npmrc");
        let (mut c, _) = Canaries::plant(&[canary(a.clone()), canary(b.clone())], None);
        c.retain(std::slice::from_ref(&a));
        assert!(a.exists());
        assert!(!b.exists() && !d.join("b").exists());
        assert!(c.is_planted(&a) && !c.is_planted(&b));
        drop(c);
        assert!(!a.exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
