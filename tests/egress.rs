//! Egress control, for real: the cgroup hooks refuse (or, in audit mode,
//! report) TCP connects, UDP connects and unconnected UDP sends to blocked
//! addresses and CIDRs over IPv4 and IPv6, and in allowlist mode let only the
//! allowed endpoint through. Every destination is inside a network namespace
//! this test creates.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::Value;

/// TCP listeners in the namespace on .2, .3, .10 and ::2, ::3 (port 18081).
const SERVER: &str = r#"
import socket, sys
socks = []
for fam, addr in [(socket.AF_INET, "198.51.100.2"), (socket.AF_INET, "198.51.100.3"),
                  (socket.AF_INET, "198.51.100.10"), (socket.AF_INET6, "2001:db8:b7::2"),
                  (socket.AF_INET6, "2001:db8:b7::3")]:
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 18081)); s.listen(8); socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;

/// Tries each (op, address, port) given as arguments and prints one JSON
/// object: "op address port" -> "ok" or the errno name.
const CLIENT: &str = r#"
import errno, json, socket, sys
out = {}
for spec in sys.argv[1:]:
    op, addr, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    kind = socket.SOCK_STREAM if op == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    try:
        if op == "sendto":
            s.sendto(b"x", (addr, int(port)))
        else:
            s.connect((addr, int(port)))
        out[spec] = "ok"
    except OSError as e:
        out[spec] = errno.errorcode.get(e.errno, str(e.errno))
    s.close()
print(json.dumps(out))
"#;

/// Runs the client; returns its pid and the outcome of each attempt.
fn attempt(specs: &[&str]) -> (u32, HashMap<String, String>) {
    python_json(CLIENT, specs)
}

fn verdict<'a>(events: &'a [Value], pid: u32, daddr: &str, dport: u16) -> &'a Value {
    events
        .iter()
        .find(|e| {
            e["type"] == "network"
                && e["pid"] == pid
                && e["daddr"] == daddr
                && e["dport"] == dport
                && e.get("action").is_some()
        })
        .unwrap_or_else(|| panic!("no verdict for {daddr}:{dport}:\n{}", describe(events)))
}

const BLOCKLIST: &str = "network:\n  mode: MODE\n  blocked_ips:\n    - 198.51.100.3\n    - 198.51.100.8/29\n    - \"2001:db8:b7::3\"\n";

const SPECS: &[&str] = &[
    "tcp,198.51.100.2,18081",
    "tcp,198.51.100.3,18081",
    "tcp,198.51.100.10,18081",
    "tcp,2001:db8:b7::2,18081",
    "tcp,2001:db8:b7::3,18081",
    "udp,198.51.100.10,18053",
    "sendto,198.51.100.3,18053",
    "sendto,2001:db8:b7::3,18053",
    "sendto,198.51.100.2,18053",
];

