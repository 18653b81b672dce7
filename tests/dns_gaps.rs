//! DNS learning's gaps closed (issue 12, class 5): every address of an
//! answer is learned, not only the first 8; and while blocked domains are
//! in force, DNS whose answers the kernel cannot read (over TCP, as glibc
//! retries a truncated answer, or to a server that is not a resolver) is
//! refused, so a blocked name cannot be resolved around the rule.

mod common;

use common::*;
use serde_json::Value;

/// A name under `evil.test` of 133 bytes in wire format: past the 127 the
/// kernel once matched.
const LONG: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.evil.test";

/// A resolver on 198.51.100.2:53 (UDP) that answers `many.evil.test` with
/// twelve A records, 198.51.100.40 to .51, `good.test` with .10 and LONG
/// with .10; a TCP listener on 198.51.100.2:53 and a UDP server on
/// 198.51.100.3:53 that answer the same.
const SERVER: &str = r#"
import socket, struct, sys, threading
ZONE = {"many.evil.test": [f"198.51.100.{i}" for i in range(40, 52)], "good.test": ["198.51.100.10"],
        "a" * 60 + "." + "b" * 60 + ".evil.test": ["198.51.100.10"]}
def answer(q):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    name = ".".join(labels).lower()
    recs = ZONE.get(name, [])
    out = struct.pack("!HHHHHH", struct.unpack("!H", q[:2])[0], 0x8180, 1, len(recs), 0, 0) + q[12:i+5]
    for a in recs:
        out += struct.pack("!HHHIH", 0xc00c, 1, 1, 60, 4) + socket.inet_aton(a)
    return out
def udp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, 53))
    while True:
        q, peer = s.recvfrom(512); s.sendto(answer(q), peer)
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.2", 53)); s.listen(8)
    while True:
        c, _ = s.accept(); n = struct.unpack("!H", c.recv(2))[0]; a = answer(c.recv(n))
        c.sendall(struct.pack("!H", len(a)) + a); c.close()
for t, a in [(udp, ("198.51.100.2",)), (udp, ("198.51.100.3",)), (tcp, ())]:
    threading.Thread(target=t, args=a, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"#;

/// Each argument: `lookup,NAME` (UDP to the resolver; the addresses),
/// `tcp53,SERVER` / `udp53,SERVER` (ask SERVER for good.test over TCP or
/// UDP; the addresses or the errno), `connect,ADDR` (TCP to ADDR:18081
/// with a 2 s timeout; ok or the errno). Prints a JSON list.
const CLIENT: &str = r#"
import errno, json, socket, struct, sys
def query(name):
    q = struct.pack("!HHHHHH", 0x2468, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    return q + b"\0" + struct.pack("!HH", 1, 1)
def addrs(r):
    an = struct.unpack("!H", r[6:8])[0]; i = 12
    while r[i]: i += 1 + r[i]
    i += 5; out = []
    for _ in range(an):
        i += 12; out.append(socket.inet_ntoa(r[i:i+4])); i += 4
    return out
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))
res = []
for spec in sys.argv[1:]:
    op, a = spec.split(",")
    try:
        if op in ("lookup", "udp53"):
            server, name = ("198.51.100.2", a) if op == "lookup" else (a, "good.test")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
            s.sendto(query(name), (server, 53)); res.append(addrs(s.recv(2048))); s.close()
        elif op == "tcp53":
            s = socket.create_connection((a, 53), 3); q = query("good.test")
            s.sendall(struct.pack("!H", len(q)) + q); n = struct.unpack("!H", s.recv(2))[0]
            res.append(addrs(s.recv(n))); s.close()
        else:
            s = socket.socket(); s.settimeout(2)
            try:
                s.connect((a, 18081)); res.append("ok")
            finally:
                s.close()
    except OSError as e:
        res.append("timeout" if isinstance(e, socket.timeout) else err(e))
print(json.dumps(res))
"#;

const POLICY: &str =
    "network:\n  mode: block\n  blocked_domains: [evil.test]\n  dns_resolvers: [198.51.100.2]\n";

