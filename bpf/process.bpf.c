// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Process family: exec (with executable path and argv, a memfd's name, a
 * script's name), fork of new processes, and exit of thread-group leaders. */
#include "task.bpf.h"
#include "path.bpf.h"
#include "ring.bpf.h"
#include "loader_env.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

BT_RINGBUF(process_events, BT_RING_PROCESS);

BT_LOST_COUNTER(process_lost);

/* Is the task's stdin or stdout a network socket (IPv4 or IPv6)? A unix
 * socket is not: sshd hands a command without a terminal a socketpair. */
static __always_inline bool stdio_socket(void)
{
	for (int fd = 0; fd < 2; fd++) {
		struct file *f = bt_fd_file(fd);
		struct socket *sock;
		__u16 family;

		if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & 0170000) != 0140000)
			continue;
		sock = BPF_CORE_READ(f, private_data);
		family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
		if (family == BT_AF_INET || family == BT_AF_INET6)
			return true;
	}
	return false;
}

/* An executable no directory names (a memfd): the walk
 * stops at once, with no component and not cut. Its dentry name is all there
 * is ("memfd:<name>" for a memfd); it is written as the one component. */
static __always_inline void detached_name(struct bt_path_scratch *s, struct dentry *d,
					  struct bt_exec_event *e, __u32 *off)
{
	long n = bpf_probe_read_kernel_str(s->buf, BT_NAME_MAX, BPF_CORE_READ(d, d_name.name));

	if (n <= 1)
		return;
	*off = n;
	e->exe_depth = 1;
	e->exe_flags = BT_PATH_DETACHED;
}

/*
 * A script: the kernel ran an interpreter for it (binfmt_script, or
 * binfmt_misc, changed bprm->interp), so mm->exe_file is the interpreter and
 * the script is only the name exec was given. That name goes after the
 * exe's components. Returns the offset after it.
 */
static __always_inline __u32 script_name(struct bt_path_scratch *s, struct linux_binprm *bprm,
					 struct bt_exec_event *e, __u32 off)
{
	const char *name = BPF_CORE_READ(bprm, filename);
	long n;

	if (!name || name == BPF_CORE_READ(bprm, interp))
		return off;
	n = bpf_probe_read_kernel_str(s->buf + (off & BT_PATH_MASK), BT_NAME_MAX, name);
	if (n <= 1 || off + n > BT_PATH_MASK)
		return off;
	e->script_len = n;
	return off + n;
}

/* The working directory, after everything else: a relative script name, or
 * an interpreter's relative operand (bash x.sh), is resolved against the
 * directory the process had at exec, which /proc may no longer show when
 * the event is judged. One more walk per exec, which costs far less than
 * the exec. */
static __always_inline void cwd_after(struct task_struct *task, struct bt_exec_event *e, __u32 off)
{
	__u16 depth = 0;
	__u32 flags = 0;

	bt_walk_path(BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt), &off,
		     &depth, &flags);
	e->script_depth = depth;
	e->script_flags = flags | BT_PATH_CWD;
}

/* The raw tracepoint, for its third argument: the linux_binprm, which says
 * whether the program run was a script. */
SEC("raw_tp/sched_process_exec")
int handle_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct bt_path_scratch *s = NULL;
	struct bt_exec_event *e;
	unsigned long arg_start, arg_end;
	__u32 len;
	__u32 off = 0;

	e = bpf_ringbuf_reserve(&process_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&process_lost);
		return 0;
	}
	bt_fill_header(&e->hdr, BT_EV_EXEC);

	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	e->argv_full = arg_end > arg_start ? arg_end - arg_start : 0;
	len = e->argv_full;
	if (len > BT_ARGV_BUF - 1)
		len = BT_ARGV_BUF - 1;
	barrier_var(len);
	len &= BT_ARGV_BUF - 1; /* tells the verifier what the clamp above means */
	e->argv_len = 0;
	if (bpf_probe_read_user(e->argv, len, (void *)arg_start) == 0)
		e->argv_len = len;

	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	e->exe_depth = 0;
	e->exe_flags = BT_PATH_TRUNCATED;
	e->exe_len = 0;
	e->exe_dev = 0;
	e->exe_ino = 0;
	e->exe_uid = 0;
	e->exe_mode = 0;
	e->script_len = 0;
	e->script_depth = 0;
	e->script_flags = 0;
	if (exe) {
		struct inode *inode = BPF_CORE_READ(exe, f_inode);
		struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);

		e->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
		e->exe_ino = BPF_CORE_READ(inode, i_ino);
		e->exe_uid = BPF_CORE_READ(inode, i_uid.val);
		e->exe_mode = BPF_CORE_READ(inode, i_mode);
		s = bt_walk_path(d, BPF_CORE_READ(exe, f_path.mnt), &off, &e->exe_depth,
				 &e->exe_flags);
		if (s && e->exe_depth == 0 && e->exe_flags == 0)
			detached_name(s, d, e, &off);
		e->exe_len = off;
	}
	if (s) {
		if (bprm)
			off = script_name(s, bprm, e, off);
		cwd_after(task, e, off);
		bpf_probe_read_kernel(e->exe, sizeof(e->exe), s->buf);
	}
	/* bprm is taken again rather than kept live across the path walks:
	 * held there, it keeps the walks' states for bprm NULL and not NULL
	 * apart (6.18's verifier: 72k instructions instead of 46k). */
	take_loader_env(e, (struct linux_binprm *)ctx->args[2]);
	e->stdio = stdio_socket() ? BT_STDIO_SOCKET : 0;
	e->_pad2 = 0;
	bt_submit(&process_events, e);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int handle_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct bt_fork_event *e;
	__u32 child_pid = BPF_CORE_READ(child, pid);

	/* A new thread is not a new process. */
	if (child_pid != BPF_CORE_READ(child, tgid))
		return 0;
	e = bpf_ringbuf_reserve(&process_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&process_lost);
		return 0;
	}
	bt_fill_header(&e->hdr, BT_EV_FORK);
	e->child_pid = child_pid;
	e->_pad = 0;
	bt_submit(&process_events, e);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct bt_exit_event *e;

	if ((__u32)pid_tgid != pid_tgid >> 32)
		return 0; /* a thread, not the process */
	e = bpf_ringbuf_reserve(&process_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&process_lost);
		return 0;
	}
	bt_fill_header(&e->hdr, BT_EV_EXIT);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->_pad = 0;
	bt_submit(&process_events, e);
	return 0;
}
