//! A flood cannot hide anything (issue 12, class 8): one process making
//! hundreds of thousands of sensitive opens from several threads must not
//! cost another process's credential read its event, and what the flood
//! itself was is still told (folded repeats carry a count, a process over
//! its share is counted by pid).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Four threads open and close the file in argv[1] argv[2] times each,
/// then print "done".
const FLOOD: &str = r#"
import os, sys, threading
path, n = sys.argv[1], int(sys.argv[2])
def hammer():
    for _ in range(n):
        os.close(os.open(path, os.O_RDONLY))
ts = [threading.Thread(target=hammer) for _ in range(4)]
[t.start() for t in ts]
print("started", flush=True)
[t.join() for t in ts]
print("done", flush=True)
"#;

#[test]
fn a_flood_of_one_process_hides_no_other_processs_credential_read() {
    if !root_or_skip("a_flood_of_one_process_hides_no_other_processs_credential_read") {
        return;
    }
    let s = Scratch::new("flood");
    let home = s.path("home");
    let key = home.join(".ssh/id_ed25519");
    let creds = home.join(".aws/credentials");
    for f in [&key, &creds] {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, "not a real secret\n").unwrap();
    }
    for p in [
        home.clone(),
        home.join(".ssh"),
        home.join(".aws"),
        key.clone(),
        creds.clone(),
    ] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let mon = Monitor::start(&s.0, &[]);

    let mut flood = Command::new("python3")
        .args(["-c", FLOOD, key.to_str().unwrap(), "75000"])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let flooder = flood.id();
    let mut out = BufReader::new(flood.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");
    // Three reads of another credential by other processes while the
    // flood runs.
    let mut readers = Vec::new();
    let began = Instant::now();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        readers.push(run(Command::new("cat").arg(&creds).uid(65534).gid(65534)));
    }
    let during = began.elapsed();
    line.clear();
    out.read_line(&mut line).unwrap();
    let flood_took = began.elapsed();
    assert_eq!(line.trim(), "done");
    assert!(flood.wait().unwrap().success());
    let events = mon.stop();
    let _ = std::io::stdout().flush();

    // The reads must have happened during the flood for the test to mean
    // anything.
    assert!(
        during < flood_took,
        "the flood ended before the reads ({during:?} >= {flood_took:?}): make it longer"
    );
    for r in &readers {
        let got = from_pid(&events, "file", *r);
        assert_eq!(
            got.len(),
            1,
            "the read by {r} during a flood by {flooder} was lost ({} events of the flooder)",
            from_pid(&events, "file", flooder).len()
        );
        assert_eq!(got[0]["path"], creds.to_str().unwrap());
        assert_eq!(got[0]["severity"], "critical");
    }
    // The flood is told, not hidden: its events are few, and together with
    // the repeats they carry they account for every open.
    let floods = from_pid(&events, "file", flooder);
    assert!(!floods.is_empty(), "the flooder's opens are reported");
    assert!(
        floods.len() < 5000,
        "repeats of one open are folded: {} events",
        floods.len()
    );
    for e in &floods {
        assert_eq!(e["path"], key.to_str().unwrap(), "{e}");
        assert_eq!(e["category"], "ssh_key", "{e}");
    }
    // An event is one open, or (with `repeats`) a report of that many.
    let told: u64 = floods
        .iter()
        .map(|e| e["repeats"].as_u64().unwrap_or(1))
        .sum();
    assert!(
        floods.iter().any(|e| e["repeats"].as_u64().is_some()),
        "the repeats are reported"
    );
    let suppressed: u64 = from_pid(&events, "tamper", flooder)
        .iter()
        .filter(|e| e["op"] == "flood")
        .map(|e| e["suppressed"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        told + suppressed,
        300_000,
        "every open of the flood is counted: {told} told in events, {suppressed} suppressed"
    );
}

/// Opens and closes each file under argv[1] (every `.env` below it) in
/// rounds, argv[2] rounds, from four threads; prints "started" and "done".
const SPREAD: &str = r#"
import os, sys, threading
root, rounds = sys.argv[1], int(sys.argv[2])
paths = [os.path.join(d, ".env") for d in sorted(os.scandir(root), key=lambda e: e.name) for d in [d.path]]
def hammer(part):
    for _ in range(rounds):
        for p in part:
            os.close(os.open(p, os.O_RDONLY))
ts = [threading.Thread(target=hammer, args=(paths[i::4],)) for i in range(4)]
[t.start() for t in ts]
print("started", flush=True)
[t.join() for t in ts]
print("done", flush=True)
"#;

