//! Network evasions, for real (issue 12, classes 3 and 4): connects that are
//! not connect(2) (io_uring, TCP Fast Open) are each one event; raw and
//! packet sockets are reported when made, and their packets to blocked
//! destinations are dropped below the socket layer and reported. Every
//! destination is inside a network namespace this test creates; the acting
//! processes run as uid 65534 (with only CAP_NET_RAW where the act needs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const NOBODY: &str = "65534";

/// A TCP listener in the namespace on 198.51.100.2 and .3, port 18091,
/// accepting TCP Fast Open.
const LISTENER: &str = r#"
import socket, sys
socks = []
for addr in ["198.51.100.2", "198.51.100.3"]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 8)
    s.bind((addr, 18091)); s.listen(8); socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;

/// connect(2) through io_uring (IORING_OP_CONNECT), with raw syscalls and
/// no liburing: argv[1] an IPv4 address, argv[2] a port. Prints the
/// completion's result (0, or -errno).
const URING_CONNECT_C: &str = r#"
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct io_uring_params p;
	struct sockaddr_in sin;
	int ring, s;
	if (argc != 3)
		return 2;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		return 2;
	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&p, 0, sizeof(p));
	ring = syscall(__NR_io_uring_setup, 4, &p);
	if (s < 0 || ring < 0) {
		perror("setup");
		return 1;
	}
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	size_t len = sq_len > cq_len ? sq_len : cq_len;
	char *sq = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
			IORING_OFF_SQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe),
					 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
					 IORING_OFF_SQES);
	if (sq == MAP_FAILED || sqes == MAP_FAILED || !(p.features & IORING_FEAT_SINGLE_MMAP)) {
		perror("mmap");
		return 1;
	}
	char *cq = sq;
	unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
	unsigned mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	unsigned *array = (unsigned *)(sq + p.sq_off.array);
	unsigned idx = *tail & mask;
	memset(&sqes[idx], 0, sizeof(sqes[idx]));
	sqes[idx].opcode = IORING_OP_CONNECT;
	sqes[idx].fd = s;
	sqes[idx].addr = (unsigned long)&sin;
	sqes[idx].off = sizeof(sin);
	array[idx] = idx;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		perror("enter");
		return 1;
	}
	unsigned head = *(unsigned *)(cq + p.cq_off.head);
	unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	printf("%d\n", cqes[head & cmask].res);
	return 0;
}
"#;

/// A TCP Fast Open connect: sendto(2) with MSG_FASTOPEN, no connect(2).
/// argv[1] address, argv[2] port; prints "ok" or the errno's name.
const TFO_CLIENT: &str = r#"
import errno, socket, sys
s = socket.socket()
try:
    s.sendto(b"x", socket.MSG_FASTOPEN, (sys.argv[1], int(sys.argv[2])))
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
"#;

/// Compiles `src` with the host's C compiler into `dir`; the binary is
/// readable and runnable by uid 65534.
fn compile(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).unwrap();
    let st = Command::new("cc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
        .expect("a C compiler (cc) is installed");
    assert!(st.success(), "cc {name}.c failed");
    bin
}

/// Runs `argv` as uid/gid 65534 with no groups (and the capabilities in
/// `caps`, e.g. "+net_raw", kept across the uid change); returns its pid
/// and its standard output.
fn as_nobody(caps: &str, argv: &[&str]) -> (u32, String) {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"]);
    if !caps.is_empty() {
        c.args(["--inh-caps", caps, "--ambient-caps", caps]);
    }
    let child = c
        .args(argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("setpriv (util-linux) is installed");
    // setpriv execs the program in place: the child's pid is the actor's.
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{argv:?} failed: {:?}", out.status);
    (pid, String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The network events of `pid` to `daddr`:`dport`.
fn to<'a>(events: &'a [Value], pid: u32, daddr: &str, dport: u16) -> Vec<&'a Value> {
    from_pid(events, "network", pid)
        .into_iter()
        .filter(|e| e["daddr"] == daddr && e["dport"] == dport)
        .collect()
}

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

/// Makes the sockets named in argv (family,type,protocol as numbers) and
/// prints one JSON object: "spec" -> "ok" or the errno's name.
const SOCKETS: &str = r#"
import errno, json, socket, sys
out = {}
for spec in sys.argv[1:]:
    fam, kind, proto = (int(x) for x in spec.split(","))
    try:
        socket.socket(fam, kind, proto).close()
        out[spec] = "ok"
    except OSError as e:
        out[spec] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(out))
"#;

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

