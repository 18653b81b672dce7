//! Loading and attaching the BPF programs, one skeleton per probe family, and
//! what each attach gave. Links live here: dropping `Sensors` detaches all.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use crate::events::{
    as_bytes, AffixKey, FileCfg, InodeKey, NameKey, AFFIX_LENS, INODE_HINTS, INODE_WATCH, KEY_LEN,
};
use crate::policy::KernelFilter;

mod file_skel {
    include!(concat!(env!("OUT_DIR"), "/file.skel.rs"));
}
mod mem_skel {
    include!(concat!(env!("OUT_DIR"), "/mem.skel.rs"));
}
mod net_skel {
    include!(concat!(env!("OUT_DIR"), "/net.skel.rs"));
}
mod process_skel {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}
mod egress_skel {
    include!(concat!(env!("OUT_DIR"), "/egress.skel.rs"));
}
mod guard;
use egress_skel::{EgressSkel, EgressSkelBuilder};
use file_skel::{FileSkel, FileSkelBuilder};
pub use guard::LinkBaseline;
use guard::TamperSkel;
use mem_skel::{MemSkel, MemSkelBuilder};
use net_skel::{NetSkel, NetSkelBuilder};
use process_skel::{ProcessSkel, ProcessSkelBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Process,
    File,
    Network,
    Memory,
    /// What is done to bee-trace itself (always runs).
    Tamper,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Process => "process",
            Family::File => "file",
            Family::Network => "network",
            Family::Memory => "memory",
            Family::Tamper => "tamper",
        }
    }
}

/// Which families to run.
#[derive(Debug, Clone, Copy)]
pub struct Selection {
    pub file: bool,
    pub network: bool,
    pub memory: bool,
}

/// One probe's outcome, for `bee-trace check` and for start-up errors.
#[derive(Debug, Clone)]
pub struct ProbeStatus {
    pub family: Family,
    pub probe: String,
    pub outcome: Result<(), String>,
}

/// Which hooks the families built on syscalls (file, memory, network) use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMode {
    /// fexit on each syscall's own kernel function where this kernel allows
    /// it (no syscall tracepoint, so other syscalls pay nothing), else the
    /// syscall tracepoints.
    Auto,
    /// Always the syscall tracepoints.
    Tracepoints,
    /// fexit or nothing: a kernel that refuses it is an error.
    Fexit,
}

/// What one family was hooked with, and why not fexit when it is not.
#[derive(Debug, Clone)]
pub struct HookChoice {
    pub family: Family,
    pub fexit: bool,
    /// Why the fexit programs were not used (the kernel's reason), when
    /// they were tried and refused.
    pub refused: Option<String>,
}

impl HookChoice {
    pub fn hook(&self) -> &'static str {
        if self.fexit {
            "fexit"
        } else {
            "tracepoints"
        }
    }
}

/// While set, libbpf's warnings are logged at debug level: a refused
/// optional fexit program is an expected outcome, reported once by bee-trace
/// in its own words, not as libbpf's multi-line complaint.
pub static PROBING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The fexit probe name of a syscall's kernel function on this architecture.
fn syscall_fexit(name: &str) -> String {
    let prefix = if cfg!(target_arch = "aarch64") {
        "__arm64_sys_"
    } else {
        "__x64_sys_"
    };
    format!("fexit/{prefix}{name}")
}

/// Why an fexit set did not load, in short: the kernel's answer.
fn load_refusal(e: &libbpf_rs::Error) -> String {
    format!("load: {e}")
}

