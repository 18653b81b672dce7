//! Canaries: decoy credential files planted where none exist, watched as
//! tripwires, and removed on exit - exactly what was planted, nothing else.
//!
//! A record of what was planted is kept under /run/bee-trace, so decoys left
//! by a bee-trace that was killed are cleaned up by the next start.
//!
//! Every armed file (a canary, or a file a kill rule names) is also held
//! open with O_PATH while it is armed: the kernel arms an inode number, and a
//! held inode is never freed, so its number cannot pass to an innocent new
//! file whose reader would then be killed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use crate::events::{InodeKey, INODE_KILL, INODE_WATCH};
use crate::policy::{Canary, CanaryKind, Policy};

/// Where the records of planted canaries live.
pub const STATE_DIR: &str = "/run/bee-trace";

/// One planted file and the directories created for it (deepest last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    pub path: PathBuf,
    /// Userspace st_dev and st_ino of the planted file: removal only unlinks
    /// a path that still names this very file.
    pub dev: u64,
    pub ino: u64,
    /// Its change time: an inode number can be reused by a file created
    /// after the decoy was deleted; the ctime tells them apart.
    pub ctime_ns: i128,
    /// FNV-1a of the decoy's bytes: what it holds now must be what was
    /// written (the ctime clock is coarse).
    pub fingerprint: u64,
    pub dirs: Vec<PathBuf>,
}

/// What `plant` did with one canary.
#[derive(Debug)]
pub enum Outcome {
    Planted(Planted),
    /// Something already exists at the path: it is left untouched.
    Exists,
    Failed(String),
}

/// The planted decoys of this run; removed on drop.
#[derive(Debug, Default)]
pub struct Canaries {
    pub planted: Vec<Planted>,
    /// Where to record what is planted (None: not recorded).
    state_dir: Option<PathBuf>,
    state: Option<PathBuf>,
}

impl Canaries {
    /// Plants every canary whose path is free. Returns the outcome of each,
    /// in order.
    pub fn plant(list: &[Canary], state_dir: Option<&Path>) -> (Canaries, Vec<Outcome>) {
        let mut c = Canaries {
            planted: Vec::new(),
            state_dir: state_dir.map(Path::to_path_buf),
            state: None,
        };
        let outcomes = c.add(list);
        (c, outcomes)
    }

    /// Plants more canaries (a reloaded policy's new ones).
    pub fn add(&mut self, list: &[Canary]) -> Vec<Outcome> {
        let outcomes: Vec<Outcome> = list.iter().map(plant_one).collect();
        for o in &outcomes {
            if let Outcome::Planted(p) = o {
                self.planted.push(p.clone());
            }
        }
        self.save();
        outcomes
    }

    /// Removes the planted canaries whose path is not in `keep`.
    pub fn retain(&mut self, keep: &[PathBuf]) {
        let (stay, go): (Vec<Planted>, Vec<Planted>) = std::mem::take(&mut self.planted)
            .into_iter()
            .partition(|p| keep.contains(&p.path));
        self.planted = stay;
        for p in &go {
            remove_planted(p);
        }
        self.save();
    }

    pub fn is_planted(&self, path: &Path) -> bool {
        self.planted.iter().any(|p| p.path == path)
    }

    /// Writes the record of planted files (or removes it when there are
    /// none). Best effort: failing to record is logged, not fatal.
    fn save(&mut self) {
        if self.planted.is_empty() {
            if let Some(s) = self.state.take() {
                let _ = fs::remove_file(s);
            }
            return;
        }
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let path = self
            .state
            .get_or_insert_with(|| dir.join(format!("canaries-{}.json", std::process::id())));
        let write = || -> std::io::Result<()> {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            let tmp = path.with_extension("tmp");
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec(&self.planted).unwrap_or_default())?;
            fs::rename(&tmp, &*path)
        };
        if let Err(e) = write() {
            log::warn!(
                "cannot record the planted canaries in {}: {e}; if bee-trace is killed they stay",
                path.display()
            );
        }
    }
}

