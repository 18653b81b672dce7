//! Hook choice for the families built on syscalls: fexit on each syscall's
//! kernel function where this kernel allows it, else the syscall tracepoints.

use std::cell::RefCell;

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

/// Runs `f` with libbpf's warnings at debug level (see `PROBING`), then
/// puts the previous setting back, so that a quiet load inside a quiet
/// attempt does not make the rest of the attempt loud.
pub(super) fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let before = PROBING.swap(true, std::sync::atomic::Ordering::Relaxed);
    let out = f();
    PROBING.store(before, std::sync::atomic::Ordering::Relaxed);
    out
}

thread_local! {
    /// The program libbpf last said it could not load on this thread (an
    /// object's load stops at the first refused program; the skeleton
    /// loaders run on the thread that started them).
    static REFUSED_PROG: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Told every libbpf message: remembers the name of a program whose load
/// the kernel refused (libbpf says `prog 'NAME': failed to load: ...`), so
/// that a loader can leave an optional program out and load the rest.
pub fn libbpf_message(msg: &str) {
    if let Some(name) = refused_prog_in(msg) {
        REFUSED_PROG.with(|r| *r.borrow_mut() = Some(name.to_string()));
    }
}

fn refused_prog_in(msg: &str) -> Option<&str> {
    let rest = msg.trim_start().strip_prefix("libbpf: prog '")?;
    let (name, tail) = rest.split_once('\'')?;
    tail.starts_with(": failed to load").then_some(name)
}

/// Takes the last refused program's name (see `libbpf_message`).
pub(super) fn take_refused_prog() -> Option<String> {
    REFUSED_PROG.with(|r| r.borrow_mut().take())
}

/// A loaded skeleton, with the optional programs the kernel refused and it
/// was loaded without, as (probe name, why): they are reported as skipped
/// and not attached.
pub(super) struct Loaded<S> {
    pub skel: S,
    pub left_out: Vec<(&'static str, String)>,
}

impl<S: 'static> Loaded<S> {
    /// A skeleton loaded with every program it asked for.
    pub fn all(skel: S) -> Self {
        Loaded {
            skel,
            left_out: Vec::new(),
        }
    }

    /// The probes of `set` that were loaded.
    fn loaded_of(&self, set: &[Probe<S>]) -> Vec<Probe<S>> {
        set.iter()
            .filter(|p| self.left_out.iter().all(|(n, _)| *n != p.name))
            .copied()
            .collect()
    }
}

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
    pub(super) fn hook_family<S: 'static>(
        &mut self,
        mode: HookMode,
        family: Family,
        load: impl Fn(bool) -> libbpf_rs::Result<Loaded<S>>,
        fexit: &[Probe<S>],
        tracepoints: &[Probe<S>],
    ) -> Option<S> {
        let refused = match self.try_fexit(mode, family, || {
            let loaded = load(true).map_err(FexitRefusal::Load)?;
            let set = loaded.loaded_of(fexit);
            let links = attach_fexit(&loaded.skel, &set)?;
            Ok((loaded, set, links))
        }) {
            Ok(skel) => return Some(skel),
            Err(why) => why,
        };
        if mode == HookMode::Fexit {
            return None;
        }
        let skel = match load(false) {
            Ok(loaded) => {
                let set = loaded.loaded_of(tracepoints);
                self.note_left_out(family, &loaded.left_out);
                self.attach_loaded(family, Ok(loaded.skel), &set)
            }
            Err(e) => self.attach_loaded(family, Err(e), tracepoints),
        };
        self.hooks.push(HookChoice {
            family,
            fexit: false,
            refused: refused.map(|r| r.to_string()),
        });
        skel
    }

    /// Records the optional programs a family was loaded without, and says
    /// so once each.
    fn note_left_out(&mut self, family: Family, left_out: &[(&'static str, String)]) {
        for (probe, why) in left_out {
            log::warn!("{} family: {probe} did not load: {why}", family.as_str());
            self.skipped.push((family, probe, why.clone()));
        }
    }

    /// Tries a family's fexit set (unless `mode` rules it out): on success
    /// its links and statuses are kept and the skeleton returned. On refusal the error is the
    /// kernel's reason; with `HookMode::Fexit` the refusal is also recorded
    /// as a failed probe, since there is no fallback. `Err(None)` means fexit
    /// was not tried.
    fn try_fexit<S: 'static>(
        &mut self,
        mode: HookMode,
        family: Family,
        attempt: impl FnOnce() -> Result<(Loaded<S>, Vec<Probe<S>>, Vec<Link>), FexitRefusal>,
    ) -> Result<S, Option<FexitRefusal>> {
        if mode == HookMode::Tracepoints {
            return Err(None);
        }
        let outcome = quietly(attempt);
        match outcome {
            Ok((loaded, set, links)) => {
                self.note_left_out(family, &loaded.left_out);
                let at = self.status.len();
                self.links
                    .extend(links.into_iter().enumerate().map(|(i, l)| (at + i, l)));
                for p in &set {
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
                Ok(loaded.skel)
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

#[cfg(test)]
mod tests {
    use super::refused_prog_in;

    #[test]
    fn the_refused_program_is_read_from_libbpfs_message() {
        assert_eq!(
            refused_prog_in("libbpf: prog 'handle_link_exit': failed to load: -EACCES"),
            Some("handle_link_exit")
        );
        assert_eq!(
            refused_prog_in("libbpf: prog 'x': BPF program load failed: -EACCES"),
            None,
            "the first of libbpf's two lines is not the verdict"
        );
        assert_eq!(
            refused_prog_in("libbpf: failed to load object 'file_bpf'"),
            None
        );
        assert_eq!(refused_prog_in("libbpf: prog 'a"), None);
    }
}