#[test]
fn every_address_of_an_answer_is_learned_and_dns_around_the_rules_is_refused() {
    if !root_or_skip("every_address_of_an_answer_is_learned_and_dns_around_the_rules_is_refused") {
        return;
    }
    let s = Scratch::new("dns-gaps");
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let cfg = write_policy(&s, POLICY);
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    let (pid, out): (u32, Vec<Value>) = python_json(
        CLIENT,
        &[
            "lookup,many.evil.test",
            "connect,198.51.100.40",
            "connect,198.51.100.48",
            "connect,198.51.100.51",
            "tcp53,198.51.100.2",
            "udp53,198.51.100.3",
            "lookup,good.test",
        ],
    );
    let events = mon.stop();

    let twelve: Vec<String> = (40..52).map(|i| format!("198.51.100.{i}")).collect();
    assert_eq!(out[0], serde_json::json!(twelve), "{out:?}");
    assert_eq!(out[1], "EPERM", "the first address: {out:?}");
    assert_eq!(out[2], "EPERM", "the ninth address: {out:?}");
    assert_eq!(out[3], "EPERM", "the twelfth address: {out:?}");
    assert_eq!(out[4], "EPERM", "DNS over TCP is refused: {out:?}");
    assert_eq!(
        out[5], "EPERM",
        "DNS to a server that is not a resolver: {out:?}"
    );
    assert_eq!(
        out[6],
        serde_json::json!(["198.51.100.10"]),
        "the resolver still answers over UDP: {out:?}"
    );

    let net = |daddr: &str, dport: u64| -> Vec<&Value> {
        from_pid(&events, "network", pid)
            .into_iter()
            .filter(|e| e["daddr"] == daddr && e["dport"] == dport)
            .collect()
    };
    let last = net("198.51.100.51", 18081);
    assert_eq!(last.len(), 1, "{}", describe(&events));
    assert_eq!(last[0]["action"], "blocked");
    assert_eq!(last[0]["dns_name"], "many.evil.test");
    let tcp = net("198.51.100.2", 53);
    let tcp: Vec<&&Value> = tcp.iter().filter(|e| e["protocol"] == "tcp").collect();
    assert_eq!(tcp.len(), 1, "{}", describe(&events));
    assert_eq!(tcp[0]["action"], "blocked");
    assert!(
        tcp[0]["rule"].as_str().unwrap().contains("DNS over TCP"),
        "{}",
        tcp[0]
    );
    let rogue = net("198.51.100.3", 53);
    assert_eq!(rogue.len(), 1, "{}", describe(&events));
    assert_eq!(rogue[0]["action"], "blocked");
    assert!(
        rogue[0]["rule"]
            .as_str()
            .unwrap()
            .contains("not a resolver"),
        "{}",
        rogue[0]
    );
}

#[test]
fn a_blocked_names_subdomain_longer_than_127_bytes_is_learned() {
    if !root_or_skip("a_blocked_names_subdomain_longer_than_127_bytes_is_learned") {
        return;
    }
    let s = Scratch::new("dns-long");
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let cfg = write_policy(&s, POLICY);
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    let lookup = format!("lookup,{LONG}");
    let (pid, out): (u32, Vec<Value>) = python_json(
        CLIENT,
        &["connect,198.51.100.10", &lookup, "connect,198.51.100.10"],
    );
    let events = mon.stop();
    assert_eq!(
        out[0], "ECONNREFUSED",
        "reachable (no listener) before: {out:?}"
    );
    assert_eq!(out[1], serde_json::json!(["198.51.100.10"]), "{out:?}");
    assert_eq!(
        out[2], "EPERM",
        "the address of a 133-byte name under evil.test is blocked: {out:?}"
    );
    let blocked: Vec<&Value> = from_pid(&events, "network", pid)
        .into_iter()
        .filter(|e| e["daddr"] == "198.51.100.10" && e["action"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{}", describe(&events));
    assert_eq!(blocked[0]["dns_name"], LONG);
}
