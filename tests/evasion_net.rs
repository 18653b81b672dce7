//! Network evasions, for real (issue 12, classes 3 and 4): connects that are
//! not connect(2) (io_uring, TCP Fast Open) are each one event; raw and
//! packet sockets are reported when made, and their packets to blocked
//! destinations are dropped below the socket layer and reported. Every
//! destination is inside a network namespace this test creates; the acting
//! processes run as uid 65534 (with only CAP_NET_RAW where the act needs it).

mod common;
#[path = "evasion_net/harness.rs"]
mod harness;
#[path = "evasion_net/scripts.rs"]
mod scripts;

use common::*;
use harness::*;
use scripts::*;
use serde_json::Value;

#[test]
fn io_uring_and_fast_open_connects_are_one_event_each_in_audit_mode() {
    if !root_or_skip("io_uring_and_fast_open_connects_are_one_event_each_in_audit_mode") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, LISTENER);
    let s = Scratch::new("evasion-net-connects");
    let uring = compile(&s.0, "uring_connect", URING_CONNECT_C);
    let cfg = write_policy(
        &s,
        "network:\n  mode: audit\n  blocked_ips:\n    - 198.51.100.3\n",
    );
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let uring = uring.to_str().unwrap();
    let (u_ok, r_ok) = as_nobody("", &[uring, "198.51.100.2", "18091"]);
    let (u_bad, r_bad) = as_nobody("", &[uring, "198.51.100.3", "18091"]);
    let py = "/usr/bin/python3";
    let (t_ok, tr_ok) = as_nobody("", &[py, "-c", TFO_CLIENT, "198.51.100.2", "18091"]);
    let (t_bad, tr_bad) = as_nobody("", &[py, "-c", TFO_CLIENT, "198.51.100.3", "18091"]);
    // The ordinary connect(2) stays one event too.
    let (plain, _) = as_nobody(
        "",
        &[
            py,
            "-c",
            "import socket; s = socket.socket(); s.connect(('198.51.100.2', 18091)); s.close()",
        ],
    );
    let events = mon.stop();
    assert_eq!(
        (r_ok.as_str(), r_bad.as_str()),
        ("0", "0"),
        "audit mode lets both through"
    );
    assert_eq!((tr_ok.as_str(), tr_bad.as_str()), ("ok", "ok"));

    for (pid, daddr, what) in [
        (u_ok, "198.51.100.2", "io_uring"),
        (t_ok, "198.51.100.2", "fast open"),
        (plain, "198.51.100.2", "connect(2)"),
    ] {
        let got = to(&events, pid, daddr, 18091);
        assert_eq!(got.len(), 1, "{what}: one event:\n{}", describe(&events));
        let e = got[0];
        assert_eq!(e["op"], "connect", "{what}: {e}");
        assert_eq!(e["protocol"], "tcp", "{what}: {e}");
        assert_eq!(e["uid"], 65534, "{what}: {e}");
        assert_eq!(e["severity"], "info", "{what}: {e}");
        assert!(e.get("action").is_none(), "{what}: {e}");
        let want = if what == "connect(2)" {
            "ok"
        } else {
            "attempted"
        };
        assert_eq!(e["result"], want, "{what}: {e}");
    }
    for (pid, what) in [(u_bad, "io_uring"), (t_bad, "fast open")] {
        let got = to(&events, pid, "198.51.100.3", 18091);
        assert_eq!(got.len(), 1, "{what}: one verdict:\n{}", describe(&events));
        let e = got[0];
        assert_eq!(e["op"], "connect", "{what}: {e}");
        assert_eq!(e["action"], "would_block", "{what}: {e}");
        assert_eq!(
            e["rule"], "network.blocked_ips: 198.51.100.3",
            "{what}: {e}"
        );
        assert_eq!(e["severity"], "high", "{what}: {e}");
    }
}

