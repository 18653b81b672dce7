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
