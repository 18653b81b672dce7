//! The reports built from a report with every section filled, and from an
//! empty one.

use super::*;

pub(super) fn report(notable: Vec<Event>) -> Report {
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
        verdict: None,
    }
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

fn event(id: u64, severity: Severity, detail: crate::event::Detail) -> Event {
    Event {
        kind: detail.kind().as_str(),
        id,
        ts: format!("2026-11-21T10:00:{id:02}.000000Z"),
        pid: 10 + id as u32,
        ppid: 9,
        uid: 1000,
        comm: "job".into(),
        exe: "/usr/bin/job".into(),
        ancestors: (0..6)
            .map(|i| crate::event::Ancestor {
                pid: 9 - i,
                comm: format!("p{i}"),
            })
            .collect(),
        severity,
        detail,
    }
}

fn signal(rule: &str, events: Vec<u64>) -> crate::rules::Signal {
    crate::rules::Signal {
        kind: "signal",
        ts: "2026-11-21T10:00:05.000000Z".into(),
        rule: rule.into(),
        severity: Severity::Critical,
        description: "a key read, then sent".into(),
        tags: vec!["t1048".into()],
        root: crate::rules::Root {
            pid: 50,
            comm: "bash".into(),
        },
        events,
    }
}

/// A report with something in every section.
fn full() -> Report {
    use crate::event::Detail;
    let notable = vec![
        event(
            1,
            Severity::Critical,
            Detail::Network {
                op: "connect",
                protocol: "tcp".into(),
                family: "ipv4",
                daddr: "198.51.100.7".into(),
                dport: 443,
                result: "ok".into(),
                policy: None,
                action: None,
                rule: None,
                dns_name: None,
                answer_cut: None,
            },
        ),
        event(
            2,
            Severity::High,
            Detail::Memory {
                kind: "ptrace",
                target_pid: 77,
                target_comm: "sshd".into(),
                result: "EPERM".into(),
                request: None,
                target_secret_env: Vec::new(),
                proc_file: None,
            },
        ),
        event(
            3,
            Severity::Warning,
            Detail::Process {
                kind: "exec",
                argv: vec!["curl".into(), "-d".into(), "@key".into()],
                argv_truncated: None,
                exit_code: None,
                script: None,
                fileless: None,
                dropped: None,
                sha256: None,
                loader_env: Vec::new(),
                loader_env_truncated: None,
                stdio_socket: None,
            },
        ),
    ];
    let mut r = report(notable);
    r.signals = vec![signal("exfil", vec![1, 3, 99])];
    r.signals_truncated = true;
    r.notable_truncated = true;
    r.counts = BTreeMap::from([
        (
            "file".to_string(),
            BTreeMap::from([("critical".to_string(), 2), ("info".to_string(), 5)]),
        ),
        (
            "network".to_string(),
            BTreeMap::from([("high".to_string(), 1)]),
        ),
    ]);
    r.lost = Lost {
        kernel: BTreeMap::from([("file".to_string(), 3), ("net".to_string(), 1)]),
        channel: 2,
        undecodable: 1,
        rate_limited: 4,
        unwritten: 5,
        unrecorded: 6,
    };
    r.integrity = crate::report::Integrity {
        tampered: true,
        checks: 12,
        findings: vec![crate::report::Finding {
            ts: "2026-11-21T10:00:09.000000Z".into(),
            drift: crate::kernel::Drift {
                object_type: "map",
                object_id: 42,
                object_name: "file_filter|x".into(),
                what: "entries <b>changed</b>".into(),
            },
        }],
        tamper_events: 2,
        objects_watched: 30,
    };
    r.probes = vec![
        ProbeLine {
            family: "file".into(),
            probe: "openat".into(),
            attached: true,
            error: None,
        },
        ProbeLine {
            family: "memory".into(),
            probe: "ptrace".into(),
            attached: false,
            error: Some("no such tracepoint <x>".into()),
        },
    ];
    r
}

