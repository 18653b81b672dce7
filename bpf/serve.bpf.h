/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Servers in the job: a listen(2) that succeeded, and an accept(2) of a
 * connection from another host, so that a bind shell, a reverse tunnel's
 * listener or `python3 -m http.server` is seen (a reverse shell connects out
 * and is a connect). Accepts from loopback are the job's own tests talking
 * to themselves and are not sent; repeated accepts from one peer on one
 * port are folded for BT_SERVE_FOLD_NS. Included by net.bpf.c only.
 */
#ifndef BEE_TRACE_SERVE_BPF_H
#define BEE_TRACE_SERVE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "abi.h"
#include "task.bpf.h"
#include "ring.bpf.h"

#define BT_SERVE_FOLD_NS (10ULL * 1000000000ULL)

struct serve_fold_key {
	__u32 tgid;
	__u16 lport;
	__u16 _pad;
	__u8 raddr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct serve_fold_key);
	__type(value, __u64);
} serve_fold SEC(".maps");

/* The socket behind fd, or NULL when fd is not an IPv4/IPv6 socket. */
static __always_inline struct sock *inet_sock_of(int fd)
{
	struct file *f = bt_fd_file(fd);
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!f)
		return NULL;
	/* Only a socket's file has socket_file_ops; private_data is then the
	 * socket. Checking the inode's type costs one read. */
	if ((BPF_CORE_READ(f, f_inode, i_mode) & 0170000) != 0140000)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != BT_AF_INET && family != BT_AF_INET6)
		return NULL;
	return sk;
}

static __always_inline bool loopback(__u16 family, const __u8 *a)
{
	if (family == BT_AF_INET)
		return a[0] == 127;
	/* ::1, and ::ffff:127.x.y.z */
	bool zero10 = true;
	for (int i = 0; i < 10; i++)
		zero10 = zero10 && a[i] == 0;
	if (!zero10)
		return false;
	if (a[10] == 0xff && a[11] == 0xff)
		return a[12] == 127;
	for (int i = 10; i < 15; i++)
		if (a[i])
			return false;
	return a[15] == 1;
}

static __always_inline void serve_emit(struct sock *sk, long ret, __u8 op)
{
	struct bt_serve_event *e;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 raddr[16] = {};
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);

	if (op == BT_SERVE_ACCEPT) {
		if (family == BT_AF_INET) {
			__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
			__builtin_memcpy(raddr, &d, 4);
		} else {
			BPF_CORE_READ_INTO(&raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		}
		if (loopback(family, raddr))
			return;
		struct serve_fold_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .lport = lport };
		__builtin_memcpy(k.raddr, raddr, 16);
		__u64 now = bpf_ktime_get_boot_ns();
		__u64 *last = bpf_map_lookup_elem(&serve_fold, &k);
		if (last && now - *last < BT_SERVE_FOLD_NS)
			return;
		bpf_map_update_elem(&serve_fold, &k, &now, BPF_ANY);
	}
	if (bt_over_share_current(&net_share))
		return;
	e = bpf_ringbuf_reserve(&net_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&net_lost);
		return;
	}
	bt_fill_header(&e->hdr, BT_EV_SERVE);
	e->ret = ret;
	e->family = family;
	e->lport = lport;
	e->rport = op == BT_SERVE_ACCEPT ? bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)) : 0;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->op = op;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	__builtin_memset(e->laddr, 0, sizeof(e->laddr));
	if (family == BT_AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(e->laddr, &s, 4);
	} else {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	}
	__builtin_memcpy(e->raddr, raddr, 16);
	bt_submit(&net_events, e);
}

static __always_inline int on_listen_exit(long ret)
{
	struct sock *sk;

	if (ret != 0 || bt_is_self())
		return 0;
	sk = inet_sock_of((int)BT_ARG1(bt_syscall_regs()));
	if (sk)
		serve_emit(sk, ret, BT_SERVE_LISTEN);
	return 0;
}

static __always_inline int on_accept_exit(long ret)
{
	struct sock *sk;

	if (ret < 0 || bt_is_self())
		return 0;
	sk = inet_sock_of((int)ret);
	if (sk)
		serve_emit(sk, ret, BT_SERVE_ACCEPT);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int handle_listen_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_listen_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int handle_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int handle_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx->ret);
}

SEC(BT_SYSCALL_FEXIT(listen))
int BPF_PROG(fexit_listen, const struct pt_regs *regs, long ret)
{
	return on_listen_exit(ret);
}

SEC(BT_SYSCALL_FEXIT(accept))
int BPF_PROG(fexit_accept, const struct pt_regs *regs, long ret)
{
	return on_accept_exit(ret);
}

SEC(BT_SYSCALL_FEXIT(accept4))
int BPF_PROG(fexit_accept4, const struct pt_regs *regs, long ret)
{
	return on_accept_exit(ret);
}

#endif
