//! bee-trace entry point: parse the command line, check the host, attach the
//! sensors, run the processing loop, and report.

use bee_trace::{
    canary, cli, egress, escape, events, fsafe, input, outfile, output, peers, pipeline, policy,
    privs, proctable, report, rules, sensors, sink, sys, tamper, watchdog, workers,
};
use sink::{evidence, record};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use crossbeam_channel::RecvTimeoutError;

use cli::{Cli, Command, Hooks, ProbeType, RunArgs};
use output::Format;
use pipeline::Pipeline;
use policy::Policy;
use report::{Lost, ProbeLine, Report};
use sensors::{Selection, Sensors};
use sink::Sink;
use workers::{Counters, Workers};

/// How long records wait to be put in kernel-time order (see `Reorder`).
const REORDER_DELAY_NS: u64 = 50_000_000;
/// Past this many held records, release without waiting.
const REORDER_MAX: usize = 65536;

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    let msg = msg.trim_end();
    let probing = sensors::PROBING.load(std::sync::atomic::Ordering::Relaxed);
    match level {
        libbpf_rs::PrintLevel::Warn if probing => log::debug!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Warn => log::warn!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Info => log::info!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Debug => log::debug!(target: "libbpf", "{msg}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if cli.run.verbose { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp(None)
        .init();
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));

    let result = match cli.command {
        Some(Command::Check) => check(),
        Some(Command::Verify { file, key }) => verify(&file, &key),
        Some(Command::Rules { list, rules }) => list_rules(list, rules.as_deref()),
        Some(Command::Replay {
            file,
            rules,
            since,
            until,
        }) => replay(&file, rules.as_deref(), since.as_deref(), until.as_deref()),
        None => run(&cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bee-trace: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn preflight() -> Result<std::path::PathBuf> {
    sys::check_privileges()?;
    sys::check_btf()?;
    Ok(sys::ensure_tracefs()?)
}

fn selection(p: ProbeType) -> Selection {
    match p {
        ProbeType::FileMonitor => Selection {
            file: true,
            network: false,
            memory: false,
        },
        ProbeType::NetworkMonitor => Selection {
            file: false,
            network: true,
            memory: false,
        },
        ProbeType::MemoryMonitor => Selection {
            file: false,
            network: false,
            memory: true,
        },
        ProbeType::All => Selection {
            file: true,
            network: true,
            memory: true,
        },
    }
}

fn check() -> Result<ExitCode> {
    let tracefs = preflight()?;
    let policy = Policy::default_policy();
    let all = Selection {
        file: true,
        network: true,
        memory: true,
    };
    let sensors = Sensors::start(
        all,
        sensors::HookMode::Auto,
        &tracefs,
        &policy.kernel_filter(),
        &[],
    );
    let mut failed = 0;
    for s in &sensors.status {
        match &s.outcome {
            Ok(()) => println!("attached  {:<8} {}", s.family.as_str(), s.probe),
            Err(why) => {
                failed += 1;
                println!("FAILED    {:<8} {}: {why}", s.family.as_str(), s.probe);
            }
        }
    }
    for h in &sensors.hooks {
        match &h.refused {
            None => println!("hooks     {:<8} {}", h.family.as_str(), h.hook()),
            Some(why) => println!(
                "hooks     {:<8} {} (the optional fexit upgrade was refused: {why})",
                h.family.as_str(),
                h.hook()
            ),
        }
    }
    drop(sensors);
    if failed > 0 {
        println!(
            "{failed} probe(s) failed: bee-trace would not see what they cover on this kernel"
        );
        return Ok(ExitCode::from(1));
    }
    println!("all probes attached");
    Ok(ExitCode::SUCCESS)
}

fn list_rules(list: bool, dir: Option<&Path>) -> Result<ExitCode> {
    let set = rules::load(dir)?;
    if !list {
        println!(
            "{} rules loaded (built-in pack{}); --list shows them",
            set.rules.len(),
            dir.map(|d| format!(" and {}", d.display()))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for r in &set.rules {
        println!(
            "{:<40} {:<8} [{}] ({})\n    {}",
            r.name,
            r.severity.as_str(),
            r.tags.join(", "),
            r.source,
            r.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(
    file: &Path,
    dir: Option<&Path>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<ExitCode> {
    let bound = |t: Option<&str>, what: &str| -> Result<Option<u64>> {
        t.map(|t| {
            rules::parse_ts(t).ok_or_else(|| {
                anyhow::anyhow!(
                    "--{what} {t}: expected an RFC 3339 UTC time (before 2554) such as 2026-11-22T10:00:00Z"
                )
            })
        })
        .transpose()
    };
    let (since, until) = (bound(since, "since")?, bound(until, "until")?);
    let mut engine = rules::Engine::new(rules::load(dir)?);
    let events = record::read(file)?;
    let mut out = BufWriter::new(std::io::stdout());
    let (mut n, mut signals) = (0u64, 0u64);
    for ev in &events {
        let ts = ev["ts"].as_str().and_then(rules::parse_ts).unwrap_or(0);
        if since.is_some_and(|s| ts < s) || until.is_some_and(|u| ts >= u) {
            continue;
        }
        n += 1;
        for g in engine.push(ev) {
            signals += 1;
            writeln!(out, "{}", serde_json::to_string(&g)?)?;
        }
    }
    out.flush()?;
    eprintln!("bee-trace replay: {n} events, {signals} signals");
    Ok(ExitCode::SUCCESS)
}

fn verify(file: &Path, key: &Path) -> Result<ExitCode> {
    let key = evidence::read_key(key)?;
    let bytes = input::read_regular(file, input::LOG_MAX, "signed log", input::Trust::Data)?;
    let text = String::from_utf8(bytes).with_context(|| {
        format!(
            "{} is not UTF-8 text: not a log bee-trace wrote",
            file.display()
        )
    })?;
    match evidence::verify(&text, &key) {
        Ok(n) => {
            println!("OK: {} records, sealed, signatures valid", n);
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            println!("FAILED: {f}");
            Ok(ExitCode::from(1))
        }
    }
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    // Everything a user can get wrong is checked before anything loads.
    let mut policy = match &args.config {
        Some(path) => Policy::load(path)?,
        None => Policy::default_policy(),
    };
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Human
    } else {
        Format::Json
    });
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
    // Every file this run writes is opened now, before the job can race it.
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
    let report_json = report(&args.report_json).context("cannot open the JSON report file")?;
    let report_md = report(&args.report_md).context("cannot open the Markdown report file")?;
    let ready = args
        .ready_file
        .as_deref()
        .map(|p| outfile::Ready::prepare(p, access))
        .transpose()
        .context("cannot prepare the ready file")?;
    // Root's file, but one a job with sudo can make a FIFO or /dev/zero: a
    // regular file, bounded, or no resolvers.
    let resolv = input::read_regular(
        std::path::Path::new("/etc/resolv.conf"),
        input::RESOLV_MAX,
        "resolver configuration",
        input::Trust::Data,
    )
    .ok()
    .and_then(|b| String::from_utf8(b).ok())
    .unwrap_or_default();
    let nameservers = egress::nameservers(&resolv);
    let plan = egress::Plan::new(&policy, &nameservers)
        .map_err(|m| anyhow::anyhow!("{m}"))
        .context("the network policy cannot be put into the kernel")?;
    let tracefs = preflight()?;
    install_signal_handlers();

    let mut filter = policy.kernel_filter();
    if !filter.match_all.is_empty() {
        log::warn!(
            "these patterns name no file name, parent, prefix or suffix the kernel can pre-filter on, so every open is resolved (slower): {}",
            filter.match_all.join(", ")
        );
    }
    let state_dir = canary::open_state_dir(Path::new(canary::STATE_DIR))?;
    // Registered before anything this run does could be seen by another
    // monitor: its opens and environ reads are then this run's housekeeping.
    let _registration =
        peers::Registration::new(canary::open_state_dir(Path::new(canary::STATE_DIR))?)
            .context("cannot register this monitor in the state directory")?;
    let peer_list = peers::Peers::new(canary::open_state_dir(Path::new(canary::STATE_DIR))?);
    let removed = canary::clean_leftovers(&state_dir);
    if removed > 0 {
        log::warn!("removed {removed} canaries left behind by a bee-trace that was killed");
    }
    let mut canaries = plant_canaries(&mut policy, state_dir)?;
    let seeds = sensors::seed_inodes(&policy.seed_files());
    let mut armed = canary::Armed::default();
    let (inodes, _) = armed.arm(&policy, &seeds);
    log::info!(
        "watching {} existing sensitive files by inode ({} armed to kill)",
        inodes.len(),
        inodes
            .iter()
            .filter(|(_, f)| f & events::INODE_KILL != 0)
            .count()
    );

    let table = proctable::ProcTable::seed_from_proc();
    log::info!("process table seeded with {} processes", table.len());

    let started_at = Instant::now();
    let sel = selection(args.probe_type);
    let hooks = match args.hooks {
        Hooks::Auto => sensors::HookMode::Auto,
        Hooks::Tracepoints => sensors::HookMode::Tracepoints,
        Hooks::Fexit => sensors::HookMode::Fexit,
    };
    let mut sensors = Sensors::start(sel, hooks, &tracefs, &filter, &inodes);
    sensors::require_all(&sensors)?;
    for h in &sensors.hooks {
        log::info!("{} family hooked with {}", h.family.as_str(), h.hook());
    }
    let mut egress = egress::Egress::new(plan, sensors.egress_maps());
    egress
        .install()
        .map_err(|e| anyhow::anyhow!("{}", sensors::explain(&e)))
        .context("cannot fill the egress maps")?;
    if let Some(root) = &sensors.cgroup_root {
        log::info!(
            "egress programs attached at the cgroup v2 root {}",
            root.display()
        );
    }
    // Everything is loaded, attached and written: from here on a change
    // made by anyone else is tampering.
    let own = sensors.own_objects();
    sensors
        .register_own(&own)
        .map_err(|e| anyhow::anyhow!("{}", sensors::explain(&e)))
        .context("cannot tell the tamper sensor which kernel objects are bee-trace's")?;
    log::info!("guarding {} kernel objects of its own", own.len());
    let baseline = sensors.link_baseline();
    log::info!(
        "the self-check watches {} of {} probes' links",
        baseline.len(),
        sensors.status.iter().filter(|s| s.outcome.is_ok()).count()
    );
    let mut guard = tamper::Guard::new(baseline, own.clone());
    let mut dog = start_watchdog(&mut sensors, stream_fd, format, &policy);

    // Capabilities are per thread: drop them before any thread starts, so
    // every worker inherits the reduced set.
    let kept = privs::drop_privileges(args.config.is_some())
        .context("cannot drop the privileges bee-trace no longer needs")?;
    log::info!(
        "attached; capabilities kept: {} (no_new_privs set)",
        privs::names(kept).join(", ")
    );
    let (tx, rx) = crossbeam_channel::bounded(policy.event_buffer_size);
    let counters = Arc::new(Counters::default());
    let stop_workers = Arc::new(AtomicBool::new(false));
    let workers = Workers::spawn(
        sensors.ring_sources()?,
        tx,
        counters.clone(),
        stop_workers.clone(),
    )
    .context("cannot start the ring-buffer workers")?;

    if let Some(r) = &ready {
        r.signal().context("cannot create the ready file")?;
    }
    eprintln!(
        "bee-trace: monitoring ({} probes attached); Ctrl-C to stop",
        sensors.status.len()
    );

    let max_rate = policy.max_events_per_second;
    let mut pipeline = Pipeline::new(
        policy,
        table,
        args.probe_type == ProbeType::All,
        args.command.clone(),
        egress,
    );
    pipeline.tamper = tamper::Judge::new(&own);
    pipeline.peers = Some(peer_list);
    if let Some(d) = &dog {
        pipeline.tamper.set_watchdog(d.pid);
    }
    for (key, path) in &seeds {
        pipeline.know_file(*key, &escape::decode_path(path));
    }
    pipeline.resolve_rule_domains(stop_workers.clone());
    let mut reorder = pipeline::Reorder::new(REORDER_DELAY_NS);
    let deadline = args.duration.map(|d| started_at + Duration::from_secs(d));
    let mut sink = Sink::new(
        out,
        format,
        args.output.is_none(),
        max_rate,
        signer,
        recorder,
        rules::Engine::new(rule_set),
    );

    loop {
        if STOP.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if RELOAD.swap(false, Ordering::SeqCst) {
            let mut live = Live {
                sensors: &mut sensors,
                pipeline: &mut pipeline,
                canaries: &mut canaries,
                armed: &mut armed,
                filter: &mut filter,
                shutdown: stop_workers.clone(),
            };
            match &args.config {
                None => eprintln!("bee-trace: SIGHUP: no --config file, nothing to reload"),
                Some(path) => match reload(path, &nameservers, &mut live) {
                    Ok(()) => eprintln!("bee-trace: policy reloaded from {}", path.display()),
                    Err(e) => eprintln!(
                        "bee-trace: reload of {} refused, the previous policy stays in force: {e:#}",
                        path.display()
                    ),
                },
            }
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(raw) => reorder.push(raw),
            Err(RecvTimeoutError::Timeout) => sink.flush(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Take whatever else is queued before releasing in order.
        while let Ok(raw) = rx.try_recv() {
            reorder.push(raw);
            if reorder.len() >= REORDER_MAX {
                break;
            }
        }
        pipeline.take_resolved();
        let now = sys::boot_now_ns();
        while let Some(raw) = reorder.pop_ready(if reorder.len() >= REORDER_MAX {
            None
        } else {
            Some(now)
        }) {
            if let Some(ev) = pipeline.handle(raw) {
                for key in pipeline.learned_inodes.drain(..) {
                    sensors.watch_inode(key);
                }
                guard.saw(&ev);
                sink.deliver(ev);
            }
        }
        if guard.due() {
            self_check(
                &mut guard,
                &mut sensors,
                &mut pipeline,
                &filter,
                dog.as_mut(),
            );
        }
        integrity_events(&mut guard, &mut pipeline, &mut sink, false);
    }

    // A last look before detaching: a change in the final second counts too.
    self_check(
        &mut guard,
        &mut sensors,
        &mut pipeline,
        &filter,
        dog.as_mut(),
    );
    // Detach first, then drain what the kernel already queued.
    sensors.detach();
    stop_workers.store(true, Ordering::SeqCst);
    workers.join();
    while let Ok(raw) = rx.try_recv() {
        reorder.push(raw);
    }
    while let Some(raw) = reorder.pop_ready(None) {
        if let Some(ev) = pipeline.handle(raw) {
            guard.saw(&ev);
            sink.deliver(ev);
        }
    }
    integrity_events(&mut guard, &mut pipeline, &mut sink, true);
    sink.seal();
    let kernel_lost = sensors.kernel_lost();

    let lost = Lost {
        kernel: kernel_lost
            .iter()
            .map(|(f, n)| (f.as_str().to_string(), *n))
            .collect(),
        channel: counters.channel_full.load(Ordering::Relaxed),
        undecodable: counters.undecodable.load(Ordering::Relaxed),
        rate_limited: sink.rate.dropped,
        unwritten: sink.out.lost,
        unrecorded: sink.record_lost(),
    };
    let report = Report {
        tool: "bee-trace",
        version: env!("CARGO_PKG_VERSION"),
        signals_truncated: sink.signals.truncated(),
        signals: sink.signals.take(),
        started,
        ended: sys::rfc3339(unix_now_ns()),
        duration_secs: started_at.elapsed().as_secs_f64(),
        probes: sensors
            .status
            .iter()
            .map(|s| ProbeLine {
                family: s.family.as_str().into(),
                probe: s.probe.clone(),
                attached: s.outcome.is_ok(),
                error: s.outcome.clone().err(),
            })
            .collect(),
        hooks: sensors
            .hooks
            .iter()
            .map(|h| report::HookLine {
                family: h.family.as_str().into(),
                hook: h.hook().into(),
                fexit_refused: h.refused.clone(),
            })
            .collect(),
        counts: report::counts(&pipeline.stats),
        total_events: pipeline.stats.total(),
        filtered: pipeline.stats.filtered,
        lost,
        notable_truncated: sink.notable.truncated(),
        notable_events: sink.notable.take(),
        integrity: guard.integrity.clone(),
    };
    eprint!("{}", report::summary_text(&report));
    if let Some(r) = report_json {
        let text = report::json(&report).context("serialising the JSON report")?;
        let p = r.path.clone();
        r.write(text.as_bytes())
            .with_context(|| format!("cannot write the JSON report {}", p.display()))?;
    }
    if let Some(r) = report_md {
        let p = r.path.clone();
        r.write(report::markdown(&report).as_bytes())
            .with_context(|| format!("cannot write the Markdown report {}", p.display()))?;
    }
    // Programs are detached: the decoys can go, then the pins.
    drop(canaries);
    drop(armed);
    if let Some(e) = sink.encode_error.take() {
        return Err(e).context("an event could not be encoded; it was not written");
    }
    let unwritten = sink.out.lost + sink.record_lost();
    if let Some(e) = sink
        .out
        .error
        .take()
        .or_else(|| sink.recorder.as_mut().and_then(|r| r.out.error.take()))
    {
        return Err(e).context(format!(
            "writing events failed: {unwritten} lines were not written (see the summary)"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Forks the watchdog (while bee-trace still has one thread) and tells the
/// signal program its pid. Without one, a SIGKILL of bee-trace goes
/// unrecorded: that is said, not fatal.
fn start_watchdog(
    sensors: &mut Sensors,
    stream: std::os::fd::RawFd,
    format: Format,
    policy: &Policy,
) -> Option<watchdog::Watchdog> {
    if !watchdog::single_threaded() {
        log::warn!("no watchdog: bee-trace already runs threads, so it cannot fork one safely");
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

/// One round of the self-check: each new finding is said on stderr at once;
/// its event follows (`integrity_events`).
fn self_check(
    guard: &mut tamper::Guard,
    sensors: &mut Sensors,
    pipeline: &mut Pipeline,
    filter: &policy::KernelFilter,
    dog: Option<&mut watchdog::Watchdog>,
) {
    for d in guard.check(sensors, pipeline.egress.plan(), filter, dog) {
        eprintln!("{}", tamper::drift_line(&d));
    }
}

/// The self-check's findings as critical events, once they are due (all of
/// them with `all`).
fn integrity_events(
    guard: &mut tamper::Guard,
    pipeline: &mut Pipeline,
    sink: &mut Sink,
    all: bool,
) {
    for d in guard.ready(all) {
        if let Some(ev) = pipeline.integrity_event(&d) {
            guard.saw(&ev);
            sink.deliver(ev);
        }
    }
}

/// Plants the policy's canaries. A canary whose path is taken is left alone
/// and disarmed; one that cannot be planted is an error (after removing the
/// ones already planted).
fn plant_canaries(policy: &mut Policy, state: fsafe::Dir) -> Result<canary::Canaries> {
    let list = policy.canaries.clone();
    let (planted, outcomes) = canary::Canaries::plant(&list, Some(state));
    settle_canaries(policy, &list, outcomes)?;
    Ok(planted)
}

/// Logs what planting `list` did and disarms the canaries whose path was
/// taken; an error names the first canary that could not be planted.
fn settle_canaries(
    policy: &mut Policy,
    list: &[policy::Canary],
    outcomes: Vec<canary::Outcome>,
) -> Result<()> {
    for (c, o) in list.iter().zip(outcomes) {
        match o {
            canary::Outcome::Planted => log::info!("canary planted at {}", c.path.display()),
            canary::Outcome::Skipped(why) => {
                log::warn!("canary {} skipped: {why}", c.path.display());
                policy.disarm_canary(&c.path);
            }
            canary::Outcome::Exists => {
                log::warn!(
                    "canary {}: a file is already there; it is left untouched and not armed",
                    c.path.display()
                );
                policy.disarm_canary(&c.path);
            }
            canary::Outcome::Failed(why) => {
                anyhow::bail!("cannot plant the canary {}: {why}", c.path.display())
            }
        }
    }
    Ok(())
}

/// What a reload changes in place.
struct Live<'a> {
    sensors: &'a mut Sensors,
    pipeline: &'a mut Pipeline,
    canaries: &'a mut canary::Canaries,
    armed: &'a mut canary::Armed,
    filter: &'a mut policy::KernelFilter,
    shutdown: Arc<AtomicBool>,
}

/// SIGHUP: re-reads the policy and puts it in force without detaching
/// anything. Everything that can be refused (the file, the network plan, a
/// canary that cannot be planted) is checked before the kernel maps change.
fn reload(path: &Path, nameservers: &[std::net::IpAddr], live: &mut Live) -> Result<()> {
    let mut policy = Policy::load(path)?;
    let plan = egress::Plan::new(&policy, nameservers).map_err(|m| anyhow::anyhow!("{m}"))?;
    let old = &live.pipeline.policy;
    if (policy.event_buffer_size, policy.max_events_per_second)
        != (old.event_buffer_size, old.max_events_per_second)
    {
        log::warn!("performance.* changes take effect at the next start, not on reload");
    }

    // New canaries first; if one cannot be planted, undo and refuse.
    let before: Vec<std::path::PathBuf> = live
        .canaries
        .planted
        .iter()
        .map(|p| p.path.clone())
        .collect();
    let fresh: Vec<policy::Canary> = policy
        .canaries
        .iter()
        .filter(|c| !live.canaries.is_planted(&c.path))
        .cloned()
        .collect();
    let outcomes = live.canaries.add(&fresh);
    if let Err(e) = settle_canaries(&mut policy, &fresh, outcomes) {
        live.canaries.retain(&before);
        return Err(e);
    }

    let filter = policy.kernel_filter();
    let seeds = sensors::seed_inodes(&policy.seed_files());
    let (inodes, disarm) = live.armed.arm(&policy, &seeds);
    live.sensors
        .update_file_filter(live.filter, &filter, &inodes, &disarm)
        .map_err(|e| anyhow::anyhow!("{}", sensors::explain(&e)))
        .context("the kernel refused the new file filter; restart bee-trace to be sure which policy is in force")?;
    live.armed.release(&disarm);
    *live.filter = filter;
    // Decoys the new policy no longer has go only now, once disarmed.
    let keep: Vec<std::path::PathBuf> = policy.canaries.iter().map(|c| c.path.clone()).collect();
    live.canaries.retain(&keep);

    live.pipeline
        .set_policy(policy, plan, live.shutdown.clone())
        .map_err(|e| anyhow::anyhow!("{}", sensors::explain(&e)))
        .context("the kernel refused the new egress maps; restart bee-trace to be sure which policy is in force")?;
    for (key, p) in &seeds {
        live.pipeline.know_file(*key, &escape::decode_path(p));
    }
    log::info!(
        "reloaded: {} file rules, {} files watched by inode, {} armed",
        live.pipeline.policy.file_rules.len(),
        seeds.len(),
        live.armed.count()
    );
    Ok(())
}

fn unix_now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}
