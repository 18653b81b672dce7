//! Domain rules learned from DNS answers, for real: a small DNS server in a
//! network namespace answers; the kernel reads the answer on its way to the
//! client and the connect right after the lookup is judged by it.

mod common;

use common::*;
use std::process::Command;

use serde_json::Value;

/// A DNS server on 198.51.100.2:53 (the resolver the policies name), a rogue
/// one on 198.51.100.3:53 answering the same, and TCP listeners on .3, .10
/// and ::3 (port 18081). Names are matched without regard to case.
/// `badid.*` is answered with the query's id plus one; `swap-good.test` and
/// `swap-evil.test` with the question and records of `cdn.good.test` and
/// `evil.test` instead of the one asked. A datagram `spoof NAME ADDR` to
/// 198.51.100.2:5300 is answered from 198.51.100.2:53 with an answer
/// `NAME -> ADDR` that no query asked for.
const SERVER: &str = r#"
import socket, struct, sys, threading
ZONE = {
    "evil.test": [(1, "198.51.100.3"), (28, "2001:db8:b7::3")],
    "good.test": [(1, "198.51.100.10")],
    "cdn.good.test": [(1, "198.51.100.10")],
    "other.test": [(1, "198.51.100.3")],
    "badid.good.test": [(1, "198.51.100.10")],
    "badid.evil.test": [(1, "198.51.100.3")],
}
SWAP = {"swap-good.test": "cdn.good.test", "swap-evil.test": "evil.test"}
def wire(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
def answer(q):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    name = ".".join(labels).lower(); qtype = struct.unpack("!H", q[i+1:i+3])[0]
    qid = struct.unpack("!H", q[:2])[0]
    if name.startswith("badid."):
        qid = (qid + 1) & 0xffff
    question = q[12:i+5]
    if name in SWAP:
        name = SWAP[name]; question = wire(name) + q[i+1:i+5]
    recs = [r for r in ZONE.get(name, []) if r[0] == qtype]
    out = struct.pack("!HHHHHH", qid, 0x8180 if name in ZONE else 0x8183, 1, len(recs), 0, 0) + question
    for t, a in recs:
        raw = socket.inet_pton(socket.AF_INET if t == 1 else socket.AF_INET6, a)
        out += struct.pack("!HHHIH", 0xc00c, t, 1, 60, len(raw)) + raw
    return out
def udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, port)); return s
dns, rogue, ctl = udp("198.51.100.2", 53), udp("198.51.100.3", 53), udp("198.51.100.2", 5300)
def serve(s):
    while True:
        q, peer = s.recvfrom(512); s.sendto(answer(q), peer)
def spoof():
    while True:
        m, peer = ctl.recvfrom(512); _, name, addr = m.decode().split()
        out = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + wire(name) + struct.pack("!HH", 1, 1)
        out += struct.pack("!HHHIH", 0xc00c, 1, 1, 60, 4) + socket.inet_aton(addr)
        dns.sendto(out, peer)
for target, arg in [(serve, dns), (serve, rogue), (spoof, None)]:
    threading.Thread(target=target, args=(arg,) if arg else (), daemon=True).start()
socks = []
for fam, addr in [(socket.AF_INET, "198.51.100.3"), (socket.AF_INET, "198.51.100.10"),
                  (socket.AF_INET6, "2001:db8:b7::3")]:
    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 18081)); s.listen(8); socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;

/// Each argument is `lookup,NAME,TYPE[,SERVER]` (ask SERVER, by default
/// 198.51.100.2, and print the addresses), `both,NAME` (ask for A and AAAA at
/// once, from one socket with one id), `spoof,NAME,ADDR` (have the server
/// send this socket an answer nobody asked for; print its addresses) or
/// `tcp,ADDR` (connect to ADDR:18081 at once). Prints a JSON list of the
/// outcomes in order.
const CLIENT: &str = r#"
import errno, json, socket, struct, sys
def addrs(r):
    an = struct.unpack("!H", r[6:8])[0]; i = 12
    while r[i]: i += 1 + r[i]
    i += 5; out = []
    for _ in range(an):
        i += 2
        t, _, _, n = struct.unpack("!HHIH", r[i:i+10]); i += 10
        out.append(socket.inet_ntop(socket.AF_INET if t == 1 else socket.AF_INET6, r[i:i+n])); i += n
    return out
