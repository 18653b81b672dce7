//! From the parsed run flags to a `Running` session.

use std::io::IsTerminal;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::self_check::Guard;
use super::{canaries, signals, unix_now_ns, Decoys, Flow, Kernel, Meta, Parts, Running};
use crate::cli::RunArgs;
use crate::kernel::workers::{Counters, Workers};
use crate::kernel::{self, Egress, OwnObject, Selection, Sensors};
use crate::pipeline::judge::tamper::Judge;
use crate::pipeline::{proctable, Pipeline, Reorder};
use crate::policy::network::{self, Plan};
use crate::policy::{KernelFilter, Policy};
use crate::sink::{self, evidence, record, Format, Sink};
use crate::{abi, canary, escape, input, outfile, peers, privs, rules, sys, watchdog};

/// The entry to a run. Every user error is checked and every output file
/// opened before anything loads (so a typo costs nothing and the job cannot
/// race the files); then the probes are attached, privileges dropped and
/// the workers started, in the order the run has always had.
pub struct Session;

/// What the user could get wrong, checked, and the files the run writes,
/// opened before the job can race them.
struct Prepared {
    policy: Policy,
    format: Format,
    view: sink::View,
    engine: rules::Engine,
    signer: Option<evidence::Signer>,
    started: String,
    recorder: Option<record::Recorder>,
    out: sink::Lines,
    /// The event stream's descriptor, for the watchdog.
    stream_fd: RawFd,
    report_json: Option<outfile::Report>,
    report_md: Option<outfile::Report>,
    ready: Option<outfile::Ready>,
}

/// The state directory's part of a run: its registration among the
/// monitors, the planted decoys and the files watched by inode.
/// Field order is drop order: should the start fail, the decoys go while
/// this monitor is still registered.
struct Planted {
    decoys: Decoys,
    seeds: Vec<(abi::InodeKey, std::path::PathBuf)>,
    inodes: Vec<(abi::InodeKey, u8)>,
    peers: peers::Peers,
    registration: peers::Registration,
}

impl Session {
    pub fn start(args: &RunArgs) -> Result<Running> {
        let mut p = prepare(args)?;
        let nameservers = network::nameservers(&resolv_conf());
        let plan = Plan::new(&p.policy, &nameservers)
            .map_err(|m| anyhow::anyhow!("{m}"))
            .context("the network policy cannot be put into the kernel")?;
        let tracefs = crate::commands::preflight()?;
        signals::install();
        let filter = kernel_filter(&p.policy);
        let planted = plant(&mut p.policy)?;
        let table = proctable::ProcTable::seed_from_proc();
        log::info!("process table seeded with {} processes", table.len());

        let started_at = Instant::now();
        let (mut sensors, egress) = attach(args, &tracefs, &filter, &planted.inodes, plan)?;
        let (own, guard) = guard_own(&mut sensors)?;
        let dog = start_watchdog(&mut sensors, p.stream_fd, p.format, &p.policy);

        // Capabilities are per thread: drop them before any thread starts, so
        // every worker inherits the reduced set.
        let kept = privs::drop_privileges(args.config.is_some())
            .context("cannot drop the privileges bee-trace no longer needs")?;
        log::info!(
            "attached; capabilities kept: {} (no_new_privs set)",
            privs::names(kept).join(", ")
        );
        let (rx, counters, stop_workers, workers) =
            spawn_workers(&sensors, p.policy.event_buffer_size)?;

        announce(p.ready.as_ref(), &sensors)?;

        let max_rate = p.policy.max_events_per_second;
        let fail_on = args.fail_on.or(p.policy.fail_on);
        let mut pipeline = new_pipeline(args, p.policy, table, egress, &own, dog.as_ref());
        pipeline.peers = Some(planted.peers);
        for (key, path) in &planted.seeds {
            pipeline.know_file(*key, &escape::decode_path(path));
        }
        pipeline.resolve_rule_domains(stop_workers.clone());
        let meta = Meta {
            config: args.config.clone(),
            nameservers,
            started: p.started,
            started_at,
            deadline: args.duration.map(|d| started_at + Duration::from_secs(d)),
            report_json: p.report_json,
            report_md: p.report_md,
            fail_on,
        };
        let mut sink = Sink::new(
            p.out,
            p.format,
            args.output.is_none(),
            max_rate,
            p.signer,
            p.recorder,
            p.engine,
        );
        sink.view = p.view;
        let parts = Parts {
            decoys: planted.decoys,
            flow: Flow {
                sink,
                reorder: Reorder::new(super::flow::REORDER_DELAY_NS),
                pipeline,
                guard,
                rx,
                floods_read: std::time::Instant::now(),
            },
            dog,
            kernel: Kernel {
                sensors,
                filter,
                counters,
                stop_workers,
            },
            meta,
            _registration: planted.registration,
        };
        Ok(Running { parts, workers })
    }
}

