/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The egress backstop, the third part of egress.bpf.c and included only
 * there, after the verdicts it shares (judge4/judge6, emit_packet, egress_cfg).
 *
 * Some sockets send without any cgroup sock_addr hook: raw IP sockets
 * (SOCK_RAW, IP_HDRINCL included), ICMP ping sockets, and UDP-Lite (its
 * connect runs no connect hook, and connected sends skip the sendmsg hook).
 * Every packet they send still passes the cgroup_skb egress hook of the
 * socket's cgroup, at the IP output path, so it is judged here by its own
 * IP header (what really leaves, whatever the sockaddr said): in block mode
 * a packet to a blocked destination is dropped (the send fails with EPERM),
 * in audit mode let through; either way reported once per (process,
 * protocol, destination) per BT_BACKSTOP_WINDOW_NS, not per packet.
 *
 * TCP and UDP sockets are passed at once (their connects and sends were
 * judged by the sock_addr hooks): the socket's type and protocol are read
 * before anything else, so the cost on ordinary traffic is two loads.
 *
 * A raw socket's connect(2) is judged at its entry too (it sets the
 * destination of later sends; the kernel runs no hook for it), so that it is
 * reported with the verdict its packets will get, not as an allowed connect.
 */
#ifndef BEE_TRACE_BACKSTOP_BPF_H
#define BEE_TRACE_BACKSTOP_BPF_H

/* The tcx verdicts (include/uapi/linux/bpf.h, 6.6): named here, not taken
 * from vmlinux.h, because the arm64 one is cut from a 6.1 kernel that has no
 * tcx. Where tcx is missing the program is not attached (kernel/egress.rs). */
#define BT_TCX_NEXT (-1)
#define BT_TCX_DROP 2

#define BT_BACKSTOP_WINDOW_NS (10ULL * 1000000000ULL)

#define BT_SOCK_DGRAM 2
#define BT_SOCK_RAW 3
#define BT_IPPROTO_ICMP 1
#define BT_IPPROTO_TCP 6
#define BT_IPPROTO_UDP 17
#define BT_IPPROTO_ICMPV6 58
#define BT_IPPROTO_UDPLITE 136

/* Destinations reported by the backstop: (tgid, IP protocol in dport,
 * family, address) -> when. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct send_key);
	__type(value, __u64);
} recent_backstop SEC(".maps");

/* A socket no sock_addr hook judges fully. */
static __always_inline bool below_hooks(__u32 type, __u32 protocol)
{
	if (type == BT_SOCK_RAW)
		return true;
	return type == BT_SOCK_DGRAM && (protocol == BT_IPPROTO_ICMP ||
					 protocol == BT_IPPROTO_ICMPV6 ||
					 protocol == BT_IPPROTO_UDPLITE);
}

/* Destinations an allowlist does not hold the backstops to (explicit blocks
 * still do): broadcast and multicast, and IPv6 link-local. The kernel's own
 * neighbour and router discovery, MLD and DHCP clients send there with raw
 * or packet sockets; an allowlist must not cut the host off its own link. */
static __always_inline bool link_scope(const struct verdict *v)
{
	if (v->family == BT_AF_INET)
		return v->daddr[0] >= 224;
	if (v4_mapped(v->daddr))
		return v->daddr[12] >= 224;
	return v->daddr[0] == 0xff || (v->daddr[0] == 0xfe && (v->daddr[1] & 0xc0) == 0x80);
}

/* ICMPv6 neighbour discovery and MLD (types 130-137, 143): the kernel's
 * ND sockets (those of every namespace) send them unicast too, to the
 * neighbour itself (NUD probes, advertisements); under an allowlist they
 * are held to explicit blocks only, like link_scope destinations. */
static __always_inline bool nd_or_mld(struct __sk_buff *skb, __u8 l4)
{
	__u8 type = 0;

	if (l4 != BT_IPPROTO_ICMPV6 || bpf_skb_load_bytes(skb, 40, &type, 1))
		return false;
	return (type >= 130 && type <= 137) || type == 143;
}

