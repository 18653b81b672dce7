//! The process table: who is who, seeded from /proc and kept current by the
//! process family's events, so every event can name its ancestors.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::programs::ExeId;
use crate::event::Ancestor;

/// How long an exited process stays known: events of other families can
/// arrive after its exit event.
const LINGER: Duration = Duration::from_secs(30);
pub const MAX_ANCESTORS: usize = 16;
const MAX_PROCS: usize = 1 << 17;
/// Most bytes read from /proc/<pid>/stat: a comm is at most 16 bytes, the
/// rest numbers.
const STAT_MAX: u64 = 4096;
/// Most bytes read from /proc/<pid>/environ: exec copies at most 3/4 of
/// the kernel's 8 MiB stack limit of arguments and environment, so a real
/// environment is never longer; a process can name any mapped region its
/// environment (prctl PR_SET_MM_MAP needs no privilege), gigabytes of it.
pub const ENVIRON_MAX: u64 = 6 << 20;

/// Reads at most `max` bytes of /proc/<pid>/<name>, a file whose length
/// the process it describes can choose (and whose st_size says nothing).
pub fn read_proc_file(pid: u32, name: &str, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/{name}"))?
        .take(max)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

#[derive(Debug, Clone, Default)]
pub struct Proc {
    pub ppid: u32,
    pub comm: String,
    pub exe: String,
    /// The inode `exe` was when the kernel ran it (see `programs`).
    pub exe_id: Option<ExeId>,
}

#[derive(Default)]
pub struct ProcTable {
    procs: HashMap<u32, Proc>,
    exited: VecDeque<(Instant, u32)>,
}

impl ProcTable {
    /// Reads every process from /proc. Processes that vanish meanwhile are skipped.
    pub fn seed_from_proc() -> ProcTable {
        let mut t = ProcTable::default();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                    if let Some(p) = read_proc(pid) {
                        t.procs.insert(pid, p);
                    }
                }
            }
        }
        t
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// A process the table has not seen (it started before a lost event, say):
    /// read it from /proc once.
    pub fn get_or_load(&mut self, pid: u32) -> Option<&Proc> {
        if !self.procs.contains_key(&pid) {
            let p = read_proc(pid)?;
            self.insert(pid, p);
        }
        self.procs.get(&pid)
    }

    fn insert(&mut self, pid: u32, p: Proc) {
        if self.procs.len() >= MAX_PROCS && !self.procs.contains_key(&pid) {
            self.expire(Instant::now() + LINGER); // full: drop every exited entry now
        }
        self.procs.insert(pid, p);
    }

    pub fn on_fork(&mut self, parent: u32, child: u32) {
        let p = self.procs.get(&parent).cloned().unwrap_or_default();
        self.insert(child, Proc { ppid: parent, ..p });
    }

    pub fn on_exec(&mut self, pid: u32, ppid: u32, comm: String, exe: String, id: Option<ExeId>) {
        self.insert(
            pid,
            Proc {
                ppid,
                comm,
                exe,
                exe_id: id,
            },
        );
    }

    pub fn on_exit(&mut self, pid: u32) {
        self.exited.push_back((Instant::now(), pid));
        self.expire(Instant::now());
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, pid)) = self.exited.front() {
            if now.duration_since(t) < LINGER && now >= t {
                break;
            }
            self.exited.pop_front();
            self.procs.remove(&pid);
        }
    }

    /// Parent first, up to pid 1 or MAX_ANCESTORS.
    pub fn ancestors(&mut self, ppid: u32) -> Vec<Ancestor> {
        let mut out = Vec::new();
        let mut pid = ppid;
        while pid != 0 && out.len() < MAX_ANCESTORS {
            let (comm, next) = match self.get_or_load(pid) {
                Some(p) => (p.comm.clone(), p.ppid),
                None => (String::new(), 0),
            };
            out.push(Ancestor { pid, comm });
            if pid == 1 || next == pid {
                break;
            }
            pid = next;
        }
        out
    }

    /// Is `anc` an ancestor of `pid`?
    pub fn is_ancestor(&mut self, anc: u32, pid: u32) -> bool {
        let mut cur = pid;
        for _ in 0..MAX_ANCESTORS * 4 {
            let Some(p) = self.get_or_load(cur) else {
                return false;
            };
            if p.ppid == anc {
                return true;
            }
            if p.ppid == 0 || p.ppid == cur {
                return false;
            }
            cur = p.ppid;
        }
        false
    }
}

fn read_proc(pid: u32) -> Option<Proc> {
    // comm is any bytes the process chose, UTF-8 or not.
    let stat = read_proc_file(pid, "stat", STAT_MAX).ok()?;
    let (comm, ppid) = parse_stat(&crate::escape::decode(&stat))?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| exe_from_link(&crate::escape::decode_path(&p)))
        .unwrap_or_default();
    Some(Proc {
        ppid,
        comm,
        exe,
        exe_id: ExeId::of_pid(pid),
    })
}

/// The executable as the exec event names it, from /proc/<pid>/exe: a
/// memfd reads there as "/memfd:<name> (deleted)", which the kernel's own
/// record calls "memfd:<name>" (no directory holds it). Only root can make
/// a file of that name in /, so the form is not a user's to forge.
fn exe_from_link(link: &str) -> String {
    match link
        .strip_prefix("/memfd:")
        .and_then(|n| n.strip_suffix(" (deleted)"))
    {
        Some(name) => format!("memfd:{name}"),
        None => link.to_string(),
    }
}

