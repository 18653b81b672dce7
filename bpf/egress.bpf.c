// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Egress control: cgroup sock_addr programs on connect and on sendmsg with a
 * destination (unconnected UDP), attached at the root of the cgroup v2 tree
 * so they run for every process on the host. Each destination is judged
 * against the policy's maps; a match is refused with EPERM (block mode) or
 * let through and reported (audit mode). Unconnected UDP sends are reported
 * even when nothing matches, since no syscall tracepoint names them cheaply.
 *
 * Order of judgement: an explicit block entry (address or CIDR, including
 * names learned from DNS answers) always matches; loopback is otherwise
 * exempt; then blocked ports; then, in allowlist mode, anything without an
 * allow entry (and port) matches BT_RULE_NOT_ALLOWED.
 *
 * The DNS programs (cgroup_skb egress for queries, ingress for answers; see
 * "DNS" below) live in this object too, which makes it long: they fill the
 * tries judged here, and the sock_addr hooks mark the sockets whose answers
 * they may learn, so one object shares those maps without pinning them.
 */
#include "task.bpf.h"
#include "ring.bpf.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Cookie of the network namespace bee-trace runs in (the host's), from
 * SO_NETNS_COOKIE; 0 when user space could not read it, and then no DNS
 * answer is ever learned. */
const volatile __u64 host_netns = 0;

/* The network family's ring buffer; user space hands this object the map of
 * the connect sensor. */
BT_RINGBUF(net_events, BT_RING_NET);

BT_LOST_COUNTER(egress_lost);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bt_egress_cfg);
} egress_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bt_lpm4_key);
	__type(value, struct bt_egress_val);
} block4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bt_lpm6_key);
	__type(value, struct bt_egress_val);
} block6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bt_lpm4_key);
	__type(value, struct bt_egress_val);
} allow4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bt_lpm6_key);
	__type(value, struct bt_egress_val);
} allow6 SEC(".maps");

/* Destination port (host byte order) -> rule id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u32);
} blocked_ports SEC(".maps");

/* The resolvers whose answers are learned: the nameservers of
 * /etc/resolv.conf and the policy's network.dns_resolvers, full-length
 * prefixes. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bt_lpm4_key);
	__type(value, __u8);
} resolvers4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bt_lpm6_key);
	__type(value, __u8);
} resolvers6 SEC(".maps");

/* Sockets of the host's network namespace that connected or sent to a
 * resolver's port 53: socket cookie -> when. A cgroup_skb program cannot ask
 * a packet's namespace on every kernel bee-trace supports (the helper came
 * to it in 6.17), the sock_addr hooks can (5.7), and a socket never changes
 * namespace; so the namespace is judged here, once per socket, and the skb
 * programs look the socket up. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} dns_socks SEC(".maps");

/* Unconnected UDP sends already reported: (tgid, port, address) -> time.
 * One report per destination per second keeps a chatty sender cheap. */
struct send_key {
	__u32 tgid;
	__u16 dport;
	__u16 family;
	__u8 daddr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct send_key);
	__type(value, __u64);
} recent_sends SEC(".maps");

struct verdict {
	__u32 rule;
	__u8 daddr[16];
	__u16 dport;
	__u16 family;
};

static __always_inline bool port_allowed(const struct bt_egress_val *v, __u16 port)
{
	int i;

	if (v->nports == 0)
		return true;
#pragma unroll
	for (i = 0; i < BT_EGRESS_PORTS; i++)
		if (i < v->nports && v->ports[i] == port)
			return true;
	return false;
}

static __always_inline __u32 judge_ports(const struct bt_egress_cfg *cfg, __u16 port,
					 const struct bt_egress_val *allow)
{
	__u32 *r = bpf_map_lookup_elem(&blocked_ports, &port);

	if (r)
		return *r;
	if (cfg->allowlist && (!allow || !port_allowed(allow, port)))
		return BT_RULE_NOT_ALLOWED;
	return 0;
}

static __always_inline __u32 judge4(const struct bt_egress_cfg *cfg, const __u8 *a, __u16 port)
{
	struct bt_lpm4_key k = { .prefixlen = 32 };
	struct bt_egress_val *v;

	__builtin_memcpy(k.addr, a, 4);
	v = bpf_map_lookup_elem(&block4, &k);
	if (v)
		return v->rule;
	if (a[0] == 127)
		return 0;
	return judge_ports(cfg, port, cfg->allowlist ? bpf_map_lookup_elem(&allow4, &k) : NULL);
}