/// Every probe is attached and the workers read the rings: the ready file
/// appears and stderr says so.
fn announce(ready: Option<&outfile::Ready>, sensors: &Sensors) -> Result<()> {
    if let Some(r) = ready {
        r.signal().context("cannot create the ready file")?;
    }
    eprintln!(
        "bee-trace: monitoring ({} probes attached); Ctrl-C to stop",
        sensors.status.len()
    );
    Ok(())
}

/// The pipeline, told which kernel objects and which process are
/// bee-trace's own.
fn new_pipeline(
    args: &RunArgs,
    policy: Policy,
    table: proctable::ProcTable,
    egress: Egress,
    own: &[OwnObject],
    dog: Option<&watchdog::Watchdog>,
) -> Pipeline {
    let mut pipeline = Pipeline::new(
        policy,
        table,
        args.probe_type == Selection::All,
        args.command.clone(),
        egress,
    );
    pipeline.tamper = Judge::new(own);
    if let Some(d) = dog {
        pipeline.tamper.set_watchdog(d.pid);
    }
    pipeline
}

/// The queue from the ring workers, their counters and stop flag, and the
/// workers themselves.
type Spawned = (
    crossbeam_channel::Receiver<abi::Raw>,
    Arc<Counters>,
    Arc<AtomicBool>,
    Workers,
);

fn spawn_workers(sensors: &Sensors, queue: usize) -> Result<Spawned> {
    let (tx, rx) = crossbeam_channel::bounded(queue);
    let counters = Arc::new(Counters::default());
    let stop_workers = Arc::new(AtomicBool::new(false));
    let workers = Workers::spawn(
        sensors.ring_sources()?,
        tx,
        counters.clone(),
        stop_workers.clone(),
    )
    .context("cannot start the ring-buffer workers")?;
    Ok((rx, counters, stop_workers, workers))
}

