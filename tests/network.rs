//! Network sensor, for real: TCP and UDP over IPv4 and IPv6 to a listener in
//! a network namespace this test creates (documentation-range addresses on a
//! veth pair; nothing leaves the machine).

mod common;

use std::process::Command;

use common::*;

const SERVER: &str = r#"
import socket, sys
s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s4.bind(("198.51.100.2", 18081)); s4.listen(8)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s6.bind(("2001:db8:b7::2", 18086)); s6.listen(8)
print("ready", flush=True)
sys.stdin.read()
"#;

const CLIENT: &str = r#"
import socket
for fam, addr, port, kind in [(socket.AF_INET, "198.51.100.2", 18081, socket.SOCK_STREAM),
                              (socket.AF_INET6, "2001:db8:b7::2", 18086, socket.SOCK_STREAM),
                              (socket.AF_INET, "198.51.100.2", 18053, socket.SOCK_DGRAM),
                              (socket.AF_INET6, "2001:db8:b7::2", 18053, socket.SOCK_DGRAM)]:
    s = socket.socket(fam, kind); s.connect((addr, port)); s.close()  # blocking: the result is final
"#;

#[test]
fn tcp_and_udp_connects_over_ipv4_and_ipv6() {
    if !root_or_skip("tcp_and_udp_connects_over_ipv4_and_ipv6") {
        return;
    }
    let ns = Netns::new();
    let server = NsServer::start(&ns, SERVER);
    let s = Scratch::new("net");
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor"]);
    let client = run(Command::new("python3").args(["-c", CLIENT]));
    let refused = run(Command::new("python3").args([
        "-c",
        "import socket\ns=socket.socket()\ntry: s.connect(('198.51.100.2', 18099))\nexcept ConnectionRefusedError: pass",
    ]));
    let events = mon.stop();
    drop(server);

    let got = from_pid(&events, "network", client);
    let find = |daddr: &str, dport: u16, proto: &str| {
        got.iter()
            .find(|e| e["daddr"] == daddr && e["dport"] == dport && e["protocol"] == proto)
            .unwrap_or_else(|| {
                panic!(
                    "no {proto} connect to {daddr}:{dport}:\n{}",
                    describe(&events)
                )
            })
    };
    for (daddr, dport, proto, family) in [
        ("198.51.100.2", 18081, "tcp", "ipv4"),
        ("2001:db8:b7::2", 18086, "tcp", "ipv6"),
        ("198.51.100.2", 18053, "udp", "ipv4"),
        ("2001:db8:b7::2", 18053, "udp", "ipv6"),
    ] {
        let e = find(daddr, dport, proto);
        assert_eq!(e["family"], family, "{e}");
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["severity"], "info", "{e}");
        assert!(e["comm"].as_str().unwrap().starts_with("python3"), "{e}");
    }
    let r = from_pid(&events, "network", refused);
    assert_eq!(r.len(), 1, "{}", describe(&events));
    assert_eq!(r[0]["result"], "ECONNREFUSED", "{}", r[0]);
    assert!(
        events.iter().all(|e| e["type"] == "network"),
        "network_monitor reports only network events"
    );
}
