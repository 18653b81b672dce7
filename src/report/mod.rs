//! The end-of-run report: what it holds and the summary on stderr; its
//! files are written by `json` and `markdown`.

pub mod annotations;
mod json;
mod markdown;
pub mod verdict;

pub use json::json;
pub use markdown::markdown;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::event::Event;
use crate::event::Severity;
use crate::pipeline::Stats;

/// Notable events kept for the reports (severity warning and above).
pub const MAX_REPORTED: usize = 1000;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Lost {
    /// Per family: records the kernel could not queue (ring buffer full).
    pub kernel: BTreeMap<String, u64>,
    /// Records the processing thread could not take in time (channel full).
    pub channel: u64,
    /// Samples that did not decode.
    pub undecodable: u64,
    /// Events over performance.max_events_per_second, not written.
    pub rate_limited: u64,
    /// Events and signals the event stream could not take (disk full, a
    /// write error).
    pub unwritten: u64,
    /// Lines the --record file could not take.
    pub unrecorded: u64,
}

impl Lost {
    /// Events that did not reach the event stream.
    pub fn total(&self) -> u64 {
        self.kernel.values().sum::<u64>()
            + self.channel
            + self.undecodable
            + self.rate_limited
            + self.unwritten
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    /// Rule matches first: they are what a reader acts on.
    pub signals: Vec<crate::rules::Signal>,
    pub signals_truncated: bool,
    pub started: String,
    pub ended: String,
    pub duration_secs: f64,
    pub probes: Vec<ProbeLine>,
    /// What each syscall family was hooked with (fexit or tracepoints).
    pub hooks: Vec<HookLine>,
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    pub total_events: u64,
    pub filtered: u64,
    pub lost: Lost,
    pub notable_events: Vec<Event>,
    pub notable_truncated: bool,
    /// Whether bee-trace itself was tampered with (session::self_check).
    pub integrity: Integrity,
    /// With `--fail-on` (or `verdict.fail_on`): pass, fail or incomplete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<verdict::Verdict>,
}

/// One finding of the self-check, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub ts: String,
    #[serde(flatten)]
    pub drift: crate::kernel::Drift,
}

/// The report's `integrity` section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    /// Something was found changed, or a bpf(2) change to bee-trace's
    /// objects or a SIGKILL/SIGSTOP to it was seen.
    pub tampered: bool,
    /// Self-check rounds run.
    pub checks: u64,
    /// What the self-check found changed, first time each.
    pub findings: Vec<Finding>,
    /// Critical tamper events seen (bpf(2) changes, signals, findings).
    pub tamper_events: u64,
    /// Objects of this instance the kernel watches for bpf(2) changes.
    pub objects_watched: usize,
}

#[derive(Debug, Serialize)]
pub struct HookLine {
    pub family: String,
    pub hook: String,
    /// The kernel's reason when the optional fexit hooks were refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fexit_refused: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ProbeLine {
    pub family: String,
    pub probe: String,
    pub attached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn counts(stats: &Stats) -> BTreeMap<String, BTreeMap<String, u64>> {
    stats
        .by_type
        .iter()
        .map(|(t, m)| {
            (
                t.to_string(),
                m.iter()
                    .map(|(s, n)| (s.as_str().to_string(), *n))
                    .collect(),
            )
        })
        .collect()
}

pub fn summary_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bee-trace summary: {} events in {:.1}s",
        r.total_events, r.duration_secs
    );
    if r.signals.is_empty() {
        let _ = writeln!(s, "  signals  none");
    } else {
        let _ = writeln!(s, "  signals  {}:", r.signals.len());
        for g in &r.signals {
            let _ = writeln!(s, "    {}", signal_line(g));
        }
    }
    for (t, m) in &r.counts {
        let parts: Vec<String> = Severity::ALL
            .iter()
            .filter_map(|sev| m.get(sev.as_str()).map(|n| format!("{sev}={n}")))
            .collect();
        let _ = writeln!(s, "  {t:<8} {}", parts.join(" "));
    }
    let kernel: Vec<String> = r
        .lost
        .kernel
        .iter()
        .map(|(f, n)| format!("{f}={n}"))
        .collect();
    let _ = writeln!(
        s,
        "  lost     {} (kernel ring buffers: {}; queue full: {}; undecodable: {}; rate-limited: {}; not written: {}; not recorded: {})",
        r.lost.total(),
        kernel.join(" "),
        r.lost.channel,
        r.lost.undecodable,
        r.lost.rate_limited,
        r.lost.unwritten,
        r.lost.unrecorded
    );
    integrity_text(&mut s, &r.integrity);
    let failed: Vec<&ProbeLine> = r.probes.iter().filter(|p| !p.attached).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "  NOT SEEN: {} probe(s) did not attach:", failed.len());
        for p in failed {
            let line = format!(
                "{} {}: {}",
                p.family,
                p.probe,
                p.error.as_deref().unwrap_or("")
            );
            let _ = writeln!(s, "    {}", crate::escape::terminal(&line));
        }
    }
    if let Some(v) = &r.verdict {
        let _ = writeln!(s, "{}", v.line());
    }
    s
}

/// The summary's integrity lines: TAMPERED with each finding, or intact.
fn integrity_text(s: &mut String, i: &Integrity) {
    if !i.tampered {
        let _ = writeln!(
            s,
            "  integrity intact ({} self-checks, {} objects watched)",
            i.checks, i.objects_watched
        );
        return;
    }
    let _ = writeln!(
        s,
        "  TAMPERED: bee-trace itself was interfered with ({} critical tamper events, {} self-check findings):",
        i.tamper_events,
        i.findings.len()
    );
    for f in &i.findings {
        let d = &f.drift;
        // A drift can name what another process put in our objects' place
        // (a program's name): the watched system's text, escaped.
        let line = format!(
            "{} {} {} ({}): {}",
            f.ts, d.object_type, d.object_id, d.object_name, d.what
        );
        let _ = writeln!(s, "    {}", crate::escape::terminal(&line));
    }
}

/// One line for a signal: severity, rule, root, events; escaped for the
/// terminal (the root's comm is the watched system's).
pub fn signal_line(g: &crate::rules::Signal) -> String {
    let ids: Vec<String> = g.events.iter().map(|i| i.to_string()).collect();
    let line = format!(
        "{} {} (trace of {}[{}]; events {}): {}",
        g.severity.as_str().to_uppercase(),
        g.rule,
        g.root.comm,
        g.root.pid,
        ids.join(", "),
        g.description
    );
    crate::escape::terminal(&line).into_owned()
}

#[cfg(test)]
pub(super) mod tests;