static __always_inline bool backstop_recently(const struct verdict *v, __u8 l4)
{
	struct send_key k = {
		.tgid = bt_packet_tgid(),
		.dport = l4,
		.family = v->family,
	};
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *last;

	__builtin_memcpy(k.daddr, v->daddr, 16);
	last = bpf_map_lookup_elem(&recent_backstop, &k);
	if (last && now - *last < BT_BACKSTOP_WINDOW_NS)
		return true;
	bpf_map_update_elem(&recent_backstop, &k, &now, BPF_ANY);
	return false;
}

/* The destination port of a TCP, UDP or UDP-Lite header at off, else 0. */
static __always_inline __u16 l4_dport(struct __sk_buff *skb, __u32 off, __u8 l4)
{
	__u16 port = 0;

	if (l4 != BT_IPPROTO_TCP && l4 != BT_IPPROTO_UDP && l4 != BT_IPPROTO_UDPLITE)
		return 0;
	if (bpf_skb_load_bytes(skb, off + 2, &port, sizeof(port)))
		return 0;
	return bpf_ntohs(port);
}

SEC("cgroup_skb/egress")
int egress_backstop(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct bt_egress_cfg *cfg, c;
	struct verdict v = {};
	__u32 type, protocol, zero = 0;
	__u8 l4 = 0;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	type = sk->type;
	protocol = sk->protocol;
	if (!below_hooks(type, protocol) || bt_packet_is_self())
		return 1;
	cfg = bpf_map_lookup_elem(&egress_cfg, &zero);
	if (!cfg || cfg->mode == BT_MODE_OFF)
		return 1;
	c = *cfg;
	if (skb->protocol == bpf_htons(0x0800)) {
		__u8 h[20];

		if (bpf_skb_load_bytes(skb, 0, h, sizeof(h)))
			return 1;
		l4 = h[9];
		v.family = BT_AF_INET;
		__builtin_memcpy(v.daddr, h + 16, 4);
		v.dport = l4_dport(skb, (h[0] & 0xf) * 4, l4);
		if (link_scope(&v))
			c.allowlist = 0;
		v.rule = judge4(&c, v.daddr, v.dport);
	} else if (skb->protocol == bpf_htons(0x86DD)) {
		__u8 h[40];

		if (bpf_skb_load_bytes(skb, 0, h, sizeof(h)))
			return 1;
		l4 = h[6]; /* extension headers are not walked: their port is 0 */
		v.family = BT_AF_INET6;
		__builtin_memcpy(v.daddr, h + 24, 16);
		v.dport = l4_dport(skb, 40, l4);
		if (link_scope(&v) || nd_or_mld(skb, l4))
			c.allowlist = 0;
		v.rule = v4_mapped(v.daddr) ? judge4(&c, v.daddr + 12, v.dport)
					    : judge6(&c, v.daddr, v.dport);
	} else {
		return 1;
	}
	if (!v.rule)
		return 1;
	if (!backstop_recently(&v, l4))
		emit_packet(&v, type, protocol,
			cfg->mode == BT_MODE_BLOCK ? BT_ACT_BLOCKED : BT_ACT_WOULD_BLOCK,
			BT_HOOK_PACKET);
	return cfg->mode == BT_MODE_BLOCK ? 0 : 1;
}

/* connect(2) of a socket below the hooks, at its entry: judged as its
 * packets will be, and reported when a rule matches (the connect tracepoint's
 * record of the call is folded into this verdict in user space). */
