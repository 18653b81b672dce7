/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The current task as a tracing program sees it: is it bee-trace, the common
 * event header, its syscall's number and arguments, its open files. */
#ifndef BEE_TRACE_TASK_BPF_H
#define BEE_TRACE_TASK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "abi.h"

/* Our own thread-group id: bee-trace's own activity is never an event. */
const volatile __u32 self_tgid = 0;

static __always_inline bool bt_is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

/* The header without the parent: all that a program that cannot read the
 * task (a cgroup hook) can fill. ppid is left 0 for user space to fill. */
static __always_inline void bt_fill_header_noparent(struct bt_header *h, __u32 type)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	h->ts_boot_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->type = type;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = 0;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->_pad = 0;
	bpf_get_current_comm(&h->comm, sizeof(h->comm));
}

/*
 * The programs on a packet's path (cgroup_skb, tcx) may not call the
 * current-task helpers: 6.1 refuses bpf_get_current_pid_tgid there, 6.12
 * still bpf_get_current_uid_gid and bpf_get_current_comm. A loader with
 * CAP_PERFMON may read the current task itself in every program type
 * (bpf_get_current_task and bpf_probe_read_kernel are in the base set), so
 * these programs take the same fields from the task: the thread-group and
 * thread ids, the real parent, the credentials' uid, the default
 * hierarchy's cgroup (what bpf_get_current_cgroup_id reads) and the name.
 * The packets they judge are sent from the sender's own context (raw, ping
 * and packet sockets transmit synchronously), so the task is the sender.
 */
static __always_inline struct task_struct *bt_packet_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

static __always_inline __u32 bt_packet_tgid(void)
{
	return BPF_CORE_READ(bt_packet_task(), tgid);
}

static __always_inline bool bt_packet_is_self(void)
{
	return bt_packet_tgid() == self_tgid;
}

static __always_inline void bt_fill_header_packet(struct bt_header *h, __u32 type)
{
	struct task_struct *task = bt_packet_task();

	h->ts_boot_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	h->type = type;
	h->pid = BPF_CORE_READ(task, tgid);
	h->tid = BPF_CORE_READ(task, pid);
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = BPF_CORE_READ(task, cred, uid.val);
	h->_pad = 0;
	/* comm is kept NUL-padded by the kernel (strscpy_pad). */
	if (BPF_CORE_READ_INTO(&h->comm, task, comm))
		__builtin_memset(h->comm, 0, sizeof(h->comm));
}

static __always_inline void bt_fill_header(struct bt_header *h, __u32 type)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	bt_fill_header_noparent(h, type);
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
}

/* The calling task's saved user registers. At a sys_exit tracepoint they still
 * hold the syscall's arguments (arm64 keeps the first one in orig_x0), which
 * spares every syscall an enter program and a map update. */
static __always_inline struct pt_regs *bt_syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/*
 * The optional fexit upgrade hooks a syscall's own kernel function instead of
 * its tracepoint: enabling any syscall tracepoint puts every task on the
 * kernel's slow syscall path, a hooked function costs only its own callers.
 * The function's name depends on the architecture; these programs are not
 * loaded unless user space asks (the "?" prefix), and it falls back to the
 * tracepoints when the kernel refuses them.
 */
#if defined(__TARGET_ARCH_x86)
#define BT_SYSCALL_FEXIT(name) "?fexit/__x64_sys_" #name
#elif defined(__TARGET_ARCH_arm64)
#define BT_SYSCALL_FEXIT(name) "?fexit/__arm64_sys_" #name
#else
#error "bee-trace's BPF programs are built for x86_64 and arm64 only"
#endif

/* The number of the syscall the current task is in, from its saved user
 * registers (-1 outside a syscall, e.g. in an io_uring worker). */
static __always_inline long bt_syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#else
	return BPF_CORE_READ(regs, syscallno);
#endif
}

#define BT_ARG1(regs) ((__u64)PT_REGS_PARM1_CORE_SYSCALL(regs))
#define BT_ARG2(regs) ((__u64)PT_REGS_PARM2_CORE_SYSCALL(regs))
#define BT_ARG3(regs) ((__u64)PT_REGS_PARM3_CORE_SYSCALL(regs))

/* The struct file behind fd in the current task, or NULL. The task's file
 * table is reached with direct (BTF) loads, which cost far less than helper
 * calls; only the slot of the fd array needs one. */
static __always_inline struct file *bt_fd_file(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	struct fdtable *fdt;
	struct file **fds;
	struct file *f = NULL;

	if (fd < 0 || !files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#endif
