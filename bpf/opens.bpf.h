/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Opens that are not open(2)-family syscalls (issue 12, class 2), included by
 * file.bpf.c after on_opened(), whose judgement they share: each resolves the
 * descriptor the call produced in the current task's file table and hands the
 * struct file to on_opened() with its own syscall value, so a watched file is
 * reported (by name or inode, a tripwire killed) exactly like an open.
 *
 * - creat(2), which the open tracepoints never covered.
 * - open_by_handle_at(2) and pidfd_getfd(2): their sys_exit tracepoints; the
 *   return value is a new fd in the caller. (open_by_handle_at reaches
 *   do_file_open_root, not do_filp_open, so even the fexit upgrade needs this.)
 *   A pidfd_getfd the kernel refused (EPERM) is judged by the file the target
 *   holds at that fd, read from the target's table.
 * - io_uring IORING_OP_OPENAT/OPENAT2: io_uring:io_uring_complete, whose res
 *   is the fd. The completion is posted by the submitter or by one of its
 *   io-wq / SQPOLL threads, which share its file table (create_io_thread
 *   passes CLONE_FILES; both kinds are tested), so the fd is looked up in the
 *   right table. A fixed file open (file_slot set) installs no fd and is
 *   skipped.
 * - int $0x80 from a 64-bit program: the syscalls/ tracepoints skip compat
 *   syscalls (trace_get_syscall_nr() is -1 for them), raw_syscalls/sys_exit
 *   does not. Its opens go the way above; its ptrace attaches and
 *   process_vm_readv/writev go to the memory family's ring. Its connects are
 *   left to the cgroup egress hooks, which see every connect however made. The program is first of all one load and a test of TS_COMPAT,
 *   which the entry code sets for a compat syscall and clears only on the way
 *   back to user space, after this tracepoint.
 * - Enabling acts where the kernel gives no hook on the open itself:
 *   io_uring_setup (the fexit-less way to open unseen), fanotify_init and
 *   fanotify_mark (the kernel opens each reported file for the listener with
 *   dentry_open(), which no tracepoint sees).
 */
#ifndef BEE_TRACE_OPENS_BPF_H
#define BEE_TRACE_OPENS_BPF_H

/* include/uapi/linux/io_uring.h, stable user ABI */
#define BT_IORING_OP_OPENAT 18
#define BT_IORING_OP_OPENAT2 28