static __always_inline __u32 judge6(const struct bt_egress_cfg *cfg, const __u8 *a, __u16 port)
{
	struct bt_lpm6_key k = { .prefixlen = 128 };
	struct bt_egress_val *v;
	int i;
	bool lo = true;

	__builtin_memcpy(k.addr, a, 16);
	v = bpf_map_lookup_elem(&block6, &k);
	if (v)
		return v->rule;
#pragma unroll
	for (i = 0; i < 15; i++)
		if (a[i])
			lo = false;
	if (lo && a[15] == 1)
		return 0;
	return judge_ports(cfg, port, cfg->allowlist ? bpf_map_lookup_elem(&allow6, &k) : NULL);
}

static __always_inline bool v4_mapped(const __u8 *a)
{
	int i;

#pragma unroll
	for (i = 0; i < 10; i++)
		if (a[i])
			return false;
	return a[10] == 0xff && a[11] == 0xff;
}

static __always_inline void emit(struct bpf_sock_addr *ctx, const struct verdict *v, __u8 action,
				 __u8 hook)
{
	struct bt_egress_event *e;

	e = bpf_ringbuf_reserve(&net_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&egress_lost);
		return;
	}
	bt_fill_header_noparent(&e->hdr, BT_EV_EGRESS);
	e->rule = v->rule;
	e->family = v->family;
	e->dport = v->dport;
	e->sock_type = ctx->type;
	e->protocol = ctx->protocol;
	e->action = action;
	e->hook = hook;
	e->_pad = 0;
	__builtin_memcpy(e->daddr, v->daddr, 16);
	/* A verdict wakes the reader at once; observed sends wait for a batch
	 * (or the reader's 50 ms poll), as the tracepoint families do. */
	if (action == BT_ACT_OBSERVED &&
	    bpf_ringbuf_query(&net_events, BPF_RB_AVAIL_DATA) < BT_WAKE_BYTES)
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	else
		bpf_ringbuf_submit(e, 0);
}

/* Whether this unconnected send was reported less than a second ago. */
static __always_inline bool sent_recently(const struct verdict *v)
{
	struct send_key k = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.dport = v->dport,
		.family = v->family,
	};
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *last;

	__builtin_memcpy(k.daddr, v->daddr, 16);
	last = bpf_map_lookup_elem(&recent_sends, &k);
	if (last && now - *last < 1000000000ULL)
		return true;
	bpf_map_update_elem(&recent_sends, &k, &now, BPF_ANY);
	return false;
}

static __always_inline bool is_resolver4(const __u8 *a)
{
	struct bt_lpm4_key k = { .prefixlen = 32 };

	__builtin_memcpy(k.addr, a, 4);
	return bpf_map_lookup_elem(&resolvers4, &k) != NULL;
}

static __always_inline bool is_resolver6(const __u8 *a)
{
	struct bt_lpm6_key k = { .prefixlen = 128 };

	__builtin_memcpy(k.addr, a, 16);
	return bpf_map_lookup_elem(&resolvers6, &k) != NULL;
}

/* A socket of the host's namespace about to talk to a resolver's port 53:
 * its queries may be recorded, and answers to them learned. */
static __always_inline void note_dns_socket(struct bpf_sock_addr *ctx, const struct verdict *v)
{
	__u64 sock, now;
	bool known;

	if (host_netns == 0 || bpf_get_netns_cookie(ctx) != host_netns)
		return;
	if (v->family == BT_AF_INET)
		known = is_resolver4(v->daddr);
	else if (v4_mapped(v->daddr))
		known = is_resolver4(v->daddr + 12);
	else
		known = is_resolver6(v->daddr);
	if (!known)
		return;
	sock = bpf_get_socket_cookie(ctx);
	now = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&dns_socks, &sock, &now, BPF_ANY);
}