impl Drop for Canaries {
    fn drop(&mut self) {
        for p in std::mem::take(&mut self.planted).iter().rev() {
            remove_planted(p);
        }
        self.save();
    }
}

/// Removes the canaries recorded by bee-trace processes that are gone (killed
/// before they could clean up). Returns how many files were removed.
pub fn clean_leftovers(state_dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(state_dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("canaries-")
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let list: Vec<Planted> = match fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(l) => l,
            None => {
                log::warn!(
                    "ignoring an unreadable canary record {}",
                    e.path().display()
                );
                continue;
            }
        };
        for p in list.iter().rev() {
            if remove_planted(p) {
                removed += 1;
            }
        }
        let _ = fs::remove_file(e.path());
    }
    removed
}

/// Unlinks a planted file if its path still names it, then the directories
/// planted for it if they are empty. True when the file was removed.
fn remove_planted(p: &Planted) -> bool {
    let removed = match fs::symlink_metadata(&p.path) {
        Ok(m)
            if m.dev() == p.dev
                && m.ino() == p.ino
                && ctime_ns(&m) == p.ctime_ns
                && fs::read(&p.path).is_ok_and(|b| fnv1a(&b) == p.fingerprint) =>
        {
            match fs::remove_file(&p.path) {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("cannot remove the canary {}: {e}", p.path.display());
                    false
                }
            }
        }
        Ok(_) => {
            log::warn!(
                "the canary {} was changed or replaced since it was planted; left in place",
                p.path.display()
            );
            false
        }
        Err(_) => false,
    };
    for d in p.dirs.iter().rev() {
        // Fails (and stays) when someone put something in it.
        if fs::remove_dir(d).is_err() {
            break;
        }
    }
    removed
}

fn plant_one(c: &Canary) -> Outcome {
    if fs::symlink_metadata(&c.path).is_ok() {
        return Outcome::Exists;
    }
    match try_plant(c) {
        Ok(p) => Outcome::Planted(p),
        Err(e) => Outcome::Failed(e),
    }
}

fn try_plant(c: &Canary) -> Result<Planted, String> {
    // The nearest existing ancestor gives the owner, so a decoy in a home
    // directory looks like its neighbours and its user can open it.
    let mut missing = Vec::new();
    let mut anc = c.path.parent();
    let owner = loop {
        let Some(d) = anc else {
            return Err("no existing parent directory".into());
        };
        match fs::symlink_metadata(d) {
            Ok(m) if m.is_dir() => break (m.uid(), m.gid()),
            Ok(_) => return Err(format!("{} is not a directory", d.display())),
            Err(_) => {
                missing.push(d.to_path_buf());
                anc = d.parent();
            }
        }
    };
    missing.reverse();
    let mut dirs = Vec::new();
    let undo = |dirs: &[PathBuf]| {
        for d in dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    };
    for d in &missing {
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(d) {
            undo(&dirs);
            return Err(format!("cannot create {}: {e}", d.display()));
        }
        dirs.push(d.clone());
        let _ = std::os::unix::fs::chown(d, Some(owner.0), Some(owner.1));
    }
    let content = decoy(c.kind);
    let made = (|| -> std::io::Result<File> {
        // create_new: O_EXCL, and it never follows a symlink planted meanwhile.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&c.path)?;
        f.write_all(content.as_bytes())?;
        std::os::unix::fs::fchown(&f, Some(owner.0), Some(owner.1))?;
        Ok(f)
    })();
    let f = match made {
        Ok(f) => f,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                let _ = fs::remove_file(&c.path);
            }
            undo(&dirs);
            return Err(format!("cannot create {}: {e}", c.path.display()));
        }
    };
    let m = f.metadata().map_err(|e| e.to_string())?;
    Ok(Planted {
        path: c.path.clone(),
        dev: m.dev(),
        ino: m.ino(),
        ctime_ns: ctime_ns(&m),
        fingerprint: fnv1a(content.as_bytes()),
        dirs,
    })
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn ctime_ns(m: &fs::Metadata) -> i128 {
    i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())
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