#[test]
fn a_credential_read_then_an_io_uring_connect_raises_the_egress_rule() {
    if !root_or_skip("a_credential_read_then_an_io_uring_connect_raises_the_egress_rule") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, LISTENER);
    let s = Scratch::new("evasion-net-rule");
    let uring = compile(&s.0, "uring_connect", URING_CONNECT_C);
    let home = s.path("home");
    let creds = home.join(".aws/credentials");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
    std::fs::write(&creds, "[default]\n").unwrap();
    for p in [&home, &home.join(".aws"), &creds] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let mon = Monitor::start(&s.0, &[]);
    let script = format!(
        "cat {} > /dev/null; exec {} 198.51.100.2 18091",
        creds.display(),
        uring.display()
    );
    let (steal, res) = as_nobody("", &["/bin/sh", "-c", &script]);
    let events = mon.stop();
    assert_eq!(res, "0", "the io_uring connect succeeded");
    let connect = from_tree(&events, "network", steal)
        .into_iter()
        .find(|e| e["daddr"] == "198.51.100.2" && e["dport"] == 18091)
        .unwrap_or_else(|| panic!("no io_uring connect event:\n{}", describe(&events)));
    assert_eq!(connect["op"], "connect", "{connect}");
    let read = from_tree(&events, "file", steal)
        .into_iter()
        .find(|e| e["path"] == creds.to_str().unwrap())
        .unwrap_or_else(|| panic!("no credential read:\n{}", describe(&events)));
    let g = events
        .iter()
        .find(|g| {
            g["type"] == "signal"
                && g["rule"] == "credential-read-then-egress"
                && in_tree(connect, g["root"]["pid"].as_u64().unwrap() as u32)
        })
        .unwrap_or_else(|| panic!("no credential-read-then-egress:\n{}", describe(&events)));
    assert_eq!(g["severity"], "critical", "{g}");
    assert_eq!(
        g["events"],
        serde_json::json!([read["id"], connect["id"]]),
        "{g}"
    );
}

#[test]
fn raw_packet_and_ping_sockets_are_reported_when_made() {
    if !root_or_skip("raw_packet_and_ping_sockets_are_reported_when_made") {
        return;
    }
    let s = Scratch::new("evasion-net-sockets");
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor"]);
    let py = "/usr/bin/python3";
    // AF_INET SOCK_RAW ICMP, AF_INET6 SOCK_RAW IPPROTO_RAW, AF_PACKET
    // SOCK_RAW ETH_P_ALL (htons(3) = 768), AF_PACKET SOCK_DGRAM ETH_P_IP
    // (htons(0x800) = 8): with CAP_NET_RAW, as uid 65534.
    let specs = ["2,3,1", "10,3,255", "17,3,768", "17,2,8"];
    let mut argv = vec![py, "-c", SOCKETS];
    argv.extend(specs);
    let (raw, out) = as_nobody("+net_raw", &argv);
    let made: Value = serde_json::from_str(&out).unwrap();
    // Without the capability the raw socket is refused, and a ping socket
    // needs a group in net.ipv4.ping_group_range: both attempts are seen.
    let (plain, out) = as_nobody(
        "",
        &[py, "-c", SOCKETS, "2,3,1", "2,2,1", "2,1,6", "2,2,17"],
    );
    let refused: Value = serde_json::from_str(&out).unwrap();
    let events = mon.stop();
    for spec in specs {
        assert_eq!(made[spec], "ok", "{spec}: {made}");
    }
    assert_eq!(refused["2,3,1"], "EPERM", "{refused}");

    let sockets = |pid| -> Vec<&Value> {
        from_pid(&events, "network", pid)
            .into_iter()
            .filter(|e| e["op"] == "socket")
            .collect()
    };
    let got = sockets(raw);
    assert_eq!(got.len(), 4, "{}", describe(&events));
    for (e, (family, kind, proto)) in got.iter().zip([
        ("ipv4", "raw", "icmp"),
        ("ipv6", "raw", "raw"),
        ("packet", "raw", "ethertype-0x0003"),
        ("packet", "dgram", "ethertype-0x0800"),
    ]) {
        assert_eq!(e["family"], family, "{e}");
        assert_eq!(e["sock_type"], kind, "{e}");
        assert_eq!(e["protocol"], proto, "{e}");
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["severity"], "warning", "{e}");
        assert_eq!(e["uid"], 65534, "{e}");
        assert!(e.get("daddr").is_none(), "{e}");
    }
    // The refused raw socket and the ping socket; an ordinary TCP or UDP
    // socket is no event.
    let got = sockets(plain);
    assert_eq!(got.len(), 2, "{}", describe(&events));
    assert_eq!(
        (&got[0]["sock_type"], &got[0]["protocol"], &got[0]["result"]),
        (&"raw".into(), &"icmp".into(), &"EPERM".into()),
        "{}",
        got[0]
    );
    assert_eq!(
        (&got[1]["sock_type"], &got[1]["protocol"]),
        (&"dgram".into(), &"icmp".into()),
        "{}",
        got[1]
    );
    assert_eq!(got[1]["result"], refused["2,2,1"], "{}", got[1]);
}

