//! The end-of-run summary and the JSON and Markdown reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::escape;
use crate::output::{Detail, Event};
use crate::pipeline::Stats;
use crate::policy::Severity;

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
    /// Whether bee-trace itself was tampered with (src/tamper.rs).
    pub integrity: crate::tamper::Integrity,
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
            let _ = writeln!(
                s,
                "    {} {}: {}",
                p.family,
                p.probe,
                p.error.as_deref().unwrap_or("")
            );
        }
    }
    s
}

/// The summary's integrity lines: TAMPERED with each finding, or intact.
fn integrity_text(s: &mut String, i: &crate::tamper::Integrity) {
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
        let _ = writeln!(
            s,
            "    {} {} {} ({}): {}",
            f.ts, d.object_type, d.object_id, d.object_name, d.what
        );
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

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# bee-trace report\n");
    let _ = writeln!(
        s,
        "{} to {} ({:.1}s), bee-trace {}\n",
        r.started, r.ended, r.duration_secs, r.version
    );
    signals_md(&mut s, r);
    let _ = writeln!(s, "## Events\n");
    let _ = writeln!(s, "| type | critical | high | warning | info |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (t, m) in &r.counts {
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "| {t} | {} | {} | {} | {} |",
            g("critical"),
            g("high"),
            g("warning"),
            g("info")
        );
    }
    let _ = writeln!(s, "\nLost events: **{}**", r.lost.total());
    if r.lost.total() + r.lost.unrecorded > 0 {
        let _ = writeln!(
            s,
            "(kernel ring buffers {:?}, queue full {}, undecodable {}, rate-limited {}, not written {}, not recorded {})",
            r.lost.kernel,
            r.lost.channel,
            r.lost.undecodable,
            r.lost.rate_limited,
            r.lost.unwritten,
            r.lost.unrecorded
        );
    }
    if r.integrity.tampered {
        let _ = writeln!(
            s,
            "\n**TAMPERED**: bee-trace itself was interfered with ({} critical tamper events):\n",
            r.integrity.tamper_events
        );
        for f in &r.integrity.findings {
            let d = &f.drift;
            let _ = writeln!(
                s,
                "- {} {} {} {}: {}",
                f.ts,
                d.object_type,
                d.object_id,
                escape::markdown(&d.object_name),
                escape::markdown(&d.what)
            );
        }
    }
    let failed: Vec<&ProbeLine> = r.probes.iter().filter(|p| !p.attached).collect();
    if !failed.is_empty() {
        let _ = writeln!(
            s,
            "\n**Not seen**: these probes did not attach, so their activity was not monitored:\n"
        );
        for p in failed {
            let _ = writeln!(
                s,
                "- {} `{}`: {}",
                p.family,
                p.probe,
                escape::markdown(p.error.as_deref().unwrap_or(""))
            );
        }
    }
    notable_md(&mut s, r);
    s
}

/// The signals table. Every cell is escaped: a rule's root is a process the
/// watched system named. The rule's name (the operator's) stays in a code
/// span, where an entity would show as written, which a rule name never
/// needs.
fn signals_md(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## Signals\n");
    if r.signals.is_empty() {
        let _ = writeln!(s, "None: no rule matched.\n");
    } else {
        let _ = writeln!(
            s,
            "| time | severity | rule | trace root | events | what it means |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for g in &r.signals {
            let ids: Vec<String> = g.events.iter().map(|i| i.to_string()).collect();
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {}[{}] | {} | {} |",
                g.ts,
                g.severity,
                escape::markdown(&g.rule),
                escape::markdown(&g.root.comm),
                g.root.pid,
                ids.join(", "),
                escape::markdown(&g.description)
            );
        }
        if r.signals_truncated {
            let _ = writeln!(s, "\nOnly the first {MAX_REPORTED} signals are listed.");
        }
        let _ = writeln!(s);
    }
}

/// The notable events table, every cell escaped (`escape::markdown`): no
/// row, heading or tag of the watched system's can start in it.
fn notable_md(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n## Notable events\n");
    if r.notable_events.is_empty() {
        let _ = writeln!(s, "None.");
        return;
    }
    let _ = writeln!(s, "| time | severity | type | what | process | lineage |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for e in &r.notable_events {
        let what = match &e.detail {
            Detail::File {
                path,
                access,
                result,
                category,
                ..
            } => format!("{access} {path} ({category}, {result})"),
            Detail::Network {
                protocol,
                daddr,
                dport,
                result,
                ..
            } => format!("{protocol} {daddr}:{dport} ({result})"),
            Detail::Memory {
                kind,
                target_pid,
                target_comm,
                result,
                ..
            } => format!("{kind} {target_comm}[{target_pid}] ({result})"),
            Detail::Process { kind, argv, .. } => format!("{kind} {}", argv.join(" ")),
            Detail::Tamper { .. } => crate::output::tamper_text(&e.detail),
        };
        let lineage: Vec<String> = e
            .ancestors
            .iter()
            .take(4)
            .map(|a| format!("{}[{}]", a.comm, a.pid))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {}[{}] | {} |",
            e.ts,
            e.severity,
            e.kind,
            escape::markdown(&what),
            escape::markdown(&e.comm),
            e.pid,
            escape::markdown(&lineage.join(" <- "))
        );
    }
    if r.notable_truncated {
        let _ = writeln!(s, "\nOnly the first {MAX_REPORTED} notable events are listed; the counts above cover all.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(notable: Vec<Event>) -> Report {
        Report {
            tool: "bee-trace",
            version: "0",
            signals: Vec::new(),
            signals_truncated: false,
            started: "s".into(),
            ended: "e".into(),
            duration_secs: 1.0,
            probes: Vec::new(),
            hooks: Vec::new(),
            counts: BTreeMap::new(),
            total_events: 1,
            filtered: 0,
            lost: Lost::default(),
            notable_events: notable,
            notable_truncated: false,
            integrity: Default::default(),
        }
    }

    #[test]
    fn markdown_rows_hold_no_markup_or_line_of_the_watched_system() {
        let mut e = crate::output::tests::sample();
        e.comm = "x|y".into();
        if let Detail::File { path, .. } = &mut e.detail {
            *path = "/k</details><img src=x onerror=alert(1)>\r## Lost events: 0\u{2028}`".into();
        }
        let md = markdown(&report(vec![e]));
        assert!(!md.contains("<img") && !md.contains("</details>"), "{md}");
        assert!(!md.contains('\r') && !md.contains('\u{2028}'), "{md}");
        let row = md.lines().find(|l| l.contains("onerror")).unwrap();
        assert!(
            row.contains("&lt;img src=x onerror=alert(1)&gt;\\x0d## Lost"),
            "{row}"
        );
        assert!(
            row.contains("| x&#124;y[10] |") && row.contains("&#96;"),
            "{row}"
        );
        assert_eq!(
            md.lines().filter(|l| l.starts_with("Lost events")).count(),
            1
        );
    }

    #[test]
    fn summary_signal_lines_are_escaped() {
        let mut r = report(Vec::new());
        let g = crate::rules::Signal {
            kind: "signal",
            ts: "t".into(),
            rule: "r".into(),
            severity: Severity::High,
            description: "d".into(),
            tags: Vec::new(),
            root: crate::rules::Root {
                pid: 1,
                comm: "c\x1b[2J\n".into(),
            },
            events: vec![1],
        };
        r.signals.push(g);
        let text = summary_text(&r);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("c\\x1b[2J\\x0a"), "{text}");
    }
}
