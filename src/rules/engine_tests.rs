//! The engine fed events as their NDJSON objects.

use super::super::load::{compile, Source};
use super::*;
use serde_json::json;

fn engine(cond: &str) -> Engine {
    let yaml = format!(
        "lists:\n  creds: [ssh_key, cloud_credential]\nrules:\n  - name: r\n    severity: critical\n    description: d\n    window: 60s\n    condition: '{cond}'\n"
    );
    Engine::new(
        compile(&[Source {
            name: "t.yml".into(),
            text: yaml,
        }])
        .unwrap(),
    )
}

fn ev(id: u64, secs: u64, kind: &str, extra: Value) -> Value {
    let mut v = json!({
        "type": kind, "id": id,
        "ts": format!("2026-11-22T00:{:02}:{:02}.000001Z", secs / 60, secs % 60),
        "pid": 100 + id, "comm": "x",
        "ancestors": [{"pid": 50, "comm": "bash"}, {"pid": 10, "comm": "Runner.Worker"}, {"pid": 1, "comm": "systemd"}],
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn argv_truncated_is_a_field_rules_can_use() {
    // It was emitted and documented, but refused at load.
    let mut e = engine("has(process).where(argv_truncated == true)");
    assert!(e
        .push(&ev(1, 0, "process", json!({"kind": "exec"})))
        .is_empty());
    let s = e.push(&ev(2, 1, "process", json!({"argv_truncated": true})));
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].events, vec![2]);
}

const SEQ: &str = "has(file).where(category in creds) then has(network).where(not daddr startswith \"127.\") within 30s";

#[test]
fn a_sequence_fires_once_with_the_events_that_made_it() {
    let mut e = engine(SEQ);
    assert!(e
        .push(&ev(1, 0, "network", json!({"daddr": "198.51.100.3"})))
        .is_empty());
    assert!(e
        .push(&ev(2, 1, "file", json!({"category": "ssh_key"})))
        .is_empty());
    assert!(e
        .push(&ev(3, 2, "network", json!({"daddr": "127.0.0.1"})))
        .is_empty());
    let s = e.push(&ev(4, 5, "network", json!({"daddr": "198.51.100.3"})));
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].events, vec![2, 4]);
    assert_eq!(
        s[0].root,
        Root {
            pid: 50,
            comm: "bash".into()
        }
    );
    assert!(
        e.push(&ev(5, 6, "network", json!({"daddr": "198.51.100.4"})))
            .is_empty(),
        "once per trace"
    );
}

#[test]
fn within_and_the_window_bound_a_sequence() {
    let mut e = engine(SEQ);
    e.push(&ev(1, 0, "file", json!({"category": "ssh_key"})));
    assert!(
        e.push(&ev(2, 40, "network", json!({"daddr": "198.51.100.3"})))
            .is_empty(),
        "past 30s"
    );
    // A later read pairs with a later connect.
    e.push(&ev(3, 50, "file", json!({"category": "cloud_credential"})));
    let s = e.push(&ev(4, 55, "network", json!({"daddr": "198.51.100.3"})));
    assert_eq!(s[0].events, vec![3, 4]);
}

#[test]
fn a_connect_that_came_first_does_not_count() {
    let mut e = engine("has(file) then has(network)");
    e.push(&ev(1, 0, "network", json!({})));
    assert!(e.push(&ev(2, 1, "file", json!({}))).is_empty());
}

#[test]
fn traces_are_separate_process_trees() {
    let mut e = engine(SEQ);
    e.push(&ev(1, 0, "file", json!({"category": "ssh_key"})));
    let mut other = ev(2, 1, "network", json!({"daddr": "198.51.100.3"}));
    other["ancestors"] = json!([{"pid": 60, "comm": "bash"}, {"pid": 10, "comm": "Runner.Worker"}]);
    assert!(e.push(&other).is_empty(), "another job step");
}

