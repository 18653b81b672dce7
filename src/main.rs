//! bee-trace entry point: parse the command line, check the host, attach the
//! sensors, run the processing loop, and report.

mod canary;
mod cli;
mod egress;
mod events;
mod evidence;
mod input;
mod output;
mod pipeline;
mod policy;
mod privs;
mod proctable;
mod programs;
mod record;
mod redact;
mod report;
mod rules;
mod sensors;
mod sys;
mod workers;

use std::fs::File;
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
use policy::{Policy, Severity};
use report::{Lost, ProbeLine, Report};
use sensors::{Selection, Sensors};
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
            println!("FAILED: record {} (line {}): {}", f.record, f.record, f.why);
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
    let recorder = match &args.record {
        Some(p) => Some(
            record::Recorder::create(p, key.clone(), &started)
                .with_context(|| format!("cannot create the record file {}", p.display()))?,
        ),
        None => None,
    };
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(File::create(p).with_context(|| {
            format!("cannot create the output file {}", p.display())
        })?)),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
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
    let removed = canary::clean_leftovers(Path::new(canary::STATE_DIR));
    if removed > 0 {
        log::warn!("removed {removed} canaries left behind by a bee-trace that was killed");
    }
    let mut canaries = plant_canaries(&mut policy)?;
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

    if let Some(p) = &args.ready_file {
        File::create(p).with_context(|| format!("cannot create the ready file {}", p.display()))?;
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
    for (key, path) in &seeds {
        pipeline.know_file(*key, &path.to_string_lossy());
    }
    pipeline.resolve_rule_domains(stop_workers.clone());
    let mut reorder = pipeline::Reorder::new(REORDER_DELAY_NS);
    let deadline = args.duration.map(|d| started_at + Duration::from_secs(d));
    let mut sink = Sink {
        out,
        format,
        flush_each: args.output.is_none(),
        notable: Vec::new(),
        notable_truncated: false,
        rate: RateLimit::new(max_rate),
        write_error: None,
        last_flush: Instant::now(),
        signer,
        recorder,
        engine: rules::Engine::new(rule_set),
        signals: Vec::new(),
        signals_truncated: false,
    };

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
                sink.deliver(ev);
            }
        }
    }

    // Detach first, then drain what the kernel already queued.
    sensors.detach();
    stop_workers.store(true, Ordering::SeqCst);
    workers.join();
    while let Ok(raw) = rx.try_recv() {
        reorder.push(raw);
    }
    while let Some(raw) = reorder.pop_ready(None) {
        if let Some(ev) = pipeline.handle(raw) {
            sink.deliver(ev);
        }
    }
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
    };
    let report = Report {
        tool: "bee-trace",
        version: env!("CARGO_PKG_VERSION"),
        signals: std::mem::take(&mut sink.signals),
        signals_truncated: sink.signals_truncated,
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
        notable_events: std::mem::take(&mut sink.notable),
        notable_truncated: sink.notable_truncated,
    };
    eprint!("{}", report::summary_text(&report));
    if let Some(p) = &args.report_json {
        let text = serde_json::to_string_pretty(&report).context("serialising the JSON report")?;
        std::fs::write(p, text + "\n")
            .with_context(|| format!("cannot write the JSON report {}", p.display()))?;
    }
    if let Some(p) = &args.report_md {
        std::fs::write(p, report::markdown(&report))
            .with_context(|| format!("cannot write the Markdown report {}", p.display()))?;
    }
    // Programs are detached: the decoys can go, then the pins.
    drop(canaries);
    drop(armed);
    if let Some(e) = sink.write_error.take() {
        return Err(e).context("writing events failed; some events were not written");
    }
    Ok(ExitCode::SUCCESS)
}

