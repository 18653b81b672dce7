//! The processing thread's work, in the order a record goes through it:
//! `reorder` puts the rings' records in kernel-time order, `enrich` says
//! who acted (the process table, and whether its executable is an expected
//! program: `programs`), `judge` turns the record into at most one
//! event by the policy, and `finish` numbers, redacts and counts it. What
//! judging wants done in the kernel comes back as `Effect`s for the caller
//! to apply; the DNS resolver thread feeds `take_resolved`.

mod dropped;
mod enrich;
mod flood;
pub mod judge;
pub mod proctable;
pub mod programs;
mod reorder;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::abi::{self, InodeKey, Raw};
use crate::event::{Detail, Event, Severity};
use crate::kernel::Egress;
use crate::policy::Policy;

pub use judge::mem::ptrace_request_name;
pub use reorder::Reorder;

use enrich::Enrich;
use judge::Cx;
use proctable::ProcTable;

/// What judging a record (or a background resolution) asks of the
/// kernel. The pipeline never writes kernel maps itself: the run loop
/// applies these, right after the record that asked for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A sensitive file's inode: the kernel reports its opens by any name
    /// (the hardlink check).
    WatchInode(InodeKey),
    /// `name` resolved to `ip` for `ttl`: remember the name and, when a
    /// domain rule covers it, put the address in the egress maps.
    LearnAddr {
        name: String,
        ip: IpAddr,
        ttl: Duration,
    },
    /// Drop learned addresses whose TTL ran out from the egress maps.
    ExpireLearned,
    /// A learned inode is another file now (its number was reused): stop
    /// reporting its opens by inode.
    ForgetInode(InodeKey),
}

/// Counts for the summary and the reports.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub by_type: BTreeMap<&'static str, BTreeMap<Severity, u64>>,
    /// Kernel candidates the full policy then ruled out (exclusions, a
    /// pre-filter name that the whole path did not match).
    pub filtered: u64,
}

impl Stats {
    pub fn count(&mut self, e: &Event) {
        *self
            .by_type
            .entry(e.kind)
            .or_default()
            .entry(e.severity)
            .or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.by_type.values().flat_map(|m| m.values()).sum()
    }
}

pub struct Pipeline {
    pub policy: Policy,
    enrich: Enrich,
    /// Emit process events (exec/exit) too, not only use them for lineage.
    show_process: bool,
    command: Option<String>,
    pub stats: Stats,
    files: judge::file::Files,
    /// What the kernel's flood control counted, as told so far.
    pub told: flood::Told,
    net: judge::net::Net,
    /// Egress verdicts, learned names and the rules behind them.
    pub egress: Egress,
    resolver: resolve::Resolver,
    /// The id of the last event handed out.
    next_id: u64,
    /// Names this instance's kernel objects in tamper events.
    pub tamper: judge::tamper::Judge,
    /// Other bee-trace monitors, whose own file and memory activity is
    /// theirs, not a finding (None: not looked for).
    pub peers: Option<crate::peers::Peers>,
    /// Execs of files written during the run, parked while hashed.
    dropped: dropped::Dropped,
}

impl Pipeline {
    pub fn new(
        policy: Policy,
        table: ProcTable,
        show_process: bool,
        command: Option<String>,
        egress: Egress,
    ) -> Pipeline {
        Pipeline {
            policy,
            enrich: Enrich::new(table),
            show_process,
            command,
            stats: Stats::default(),
            files: judge::file::Files::default(),
            told: flood::Told::default(),
            net: judge::net::Net::default(),
            egress,
            resolver: resolve::Resolver::default(),
            next_id: 0,
            tamper: judge::tamper::Judge::default(),
            peers: None,
            dropped: dropped::Dropped::default(),
        }
    }

    /// Resolves the domains the network rules name (blocked, and allowed
    /// without a wildcard) off the processing thread, now and every few
    /// minutes; each answer comes back through `take_resolved`.
    pub fn resolve_rule_domains(&mut self, shutdown: Arc<AtomicBool>) {
        let names: Vec<String> = self
            .egress
            .plan()
            .domains
            .iter()
            .filter(|d| !d.allow || !d.subdomains)
            .map(|d| d.name.clone())
            .collect();
        self.resolver.restart(names, shutdown);
    }

    /// The background resolutions that came in, as addresses to learn,
    /// then the expiry of learned addresses; called from the run loop.
    pub fn take_resolved(&mut self, effects: &mut Vec<Effect>) {
        for (name, ip, ttl) in self.resolver.take() {
            effects.push(Effect::LearnAddr { name, ip, ttl });
        }
        effects.push(Effect::ExpireLearned);
    }