static __always_inline int decide(struct bpf_sock_addr *ctx, bool v6, __u8 hook)
{
	struct verdict v = {};
	struct bt_egress_cfg *cfg;
	__u32 zero = 0;

	if (bt_is_self())
		return 1;
	cfg = bpf_map_lookup_elem(&egress_cfg, &zero);
	if (!cfg)
		return 1;
	v.dport = bpf_ntohs((__u16)ctx->user_port);
	if (!v6) {
		__u32 ip = ctx->user_ip4;

		v.family = BT_AF_INET;
		__builtin_memcpy(v.daddr, &ip, 4);
		if (cfg->mode != BT_MODE_OFF)
			v.rule = judge4(cfg, v.daddr, v.dport);
	} else {
		v.family = BT_AF_INET6;
		/* Context fields must be read at constant offsets, one by one. */
		__u32 w0 = ctx->user_ip6[0];
		__u32 w1 = ctx->user_ip6[1];
		__u32 w2 = ctx->user_ip6[2];
		__u32 w3 = ctx->user_ip6[3];

		__builtin_memcpy(v.daddr, &w0, 4);
		__builtin_memcpy(v.daddr + 4, &w1, 4);
		__builtin_memcpy(v.daddr + 8, &w2, 4);
		__builtin_memcpy(v.daddr + 12, &w3, 4);
		if (cfg->mode != BT_MODE_OFF)
			v.rule = v4_mapped(v.daddr) ? judge4(cfg, v.daddr + 12, v.dport)
						    : judge6(cfg, v.daddr, v.dport);
	}
	if (v.rule) {
		bool block = cfg->mode == BT_MODE_BLOCK;

		emit(ctx, &v, block ? BT_ACT_BLOCKED : BT_ACT_WOULD_BLOCK, hook);
		if (block)
			return 0;
	} else if (hook == BT_HOOK_SENDMSG && !sent_recently(&v)) {
		emit(ctx, &v, BT_ACT_OBSERVED, hook);
	}
	if (v.dport == 53)
		note_dns_socket(ctx, &v);
	return 1;
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	return decide(ctx, false, BT_HOOK_CONNECT);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	return decide(ctx, true, BT_HOOK_CONNECT);
}

SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	return decide(ctx, false, BT_HOOK_SENDMSG);
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	return decide(ctx, true, BT_HOOK_SENDMSG);
}

/*
 * DNS. Only answers to queries seen leaving are learned, and only in the
 * host's network namespace: a job that answers itself (in a namespace of its
 * own, or by sending a datagram from port 53 to some socket) must not put
 * addresses into the host-wide tries.
 *
 * A cgroup_skb egress program at the same root records each UDP query that
 * a socket of the host's namespace (see dns_socks) sends to a resolver's port
 * 53: (socket, resolver, client port, id) -> the question and when. The
 * cgroup_skb ingress program reads each UDP datagram from port 53 as it is
 * delivered to a socket, before the process that asked can read it, and
 * takes it for an answer only if it answers such a record: the same socket,
 * from the resolver asked, to the port that asked, with the query's id and
 * question, within BT_DNS_QUERY_NS. The record is consumed: one answer per
 * query. When a domain rule covers the name asked for, the answer's A/AAAA
 * addresses enter the block or allow trie at once, so the connect that
 * follows the lookup is judged with them. Every answer taken also goes to
 * user space (TTLs, expiry, `dns_name`); no other does. TCP answers and DNS
 * over TLS/HTTPS are not parsed.
 */

#define BT_DNS_PKT 1024 /* bytes of the datagram looked at */
#define BT_DNS_ANSWERS 16
#define BT_DNS_QUERY_NS (10ULL * 1000000000ULL) /* how long a query waits for its answer */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct bt_dns_key);
	__type(value, struct bt_dns_rule);
} dns_rules SEC(".maps");

/* A query waiting for its answer. */
struct dns_query_key {
	__u64 sock;       /* socket cookie of the client */
	__u8 server[16];  /* the resolver asked; IPv4 in the first 4 bytes */
	__u16 family;     /* BT_AF_INET or BT_AF_INET6 */
	__u16 cport;      /* client port, host byte order */
	__u16 id;         /* DNS id */
	__u16 qtype;      /* resolvers may send A and AAAA queries with one id */
};