/// Plants the policy's canaries. A canary whose path is taken is left alone
/// and disarmed; one that cannot be planted is an error (after removing the
/// ones already planted).
fn plant_canaries(policy: &mut Policy) -> Result<canary::Canaries> {
    let list = policy.canaries.clone();
    let (planted, outcomes) = canary::Canaries::plant(&list, Some(Path::new(canary::STATE_DIR)));
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
            canary::Outcome::Planted(_) => log::info!("canary planted at {}", c.path.display()),
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
        live.pipeline.know_file(*key, &p.to_string_lossy());
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

/// Where judged events go: the event stream, and the notable ones kept for
/// the reports.
struct Sink {
    out: Box<dyn Write>,
    format: Format,
    flush_each: bool,
    notable: Vec<output::Event>,
    notable_truncated: bool,
    rate: RateLimit,
    write_error: Option<std::io::Error>,
    last_flush: Instant,
    signer: Option<evidence::Signer>,
    recorder: Option<record::Recorder>,
    engine: rules::Engine,
    signals: Vec<rules::Signal>,
    signals_truncated: bool,
}

/// Under constant load the output is still flushed this often, so a reader
/// of --output never waits longer for an event.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl Sink {
    fn deliver(&mut self, ev: output::Event) {
        // One serialisation serves the record, the NDJSON stream and its
        // signature.
        let obj = match serde_json::to_string(&ev) {
            Ok(o) => o,
            Err(e) => {
                self.note(Err(std::io::Error::other(e)));
                return;
            }
        };
        // The record and the rules see everything, even what the rate limit
        // holds back, and see it as the record stores it.
        if let Some(r) = &mut self.recorder {
            let written = r.line(&obj);
            self.note(written);
        }
        let signals = match serde_json::to_value(&ev) {
            Ok(v) => self.engine.push(&v),
            Err(_) => Vec::new(),
        };
        if self.rate.admit() {
            self.write(&obj, || output::human(&ev));
            if self.flush_each
                || ev.severity >= Severity::High
                || self.last_flush.elapsed() >= FLUSH_EVERY
            {
                self.flush();
            }
        }
        if ev.severity >= Severity::Warning {
            if self.notable.len() < report::MAX_REPORTED {
                self.notable.push(ev);
            } else {
                self.notable_truncated = true;
            }
        }
        for g in signals {
            self.signal(g);
        }
    }

    /// A rule matched: written at once (never rate-limited), kept for the
    /// summary and reports.
    fn signal(&mut self, g: rules::Signal) {
        match serde_json::to_string(&g) {
            Ok(obj) => self.write(&obj, || output::signal_human(&g)),
            Err(e) => self.note(Err(std::io::Error::other(e))),
        }
        self.flush();
        if self.signals.len() < report::MAX_REPORTED {
            self.signals.push(g);
        } else {
            self.signals_truncated = true;
        }
    }

    /// Writes one record of the event stream: signed, NDJSON, or the human
    /// line. `obj` is its JSON object.
    fn write(&mut self, obj: &str, human: impl FnOnce() -> String) {
        let written = if self.signer.is_none() && self.format == Format::Human {
            writeln!(self.out, "{}", human())
        } else {
            writeln!(self.out, "{}", evidence::line(&mut self.signer, obj))
        };
        self.note(written);
    }

    /// Keeps the first write error, reported at the end of the run.
    fn note(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            self.write_error.get_or_insert(e);
        }
    }

    /// Ends a signed stream with its seal.
    fn seal(&mut self) {
        if let Some(s) = &mut self.signer {
            let line = s.seal();
            let written = writeln!(self.out, "{line}");
            self.note(written);
        }
        if let Some(r) = &mut self.recorder {
            let finished = r.finish();
            self.note(finished);
        }
        self.flush();
    }

    fn flush(&mut self) {
        self.last_flush = Instant::now();
        let flushed = self.out.flush();
        self.note(flushed);
        if let Some(r) = &mut self.recorder {
            let flushed = r.flush();
            self.note(flushed);
        }
    }
}

/// performance.max_events_per_second, counted per wall-clock second.
struct RateLimit {
    max: u64,
    window: Instant,
    used: u64,
    dropped: u64,
}

impl RateLimit {
    fn new(max: u64) -> RateLimit {
        RateLimit {
            max,
            window: Instant::now(),
            used: 0,
            dropped: 0,
        }
    }

    fn admit(&mut self) -> bool {
        if self.max == 0 {
            return true;
        }
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used < self.max {
            self.used += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}
