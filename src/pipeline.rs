//! The processing thread's work: decoded kernel records are enriched from the
//! process table and judged by the policy, becoming the events people see.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::egress::Egress;
use crate::events::{self, InodeKey, Raw};
use crate::output::{result_text, Detail, Event};
use crate::policy::{Access, FileRule, Policy, Severity};
use crate::proctable::ProcTable;
use crate::programs::{ExeId, Programs};

const FMODE_WRITE: u32 = 0x2;
const O_ACCMODE: u32 = 0o3;
const O_TRUNC: u32 = 0o1000;

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
    pub table: ProcTable,
    boot_offset_ns: i128,
    /// Emit process events (exec/exit) too, not only use them for lineage.
    show_process: bool,
    command: Option<String>,
    pub stats: Stats,
    /// Inodes of sensitive files seen, to hand to the kernel's hardlink check.
    pub learned_inodes: Vec<InodeKey>,
    /// Sensitive files by inode: a hardlink has a name no rule matches.
    known_inodes: HashMap<(u64, u64), (FileRule, String)>,
    /// Egress verdicts, learned names and the rules behind them.
    pub egress: Egress,
    /// Names resolved in the background: (name, address, ttl).
    domain_rx: Option<crossbeam_channel::Receiver<(String, IpAddr, Duration)>>,
    /// The id of the last event handed out.
    next_id: u64,
    /// Stops the current resolver thread (a reload starts another).
    resolver_stop: Arc<AtomicBool>,
    /// Recent egress verdicts on connects, by (pid, address, port): the
    /// connect tracepoint's record of the same call is folded into them.
    verdicts: HashMap<(u32, IpAddr, u16), u64>,
    /// Names this instance's kernel objects in tamper events.
    pub tamper: crate::tamper::Judge,
    /// Which executables are the expected programs of file rules.
    programs: Programs,
    /// Other bee-trace monitors, whose own file and memory activity is
    /// theirs, not a finding (None: not looked for).
    pub peers: Option<crate::peers::Peers>,
}

/// Does `pid` run one of the programs `names`: by the executable the kernel
/// ran (see `programs`), never by its comm, which any process can set.
fn runs_program(
    table: &mut ProcTable,
    programs: &mut Programs,
    pid: u32,
    names: &[String],
) -> bool {
    if names.is_empty() {
        return false;
    }
    match table.get_or_load(pid) {
        Some(p) => programs.is_expected(&p.exe, p.exe_id, names),
        None => false,
    }
}

