//! The kernel side: loading and attaching the BPF programs, one skeleton per
//! probe family (a file each), the hook each syscall family uses, the ring
//! workers, and what each attach gave; the maps user space keeps filled
//! (`file_filter`, `egress_maps`, and `egress_learned`, the network plan in
//! force over a run). Links live here: dropping `Sensors` detaches all.

use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use crate::abi::InodeKey;
use crate::policy::KernelFilter;

mod egress;
pub mod egress_learned;
pub mod egress_maps;
mod file;
mod file_filter;
mod guard;
mod hooks;
mod mem;
mod net;
mod process;
mod share;
pub mod workers;

use egress::EgressSkel;
pub use egress_learned::Egress;
pub use egress_maps::EgressMaps;
use file::FileSkel;
pub use file::{identify, kernel_dev, seed_inodes, Ident};
use guard::TamperSkel;
pub use guard::{Drift, LinkBaseline, OwnObject};
pub use hooks::{libbpf_message, HookChoice, HookMode, PROBING};
use mem::MemSkel;
use net::NetSkel;
use process::ProcessSkel;
pub use share::FoldCounts;

/// A probe family: one skeleton (the file family's also serves memory's
/// /proc opens), one ring buffer, one name in events and reports.
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

/// Which families to run: `--probe-type` (the variants' doc comments are
/// its help). The process and tamper families always run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Selection {
    /// Sensitive file reads and protected file writes.
    #[value(name = "file_monitor")]
    FileMonitor,
    /// Outbound connections.
    #[value(name = "network_monitor")]
    NetworkMonitor,
    /// ptrace, process_vm_readv/writev, /proc/<pid>/{mem,environ,maps}.
    #[value(name = "memory_monitor")]
    MemoryMonitor,
    /// All of the above, plus process exec/exit events.
    All,
}

impl Selection {
    pub fn file(self) -> bool {
        matches!(self, Selection::FileMonitor | Selection::All)
    }

    pub fn network(self) -> bool {
        matches!(self, Selection::NetworkMonitor | Selection::All)
    }

    pub fn memory(self) -> bool {
        matches!(self, Selection::MemoryMonitor | Selection::All)
    }
}

/// One probe's outcome, for `bee-trace check` and for start-up errors.
#[derive(Debug, Clone)]
pub struct ProbeStatus {
    pub family: Family,
    pub probe: String,
    pub outcome: Result<(), ProbeError>,
}

/// Why a probe is not attached, in the words `bee-trace check` and the
/// report use. The kernel's reasons are kept as text, explained: a status
/// is copied into the report, and libbpf's errors cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The kernel refused the attach.
    #[error("{0}")]
    Attach(String),
    /// The family's skeleton did not load.
    #[error("load failed: {0}")]
    Load(String),
    #[error("refused (--hooks fexit has no fallback): {0}")]
    FexitRefused(String),
    #[error("needs the connect sensor, which did not load")]
    NeedsConnect,
    #[error("{0}")]
    Cgroup(String),
    /// Its link was detached or replaced after the start.
    #[error("{0} while bee-trace ran (tampered)")]
    Tampered(String),
}

/// Probes bee-trace needs that the kernel refused, one line each.
#[derive(Debug, thiserror::Error)]
#[error("the kernel refused probes bee-trace needs (run `bee-trace check` for the full list): {0}")]
pub struct MissingProbes(String);

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
    /// The device backstop's tcx links, by interface index (`egress`).
    devices: Vec<(u32, Link)>,
    /// The kernel refused tcx itself (before 6.6): no interface is tried
    /// again, and no new interface is warned about.
    no_tcx: bool,
    pub status: Vec<ProbeStatus>,
    pub hooks: Vec<HookChoice>,
    /// Optional probes this kernel refused, which bee-trace runs without
    /// (said by `bee-trace check` and a warning at start): (family, probe,
    /// why).
    pub skipped: Vec<(Family, &'static str, String)>,
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
            " (the kernel refused: the verifier refuses so too, run with --verbose to see its log; otherwise run as root, as lockdown, a seccomp filter or kernel.unprivileged_bpf_disabled may forbid it)"
        }
        libbpf_rs::ErrorKind::NotFound => " (this kernel lacks the hook or a type it needs: check `scripts/check-kernel.sh`)",
        libbpf_rs::ErrorKind::InvalidInput => " (the verifier rejected the program: run with --verbose to see its log)",
        _ => "",
    };
    format!("{raw}{hint}")
}