#[test]
fn raw_ping_and_udplite_packets_to_a_blocked_address_are_dropped_and_reported() {
    if !root_or_skip("raw_ping_and_udplite_packets_to_a_blocked_address_are_dropped_and_reported") {
        return;
    }
    let (pid, out, events) = below_the_hooks("block");
    assert_eq!(out["raw_allowed"], "reply", "{out}");
    assert_eq!(out["raw_blocked"], "EPERM", "{out}");
    assert_eq!(out["ping_blocked"], "EPERM", "{out}");
    assert_eq!(out["raw_connect"], "connect:ok send:EPERM", "{out}");
    assert_eq!(out["udplite_connect"], "connect:ok send:EPERM", "{out}");

    // Raw and ping echoes: one report per protocol and destination, not one
    // per packet (four ICMP packets went to .3 from this process).
    let packets = verdicts_on_blocked(&events, pid, "packet");
    let icmp: Vec<_> = packets.iter().filter(|e| e["protocol"] == "icmp").collect();
    assert_eq!(icmp.len(), 1, "{}", describe(&events));
    let e = icmp[0];
    assert_eq!(e["action"], "blocked", "{e}");
    assert_eq!(e["result"], "dropped", "{e}");
    assert_eq!(e["rule"], "network.blocked_ips: 198.51.100.3", "{e}");
    assert_eq!(e["severity"], "high", "{e}");
    assert_eq!(e["uid"], 65534, "{e}");
    let udplite: Vec<_> = packets
        .iter()
        .filter(|e| e["protocol"] == "udplite")
        .collect();
    assert_eq!(udplite.len(), 1, "{}", describe(&events));
    assert_eq!(udplite[0]["dport"], 18053, "{}", udplite[0]);

    // The raw and UDP-Lite connects are verdicts, not allowed connects.
    let connects = verdicts_on_blocked(&events, pid, "connect");
    assert_eq!(connects.len(), 2, "{}", describe(&events));
    for e in &connects {
        assert_eq!(e["action"], "blocked", "{e}");
        assert_eq!(e["result"], "packets_dropped", "{e}");
        assert_ne!(e["result"], "ok", "{e}");
    }
    assert!(
        connects.iter().any(|e| e["protocol"] == "icmp"),
        "{connects:?}"
    );
    assert!(connects
        .iter()
        .any(|e| e["protocol"] == "udplite" && e["dport"] == 18053));
    // Nothing is reported for the allowed destination's packets.
    assert!(
        from_pid(&events, "network", pid)
            .iter()
            .all(|e| e["daddr"] != "198.51.100.2" || e.get("action").is_none()),
        "{}",
        describe(&events)
    );
}

#[test]
fn in_audit_mode_packets_below_the_hooks_pass_and_are_reported_as_would_block() {
    if !root_or_skip("in_audit_mode_packets_below_the_hooks_pass_and_are_reported_as_would_block") {
        return;
    }
    let (pid, out, events) = below_the_hooks("audit");
    assert_eq!(out["raw_blocked"], "reply", "{out}");
    assert_eq!(out["ping_blocked"], "reply", "{out}");
    assert_eq!(out["raw_connect"], "connect:ok send:ok", "{out}");
    let icmp: Vec<_> = verdicts_on_blocked(&events, pid, "packet")
        .into_iter()
        .filter(|e| e["protocol"] == "icmp")
        .collect();
    assert_eq!(icmp.len(), 1, "{}", describe(&events));
    assert_eq!(icmp[0]["action"], "would_block", "{}", icmp[0]);
    assert_eq!(icmp[0]["result"], "permitted", "{}", icmp[0]);
    let connects = verdicts_on_blocked(&events, pid, "connect");
    assert_eq!(connects.len(), 2, "{}", describe(&events));
    for e in connects {
        assert_eq!(e["action"], "would_block", "{e}");
    }
}