/// How long an egress verdict absorbs the connect tracepoint's record.
const VERDICT_WINDOW_NS: u64 = 2_000_000_000;
/// How often the names of network rules are resolved again, and for how long
/// such an answer counts (the system resolver gives no TTL).
const RESOLVE_EVERY: Duration = Duration::from_secs(300);
const RESOLVED_TTL: Duration = Duration::from_secs(600);

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
            table,
            boot_offset_ns: crate::sys::boot_to_unix_offset_ns(),
            show_process,
            command,
            stats: Stats::default(),
            learned_inodes: Vec::new(),
            known_inodes: HashMap::new(),
            egress,
            domain_rx: None,
            resolver_stop: Arc::new(AtomicBool::new(false)),
            next_id: 0,
            verdicts: HashMap::new(),
            tamper: crate::tamper::Judge::default(),
            programs: Programs::default(),
            peers: None,
        }
    }

    /// Resolves the domains the network rules name (blocked, and allowed
    /// without a wildcard) off the processing thread, now and every
    /// RESOLVE_EVERY; each answer reaches the egress maps through
    /// `take_resolved`. A host without DNS never stalls start-up.
    pub fn resolve_rule_domains(&mut self, shutdown: Arc<AtomicBool>) {
        self.resolver_stop.store(true, Ordering::Relaxed);
        self.domain_rx = None;
        let stop = Arc::new(AtomicBool::new(false));
        self.resolver_stop = stop.clone();
        let names: Vec<String> = self
            .egress
            .plan()
            .domains
            .iter()
            .filter(|d| !d.allow || !d.subdomains)
            .map(|d| d.name.clone())
            .collect();
        if names.is_empty() {
            return;
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let spawned = std::thread::Builder::new()
            .name("resolve".into())
            .spawn(move || loop {
                use std::net::ToSocketAddrs;
                for d in &names {
                    match (d.as_str(), 0).to_socket_addrs() {
                        Ok(addrs) => {
                            for a in addrs {
                                if tx.send((d.clone(), a.ip(), RESOLVED_TTL)).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            log::warn!("cannot resolve {d} (named by the network policy): {e}")
                        }
                    }
                }
                let until = std::time::Instant::now() + RESOLVE_EVERY;
                while std::time::Instant::now() < until {
                    if stop.load(Ordering::Relaxed) || shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        match spawned {
            Ok(_) => self.domain_rx = Some(rx),
            Err(e) => log::warn!("cannot start resolving the policy's domains: {e}"),
        }
    }

    /// Feeds background resolutions into the egress maps and drops expired
    /// learned addresses; called from the run loop.
    pub fn take_resolved(&mut self) {
        if let Some(rx) = &self.domain_rx {
            let got: Vec<_> = rx.try_iter().collect();
            for (name, ip, ttl) in got {
                self.egress.learn(&name, ip, ttl);
            }
        }
        self.egress.expire();
    }

    /// Puts a reloaded policy in force: files known by inode are judged again
    /// (those no rule names any more are forgotten), the egress maps are
    /// updated in place, and the new policy's domains are resolved.
    pub fn set_policy(
        &mut self,
        policy: Policy,
        plan: crate::egress::Plan,
        shutdown: Arc<AtomicBool>,
    ) -> libbpf_rs::Result<()> {
        self.policy = policy;
        let known = std::mem::take(&mut self.known_inodes);
        for (key, (_, path)) in known {
            if let Some(rule) = self.policy.match_file(&path, Access::Write) {
                self.known_inodes.insert(key, (rule.clone(), path));
            }
        }
        let result = self.egress.reload(plan);
        self.resolve_rule_domains(shutdown);
        result
    }

    /// Remembers an existing sensitive file by inode (see `Policy::seed_files`).
    pub fn know_file(&mut self, key: InodeKey, path: &str) {
        if let Some(rule) = self.policy.match_file(path, Access::Write) {
            self.known_inodes
                .insert((key.dev, key.ino), (rule.clone(), path.to_string()));
        }
    }

    pub(crate) fn base(
        &mut self,
        h: &events::Header,
        kind: &'static str,
        severity: Severity,
        detail: Detail,
    ) -> Event {
        let comm = events::cstr(&h.comm);
        let exe = self
            .table
            .get_or_load(h.pid)
            .map(|p| p.exe.clone())
            .unwrap_or_default();
        Event {
            id: 0,
            kind,
            ts: crate::sys::rfc3339(h.ts_boot_ns as i128 + self.boot_offset_ns),
            pid: h.pid,
            ppid: h.ppid,
            uid: h.uid,
            comm,
            exe,
            ancestors: self.table.ancestors(h.ppid),
            severity,
            detail,
        }
    }

    /// One kernel record in, at most one event out.
    pub fn handle(&mut self, raw: Raw) -> Option<Event> {
        let ev = match raw {
            Raw::Exec(e) => self.on_exec(&e),
            Raw::Fork(e) => {
                self.table.on_fork(e.hdr.pid, e.child_pid);
                None
            }
            Raw::Exit(e) => {
                let ev = self.show_process.then(|| {
                    let code = e.exit_code;
                    let status = if code & 0x7f == 0 {
                        (code >> 8) & 0xff
                    } else {
                        128 + (code & 0x7f)
                    };
                    let detail = Detail::Process {
                        kind: "exit",
                        argv: Vec::new(),
                        argv_truncated: None,
                        exit_code: Some(status),
                    };
                    self.base(&e.hdr, "process", Severity::Info, detail)
                });
                self.table.on_exit(e.hdr.pid);
                ev
            }
            Raw::File(e) => self.on_file(&e),
            Raw::Net(e) => self.on_net(&e),
            Raw::Mem(e) => self.on_mem(&e),
            Raw::Egress(e) => self.on_egress(&e),
            Raw::Dns(e) => self.on_dns(&e),
            Raw::Tamper(e) => self.on_tamper(&e),
        }?;
        self.finish(ev)
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

    fn on_exec(&mut self, e: &events::ExecEvent) -> Option<Event> {
        let exe_len = (e.exe_len as usize).min(events::PATH_BUF);
        let exe = if e.exe_depth == 0 {
            String::new()
        } else {
            events::join_components(
                &e.exe,
                0,
                exe_len,
                e.exe_flags & events::PATH_TRUNCATED != 0,
            )
            .0
        };
        let argv = events::split_argv(&e.argv, e.argv_len as usize);
        let comm = events::cstr(&e.hdr.comm);
        let id = (e.exe_ino != 0).then_some(ExeId {
            dev: e.exe_dev,
            ino: e.exe_ino,
            uid: e.exe_uid,
            mode: e.exe_mode,
        });
        self.table.on_exec(e.hdr.pid, e.hdr.ppid, comm, exe, id);
        if !self.show_process {
            return None;
        }
        let truncated = e.argv_full > e.argv_len;
        let detail = Detail::Process {
            kind: "exec",
            argv,
            argv_truncated: truncated.then_some(true),
            exit_code: None,
        };
        Some(self.base(&e.hdr, "process", Severity::Info, detail))
    }

    /// Another registered bee-trace monitor's own activity: counted as
    /// filtered, never a finding.
    fn is_peer_activity(&mut self, tgid: u32) -> bool {
        let peer = self.peers.as_mut().is_some_and(|p| p.is_peer(tgid));
        if peer {
            self.stats.filtered += 1;
        }
        peer
    }

    fn on_file(&mut self, e: &events::FileEvent) -> Option<Event> {
        // A kill is always reported, whoever it hit.
        if e.action != events::FILE_KILLED && self.is_peer_activity(e.hdr.pid) {
            return None;
        }
        let path = events::file_event_path(e);
        let write = if e.ret >= 0 {
            e.fmode & FMODE_WRITE != 0
        } else {
            e.flags & O_ACCMODE != 0 || e.flags & O_TRUNC != 0
        };
        let access = if write { Access::Write } else { Access::Read };
        let opened = e.ret >= 0 && e.layout == events::PATH_RESOLVED;
        let killed = e.action == events::FILE_KILLED;
        let by_inode = self.known_inodes.get(&(e.dev, e.ino)).filter(|_| opened);
        let (rule, same_inode_as) = if killed {
            // The kernel already acted: report it whatever the path says,
            // under the tripwire rule that armed this inode.
            match by_inode {
                Some((rule, original)) => {
                    (rule.clone(), Some(original.clone()).filter(|o| *o != path))
                }
                None => match self.policy.match_file(&path, access) {
                    Some(rule) => (rule.clone(), None),
                    None => (Policy::unknown_tripwire(), None),
                },
            }
        } else {
            match self.policy.match_file(&path, access) {
                Some(rule) => (rule.clone(), None),
                None => match by_inode {
                    Some((rule, original))
                        if (!rule.write_only || access == Access::Write) && *original != path =>
                    {
                        (rule.clone(), Some(original.clone()))
                    }
                    _ => {
                        self.stats.filtered += 1;
                        return None;
                    }
                },
            }
        };
        if opened && same_inode_as.is_none() && !self.known_inodes.contains_key(&(e.dev, e.ino)) {
            self.learned_inodes.push(InodeKey {
                dev: e.dev,
                ino: e.ino,
            });
            self.known_inodes
                .insert((e.dev, e.ino), (rule.clone(), path.clone()));
        }
        let FileRule {
            kind: category,
            pattern,
            severity,
            expected,
            ..
        } = rule;
        let mut ev = self.base(
            &e.hdr,
            "file",
            severity,
            Detail::File {
                path,
                access: access.as_str(),
                result: result_text(e.ret as i64),
                category,
                rule: pattern,
                resolved: e.layout == events::PATH_RESOLVED,
                same_inode_as,
                action: killed.then_some("killed"),
            },
        );
        if !killed && runs_program(&mut self.table, &mut self.programs, e.hdr.pid, &expected) {
            ev.severity = Severity::Info;
        }
        Some(ev)
    }

    fn on_net(&mut self, e: &events::NetEvent) -> Option<Event> {
        let (family, ip) = net_addr(e.family, &e.daddr)?;
        // The egress hook already reported this very connect with its verdict.
        if let Some(ts) = self.verdicts.get(&(e.hdr.pid, ip, e.dport)) {
            if e.hdr.ts_boot_ns.saturating_sub(*ts) < VERDICT_WINDOW_NS {
                return None;
            }
        }
        if !self.policy.monitored_ports.is_empty()
            && !self.policy.monitored_ports.contains(&e.dport)
        {
            self.stats.filtered += 1;
            return None;
        }
        let severity = if self.policy.alert_on_any_connection {
            Severity::Warning
        } else {
            Severity::Info
        };
        let detail = Detail::Network {
            op: "connect",
            protocol: protocol_name(e.protocol),
            family,
            daddr: ip.to_string(),
            dport: e.dport,
            result: result_text(e.ret as i64),
            policy: None,
            action: None,
            rule: None,
            dns_name: self.egress.dns_name(ip).map(str::to_string),
        };
        Some(self.base(&e.hdr, "network", severity, detail))
    }

    /// A DNS answer the kernel took: its addresses are learned under the name
    /// asked for (for `dns_name`, and with their TTL for the egress maps).
    /// The kernel sends only answers to a query it saw leaving a socket of
    /// the host's network namespace for a configured resolver (same socket,
    /// resolver, ports, id and question), so nothing a job answers itself
    /// gets here. Not an event of its own.
    fn on_dns(&mut self, e: &events::DnsEvent) -> Option<Event> {
        let wire = e.name.get(..usize::from(e.name_len)).unwrap_or(&e.name);
        let Some(name) = events::dns_name_text(wire) else {
            self.stats.filtered += 1;
            return None;
        };
        for k in 0..usize::from(e.naddrs).min(events::DNS_ADDRS) {
            let ip = match e.family[k] {
                4 => IpAddr::from([e.addr[k][0], e.addr[k][1], e.addr[k][2], e.addr[k][3]]),
                6 => IpAddr::from(e.addr[k]),
                _ => continue,
            };
            self.egress
                .learn(&name, ip, Duration::from_secs(u64::from(e.ttl[k])));
        }
        None
    }

    /// A verdict of the cgroup egress hooks (or an unconnected UDP send).
    fn on_egress(&mut self, e: &events::EgressEvent) -> Option<Event> {
        let (family, ip) = net_addr(e.family, &e.daddr)?;
        let op = if e.hook == events::HOOK_CONNECT {
            "connect"
        } else {
            "sendmsg"
        };
        let (action, result) = match e.action {
            events::ACT_BLOCKED => (Some("blocked"), "EPERM".to_string()),
            events::ACT_WOULD_BLOCK => (Some("would_block"), "permitted".to_string()),
            events::ACT_OBSERVED => (None, "sent".to_string()),
            other => {
                log::debug!("unknown egress action {other}");
                (None, "sent".to_string())
            }
        };
        if action.is_some() && op == "connect" {
            if self.verdicts.len() > 4096 {
                let now = e.hdr.ts_boot_ns;
                self.verdicts
                    .retain(|_, t| now.saturating_sub(*t) < VERDICT_WINDOW_NS);
            }
            self.verdicts
                .insert((e.hdr.pid, ip, e.dport), e.hdr.ts_boot_ns);
        }
        if action.is_none()
            && !self.policy.monitored_ports.is_empty()
            && !self.policy.monitored_ports.contains(&e.dport)
        {
            self.stats.filtered += 1;
            return None;
        }
        let severity = if action.is_some() {
            Severity::High
        } else if self.policy.alert_on_any_connection {
            Severity::Warning
        } else {
            Severity::Info
        };
        let (rule, policy) = if action.is_some() {
            let text = self.egress.rule_text(e.rule);
            let legacy = if let Some(d) = self.egress.domain_rule_for(ip) {
                (!d.allow).then(|| format!("blocked_domain:{}", d.name))
            } else if text.starts_with("network.blocked_ips") {
                Some("blocked_ip".to_string())
            } else {
                None
            };
            (Some(text), legacy)
        } else {
            (None, None)
        };
        let detail = Detail::Network {
            op,
            protocol: protocol_name(e.protocol),
            family,
            daddr: ip.to_string(),
            dport: e.dport,
            result,
            policy,
            action,
            rule,
            dns_name: self.egress.dns_name(ip).map(str::to_string),
        };
        let mut hdr = e.hdr;
        hdr.ppid = self.table.get_or_load(hdr.pid).map_or(0, |p| p.ppid);
        Some(self.base(&hdr, "network", severity, detail))
    }

    fn on_mem(&mut self, e: &events::MemEvent) -> Option<Event> {
        if self.is_peer_activity(e.hdr.pid) {
            return None;
        }
        let excluded = &self.policy.exclude_processes;
        if runs_program(&mut self.table, &mut self.programs, e.hdr.pid, excluded) {
            self.stats.filtered += 1;
            return None;
        }
        let target_tgid = if e.target_tgid != 0 {
            e.target_tgid
        } else {
            e.target_pid
        };
        let mut target_comm = events::cstr(&e.target_comm);
        if target_comm.is_empty() {
            target_comm = self
                .table
                .get_or_load(target_tgid)
                .map(|p| p.comm.clone())
                .unwrap_or_default();
        }
        if target_comm.is_empty() {
            target_comm = crate::proctable::read_proc_file(e.target_pid, "comm", 64)
                .map(|b| crate::escape::decode(b.strip_suffix(b"\n").unwrap_or(&b)))
                .unwrap_or_default();
        }
        // The target's own child or descendant being inspected is how debuggers
        // and test runners work; a stranger's memory is the attack.
        let own_descendant = self.table.is_ancestor(e.hdr.pid, target_tgid);
        let (kind, mut severity) = match e.kind {
            events::MEM_PTRACE => (
                "ptrace",
                if own_descendant {
                    Severity::Warning
                } else {
                    Severity::Critical
                },
            ),
            events::MEM_VM_READV => (
                "process_vm_readv",
                if own_descendant {
                    Severity::High
                } else {
                    Severity::Critical
                },
            ),
            events::MEM_VM_WRITEV => ("process_vm_writev", Severity::Critical),
            events::MEM_PROC_MEM => (
                "proc_mem",
                if own_descendant {
                    Severity::High
                } else {
                    Severity::Critical
                },
            ),
            events::MEM_PROC_ENVIRON => ("proc_environ", Severity::High),
            events::MEM_PROC_MAPS => ("proc_maps", Severity::Warning),
            _ => return None,
        };
        let mut target_secret_env = Vec::new();
        if e.kind == events::MEM_PROC_ENVIRON {
            target_secret_env = self.secret_env_names(target_tgid);
            if !target_secret_env.is_empty() {
                severity = Severity::Critical;
            }
        }
        if !self.policy.alert_on_memory_access {
            severity = Severity::Info;
        }
        let request = (e.kind == events::MEM_PTRACE).then(|| ptrace_request_name(e.request));
        let detail = Detail::Memory {
            kind,
            target_pid: e.target_pid,
            target_comm,
            result: result_text(e.ret),
            request,
            target_secret_env,
        };
        Some(self.base(&e.hdr, "memory", severity, detail))
    }

    /// Names (never values) of the target's environment variables that the
    /// policy calls secret: what a reader of its environ could have taken.
    fn secret_env_names(&self, pid: u32) -> Vec<String> {
        let read = crate::proctable::read_proc_file(pid, "environ", crate::proctable::ENVIRON_MAX);
        let Ok(env) = read else {
            return Vec::new();
        };
        let mut names: Vec<String> = env
            .split(|&b| b == 0)
            .filter_map(|kv| {
                let eq = kv.iter().position(|&b| b == b'=')?;
                let name = std::str::from_utf8(&kv[..eq]).ok()?;
                self.policy
                    .is_secret_env_name(name)
                    .then(|| name.to_string())
            })
            .collect();
        names.sort();
        names.dedup();
        names.truncate(32);
        names
    }
}

/// Records from the four ring buffers arrive out of order (an exec can be
/// queued behind the file read its process made). Holding each record for a
/// short delay and releasing them in kernel-timestamp order keeps the process
/// table ahead of the events that need it.
pub struct Reorder {
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    delay_ns: u64,
}

struct Pending {
    ts: u64,
    seq: u64,
    raw: Raw,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

impl Reorder {
    pub fn new(delay_ns: u64) -> Reorder {
        Reorder {
            heap: BinaryHeap::new(),
            seq: 0,
            delay_ns,
        }
    }

    pub fn push(&mut self, raw: Raw) {
        self.seq += 1;
        let ts = raw.header().ts_boot_ns;
        self.heap.push(Reverse(Pending {
            ts,
            seq: self.seq,
            raw,
        }));
    }

    /// The next record older than `now_boot_ns` minus the delay (or any, when
    /// `now_boot_ns` is None: draining at exit).
    pub fn pop_ready(&mut self, now_boot_ns: Option<u64>) -> Option<Raw> {
        let head = self.heap.peek()?;
        if let Some(now) = now_boot_ns {
            if head.0.ts.saturating_add(self.delay_ns) > now {
                return None;
            }
        }
        self.heap.pop().map(|p| p.0.raw)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

fn net_addr(family: u16, daddr: &[u8; 16]) -> Option<(&'static str, IpAddr)> {
    match family {
        2 => Some((
            "ipv4",
            IpAddr::V4(Ipv4Addr::new(daddr[0], daddr[1], daddr[2], daddr[3])),
        )),
        10 => Some(("ipv6", IpAddr::V6(Ipv6Addr::from(*daddr)))),
        _ => None,
    }
}

fn protocol_name(p: u16) -> String {
    match p {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        1 => "icmp".to_string(),
        58 => "icmpv6".to_string(),
        136 => "udplite".to_string(),
        262 => "mptcp".to_string(),
        n => format!("ip-proto-{n}"),
    }
}

pub fn ptrace_request_name(r: i64) -> String {
    match r {
        1 => "PTRACE_PEEKTEXT".into(),
        2 => "PTRACE_PEEKDATA".into(),
        3 => "PTRACE_PEEKUSER".into(),
        4 => "PTRACE_POKETEXT".into(),
        5 => "PTRACE_POKEDATA".into(),
        6 => "PTRACE_POKEUSER".into(),
        12 => "PTRACE_GETREGS".into(),
        13 => "PTRACE_SETREGS".into(),
        14 => "PTRACE_GETFPREGS".into(),
        15 => "PTRACE_SETFPREGS".into(),
        16 => "PTRACE_ATTACH".into(),
        0x4204 => "PTRACE_GETREGSET".into(),
        0x4205 => "PTRACE_SETREGSET".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        n => format!("ptrace request {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{FileEvent, Header, NetEvent, PATH_BUF};

    fn header(kind: u32, pid: u32, comm: &str) -> Header {
        let mut h = Header {
            kind,
            pid,
            tid: pid,
            ppid: 1,
            uid: 0,
            ..Default::default()
        };
        h.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        h
    }

    fn file_event(path_leaf_first: &[u8], ret: i32, fmode: u32, comm: &str) -> FileEvent {
        let mut e = FileEvent {
            hdr: header(events::EV_FILE, 4_000_000, comm),
            ret,
            flags: 0,
            fmode,
            path_flags: 0,
            dev: 1,
            ino: 2,
            path_len: path_leaf_first.len() as u16,
            path_depth: 3,
            req_len: 0,
            layout: events::PATH_RESOLVED,
            syscall: 1,
            action: 0,
            _pad: [0; 7],
            path: [0; PATH_BUF],
        };
        e.path[..path_leaf_first.len()].copy_from_slice(path_leaf_first);
        e
    }

    fn with_egress(pol: Policy, show: bool, command: Option<String>) -> Pipeline {
        let plan = crate::egress::Plan::new(&pol, &[]).unwrap();
        Pipeline::new(
            pol,
            ProcTable::default(),
            show,
            command,
            Egress::new(plan, None),
        )
    }

    fn pipeline() -> Pipeline {
        with_egress(Policy::default_policy(), true, None)
    }

    #[test]
    fn judges_a_key_read_by_path_and_program() {
        let mut p = pipeline();
        let ev = p
            .handle(Raw::File(Box::new(file_event(
                b"id_rsa\0.ssh\0root\0",
                3,
                1,
                "cat",
            ))))
            .unwrap();
        assert_eq!(ev.severity, Severity::Critical);
        match &ev.detail {
            Detail::File {
                path,
                access,
                result,
                category,
                ..
            } => {
                assert_eq!(path, "/root/.ssh/id_rsa");
                assert_eq!(*access, "read");
                assert_eq!(result, "ok");
                assert_eq!(category, "ssh_key");
            }
            d => panic!("{d:?}"),
        }
        let ev = p
            .handle(Raw::File(Box::new(file_event(
                b"id_rsa\0.ssh\0root\0",
                3,
                1,
                "ssh",
            ))))
            .unwrap();
        assert_eq!(
            ev.severity,
            Severity::Critical,
            "a process named ssh is not the ssh program"
        );
        let mut public = file_event(b"id_rsa.pub\0.ssh\0root\0", 3, 1, "cat");
        public.ino = 3;
        assert!(p.handle(Raw::File(Box::new(public))).is_none());
        assert_eq!(p.stats.filtered, 1);
        assert_eq!(p.learned_inodes.len(), 1, "one inode learned, once");

        // The same inode under a name no rule matches: a hardlink.
        let ev = p
            .handle(Raw::File(Box::new(file_event(
                b"innocent\0tmp\0",
                3,
                1,
                "cat",
            ))))
            .unwrap();
        match &ev.detail {
            Detail::File {
                path,
                same_inode_as,
                category,
                ..
            } => {
                assert_eq!(path, "/tmp/innocent");
                assert_eq!(same_inode_as.as_deref(), Some("/root/.ssh/id_rsa"));
                assert_eq!(category, "ssh_key");
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_kill_is_never_filtered_and_is_never_downgraded() {
        let mut p = pipeline();
        // The kernel killed the opener of an armed inode no rule names.
        let mut e = file_event(b"notes\0tmp\0", 3, 1, "ssh");
        e.action = events::FILE_KILLED;
        let ev = p.handle(Raw::File(Box::new(e))).unwrap();
        assert_eq!(ev.severity, Severity::Critical);
        assert!(matches!(
            &ev.detail,
            Detail::File { action: Some("killed"), category, .. } if category == "tripwire"
        ));
        // An expected program killed on a key is still critical.
        let mut e = file_event(b"id_rsa\0.ssh\0root\0", 3, 1, "ssh");
        e.ino = 9;
        e.action = events::FILE_KILLED;
        let ev = p.handle(Raw::File(Box::new(e))).unwrap();
        assert_eq!(ev.severity, Severity::Critical);
    }

    #[test]
    fn write_opens_of_protected_files_are_writes() {
        let mut p = pipeline();
        assert!(p
            .handle(Raw::File(Box::new(file_event(
                b"passwd\0etc\0",
                3,
                1,
                "cat"
            ))))
            .is_none());
        let ev = p
            .handle(Raw::File(Box::new(file_event(
                b"passwd\0etc\0",
                3,
                FMODE_WRITE | 1,
                "tee",
            ))))
            .unwrap();
        assert!(matches!(
            ev.detail,
            Detail::File {
                access: "write",
                ..
            }
        ));
    }

    #[test]
    fn network_events_carry_destination_and_policy() {
        let mut pol = Policy::from_yaml(
            "network:\n  blocked_ips: [\"10.9.0.0/16\"]\n",
            std::path::Path::new("t"),
        )
        .unwrap();
        pol.monitored_ports.clear();
        let mut p = with_egress(pol, false, Some("curl".into()));
        let mut n = NetEvent {
            hdr: header(events::EV_NET, 4_000_001, "curl"),
            ret: -111,
            family: 2,
            dport: 443,
            protocol: 6,
            sock_type: 1,
            ..Default::default()
        };
        n.daddr[..4].copy_from_slice(&[10, 8, 1, 2]);
        let ev = p.handle(Raw::Net(n)).unwrap();
        assert_eq!(ev.severity, Severity::Info);
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["daddr"], "10.8.1.2");
        assert_eq!(v["op"], "connect");
        assert_eq!(v["protocol"], "tcp");
        assert_eq!(v["result"], "ECONNREFUSED");
        assert!(v.get("action").is_none());

        // The egress hook refuses a connect into the blocked CIDR ...
        let mut g = events::EgressEvent {
            hdr: header(events::EV_EGRESS, 4_000_001, "curl"),
            rule: p.egress.plan().block[0].1,
            family: 2,
            dport: 443,
            protocol: 6,
            action: events::ACT_BLOCKED,
            hook: events::HOOK_CONNECT,
            ..Default::default()
        };
        g.daddr[..4].copy_from_slice(&[10, 9, 1, 2]);
        let ev = p.handle(Raw::Egress(g)).unwrap();
        assert_eq!(ev.severity, Severity::High);
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["action"], "blocked");
        assert_eq!(v["result"], "EPERM");
        assert_eq!(v["rule"], "network.blocked_ips: 10.9.0.0/16");
        assert_eq!(v["policy"], "blocked_ip");
        // ... and the tracepoint's record of the same call is folded into it.
        n.hdr = header(events::EV_NET, 4_000_001, "curl");
        n.ret = -1;
        n.daddr[..4].copy_from_slice(&[10, 9, 1, 2]);
        assert!(p.handle(Raw::Net(n)).is_none());

        n.hdr = header(events::EV_NET, 4_000_001, "wget");
        n.daddr[..4].copy_from_slice(&[10, 7, 1, 2]);
        assert!(p.handle(Raw::Net(n)).is_none(), "--command filters by comm");
    }
}
