//! Live reload, for real: SIGHUP puts a new policy in force without
//! detaching (new blocklist, new watched files, new canaries), loses no event
//! of a file both policies watch while it happens, and a bad policy leaves the
//! old one working.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::*;

const SERVER: &str = r#"
import socket, sys
socks = []
for addr in ["198.51.100.2", "198.51.100.3"]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 18082)); s.listen(8); socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;

/// Connects to .2 and .3; returns address -> "ok" or the errno name.
fn connect_both() -> HashMap<String, String> {
    python_json(
        r#"
import errno, json, socket
out = {}
for a in ["198.51.100.2", "198.51.100.3"]:
    s = socket.socket(); s.settimeout(5)
    try:
        s.connect((a, 18082)); out[a] = "ok"
    except OSError as e:
        out[a] = errno.errorcode.get(e.errno, str(e.errno))
    s.close()
print(json.dumps(out))
"#,
        &[],
    )
    .1
}

/// How many egress_connect4 programs this instance (pid) has: the ones it
/// holds open and the ones its links run (so a program left attached by a
/// reload still counts). Other bee-trace instances on the host have their
/// own and are not counted.
fn egress_programs(pid: u32) -> usize {
    let mut ours = held_ids(pid, "prog_id");
    let links = held_ids(pid, "link_id");
    for l in bpftool_json(&["link", "show"]) {
        if l["id"].as_u64().is_some_and(|id| links.contains(&id)) {
            ours.extend(l["prog_id"].as_u64());
        }
    }
    bpftool_json(&["prog", "show"])
        .iter()
        .filter(|p| p["name"] == "egress_connect4")
        .filter_map(|p| p["id"].as_u64())
        .filter(|id| ours.contains(id))
        .count()
}

#[test]
fn sighup_puts_a_new_policy_in_force_and_a_bad_one_is_refused() {
    if !root_or_skip("sighup_puts_a_new_policy_in_force_and_a_bad_one_is_refused") {
        return;
    }
    let s = Scratch::new("reload");
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let both = s.path("both.txt"); // watched by both policies
    let first = s.path("first.txt");
    let second = s.path("second.txt");
    for f in [&both, &first, &second] {
        std::fs::write(f, "x\n").unwrap();
    }
    let c1 = s.path("home1/.npmrc");
    let c2 = s.path("home2/.netrc");
    std::fs::create_dir_all(s.path("home1")).unwrap();
    std::fs::create_dir_all(s.path("home2")).unwrap();
    // home2 belongs to another user: the canary a reload plants there (after
    // the privilege drop) must still be that user's.
    std::os::unix::fs::chown(s.path("home2"), Some(65534), Some(65534)).unwrap();
    let cfg = s.path("policy.yml");
    let write = |blocked: &str, watched: &std::path::Path, canary: &std::path::Path| {
        std::fs::write(
            &cfg,
            format!(
                "network:\n  mode: block\n  blocked_ips: [\"{blocked}\"]\nfiles:\n  watch_read: [\"{}\", \"{}\"]\ncanaries:\n  - path: {}\n    action: alert\n",
                both.display(),
                watched.display(),
                canary.display()
            ),
        )
        .unwrap();
    };
    write("198.51.100.3", &first, &c1);

    let mon = Monitor::start(&s.0, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(egress_programs(mon.child.id()), 1);
    let before = connect_both();
    assert_eq!(before["198.51.100.2"], "ok");
    assert_eq!(before["198.51.100.3"], "EPERM");
    assert!(c1.is_file() && !c2.exists());

    // Reads of `both` run through the reload: every one must be reported.
    let mut reader = Command::new("python3")
        .args([
            "-c",
            "import sys, time\nfor i in range(400):\n    open(sys.argv[1]).close()\n    time.sleep(0.005)\n",
            both.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    write("198.51.100.2", &second, &c2);
    let outcome = mon.reload();
    assert!(outcome.contains("policy reloaded"), "{outcome}");
    let reader_pid = reader.id();
    assert!(reader.wait().unwrap().success());

    let after = connect_both();
    assert_eq!(
        after["198.51.100.2"], "EPERM",
        "the new blocklist is in force"
    );
    assert_eq!(after["198.51.100.3"], "ok", "the old block is lifted");
    assert!(
        !c1.exists() && !s.path("home1/.npmrc").exists(),
        "the dropped canary is removed"
    );
    assert!(c2.is_file(), "the new canary is planted");
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&c2).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (65534, 65534),
            "owned like its directory"
        );
    }
    let read_first = run(Command::new("cat").arg(&first));
    let read_second = run(Command::new("cat").arg(&second));
    assert_eq!(egress_programs(mon.child.id()), 1, "no duplicate programs");

    // A policy that does not parse changes nothing.
    std::fs::write(&cfg, "network:\n  mode: sideways\n").unwrap();
    let outcome = mon.reload();
    assert!(
        outcome.contains("refused") && outcome.contains("line 2"),
        "{outcome}"
    );
    let still = connect_both();
    assert_eq!(still["198.51.100.2"], "EPERM");
    assert_eq!(still["198.51.100.3"], "ok");
    assert!(c2.is_file());
    // So does one whose values are invalid.
    std::fs::write(&cfg, "network:\n  blocked_ips: [\"198.51.100.300\"]\n").unwrap();
    let outcome = mon.reload();
    assert!(outcome.contains("network.blocked_ips[0]"), "{outcome}");
    assert_eq!(connect_both()["198.51.100.2"], "EPERM");

    let events = mon.stop();
    assert!(!c2.exists(), "canaries are removed at exit");
    // A repeat within a second is folded into a report with `repeats`
    // (docs/events.md, Floods): each event is one read, or that many.
    let reads: u64 = from_pid(&events, "file", reader_pid)
        .iter()
        .map(|e| e["repeats"].as_u64().unwrap_or(1))
        .sum();
    assert_eq!(
        reads, 400,
        "every read of a file both policies watch is reported across the reload"
    );
    assert!(
        from_pid(&events, "file", read_first).is_empty(),
        "{}",
        describe(&events)
    );
    assert_eq!(from_pid(&events, "file", read_second).len(), 1);
    let blocked: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "network" && e["action"] == "blocked")
        .map(|e| (e["daddr"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert!(blocked.contains(&("198.51.100.3", "network.blocked_ips: 198.51.100.3")));
    assert!(blocked.contains(&("198.51.100.2", "network.blocked_ips: 198.51.100.2")));
}
