/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* DNS learning, the second half of egress.bpf.c and included only there,
 * after the maps both halves use: net_events and egress_lost, the block and
 * allow tries it fills, resolvers4/resolvers6 (is_resolver4/6) and dns_socks,
 * which the sock_addr hooks fill. The wire format is read by dns_wire.bpf.h. */
#ifndef BEE_TRACE_DNS_BPF_H
#define BEE_TRACE_DNS_BPF_H

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
 * user space (TTLs, expiry, `dns_name`); no other does. An answer with more
 * addresses than a record holds is sent as several records, each learned
 * (up to BT_DNS_ROUNDS records of BT_DNS_ADDRS). An answer not all of whose
 * address records could be read (more than that, records past the
 * BT_DNS_PKT bytes looked at, a record that does not parse) says why in its
 * last record, and when a block rule covers its name it is dropped in block
 * mode: otherwise the process could connect to an address the block trie
 * never got (answer_end). TCP answers and DNS over
 * TLS/HTTPS are not parsed: in block mode with domain rules, egress.bpf.c
 * refuses DNS over TCP and DNS to servers that are not resolvers instead.
 */

#include "dns_wire.bpf.h"

#define BT_DNS_ANSWERS 64 /* resource records read per record sent */
#define BT_DNS_ROUNDS 8   /* records sent per answer: 64 addresses */
#define BT_DNS_QUERY_NS (10ULL * 1000000000ULL) /* how long a query waits for its answer */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct bt_dns_key);
	__type(value, struct bt_dns_rule);
} dns_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dns_query_key);
	__type(value, struct dns_query);
} dns_queries SEC(".maps");

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

/* The dns_socks entry of the packet's socket, with its cookie in *sock,
 * when it is a UDP socket that talked to a resolver, else NULL. The bulk of
 * the traffic (TCP) is let go before any map lookup or copy. */
static __always_inline struct dns_sock *dns_socket(struct __sk_buff *skb, __u64 *sock)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return NULL;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != 17)
		return NULL;
	*sock = bpf_get_socket_cookie(skb);
	return bpf_map_lookup_elem(&dns_socks, sock);
}

SEC("cgroup_skb/egress")
int egress_dnsq(struct __sk_buff *skb)
{
	struct dns_scratch *s;
	struct dns_ctx c;
	__u32 zero = 0, len, l4, dns, flags;
	__u64 sock = 0;
	bool known;

	if (!dns_socket(skb, &sock))
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

/* Learns and sends the addresses gathered in the record (none, for the last
 * record of an answer that only says it was cut). */
static __always_inline void flush_answer(struct dns_scratch *s)
{
	struct bt_dns_event *e = &s->ev;
	struct bt_dns_rule hit = s->st.hit;
	__u32 k;

	if (s->st.found) {
		for (k = 0; k < BT_DNS_ADDRS; k++) {
			if (k >= e->naddrs)
				break;
			learn_addr(e, k, &hit);
		}
	}
	if (bpf_ringbuf_output(&net_events, e, sizeof(*e), 0))
		bt_count_lost(&egress_lost);
}

/* One record's worth of the answer's addresses; sent, and the walk goes
 * on, while the record was full and answers are left. The last record is
 * the caller's to send (answer_end). */
static long round_step(__u64 i, void *vctx)
{
	struct dns_ctx *c = vctx;
	struct dns_scratch *s = c->s;

	s->ev.naddrs = 0;
	s->st.more = 0;
	bpf_loop(BT_DNS_ANSWERS, answer_step, c, 0);
	if (!s->st.more || !s->st.left)
		return 1;
	flush_answer(s);
	s->ev.naddrs = 0;
	return 0;
}

/* Sends the answer's last record, saying whether every address record was
 * read; the verdict on the datagram. An answer for a name a block rule
 * covers, not all of whose addresses could be learned, would let the
 * process reach an address the block trie does not hold: in block mode it
 * is dropped before the socket gets it (the lookup fails or times out), in
 * audit mode reported. An allow rule needs no such care: an address not
 * learned stays outside the allowlist. */
static __always_inline int answer_end(struct dns_scratch *s)
{
	struct bt_dns_event *e = &s->ev;
	struct bt_egress_cfg *cfg;
	__u32 zero = 0;
	int verdict = 1;

	if (s->st.cut == BT_DNS_WHOLE && s->st.left)
		s->st.cut = BT_DNS_CUT_COUNT;
	e->cut = s->st.cut;
	if (e->cut != BT_DNS_WHOLE && s->st.found == 2) {
		cfg = bpf_map_lookup_elem(&egress_cfg, &zero);
		if (cfg && cfg->mode == BT_MODE_BLOCK) {
			e->action = BT_ACT_BLOCKED;
			verdict = 0;
		} else if (cfg && cfg->mode == BT_MODE_AUDIT) {
			e->action = BT_ACT_WOULD_BLOCK;
		}
	}
	if (e->naddrs || (e->cut != BT_DNS_WHOLE && s->st.found))
		flush_answer(s);
	return verdict;
}

SEC("cgroup_skb/ingress")
int egress_dns(struct __sk_buff *skb)
{
	struct dns_scratch *s;
	struct dns_ctx c;
	__u32 zero = 0, len, l4, dns, flags, qd, an;
	struct dns_sock *who;
	__u64 sock = 0;

	who = dns_socket(skb, &sock);
	if (!who)
		return 1;
	s = bpf_map_lookup_elem(&dns_buf, &zero);
	if (!s)
		return 1;
	c.s = s;
	/* Who asked, copied before the entry can be evicted or rewritten. */
	s->ev.hdr.pid = who->pid_tgid >> 32;
	s->ev.hdr.tid = (__u32)who->pid_tgid;
	s->ev.hdr.uid = who->uid;
	__builtin_memcpy(s->ev.hdr.comm, who->comm, sizeof(s->ev.hdr.comm));
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
	e->hdr.ppid = 0;
	e->hdr._pad = 0;
	e->name_len = s->st.qlen;
	e->naddrs = 0;
	e->rule_hit = 0;
	e->cut = BT_DNS_WHOLE;
	e->action = BT_ACT_OBSERVED;
	e->server_family = s->qk.family == BT_AF_INET ? 4 : 6;
	e->_pad = 0;
	e->rule = 0;
	e->_pad2 = 0;
	__builtin_memcpy(e->server, s->qk.server, sizeof(e->server));
	if (!copy_name(s, e->name))
		return 1;
	if (!answers_query(sock, s, l4, dns))
		return 1;

	/* The rule first: every record of this answer is learned by it. */
	s->st.off = 0;
	s->st.found = 0;
	bpf_loop(BT_DNS_NAME / 2, rule_step, &c, 0);
	e->rule_hit = s->st.found ? 1 : 0;
	if (s->st.found)
		e->rule = s->st.hit.val.rule;

	s->st.pos += 4; /* qtype, qclass */
	s->st.left = an;
	s->st.cut = BT_DNS_WHOLE;
	bpf_loop(BT_DNS_ROUNDS, round_step, &c, 0);
	return answer_end(s);
}

#endif