/// One program and the name bee-trace reports it by. Each family keeps a
/// table of these, so a name cannot drift from its program.
struct Probe<S: 'static> {
    pub name: &'static str,
    pub prog: fn(&S) -> &libbpf_rs::ProgramMut<'static>,
}

// By hand: a derive would ask S to be Copy, and only the fields need be.
impl<S> Clone for Probe<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Probe<S> {}

impl Sensors {
    /// Attaches one program, its outcome recorded under `name`.
    fn attach_one(&mut self, family: Family, name: &str, prog: &libbpf_rs::ProgramMut<'_>) {
        let at = self.status.len();
        let outcome = prog
            .attach()
            .map(|l| self.links.push((at, l)))
            .map_err(|e| ProbeError::Attach(explain(&e)));
        self.status.push(ProbeStatus {
            family,
            probe: name.to_string(),
            outcome,
        });
    }

    /// Attaches every probe of `set` on a loaded skeleton, or records each
    /// as failed with the reason the skeleton did not load.
    fn attach_loaded<S>(
        &mut self,
        family: Family,
        loaded: libbpf_rs::Result<S>,
        set: &[Probe<S>],
    ) -> Option<S> {
        match loaded {
            Ok(skel) => {
                for p in set {
                    self.attach_one(family, p.name, (p.prog)(&skel));
                }
                Some(skel)
            }
            Err(e) => {
                self.fail_all(family, set, ProbeError::Load(explain(&e)));
                None
            }
        }
    }

    /// Records every probe of `set` as failed for one reason.
    fn fail_all<S>(&mut self, family: Family, set: &[Probe<S>], why: ProbeError) {
        for p in set {
            self.status.push(ProbeStatus {
                family,
                probe: p.name.to_string(),
                outcome: Err(why.clone()),
            });
        }
    }
}

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
            devices: Vec::new(),
            no_tcx: false,
            status: Vec::new(),
            hooks: Vec::new(),
            skipped: Vec::new(),
        };

        s.start_process(self_tgid);
        if sel.memory() {
            s.start_mem(self_tgid, hooks);
        }
        if sel.file() || sel.memory() {
            s.start_file(self_tgid, sel, hooks, tracefs, filter, inodes);
        }
        if sel.network() {
            s.start_net(self_tgid, hooks);
            s.start_egress(self_tgid);
        }
        // Last, so it can be told about every object the others made.
        s.start_tamper(self_tgid, hooks);
        s
    }

    /// The ring buffers to poll, one per running family.
    pub fn ring_sources(&self) -> libbpf_rs::Result<Vec<RingSource>> {
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

    /// Detaches every program; the ring buffers stay readable for draining.
    pub fn detach(&mut self) {
        self.links.clear();
        self.devices.clear();
    }

    pub fn failures(&self) -> impl Iterator<Item = &ProbeStatus> {
        self.status.iter().filter(|s| s.outcome.is_err())
    }
}

pub fn describe_failures(s: &Sensors) -> Option<String> {
    let lines: Vec<String> = s
        .failures()
        .map(|f| {
            format!(
                "{} probe {}: {}",
                f.family.as_str(),
                f.probe,
                f.outcome
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

pub fn require_all(s: &Sensors) -> Result<(), MissingProbes> {
    match describe_failures(s) {
        Some(msg) => Err(MissingProbes(msg)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_errors_read_as_check_and_the_report_print_them() {
        let cases = [
            (ProbeError::Load("no BTF".into()), "load failed: no BTF"),
            (
                ProbeError::FexitRefused("load: EPERM".into()),
                "refused (--hooks fexit has no fallback): load: EPERM",
            ),
            (
                ProbeError::NeedsConnect,
                "needs the connect sensor, which did not load",
            ),
            (
                ProbeError::Tampered("detached from its cgroup".into()),
                "detached from its cgroup while bee-trace ran (tampered)",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        assert!(MissingProbes("file probe x: y".into())
            .to_string()
            .ends_with("for the full list): file probe x: y"));
    }
}
