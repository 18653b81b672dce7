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
 * Sockets that run no sock_addr hook (raw, ICMP ping, UDP-Lite) are judged
 * per packet by the backstop in backstop.bpf.h, included at the end.
 *
 * The DNS programs (cgroup_skb egress for queries, ingress for answers) live
 * in this object too, in dns.bpf.h, included at the end: they fill the tries
 * judged here, and the sock_addr hooks mark the sockets whose answers they
 * may learn, so one object shares those maps without pinning them.
 */
#include "task.bpf.h"
#include "ring.bpf.h"
#include "share.bpf.h"
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

/* The threads inside connect(2), marked by net.bpf.c (user space hands this
 * object that map): a connect from any other thread is made another way
 * (io_uring, TCP Fast Open) and is reported here. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} in_connect SEC(".maps");

/* Each process's share of net_events, net.bpf.c's map (handed over by user
 * space): observed sends count against it; verdicts never ask. */
BT_SHARE_MAP(net_share);

/* Whether the current thread is inside connect(2), whose tracepoint reports
 * the call with its result. */
static __always_inline bool inside_connect(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	return bpf_map_lookup_elem(&in_connect, &tid) != NULL;
}

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

/* Who last aimed a socket at a resolver: what the DNS records name as the
 * process, since a cgroup_skb program may not ask for the current task on
 * every kernel bee-trace supports (6.1 refuses the helpers there). */
struct dns_sock {
	__u64 ts;
	__u64 pid_tgid;
	__u32 uid;
	__u32 _pad;
	__u8 comm[BT_COMM_LEN];
};

/* Sockets of the host's network namespace that connected or sent to a
 * resolver's port 53: socket cookie -> when, and by whom. A cgroup_skb
 * program cannot ask a packet's namespace on every kernel bee-trace supports
 * (the helper came to it in 6.17), the sock_addr hooks can (5.7), and a
 * socket never changes namespace; so the namespace is judged here, once per
 * socket, and the skb programs look the socket up. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct dns_sock);
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

static __always_inline struct bt_egress_event *verdict_reserve(void)
{
	struct bt_egress_event *e = bpf_ringbuf_reserve(&net_events, sizeof(struct bt_egress_event), 0);

	if (!e)
		bt_count_lost(&egress_lost);
	return e;
}

static __always_inline void verdict_submit(struct bt_egress_event *e, const struct verdict *v,
					   __u16 type, __u16 protocol, __u8 action, __u8 hook)
{
	e->rule = v->rule;
	e->family = v->family;
	e->dport = v->dport;
	e->sock_type = type;
	e->protocol = protocol;
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

/* A verdict of a sock_addr hook or a tracepoint: the current-task helpers
 * are theirs. */
static __always_inline void emit_as(const struct verdict *v, __u16 type, __u16 protocol,
				    __u8 action, __u8 hook)
{
	struct bt_egress_event *e = verdict_reserve();

	if (!e)
		return;
	bt_fill_header_noparent(&e->hdr, BT_EV_EGRESS);
	verdict_submit(e, v, type, protocol, action, hook);
}

/* A verdict of a program on a packet's path (the backstops): the header is
 * read from the task (task.bpf.h, bt_fill_header_packet). */
static __always_inline void emit_packet(const struct verdict *v, __u16 type, __u16 protocol,
					__u8 action, __u8 hook)
{
	struct bt_egress_event *e = verdict_reserve();

	if (!e)
		return;
	bt_fill_header_packet(&e->hdr, BT_EV_EGRESS);
	verdict_submit(e, v, type, protocol, action, hook);
}

static __always_inline void emit(struct bpf_sock_addr *ctx, const struct verdict *v, __u8 action,
				 __u8 hook)
{
	emit_as(v, ctx->type, ctx->protocol, action, hook);
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
	struct dns_sock d;
	__u64 sock;
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
	d.ts = bpf_ktime_get_boot_ns();
	d.pid_tgid = bpf_get_current_pid_tgid();
	d.uid = (__u32)bpf_get_current_uid_gid();
	d._pad = 0;
	bpf_get_current_comm(&d.comm, sizeof(d.comm));
	bpf_map_update_elem(&dns_socks, &sock, &d, BPF_ANY);
}

static __always_inline int decide(struct bpf_sock_addr *ctx, bool v6, __u8 hook)
{
	struct verdict v = {};
	struct bt_egress_cfg *cfg;
	__u32 zero = 0;

	if (bt_is_self())
		return 1;
	/* Read once, at its constant offset: context fields may not be read
	 * through a computed pointer, which clang makes of two reads of
	 * neighbouring fields on different paths. */
	__u32 sock_type = ctx->type;
	barrier_var(sock_type);
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
	if (!v.rule && cfg->dns_guard && v.dport == 53 && cfg->mode != BT_MODE_OFF) {
		bool resolver = v.family == BT_AF_INET ? is_resolver4(v.daddr)
				: v4_mapped(v.daddr)   ? is_resolver4(v.daddr + 12)
						       : is_resolver6(v.daddr);

		if (sock_type == 1 /* SOCK_STREAM */)
			v.rule = BT_RULE_DNS_TCP;
		else if (!resolver)
			v.rule = BT_RULE_DNS_UNKNOWN;
	}
	if (v.rule) {
		bool block = cfg->mode == BT_MODE_BLOCK;

		/* Noted, so the device backstop does not report the same
		 * datagram again when it goes out in audit mode. */
		if (hook == BT_HOOK_SENDMSG)
			sent_recently(&v);
		emit(ctx, &v, block ? BT_ACT_BLOCKED : BT_ACT_WOULD_BLOCK, hook);
		if (block)
			return 0;
	} else if (hook == BT_HOOK_SENDMSG && !sent_recently(&v)) {
		/* Routine: within the sender's share of the ring (net.bpf.c). */
		if (!bt_over_share_current(&net_share))
			emit(ctx, &v, BT_ACT_OBSERVED, hook);
	} else if (hook == BT_HOOK_CONNECT && !inside_connect()) {
		/* No connect(2) tracepoint will name this one: report it now. */
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

/* The DNS half of this object, after the maps it shares with the verdicts. */
#include "dns.bpf.h"

/* The backstop below the socket layer, with the same verdicts. */
#include "backstop.bpf.h"