#[test]
fn counts_absence_and_field_comparisons() {
    let mut e = engine("count(file).where(category in creds) >= 3");
    for i in 1..=2 {
        assert!(e
            .push(&ev(i, i, "file", json!({"category": "ssh_key"})))
            .is_empty());
    }
    assert_eq!(
        e.push(&ev(3, 3, "file", json!({"category": "ssh_key"})))[0].events,
        vec![1, 2, 3]
    );

    let mut e = engine("has(process).where(kind == \"exec\") and never(network)");
    assert_eq!(
        e.push(&ev(1, 0, "process", json!({"kind": "exec"}))).len(),
        1
    );
    let mut e = engine("has(process).where(kind == \"exec\") and never(network)");
    e.push(&ev(1, 0, "network", json!({})));
    // A network event does not reach this rule's process pattern, but
    // the trace already has a network event.
    assert!(e
        .push(&ev(2, 1, "process", json!({"kind": "exec"})))
        .is_empty());

    let mut e = engine("has(memory).where(kind == \"ptrace\" and target_comm != comm)");
    assert!(e
        .push(&ev(
            1,
            0,
            "memory",
            json!({"kind": "ptrace", "target_comm": "x"})
        ))
        .is_empty());
    assert_eq!(
        e.push(&ev(
            2,
            1,
            "memory",
            json!({"kind": "ptrace", "target_comm": "sshd"})
        ))
        .len(),
        1
    );

    let mut e = engine("has(process).where(argv contains \"/home\" and exe matches \"*/tar\")");
    assert_eq!(
        e.push(&ev(
            1,
            0,
            "process",
            json!({"argv": ["tar", "czf", "/tmp/x", "/home/ci"], "exe": "/usr/bin/tar"})
        ))
        .len(),
        1
    );
}

#[test]
fn state_is_bounded() {
    let mut e = engine("count(file) > 100000");
    for i in 1..=2000 {
        e.push(&ev(i, 1, "file", json!({})));
    }
    assert_eq!(e.states(), 1);
    let st = e.traces.values().next().unwrap();
    assert_eq!(st.hits[0].len(), PATTERN_CAP);
}