/// Everything a user can get wrong is checked before anything loads, and
/// every file this run writes is opened now, before the job can race it.
fn prepare(args: &RunArgs) -> Result<Prepared> {
    let policy = match &args.config {
        Some(path) => Policy::load(path)?,
        None => Policy::default_policy(),
    };
    let (format, view) = stream_form(args);
    let rule_set = rules::load(args.rules.as_deref())?;
    log::info!("{} rules loaded", rule_set.rules.len());
    let key = match &args.sign_key {
        Some(p) => {
            if format != Format::Json {
                anyhow::bail!("--sign-key signs NDJSON records: add --format json");
            }
            Some(evidence::read_key(p)?)
        }
        None => None,
    };
    let signer = key.clone().map(evidence::Signer::new);
    let started = sys::rfc3339(unix_now_ns());
    let access = outfile::Access {
        group: args.output_group,
    };
    let recorder = match &args.record {
        Some(p) => {
            let f = outfile::open(p, true, access).context("cannot create the record file")?;
            Some(record::Recorder::create(f, key.clone(), &started, p))
        }
        None => None,
    };
    let out_file = match &args.output {
        Some(p) => Some(outfile::open(p, true, access).context("cannot create the output file")?),
        None => None,
    };
    // The watchdog writes to the same stream when bee-trace is killed.
    let stream_fd = out_file
        .as_ref()
        .map_or(libc::STDOUT_FILENO, std::os::fd::AsRawFd::as_raw_fd);
    let out = match (out_file, &args.output) {
        (Some(f), Some(p)) => sink::Lines::new(Box::new(f), format!("events to {}", p.display())),
        _ => sink::Lines::new(Box::new(std::io::stdout()), "events to standard output"),
    };
    let report = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .map(|p| outfile::Report::open(p, access))
            .transpose()
    };
    Ok(Prepared {
        policy,
        format,
        view,
        engine: rules::Engine::new(rule_set),
        signer,
        started,
        recorder,
        out,
        stream_fd,
        report_json: report(&args.report_json).context("cannot open the JSON report file")?,
        report_md: report(&args.report_md).context("cannot open the Markdown report file")?,
        ready: args
            .ready_file
            .as_deref()
            .map(|p| outfile::Ready::prepare(p, access))
            .transpose()
            .context("cannot prepare the ready file")?,
    })
}

/// The event stream's format and what it shows. On a terminal: human lines
/// (coloured unless NO_COLOR is set). In a CI log (CI=true, the stream on
/// standard output, not a terminal): human lines without INFO exec/exit
/// unless --min-severity is given. Anywhere else: NDJSON for machines.
fn stream_form(args: &RunArgs) -> (Format, sink::View) {
    let terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let ci_log =
        args.output.is_none() && !terminal && std::env::var_os("CI").is_some_and(|v| v == "true");
    let format = args.format.unwrap_or(if terminal || ci_log {
        Format::Human
    } else {
        Format::Json
    });
    let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let view = sink::View {
        min_severity: args.min_severity.unwrap_or(crate::event::Severity::Info),
        hide_info_process: ci_log && format == Format::Human && args.min_severity.is_none(),
        colour: terminal && format == Format::Human && !no_colour,
    };
    if view.hide_info_process {
        eprintln!("bee-trace: CI log: human lines, INFO exec/exit left out (--min-severity info shows them; the record and reports keep them)");
    }
    (format, view)
}

/// Root's file, but one a job with sudo can make a FIFO or /dev/zero: a
/// regular file, bounded, or no resolvers.
fn resolv_conf() -> String {
    input::read_regular(
        Path::new("/etc/resolv.conf"),
        input::RESOLV_MAX,
        "resolver configuration",
        input::Trust::Data,
    )
    .ok()
    .and_then(|b| String::from_utf8(b).ok())
    .unwrap_or_default()
}

fn kernel_filter(policy: &Policy) -> KernelFilter {
    let filter = policy.kernel_filter();
    if !filter.match_all.is_empty() {
        log::warn!(
            "these patterns name no file name, parent, prefix or suffix the kernel can pre-filter on, so every open is resolved (slower): {}",
            filter.match_all.join(", ")
        );
    }
    filter
}

/// Registers this monitor, clears what a killed run left, plants the
/// canaries and arms the tripwires on the files watched by inode.
fn plant(policy: &mut Policy) -> Result<Planted> {
    let state_dir = canary::open_state_dir(Path::new(canary::STATE_DIR))?;
    // Registered before anything this run does could be seen by another
    // monitor: its opens and environ reads are then this run's housekeeping.
    let registration =
        peers::Registration::new(canary::open_state_dir(Path::new(canary::STATE_DIR))?)
            .context("cannot register this monitor in the state directory")?;
    let peers = peers::Peers::new(canary::open_state_dir(Path::new(canary::STATE_DIR))?);
    let removed = canary::clean_leftovers(&state_dir);
    if removed > 0 {
        log::warn!("removed {removed} canaries left behind by a bee-trace that was killed");
    }
    let canaries = canaries::plant(policy, state_dir)?;
    let seeds = kernel::seed_inodes(&policy.seed_files(&super::homes::on_host()));
    let mut armed = canary::Armed::default();
    let (inodes, _) = armed.arm(policy, &seeds);
    log::info!(
        "watching {} existing sensitive files by inode ({} armed to kill)",
        inodes.len(),
        inodes
            .iter()
            .filter(|(_, f)| f & abi::INODE_KILL != 0)
            .count()
    );
    Ok(Planted {
        decoys: Decoys { canaries, armed },
        seeds,
        inodes,
        peers,
        registration,
    })
}

