//! Dropped binaries: an exec of a file written (or changed) during the run
//! carries `dropped: true` and the file's SHA-256, hashed on a thread of
//! its own so that the processing thread never waits on a read of an
//! attacker's file. The exec's event is parked until its hash comes back
//! (or `HASH_WAIT` passes); every event judged after it is parked behind
//! it, so events still go out (and are numbered, and reach the rules, whose
//! sequences follow that order) in the order they happened.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use sha2::{Digest, Sha256};

use super::programs::ExeId;
use crate::event::{Detail, Event};

/// Files larger than this are not hashed: their exec says `dropped: true`
/// without `sha256`. A bound on the hasher's time, not a secret's size.
pub const HASH_MAX: u64 = 64 << 20;
/// Longest a parked exec waits for its hash (and the events behind it
/// with it); then it goes without it.
pub const HASH_WAIT: Duration = Duration::from_secs(2);
/// Files waiting for the hasher; past this an exec is not hashed.
const QUEUE: usize = 32;
/// Parked events; past this the oldest goes out, unhashed if still waiting.
const PARKED_MAX: usize = 16384;

/// The hasher's ends: files to hash in, (token, hash) out.
type Hasher = (Sender<(u64, File)>, Receiver<(u64, Option<String>)>);

struct Parked {
    /// The hasher's job for an exec; None for an event parked behind one.
    token: Option<u64>,
    since: Instant,
    ev: Event,
    /// None: not back yet; Some(None): too large or unreadable, or not an
    /// exec to hash.
    hash: Option<Option<String>>,
}

/// The run's start, the hasher thread and the parked events.
pub struct Dropped {
    started: (i64, i64),
    hasher: Option<Hasher>,
    parked: VecDeque<Parked>,
    next: u64,
    /// Execs of dropped files sent out without a hash: the hasher's queue
    /// or the parking was full, or the hash took longer than HASH_WAIT.
    pub unhashed: u64,
}

impl Default for Dropped {
    fn default() -> Self {
        Dropped::new(SystemTime::now())
    }
}

impl Dropped {
    /// Files changed at or after `started` are dropped.
    pub fn new(started: SystemTime) -> Dropped {
        let d = started.duration_since(UNIX_EPOCH).unwrap_or_default();
        Dropped {
            started: (d.as_secs() as i64, d.subsec_nanos() as i64),
            hasher: None,
            parked: VecDeque::new(),
            next: 0,
            unhashed: 0,
        }
    }

    /// The executable `pid` runs, opened, when it is the inode the kernel
    /// executed (`id`) and its content or inode changed during the run.
    /// /proc/<pid>/exe leads to that inode even when it was removed or
    /// renamed. For a process already gone (most dropped tools run for
    /// less than the reorder delay) the path the kernel walked is used: held
    /// with O_PATH (which opens nothing), checked to be that regular file,
    /// and only then opened through the held descriptor, so a path swapped
    /// for a device or a FIFO meanwhile is never opened by root. A memfd
    /// whose process is gone has no path: no hash.
    pub fn open_if_dropped(&self, pid: u32, exe: &str, id: ExeId) -> Option<File> {
        let f = File::open(format!("/proc/{pid}/exe"))
            .ok()
            .or_else(|| open_checked(exe, id))?;
        let m = f.metadata().ok()?;
        let same = crate::kernel::kernel_dev(m.dev()) == id.dev && m.ino() == id.ino;
        (same && m.is_file() && self.changed_since_start(&m)).then_some(f)
    }

    fn changed_since_start(&self, m: &std::fs::Metadata) -> bool {
        let after = |s: i64, ns: i64| (s, ns) >= self.started;
        after(m.mtime(), m.mtime_nsec()) || after(m.ctime(), m.ctime_nsec())
    }

    /// Whether events are parked: every later one must wait behind them.
    pub fn holding(&self) -> bool {
        !self.parked.is_empty()
    }

    /// Parks `ev`: with `f`, until `f` is hashed; without, behind the
    /// events parked already. Returns an event that must go out now: `ev`
    /// itself when nothing is parked and `f` cannot be hashed, or the
    /// oldest parked event when the parking is full.
    pub fn park(&mut self, ev: Event, f: Option<File>) -> Option<Event> {
        let token = f.and_then(|f| self.send(f));
        if token.is_none() && !self.holding() {
            return Some(ev);
        }
        self.parked.push_back(Parked {
            token,
            since: Instant::now(),
            ev,
            hash: if token.is_some() { None } else { Some(None) },
        });
        if self.parked.len() > PARKED_MAX {
            return self.parked.pop_front().map(|p| self.release(p));
        }
        None
    }