#[test]
fn timestamps() {
    assert_eq!(parse_ts("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_ts("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
    assert_eq!(
        parse_ts("2000-03-01T00:00:00Z"),
        Some(951_868_800_000_000_000)
    );
    assert_eq!(parse_ts("2026-11-22"), None);
}

/// Whether a one-event rule `has(<kind>).where(<cond>)` fires on one event.
fn fires(kind: &str, cond: &str, extra: Value) -> bool {
    let mut e = engine(&format!("has({kind}).where({cond})"));
    !e.push(&ev(1, 0, kind, extra)).is_empty()
}

#[test]
fn each_integer_comparison() {
    let p = |c: &str| fires("network", c, json!({"dport": 443, "uid": 1000}));
    for (cond, want) in [
        ("dport == 443", true),
        ("dport == 80", false),
        ("dport != 80", true),
        ("dport != 443", false),
        ("dport < 444", true),
        ("dport < 443", false),
        ("dport > 442", true),
        ("dport > 443", false),
        ("dport <= 443", true),
        ("dport <= 442", false),
        ("dport >= 443", true),
        ("dport >= 444", false),
        ("dport in [22, 443]", true),
        ("dport in [22, 80]", false),
        ("dport not in [22, 80]", true),
        ("dport not in [443]", false),
        ("dport < uid", true),
        ("dport == uid", false),
    ] {
        assert_eq!(p(cond), want, "{cond}");
    }
}

#[test]
fn each_string_comparison() {
    let p = |c: &str| {
        fires(
            "file",
            c,
            json!({"path": "/home/ci/.ssh/id_rsa", "comm": "id_rsa"}),
        )
    };
    for (cond, want) in [
        ("path == \"/home/ci/.ssh/id_rsa\"", true),
        ("path != \"/home/ci/.ssh/id_rsa\"", false),
        ("path startswith \"/home/\"", true),
        ("path startswith \"/root/\"", false),
        ("path endswith \"id_rsa\"", true),
        ("path endswith \".pub\"", false),
        ("path contains \"/.ssh/\"", true),
        ("path contains \"/.aws/\"", false),
        ("path matches \"/home/*/.ssh/*\"", true),
        ("path matches \"/root/**\"", false),
        ("path in [\"/etc/shadow\", \"/home/ci/.ssh/id_rsa\"]", true),
        ("path not in [\"/etc/shadow\"]", true),
        ("path not in [\"/home/ci/.ssh/id_rsa\"]", false),
        ("path == comm", false),
        ("path != comm", true),
    ] {
        assert_eq!(p(cond), want, "{cond}");
    }
}

#[test]
fn an_absent_field_equals_nothing_and_is_in_nothing() {
    let none = json!({});
    for (cond, want) in [
        ("dport == 22", false),
        ("dport != 22", true),
        ("dport in [22]", false),
        ("dport not in [22]", true),
        ("dport > 0", false),
        ("policy == \"x\"", false),
        ("policy != \"x\"", true),
    ] {
        assert_eq!(fires("network", cond, none.clone()), want, "{cond}");
    }
    // A missing field on the right of a number comparison: only != holds.
    let port = json!({"dport": 22});
    assert!(fires("network", "dport != uid", port.clone()));
    assert!(!fires("network", "dport == uid", port.clone()));
    assert!(!fires("network", "dport < uid", port));
    // A missing text on the right is unequal to anything.
    let addr = json!({"daddr": "10.0.0.1"});
    assert!(fires("network", "daddr != dns_name", addr.clone()));
    assert!(!fires("network", "daddr == dns_name", addr));
}

#[test]
fn booleans_and_lists_compare_by_their_text() {
    let t = json!({"argv_truncated": false, "argv": ["curl", "-d", "@/home/ci/.npmrc"]});
    assert!(fires("process", "argv_truncated == false", t.clone()));
    assert!(!fires("process", "argv_truncated == true", t.clone()));
    assert!(fires("process", "argv endswith \".npmrc\"", t.clone()));
    assert!(fires("process", "argv matches \"@*/.npmrc\"", t.clone()));
    assert!(fires("process", "argv startswith \"cu\"", t.clone()));
    assert!(!fires("process", "argv startswith \"wget\"", t.clone()));
    // A value of the wrong JSON type matches nothing rather than panicking.
    assert!(!fires(
        "process",
        "argv contains \"x\"",
        json!({"argv": "not a list"})
    ));
    assert!(!fires("network", "dport == 22", json!({"dport": "22"})));
    assert!(!fires("file", "path == \"1\"", json!({"path": 1})));
}

#[test]
fn and_or_not_inside_a_where() {
    let e = json!({"dport": 22, "daddr": "10.0.0.1"});
    assert!(fires(
        "network",
        "dport == 22 and daddr startswith \"10.\"",
        e.clone()
    ));
    assert!(!fires(
        "network",
        "dport == 22 and daddr startswith \"11.\"",
        e.clone()
    ));
    assert!(fires(
        "network",
        "dport == 80 or daddr startswith \"10.\"",
        e.clone()
    ));
    assert!(!fires(
        "network",
        "dport == 80 or daddr startswith \"11.\"",
        e.clone()
    ));
    assert!(fires("network", "not dport == 80", e.clone()));
    assert!(!fires("network", "not (dport == 22)", e));
}

#[test]
fn each_count_comparison_fires_when_it_first_holds() {
    // The event id at which `count(file) <op> <n>` first holds; None: never in 4 events.
    let first = |op: &str, n: i64| {
        let mut e = engine(&format!("count(file) {op} {n}"));
        (1..=4).find(|&i| !e.push(&ev(i, i, "file", json!({}))).is_empty())
    };
    assert_eq!(first("==", 3), Some(3));
    assert_eq!(first("!=", 1), Some(2));
    assert_eq!(first("<", 2), Some(1));
    assert_eq!(first("<=", 0), None);
    assert_eq!(first(">", 2), Some(3));
    assert_eq!(first(">=", 4), Some(4));
    assert_eq!(first(">", 4), None);
}

#[test]
fn or_and_not_between_patterns() {
    let mut e = engine("has(file).where(category in creds) or has(network).where(dport == 22)");
    let s = e.push(&ev(1, 0, "network", json!({"dport": 22})));
    assert_eq!(s[0].events, vec![1]);

    let mut e = engine("has(process) and not has(network)");
    e.push(&ev(1, 0, "network", json!({})));
    assert!(e.push(&ev(2, 1, "process", json!({}))).is_empty());
    let mut e = engine("has(process) and not has(network)");
    let s = e.push(&ev(1, 0, "process", json!({})));
    assert_eq!(s[0].events, vec![1], "`not` adds no event of its own");
}

#[test]
fn a_three_step_sequence_takes_the_latest_chain() {
    let mut e = engine("has(file) then has(process) then has(network) within 10s");
    e.push(&ev(1, 0, "file", json!({})));
    e.push(&ev(2, 1, "process", json!({})));
    e.push(&ev(3, 2, "file", json!({})));
    e.push(&ev(4, 3, "process", json!({})));
    let s = e.push(&ev(5, 4, "network", json!({})));
    assert_eq!(s[0].events, vec![3, 4, 5]);
    // Its last step too late for `within`: no signal.
    let mut e = engine("has(file) then has(process) then has(network) within 10s");
    e.push(&ev(1, 0, "file", json!({})));
    e.push(&ev(2, 1, "process", json!({})));
    assert!(e.push(&ev(3, 12, "network", json!({}))).is_empty());
}

#[test]
fn a_signal_carries_the_rule_and_the_completing_event_time() {
    let yaml = "rules:\n  - name: exfil\n    severity: high\n    description: sends a key out\n    tags: [t1048]\n    condition: 'has(file)'\n";
    let mut e = Engine::new(
        compile(&[Source {
            name: "t.yml".into(),
            text: yaml.into(),
        }])
        .unwrap(),
    );
    let event = ev(7, 61, "file", json!({}));
    let s = e.push(&event);
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(
        (
            s.kind,
            s.ts.as_str(),
            s.rule.as_str(),
            s.description.as_str()
        ),
        (
            "signal",
            "2026-11-22T00:01:01.000001Z",
            "exfil",
            "sends a key out"
        )
    );
    assert_eq!(s.severity, Severity::High);
    assert_eq!(s.tags, vec!["t1048".to_string()]);
}

#[test]
fn an_event_without_type_id_or_a_valid_time_is_ignored() {
    let mut e = engine("has(file)");
    let mut bad = ev(1, 0, "file", json!({}));
    bad["ts"] = json!("yesterday");
    assert!(e.push(&bad).is_empty());
    for field in ["type", "id", "ts"] {
        let mut v = ev(2, 0, "file", json!({}));
        v.as_object_mut().unwrap().remove(field);
        assert!(e.push(&v).is_empty(), "without {field}");
    }
    assert_eq!(e.states(), 0);
    assert_eq!(e.push(&ev(3, 0, "file", json!({})))[0].events, vec![3]);
}

#[test]
fn the_trace_root_is_the_process_below_the_nearest_boundary() {
    let root = |v: Value| trace_root(&v);
    let r = |pid, comm: &str| Root {
        pid,
        comm: comm.into(),
    };
    assert_eq!(root(json!({"pid": 5, "comm": "a"})), r(5, "a"));
    assert_eq!(
        root(json!({"pid": 5, "comm": "a", "ancestors": [{"pid": 1, "comm": "init"}]})),
        r(5, "a")
    );
    assert_eq!(
        root(json!({"pid": 9, "comm": "sh", "ancestors": [
            {"pid": 8, "comm": "runc"}, {"pid": 7, "comm": "entry"},
            {"pid": 6, "comm": "containerd-shim"}, {"pid": 2, "comm": "x"}]})),
        r(7, "entry")
    );
    // No boundary and no pid 1 in view: the oldest ancestor shown.
    assert_eq!(
        root(json!({"pid": 9, "comm": "sh", "ancestors": [
            {"pid": 8, "comm": "make"}, {"pid": 7, "comm": "bash"}]})),
        r(7, "bash")
    );
}

fn at_micros(id: u64, pid: u64, us: u64) -> Value {
    json!({
        "type": "file", "id": id, "pid": pid, "comm": "x",
        "ts": format!("2026-11-22T00:00:{:02}.{:06}Z", us / 1_000_000, us % 1_000_000),
        "ancestors": [{"pid": 1, "comm": "systemd"}],
    })
}

#[test]
fn past_the_trace_limit_the_oldest_eighth_is_forgotten() {
    let mut e = engine("count(file) >= 2");
    for i in 0..TRACES_MAX as u64 {
        e.push(&at_micros(i + 1, 1000 + i, i));
    }
    assert_eq!(e.states(), TRACES_MAX);
    e.push(&at_micros(100_000, 999_999, TRACES_MAX as u64));
    // The 2049 oldest states went, the new one came.
    assert_eq!(e.states(), TRACES_MAX - TRACES_MAX / 8 - 1 + 1);
    // The oldest trace starts again from nothing; a recent one kept its count.
    assert!(e.push(&at_micros(100_001, 1000, 20_000)).is_empty());
    assert_eq!(
        e.push(&at_micros(100_002, 1000 + 16_000, 20_001))[0].events,
        vec![16_001, 100_002]
    );
}

#[test]
fn idle_traces_are_swept_every_4096_events() {
    let mut e = engine("count(file) >= 100000");
    e.push(&at_micros(1, 1, 0));
    // 4095 more events of another trace, 61 s later (the window is 60 s).
    for i in 2..=4096 {
        assert_eq!(e.states(), if i == 2 { 1 } else { 2 });
        e.push(&at_micros(i, 2, 61_000_000 + i));
    }
    assert_eq!(e.states(), 1, "the idle trace is gone, the busy one stays");
}

#[test]
fn string_escapes_in_a_condition_are_the_bytes_they_name() {
    let p = json!({"path": "/tmp/a\tb\nc\"d\\e"});
    assert!(fires("file", r#"path == "/tmp/a\tb\nc\"d\\e""#, p.clone()));
    assert!(!fires("file", r#"path == "/tmp/atb\nc\"d\\e""#, p));
}
