//! Hook choice for the families built on syscalls: fexit on each syscall's
//! kernel function where this kernel allows it, else the syscall tracepoints.

use libbpf_rs::Link;

use super::{explain, Family, Probe, ProbeError, ProbeStatus, Sensors};

/// Which hooks the families built on syscalls (file, memory, network,
/// tamper) use: `--hooks` (the variants' doc comments are its help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookMode {
    // fexit on each syscall's own kernel function puts no task on the slow
    // syscall path, as a syscall tracepoint does.
    /// fexit where the kernel allows it, else tracepoints.
    Auto,
    /// The syscall tracepoints only.
    Tracepoints,
    /// fexit only; an error when the kernel refuses it.
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
#[cfg(target_arch = "aarch64")]
macro_rules! sys_fexit {
    ($name:literal) => {
        concat!("fexit/__arm64_sys_", $name)
    };
}
#[cfg(not(target_arch = "aarch64"))]
macro_rules! sys_fexit {
    ($name:literal) => {
        concat!("fexit/__x64_sys_", $name)
    };
}
pub(super) use sys_fexit;

/// Why a family's fexit set was not used, in short: the kernel's answer.
#[derive(Debug, thiserror::Error)]
enum FexitRefusal {
    #[error("load: {0}")]
    Load(libbpf_rs::Error),
    #[error("{probe}: {}", explain(.err))]
    Attach {
        probe: &'static str,
        err: libbpf_rs::Error,
    },
}

/// Attaches every program of an fexit set, or says which one the kernel
/// refused and why (the links made so far are dropped, so detached).
fn attach_fexit<S>(skel: &S, set: &[Probe<S>]) -> Result<Vec<Link>, FexitRefusal> {
    set.iter()
        .map(|p| {
            (p.prog)(skel)
                .attach()
                .map_err(|err| FexitRefusal::Attach { probe: p.name, err })
        })
        .collect()
}

impl Sensors {
    /// Hooks one syscall family: its fexit set first (unless `mode` rules it
    /// out), else, unless `mode` demands fexit, its tracepoint set. `load`
    /// loads the skeleton with the fexit programs (true) or the tracepoint
    /// ones (false), never both. Records the choice in `hooks` and returns
    /// the skeleton in use, if any.
    pub(super) fn hook_family<S>(
        &mut self,
        mode: HookMode,
        family: Family,
        load: impl Fn(bool) -> libbpf_rs::Result<S>,
        fexit: &[Probe<S>],
        tracepoints: &[Probe<S>],
    ) -> Option<S> {
        let refused = match self.try_fexit(mode, family, fexit, || {
            let skel = load(true).map_err(FexitRefusal::Load)?;
            let links = attach_fexit(&skel, fexit)?;
            Ok((skel, links))
        }) {
            Ok(skel) => return Some(skel),
            Err(why) => why,
        };
        if mode == HookMode::Fexit {
            return None;
        }
        let skel = self.attach_loaded(family, load(false), tracepoints);
        self.hooks.push(HookChoice {
            family,
            fexit: false,
            refused: refused.map(|r| r.to_string()),
        });
        skel
    }

    /// Tries a family's fexit set (unless `mode` rules it out): on success
    /// its links and statuses are kept and the skeleton returned. On refusal the error is the
    /// kernel's reason; with `HookMode::Fexit` the refusal is also recorded
    /// as a failed probe, since there is no fallback. `Err(None)` means fexit
    /// was not tried.
    fn try_fexit<S>(
        &mut self,
        mode: HookMode,
        family: Family,
        set: &[Probe<S>],
        attempt: impl FnOnce() -> Result<(S, Vec<Link>), FexitRefusal>,
    ) -> Result<S, Option<FexitRefusal>> {
        if mode == HookMode::Tracepoints {
            return Err(None);
        }
        PROBING.store(true, std::sync::atomic::Ordering::Relaxed);
        let outcome = attempt();
        PROBING.store(false, std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok((skel, links)) => {
                let at = self.status.len();
                self.links
                    .extend(links.into_iter().enumerate().map(|(i, l)| (at + i, l)));
                for p in set {
                    self.status.push(ProbeStatus {
                        family,
                        probe: p.name.to_string(),
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
            Err(refusal) => {
                let why = refusal.to_string();
                if mode == HookMode::Fexit {
                    self.status.push(ProbeStatus {
                        family,
                        probe: "fexit".into(),
                        outcome: Err(ProbeError::FexitRefused(why.clone())),
                    });
                    self.hooks.push(HookChoice {
                        family,
                        fexit: true,
                        refused: Some(why),
                    });
                } else {
                    log::info!(
                        "{} family: fexit refused ({why}); using the syscall tracepoints",
                        family.as_str()
                    );
                }
                Err(Some(refusal))
            }
        }
    }
}
