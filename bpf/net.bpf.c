// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Network family: outbound connect(2) on IPv4 and IPv6 sockets, TCP or UDP,
 * with the destination, the socket's protocol and the result. */
#include "task.bpf.h"
#include "ring.bpf.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

BT_RINGBUF(net_events, BT_RING_NET);

BT_LOST_COUNTER(net_lost);

static __always_inline int on_connect_exit(long ret)
{
	struct pt_regs *regs;
	struct bt_net_event *e;
	struct file *f;
	struct socket *sock;
	void *uaddr;
	__u16 family = 0;
	int fd;

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

SEC("tracepoint/syscalls/sys_exit_connect")
int handle_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_connect_exit(ctx->ret);
}

/* The fexit upgrade (see BT_SYSCALL_FEXIT). */
SEC(BT_SYSCALL_FEXIT(connect))
int BPF_PROG(fexit_connect, const struct pt_regs *regs, long ret)
{
	return on_connect_exit(ret);
}
