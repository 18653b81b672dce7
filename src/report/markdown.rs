//! The Markdown report: every cell escaped for Markdown, as the text in it is
//! the watched system's.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{ProbeLine, Report, MAX_REPORTED};
use crate::escape;
use crate::event::Detail;

/// The verdict first: the word, the level, and why.
fn verdict_md(s: &mut String, v: &super::verdict::Verdict) {
    let word = match v.result {
        super::verdict::Outcome::Pass => "✅ PASS",
        super::verdict::Outcome::Fail => "❌ FAIL",
        super::verdict::Outcome::Incomplete => "⚠️ INCOMPLETE",
    };
    let _ = writeln!(
        s,
        "**Verdict: {word}** (fail-on {}, exit {}): {}\n",
        v.fail_on,
        v.exit_code,
        escape::markdown(&v.reasons())
    );
    if let Some(e) = &v.example {
        let _ = writeln!(s, "First: {}\n", escape::markdown(e));
    }
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# bee-trace report\n");
    let _ = writeln!(
        s,
        "{} to {} ({:.1}s), bee-trace {}\n",
        r.started, r.ended, r.duration_secs, r.version
    );
    if let Some(v) = &r.verdict {
        verdict_md(&mut s, v);
    }
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
        unlisted_md(s, r);
        let _ = writeln!(s);
    }
}

/// Says which events the signals cite that the notable events table does
/// not show (info events, or those past its bound), so a reader looking for
/// a cited id knows where it is.
fn unlisted_md(s: &mut String, r: &Report) {
    let shown: BTreeSet<u64> = r.notable_events.iter().map(|e| e.id).collect();
    let unlisted: BTreeSet<u64> = r
        .signals
        .iter()
        .flat_map(|g| g.events.iter().copied())
        .filter(|id| !shown.contains(id))
        .collect();
    if unlisted.is_empty() {
        return;
    }
    let ids: Vec<String> = unlisted.iter().map(|i| i.to_string()).collect();
    let _ = writeln!(
        s,
        "\nEvents cited above but not among the notable events below (info events, or past the list's bound): {}; the event stream and the record have them by id.",
        ids.join(", ")
    );
}

/// The notable events table, every cell escaped (`escape::markdown`): no
/// row, heading or tag of the watched system's can start in it.
fn notable_md(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n## Notable events\n");
    if r.notable_events.is_empty() {
        let _ = writeln!(s, "None.");
        return;
    }
    let _ = writeln!(
        s,
        "| id | time | severity | type | what | process | lineage |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
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
                op: "dns_answer",
                daddr,
                result,
                dns_name,
                answer_cut,
                ..
            } => format!(
                "DNS answer for {} from {daddr} cut ({}, {result})",
                dns_name.as_deref().unwrap_or(""),
                answer_cut.unwrap_or("")
            ),
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
            Detail::Tamper { .. } => crate::sink::human::tamper_text(&e.detail),
            Detail::Socket {
                family,
                sock_type,
                protocol,
                result,
                ..
            } => format!("socket {family} {sock_type} {protocol} ({result})"),
            Detail::Serve { .. } => crate::sink::human::serve_text(&e.detail),
        };
        let lineage: Vec<String> = e
            .ancestors
            .iter()
            .take(4)
            .map(|a| format!("{}[{}]", a.comm, a.pid))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {}[{}] | {} |",
            e.id,
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
    use super::super::tests::report;
    use super::*;
    use crate::event::Severity;

    #[test]
    fn markdown_rows_hold_no_markup_or_line_of_the_watched_system() {
        let mut e = crate::sink::human::tests::sample();
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
    fn every_event_a_signal_cites_is_shown_by_id_or_said_unlisted() {
        let mut e = crate::sink::human::tests::sample();
        e.id = 41;
        let mut r = report(vec![e]);
        r.signals.push(crate::rules::Signal {
            kind: "signal",
            ts: "t".into(),
            rule: "r".into(),
            severity: Severity::High,
            description: "d".into(),
            tags: Vec::new(),
            root: crate::rules::Root {
                pid: 1,
                comm: "c".into(),
            },
            events: vec![3, 41],
        });
        let md = markdown(&r);
        let notable = md.split("## Notable events").nth(1).unwrap();
        assert!(
            notable.lines().any(|l| l.starts_with("| 41 |")),
            "cited event 41 has no row by id: {md}"
        );
        let unlisted = md
            .lines()
            .find(|l| l.starts_with("Events cited above"))
            .unwrap_or_else(|| panic!("cited event 3 is not said unlisted: {md}"));
        assert!(
            unlisted.contains(": 3;") && !unlisted.contains("41"),
            "{unlisted}"
        );
    }
}