#[test]
fn a_process_over_its_share_is_counted_by_pid_and_hides_nothing() {
    if !root_or_skip("a_process_over_its_share_is_counted_by_pid_and_hides_nothing") {
        return;
    }
    let s = Scratch::new("share");
    let many = s.path("many");
    const FILES: usize = 3000;
    const ROUNDS: usize = 25;
    for i in 0..FILES {
        let d = many.join(format!("{i:05}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(".env"), "A=1\n").unwrap();
    }
    let creds = s.path("home/.aws/credentials");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
    std::fs::write(&creds, "not a real secret\n").unwrap();
    Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&s.0)
        .status()
        .unwrap();
    let mon = Monitor::start(&s.0, &[]);

    let mut flood = Command::new("python3")
        .args(["-c", SPREAD, many.to_str().unwrap(), &ROUNDS.to_string()])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let flooder = flood.id();
    let mut out = BufReader::new(flood.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");
    let began = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        readers.push(run(Command::new("cat").arg(&creds).uid(65534).gid(65534)));
    }
    let during = began.elapsed();
    line.clear();
    out.read_line(&mut line).unwrap();
    let flood_took = began.elapsed();
    assert!(flood.wait().unwrap().success());
    let events = mon.stop();

    assert!(
        during < flood_took,
        "the flood ended before the reads ({during:?} >= {flood_took:?}): make it longer"
    );
    for r in &readers {
        assert_eq!(
            from_pid(&events, "file", *r).len(),
            1,
            "the read by {r} during a flood by {flooder} was lost"
        );
    }
    let floods = from_pid(&events, "file", flooder);
    let told: u64 = floods
        .iter()
        .filter(|e| e["category"] == "dotenv")
        .map(|e| e["repeats"].as_u64().unwrap_or(1))
        .sum();
    let share: Vec<&Value> = from_pid(&events, "tamper", flooder)
        .into_iter()
        .filter(|e| e["op"] == "flood")
        .collect();
    assert!(!share.is_empty(), "the flood is told by pid");
    for e in &share {
        assert_eq!(e["severity"], "high", "{e}");
    }
    let suppressed: u64 = share
        .iter()
        .map(|e| e["suppressed"].as_u64().unwrap_or(0))
        .sum();
    assert!(suppressed > 0);
    assert_eq!(
        told + suppressed,
        (FILES * ROUNDS) as u64,
        "every open is counted: {told} told, {suppressed} over the share"
    );
}

/// Four threads connect(2) to a UDP socket bound on loopback (a connect
/// there is one cheap syscall and one network record) as fast as they can
/// for argv[1] seconds; prints "started" and "done".
const CONNECTS: &str = r#"
import socket, sys, threading, time
secs = float(sys.argv[1])
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 0))
addr = srv.getsockname()
end = time.monotonic() + secs
def hammer():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while time.monotonic() < end:
        for _ in range(1000):
            s.connect(addr)
ts = [threading.Thread(target=hammer) for _ in range(4)]
[t.start() for t in ts]
print("started", flush=True)
[t.join() for t in ts]
print("done", flush=True)
"#;

#[test]
fn a_connect_flood_of_one_process_hides_no_other_processs_connect() {
    if !root_or_skip("a_connect_flood_of_one_process_hides_no_other_processs_connect") {
        return;
    }
    let s = Scratch::new("netflood");
    // The other processes' destination: a listener of this test, on a port
    // the flood does not use.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor"]);

    let mut flood = Command::new("python3")
        .args(["-c", CONNECTS, "4"])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let flooder = flood.id();
    let mut out = BufReader::new(flood.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");
    let connect = format!("import socket\nsocket.create_connection(('127.0.0.1', {port})).close()");
    let mut clients = Vec::new();
    let began = Instant::now();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        clients.push(run(Command::new("python3")
            .args(["-c", &connect])
            .uid(65534)
            .gid(65534)));
    }
    let during = began.elapsed();
    line.clear();
    out.read_line(&mut line).unwrap();
    let flood_took = began.elapsed();
    assert_eq!(line.trim(), "done");
    assert!(flood.wait().unwrap().success());
    let events = mon.stop();
    drop(listener);

    assert!(
        during < flood_took,
        "the flood ended before the connects ({during:?} >= {flood_took:?}): make it longer"
    );
    let floods = from_pid(&events, "network", flooder);
    for c in &clients {
        let got: Vec<_> = from_pid(&events, "network", *c)
            .into_iter()
            .filter(|e| e["dport"] == port)
            .collect();
        assert_eq!(
            got.len(),
            1,
            "the connect by {c} during a flood by {flooder} was lost ({} events of the flooder)",
            floods.len()
        );
        assert_eq!(got[0]["daddr"], "127.0.0.1", "{}", got[0]);
        assert_eq!(got[0]["result"], "ok", "{}", got[0]);
    }
    // The flood is told, not hidden: a few of its connects, and the rest
    // counted by pid.
    assert!(!floods.is_empty(), "the flooder's connects are reported");
    let share: Vec<&Value> = from_pid(&events, "tamper", flooder)
        .into_iter()
        .filter(|e| e["op"] == "flood")
        .collect();
    assert!(!share.is_empty(), "the flood is told by pid");
    for e in &share {
        assert_eq!(e["severity"], "high", "{e}");
        assert!(e["found"].as_str().unwrap().contains("network"), "{e}");
    }
    let suppressed: u64 = share
        .iter()
        .map(|e| e["suppressed"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        suppressed > floods.len() as u64,
        "most of the flood is counted, not sent: {suppressed} suppressed, {} sent",
        floods.len()
    );
}
