//! The end of a run, one type per stage: detach, drain, seal, reports, canary removal.

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};

use super::run_loop::self_check;
use super::{unix_now_ns, Decoys, Parts, Running};
use crate::report::{self, Lost, ProbeLine, Report};
use crate::sys;

/// Probes detached and ring workers joined; their last records are queued.
pub struct Detached(Parts);

/// Every record queued at detach went through the pipeline.
pub struct Drained(Parts);

/// The event stream and the record are sealed; the report is built.
pub struct Sealed {
    parts: Parts,
    report: Report,
}

/// The summary is said and the report files are written; what the run
/// ended with is kept for whoever asked it to stop.
pub struct Reported(Parts, Ended);

/// What a run ended with: its verdict's exit status and what was said.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Ended {
    pub exit_code: u8,
    /// The summary, as said on stderr (its last line is the verdict's).
    pub summary: String,
    /// Findings as GitHub workflow commands (with a verdict).
    pub annotations: Vec<String>,
    /// The Markdown report.
    pub markdown: String,
}

impl Running {
    /// Stops the run in the only order the types allow.
    pub fn shutdown(self) -> Result<ExitCode> {
        let ended = self.detach().drain().seal().write_reports()?.finish()?;
        Ok(ExitCode::from(ended.exit_code))
    }

    /// A last look before detaching (a change in the final second counts
    /// too), then detach first, so that the drain that follows is final.
    pub fn detach(self) -> Detached {
        let Running { mut parts, workers } = self;
        self_check(&mut parts);
        parts.kernel.sensors.detach();
        parts.kernel.stop_workers.store(true, Ordering::SeqCst);
        workers.join();
        Detached(parts)
    }
}

impl Detached {
    /// Drains what the kernel had already queued, and every integrity
    /// finding still waiting.
    pub fn drain(self) -> Drained {
        let mut parts = self.0;
        parts.flow.take_queued(None);
        parts.flow.release(None, None);
        parts.flow.hashed(true);
        // The maps outlive the detach: this reading is final.
        parts.flow.tell_floods(&parts.kernel.sensors, true);
        parts.flow.integrity_events(true);
        Drained(parts)
    }
}

impl Drained {
    pub fn seal(self) -> Sealed {
        let mut parts = self.0;
        parts.flow.sink.seal();
        let report = build_report(&mut parts);
        Sealed { parts, report }
    }
}

impl Sealed {
    pub fn write_reports(self) -> Result<Reported> {
        let Sealed { mut parts, report } = self;
        let annotations = report
            .verdict
            .as_ref()
            .map(|v| report::annotations::workflow_commands(&report, v.fail_on))
            .unwrap_or_default();
        if on_github_actions() {
            for line in &annotations {
                eprintln!("{line}");
            }
        }
        let summary = report::summary_text(&report);
        eprint!("{summary}");
        let markdown = report::markdown(&report);
        let ended = Ended {
            exit_code: report
                .verdict
                .as_ref()
                .map_or(report::verdict::EXIT_PASS, |v| v.exit_code),
            summary,
            annotations,
            markdown,
        };
        if let Some(r) = parts.meta.report_json.take() {
            let text = report::json(&report).context("serialising the JSON report")?;
            let p = r.path.clone();
            r.write(text.as_bytes())
                .with_context(|| format!("cannot write the JSON report {}", p.display()))?;
        }
        if let Some(r) = parts.meta.report_md.take() {
            let p = r.path.clone();
            r.write(ended.markdown.as_bytes())
                .with_context(|| format!("cannot write the Markdown report {}", p.display()))?;
        }
        Ok(Reported(parts, ended))
    }
}

impl Reported {
    pub fn ended(&self) -> &Ended {
        &self.1
    }

    /// Removes the canaries, then says whether every event was written.
    pub fn finish(self) -> Result<Ended> {
        let Reported(mut parts, ended) = self;
        // Programs are detached: the decoys can go, then the pins.
        remove(&mut parts.decoys);
        let sink = &mut parts.flow.sink;
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
        Ok(ended)
    }
}

/// A step of a GitHub Actions job, whose log takes workflow commands.
fn on_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Removes the decoys, then releases the pins, leaving empty sets behind.
fn remove(decoys: &mut Decoys) {
    drop(std::mem::take(&mut decoys.canaries));
    drop(std::mem::take(&mut decoys.armed));
}

fn build_report(parts: &mut Parts) -> Report {
    let (flow, kernel, meta) = (&mut parts.flow, &parts.kernel, &parts.meta);
    let sink = &mut flow.sink;
    let counters = &kernel.counters;
    let lost = Lost {
        kernel: kernel
            .sensors
            .kernel_lost()
            .iter()
            .map(|(f, n)| (f.as_str().to_string(), *n))
            .collect(),
        channel: counters.channel_full.load(Ordering::Relaxed),
        undecodable: counters.undecodable.load(Ordering::Relaxed),
        rate_limited: sink.rate.dropped,
        unwritten: sink.out.lost,
        unrecorded: sink.record_lost(),
    };
    let sensors = &kernel.sensors;
    let stats = &flow.pipeline.stats;
    Report {
        tool: "bee-trace",
        version: env!("CARGO_PKG_VERSION"),
        signals_truncated: sink.signals.truncated(),
        signals: sink.signals.take(),
        started: meta.started.clone(),
        ended: sys::rfc3339(unix_now_ns()),
        duration_secs: meta.started_at.elapsed().as_secs_f64(),
        probes: sensors
            .status
            .iter()
            .map(|s| ProbeLine {
                family: s.family.as_str().into(),
                probe: s.probe.clone(),
                attached: s.outcome.is_ok(),
                error: s.outcome.as_ref().err().map(ToString::to_string),
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
        counts: report::counts(stats),
        total_events: stats.total(),
        filtered: stats.filtered,
        notable_truncated: sink.notable.truncated(),
        notable_events: sink.notable.take(),
        integrity: flow.guard.integrity.clone(),
        verdict: meta.fail_on.map(|level| {
            let unseen = lost.kernel.values().sum::<u64>() + lost.channel + lost.undecodable;
            report::verdict::Verdict::judge(&sink.tally, level, unseen)
        }),
        lost,
    }
}