SEC("tracepoint/syscalls/sys_enter_connect")
int egress_raw_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct bt_egress_cfg *cfg;
	struct verdict v = {};
	struct socket *sock;
	struct file *f;
	void *uaddr = (void *)ctx->args[1];
	__u16 family = 0, type, protocol;
	__u32 zero = 0;

	if (bt_is_self())
		return 0;
	cfg = bpf_map_lookup_elem(&egress_cfg, &zero);
	if (!cfg || cfg->mode == BT_MODE_OFF)
		return 0;
	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return 0;
	if (family != BT_AF_INET && family != BT_AF_INET6)
		return 0;
	f = bt_fd_file((int)ctx->args[0]);
	/* Only a socket's private_data is a struct socket. */
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & 00170000) != 0140000 /* S_IFSOCK */)
		return 0;
	sock = BPF_CORE_READ(f, private_data);
	type = BPF_CORE_READ(sock, type);
	protocol = BPF_CORE_READ(sock, sk, sk_protocol);
	/* Ping sockets run the cgroup connect hook (ping_pre_connect). */
	if (type != BT_SOCK_RAW && protocol != BT_IPPROTO_UDPLITE)
		return 0;
	if (family == BT_AF_INET) {
		struct sockaddr_in sin = {};

		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		v.family = BT_AF_INET;
		v.dport = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(v.daddr, &sin.sin_addr, 4);
		v.rule = judge4(cfg, v.daddr, v.dport);
	} else {
		struct sockaddr_in6 sin6 = {};

		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		v.family = BT_AF_INET6;
		v.dport = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(v.daddr, &sin6.sin6_addr, 16);
		v.rule = v4_mapped(v.daddr) ? judge4(cfg, v.daddr + 12, v.dport)
					    : judge6(cfg, v.daddr, v.dport);
	}
	if (v.rule)
		emit_as(&v, type, protocol,
			cfg->mode == BT_MODE_BLOCK ? BT_ACT_BLOCKED : BT_ACT_WOULD_BLOCK,
			BT_HOOK_RAW_CONNECT);
	return 0;
}

/*
 * The device backstop: tcx egress on every interface of the host's network
 * namespace, for what leaves without any socket hook or cgroup_skb program
 * judging it: frames of AF_PACKET sockets (they skip the IP layer), and
 * packets whose outer destination is not the one their socket was judged
 * for (a VXLAN or other tunnel device encapsulating to its remote). It reads
 * the network header wherever the device puts it.
 *
 * Packets the layers above judged are passed after a few loads: those of a
 * TCP or UDP socket connected to the packet's own destination.
 * AF_PACKET frames are judged by the whole policy (the allowlist too, but
 * not for link_scope destinations);
 * everything else that gets here (tunnel encapsulations, unconnected UDP, a
 * kernel's own packets: resets, ICMP errors, neighbour probes) only against
 * explicit blocks, so that an allowlist never drops the kernel's replies.
 */
static __always_inline int device_verdict(struct __sk_buff *skb, struct verdict *v, __u8 l4,
					  const struct bt_egress_cfg *cfg, bool whole,
					  __u16 sock_type)
{
	struct bt_egress_cfg c = *cfg;
	__u64 *last;
	struct send_key k = {
		.tgid = bt_packet_tgid(),
		.dport = v->dport,
		.family = v->family,
	};

	if (link_scope(v))
		whole = false;
	if (!whole)
		c.allowlist = 0;
	if (v->family == BT_AF_INET)
		v->rule = judge4(&c, v->daddr, v->dport);
	else
		v->rule = v4_mapped(v->daddr) ? judge4(&c, v->daddr + 12, v->dport)
					      : judge6(&c, v->daddr, v->dport);
	if (!v->rule)
		return BT_TCX_NEXT;
	/* The sendmsg hook reported this very datagram (audit mode). */
	__builtin_memcpy(k.daddr, v->daddr, 16);
	last = bpf_map_lookup_elem(&recent_sends, &k);
	if (!(last && bpf_ktime_get_boot_ns() - *last < 1000000000ULL) &&
	    !backstop_recently(v, l4))
		emit_packet(v, sock_type, l4,
			cfg->mode == BT_MODE_BLOCK ? BT_ACT_BLOCKED : BT_ACT_WOULD_BLOCK,
			BT_HOOK_DEVICE);
	return cfg->mode == BT_MODE_BLOCK ? BT_TCX_DROP : BT_TCX_NEXT;
}

