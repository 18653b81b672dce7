/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Helpers shared by every probe family: event headers, syscall arguments,
 * fd-to-file lookup and the in-kernel path walk. */
#ifndef BEE_TRACE_COMMON_BPF_H
#define BEE_TRACE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"

#define BT_AF_INET 2
#define BT_AF_INET6 10
#define BT_PROC_SUPER_MAGIC 0x9fa0
#define BT_FMODE_WRITE 0x2
/* Mount crossings and components share this bound; deeper paths are cut and
 * user space marks them truncated. */
#define BT_MAX_DEPTH 48

/* Our own thread-group id: bee-trace's own activity is never an event. */
const volatile __u32 self_tgid = 0;

static __always_inline bool bt_is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

static __always_inline void bt_fill_header(struct bt_header *h, __u32 type)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	h->ts_boot_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->type = type;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->_pad = 0;
	bpf_get_current_comm(&h->comm, sizeof(h->comm));
}

/* Reader wakeups cost more than the record itself (an IPI and a scheduler
 * wakeup per record when the reader keeps up). Records are therefore
 * submitted without a wakeup until this much is waiting; the reader also
 * polls every 50 ms, which bounds the delay of a lone record. */
#define BT_WAKE_BYTES (64 * 1024)

static __always_inline void bt_submit(void *rb, void *rec)
{
	__u64 waiting = bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(rec, waiting >= BT_WAKE_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* bpf_ringbuf_output with the same wakeup batching: for records built in a
 * scratch map and sent at their used length. Non-zero when the ring is full. */
static __always_inline long bt_output(void *rb, void *rec, __u64 size)
{
	__u64 waiting = bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA);

	return bpf_ringbuf_output(rb, rec, size,
				  waiting >= BT_WAKE_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
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

static __always_inline struct mount *bt_real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((void *)mnt - bpf_core_field_offset(struct mount, mnt));
}

/* Per-CPU room for a path walk: programs on one CPU never interleave. */
struct bt_path_scratch {
	__u8 buf[BT_PATH_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bt_path_scratch);
} bt_path_buf SEC(".maps");

struct bt_walk {
	struct dentry *dentry;
	struct mount *mnt;
	__u32 off;
	__u32 flags;
	__u16 depth;
};

/* One step of the walk, run by bpf_loop so the verifier checks it once
 * rather than once per unrolled iteration. */
static long bt_walk_step(__u64 i, void *ctx)
{
	struct bt_walk *w = ctx;
	struct dentry *dentry = w->dentry;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	__u32 zero = 0;
	struct bt_path_scratch *s;
	long n;

	if (dentry == mnt_root || dentry == parent) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (dentry != mnt_root || up == mnt) {
			w->flags = 0; /* reached the root of everything */
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}
	s = bpf_map_lookup_elem(&bt_path_buf, &zero);
	if (!s)
		return 1;
	n = bpf_probe_read_kernel_str(s->buf + (w->off & BT_PATH_MASK), BT_NAME_MAX,
				       BPF_CORE_READ(dentry, d_name.name));
	if (n <= 0 || w->off + n > BT_PATH_MASK)
		return 1; /* full: the path stays marked truncated */
	w->off += n;
	w->depth++;
	w->dentry = parent;
	return 0;
}

/*
 * Writes the components of (dentry, mnt) up to the root of the mount tree,
 * leaf first, each NUL-terminated, into the per-CPU scratch buffer from
 * offset *off on. Mount points are crossed so the result is the absolute path
 * in the initial mount namespace. Returns the scratch buffer (NULL on
 * failure) and sets *depth, and *flags to BT_PATH_TRUNCATED when the root was
 * not reached.
 */
static __always_inline struct bt_path_scratch *
bt_walk_path(struct dentry *dentry, struct vfsmount *vfsmnt, __u32 *off, __u16 *depth, __u32 *flags)
{
	struct bt_walk w = {
		.dentry = dentry,
		.mnt = bt_real_mount(vfsmnt),
		.off = *off,
		.flags = BT_PATH_TRUNCATED,
		.depth = 0,
	};
	__u32 zero = 0;

	bpf_loop(BT_MAX_DEPTH, bt_walk_step, &w, 0);
	*off = w.off;
	*depth = w.depth;
	*flags = w.flags;
	return bpf_map_lookup_elem(&bt_path_buf, &zero);
}

#endif