#[test]
fn block_mode_refuses_blocked_addresses_and_cidrs_with_eperm() {
    if !root_or_skip("block_mode_refuses_blocked_addresses_and_cidrs_with_eperm") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let s = Scratch::new("egress-block");
    let cfg = write_policy(&s, &BLOCKLIST.replace("MODE", "block"));
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let (pid, got) = attempt(SPECS);
    let events = mon.stop();

    let want = [
        ("tcp,198.51.100.2,18081", "ok"),
        ("tcp,198.51.100.3,18081", "EPERM"),
        ("tcp,198.51.100.10,18081", "EPERM"),
        ("tcp,2001:db8:b7::2,18081", "ok"),
        ("tcp,2001:db8:b7::3,18081", "EPERM"),
        ("udp,198.51.100.10,18053", "EPERM"),
        ("sendto,198.51.100.3,18053", "EPERM"),
        ("sendto,2001:db8:b7::3,18053", "EPERM"),
        ("sendto,198.51.100.2,18053", "ok"),
    ];
    for (spec, outcome) in want {
        assert_eq!(got[spec], outcome, "{spec}: {got:?}");
    }
    for (daddr, dport, rule, op, proto) in [
        (
            "198.51.100.3",
            18081,
            "network.blocked_ips: 198.51.100.3",
            "connect",
            "tcp",
        ),
        (
            "198.51.100.10",
            18081,
            "network.blocked_ips: 198.51.100.8/29",
            "connect",
            "tcp",
        ),
        (
            "2001:db8:b7::3",
            18081,
            "network.blocked_ips: 2001:db8:b7::3",
            "connect",
            "tcp",
        ),
        (
            "198.51.100.10",
            18053,
            "network.blocked_ips: 198.51.100.8/29",
            "connect",
            "udp",
        ),
        (
            "198.51.100.3",
            18053,
            "network.blocked_ips: 198.51.100.3",
            "sendmsg",
            "udp",
        ),
        (
            "2001:db8:b7::3",
            18053,
            "network.blocked_ips: 2001:db8:b7::3",
            "sendmsg",
            "udp",
        ),
    ] {
        let e = verdict(&events, pid, daddr, dport);
        assert_eq!(e["action"], "blocked", "{e}");
        assert_eq!(e["result"], "EPERM", "{e}");
        assert_eq!(e["rule"], rule, "{e}");
        assert_eq!(e["op"], op, "{e}");
        assert_eq!(e["protocol"], proto, "{e}");
        assert_eq!(e["severity"], "high", "{e}");
        assert!(e["comm"].as_str().unwrap().starts_with("python3"), "{e}");
        assert!(
            !e["ancestors"].as_array().unwrap().is_empty(),
            "the blocked process's ancestors are named: {e}"
        );
        // One event per refused call: the connect tracepoint's record of the
        // same call is folded into the verdict.
        let same: Vec<_> = events
            .iter()
            .filter(|x| x["pid"] == pid && x["daddr"] == daddr && x["dport"] == dport)
            .collect();
        assert_eq!(same.len(), 1, "{same:?}");
    }
    // The allowed connects are reported as ordinary connects.
    let ok = events
        .iter()
        .find(|e| e["pid"] == pid && e["daddr"] == "198.51.100.2" && e["dport"] == 18081)
        .expect("allowed connect reported");
    assert_eq!(ok["result"], "ok");
    assert!(ok.get("action").is_none(), "{ok}");
    // An unconnected UDP send nobody blocks is still seen.
    let sent = events
        .iter()
        .find(|e| e["pid"] == pid && e["daddr"] == "198.51.100.2" && e["dport"] == 18053)
        .unwrap_or_else(|| panic!("unconnected UDP send not seen:\n{}", describe(&events)));
    assert_eq!(sent["op"], "sendmsg", "{sent}");
    assert_eq!(sent["result"], "sent", "{sent}");
}

#[test]
fn audit_mode_lets_connections_through_and_reports_would_block() {
    if !root_or_skip("audit_mode_lets_connections_through_and_reports_would_block") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let s = Scratch::new("egress-audit");
    let cfg = write_policy(&s, &BLOCKLIST.replace("MODE", "audit"));
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let (pid, got) = attempt(SPECS);
    let events = mon.stop();
    for spec in SPECS {
        assert_eq!(got[*spec], "ok", "{spec}: {got:?}");
    }
    for (daddr, dport) in [
        ("198.51.100.3", 18081),
        ("198.51.100.10", 18081),
        ("2001:db8:b7::3", 18081),
        ("198.51.100.3", 18053),
    ] {
        let e = verdict(&events, pid, daddr, dport);
        assert_eq!(e["action"], "would_block", "{e}");
        assert_eq!(e["result"], "permitted", "{e}");
        assert_eq!(e["severity"], "high", "{e}");
    }
}

#[test]
fn allowlist_mode_lets_only_the_allowed_endpoint_through() {
    if !root_or_skip("allowlist_mode_lets_only_the_allowed_endpoint_through") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let s = Scratch::new("egress-allow");
    let cfg = write_policy(
        &s,
        "network:\n  mode: block\n  allowed_endpoints:\n    - 198.51.100.2:18081\n",
    );
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let (pid, got) = attempt(&[
        "tcp,198.51.100.2,18081",
        "tcp,198.51.100.2,18099",
        "tcp,198.51.100.3,18081",
        "tcp,2001:db8:b7::2,18081",
        "sendto,198.51.100.2,18053",
        "tcp,127.0.0.1,1",
    ]);
    let events = mon.stop();
    assert_eq!(got["tcp,198.51.100.2,18081"], "ok", "{got:?}");
    // Another port on the allowed host, another host, another family: refused.
    assert_eq!(got["tcp,198.51.100.2,18099"], "EPERM", "{got:?}");
    assert_eq!(got["tcp,198.51.100.3,18081"], "EPERM", "{got:?}");
    assert_eq!(got["tcp,2001:db8:b7::2,18081"], "EPERM", "{got:?}");
    assert_eq!(got["sendto,198.51.100.2,18053"], "EPERM", "{got:?}");
    // Loopback stays allowed: nothing listens there, so the kernel refuses.
    assert_eq!(got["tcp,127.0.0.1,1"], "ECONNREFUSED", "{got:?}");
    let e = verdict(&events, pid, "198.51.100.3", 18081);
    assert_eq!(e["action"], "blocked", "{e}");
    assert_eq!(e["rule"], "not in network.allowed_endpoints", "{e}");
}