/* A descriptor that a call other than open(2) put into the current task. */
static __always_inline int on_fd_produced(long ret, int sys)
{
	struct file *f;

	if (ret < 0)
		return 0;
	f = bt_fd_file(ret);
	if (f)
		on_opened(f, ret, NULL, sys, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open_by_handle_at")
int handle_open_by_handle_at_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_fd_produced(ctx->ret, BT_SYS_OPEN_BY_HANDLE_AT);
}

#define BT_PID_FS_MAGIC 0x50494446 /* include/uapi/linux/magic.h, pidfs (6.9+) */
#define BT_EPERM 1

/* The file that the process behind pidfd holds at fd, or NULL. A pidfd is a
 * pidfs file whose inode keeps the struct pid (6.9+), or an anonymous inode
 * file that keeps it as private_data (before). */
static __always_inline struct file *pidfd_target_file(int pidfd, int fd)
{
	struct file *pf = bt_fd_file(pidfd), *f = NULL, **fds;
	struct hlist_node *first;
	struct task_struct *t;
	struct inode *pi;
	struct fdtable *fdt;
	struct pid *pid;

	if (!pf || fd < 0)
		return NULL;
	pi = BPF_CORE_READ(pf, f_inode);
	if (BPF_CORE_READ(pi, i_sb, s_magic) == BT_PID_FS_MAGIC)
		pid = BPF_CORE_READ(pi, i_private);
	else
		pid = BPF_CORE_READ(pf, private_data);
	if (!pid)
		return NULL;
	first = BPF_CORE_READ(pid, tasks[PIDTYPE_PID].first);
	if (!first)
		return NULL;
	t = (struct task_struct *)((void *)first -
				   bpf_core_field_offset(struct task_struct, pid_links));
	fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* A refused attempt to take a watched file's descriptor (EPERM: the target
 * is not the caller's to ptrace), reported with the target's file. */
static __always_inline int on_getfd_refused(long ret)
{
	struct pt_regs *regs = bt_syscall_regs();
	struct bt_file_cfg *cfg;
	struct dentry *d;
	struct inode *inode;
	struct file *f;
	struct qstr q;

	if (!watch_files || bt_is_self())
		return 0;
	cfg = active_cfg();
	if (!cfg)
		return 0;
	f = pidfd_target_file((int)BT_ARG1(regs), (int)BT_ARG2(regs));
	if (!f)
		return 0;
	d = BPF_CORE_READ(f, f_path.dentry);
	inode = BPF_CORE_READ(f, f_inode);
	if (!d || !inode || !load_qstr(&q, d, false))
		return 0;
	if (file_verdict(cfg, d, BPF_CORE_READ(f, f_path.mnt), &q, inode, false) &&
	    !held_back(0, 0, 0))
		emit_resolved(f, d, inode, ret, 0, BT_SYS_PIDFD_GETFD, BT_FILE_OBSERVED);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pidfd_getfd")
int handle_pidfd_getfd_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret == -BT_EPERM)
		return on_getfd_refused(ctx->ret);
	return on_fd_produced(ctx->ret, BT_SYS_PIDFD_GETFD);
}

#define BT_CREAT_FLAGS 01101 /* O_CREAT | O_WRONLY | O_TRUNC */

/* creat(2) (x86_64 has it, arm64 not), which no open tracepoint sees: a
 * write open that truncates. A refused one is judged by the requested path,
 * like a refused open. */
SEC("tracepoint/syscalls/sys_exit_creat")
int handle_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task;
	struct bt_file_cfg *cfg;
	struct req_scratch *s;
	__u32 zero = 0;
	long n, ret = ctx->ret;

	if (ret >= 0)
		return on_fd_produced(ret, BT_SYS_CREAT);
	if (!watch_files || bt_is_self())
		return 0;
	cfg = active_cfg();
	s = bpf_map_lookup_elem(&req_buf, &zero);
	if (!cfg || !s)
		return 0;
	n = bpf_probe_read_user_str(s->b, sizeof(s->b), (const char *)BT_ARG1(bt_syscall_regs()));
	if (n <= 1)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	if (requested_matches(cfg, s, n - 1, BT_AT_FDCWD, task) && !held_back(0, 0, 0))
		emit_requested(s, ret, BT_CREAT_FLAGS, BT_SYS_CREAT, BT_AT_FDCWD, task);
	return 0;
}

/* Runs for every io_uring completion: the opcode decides first. */
SEC("tracepoint/io_uring/io_uring_complete")
int handle_io_uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	struct io_kiocb *req = ctx->req;
	struct io_open *o;
	__u8 op;

	if (ctx->res < 0 || !req)
		return 0;
	op = BPF_CORE_READ(req, opcode);
	if (op != BT_IORING_OP_OPENAT && op != BT_IORING_OP_OPENAT2)
		return 0;
	o = (struct io_open *)((void *)req + bpf_core_field_offset(struct io_kiocb, cmd));
	if (BPF_CORE_READ(o, file_slot))
		return 0;
	return on_fd_produced(ctx->res, BT_SYS_IO_URING_OPENAT);
}

/* An enabling act that produced the descriptor ret (a ring, a fanotify
 * group): reported by the file behind it, whatever the policy says. */
static __always_inline int on_enabling_fd(long ret, __u32 flags, int sys)
{
	struct file *f;
	struct dentry *d;
	struct inode *inode;

	if (ret < 0 || !watch_files || bt_is_self())
		return 0;
	f = bt_fd_file(ret);
	if (!f)
		return 0;
	d = BPF_CORE_READ(f, f_path.dentry);
	inode = BPF_CORE_READ(f, f_inode);
	if (d && inode && !held_back(0, 0, 0))
		emit_resolved(f, d, inode, ret, flags, sys, BT_FILE_OBSERVED);
	return 0;
}

/* fanotify_mark(2) that succeeded: reported with the marked path as the
 * caller named it (relative to dfd), or dfd's own path when none was given. */
static __always_inline int on_fanotify_mark(long ret, __u32 flags, int dfd, const char *upath)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct req_scratch *s;
	__u32 zero = 0;
	long n = 0;

	if (ret < 0 || !watch_files || bt_is_self())
		return 0;
	s = bpf_map_lookup_elem(&req_buf, &zero);
	if (!s)
		return 0;
	if (upath)
		n = bpf_probe_read_user_str(s->b, sizeof(s->b), upath);
	if (n <= 1) {
		s->b[0] = '.';
		s->b[1] = 0;
	}
	if (!held_back(0, 0, 0))
		emit_requested(s, ret, flags, BT_SYS_FANOTIFY_MARK, dfd, task);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_io_uring_setup")
