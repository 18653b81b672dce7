//! What reaches the event stream and the reports: a full disk under --output
//! loses events, each one counted and said at once (not only at exit); the
//! reports keep the most severe events when they cannot keep them all.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `python3 -c OPEN_ALL DIR`: opens and closes every file in DIR once.
const OPEN_ALL: &str = "import os, sys\nfor n in sorted(os.listdir(sys.argv[1])): open(os.path.join(sys.argv[1], n)).close()";

#[test]
fn events_a_full_disk_refuses_are_counted_and_said_at_once() {
    if !root_or_skip("events_a_full_disk_refuses_are_counted_and_said_at_once") {
        return;
    }
    let s = Scratch::new("diskfull");
    let full = s.path("full");
    std::fs::create_dir(&full).unwrap();
    // Distinct files: repeats of one open are folded into one report
    // (docs/events.md, Floods), distinct opens are each an event.
    let keys = s.path("keys");
    std::fs::create_dir(&keys).unwrap();
    for i in 0..400 {
        std::fs::write(keys.join(format!("deploy{i}.pem")), "not a key\n").unwrap();
    }
    let ready = s.path("ready");
    let report = s.path("report.json");
    let stderr = s.path("stderr.txt");
    // A 16 KiB tmpfs, private to bee-trace's own mount namespace.
    let script = format!(
        "mount -t tmpfs -o size=16k tmpfs '{full}' && exec '{BIN}' --probe-type file_monitor --format json --output '{full}/events.ndjson' --report-json '{report}' --ready-file '{ready}'",
        full = full.display(),
        report = report.display(),
        ready = ready.display()
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(child.try_wait().unwrap().is_none(), "bee-trace exited");
        assert!(Instant::now() < deadline, "not ready in 60s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Far more events than 16 KiB holds.
    for _ in 0..4 {
        run(Command::new("python3").args(["-c", OPEN_ALL, keys.to_str().unwrap()]));
    }
    // Said while running, before any stop.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let err = std::fs::read_to_string(&stderr).unwrap_or_default();
        if err.contains("events are being lost") {
            break;
        }
        assert!(Instant::now() < deadline, "no warning while running: {err}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let unwritten = r["lost"]["unwritten"].as_u64().unwrap_or(0);
    assert!(unwritten > 100, "unwritten: {}", r["lost"]);
    assert!(r["lost"]["total"].is_null() || r["lost"]["total"].as_u64() >= Some(unwritten));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        err.contains(&format!("not written: {unwritten}")),
        "the summary does not count them: {err}"
    );
}

#[test]
fn a_critical_event_after_a_thousand_warnings_is_in_the_reports() {
    if !root_or_skip("a_critical_event_after_a_thousand_warnings_is_in_the_reports") {
        return;
    }
    let s = Scratch::new("notable");
    let noise = s.path("noise");
    std::fs::create_dir(&noise).unwrap();
    for i in 0..400 {
        std::fs::write(noise.join(format!("n{i}.pem")), "not a key\n").unwrap();
    }
    let ssh = s.path("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_rsa"), "not a key either\n").unwrap();
    let report = s.path("report.json");
    let md = s.path("report.md");
    let m = Monitor::start(
        &s.0,
        &[
            "--probe-type",
            "file_monitor",
            "--report-json",
            report.to_str().unwrap(),
            "--report-md",
            md.to_str().unwrap(),
        ],
    );
    // 1200 warnings: three processes each opening 400 distinct files
    // (within a process's share, and no repeats to fold).
    for _ in 0..3 {
        run(Command::new("python3").args(["-c", OPEN_ALL, noise.to_str().unwrap()]));
    }
    let reader = run(Command::new("cat").arg(ssh.join("id_rsa")));
    let events = m.stop();
    assert!(
        !from_pid(&events, "file", reader).is_empty(),
        "the key read was not seen"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["notable_truncated"], true, "fewer than 1000 warnings");
    let kept = r["notable_events"].as_array().unwrap();
    assert!(
        kept.iter()
            .any(|e| e["pid"] == reader && e["severity"] == "critical"),
        "the critical read is not among the {} kept",
        kept.len()
    );
    assert!(std::fs::read_to_string(&md).unwrap().contains("id_rsa"));
}