/// Attaches every program of an fexit set, or says which one the kernel
/// refused and why (the links made so far are dropped, so detached).
fn attach_fexit(progs: &[(String, &libbpf_rs::ProgramMut<'_>)]) -> Result<Vec<Link>, String> {
    let mut links = Vec::new();
    for (name, prog) in progs {
        links.push(
            prog.attach()
                .map_err(|e| format!("{name}: {}", explain(&e)))?,
        );
    }
    Ok(links)
}

/// A ring buffer to poll, owned independently of its skeleton.
pub struct RingSource {
    pub family: Family,
    pub map: MapHandle,
}

pub struct Sensors {
    process: Option<ProcessSkel<'static>>,
    file: Option<FileSkel<'static>>,
    net: Option<NetSkel<'static>>,
    mem: Option<MemSkel<'static>>,
    egress: Option<EgressSkel<'static>>,
    tamper: Option<TamperSkel<'static>>,
    /// Where the egress programs are attached (the cgroup v2 root).
    pub cgroup_root: Option<std::path::PathBuf>,
    /// Each link with the index of its probe in `status`.
    links: Vec<(usize, Link)>,
    pub status: Vec<ProbeStatus>,
    pub hooks: Vec<HookChoice>,
}

/// Skeletons borrow their object storage for as long as they live; they live
/// until exit, so the storage is simply never freed.
fn storage() -> &'static mut MaybeUninit<OpenObject> {
    Box::leak(Box::new(MaybeUninit::uninit()))
}

/// A kernel refusal in words a user can act on.
pub fn explain(err: &libbpf_rs::Error) -> String {
    let raw = err.to_string();
    let hint = match err.kind() {
        libbpf_rs::ErrorKind::PermissionDenied => {
            " (the kernel refused: run as root; lockdown, a seccomp filter or kernel.unprivileged_bpf_disabled may also forbid it)"
        }
        libbpf_rs::ErrorKind::NotFound => " (this kernel lacks the hook or a type it needs: check `scripts/check-kernel.sh`)",
        libbpf_rs::ErrorKind::InvalidInput => " (the verifier rejected the program: run with --verbose to see its log)",
        _ => "",
    };
    format!("{raw}{hint}")
}

fn attach_one(
    family: Family,
    name: &str,
    prog: &libbpf_rs::ProgramMut<'_>,
    links: &mut Vec<(usize, Link)>,
    status: &mut Vec<ProbeStatus>,
) {
    let at = status.len();
    let outcome = prog
        .attach()
        .map(|l| links.push((at, l)))
        .map_err(|e| explain(&e));
    status.push(ProbeStatus {
        family,
        probe: name.to_string(),
        outcome,
    });
}

fn load_failed(
    family: Family,
    probes: &[&str],
    err: &libbpf_rs::Error,
    status: &mut Vec<ProbeStatus>,
) {
    let why = explain(err);
    for p in probes {
        status.push(ProbeStatus {
            family,
            probe: p.to_string(),
            outcome: Err(format!("load failed: {why}")),
        });
    }
}

const PROCESS_PROBES: &[&str] = &[
    "sched/sched_process_exec",
    "raw_tp/sched_process_fork",
    "sched/sched_process_exit",
];
const MEM_PROBES: &[&str] = &[
    "syscalls/sys_exit_ptrace",
    "syscalls/sys_exit_process_vm_readv",
    "syscalls/sys_exit_process_vm_writev",
];
const NET_PROBES: &[&str] = &["syscalls/sys_exit_connect"];
pub const EGRESS_PROBES: &[&str] = &[
    "cgroup/connect4",
    "cgroup/connect6",
    "cgroup/sendmsg4",
    "cgroup/sendmsg6",
    "cgroup_skb/egress (DNS queries)",
    "cgroup_skb/ingress (DNS answers)",
];

impl Sensors {
    /// Loads and attaches what `sel` asks for (the process family always runs:
    /// it names everyone else's processes). Never fails as a whole: each
    /// probe's outcome is in `status`.
    pub fn start(
        sel: Selection,
        hooks: HookMode,
        tracefs: &Path,
        filter: &KernelFilter,
        inodes: &[(InodeKey, u8)],
    ) -> Sensors {
        let self_tgid = std::process::id();
        let mut s = Sensors {
            process: None,
            file: None,
            net: None,
            mem: None,
            egress: None,
            tamper: None,
            cgroup_root: None,
            links: Vec::new(),
            status: Vec::new(),
            hooks: Vec::new(),
        };

        match Self::load_process(self_tgid) {
            Ok(skel) => {
                attach_one(
                    Family::Process,
                    PROCESS_PROBES[0],
                    &skel.progs.handle_exec,
                    &mut s.links,
                    &mut s.status,
                );
                attach_one(
                    Family::Process,
                    PROCESS_PROBES[1],
                    &skel.progs.handle_fork,
                    &mut s.links,
                    &mut s.status,
                );
                attach_one(
                    Family::Process,
                    PROCESS_PROBES[2],
                    &skel.progs.handle_exit,
                    &mut s.links,
                    &mut s.status,
                );
                s.process = Some(skel);
            }
            Err(e) => load_failed(Family::Process, PROCESS_PROBES, &e, &mut s.status),
        }

        if sel.memory {
            s.mem = s.hook_family(
                hooks,
                Family::Memory,
                || {
                    let skel = Self::load_mem(self_tgid, true).map_err(|e| load_refusal(&e))?;
                    let names =
                        ["ptrace", "process_vm_readv", "process_vm_writev"].map(syscall_fexit);
                    let links = attach_fexit(&[
                        (names[0].clone(), &skel.progs.fexit_ptrace),
                        (names[1].clone(), &skel.progs.fexit_vm_readv),
                        (names[2].clone(), &skel.progs.fexit_vm_writev),
                    ])?;
                    Ok((skel, links, names.to_vec()))
                },
                |s| match Self::load_mem(self_tgid, false) {
                    Ok(skel) => {
                        for (name, prog) in MEM_PROBES.iter().zip([
                            &skel.progs.handle_ptrace_exit,
                            &skel.progs.handle_vm_readv_exit,
                            &skel.progs.handle_vm_writev_exit,
                        ]) {
                            attach_one(Family::Memory, name, prog, &mut s.links, &mut s.status);
                        }
                        Some(skel)
                    }
                    Err(e) => {
                        load_failed(Family::Memory, MEM_PROBES, &e, &mut s.status);
                        None
                    }
                },
            );
        }

        if sel.file || sel.memory {
            // The open programs serve both families: file opens for one,
            // /proc/<pid>/{mem,environ,maps} opens for the other.
            let family = if sel.file {
                Family::File
            } else {
                Family::Memory
            };
            let mem = s.mem.take();
            s.file = s.hook_family(
                hooks,
                family,
                || {
                    let skel =
                        Self::load_file(self_tgid, sel, false, mem.as_ref(), filter, inodes, true)
                            .map_err(|e| load_refusal(&e))?;
                    let name = "fexit/do_filp_open".to_string();
                    let links = attach_fexit(&[(name.clone(), &skel.progs.fexit_do_filp_open)])?;
                    Ok((skel, links, vec![name]))
                },
                |s| {
                    let has_open = crate::sys::has_tracepoint(tracefs, "syscalls", "sys_exit_open");
                    let mut probes = vec!["syscalls/sys_exit_openat", "syscalls/sys_exit_openat2"];
                    if has_open {
                        probes.push("syscalls/sys_exit_open");
                    }
                    match Self::load_file(
                        self_tgid,
                        sel,
                        has_open,
                        mem.as_ref(),
                        filter,
                        inodes,
                        false,
                    ) {
                        Ok(skel) => {
                            for (name, prog) in probes.iter().zip([
                                &skel.progs.handle_openat_exit,
                                &skel.progs.handle_openat2_exit,
                                &skel.progs.handle_open_exit,
                            ]) {
                                attach_one(family, name, prog, &mut s.links, &mut s.status);
                            }
                            Some(skel)
                        }
                        Err(e) => {
                            load_failed(family, &probes, &e, &mut s.status);
                            None
                        }
                    }
                },
            );
            s.mem = mem;
        }

        if sel.network {
            s.net = s.hook_family(
                hooks,
                Family::Network,
                || {
                    let skel = Self::load_net(self_tgid, true).map_err(|e| load_refusal(&e))?;
                    let name = syscall_fexit("connect");
                    let links = attach_fexit(&[(name.clone(), &skel.progs.fexit_connect)])?;
                    Ok((skel, links, vec![name]))
                },
                |s| match Self::load_net(self_tgid, false) {
                    Ok(skel) => {
                        attach_one(
                            Family::Network,
                            NET_PROBES[0],
                            &skel.progs.handle_connect_exit,
                            &mut s.links,
                            &mut s.status,
                        );
                        Some(skel)
                    }
                    Err(e) => {
                        load_failed(Family::Network, NET_PROBES, &e, &mut s.status);
                        None
                    }
                },
            );
            s.start_egress(self_tgid);
        }
        // Last, so it can be told about every object the others made.
        s.start_tamper(self_tgid, hooks);
        s
    }

    /// Hooks one syscall family: its fexit set first (unless `mode` rules it
    /// out), else, unless `mode` demands fexit, its tracepoint set. Records
    /// the choice in `hooks` and returns the skeleton in use, if any.
    fn hook_family<S>(
        &mut self,
        mode: HookMode,
        family: Family,
        fexit: impl FnOnce() -> Result<(S, Vec<Link>, Vec<String>), String>,
        tracepoints: impl FnOnce(&mut Sensors) -> Option<S>,
    ) -> Option<S> {
        let refused = match self.try_fexit(mode, family, fexit) {
            Ok(skel) => return Some(skel),
            Err(why) => why,
        };
        if mode == HookMode::Fexit {
            return None;
        }
        let skel = tracepoints(self);
        self.hooks.push(HookChoice {
            family,
            fexit: false,
            refused,
        });
        skel
    }

    /// Tries a family's fexit set (unless `mode` rules it out): on success
    /// its links and statuses are kept and the skeleton returned. On refusal
    /// the error is the kernel's reason; with `HookMode::Fexit` the refusal
    /// is also recorded as a failed probe, since there is no fallback.
    /// `Err(None)` means fexit was not tried.
    fn try_fexit<S>(
        &mut self,
        mode: HookMode,
        family: Family,
        attempt: impl FnOnce() -> Result<(S, Vec<Link>, Vec<String>), String>,
    ) -> Result<S, Option<String>> {
        if mode == HookMode::Tracepoints {
            return Err(None);
        }
        PROBING.store(true, std::sync::atomic::Ordering::Relaxed);
        let outcome = attempt();
        PROBING.store(false, std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok((skel, links, names)) => {
                let at = self.status.len();
                self.links
                    .extend(links.into_iter().enumerate().map(|(i, l)| (at + i, l)));
                for probe in names {
                    self.status.push(ProbeStatus {
                        family,
                        probe,
                        outcome: Ok(()),
                    });
                }
                self.hooks.push(HookChoice {
                    family,
                    fexit: true,
                    refused: None,
                });
                Ok(skel)
            }
            Err(why) => {
                if mode == HookMode::Fexit {
                    self.status.push(ProbeStatus {
                        family,
                        probe: "fexit".into(),
                        outcome: Err(format!("refused (--hooks fexit has no fallback): {why}")),
                    });
                    self.hooks.push(HookChoice {
                        family,
                        fexit: true,
                        refused: Some(why.clone()),
                    });
                } else {
                    log::info!(
                        "{} family: fexit refused ({why}); using the syscall tracepoints",
                        family.as_str()
                    );
                }
                Err(Some(why))
            }
        }
    }

    /// The cgroup sock_addr programs and the DNS query and answer skb
    /// programs, at the cgroup v2 root so every process on the host passes
    /// through them.
    fn start_egress(&mut self, self_tgid: u32) {
        let fail = |s: &mut Sensors, why: String| {
            for p in EGRESS_PROBES {
                s.status.push(ProbeStatus {
                    family: Family::Network,
                    probe: p.to_string(),
                    outcome: Err(why.clone()),
                });
            }
        };
        let Some(net) = &self.net else {
            return fail(self, "needs the connect sensor, which did not load".into());
        };
        let (cg, path) = match crate::sys::open_cgroup2_root() {
            Ok(x) => x,
            Err(e) => return fail(self, e),
        };
        let skel = match Self::load_egress(self_tgid, net) {
            Ok(s) => s,
            Err(e) => return fail(self, format!("load failed: {}", explain(&e))),
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&cg);
        for (name, prog) in EGRESS_PROBES.iter().zip([
            &skel.progs.egress_connect4,
            &skel.progs.egress_connect6,
            &skel.progs.egress_sendmsg4,
            &skel.progs.egress_sendmsg6,
            &skel.progs.egress_dnsq,
            &skel.progs.egress_dns,
        ]) {
            let at = self.status.len();
            let outcome = prog
                .attach_cgroup(fd)
                .map(|l| self.links.push((at, l)))
                .map_err(|e| explain(&e));
            self.status.push(ProbeStatus {
                family: Family::Network,
                probe: name.to_string(),
                outcome,
            });
        }
        // The links hold the cgroup; the directory fd is not needed any more.
        drop(cg);
        self.cgroup_root = Some(path);
        self.egress = Some(skel);
    }

    fn load_egress(
        self_tgid: u32,
        net: &NetSkel<'static>,
    ) -> libbpf_rs::Result<EgressSkel<'static>> {
        // DNS answers are learned only for sockets of this namespace (the
        // host's): without its cookie, none is.
        let host_netns = crate::egress::own_netns_cookie().unwrap_or_else(|e| {
            log::warn!(
                "cannot read the cookie of bee-trace's network namespace ({e}): DNS answers will not be learned"
            );
            0
        });
        log::debug!("DNS answers are learned for sockets of network namespace cookie {host_netns}");
        let mut open = EgressSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
            ro.host_netns = host_netns;
        }
        open.maps.net_events.reuse_fd(net.maps.net_events.as_fd())?;
        open.load()
    }

    /// Handles on the egress maps, for the processing thread.
    pub fn egress_maps(&self) -> Option<crate::egress::EgressMaps> {
        let s = self.egress.as_ref()?;
        let h = |m: &libbpf_rs::Map<'_>| MapHandle::try_from(m).ok();
        Some(crate::egress::EgressMaps {
            cfg: h(&s.maps.egress_cfg)?,
            block4: h(&s.maps.block4)?,
            block6: h(&s.maps.block6)?,
            allow4: h(&s.maps.allow4)?,
            allow6: h(&s.maps.allow6)?,
            ports: h(&s.maps.blocked_ports)?,
            resolvers4: h(&s.maps.resolvers4)?,
            resolvers6: h(&s.maps.resolvers6)?,
            dns: h(&s.maps.dns_rules),
        })
    }

    fn load_process(self_tgid: u32) -> libbpf_rs::Result<ProcessSkel<'static>> {
        let mut open = ProcessSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        open.load()
    }

    /// Each loader loads either the fexit set or the tracepoint set of its
    /// family, never both.
    fn load_mem(self_tgid: u32, fexit: bool) -> libbpf_rs::Result<MemSkel<'static>> {
        let mut open = MemSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        let p = &mut open.progs;
        for prog in [
            &mut p.handle_ptrace_exit,
            &mut p.handle_vm_readv_exit,
            &mut p.handle_vm_writev_exit,
        ] {
            prog.set_autoload(!fexit);
        }
        for prog in [
            &mut p.fexit_ptrace,
            &mut p.fexit_vm_readv,
            &mut p.fexit_vm_writev,
        ] {
            prog.set_autoload(fexit);
        }
        open.load()
    }

    fn load_net(self_tgid: u32, fexit: bool) -> libbpf_rs::Result<NetSkel<'static>> {
        let mut open = NetSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        open.progs.handle_connect_exit.set_autoload(!fexit);
        open.progs.fexit_connect.set_autoload(fexit);
        open.load()
    }

    fn load_file(
        self_tgid: u32,
        sel: Selection,
        has_open: bool,
        mem: Option<&MemSkel<'static>>,
        filter: &KernelFilter,
        inodes: &[(InodeKey, u8)],
        fexit: bool,
    ) -> libbpf_rs::Result<FileSkel<'static>> {
        let mut open = FileSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
            ro.watch_files = sel.file;
            ro.watch_proc = sel.memory;
        }
        let p = &mut open.progs;
        p.handle_openat_exit.set_autoload(!fexit);
        p.handle_openat2_exit.set_autoload(!fexit);
        p.handle_open_exit.set_autoload(!fexit && has_open);
        p.fexit_do_filp_open.set_autoload(fexit);
        if let Some(mem) = mem {
            open.maps.mem_events.reuse_fd(mem.maps.mem_events.as_fd())?;
            open.maps.mem_lost.reuse_fd(mem.maps.mem_lost.as_fd())?;
        }
        let mut skel = open.load()?;
        apply_file_filter(&mut skel, &KernelFilter::default(), filter, inodes, &[])?;
        Ok(skel)
    }

    /// The ring buffers to poll, one per running family.
    pub fn ring_sources(&self) -> Result<Vec<RingSource>> {
        let mut out = Vec::new();
        if let Some(s) = &self.process {
            out.push(RingSource {
                family: Family::Process,
                map: MapHandle::try_from(&s.maps.process_events)?,
            });
        }
        if let Some(s) = &self.file {
            if s.maps.rodata_data.is_some_and(|r| r.watch_files) {
                out.push(RingSource {
                    family: Family::File,
                    map: MapHandle::try_from(&s.maps.file_events)?,
                });
            }
        }
        if let Some(s) = &self.net {
            out.push(RingSource {
                family: Family::Network,
                map: MapHandle::try_from(&s.maps.net_events)?,
            });
        }
        if let Some(s) = &self.mem {
            out.push(RingSource {
                family: Family::Memory,
                map: MapHandle::try_from(&s.maps.mem_events)?,
            });
        }
        if let Some(map) = self.tamper_ring() {
            out.push(RingSource {
                family: Family::Tamper,
                map,
            });
        }
        Ok(out)
    }

    /// Records the kernel could not queue (ring buffer full), per family.
    pub fn kernel_lost(&self) -> Vec<(Family, u64)> {
        fn sum(map: &dyn MapCore) -> u64 {
            map.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .map(|cpus| {
                    cpus.iter()
                        .map(|v| {
                            v.get(..8)
                                .and_then(|b| b.try_into().ok())
                                .map(u64::from_ne_bytes)
                                .unwrap_or(0)
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        let mut out = Vec::new();
        if let Some(s) = &self.process {
            out.push((Family::Process, sum(&s.maps.process_lost)));
        }
        if let Some(s) = &self.file {
            out.push((Family::File, sum(&s.maps.file_lost)));
        }
        if let Some(s) = &self.net {
            let egress = self.egress.as_ref().map_or(0, |e| sum(&e.maps.egress_lost));
            out.push((Family::Network, sum(&s.maps.net_lost) + egress));
        }
        if let Some(s) = &self.mem {
            out.push((Family::Memory, sum(&s.maps.mem_lost)));
        } else if let Some(s) = &self.file {
            out.push((Family::Memory, sum(&s.maps.mem_lost)));
        }
        if let Some(m) = self.tamper_lost() {
            out.push((Family::Tamper, sum(m)));
        }
        out
    }

    /// Teaches the kernel one more sensitive inode (a file seen matching the
    /// policy), so a later hardlink to it is caught under any name.
    pub fn watch_inode(&self, key: InodeKey) {
        if let Some(s) = &self.file {
            if let Err(e) = add_inode(s, &key, INODE_WATCH) {
                log::debug!("inode filter full or refused: {e}");
            }
        }
    }

    /// Puts a reloaded policy's file filter in place (see
    /// `apply_file_filter`).
    pub fn update_file_filter(
        &mut self,
        old: &KernelFilter,
        new: &KernelFilter,
        inodes: &[(InodeKey, u8)],
        disarm: &[InodeKey],
    ) -> libbpf_rs::Result<()> {
        match self.file.as_mut() {
            Some(skel) => apply_file_filter(skel, old, new, inodes, disarm),
            None => Ok(()),
        }
    }

    /// Detaches every program; the ring buffers stay readable for draining.
    pub fn detach(&mut self) {
        self.links.clear();
    }

    pub fn failures(&self) -> impl Iterator<Item = &ProbeStatus> {
        self.status.iter().filter(|s| s.outcome.is_err())
    }
}

fn name_key(s: &str) -> NameKey {
    let mut k = NameKey { name: [0; KEY_LEN] };
    let b = s.as_bytes();
    k.name[..b.len()].copy_from_slice(b);
    k
}

fn affix_key(s: &str) -> AffixKey {
    let mut k = AffixKey {
        len: s.len() as u32,
        ..Default::default()
    };
    k.s[..s.len()].copy_from_slice(s.as_bytes());
    k
}

/// Map keys for one of the filter's sets: (all of `new`, those only `old` has).
fn key_sets(
    new: &std::collections::BTreeSet<String>,
    old: &std::collections::BTreeSet<String>,
    key: impl Fn(&str) -> Vec<u8>,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    (
        new.iter().map(|n| key(n)).collect(),
        old.difference(new).map(|n| key(n)).collect(),
    )
}

/// Puts a file filter in place with no moment in which an open either the
/// old or the new one watches goes unseen: the new keys go in first, then the
/// new configuration into the idle slot, which is then made active, and only
/// then do the keys only `old` needed go. `inodes` are the files to watch
/// with their flags; `disarm` the tripwires no longer armed (they stay
/// watched). At load, `old` is empty.
fn apply_file_filter(
    skel: &mut FileSkel<'static>,
    old: &KernelFilter,
    new: &KernelFilter,
    inodes: &[(InodeKey, u8)],
    disarm: &[InodeKey],
) -> libbpf_rs::Result<()> {
    let one = 1u32.to_ne_bytes();
    let name = |n: &str| as_bytes(&name_key(n)).to_vec();
    let affix = |n: &str| as_bytes(&affix_key(n)).to_vec();
    let sets: [(&dyn MapCore, _); 4] = [
        (
            &skel.maps.name_filter,
            key_sets(&new.names, &old.names, name),
        ),
        (
            &skel.maps.parent_filter,
            key_sets(&new.parents, &old.parents, name),
        ),
        (
            &skel.maps.prefix_filter,
            key_sets(&new.prefixes, &old.prefixes, affix),
        ),
        (
            &skel.maps.suffix_filter,
            key_sets(&new.suffixes, &old.suffixes, affix),
        ),
    ];
    for (map, (add, _)) in &sets {
        for k in add {
            map.update(k, &one, MapFlags::ANY)?;
        }
    }
    for (k, flags) in inodes {
        add_inode(skel, k, *flags)?;
    }
    for k in disarm {
        // Exactly WATCH: the kill bit goes, the hardlink check stays.
        skel.maps.inode_filter.update(
            as_bytes(k),
            &u32::from(INODE_WATCH).to_ne_bytes(),
            MapFlags::ANY,
        )?;
    }
    let bss = skel.maps.bss_data.as_deref_mut();
    let idle = bss.as_ref().map_or(0, |b| b.cfg_slot & 1) ^ 1;
    skel.maps
        .file_cfg
        .update(&idle.to_ne_bytes(), as_bytes(&file_cfg(new)), MapFlags::ANY)?;
    if let Some(b) = bss {
        // SAFETY: cfg_slot lives in the program's mmapped .bss; a volatile
        // aligned u32 store is seen whole by the programs.
        unsafe { std::ptr::write_volatile(&mut b.cfg_slot, idle) };
    }
    for (map, (_, stale)) in &sets {
        for k in stale {
            let _ = map.delete(k);
        }
    }
    Ok(())
}

/// Adds an inode to the hardlink check (`flags`: INODE_WATCH, with
/// INODE_KILL for a tripwire), keeping any flag it already has. The hint slot
/// goes first, so the kernel never skips a key that is already in the map.
fn add_inode(skel: &FileSkel<'static>, k: &InodeKey, flags: u8) -> libbpf_rs::Result<()> {
    let slot = ((k.ino % INODE_HINTS) as u32).to_ne_bytes();
    let hint = &skel.maps.inode_hint;
    let old_hint = hint
        .lookup(&slot, MapFlags::ANY)?
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    hint.update(&slot, &[old_hint | flags], MapFlags::ANY)?;
    let filter = &skel.maps.inode_filter;
    let old = filter
        .lookup(as_bytes(k), MapFlags::ANY)?
        .and_then(|v| v.get(..4).and_then(|b| b.try_into().ok()))
        .map(u32::from_ne_bytes)
        .unwrap_or(0);
    filter.update(
        as_bytes(k),
        &(old | u32::from(flags)).to_ne_bytes(),
        MapFlags::ANY,
    )
}

fn set_byte(set: &mut [u64; 4], c: u8) {
    set[usize::from(c >> 6)] |= 1 << (c & 63);
}

/// The cheap facts the kernel checks before any hash lookup.
fn file_cfg(f: &KernelFilter) -> FileCfg {
    let mut cfg = FileCfg {
        match_all: u32::from(!f.match_all.is_empty()),
        ..Default::default()
    };
    for n in &f.names {
        cfg.name_lens |= 1 << n.len();
        set_byte(&mut cfg.name_last, *n.as_bytes().last().unwrap_or(&0));
    }
    for n in &f.parents {
        cfg.parent_lens |= 1 << n.len();
        set_byte(&mut cfg.parent_last, *n.as_bytes().last().unwrap_or(&0));
    }
    let mut lens = std::collections::BTreeSet::new();
    for p in &f.prefixes {
        set_byte(&mut cfg.prefix_first, p.as_bytes()[0]);
        lens.insert(p.len() as u8);
    }
    for (slot, l) in cfg.prefix_len.iter_mut().zip(&lens) {
        *slot = *l;
    }
    lens.clear();
    for p in &f.suffixes {
        set_byte(&mut cfg.suffix_last, *p.as_bytes().last().unwrap_or(&0));
        lens.insert(p.len() as u8);
    }
    for (slot, l) in cfg.suffix_len.iter_mut().zip(&lens) {
        *slot = *l;
    }
    debug_assert!(lens.len() <= AFFIX_LENS);
    cfg
}

/// The kernel's dev_t for a userspace st_dev (major << 20 | minor).
pub fn kernel_dev(st_dev: u64) -> u64 {
    let major = libc::major(st_dev) as u64;
    let minor = libc::minor(st_dev) as u64;
    (major << 20) | minor
}

/// Inode keys of existing files, for the hardlink check.
pub fn seed_inodes(paths: &[std::path::PathBuf]) -> Vec<(InodeKey, std::path::PathBuf)> {
    paths
        .iter()
        .filter_map(|p| {
            let (dev, ino) = seed_inode(p)?;
            Some((
                InodeKey {
                    dev: kernel_dev(dev),
                    ino,
                },
                p.clone(),
            ))
        })
        .collect()
}

/// The file `path` names, for watching by inode. A name that is a link is
/// followed only to a file of the link's owner (or any, for root's link):
/// whoever owns the directory can point a link at any file of the host's,
/// and every reader of that file would then be reported reading the
/// watched one. The name is looked at once, in its directory's fd: a file
/// found there is taken as it is, never through a link swapped in after.
fn seed_inode(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (parent, name) = crate::fsafe::split(path).ok()?;
    let dir = crate::fsafe::Dir::open(&parent).ok()?;
    let st = dir.stat_at(&name).ok()??;
    if !st.is_symlink() {
        return Some((st.dev, st.ino));
    }
    let m = std::fs::metadata(path).ok()?;
    (st.uid == 0 || m.uid() == st.uid).then(|| (m.dev(), m.ino()))
}

pub fn describe_failures(s: &Sensors) -> Option<String> {
    let lines: Vec<String> = s
        .failures()
        .map(|f| {
            format!(
                "{} probe {}: {}",
                f.family.as_str(),
                f.probe,
                f.outcome.as_ref().err().map(String::as_str).unwrap_or("")
            )
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

pub fn require_all(s: &Sensors) -> Result<()> {
    if let Some(msg) = describe_failures(s) {
        return Err(anyhow::anyhow!("{msg}")).context(
            "the kernel refused probes bee-trace needs (run `bee-trace check` for the full list)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit(set: &[u64; 4], c: u8) -> bool {
        set[usize::from(c >> 6)] >> (c & 63) & 1 == 1
    }

    #[test]
    fn file_cfg_records_the_cheap_facts_of_every_key() {
        let mut f = KernelFilter::default();
        f.names.insert("credentials".into());
        f.parents.insert("sudoers.d".into());
        f.prefixes.insert("id_".into());
        f.prefixes.insert(".env.".into());
        f.suffixes.insert(".pem".into());
        let c = file_cfg(&f);
        assert_eq!(c.match_all, 0);
        assert_eq!(c.name_lens, 1 << 11);
        assert!(bit(&c.name_last, b's') && !bit(&c.name_last, b't'));
        assert_eq!(c.parent_lens, 1 << 9);
        assert!(bit(&c.parent_last, b'd'));
        assert!(bit(&c.prefix_first, b'i') && bit(&c.prefix_first, b'.'));
        assert_eq!(&c.prefix_len[..3], &[3, 5, 0]);
        assert!(bit(&c.suffix_last, b'm'));
        assert_eq!(&c.suffix_len[..2], &[4, 0]);
        f.match_all.push("**/a*b".into());
        assert_eq!(file_cfg(&f).match_all, 1);
    }
}