struct dns_query {
	__u64 ts; /* boot ns when it left */
	__u16 qlen;
	__u16 qclass;
	__u32 _pad;
	__u8 name[BT_DNS_NAME]; /* wire format, lower case, zero-padded */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dns_query_key);
	__type(value, struct dns_query);
} dns_queries SEC(".maps");

/* Parser state lives in the per-CPU scratch map, not on the stack: the
 * verifier does not track map values, so each bpf_loop callback is verified
 * once instead of once per possible offset. */
struct dns_state {
	__u32 pos;   /* next byte to read */
	__u32 end;   /* bytes of the datagram loaded */
	__u32 start; /* the question name */
	__u32 qlen;  /* its wire length */
	__u32 left;  /* answers not yet read */
	__u32 off;   /* suffix of the name tried next, relative to start */
	__s32 done;  /* name walk: 1 ended by its zero label (or a pointer), -1 malformed */
	__s32 found; /* rule scan: 0 none, 1 allow, 2 block (final) */
	struct bt_dns_rule hit;
};

struct dns_scratch {
	__u8 pkt[BT_DNS_PKT + 64]; /* slack: reads at a masked offset stay inside */
	struct dns_state st;
	struct bt_dns_key key;
	struct dns_query_key qk;
	struct dns_query q;
	struct bt_dns_event ev;
};

/* One scratch for answers and one for queries: the ingress program runs in
 * softirq and can interrupt the egress one on the same CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} dns_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} dnsq_buf SEC(".maps");

/* What every callback gets: the scratch. */
struct dns_ctx {
	struct dns_scratch *s;
};

/* The mask is kept even where clang can prove it redundant (barrier_var):
 * the 6.12 verifier loses a header offset's bounds after a comparison and
 * then refuses the unmasked access. */
static __always_inline __u8 pkt_u8(const struct dns_scratch *s, __u32 off)
{
	barrier_var(off);
	return s->pkt[off & (BT_DNS_PKT - 1)];
}

static __always_inline __u16 pkt_u16(const struct dns_scratch *s, __u32 off)
{
	return ((__u16)pkt_u8(s, off) << 8) | pkt_u8(s, off + 1);
}

/* One label of the question name; a pointer is malformed there. */
static long name_step(__u64 i, void *vctx)
{
	struct dns_scratch *s = ((struct dns_ctx *)vctx)->s;
	struct dns_state *w = &s->st;
	__u8 l;

	if (w->pos >= w->end) {
		w->done = -1;
		return 1;
	}
	l = pkt_u8(s, w->pos);
	if (l == 0) {
		w->pos++;
		w->done = 1;
		return 1;
	}
	if (l & 0xc0) {
		w->done = -1;
		return 1;
	}
	w->pos += l + 1;
	return 0;
}

/* One label of an answer's owner name: a pointer ends it. */
static long skip_step(__u64 i, void *vctx)
{
	struct dns_scratch *s = ((struct dns_ctx *)vctx)->s;
	struct dns_state *w = &s->st;
	__u8 l;

	if (w->pos >= w->end) {
		w->done = -1;
		return 1;
	}
	l = pkt_u8(s, w->pos);
	if ((l & 0xc0) == 0xc0) {
		w->pos += 2;
		w->done = 1;
		return 1;
	}
	if (l == 0) {
		w->pos++;
		w->done = 1;
		return 1;
	}
	w->pos += l + 1;
	return 0;
}

/* Lower-cases the question name in place: length bytes (at most 63) are
 * never in 'A'..'Z', so every byte can be treated alike. */
static long lower_step(__u64 i, void *vctx)
{
	struct dns_scratch *s = ((struct dns_ctx *)vctx)->s;
	__u32 off = (s->st.start + i) & (BT_DNS_PKT - 1);
	__u8 c = s->pkt[off];

	if (c >= 'A' && c <= 'Z')
		s->pkt[off] = c + 32;
	return 0;
}

/* Tries the suffix of the question name at st.off against dns_rules, then
 * steps to the next label. A block rule ends the scan; the first allow rule
 * that applies is remembered. */
