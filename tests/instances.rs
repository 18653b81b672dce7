//! Two bee-trace monitors on one host: neither kills the other, and one's
//! housekeeping (tripwire pins, environ reads) is not a finding for the
//! other, so they do not feed each other events without end.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::*;

#[test]
fn a_second_monitor_with_the_same_kill_rule_is_not_killed_by_the_first() {
    if !root_or_skip("a_second_monitor_with_the_same_kill_rule_is_not_killed_by_the_first") {
        return;
    }
    let s = Scratch::new("two-kill");
    let honey = s.path("honey.txt");
    std::fs::write(&honey, "decoy\n").unwrap();
    let cfg = write_policy(
        &s,
        &format!(
            "files:\n  rules:\n    - path: {}\n      action: kill\n",
            honey.display()
        ),
    );
    let a = Monitor::start_as(
        &s.0,
        "a-",
        "json",
        &["--probe-type", "file_monitor", "--config", &cfg],
    );
    // The second pins the same tripwire (O_PATH) while it starts: the first
    // must neither kill it for that nor report it.
    let b = Monitor::start_as(
        &s.0,
        "b-",
        "json",
        &["--probe-type", "file_monitor", "--config", &cfg],
    );
    let b_pid = b.child.id();
    let out = Command::new("cat")
        .arg(&honey)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "the reader was not killed");
    let b_events = b.stop();
    let a_events = a.stop();
    assert!(
        from_pid(&a_events, "file", b_pid).is_empty(),
        "the second monitor's pin is a finding: {}",
        describe(&a_events)
    );
    for (who, evs) in [("first", &a_events), ("second", &b_events)] {
        assert!(
            evs.iter()
                .any(|e| e["type"] == "file" && e["action"] == "killed"),
            "the {who} did not report the kill: {}",
            describe(evs)
        );
    }
}

#[test]
fn two_monitors_do_not_feed_each_other_environ_reads() {
    if !root_or_skip("two_monitors_do_not_feed_each_other_environ_reads") {
        return;
    }
    let s = Scratch::new("two-env");
    let mut target = Command::new("sleep")
        .arg("30")
        .env("GITHUB_TOKEN", "x")
        .spawn()
        .unwrap();
    let a = Monitor::start_as(&s.0, "a-", "json", &["--probe-type", "memory_monitor"]);
    let b = Monitor::start_as(&s.0, "b-", "json", &["--probe-type", "memory_monitor"]);
    let (a_pid, b_pid) = (a.child.id(), b.child.id());
    let reader = run(Command::new("cat").arg(format!("/proc/{}/environ", target.id())));
    // Each monitor reads the target's environ to name its secret variables;
    // give any ping-pong between them time to show.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let b_events = b.stop();
    let a_events = a.stop();
    let _ = target.kill();
    let _ = target.wait();
    for (who, evs, other) in [("first", &a_events, b_pid), ("second", &b_events, a_pid)] {
        assert!(
            !from_pid(evs, "memory", reader).is_empty(),
            "the {who} did not see the reader: {}",
            describe(evs)
        );
        let echoes = from_pid(evs, "memory", other).len();
        assert_eq!(
            echoes, 0,
            "the {who} reported {echoes} reads by the other monitor"
        );
    }
}