/// Loads and attaches the probes (every one must attach) and fills the
/// egress maps.
fn attach(
    args: &RunArgs,
    tracefs: &Path,
    filter: &KernelFilter,
    inodes: &[(abi::InodeKey, u8)],
    plan: Plan,
) -> Result<(Sensors, Egress)> {
    let sensors = Sensors::start(args.probe_type, args.hooks, tracefs, filter, inodes);
    kernel::require_all(&sensors)?;
    for h in &sensors.hooks {
        log::info!("{} family hooked with {}", h.family.as_str(), h.hook());
    }
    let mut egress = Egress::new(plan, sensors.egress_maps());
    egress
        .install()
        .map_err(|e| anyhow::anyhow!("{}", kernel::explain(&e)))
        .context("cannot fill the egress maps")?;
    if let Some(root) = &sensors.cgroup_root {
        log::info!(
            "egress programs attached at the cgroup v2 root {}",
            root.display()
        );
    }
    Ok((sensors, egress))
}

/// Everything is loaded, attached and written: from here on a change made
/// by anyone else is tampering. Returns bee-trace's own kernel objects and
/// the self-check that watches them.
fn guard_own(sensors: &mut Sensors) -> Result<(Vec<OwnObject>, Guard)> {
    let own = sensors.own_objects();
    sensors
        .register_own(&own)
        .map_err(|e| anyhow::anyhow!("{}", kernel::explain(&e)))
        .context("cannot tell the tamper sensor which kernel objects are bee-trace's")?;
    log::info!("guarding {} kernel objects of its own", own.len());
    let baseline = sensors.link_baseline();
    log::info!(
        "the self-check watches {} of {} probes' links",
        baseline.len(),
        sensors.status.iter().filter(|s| s.outcome.is_ok()).count()
    );
    let guard = Guard::new(baseline, own.clone());
    Ok((own, guard))
}

/// Forks the watchdog (while bee-trace still has one thread) and tells the
/// signal program its pid. Without one, a SIGKILL of bee-trace goes
/// unrecorded: that is said, not fatal.
fn start_watchdog(
    sensors: &mut Sensors,
    stream: RawFd,
    format: Format,
    policy: &Policy,
) -> Option<watchdog::Watchdog> {
    // The lookout's idle worker (the start's looks at homes and seeds) is
    // let go first; one stuck in the kernel cannot be, and then there is no
    // watchdog.
    crate::fsafe::lookout::shared().retire();
    if !watchdog::single_threaded() {
        let stuck = crate::fsafe::lookout::shared().stuck_now();
        if stuck > 0 {
            log::warn!("no watchdog: {stuck} look(s) at a file system that did not answer are still stuck in the kernel, so bee-trace cannot fork one safely");
        } else {
            log::warn!("no watchdog: bee-trace already runs threads, so it cannot fork one safely");
        }
        return None;
    }
    let ring = sensors.watch_ring()?;
    let out = watchdog::Outputs {
        stream,
        format,
        redactor: policy.redactor.clone(),
    };
    match watchdog::spawn(ring, out) {
        Ok(d) => {
            sensors.set_watchdog(d.pid);
            log::info!("watchdog running as pid {}", d.pid);
            Some(d)
        }
        Err(e) => {
            log::warn!("no watchdog ({e}): a SIGKILL of bee-trace would go unrecorded");
            None
        }
    }
}