/// (comm, ppid) from a /proc/<pid>/stat line. comm may hold spaces and
/// parentheses, so it runs to the last ')'.
pub fn parse_stat(stat: &str) -> Option<(String, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memfd_seen_in_proc_is_named_as_its_exec_names_it() {
        assert_eq!(exe_from_link("/memfd:payload (deleted)"), "memfd:payload");
        assert_eq!(exe_from_link("/tmp/x (deleted)"), "/tmp/x (deleted)");
        assert_eq!(exe_from_link("/usr/bin/cat"), "/usr/bin/cat");
    }

    #[test]
    fn parses_stat_with_odd_comm() {
        assert_eq!(
            parse_stat("123 (a) b)) S 77 1 1"),
            Some(("a) b)".into(), 77))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn ancestry_follows_forks_and_execs() {
        let mut t = ProcTable::default();
        t.on_exec(100_000_001, 1, "bash".into(), "/bin/bash".into(), None);
        t.on_fork(100_000_001, 100_000_002);
        t.on_exec(
            100_000_002,
            100_000_001,
            "sh".into(),
            "/bin/sh".into(),
            None,
        );
        t.on_fork(100_000_002, 100_000_003);
        let a = t.ancestors(100_000_002);
        assert_eq!(
            a[0],
            Ancestor {
                pid: 100_000_002,
                comm: "sh".into()
            }
        );
        assert_eq!(
            a[1],
            Ancestor {
                pid: 100_000_001,
                comm: "bash".into()
            }
        );
        assert_eq!(
            t.get_or_load(100_000_003).unwrap().comm,
            "sh",
            "a fork inherits its parent's identity"
        );
        assert!(t.is_ancestor(100_000_001, 100_000_003));
        assert!(!t.is_ancestor(100_000_003, 100_000_001));
    }

    #[test]
    fn ancestry_ends_at_an_unknown_a_self_parented_or_a_looping_process() {
        let mut t = ProcTable::default();
        // Above the kernel's pid_max: never in /proc.
        let unknown = 4_000_000_000;
        assert_eq!(
            t.ancestors(unknown),
            vec![Ancestor {
                pid: unknown,
                comm: String::new()
            }]
        );
        assert!(!t.is_ancestor(1, unknown));
        // Its own parent: named once, an ancestor of nothing.
        t.on_exec(100_000_011, 100_000_011, "self".into(), "/x".into(), None);
        assert_eq!(t.ancestors(100_000_011).len(), 1);
        assert!(!t.is_ancestor(1, 100_000_011));
        // No parent (ppid 0): the chain ends there.
        t.on_exec(100_000_012, 0, "orphan".into(), "/x".into(), None);
        assert!(!t.is_ancestor(1, 100_000_012));
        // Two processes that name each other as parent: bounded, not a hang.
        t.on_exec(100_000_013, 100_000_014, "a".into(), "/x".into(), None);
        t.on_exec(100_000_014, 100_000_013, "b".into(), "/x".into(), None);
        let a = t.ancestors(100_000_013);
        assert_eq!(a.len(), MAX_ANCESTORS);
        assert_eq!(
            (a[0].pid, a[1].pid, a[2].pid),
            (100_000_013, 100_000_014, 100_000_013)
        );
        assert!(!t.is_ancestor(1, 100_000_013));
        assert!(t.is_ancestor(100_000_014, 100_000_013));
    }

    #[test]
    fn an_exited_process_lingers_then_is_forgotten() {
        let mut t = ProcTable::default();
        t.on_exec(100_000_021, 1, "gone".into(), "/x".into(), None);
        t.on_exit(100_000_021);
        // Events of other families still find it for a while ...
        assert_eq!(t.len(), 1);
        // ... and after LINGER it is gone, and the queue with it.
        t.expire(Instant::now() + LINGER);
        assert!(t.is_empty());
        assert!(t.exited.is_empty());
        t.expire(Instant::now() + LINGER);
        // A stamp later than now (the clock was read in another order) does
        // not keep an entry forever.
        t.on_exec(100_000_022, 1, "later".into(), "/x".into(), None);
        t.exited
            .push_back((Instant::now() + Duration::from_secs(1), 100_000_022));
        t.expire(Instant::now());
        assert!(t.is_empty());
    }

    #[test]
    fn a_full_table_makes_room_by_forgetting_the_exited_first() {
        let mut t = ProcTable::default();
        let base = 100_000_000;
        for pid in base..base + MAX_PROCS as u32 {
            t.insert(pid, Proc::default());
        }
        t.on_exit(base);
        t.on_exit(base + 1);
        assert_eq!(t.len(), MAX_PROCS, "an exit alone forgets nothing yet");
        // Updating a known process of a full table drops nothing ...
        t.on_exec(base + 2, 1, "known".into(), "/x".into(), None);
        assert_eq!(t.len(), MAX_PROCS);
        // ... a new one drops every exited process, at once.
        t.on_fork(base + 2, base + MAX_PROCS as u32);
        assert_eq!(t.len(), MAX_PROCS - 1);
        assert!(!t.procs.contains_key(&base) && !t.procs.contains_key(&(base + 1)));
        assert_eq!(t.procs[&(base + MAX_PROCS as u32)].comm, "known");
    }
}