/// Opens `path` with O_PATH and checks it is still the inode `key` names.
fn pin(path: &Path, key: &InodeKey) -> Option<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    (crate::sensors::kernel_dev(m.dev()) == key.dev && m.ino() == key.ino).then(|| f.into())
}

/// Random characters from `alphabet`.
fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: the pointer and length describe the unfilled tail of buf.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if r <= 0 {
            // getrandom cannot fail for small requests once the pool is up;
            // fall back to the clock rather than plant a predictable decoy.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            for (i, b) in buf[filled..].iter_mut().enumerate() {
                *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(131);
            }
            break;
        }
        filled += r as usize;
    }
    buf.iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect()
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A plausible decoy of the given kind. Random each time, so a decoy value
/// seen elsewhere can only have come from this file.
pub fn decoy(kind: CanaryKind) -> String {
    match kind {
        CanaryKind::Aws => format!(
            "[default]\naws_access_key_id = AKIA{}\naws_secret_access_key = {}\nregion = us-east-1\n",
            random_from(UPPER_DIGITS, 16),
            random_from(B64, 40)
        ),
        CanaryKind::Ssh => {
            let body = random_from(B64, 64 * 6);
            let lines: Vec<&str> = (0..6).map(|i| &body[i * 64..(i + 1) * 64]).collect();
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                lines.join("\n")
            )
        }
        CanaryKind::Npm => format!(
            "//registry.npmjs.org/:_authToken=npm_{}\n",
            random_from(ALNUM, 36)
        ),
        CanaryKind::Netrc => format!(
            "machine github.com\n  login ci-deploy\n  password ghp_{}\n",
            random_from(ALNUM, 36)
        ),
        CanaryKind::Docker => format!(
            "{{\n  \"auths\": {{\n    \"https://index.docker.io/v1/\": {{\n      \"auth\": \"{}=\"\n    }}\n  }}\n}}\n",
            random_from(B64, 31)
        ),
        CanaryKind::Env => format!(
            "DATABASE_URL=postgres://app:{}@db.internal:5432/app\nSTRIPE_SECRET_KEY=sk_live_{}\n",
            random_from(ALNUM, 20),
            random_from(ALNUM, 24)
        ),
        CanaryKind::Generic => format!("token={}\n", random_from(ALNUM, 40)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::FileAction;

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
        assert_ne!(decoy(CanaryKind::Aws), decoy(CanaryKind::Aws));
        assert!(decoy(CanaryKind::Aws).contains("aws_access_key_id = AKIA"));
        assert!(decoy(CanaryKind::Ssh).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(decoy(CanaryKind::Npm).contains("_authToken=npm_"));
    }

    #[test]
    fn plants_with_its_directories_and_removes_exactly_that() {
        let d = scratch("plant");
        let path = d.join("home/.aws/credentials");
        let (c, out) = Canaries::plant(&[canary(path.clone())], None);
        assert!(matches!(out[0], Outcome::Planted(_)), "{out:?}");
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
        assert!(matches!(out[0], Outcome::Planted(_)));
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
        let (mut c, _) = Canaries::plant(&[canary(path.clone())], Some(&state));
        let record = state.join(format!("canaries-{}.json", std::process::id()));
        assert!(record.exists());
        // Pretend a killed run (pid 0 never names a live bee-trace) left it.
        let planted = std::mem::take(&mut c.planted);
        let dead = state.join("canaries-0.json");
        fs::rename(&record, &dead).unwrap();
        fs::write(d.join("other"), "x").unwrap();
        assert_eq!(clean_leftovers(&state), 1);
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