static long rule_step(__u64 i, void *vctx)
{
	struct dns_scratch *s = ((struct dns_ctx *)vctx)->s;
	struct dns_state *r = &s->st;
	struct bt_dns_rule *v;
	__u32 n;

	if (r->off >= r->qlen)
		return 1;
	n = r->qlen - r->off;
	if (n <= 1 || n > BT_DNS_NAME - 1)
		goto next;
	__builtin_memset(&s->key, 0, sizeof(s->key));
	barrier_var(n);
	n &= BT_DNS_NAME - 1;
	if (n == 0)
		return 1;
	if (bpf_probe_read_kernel(s->key.name, n, &s->pkt[(r->start + r->off) & (BT_DNS_PKT - 1)]))
		return 1;
	v = bpf_map_lookup_elem(&dns_rules, &s->key);
	if (v) {
		if (!v->allow) {
			r->hit = *v;
			r->found = 2;
			return 1;
		}
		if ((!v->exact || r->off == 0) && r->found == 0) {
			r->hit = *v;
			r->found = 1;
		}
	}
next:
	r->off += pkt_u8(s, r->start + r->off) + 1;
	return 0;
}

/* One answer record: an A or AAAA of class IN is added to the event. */
static long answer_step(__u64 i, void *vctx)
{
	struct dns_ctx *c = vctx;
	struct dns_scratch *s = c->s;
	struct dns_state *a = &s->st;
	struct bt_dns_event *e = &s->ev;
	__u16 type, class, rdlen;
	__u32 ttl, at, k;

	if (a->left == 0)
		return 1;
	a->left--;
	a->done = 0;
	bpf_loop(64, skip_step, c, 0);
	if (a->done != 1 || a->pos + 10 > a->end)
		return 1;
	at = a->pos;
	type = pkt_u16(s, at);
	class = pkt_u16(s, at + 2);
	ttl = ((__u32)pkt_u16(s, at + 4) << 16) | pkt_u16(s, at + 6);
	rdlen = pkt_u16(s, at + 8);
	a->pos = at + 10 + rdlen;
	if (a->pos > a->end)
		return 1;
	if (class != 1 || !((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16)))
		return 0;
	k = e->naddrs;
	if (k >= BT_DNS_ADDRS)
		return 1;
	e->ttl[k] = ttl;
	e->family[k] = type == 1 ? 4 : 6;
	__builtin_memset(e->addr[k], 0, 16);
	bpf_probe_read_kernel(e->addr[k], type == 1 ? 4 : 16, &s->pkt[(at + 10) & (BT_DNS_PKT - 1)]);
	e->naddrs = k + 1;
	return 0;
}

static __always_inline void learn_addr(const struct bt_dns_event *e, __u32 k,
				       const struct bt_dns_rule *r)
{
	struct bt_egress_val v = r->val;

	if (r->allow)
		v.rule = 0;
	if (e->family[k] == 4) {
		struct bt_lpm4_key key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, e->addr[k], 4);
		/* NOEXIST: an entry the policy names itself keeps its own value. */
		bpf_map_update_elem(r->allow ? (void *)&allow4 : (void *)&block4, &key, &v,
				    BPF_NOEXIST);
	} else {
		struct bt_lpm6_key key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, e->addr[k], 16);
		bpf_map_update_elem(r->allow ? (void *)&allow6 : (void *)&block6, &key, &v,
				    BPF_NOEXIST);
	}
}

/* Loads the start of the datagram into the scratch; its length, or 0. */
static __always_inline __u32 load_pkt(struct __sk_buff *skb, struct dns_scratch *s)
{
	__u32 len = skb->len;

	if (len < 20 + 8 + 12 + 5)
		return 0;
	if (len > BT_DNS_PKT)
		len = BT_DNS_PKT;
	if (bpf_skb_load_bytes(skb, 0, s->pkt, len & (2 * BT_DNS_PKT - 1)))
		return 0;
	return len;
}

/* The UDP header's offset in an unfragmented UDP datagram (no IPv6
 * extension headers), or 0; fills the query key's family and, as the
 * resolver, the destination of a query (`query`) or the source of an answer. */
