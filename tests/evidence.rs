//! Signed evidence, for real: a signed run's stream verifies; an edited byte,
//! a deleted record, or a stream cut short by SIGKILL is found by
//! `bee-trace verify` at the record where it happened.

mod common;

use std::process::Command;

use common::*;

/// A key file as bee-trace accepts one: readable by its owner only.
fn write_key(path: &std::path::Path, key: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(key))
        .unwrap();
}

fn verify(file: &std::path::Path, key: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(file)
        .arg("--key")
        .arg(key)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_signed_stream_verifies_and_tampering_is_found() {
    if !root_or_skip("a_signed_stream_verifies_and_tampering_is_found") {
        return;
    }
    let s = Scratch::new("evidence");
    let key = s.path("sign.key");
    write_key(&key, b"test-key-0123456789abcdef-0123456789\n");
    let secret = s.path("home/.ssh/id_ed25519");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, "planted").unwrap();

    let mon = Monitor::start(&s.0, &["--sign-key", key.to_str().unwrap()]);
    for _ in 0..3 {
        run(Command::new("cat").arg(&secret));
    }
    let events = mon.stop();
    let stream = s.path("events.ndjson");
    // Every record carries seq and mac; the last is the seal.
    assert!(events.len() >= 4, "{}", describe(&events));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "{e}");
        assert!(e["mac"].as_str().is_some_and(|m| m.len() == 64), "{e}");
    }
    let seal = events.last().unwrap();
    assert_eq!(seal["type"], "seal");
    assert_eq!(seal["count"], events.len() as u64 - 1);
    assert!(events
        .iter()
        .any(|e| e["type"] == "file" && e["path"] == secret.to_str().unwrap()));
    let (ok, out) = verify(&stream, &key);
    assert!(ok, "{out}");
    assert!(
        out.starts_with(&format!("OK: {} records", events.len() - 1)),
        "{out}"
    );

    let text = std::fs::read_to_string(&stream).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let file_line = lines
        .iter()
        .position(|l| l.contains("\"type\":\"file\"") && l.contains("id_ed25519"))
        .unwrap();
    let tampered = s.path("tampered.ndjson");

    // One edited byte in a file event's path.
    let mut t: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    t[file_line] = t[file_line].replacen("id_ed25519", "id_ed25518", 1);
    std::fs::write(&tampered, t.join("\n") + "\n").unwrap();
    let (ok, out) = verify(&tampered, &key);
    assert!(!ok);
    assert!(
        out.contains(&format!("record {}", file_line + 1)) && out.contains("MAC mismatch"),
        "{out}"
    );

    // A record deleted.
    let mut t: Vec<&str> = lines.clone();
    t.remove(file_line);
    std::fs::write(&tampered, t.join("\n") + "\n").unwrap();
    let (ok, out) = verify(&tampered, &key);
    assert!(!ok && out.contains("deleted"), "{out}");

    // The wrong key.
    let other = s.path("other.key");
    write_key(&other, b"another-key-0123456789abcdef");
    let (ok, out) = verify(&stream, &other);
    assert!(!ok && out.contains("record 1"), "{out}");

    // A run killed before it could seal: the stream is reported truncated.
    let s2 = Scratch::new("evidence-kill");
    let mut mon = Monitor::start(&s2.0, &["--sign-key", key.to_str().unwrap()]);
    run(Command::new("cat").arg(&secret));
    // A critical event is flushed at once: wait until it is on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(s2.path("events.ndjson"))
        .unwrap_or_default()
        .contains("\"type\":\"file\"")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the file event was not written"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    mon.child.kill().unwrap();
    mon.child.wait().unwrap();
    let (ok, out) = verify(&s2.path("events.ndjson"), &key);
    assert!(!ok && out.contains("truncated"), "{out}");
}

#[test]
fn signing_needs_json_and_a_real_key() {
    let s = Scratch::new("evidence-args");
    let short = s.path("short.key");
    write_key(&short, b"short");
    let out = Command::new(BIN)
        .args(["--format", "json", "--sign-key"])
        .arg(&short)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fewer than 16 bytes"), "{err}");
    let key = s.path("ok.key");
    write_key(&key, b"0123456789abcdef0123");
    let out = Command::new(BIN)
        .args(["--format", "human", "--sign-key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format json"));
}

#[test]
fn a_record_holds_every_event_after_its_schema_header_signed_too() {
    if !root_or_skip("a_record_holds_every_event_after_its_schema_header_signed_too") {
        return;
    }
    let s = Scratch::new("record");
    let key = s.path("k");
    write_key(&key, b"record-key-0123456789abcdef");
    let rec = s.path("run.record");
    let secret = s.path("home/.aws/credentials");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, "[default]\n").unwrap();
    let mon = Monitor::start(
        &s.0,
        &[
            "--record",
            rec.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
        ],
    );
    let pid = run(Command::new("cat").arg(&secret));
    let events = mon.stop();
    let text = std::fs::read_to_string(&rec).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "record");
    assert_eq!(lines[0]["schema"], 1);
    assert_eq!(lines.last().unwrap()["type"], "seal");
    // The same events, in the same order, with the same ids.
    let ids = |v: &[serde_json::Value]| -> Vec<u64> {
        v.iter().filter_map(|e| e["id"].as_u64()).collect()
    };
    assert_eq!(ids(&lines[1..]), ids(&events));
    assert!(lines
        .iter()
        .any(|e| e["type"] == "file" && e["pid"] == pid && e["category"] == "cloud_credential"));
    let (ok, out) = verify(&rec, &key);
    assert!(ok, "{out}");
}