/// Sends below the socket hooks and prints one JSON object of outcomes
/// ("ok", "reply", "no_reply" or the errno's name): raw ICMP echoes to
/// argv[1] (allowed) and argv[2] (blocked, three of them), an ICMP ping
/// socket's echo to argv[2], a raw socket connected to argv[2] then sending,
/// and a UDP-Lite socket connected to argv[2] port 18053 then sending.
const BELOW: &str = r#"
import errno, json, select, socket, struct, sys
ok, bad = sys.argv[1], sys.argv[2]
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def echo(seq):
    h = struct.pack("!BBHHH", 8, 0, 0, 0xbee, seq) + b"beetrace"
    return struct.pack("!BBHHH", 8, 0, csum(h), 0xbee, seq) + b"beetrace"
def name(e): return errno.errorcode.get(e.errno, str(e.errno))
def replied(s):
    return "reply" if select.select([s], [], [], 2)[0] else "no_reply"
out = {}
def attempt(key, fn):
    try: out[key] = fn()
    except OSError as e: out[key] = name(e)
def raw_echo(dst, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    for i in range(n): s.sendto(echo(i), (dst, 0))
    return replied(s)
def ping_echo(dst):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.sendto(echo(1), (dst, 0))
    return replied(s)
def connected(kind, proto, port, payload):
    s = socket.socket(socket.AF_INET, kind, proto)
    s.connect((bad, port))
    try: s.send(payload); sent = "ok"
    except OSError as e: sent = name(e)
    return "connect:ok send:" + sent
attempt("raw_allowed", lambda: raw_echo(ok, 1))
attempt("raw_blocked", lambda: raw_echo(bad, 3))
attempt("ping_blocked", lambda: ping_echo(bad))
attempt("raw_connect", lambda: connected(socket.SOCK_RAW, socket.IPPROTO_ICMP, 0, echo(7)))
attempt("udplite_connect", lambda: connected(socket.SOCK_DGRAM, 136, 18053, b"x"))
print(json.dumps(out))
"#;

/// Lets uid 65534 make ICMP ping sockets for as long as it lives
/// (net.ipv4.ping_group_range), then puts the old range back.
struct PingGroup(String);

impl PingGroup {
    const PATH: &'static str = "/proc/sys/net/ipv4/ping_group_range";
    fn allow_nobody() -> PingGroup {
        let old = std::fs::read_to_string(Self::PATH).unwrap();
        std::fs::write(Self::PATH, "65534 65534").unwrap();
        PingGroup(old.trim().replace('\t', " "))
    }
}

impl Drop for PingGroup {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

fn below_the_hooks(mode: &str) -> (u32, Value, Vec<Value>) {
    let ns = Netns::new();
    let s = Scratch::new(&format!("evasion-net-below-{mode}"));
    let cfg = write_policy(
        &s,
        &format!("network:\n  mode: {mode}\n  blocked_ips:\n    - 198.51.100.3\n"),
    );
    let _ping = PingGroup::allow_nobody();
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let (pid, out) = as_nobody(
        "+net_raw",
        &[
            "/usr/bin/python3",
            "-c",
            BELOW,
            "198.51.100.2",
            "198.51.100.3",
        ],
    );
    let events = mon.stop();
    drop(ns);
    (pid, serde_json::from_str(&out).unwrap(), events)
}

/// The verdicts of `pid` for 198.51.100.3 by op: exactly one each.
fn verdicts_on_blocked<'a>(events: &'a [Value], pid: u32, op: &str) -> Vec<&'a Value> {
    from_pid(events, "network", pid)
        .into_iter()
        .filter(|e| e["daddr"] == "198.51.100.3" && e["op"] == op)
        .collect()
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

/// Counts the UDP datagrams that reach each "address:port" in argv, inside
/// the namespace, and carry a test payload ("exfil" or "inner": not the
/// kernel's own neighbour discovery through a tunnel); prints "ready", and
/// at the end of its stdin one JSON object of counts.
const COUNTER: &str = r#"
import json, select, socket, sys
socks = {}
for spec in sys.argv[1:]:
    a, p = spec.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((a, int(p))); socks[s] = spec
counts = {spec: 0 for spec in socks.values()}
print("ready", flush=True)
while True:
    r, _, _ = select.select(list(socks) + [sys.stdin], [], [])
    if sys.stdin in r and not sys.stdin.readline():
        break
    for s in r:
        if s in socks:
            d = s.recv(65536)
            if b"exfil" in d or b"inner" in d:
                counts[socks[s]] += 1
print(json.dumps(counts), flush=True)
"#;

/// The counting server in `ns`; `finish` closes its stdin and returns its
/// counts.
struct Counter(std::process::Child);

impl Counter {
    fn start(ns: &Netns, specs: &[&str]) -> Counter {
        use std::io::BufRead;
        let mut c = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", COUNTER])
            .args(specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Counter(c)
    }

    fn finish(mut self) -> Value {
        // Datagrams in flight on the veth have arrived well within this.
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(self.0.stdin.take());
        let out = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes whole Ethernet frames with an AF_PACKET socket bound to argv[1]:
/// IPv4/UDP from 198.51.100.1 to argv[3] port 18053, to MAC argv[2], three
/// times for each destination in argv[3:]. Prints the sends' outcomes.
const PACKET_SENDER: &str = r#"
import errno, json, socket, struct, sys
dev, dmac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
smac = bytes.fromhex(open(f"/sys/class/net/{dev}/address").read().strip().replace(":", ""))
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
out = {}
for dst in sys.argv[3:]:
    udp = struct.pack("!HHHH", 40000, 18053, 13, 0) + b"exfil"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     socket.inet_aton("198.51.100.1"), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    res = []
    for _ in range(3):
        try: s.send(dmac + smac + b"\x08\x00" + ip + udp); res.append("ok")
        except OSError as e: res.append(errno.errorcode.get(e.errno, str(e.errno)))
    out[dst] = res
print(json.dumps(out))
"#;

/// The MAC address of the namespace's end of the veth.
fn peer_mac(ns: &Netns) -> String {
    let peer = ns.veth.replace("btv", "btp");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "cat"])
        .arg(format!("/sys/class/net/{peer}/address"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn blocked_policy(s: &Scratch, mode: &str) -> String {
    write_policy(
        s,
        &format!("network:\n  mode: {mode}\n  blocked_ips:\n    - 198.51.100.3\n"),
    )
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

/// A VXLAN device on the host whose remote is `remote`, over the veth,
/// with a static neighbour 10.213.N.2 on it; deleted at drop.
struct Vxlan(String);

impl Vxlan {
    fn new(ns: &Netns, n: u8, remote: &str) -> Vxlan {
        let name = format!("btx{n}{}", std::process::id() % 10_000);
        let _ = Command::new("ip")
            .args(["link", "del", &name])
            .stderr(Stdio::null())
            .status();
        let vni = (4200 + u32::from(n)).to_string();
        ip(&[
            "link", "add", &name, "type", "vxlan", "id", &vni, "remote", remote, "dstport", "4789",
            "dev", &ns.veth,
        ]);
        ip(&["addr", "add", &format!("10.213.{n}.1/24"), "dev", &name]);
        ip(&["link", "set", &name, "up"]);
        ip(&[
            "neigh",
            "add",
            &format!("10.213.{n}.2"),
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            &name,
        ]);
        Vxlan(name)
    }
}

impl Drop for Vxlan {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

const UDP_SENDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for dst in sys.argv[1:]:
    for _ in range(3):
        try: s.sendto(b"inner", (dst, 18000))
        except OSError: pass
"#;

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

/// The tcx links bee-trace (pid) holds, as (link id, interface index),
/// from its fdinfo (bpftool 7.1 does not name tcx links).
fn tcx_links(pid: u32) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return out;
    };
    for e in dir.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        if field("link_type:").as_deref() == Some("tcx") {
            let n = |k| field(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            out.push((n("link_id:"), n("ifindex:")));
        }
    }
    out
}

fn ifindex(dev: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .map(|t| t.trim().parse().unwrap_or(0))
        .unwrap_or(0)
}

/// Whether bee-trace (pid) holds a tcx link on interface `dev`.
fn covered(pid: u32, dev: &str) -> bool {
    let i = ifindex(dev);
    tcx_links(pid).iter().any(|(_, x)| *x == i)
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

/// Raw ICMPv6 echoes (the kernel fills in the checksum) to argv[1] and,
/// twice, argv[2]; prints {"allowed": .., "blocked": ..}.
const RAW6: &str = r#"
import errno, json, select, socket, struct, sys
def echo(dst, n):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        for i in range(n): s.sendto(struct.pack("!BBHHH", 128, 0, 0, 0xbee, i) + b"beetrace", (dst, 0))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "reply" if select.select([s], [], [], 2)[0] else "no_reply"
print(json.dumps({"allowed": echo(sys.argv[1], 1), "blocked": echo(sys.argv[2], 2)}))
"#;

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

/// A TCP listener in the namespace on [2001:db8:b7::2]:18092.
const LISTENER6: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8:b7::2", 18092)); s.listen(8)
print("ready", flush=True)
sys.stdin.read()
"#;

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