    /// Hands `f` to the hasher; its token, or None (counted) when it
    /// cannot take it.
    fn send(&mut self, f: File) -> Option<u64> {
        let token = self.next;
        let sent = match self.hasher() {
            Some((tx, _)) => match tx.try_send((token, f)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if !sent {
            self.unhashed += 1;
            return None;
        }
        self.next += 1;
        Some(token)
    }

    /// A parked event as it goes out: an exec with its hash, if back.
    fn release(&mut self, mut p: Parked) -> Event {
        if p.token.is_some() {
            let hash = p.hash.take().flatten();
            if hash.is_none() {
                self.unhashed += 1;
            }
            if let Detail::Process { sha256, .. } = &mut p.ev.detail {
                *sha256 = hash;
            }
        }
        p.ev
    }

    /// The hasher, started at its first use.
    fn hasher(&mut self) -> Option<&Hasher> {
        if self.hasher.is_none() {
            let (tx, jobs) = crossbeam_channel::bounded::<(u64, File)>(QUEUE);
            let (done, rx) = crossbeam_channel::unbounded();
            std::thread::Builder::new()
                .name("bt-hash".into())
                .spawn(move || {
                    for (token, f) in jobs {
                        if done.send((token, sha256_bounded(f))).is_err() {
                            break;
                        }
                    }
                })
                .ok()?;
            self.hasher = Some((tx, rx));
        }
        self.hasher.as_ref()
    }

    /// The parked events that may go now, in the order they were parked:
    /// up to the first exec still waiting for its hash (for less than
    /// `HASH_WAIT`); with `all`, every one, after waiting for their hashes
    /// at most `HASH_WAIT` (the end of the run).
    pub fn take_ready(&mut self, all: bool) -> Vec<Event> {
        let deadline = Instant::now() + HASH_WAIT;
        loop {
            self.collect();
            let waiting = self.parked.iter().any(|p| p.hash.is_none());
            if !all || !waiting || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = Vec::new();
        while let Some(front) = self.parked.front() {
            let late = front.since.elapsed() >= HASH_WAIT;
            if front.hash.is_none() && !late && !all {
                break;
            }
            let p = self.parked.pop_front().expect("a front");
            out.push(self.release(p));
        }
        out
    }

    fn collect(&mut self) {
        let Some((_, rx)) = &self.hasher else {
            return;
        };
        for (token, hash) in rx.try_iter() {
            if let Some(p) = self.parked.iter_mut().find(|p| p.token == Some(token)) {
                p.hash = Some(hash);
            }
        }
    }
}

/// `path` opened for reading only when it is the regular file `id`.
fn open_checked(path: &str, id: ExeId) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    if !path.starts_with('/') {
        return None;
    }
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let m = held.metadata().ok()?;
    if !m.is_file() || crate::kernel::kernel_dev(m.dev()) != id.dev || m.ino() != id.ino {
        return None;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", held.as_raw_fd()))
        .ok()
}

/// The SHA-256 of `f` in hex, None when it is larger than `HASH_MAX` or
/// cannot be read.
fn sha256_bounded(f: File) -> Option<String> {
    if f.metadata().ok()?.len() > HASH_MAX {
        return None;
    }
    let mut h = Sha256::new();
    let mut r = f.take(HASH_MAX + 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut n_total = 0u64;
    loop {
        let n = r.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        h.update(&buf[..n]);
    }
    if n_total > HASH_MAX {
        return None; // it grew while being read
    }
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_within_the_bound() {
        let p = std::env::temp_dir().join(format!("bee-trace-dropped-{}", std::process::id()));
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_bounded(File::open(&p).unwrap()).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        // One byte over the bound: no hash (a sparse file, no disk used).
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(HASH_MAX + 1).unwrap();
        assert_eq!(sha256_bounded(File::open(&p).unwrap()), None);
        std::fs::remove_file(&p).unwrap();
    }

    fn event(kind: &'static str, pid: u32) -> Event {
        Event {
            kind: "process",
            id: 0,
            ts: String::new(),
            pid,
            ppid: 1,
            uid: 0,
            comm: "x".into(),
            exe: "/x".into(),
            ancestors: Vec::new(),
            severity: crate::event::Severity::Info,
            detail: Detail::Process {
                kind,
                argv: Vec::new(),
                argv_truncated: None,
                exit_code: None,
                script: None,
                fileless: None,
                dropped: Some(true),
                sha256: None,
                loader_env: Vec::new(),
                loader_env_truncated: None,
                stdio_socket: None,
            },
        }
    }

    #[test]
    fn events_after_a_parked_exec_wait_behind_it_and_keep_their_order() {
        let p = std::env::temp_dir().join(format!("bee-trace-park-{}", std::process::id()));
        std::fs::write(&p, b"abc").unwrap();
        let mut d = Dropped::new(UNIX_EPOCH);
        // Nothing parked and nothing to hash: out at once.
        assert!(d.park(event("exit", 1), None).is_some());
        assert!(!d.holding());
        assert!(d
            .park(event("exec", 2), Some(File::open(&p).unwrap()))
            .is_none());
        assert!(d.park(event("exit", 3), None).is_none(), "behind the exec");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while out.len() < 2 {
            assert!(Instant::now() < deadline, "the hash never came back");
            out.extend(d.take_ready(false));
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(out.iter().map(|e| e.pid).collect::<Vec<_>>(), [2, 3]);
        let Detail::Process { sha256, .. } = &out[0].detail else {
            panic!()
        };
        assert_eq!(
            sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(!d.holding());
        assert_eq!(d.unhashed, 0);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn changes_before_the_start_are_not_drops() {
        let m = std::fs::metadata("/proc/self/exe").unwrap();
        let far_future = SystemTime::now() + Duration::from_secs(3600);
        assert!(!Dropped::new(far_future).changed_since_start(&m));
        assert!(Dropped::new(UNIX_EPOCH).changed_since_start(&m));
    }
}