SEC("tcx/egress")
int egress_device(struct __sk_buff *skb)
{
	struct bt_egress_cfg *cfg;
	struct bpf_sock *sk = skb->sk;
	struct verdict v = {};
	__u32 zero = 0, family = 0, type = 0, dst4 = 0, proto;
	bool whole = false, inet;
	__u8 l4;

	cfg = bpf_map_lookup_elem(&egress_cfg, &zero);
	if (!cfg || cfg->mode == BT_MODE_OFF)
		return BT_TCX_NEXT;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (sk) {
		family = sk->family;
		type = sk->type;
		dst4 = sk->dst_ip4;
	}
	/* Raw, ping and UDP-Lite packets are judged again here, against
	 * explicit blocks: the cgroup_skb backstop judged the packet its socket
	 * made, which a tunnel device may since have wrapped for another
	 * destination (the kernel's own neighbour discovery is sent by raw
	 * ICMPv6 sockets). Its report of the same destination stands for ours. */
	inet = family == BT_AF_INET || family == BT_AF_INET6;
	proto = skb->protocol;
	if (family == BT_AF_PACKET) {
		__u8 first = 0;

		whole = true;
		/* A packet socket's skb carries the protocol its sender named
		 * (sll_protocol, or the socket's), not what the frame is: an
		 * IPv4 frame sent as EtherType 0x88b5 is IPv4 to every receiver.
		 * The frame says what it is: its network header's version. */
		if (bpf_skb_load_bytes_relative(skb, 0, &first, 1, BPF_HDR_START_NET))
			return BT_TCX_NEXT;
		if (first >> 4 == 4)
			proto = bpf_htons(0x0800);
		else if (first >> 4 == 6)
			proto = bpf_htons(0x86DD);
	}
	if (proto == bpf_htons(0x0800)) {
		__u8 h[20];

		if (bpf_skb_load_bytes_relative(skb, 0, h, sizeof(h), BPF_HDR_START_NET))
			return BT_TCX_NEXT;
		__u32 daddr;

		__builtin_memcpy(&daddr, h + 16, 4);
		/* Connected to this very destination: judged at connect. */
		if (inet && dst4 && dst4 == daddr)
			return BT_TCX_NEXT;
		l4 = h[9];
		v.family = BT_AF_INET;
		__builtin_memcpy(v.daddr, h + 16, 4);
		if (l4 == BT_IPPROTO_TCP || l4 == BT_IPPROTO_UDP || l4 == BT_IPPROTO_UDPLITE) {
			__u16 port = 0;

			if (!bpf_skb_load_bytes_relative(skb, (h[0] & 0xf) * 4 + 2, &port,
							 sizeof(port), BPF_HDR_START_NET))
				v.dport = bpf_ntohs(port);
		}
	} else if (proto == bpf_htons(0x86DD)) {
		__u8 h[40];

		if (bpf_skb_load_bytes_relative(skb, 0, h, sizeof(h), BPF_HDR_START_NET))
			return BT_TCX_NEXT;
		if (inet && sk) {
			__u32 d[4] = { sk->dst_ip6[0], sk->dst_ip6[1], sk->dst_ip6[2],
				       sk->dst_ip6[3] };
			__u32 a[4];

			__builtin_memcpy(a, h + 24, 16);
			if ((d[0] | d[1] | d[2] | d[3]) && d[0] == a[0] && d[1] == a[1] &&
			    d[2] == a[2] && d[3] == a[3])
				return BT_TCX_NEXT;
		}
		l4 = h[6];
		v.family = BT_AF_INET6;
		__builtin_memcpy(v.daddr, h + 24, 16);
		if (l4 == BT_IPPROTO_TCP || l4 == BT_IPPROTO_UDP || l4 == BT_IPPROTO_UDPLITE) {
			__u16 port = 0;

			if (!bpf_skb_load_bytes_relative(skb, 40 + 2, &port, sizeof(port),
							 BPF_HDR_START_NET))
				v.dport = bpf_ntohs(port);
		}
	} else {
		return BT_TCX_NEXT;
	}
	return device_verdict(skb, &v, l4, cfg, whole, type);
}

#endif