static __always_inline __u32 udp_at(struct dns_scratch *s, __u32 len, bool query)
{
	struct dns_query_key *k = &s->qk;
	__u8 ver = s->pkt[0] >> 4;
	__u32 l4;

	__builtin_memset(k, 0, sizeof(*k));
	if (ver == 4) {
		if (s->pkt[9] != 17 || (pkt_u16(s, 6) & 0x3fff)) /* UDP, not a fragment */
			return 0;
		l4 = (s->pkt[0] & 0xf) * 4;
		k->family = BT_AF_INET;
		if (query)
			__builtin_memcpy(k->server, &s->pkt[16], 4);
		else
			__builtin_memcpy(k->server, &s->pkt[12], 4);
	} else if (ver == 6) {
		if (s->pkt[6] != 17)
			return 0;
		l4 = 40;
		k->family = BT_AF_INET6;
		if (query)
			__builtin_memcpy(k->server, &s->pkt[24], 16);
		else
			__builtin_memcpy(k->server, &s->pkt[8], 16);
	} else {
		return 0;
	}
	if (l4 < 20 || l4 + 8 + 12 > len)
		return 0;
	return l4;
}

/* Walks and lower-cases the question name after the DNS header at `dns`:
 * leaves st.start, st.qlen and st.pos (at the question's type). */
static __always_inline bool question(struct dns_ctx *c, __u32 dns, __u32 len)
{
	struct dns_scratch *s = c->s;

	s->st.pos = dns + 12;
	s->st.start = dns + 12;
	s->st.end = len;
	s->st.done = 0;
	bpf_loop(64, name_step, c, 0);
	if (s->st.done != 1)
		return false;
	s->st.qlen = s->st.pos - s->st.start;
	if (s->st.qlen > BT_DNS_NAME - 1 || s->st.pos + 4 > len)
		return false;
	bpf_loop(s->st.qlen, lower_step, c, 0);
	return true;
}

/* The question name, zero-padded to BT_DNS_NAME bytes. */
static __always_inline bool copy_name(struct dns_scratch *s, __u8 *dst)
{
	__u32 n = s->st.qlen;

	__builtin_memset(dst, 0, BT_DNS_NAME);
	barrier_var(n);
	n &= BT_DNS_NAME - 1;
	if (n == 0)
		return false;
	return bpf_probe_read_kernel(dst, n, &s->pkt[s->st.start & (BT_DNS_PKT - 1)]) == 0;
}

/* The cookie of the packet's socket when it is a UDP socket that talked to a
 * resolver (dns_socks), else 0. The bulk of the traffic (TCP) is let go
 * before any map lookup or copy. */
static __always_inline __u64 dns_socket(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	__u64 sock;

	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != 17)
		return 0;
	sock = bpf_get_socket_cookie(skb);
	return bpf_map_lookup_elem(&dns_socks, &sock) ? sock : 0;
}

SEC("cgroup_skb/egress")
int egress_dnsq(struct __sk_buff *skb)
{
	struct dns_scratch *s;
	struct dns_ctx c;
	__u32 zero = 0, len, l4, dns, flags;
	__u64 sock = dns_socket(skb);
	bool known;

	if (!sock)
		return 1;
	s = bpf_map_lookup_elem(&dnsq_buf, &zero);
	if (!s)
		return 1;
	c.s = s;
	len = load_pkt(skb, s);
	if (!len)
		return 1;
	l4 = udp_at(s, len, true);
	if (!l4 || pkt_u16(s, l4 + 2) != 53)
		return 1;
	/* The socket may have been connected to a resolver and then sent
	 * somewhere else. */
	if (s->qk.family == BT_AF_INET)
		known = is_resolver4(s->qk.server);
	else
		known = is_resolver6(s->qk.server);
	if (!known)
		return 1;
	dns = l4 + 8;
	flags = pkt_u16(s, dns + 2);
	/* A query (no QR), standard opcode, one question. */
	if ((flags & 0x8000) || (flags & 0x7800) || pkt_u16(s, dns + 4) != 1)
		return 1;
	if (!question(&c, dns, len))
		return 1;
	s->qk.sock = sock;
	s->qk.cport = pkt_u16(s, l4);
	s->qk.id = pkt_u16(s, dns);
	s->qk.qtype = pkt_u16(s, s->st.pos);
	s->q.ts = bpf_ktime_get_boot_ns();
	s->q.qlen = s->st.qlen;
	s->q.qclass = pkt_u16(s, s->st.pos + 2);
	s->q._pad = 0;
	if (!copy_name(s, s->q.name))
		return 1;
	bpf_map_update_elem(&dns_queries, &s->qk, &s->q, BPF_ANY);
	return 1;
}