int handle_io_uring_setup_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_enabling_fd(ctx->ret, 0, BT_SYS_IO_URING_SETUP);
}

SEC("tracepoint/syscalls/sys_exit_fanotify_init")
int handle_fanotify_init_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_enabling_fd(ctx->ret, BT_ARG1(bt_syscall_regs()), BT_SYS_FANOTIFY_INIT);
}

SEC("tracepoint/syscalls/sys_exit_fanotify_mark")
int handle_fanotify_mark_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs = bt_syscall_regs();

	return on_fanotify_mark(ctx->ret, BT_ARG2(regs), (int)PT_REGS_PARM4_CORE_SYSCALL(regs),
				(const char *)PT_REGS_PARM5_CORE_SYSCALL(regs));
}

#if defined(__TARGET_ARCH_x86)
#define BT_TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h */
/* arch/x86/entry/syscalls/syscall_32.tbl */
#define BT_IA32_OPEN 5
#define BT_IA32_CREAT 8
#define BT_IA32_OPENAT 295
#define BT_IA32_FANOTIFY_INIT 338
#define BT_IA32_FANOTIFY_MARK 339
#define BT_IA32_OPEN_BY_HANDLE_AT 342
#define BT_IA32_IO_URING_SETUP 425
#define BT_IA32_OPENAT2 437
#define BT_IA32_PIDFD_GETFD 438
#define BT_IA32_PTRACE 26
#define BT_IA32_PROCESS_VM_READV 347
#define BT_IA32_PROCESS_VM_WRITEV 348
#define BT_IA32_PTRACE_ATTACH 16
#define BT_IA32_PTRACE_SEIZE 0x4206
#define BT_COMPAT_FOLD_NS 1000000000ULL

/* Off with the fexit hook: do_filp_open already sees compat opens. */
const volatile bool compat_opens = true;

/* The memory family's view of a compat ptrace or process_vm_*: its ring and
 * its record (mem.bpf.c), folded the same way per (caller, target, kind)
 * for a second. Of ptrace requests only ATTACH and SEIZE are reported: every
 * request that reads or writes a tracee needs one of them first, and the
 * 64-bit tracepoint sees it when the tracer does not use int $0x80 for it. */
struct compat_fold_key {
	__u32 tgid;
	__u32 target;
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct compat_fold_key);
	__type(value, __u64);
} compat_fold SEC(".maps");