def lookup(name, qtype, server):
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack("!HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.connect((server, 53)); s.send(q); r = s.recv(1024); s.close()
    return addrs(r)
def both(name):
    # As glibc may: A and AAAA from one socket with one id, both in flight.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.connect(("198.51.100.2", 53))
    for qtype in (1, 28):
        q = struct.pack("!HHHHHH", 0x4321, 0x0100, 1, 0, 0, 0)
        for l in name.split("."):
            q += bytes([len(l)]) + l.encode()
        s.send(q + b"\0" + struct.pack("!HH", qtype, 1))
    out = addrs(s.recv(1024)) + addrs(s.recv(1024)); s.close()
    return sorted(out)
def spoof(name, addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.bind(("198.51.100.1", 0)); s.sendto(f"spoof {name} {addr}".encode(), ("198.51.100.2", 5300))
    r = s.recv(1024); s.close()
    return addrs(r)
res = []
for spec in sys.argv[1:]:
    op, *a = spec.split(",")
    if op == "lookup":
        res.append(lookup(a[0], 1 if a[1] == "A" else 28, a[2] if len(a) > 2 else "198.51.100.2"))
    elif op == "both":
        res.append(both(a[0]))
    elif op == "spoof":
        res.append(spoof(a[0], a[1]))
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
fn a_and_aaaa_asked_at_once_with_one_id_are_both_learned() {
    if !root_or_skip("a_and_aaaa_asked_at_once_with_one_id_are_both_learned") {
        return;
    }
    let s = Scratch::new("dns-both");
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let cfg = write_policy(
        &s,
        "network:\n  mode: block\n  blocked_domains: [evil.test]\n  dns_resolvers: [198.51.100.2]\n",
    );
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    let (_, out) = client(&["both,evil.test", "tcp,198.51.100.3", "tcp,2001:db8:b7::3"]);
    mon.stop();
    assert_eq!(
        out[0],
        serde_json::json!(["198.51.100.3", "2001:db8:b7::3"])
    );
    assert_eq!(out[1], "EPERM", "the A answer was learned: {out:?}");
    assert_eq!(out[2], "EPERM", "the AAAA answer was learned: {out:?}");
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

/// The policy of the tests below: in block mode, `evil.test` blocked and
/// every subdomain of `good.test` allowed on 18081; 198.51.100.3:18081 is
/// allowed by address, so a block learned for it shows. 198.51.100.2 (every
/// port: its answers inside namespaces too), 198.51.100.3:53 (the rogue
/// server) and the host side stay reachable. Only 198.51.100.2 is a resolver.
const GUARDED: &str = "network:\n  mode: block\n  blocked_domains: [evil.test]\n  allowed_endpoints: [\"*.good.test:18081\", \"198.51.100.3:18081\", \"198.51.100.3:53\", \"198.51.100.2\", \"198.51.100.1\"]\n  dns_resolvers: [198.51.100.2]\n";

/// A monitor on GUARDED with the namespace's servers running.
struct Guarded {
    _server: NsServer,
    ns: Netns,
    mon: Monitor,
    _s: Scratch,
}

fn guarded(tag: &str) -> Guarded {
    let s = Scratch::new(tag);
    let ns = Netns::new();
    let server = NsServer::start(&ns, SERVER);
    let cfg = write_policy(&s, GUARDED);
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    Guarded {
        _server: server,
        ns,
        mon,
        _s: s,
    }
}

/// After `what` (which must have learned nothing): 198.51.100.10 is still
/// refused and 198.51.100.3 still reachable, neither named by a DNS name;
/// then real lookups through the resolver change both, so the test can tell.
/// (Two processes: a connect right after a refused one to the same
/// destination by the same process is not reported on its own.)
fn assert_nothing_learned(g: Guarded, what: &str) {
    let (before, out) = client(&["tcp,198.51.100.10", "tcp,198.51.100.3"]);
    let (after, real) = client(&[
        "lookup,cdn.good.test,A",
        "lookup,evil.test,A",
        "tcp,198.51.100.10",
        "tcp,198.51.100.3",
    ]);
    let events = g.mon.stop();
    assert_eq!(
        out[0], "EPERM",
        "{what} let cdn.good.test -> 198.51.100.10 into the allowlist: {out:?}"
    );
    assert_eq!(
        out[1], "ok",
        "{what} put evil.test -> 198.51.100.3 into the blocklist: {out:?}"
    );
    assert_eq!(real[2], "ok", "a real answer is still learned: {real:?}");
    assert_eq!(real[3], "EPERM", "a real answer is still learned: {real:?}");
    for daddr in ["198.51.100.10", "198.51.100.3"] {
        let seen = network_events(&events, before, daddr);
        assert_eq!(seen.len(), 1, "{daddr}: {seen:?}");
        assert!(
            seen[0].get("dns_name").is_none_or(Value::is_null),
            "{what} named {daddr}: {}",
            seen[0]
        );
        let seen = network_events(&events, after, daddr);
        assert_eq!(seen.len(), 1, "{daddr}: {seen:?}");
        assert!(seen[0]["dns_name"].is_string(), "{}", seen[0]);
    }
}

/// The attack of issue 10: a job, as nobody, in a user and network
/// namespace of its own, puts the resolver's address on its loopback, asks
/// itself and answers with the address of its choice.
const SELF_ANSWER: &str = r#"
import json, socket, struct, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "addr", "add", "198.51.100.2/32", "dev", "lo"], check=True)
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(("198.51.100.2", 53))
res = []
for spec in sys.argv[1:]:
    name, addr = spec.split("=")
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(5)
    c.connect(("198.51.100.2", 53)); c.send(q)
    got, peer = srv.recvfrom(512)
    srv.sendto(got[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + got[12:]
               + struct.pack("!HHHIH", 0xc00c, 1, 1, 60, 4) + socket.inet_aton(addr), peer)
    r = c.recv(512); c.close(); res.append(socket.inet_ntoa(r[-4:]))
print(json.dumps(res))
"#;

#[test]
fn a_job_answering_itself_in_its_own_namespaces_is_not_learned() {
    if !root_or_skip("a_job_answering_itself_in_its_own_namespaces_is_not_learned") {
        return;
    }
    let g = guarded("dns-self");
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["unshare", "--user", "--map-root-user", "--net"])
        .args(["python3", "-c", SELF_ANSWER])
        .args(["cdn.good.test=198.51.100.10", "evil.test=198.51.100.3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the job could not answer itself (are unprivileged user namespaces allowed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, serde_json::json!(["198.51.100.10", "198.51.100.3"]));
    assert_nothing_learned(g, "a job answering itself in its own namespaces");
}

#[test]
fn a_lookup_inside_another_network_namespace_is_not_learned() {
    if !root_or_skip("a_lookup_inside_another_network_namespace_is_not_learned") {
        return;
    }
    let g = guarded("dns-netns");
    // The very resolver the policy names answers, but to a socket of the
    // test's namespace, not the host's.
    let out = Command::new("ip")
        .args(["netns", "exec", &g.ns.name, "python3", "-c", CLIENT])
        .args(["lookup,cdn.good.test,A", "lookup,evil.test,A"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        serde_json::json!([["198.51.100.10"], ["198.51.100.3"]])
    );
    assert_nothing_learned(g, "a lookup in another network namespace");
}

#[test]
fn an_answer_no_query_asked_for_is_not_learned() {
    if !root_or_skip("an_answer_no_query_asked_for_is_not_learned") {
        return;
    }
    let g = guarded("dns-spoof");
    // From the resolver's own address and port 53, to a socket on the host.
    let (_, out) = client(&[
        "spoof,cdn.good.test,198.51.100.10",
        "spoof,evil.test,198.51.100.3",
    ]);
    assert_eq!(out[0], serde_json::json!(["198.51.100.10"]), "{out:?}");
    assert_eq!(out[1], serde_json::json!(["198.51.100.3"]), "{out:?}");
    assert_nothing_learned(g, "an answer without a query");
}

#[test]
fn an_answer_from_a_resolver_not_configured_is_not_learned() {
    if !root_or_skip("an_answer_from_a_resolver_not_configured_is_not_learned") {
        return;
    }
    let g = guarded("dns-rogue");
    let (_, out) = client(&[
        "lookup,cdn.good.test,A,198.51.100.3",
        "lookup,evil.test,A,198.51.100.3",
    ]);
    assert_eq!(out[0], serde_json::json!(["198.51.100.10"]), "{out:?}");
    assert_eq!(out[1], serde_json::json!(["198.51.100.3"]), "{out:?}");
    assert_nothing_learned(g, "an answer from 198.51.100.3, not a resolver");
}

#[test]
fn an_answer_with_another_dns_id_is_not_learned() {
    if !root_or_skip("an_answer_with_another_dns_id_is_not_learned") {
        return;
    }
    let g = guarded("dns-badid");
    let (_, out) = client(&["lookup,badid.good.test,A", "lookup,badid.evil.test,A"]);
    assert_eq!(out[0], serde_json::json!(["198.51.100.10"]), "{out:?}");
    assert_eq!(out[1], serde_json::json!(["198.51.100.3"]), "{out:?}");
    assert_nothing_learned(g, "an answer with the query's id plus one");
}

#[test]
fn an_answer_to_another_question_is_not_learned() {
    if !root_or_skip("an_answer_to_another_question_is_not_learned") {
        return;
    }
    let g = guarded("dns-swap");
    let (_, out) = client(&["lookup,swap-good.test,A", "lookup,swap-evil.test,A"]);
    assert_eq!(out[0], serde_json::json!(["198.51.100.10"]), "{out:?}");
    assert_eq!(out[1], serde_json::json!(["198.51.100.3"]), "{out:?}");
    assert_nothing_learned(g, "an answer naming another question");
}
