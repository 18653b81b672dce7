/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The DNS wire format as dns.bpf.h reads it: a datagram copied into a
 * per-CPU scratch, its IP and UDP headers, the question name, and the A and
 * AAAA records of an answer, with why not all of them could be read
 * (st.cut). No maps: the scratch is the caller's. */
#ifndef BEE_TRACE_DNS_WIRE_BPF_H
#define BEE_TRACE_DNS_WIRE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "abi.h"

#define BT_DNS_PKT 2048 /* bytes of the datagram looked at (EDNS answers reach 1232 and more) */

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
	__s32 done;  /* name walk: 1 ended by its zero label (or a pointer), -1 out of bytes, -2 malformed */
	__s32 found; /* rule scan: 0 none, 1 allow, 2 block (final) */
	__u32 more;  /* answer walk: the record was full with addresses left */
	__u32 cut;   /* answer walk: enum bt_dns_cut, why it stopped early */
	__u32 capped; /* the datagram is longer than the BT_DNS_PKT bytes loaded */
	__u32 _pad;
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

/* One label of an answer's owner name: a pointer ends it. The label types
 * 0x40 (deprecated by RFC 6891) and 0x80 (reserved) are malformed, as glibc
 * finds them: read as lengths they would put this walk out of step with the
 * client's. */
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
	if (l & 0xc0) {
		w->done = -2;
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

/* Why the answer walk stops at a record that runs out of bytes: past the
 * bytes loaded of a longer datagram, or past the end of the datagram. */
static __always_inline long answer_out_of_bytes(struct dns_state *a)
{
	a->cut = a->capped ? BT_DNS_CUT_SIZE : BT_DNS_CUT_MALFORMED;
	return 1;
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

/* One answer record: an A or AAAA of class IN is added to the event. A
 * record the walk cannot get past ends it with st.cut set; an address record
 * it does not learn (another class, a wrong length) sets st.cut and the walk
 * goes on. Answers left when the walk ends without st.cut are more than it
 * reads (the caller's BT_DNS_CUT_COUNT). */
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
	if (e->naddrs >= BT_DNS_ADDRS) {
		a->more = 1; /* sent, and this answer read on, by the caller */
		return 1;
	}
	a->left--;
	a->done = 0;
	/* A name has at most 127 labels and the root. */
	bpf_loop(128, skip_step, c, 0);
	if (a->done == -1)
		return answer_out_of_bytes(a);
	if (a->done != 1) {
		a->cut = BT_DNS_CUT_MALFORMED;
		return 1;
	}
	if (a->pos + 10 > a->end)
		return answer_out_of_bytes(a);
	at = a->pos;
	type = pkt_u16(s, at);
	class = pkt_u16(s, at + 2);
	ttl = ((__u32)pkt_u16(s, at + 4) << 16) | pkt_u16(s, at + 6);
	rdlen = pkt_u16(s, at + 8);
	a->pos = at + 10 + rdlen;
	if (a->pos > a->end)
		return answer_out_of_bytes(a);
	if ((type & 0xff) != 1 && (type & 0xff) != 28)
		return 0;
	/* An address record this walk does not learn. musl's parser keys a
	 * record by the low byte of its type and ignores its class, so it takes
	 * such a record (type 257, class 3 ...) for an A or AAAA. */
	if (class != 1 || !((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16))) {
		a->cut = BT_DNS_CUT_MALFORMED;
		return 0;
	}
	k = e->naddrs;
	if (k >= BT_DNS_ADDRS)
		return 1; /* not reached: checked above, kept for the verifier */
	e->ttl[k] = ttl;
	e->family[k] = type == 1 ? 4 : 6;
	__builtin_memset(e->addr[k], 0, 16);
	bpf_probe_read_kernel(e->addr[k], type == 1 ? 4 : 16, &s->pkt[(at + 10) & (BT_DNS_PKT - 1)]);
	e->naddrs = k + 1;
	return 0;
}

/* Loads the start of the datagram into the scratch; its length, or 0. */
static __always_inline __u32 load_pkt(struct __sk_buff *skb, struct dns_scratch *s)
{
	__u32 len = skb->len;

	if (len < 20 + 8 + 12 + 5)
		return 0;
	s->st.capped = len > BT_DNS_PKT;
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
	/* A name has at most 127 labels and the root. */
	bpf_loop(128, name_step, c, 0);
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

#endif