#[test]
fn the_markdown_report_shows_every_section_that_has_something() {
    let md = markdown(&full());
    for want in [
        "# bee-trace report\n\ns to e (1.0s), bee-trace 0\n",
        "| 2026-11-21T10:00:05.000000Z | critical | `exfil` | bash[50] | 1, 3, 99 | a key read, then sent |",
        "\nOnly the first 1000 signals are listed.\n",
        "\nEvents cited above but not among the notable events below (info events, or past the list's bound): 99; the event stream and the record have them by id.\n",
        "| file | 2 | 0 | 0 | 5 |\n| network | 0 | 1 | 0 | 0 |\n",
        "\nLost events: **16**\n(kernel ring buffers {\"file\": 3, \"net\": 1}, queue full 2, undecodable 1, rate-limited 4, not written 5, not recorded 6)\n",
        "\n**TAMPERED**: bee-trace itself was interfered with (2 critical tamper events):\n\n",
        "- 2026-11-21T10:00:09.000000Z map 42 file_filter&#124;x: entries &lt;b&gt;changed&lt;/b&gt;\n",
        "\n**Not seen**: these probes did not attach, so their activity was not monitored:\n\n- memory `ptrace`: no such tracepoint &lt;x&gt;\n",
        "| 1 | 2026-11-21T10:00:01.000000Z | critical | network | tcp 198.51.100.7:443 (ok) | job[11] | p0&#91;9&#93; &lt;- p1&#91;8&#93; &lt;- p2&#91;7&#93; &lt;- p3&#91;6&#93; |",
        "| 2 | 2026-11-21T10:00:02.000000Z | high | memory | ptrace sshd&#91;77&#93; (EPERM) | job[12] |",
        "| 3 | 2026-11-21T10:00:03.000000Z | warning | process | exec curl -d @key | job[13] |",
        "\nOnly the first 1000 notable events are listed; the counts above cover all.\n",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
    assert!(
        !md.contains("`openat`"),
        "an attached probe is not listed: {md}"
    );
    assert!(!md.contains("p4&#91;"), "the lineage stops at four: {md}");
}

#[test]
fn the_markdown_report_of_a_quiet_run_says_none_and_nothing_more() {
    let md = markdown(&report(Vec::new()));
    assert_eq!(
        md,
        "# bee-trace report\n\ns to e (1.0s), bee-trace 0\n\n## Signals\n\nNone: no rule matched.\n\n\
         ## Events\n\n| type | critical | high | warning | info |\n|---|---|---|---|---|\n\n\
         Lost events: **0**\n\n## Notable events\n\nNone.\n"
    );
}

#[test]
fn a_record_that_lost_lines_is_said_even_when_no_event_was_lost() {
    let mut r = report(Vec::new());
    r.lost.unrecorded = 3;
    let md = markdown(&r);
    assert!(md.contains("Lost events: **0**\n(kernel ring buffers {}, queue full 0, undecodable 0, rate-limited 0, not written 0, not recorded 3)\n"), "{md}");
}

#[test]
fn the_summary_shows_every_section_that_has_something() {
    let text = summary_text(&full());
    assert_eq!(
        text,
        "bee-trace summary: 1 events in 1.0s\n\
         \x20 signals  1:\n\
         \x20   CRITICAL exfil (trace of bash[50]; events 1, 3, 99): a key read, then sent\n\
         \x20 file     info=5 critical=2\n\
         \x20 network  high=1\n\
         \x20 lost     16 (kernel ring buffers: file=3 net=1; queue full: 2; undecodable: 1; rate-limited: 4; not written: 5; not recorded: 6)\n\
         \x20 TAMPERED: bee-trace itself was interfered with (2 critical tamper events, 1 self-check findings):\n\
         \x20   2026-11-21T10:00:09.000000Z map 42 (file_filter|x): entries <b>changed</b>\n\
         \x20 NOT SEEN: 1 probe(s) did not attach:\n\
         \x20   memory ptrace: no such tracepoint <x>\n"
    );
}

#[test]
fn the_summary_of_a_quiet_run() {
    let mut r = report(Vec::new());
    r.integrity.checks = 3;
    r.integrity.objects_watched = 20;
    assert_eq!(
        summary_text(&r),
        "bee-trace summary: 1 events in 1.0s\n\
         \x20 signals  none\n\
         \x20 lost     0 (kernel ring buffers: ; queue full: 0; undecodable: 0; rate-limited: 0; not written: 0; not recorded: 0)\n\
         \x20 integrity intact (3 self-checks, 20 objects watched)\n"
    );
}

#[test]
fn lost_events_count_what_missed_the_stream_not_the_record() {
    let l = full().lost;
    assert_eq!(l.total(), 3 + 1 + 2 + 1 + 4 + 5);
}

#[test]
fn the_json_report_holds_every_section() {
    let v: serde_json::Value = serde_json::from_str(&json(&full()).unwrap()).unwrap();
    assert_eq!(v["signals"][0]["rule"], "exfil");
    assert_eq!(v["signals"][0]["events"], serde_json::json!([1, 3, 99]));
    assert_eq!(v["signals_truncated"], true);
    assert_eq!(v["counts"]["file"]["critical"], 2);
    assert_eq!(v["lost"]["kernel"]["file"], 3);
    assert_eq!(v["lost"]["unrecorded"], 6);
    assert_eq!(v["integrity"]["tampered"], true);
    assert_eq!(
        v["integrity"]["findings"][0]["object_name"],
        "file_filter|x"
    );
    assert_eq!(v["probes"][1]["error"], "no such tracepoint <x>");
    assert!(v["probes"][0].get("error").is_none());
    assert_eq!(v["notable_events"][0]["daddr"], "198.51.100.7");
    assert_eq!(v["notable_truncated"], true);
}

#[test]
fn counts_are_keyed_by_type_then_severity_name() {
    let mut stats = crate::pipeline::Stats::default();
    stats.count(&event(
        1,
        Severity::High,
        crate::event::Detail::Process {
            kind: "exec",
            argv: Vec::new(),
            argv_truncated: None,
            exit_code: None,
            script: None,
            fileless: None,
            dropped: None,
            sha256: None,
            loader_env: Vec::new(),
            loader_env_truncated: None,
            stdio_socket: None,
        },
    ));
    let mut e = event(
        2,
        Severity::High,
        crate::event::Detail::Process {
            kind: "exit",
            argv: Vec::new(),
            argv_truncated: None,
            exit_code: Some(0),
            script: None,
            fileless: None,
            dropped: None,
            sha256: None,
            loader_env: Vec::new(),
            loader_env_truncated: None,
            stdio_socket: None,
        },
    );
    stats.count(&e);
    e.severity = Severity::Info;
    stats.count(&e);
    let c = counts(&stats);
    assert_eq!(
        c,
        BTreeMap::from([(
            "process".to_string(),
            BTreeMap::from([("high".to_string(), 2), ("info".to_string(), 1)])
        )])
    );
}

#[test]
fn the_summary_escapes_what_the_watched_system_named_in_findings_and_probe_errors() {
    let mut r = full();
    r.integrity.findings[0].drift.what = "link runs program evil\x1b[2J\u{202e}".into();
    r.probes[1].error = Some("attach failed: \x1b]0;title\x07".into());
    let s = summary_text(&r);
    assert!(
        !s.contains('\x1b') && !s.contains('\u{202e}') && !s.contains('\x07'),
        "{s:?}"
    );
    assert!(s.contains("link runs program evil\\x1b[2J"), "{s}");
    assert!(s.contains("attach failed: \\x1b]0;title\\x07"), "{s}");
}