/* Whether the answer in the scratch (its question name already in ev.name)
 * answers a query recorded for the socket it is delivered to; the record is
 * consumed. */
static __always_inline bool answers_query(__u64 sock, struct dns_scratch *s, __u32 l4, __u32 dns)
{
	struct dns_query *q;
	const __u64 *a, *b;
	__u64 diff = 0;
	int i;

	s->qk.sock = sock;
	s->qk.cport = pkt_u16(s, l4 + 2);
	s->qk.id = pkt_u16(s, dns);
	s->qk.qtype = pkt_u16(s, s->st.pos);
	q = bpf_map_lookup_elem(&dns_queries, &s->qk);
	if (!q)
		return false;
	if (bpf_ktime_get_boot_ns() - q->ts > BT_DNS_QUERY_NS) {
		bpf_map_delete_elem(&dns_queries, &s->qk);
		return false;
	}
	if (q->qlen != s->st.qlen || q->qclass != pkt_u16(s, s->st.pos + 2))
		return false;
	/* Still a resolver: a reload may have dropped it since the query. */
	if (!(s->qk.family == BT_AF_INET ? is_resolver4(s->qk.server) : is_resolver6(s->qk.server)))
		return false;
	a = (const __u64 *)q->name;
	b = (const __u64 *)s->ev.name;
#pragma unroll
	for (i = 0; i < BT_DNS_NAME / 8; i++)
		diff |= a[i] ^ b[i];
	if (diff)
		return false;
	/* The same answer twice, on two CPUs: only the copy that removes the
	 * record goes on. */
	return bpf_map_delete_elem(&dns_queries, &s->qk) == 0;
}

SEC("cgroup_skb/ingress")
int egress_dns(struct __sk_buff *skb)
{
	struct dns_scratch *s;
	struct dns_ctx c;
	__u32 zero = 0, len, l4, dns, flags, qd, an, k;
	__u64 sock = dns_socket(skb);

	if (!sock)
		return 1;
	s = bpf_map_lookup_elem(&dns_buf, &zero);
	if (!s)
		return 1;
	c.s = s;
	len = load_pkt(skb, s);
	if (!len)
		return 1;
	l4 = udp_at(s, len, false);
	if (!l4 || pkt_u16(s, l4) != 53)
		return 1;
	dns = l4 + 8;
	flags = pkt_u16(s, dns + 2);
	qd = pkt_u16(s, dns + 4);
	an = pkt_u16(s, dns + 6);
	/* A response (QR), standard query, no error, one question, answers. */
	if (!(flags & 0x8000) || (flags & 0x7800) || (flags & 0xf) || qd != 1 || an == 0)
		return 1;
	if (!question(&c, dns, len))
		return 1;

	struct bt_dns_event *e = &s->ev;
	e->hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	e->hdr.cgroup_id = 0;
	e->hdr.type = BT_EV_DNS;
	e->hdr.pid = 0;
	e->hdr.tid = 0;
	e->hdr.ppid = 0;
	e->hdr.uid = 0;
	e->hdr._pad = 0;
	__builtin_memset(e->hdr.comm, 0, sizeof(e->hdr.comm));
	e->name_len = s->st.qlen;
	e->naddrs = 0;
	e->rule_hit = 0;
	e->_pad = 0;
	if (!copy_name(s, e->name))
		return 1;
	if (!answers_query(sock, s, l4, dns))
		return 1;

	s->st.pos += 4; /* qtype, qclass */
	s->st.left = an;
	bpf_loop(BT_DNS_ANSWERS, answer_step, &c, 0);
	if (e->naddrs == 0)
		return 1;

	s->st.off = 0;
	s->st.found = 0;
	bpf_loop(BT_DNS_NAME / 2, rule_step, &c, 0);
	if (s->st.found) {
		struct bt_dns_rule hit = s->st.hit;

		e->rule_hit = 1;
		for (k = 0; k < BT_DNS_ADDRS; k++) {
			if (k >= e->naddrs)
				break;
			learn_addr(e, k, &hit);
		}
	}
	if (bpf_ringbuf_output(&net_events, e, sizeof(*e), 0))
		bt_count_lost(&egress_lost);
	return 1;
}