#[test]
fn af_packet_frames_to_a_blocked_address_are_dropped_and_reported() {
    if !root_or_skip("af_packet_frames_to_a_blocked_address_are_dropped_and_reported") {
        return;
    }
    let ns = Netns::new();
    let counter = Counter::start(&ns, &["198.51.100.2:18053", "198.51.100.3:18053"]);
    let s = Scratch::new("evasion-net-packet");
    let cfg = blocked_policy(&s, "block");
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let mac = peer_mac(&ns);
    let (pid, out) = as_nobody(
        "+net_raw",
        &[
            "/usr/bin/python3",
            "-c",
            PACKET_SENDER,
            &ns.veth,
            &mac,
            "0",
            "198.51.100.2",
            "198.51.100.3",
        ],
    );
    let got = counter.finish();
    let events = mon.stop();
    assert_eq!(
        got["198.51.100.2:18053"], 3,
        "the allowed frames arrive: {got} {out}"
    );
    assert_eq!(
        got["198.51.100.3:18053"], 0,
        "the blocked ones do not: {got} {out}"
    );
    let v: Vec<_> = verdicts_on_blocked(&events, pid, "packet");
    assert_eq!(
        v.len(),
        1,
        "one report for three frames:\n{}",
        describe(&events)
    );
    let e = v[0];
    assert_eq!(e["action"], "blocked", "{e}");
    assert_eq!(e["result"], "dropped", "{e}");
    assert_eq!(e["protocol"], "udp", "{e}");
    assert_eq!(e["dport"], 18053, "{e}");
    assert_eq!(e["rule"], "network.blocked_ips: 198.51.100.3", "{e}");
    assert_eq!(e["uid"], 65534, "{e}");
    // The packet socket itself was reported when made.
    assert!(
        from_pid(&events, "network", pid)
            .iter()
            .any(|e| e["op"] == "socket" && e["family"] == "packet"),
        "{}",
        describe(&events)
    );
}

/// A packet socket made for another protocol (an EtherType no one routes)
/// sends IPv4 frames: the skb says that protocol, the frame and every
/// receiver say IPv4. The backstop judges what the frame is.
#[test]
fn af_packet_frames_under_a_false_protocol_are_judged_by_their_own_header() {
    if !root_or_skip("af_packet_frames_under_a_false_protocol_are_judged_by_their_own_header") {
        return;
    }
    let ns = Netns::new();
    let counter = Counter::start(&ns, &["198.51.100.2:18053", "198.51.100.3:18053"]);
    let s = Scratch::new("evasion-net-packet-proto");
    let cfg = blocked_policy(&s, "block");
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let mac = peer_mac(&ns);
    let (pid, out) = as_nobody(
        "+net_raw",
        &[
            "/usr/bin/python3",
            "-c",
            PACKET_SENDER,
            &ns.veth,
            &mac,
            "88b5",
            "198.51.100.2",
            "198.51.100.3",
        ],
    );
    let got = counter.finish();
    let events = mon.stop();
    assert_eq!(
        got["198.51.100.2:18053"], 3,
        "the allowed frames arrive as IPv4: {got} {out}"
    );
    assert_eq!(
        got["198.51.100.3:18053"], 0,
        "the blocked ones do not: {got} {out}"
    );
    let v: Vec<_> = verdicts_on_blocked(&events, pid, "packet");
    assert_eq!(v.len(), 1, "{}", describe(&events));
    assert_eq!(v[0]["action"], "blocked", "{}", v[0]);
    assert_eq!(
        v[0]["rule"], "network.blocked_ips: 198.51.100.3",
        "{}",
        v[0]
    );
}

