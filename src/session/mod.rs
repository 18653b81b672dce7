//! A monitoring run's lifecycle: start, the running loop with reload, and a shutdown in stages.

mod canaries;
mod flow;
mod homes;
mod reload;
mod run_loop;
mod self_check;
mod shutdown;
mod signals;
mod start;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::kernel::workers::{Counters, Workers};
use crate::kernel::Sensors;
use crate::policy::KernelFilter;
use crate::{canary, outfile, peers, watchdog};

use flow::Flow;

pub use run_loop::Snapshot;
pub use shutdown::{Detached, Drained, Ended, Reported, Sealed};
pub use signals::request_stop;
pub use start::Session;

/// The decoys and the tripwire pins. The decoys go first (field order is
/// drop order): a pin is released only once no decoy needs it.
struct Decoys {
    canaries: canary::Canaries,
    armed: canary::Armed,
}

/// The kernel side while probes are attached.
struct Kernel {
    sensors: Sensors,
    filter: KernelFilter,
    counters: Arc<Counters>,
    /// Tells the ring workers and the resolver thread to finish.
    stop_workers: Arc<AtomicBool>,
}

/// What the start fixed for the rest of the run.
struct Meta {
    config: Option<PathBuf>,
    nameservers: Vec<IpAddr>,
    started: String,
    started_at: Instant,
    deadline: Option<Instant>,
    report_json: Option<outfile::Report>,
    report_md: Option<outfile::Report>,
    /// The verdict's level: --fail-on, else the policy's verdict.fail_on.
    fail_on: Option<crate::event::Severity>,
}

/// Everything a run holds, passed from stage to stage. Field order is drop
/// order, the one the run has always had at its end: the decoys, then the
/// event flow, the watchdog, the probes, and last this monitor's entry in
/// the peers' registry.
struct Parts {
    decoys: Decoys,
    flow: Flow,
    dog: Option<watchdog::Watchdog>,
    kernel: Kernel,
    meta: Meta,
    _registration: peers::Registration,
}

/// Probes attached, workers reading the rings, events flowing. The run
/// ends through `shutdown`, whose stages each consume the one before
/// (`Detached`, `Drained`, `Sealed`, `Reported`): the order of the end is
/// kept by the types, not by the order of statements someone may change.
pub struct Running {
    parts: Parts,
    workers: Workers,
}

fn unix_now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}
