// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Network family: outbound connect(2) on IPv4 and IPv6 sockets, TCP or UDP,
 * with the destination, the socket's protocol and the result; and socket(2)
 * of the sockets that send below the cgroup hooks (raw, packet, ping).
 *
 * It also marks each thread while it is inside connect(2) (in_connect), for
 * the cgroup connect hooks of egress.bpf.c: a connect they see from a thread
 * that is not inside connect(2) was made another way (io_uring, TCP Fast
 * Open sendto/sendmsg) that no tracepoint here reports, and they report it
 * themselves, so that every connect is one event whatever path made it. */
#include "task.bpf.h"
#include "ring.bpf.h"
#include "share.bpf.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

BT_RINGBUF(net_events, BT_RING_NET);

BT_LOST_COUNTER(net_lost);

/* Each process's share of net_events per window (share.bpf.h), for the
 * routine records: connect results, socket(2), listen/accept, and the
 * observed sends of egress.bpf.c, which user space hands this map. The
 * egress verdicts never ask. */
BT_SHARE_MAP(net_share);

/* listen(2) and accepted connections from other hosts. */
#include "serve.bpf.h"

/* Threads inside connect(2) now: tid -> 1. Set at entry, cleared at exit; an
 * LRU so that a thread that never reaches the exit (killed in between) costs
 * a slot only until it is pushed out. Handed to the egress object. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} in_connect SEC(".maps");

static __always_inline void enter_connect(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u8 one = 1;

	bpf_map_update_elem(&in_connect, &tid, &one, BPF_ANY);
}

static __always_inline void leave_connect(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&in_connect, &tid);
}

static __always_inline int on_connect_exit(long ret)
{
	struct pt_regs *regs;
	struct bt_net_event *e;
	struct file *f;
	struct socket *sock;
	void *uaddr;
	__u16 family = 0;
	int fd;

	leave_connect();
	if (bt_is_self() || ret == -88 /* ENOTSOCK */ || ret == -9 /* EBADF */)
		return 0;
	regs = bt_syscall_regs();
	fd = (int)BT_ARG1(regs);
	uaddr = (void *)BT_ARG2(regs);
	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return 0;
	if (family != BT_AF_INET && family != BT_AF_INET6)
		return 0;
	f = bt_fd_file(fd);
	if (!f)
		return 0;
	if (bt_over_share_current(&net_share))
		return 0;

	e = bpf_ringbuf_reserve(&net_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&net_lost);
		return 0;
	}
	bt_fill_header(&e->hdr, BT_EV_NET);
	e->ret = ret;
	e->family = family;
	e->_pad = 0;
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	if (family == BT_AF_INET) {
		struct sockaddr_in sin = {};
		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		e->dport = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(e->daddr, &sin.sin_addr, 4);
	} else {
		struct sockaddr_in6 sin6 = {};
		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		e->dport = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(e->daddr, &sin6.sin6_addr, 16);
	}
	sock = BPF_CORE_READ(f, private_data);
	e->sock_type = BPF_CORE_READ(sock, type);
	e->protocol = BPF_CORE_READ(sock, sk, sk_protocol);
	bt_submit(&net_events, e);
	return 0;
}

/* A socket that sends below the cgroup sock_addr hooks: any AF_PACKET
 * socket, a SOCK_RAW of AF_INET or AF_INET6, or an ICMP ping socket. */
static __always_inline bool raw_socket(long family, long type, long protocol)
{
	type &= 0xf; /* SOCK_TYPE_MASK: without SOCK_NONBLOCK, SOCK_CLOEXEC */
	if (family == BT_AF_PACKET)
		return true;
	if (family != BT_AF_INET && family != BT_AF_INET6)
		return false;
	return type == 3 /* SOCK_RAW */ ||
	       (type == 2 /* SOCK_DGRAM */ && (protocol == 1 /* IPPROTO_ICMP */ ||
					      protocol == 58 /* IPPROTO_ICMPV6 */));
}

static __always_inline int on_socket_exit(long ret)
{
	struct pt_regs *regs;
	struct bt_net_event *e;
	long family, type, protocol;

	if (bt_is_self())
		return 0;
	regs = bt_syscall_regs();
	family = (long)BT_ARG1(regs);
	type = (long)BT_ARG2(regs);
	protocol = (long)BT_ARG3(regs);
	if (!raw_socket(family, type, protocol))
		return 0;
	if (bt_over_share_current(&net_share))
		return 0;
	e = bpf_ringbuf_reserve(&net_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&net_lost);
		return 0;
	}
	bt_fill_header(&e->hdr, BT_EV_SOCKET);
	e->ret = ret;
	e->family = family;
	e->dport = 0;
	e->sock_type = type & 0xf;
	e->protocol = protocol; /* AF_PACKET: the ethertype, network byte order */
	e->_pad = 0;
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	bt_submit(&net_events, e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_socket")
int handle_socket_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_socket_exit(ctx->ret);
}

SEC(BT_SYSCALL_FEXIT(socket))
int BPF_PROG(fexit_socket, const struct pt_regs *regs, long ret)
{
	return on_socket_exit(ret);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int handle_connect_enter(void *ctx)
{
	enter_connect();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int handle_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_connect_exit(ctx->ret);
}

/* The fexit upgrade (see BT_SYSCALL_FEXIT), with its fentry for the mark. */
#if defined(__TARGET_ARCH_x86)
#define BT_SYSCALL_FENTRY(name) "?fentry/__x64_sys_" #name
#else
#define BT_SYSCALL_FENTRY(name) "?fentry/__arm64_sys_" #name
#endif

SEC(BT_SYSCALL_FENTRY(connect))
int BPF_PROG(fentry_connect, const struct pt_regs *regs)
{
	enter_connect();
	return 0;
}

SEC(BT_SYSCALL_FEXIT(connect))
int BPF_PROG(fexit_connect, const struct pt_regs *regs, long ret)
{
	return on_connect_exit(ret);
}
