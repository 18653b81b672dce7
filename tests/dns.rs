//! Domain rules learned from DNS answers, for real: a small DNS server in a
//! network namespace answers; the kernel reads the answer on its way to the
//! client and the connect right after the lookup is judged by it.

mod common;

use common::*;
use serde_json::Value;

/// A DNS server on 198.51.100.2:53 and TCP listeners on .3, .10 and ::3
/// (port 18081). Names are matched without regard to case.
const SERVER: &str = r#"
import socket, struct, sys, threading
ZONE = {
    "evil.test": [(1, "198.51.100.3"), (28, "2001:db8:b7::3")],
    "good.test": [(1, "198.51.100.10")],
    "cdn.good.test": [(1, "198.51.100.10")],
    "other.test": [(1, "198.51.100.3")],
}
def answer(q):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    name = ".".join(labels).lower(); qtype = struct.unpack("!H", q[i+1:i+3])[0]
    recs = [r for r in ZONE.get(name, []) if r[0] == qtype]
    out = q[:2] + struct.pack("!HHHHH", 0x8180 if name in ZONE else 0x8183, 1, len(recs), 0, 0) + q[12:i+5]
    for t, a in recs:
        raw = socket.inet_pton(socket.AF_INET if t == 1 else socket.AF_INET6, a)
        out += struct.pack("!HHHIH", 0xc00c, t, 1, 60, len(raw)) + raw
    return out
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dns.bind(("198.51.100.2", 53))
def serve():
    while True:
        q, peer = dns.recvfrom(512); dns.sendto(answer(q), peer)
threading.Thread(target=serve, daemon=True).start()
socks = []
for fam, addr in [(socket.AF_INET, "198.51.100.3"), (socket.AF_INET, "198.51.100.10"),
                  (socket.AF_INET6, "2001:db8:b7::3")]:
    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 18081)); s.listen(8); socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;

/// Each argument is `lookup,NAME,TYPE` (ask the server, print the addresses)
/// or `tcp,ADDR` (connect to ADDR:18081 at once). Prints a JSON list of the
/// outcomes in order.
const CLIENT: &str = r#"
import errno, json, socket, struct, sys
def lookup(name, qtype):
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack("!HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.connect(("198.51.100.2", 53)); s.send(q); r = s.recv(1024); s.close()
    an = struct.unpack("!H", r[6:8])[0]; i = 12
    while r[i]: i += 1 + r[i]
    i += 5; out = []
    for _ in range(an):
        i += 2
        t, _, _, n = struct.unpack("!HHIH", r[i:i+10]); i += 10
        out.append(socket.inet_ntop(socket.AF_INET if t == 1 else socket.AF_INET6, r[i:i+n])); i += n
    return out
res = []
for spec in sys.argv[1:]:
    op, *a = spec.split(",")
    if op == "lookup":
        res.append(lookup(a[0], 1 if a[1] == "A" else 28))
    else:
        fam = socket.AF_INET6 if ":" in a[0] else socket.AF_INET
        s = socket.socket(fam); s.settimeout(5)
        try:
            s.connect((a[0], 18081)); res.append("ok")
        except OSError as e:
            res.append(errno.errorcode.get(e.errno, str(e.errno)))
        s.close()
print(json.dumps(res))
"#;

fn client(specs: &[&str]) -> (u32, Vec<Value>) {
    python_json(CLIENT, specs)
}

fn network_events<'a>(events: &'a [Value], pid: u32, daddr: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == "network" && e["pid"] == pid && e["daddr"] == daddr)
        .collect()
}

#[test]
fn a_blocked_names_address_is_refused_right_after_the_lookup() {
    if !root_or_skip("a_blocked_names_address_is_refused_right_after_the_lookup") {
        return;
    }
    let s = Scratch::new("dns-block");
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let cfg = write_policy(
        &s,
        "network:\n  mode: block\n  blocked_domains: [evil.test]\n  dns_resolvers: [198.51.100.2]\n",
    );
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    let (pid, out) = client(&[
        "tcp,198.51.100.3",
        "lookup,EVIL.test,A",
        "tcp,198.51.100.3",
        "lookup,evil.test,AAAA",
        "tcp,2001:db8:b7::3",
        "lookup,good.test,A",
        "tcp,198.51.100.10",
    ]);
    let events = mon.stop();
    assert_eq!(out[0], "ok", "before the lookup nothing is known: {out:?}");
    assert_eq!(out[1], serde_json::json!(["198.51.100.3"]));
    assert_eq!(out[2], "EPERM", "refused right after the lookup: {out:?}");
    assert_eq!(out[4], "EPERM", "the AAAA answer too: {out:?}");
    assert_eq!(out[6], "ok", "{out:?}");

    let blocked: Vec<&Value> = network_events(&events, pid, "198.51.100.3")
        .into_iter()
        .filter(|e| e["action"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{}", describe(&events));
    assert_eq!(blocked[0]["dns_name"], "evil.test");
    assert_eq!(blocked[0]["rule"], "network.blocked_domains: evil.test");
    let v6 = network_events(&events, pid, "2001:db8:b7::3");
    assert_eq!(v6.len(), 1, "{}", describe(&events));
    assert_eq!(v6[0]["action"], "blocked");
    assert_eq!(v6[0]["dns_name"], "evil.test");
    // An allowed connect still says which name its address came from.
    let good = network_events(&events, pid, "198.51.100.10");
    assert_eq!(good.len(), 1, "{}", describe(&events));
    assert_eq!(good[0]["dns_name"], "good.test");
    assert!(good[0].get("action").is_none());
}

#[test]
fn a_wildcard_allowlist_entry_admits_the_address_its_lookup_returned() {
    if !root_or_skip("a_wildcard_allowlist_entry_admits_the_address_its_lookup_returned") {
        return;
    }
    let s = Scratch::new("dns-allow");
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let cfg = write_policy(
        &s,
        // The allowlist covers every process on the host, the DNS server
        // in the namespace too: its answers to the host must be allowed.
        "network:\n  mode: block\n  allowed_endpoints: [\"*.good.test:18081\", \"198.51.100.2:53\", \"198.51.100.1\"]\n  dns_resolvers: [198.51.100.2]\n",
    );
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    let (pid, out) = client(&[
        "tcp,198.51.100.10",
        "lookup,cdn.good.test,A",
        "tcp,198.51.100.10",
        "lookup,other.test,A",
        "tcp,198.51.100.3",
    ]);
    let events = mon.stop();
    assert_eq!(
        out[0], "EPERM",
        "not allowed before its name was looked up: {out:?}"
    );
    assert_eq!(out[2], "ok", "allowed right after: {out:?}");
    assert_eq!(out[4], "EPERM", "a name outside the allowlist: {out:?}");
    let refused = network_events(&events, pid, "198.51.100.3");
    assert_eq!(refused.len(), 1, "{}", describe(&events));
    assert_eq!(refused[0]["rule"], "not in network.allowed_endpoints");
    assert_eq!(refused[0]["dns_name"], "other.test");
}