#[test]
fn a_vxlan_device_whose_remote_is_blocked_carries_nothing_out() {
    if !root_or_skip("a_vxlan_device_whose_remote_is_blocked_carries_nothing_out") {
        return;
    }
    let ns = Netns::new();
    let counter = Counter::start(&ns, &["198.51.100.2:4789", "198.51.100.3:4789"]);
    let s = Scratch::new("evasion-net-vxlan");
    let cfg = blocked_policy(&s, "block");
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    // Made after bee-trace started, as a job with sudo would.
    let _ok = Vxlan::new(&ns, 1, "198.51.100.2");
    let _bad = Vxlan::new(&ns, 2, "198.51.100.3");
    let (pid, _) = as_nobody(
        "",
        &[
            "/usr/bin/python3",
            "-c",
            UDP_SENDER,
            "10.213.1.2",
            "10.213.2.2",
        ],
    );
    let got = counter.finish();
    let events = mon.stop();
    assert!(
        got["198.51.100.2:4789"].as_u64().unwrap() >= 3,
        "the allowed remote gets the encapsulated datagrams: {got}"
    );
    assert_eq!(
        got["198.51.100.3:4789"],
        0,
        "the blocked remote gets nothing: {got}\n{}",
        describe(&events)
    );
    let v = verdicts_on_blocked(&events, pid, "packet");
    assert_eq!(v.len(), 1, "one report:\n{}", describe(&events));
    let e = v[0];
    assert_eq!(e["action"], "blocked", "{e}");
    assert_eq!(e["result"], "dropped", "{e}");
    assert_eq!(e["protocol"], "udp", "{e}");
    assert_eq!(e["dport"], 4789, "{e}");
    assert_eq!(e["uid"], 65534, "{e}");
}