static __always_inline int on_compat_mem(__u32 kind, __u32 target, __s64 request, long ret)
{
	struct compat_fold_key k = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.target = target,
		.kind = kind,
	};
	__u64 now = bpf_ktime_get_boot_ns(), *last;
	struct bt_mem_event *e;

	if (!watch_proc || bt_is_self())
		return 0;
	if (kind != BT_MEM_PTRACE) {
		if (target == k.tgid)
			return 0;
		last = bpf_map_lookup_elem(&compat_fold, &k);
		if (last && now - *last < BT_COMPAT_FOLD_NS)
			return 0;
		bpf_map_update_elem(&compat_fold, &k, &now, BPF_ANY);
	}
	e = bpf_ringbuf_reserve(&mem_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&mem_lost);
		return 0;
	}
	bt_fill_header(&e->hdr, BT_EV_MEM);
	e->kind = kind;
	e->target_pid = target;
	e->request = request;
	e->ret = ret;
	e->target_tgid = 0;
	e->fmode = 0;
	__builtin_memset(e->target_comm, 0, sizeof(e->target_comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* An open, openat, openat2 or creat through the 32-bit entry: a descriptor
 * judged like any other, or a refused one judged by the path requested,
 * which the ia32 registers hold (bx, or cx after the dirfd in bx). */
static __always_inline int on_compat_open(struct pt_regs *regs, long nr, long ret)
{
	struct task_struct *task;
	struct bt_file_cfg *cfg;
	struct req_scratch *s;
	__u32 zero = 0, flags;
	__u64 how = 0;
	bool at = nr == BT_IA32_OPENAT || nr == BT_IA32_OPENAT2;
	int dfd = BT_AT_FDCWD;
	__u32 upath;
	long n;

	if (!compat_opens)
		return 0;
	if (ret >= 0)
		return on_fd_produced(ret, BT_SYS_COMPAT_OPEN);
	if (!watch_files || bt_is_self())
		return 0;
	cfg = active_cfg();
	s = bpf_map_lookup_elem(&req_buf, &zero);
	if (!cfg || !s)
		return 0;
	if (at) {
		dfd = (int)BPF_CORE_READ(regs, bx);
		upath = BPF_CORE_READ(regs, cx);
	} else {
		upath = BPF_CORE_READ(regs, bx);
	}
	if (nr == BT_IA32_CREAT) {
		flags = BT_CREAT_FLAGS;
	} else if (nr == BT_IA32_OPEN) {
		flags = BPF_CORE_READ(regs, cx);
	} else if (nr == BT_IA32_OPENAT) {
		flags = BPF_CORE_READ(regs, dx);
	} else {
		/* struct open_how starts with __u64 flags */
		bpf_probe_read_user(&how, sizeof(how),
				    (void *)(unsigned long)(__u32)BPF_CORE_READ(regs, dx));
		flags = how;
	}
	n = bpf_probe_read_user_str(s->b, sizeof(s->b), (const char *)(unsigned long)upath);
	if (n <= 1)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	if (requested_matches(cfg, s, n - 1, dfd, task) && !held_back(0, 0, 0))
		emit_requested(s, ret, flags, BT_SYS_COMPAT_OPEN, dfd, task);
	return 0;
}

/*
 * Every syscall's exit on the host: a compat one (int $0x80, or a 32-bit
 * program) is handed to the handlers above by its ia32 number. Its
 * arguments are in bx, cx, dx, si, di, bp; fanotify_mark's 64-bit mask takes
 * two of them.
 */
SEC("raw_tp/sys_exit")
int BPF_PROG(handle_compat_exit, struct pt_regs *regs, long ret)
{
	long nr;

	if (!(bpf_get_current_task_btf()->thread_info.status & BT_TS_COMPAT))
		return 0;
	nr = BPF_CORE_READ(regs, orig_ax);
	switch (nr) {
	case BT_IA32_OPEN:
	case BT_IA32_CREAT:
	case BT_IA32_OPENAT:
	case BT_IA32_OPENAT2:
		return on_compat_open(regs, nr, ret);
	case BT_IA32_OPEN_BY_HANDLE_AT:
		return on_fd_produced(ret, BT_SYS_OPEN_BY_HANDLE_AT);
	case BT_IA32_PIDFD_GETFD:
		return on_fd_produced(ret, BT_SYS_PIDFD_GETFD);
	case BT_IA32_IO_URING_SETUP:
		return on_enabling_fd(ret, 0, BT_SYS_IO_URING_SETUP);
	case BT_IA32_FANOTIFY_INIT:
		return on_enabling_fd(ret, (__u32)BPF_CORE_READ(regs, bx), BT_SYS_FANOTIFY_INIT);
	case BT_IA32_PTRACE: {
		__s64 req = (__s32)BPF_CORE_READ(regs, bx);

		if (req != BT_IA32_PTRACE_ATTACH && req != BT_IA32_PTRACE_SEIZE)
			return 0;
		return on_compat_mem(BT_MEM_PTRACE, (__u32)BPF_CORE_READ(regs, cx), req, ret);
	}
	case BT_IA32_PROCESS_VM_READV:
		return on_compat_mem(BT_MEM_VM_READV, (__u32)BPF_CORE_READ(regs, bx), 0, ret);
	case BT_IA32_PROCESS_VM_WRITEV:
		return on_compat_mem(BT_MEM_VM_WRITEV, (__u32)BPF_CORE_READ(regs, bx), 0, ret);
	case BT_IA32_FANOTIFY_MARK:
		return on_fanotify_mark(ret, (__u32)BPF_CORE_READ(regs, cx),
					(int)BPF_CORE_READ(regs, di),
					(const char *)(unsigned long)(__u32)BPF_CORE_READ(regs, bp));
	}
	return 0;
}
#else
/* arm64's compat (AArch32) entry is not watched: user space never loads this. */
SEC("raw_tp/sys_exit")
int BPF_PROG(handle_compat_exit, struct pt_regs *regs, long ret)
{
	return 0;
}
#endif

#endif
