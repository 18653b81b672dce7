//! A DNS answer the kernel cannot read whole must not let a blocked name
//! through: answered with more address records than the kernel reads, or
//! with its address records past the bytes it looks at, the answer of a
//! blocked domain is dropped before the client gets it (block mode) or
//! reported (audit mode), never handed over with the addresses that were
//! not learned unblocked.

mod common;

use common::*;
use serde_json::Value;

/// A resolver on 198.51.100.2:53 (UDP). `many.evil.test`: 65 A records,
/// 198.51.100.100 to .163, then 198.51.100.3 last. `pad.evil.test`: an A
/// record of 198.51.100.200, nine TXT records of 256 bytes, then
/// 198.51.100.3 (about 2.5 KiB: its last record starts past 2 KiB).
/// `few.evil.test`: .200 and .3, a whole answer. And a TCP listener on
/// 198.51.100.3:18081.
const SERVER: &str = r#"
import socket, struct, sys, threading
def a(addr):
    return struct.pack("!HHHIH", 0xc00c, 1, 1, 60, 4) + socket.inet_aton(addr)
def txt():
    return struct.pack("!HHHIH", 0xc00c, 16, 1, 60, 256) + bytes([255]) + b"p" * 255
ZONE = {
    "many.evil.test": [a(f"198.51.100.{i}") for i in range(100, 164)] + [a("198.51.100.3")],
    "pad.evil.test": [a("198.51.100.200")] + [txt() for _ in range(9)] + [a("198.51.100.3")],
    "few.evil.test": [a("198.51.100.200"), a("198.51.100.3")],
}
def answer(q):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    recs = ZONE.get(".".join(labels).lower(), [])
    head = struct.pack("!HHHHHH", struct.unpack("!H", q[:2])[0], 0x8180, 1, len(recs), 0, 0)
    return head + q[12:i+5] + b"".join(recs)
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dns.bind(("198.51.100.2", 53))
def serve():
    while True:
        q, peer = dns.recvfrom(512); dns.sendto(answer(q), peer)
threading.Thread(target=serve, daemon=True).start()
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("198.51.100.3", 18081)); lst.listen(8)
print("ready", flush=True)
sys.stdin.read()
"#;

/// Each argument a name: ask the resolver for its A records (one query,
/// 2 s), then connect to the last address answered (TCP, port 18081, 2 s).
/// Prints a JSON list: `no_answer`, or `[addresses answered, the last one,
/// the connect's outcome]`.
const CLIENT: &str = r#"
import errno, json, socket, struct, sys
def query(name):
    q = struct.pack("!HHHHHH", 0x5a5a, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    return q + b"\0" + struct.pack("!HH", 1, 1)
def addrs(r):
    an = struct.unpack("!H", r[6:8])[0]; i = 12
    while r[i]: i += 1 + r[i]
    i += 5; out = []
    for _ in range(an):
        t, _, _, n = struct.unpack("!HHIH", r[i+2:i+12]); i += 12
        if t == 1: out.append(socket.inet_ntoa(r[i:i+4]))
        i += n
    return out
res = []
for name in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(query(name), ("198.51.100.2", 53))
    try:
        got = addrs(s.recv(4096))
    except socket.timeout:
        res.append("no_answer"); continue
    finally:
        s.close()
    c = socket.socket(); c.settimeout(2)
    try:
        c.connect((got[-1], 18081)); out = "ok"
    except socket.timeout:
        out = "timeout"
    except OSError as e:
        out = errno.errorcode.get(e.errno, str(e.errno))
    c.close()
    res.append([len(got), got[-1], out])
print(json.dumps(res))
"#;

fn policy(mode: &str) -> String {
    format!("network:\n  mode: {mode}\n  blocked_domains: [evil.test]\n  dns_resolvers: [198.51.100.2]\n")
}

/// The client's lookups of `names` under a monitor in `mode`: its pid, what
/// it got, and every event.
fn run_lookups(tag: &str, mode: &str, names: &[&str]) -> (u32, Vec<Value>, Vec<Value>) {
    let s = Scratch::new(tag);
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let cfg = write_policy(&s, &policy(mode));
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    let (pid, out): (u32, Vec<Value>) = python_json(CLIENT, names);
    (pid, out, mon.stop())
}

/// The `dns_answer` events of `pid` for `name`.
fn cut_answers<'a>(events: &'a [Value], pid: u32, name: &str) -> Vec<&'a Value> {
    from_pid(events, "network", pid)
        .into_iter()
        .filter(|e| e["op"] == "dns_answer" && e["dns_name"] == name)
        .collect()
}

fn assert_cut(events: &[Value], pid: u32, name: &str, cut: &str, action: &str, result: &str) {
    let seen = cut_answers(events, pid, name);
    assert_eq!(seen.len(), 1, "one report of {name}: {}", describe(events));
    let e = seen[0];
    assert_eq!(e["answer_cut"], cut, "{e}");
    assert_eq!(e["action"], action, "{e}");
    assert_eq!(e["result"], result, "{e}");
    assert_eq!(e["rule"], "network.blocked_domains: evil.test", "{e}");
    assert_eq!(e["daddr"], "198.51.100.2", "the resolver: {e}");
    assert_eq!(e["severity"], "high", "{e}");
}

#[test]
fn a_blocked_names_answer_the_kernel_cannot_read_whole_is_dropped() {
    if !root_or_skip("a_blocked_names_answer_the_kernel_cannot_read_whole_is_dropped") {
        return;
    }
    let (pid, out, events) = run_lookups(
        "dns-cut-block",
        "block",
        &["many.evil.test", "pad.evil.test", "few.evil.test"],
    );
    assert_eq!(
        out[0], "no_answer",
        "65 A records, the one connected to last: the answer must not reach the client: {out:?}"
    );
    assert_eq!(
        out[1], "no_answer",
        "an address record past 2 KiB: the answer must not reach the client: {out:?}"
    );
    assert_eq!(
        out[2],
        serde_json::json!([2, "198.51.100.3", "EPERM"]),
        "a whole answer is learned and let through: {out:?}"
    );
    assert_cut(
        &events,
        pid,
        "many.evil.test",
        "too_many_records",
        "blocked",
        "dropped",
    );
    assert_cut(
        &events,
        pid,
        "pad.evil.test",
        "too_long",
        "blocked",
        "dropped",
    );
    assert!(
        cut_answers(&events, pid, "few.evil.test").is_empty(),
        "{}",
        describe(&events)
    );
}

#[test]
fn in_audit_mode_a_blocked_names_answer_not_read_whole_is_reported() {
    if !root_or_skip("in_audit_mode_a_blocked_names_answer_not_read_whole_is_reported") {
        return;
    }
    let (pid, out, events) = run_lookups(
        "dns-cut-audit",
        "audit",
        &["many.evil.test", "pad.evil.test"],
    );
    assert_eq!(
        serde_json::json!(out),
        serde_json::json!([[65, "198.51.100.3", "ok"], [2, "198.51.100.3", "ok"]]),
        "audit mode lets the answers and the connects through"
    );
    assert_cut(
        &events,
        pid,
        "many.evil.test",
        "too_many_records",
        "would_block",
        "permitted",
    );
    assert_cut(
        &events,
        pid,
        "pad.evil.test",
        "too_long",
        "would_block",
        "permitted",
    );
}