#[test]
fn an_interface_made_after_start_is_covered_and_sigkill_leaves_no_link() {
    if !root_or_skip("an_interface_made_after_start_is_covered_and_sigkill_leaves_no_link") {
        return;
    }
    let ns = Netns::new();
    let counter = Counter::start(&ns, &["198.51.100.2:4789"]);
    let s = Scratch::new("evasion-net-newdev");
    let cfg = blocked_policy(&s, "block");
    let mut mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let pid = mon.child.id();
    assert!(covered(pid, &ns.veth), "the veth is covered from the start");
    // A tunnel made while bee-trace runs; frames written straight onto it
    // whose inner destination is blocked.
    let vx = Vxlan::new(&ns, 3, "198.51.100.2");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !covered(pid, &vx.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} not covered within 10 s: {}",
            vx.0,
            mon.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (sender, out) = as_nobody(
        "+net_raw",
        &[
            "/usr/bin/python3",
            "-c",
            PACKET_SENDER,
            &vx.0,
            "02:00:00:00:00:02",
            "0",
            "198.51.100.2",
            "198.51.100.3",
        ],
    );
    let got = counter.finish();
    assert_eq!(
        got["198.51.100.2:4789"], 3,
        "the three frames to the allowed address went through the tunnel, none to the blocked one: {got} {out}"
    );
    // SIGKILL: the kernel lets go of every tcx link with the process.
    let ours: Vec<u64> = tcx_links(pid).iter().map(|(id, _)| *id).collect();
    assert!(ours.len() >= 2, "{ours:?}");
    mon.child.kill().unwrap();
    mon.child.wait().unwrap();
    let events = read_events(&mon.events_path);
    let v = verdicts_on_blocked(&events, sender, "packet");
    assert_eq!(v.len(), 1, "{}", describe(&events));
    assert_eq!(v[0]["action"], "blocked", "{}", v[0]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left: Vec<u64> = bpftool_json(&["link", "show"])
            .iter()
            .filter_map(|l| l["id"].as_u64())
            .filter(|id| ours.contains(id))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tcx links {left:?} left 10 s after SIGKILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn io_uring_and_fast_open_connects_are_one_event_each_in_block_mode() {
    if !root_or_skip("io_uring_and_fast_open_connects_are_one_event_each_in_block_mode") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, LISTENER);
    let s = Scratch::new("evasion-net-connects-block");
    let uring = compile(&s.0, "uring_connect", URING_CONNECT_C);
    let cfg = blocked_policy(&s, "block");
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let uring = uring.to_str().unwrap();
    let py = "/usr/bin/python3";
    let (u_ok, r_ok) = as_nobody("", &[uring, "198.51.100.2", "18091"]);
    let (u_bad, r_bad) = as_nobody("", &[uring, "198.51.100.3", "18091"]);
    let (t_ok, tr_ok) = as_nobody("", &[py, "-c", TFO_CLIENT, "198.51.100.2", "18091"]);
    let (t_bad, tr_bad) = as_nobody("", &[py, "-c", TFO_CLIENT, "198.51.100.3", "18091"]);
    let events = mon.stop();
    assert_eq!(
        (r_ok.as_str(), r_bad.as_str()),
        ("0", "-1"),
        "-EPERM for the blocked one"
    );
    assert_eq!((tr_ok.as_str(), tr_bad.as_str()), ("ok", "EPERM"));
    for (pid, what) in [(u_ok, "io_uring"), (t_ok, "fast open")] {
        let got = to(&events, pid, "198.51.100.2", 18091);
        assert_eq!(got.len(), 1, "{what}:\n{}", describe(&events));
        assert_eq!(got[0]["result"], "attempted", "{what}: {}", got[0]);
        assert!(got[0].get("action").is_none(), "{what}: {}", got[0]);
    }
    for (pid, what) in [(u_bad, "io_uring"), (t_bad, "fast open")] {
        let got = to(&events, pid, "198.51.100.3", 18091);
        assert_eq!(got.len(), 1, "{what}:\n{}", describe(&events));
        assert_eq!(got[0]["action"], "blocked", "{what}: {}", got[0]);
        assert_eq!(got[0]["result"], "EPERM", "{what}: {}", got[0]);
        assert_eq!(got[0]["op"], "connect", "{what}: {}", got[0]);
    }
}

#[test]
fn raw_icmpv6_to_a_blocked_address_is_dropped_and_reported() {
    if !root_or_skip("raw_icmpv6_to_a_blocked_address_is_dropped_and_reported") {
        return;
    }
    let ns = Netns::new();
    let s = Scratch::new("evasion-net-raw6");
    let cfg = write_policy(
        &s,
        "network:\n  mode: block\n  blocked_ips:\n    - \"2001:db8:b7::3\"\n",
    );
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let (pid, out) = as_nobody(
        "+net_raw",
        &[
            "/usr/bin/python3",
            "-c",
            RAW6,
            "2001:db8:b7::2",
            "2001:db8:b7::3",
        ],
    );
    let events = mon.stop();
    drop(ns);
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["allowed"], "reply", "{out}");
    assert_eq!(out["blocked"], "EPERM", "{out}");
    let v: Vec<_> = from_pid(&events, "network", pid)
        .into_iter()
        .filter(|e| e["op"] == "packet" && e["daddr"] == "2001:db8:b7::3")
        .collect();
    assert_eq!(v.len(), 1, "{}", describe(&events));
    let e = v[0];
    assert_eq!(e["family"], "ipv6", "{e}");
    assert_eq!(e["protocol"], "icmpv6", "{e}");
    assert_eq!(e["action"], "blocked", "{e}");
    assert_eq!(e["rule"], "network.blocked_ips: 2001:db8:b7::3", "{e}");
}

/// The backstops judge the kernel's own raw ICMPv6 sockets too (neighbour
/// discovery): an allowlist must not drop them, or no IPv6 peer, allowed or
/// not, is reachable.
#[test]
fn an_allowlist_keeps_ipv6_neighbour_discovery_working() {
    if !root_or_skip("an_allowlist_keeps_ipv6_neighbour_discovery_working") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, LISTENER6);
    let s = Scratch::new("evasion-net-allow6");
    let cfg = write_policy(
        &s,
        "network:\n  mode: block\n  allowed_endpoints:\n    - \"[2001:db8:b7::2]:18092\"\n",
    );
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    // A fresh namespace: the neighbour is not known yet.
    let (_, out) = as_nobody(
        "",
        &[
            "/usr/bin/python3",
            "-c",
            "import socket\ns = socket.socket(socket.AF_INET6); s.settimeout(5)\ntry:\n    s.connect(('2001:db8:b7::2', 18092)); print('ok')\nexcept OSError as e: print(e)",
        ],
    );
    let events = mon.stop();
    assert_eq!(
        out,
        "ok",
        "the allowed IPv6 endpoint is reachable:\n{}",
        describe(&events)
    );
}