    /// Puts a reloaded policy in force: files known by inode are judged again
    /// (those no rule names any more are forgotten), the egress maps are
    /// updated in place, and the new policy's domains are resolved.
    pub fn set_policy(
        &mut self,
        policy: Policy,
        plan: crate::policy::network::Plan,
        shutdown: Arc<AtomicBool>,
    ) -> libbpf_rs::Result<()> {
        self.policy = policy;
        self.files.rejudge(&self.policy);
        let result = self.egress.reload(plan);
        self.resolve_rule_domains(shutdown);
        result
    }

    /// Remembers an existing sensitive file by inode (see `Policy::seed_files`).
    pub fn know_file(&mut self, key: InodeKey, path: &str) {
        self.files.know(&self.policy, key, path);
    }

    pub(crate) fn base(
        &mut self,
        h: &abi::Header,
        kind: &'static str,
        severity: Severity,
        detail: Detail,
    ) -> Event {
        debug_assert_eq!(kind, detail.kind().as_str());
        self.enrich.base(h, severity, detail)
    }

    /// One kernel record in, at most one event out; what it asks of the
    /// kernel is pushed to `effects`.
    pub fn handle(&mut self, raw: Raw, effects: &mut Vec<Effect>) -> Option<Event> {
        let ev = match raw {
            // Something done to bee-trace goes out at once, never parked
            // behind a dropped exec's hash: it is for people, not rules.
            Raw::Tamper(e) => return self.on_tamper(&e).and_then(|ev| self.finish(ev)),
            other => self.judge(other, effects),
        }?;
        let ev = self.park_if_dropped(ev)?;
        self.finish(ev)
    }

    /// An exec of a file written during the run waits for its hash
    /// (`dropped`), and every event after it waits behind it, so that
    /// events keep their order; None when parked. What comes back must go
    /// out now (nothing is parked, or the parking is full).
    fn park_if_dropped(&mut self, mut ev: Event) -> Option<Event> {
        let file = self.dropped_exe(&mut ev);
        if file.is_none() && !self.dropped.holding() {
            return Some(ev);
        }
        self.dropped.park(ev, file)
    }

    /// For an exec of a dropped file: marks it and opens the file to hash.
    fn dropped_exe(&mut self, ev: &mut Event) -> Option<std::fs::File> {
        let Detail::Process {
            kind: "exec",
            dropped,
            ..
        } = &mut ev.detail
        else {
            return None;
        };
        let id = self.enrich.table.get_or_load(ev.pid)?.exe_id?;
        let file = self.dropped.open_if_dropped(ev.pid, &ev.exe, id)?;
        *dropped = Some(true);
        Some(file)
    }

    /// Parked events that may go now (up to the first exec still waiting
    /// for its hash), finished, in the order they were parked; with `all`,
    /// every one (the end of the run). Called from the run loop.
    pub fn take_hashed(&mut self, all: bool) -> Vec<Event> {
        let ready = self.dropped.take_ready(all);
        if all && self.dropped.unhashed > 0 {
            // Written, never dropped: said once, at the end of the run.
            log::warn!(
                "{} exec(s) of files written during the run went out without sha256 (larger than {} MiB, unreadable, or the hasher was behind)",
                self.dropped.unhashed,
                dropped::HASH_MAX >> 20
            );
        }
        ready.into_iter().filter_map(|ev| self.finish(ev)).collect()
    }

    fn judge(&mut self, raw: Raw, effects: &mut Vec<Effect>) -> Option<Event> {
        let show = self.show_process;
        let mut cx = Cx {
            policy: &self.policy,
            enrich: &mut self.enrich,
            stats: &mut self.stats,
            egress: &self.egress,
            peers: self.peers.as_mut(),
            effects,
        };
        match raw {
            Raw::Exec(e) => judge::process::exec(&mut cx, show, &e),
            Raw::Fork(e) => {
                cx.enrich.table.on_fork(e.hdr.pid, e.child_pid);
                None
            }
            Raw::Exit(e) => judge::process::exit(&mut cx, show, &e),
            Raw::File(e) => self.files.judge(&mut cx, &e),
            Raw::Net(e) => self.net.connect(&mut cx, &e),
            Raw::Mem(e) => judge::mem::judge(&mut cx, &e),
            Raw::Egress(e) => self.net.verdict(&mut cx, &e),
            Raw::Dns(e) => judge::net::dns(&mut cx, &e),
            Raw::Socket(e) => judge::net::socket(&mut cx, &e),
            Raw::Serve(e) => judge::net::serve(&mut cx, &e),
            // Judged by tamper::Judge (see `handle`).
            Raw::Tamper(_) => None,
        }
    }

    /// Numbers, redacts and counts an event. `--command` narrows every kind
    /// but tampering with bee-trace, which is always shown.
    pub(crate) fn finish(&mut self, mut ev: Event) -> Option<Event> {
        if let Some(c) = &self.command {
            if ev.kind != "tamper" && !ev.comm.contains(c.as_str()) {
                return None;
            }
        }
        self.policy.redactor.event(&mut ev);
        self.next_id += 1;
        ev.id = self.next_id;
        self.stats.count(&ev);
        Some(ev)
    }
}
