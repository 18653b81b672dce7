/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The file family's links and renames: link(2), linkat(2), rename(2),
 * renameat(2) and renameat2(2) that succeeded, where the old or the new name
 * is one the policy watches, pre-filtered by the names' last two components
 * exactly as a refused open is (requested_matches). Included at the end of
 * file.bpf.c, whose open helpers and maps it uses.
 *
 * A credential is often written under a temporary name and renamed onto its
 * own (docker login, cloud SDKs): it is never opened under the watched name,
 * so only the rename tells user space which inode now holds it. A link or a
 * rename of a watched file to another name is an evasion in its own right.
 *
 * No tracepoint hands over the dentries, so the record carries both names as
 * the caller passed them, each with the directory it is relative to; user
 * space finds the inode under the new name. The arguments are read at the
 * exit, where only the result tells whether anything happened, from the
 * saved registers (see bt_syscall_regs): no enter program, no map per call.
 */
#ifndef BEE_TRACE_LINK_BPF_H
#define BEE_TRACE_LINK_BPF_H

#define BT_ARG4(regs) ((__u64)PT_REGS_PARM4_CORE_SYSCALL(regs))
#define BT_ARG5(regs) ((__u64)PT_REGS_PARM5_CORE_SYSCALL(regs))

/* The old name's part of the path buffer ends before this offset, so that
 * the new name's string (up to BT_REQ_MAX bytes) is read in bounds. */
#define BT_MOVED_SPLIT 2047
/* Longest old name string kept, leaving room for its directory. */
#define BT_MOVED_OLD_REQ 1024

/* Is the name upath (relative to dfd) one the policy watches? */
static __noinline bool moved_name_matches(const struct bt_file_cfg *cfg, const char *upath,
					 int dfd, struct task_struct *task)
{
	__u32 zero = 0;
	struct req_scratch *s = bpf_map_lookup_elem(&req_buf, &zero);
	long n;

	if (!s)
		return false;
	n = bpf_probe_read_user_str(s->b, sizeof(s->b), upath);
	if (n <= 1)
		return false;
	return requested_matches(cfg, s, n - 1, dfd, task);
}

/* The directory a name given with dfd is relative to, walked into the
 * scratch buffer from *off up to limit. True when the walk was cut or the
 * directory is unknown. Not inlined: its walk state, twice in on_moved,
 * would put the link programs over the 512 bytes of stack that a 6.1
 * verifier allows a program and the functions it calls together. */
static __noinline bool moved_base(__u32 *off, __u16 *depth, int dfd,
				       struct task_struct *task, __u32 limit)
{
	struct dentry *bd = NULL;
	struct vfsmount *bm = NULL;
	__u32 fl = BT_PATH_TRUNCATED;

	if (dfd == BT_AT_FDCWD) {
		bd = BPF_CORE_READ(task, fs, pwd.dentry);
		bm = BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		struct file *df = bt_fd_file(dfd);

		if (df) {
			bd = BPF_CORE_READ(df, f_path.dentry);
			bm = BPF_CORE_READ(df, f_path.mnt);
		}
	}
	if (!bd || !bm)
		return true;
	bt_walk_path_to(bd, bm, off, depth, &fl, limit);
	return fl != 0;
}

/*
 * A link or rename that returned ret. Reported when it succeeded and one of
 * its names is watched: the path buffer holds the old name (the string, then
 * its directory's components when it is relative), then from new_off the
 * new one laid out the same way (see BT_PATH_MOVED).
 */
static __always_inline void on_moved(long ret, int sys, int olddfd, const char *oldp, int newdfd,
				     const char *newp, __u32 flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct bt_path_scratch *ps;
	struct bt_file_event *e;
	struct bt_file_cfg *cfg;
	__u32 zero = 0, off, start;
	__u16 depth = 0;
	long n;

	if (ret != 0 || !watch_files || bt_is_self())
		return;
	cfg = active_cfg();
	if (!cfg)
		return;
	if (!moved_name_matches(cfg, newp, newdfd, task) &&
	    !moved_name_matches(cfg, oldp, olddfd, task))
		return;
	/* Counted against the process's share like an open (fold.bpf.h). */
	if (held_back(0, 0, 0))
		return;
	e = file_record();
	if (!e)
		return;
	bt_fill_header(&e->hdr, BT_EV_FILE);
	e->ret = ret;
	e->flags = flags;
	e->fmode = 0;
	e->dev = 0;
	e->ino = 0;
	e->layout = BT_PATH_MOVED;
	e->syscall = sys;
	e->action = BT_FILE_OBSERVED;
	e->ftype = 0;
	e->igen = 0;
	e->path_flags = 0;
	ps = bpf_map_lookup_elem(&bt_path_buf, &zero);
	if (!ps)
		return;
	n = bpf_probe_read_user_str(ps->buf, BT_MOVED_OLD_REQ, oldp);
	off = n > 0 ? n : 0;
	e->req_len = off;
	if (ps->buf[0] != '/' && moved_base(&off, &depth, olddfd, task, BT_MOVED_SPLIT))
		e->path_flags |= BT_PATH_TRUNCATED;
	e->path_depth = depth;
	start = off & BT_MOVED_SPLIT;
	e->new_off = start;
	ps = bpf_map_lookup_elem(&bt_path_buf, &zero);
	if (!ps)
		return;
	n = bpf_probe_read_user_str(ps->buf + start, BT_REQ_MAX, newp);
	off = start + (n > 0 ? n : 0);
	if (ps->buf[start & BT_PATH_MASK] != '/' &&
	    moved_base(&off, &depth, newdfd, task, BT_PATH_MASK))
		e->path_flags |= BT_PATH_NEW_TRUNCATED;
	ps = bpf_map_lookup_elem(&bt_path_buf, &zero);
	send_file(e, ps ? ps->buf : NULL, ps ? off : 0);
}

static __always_inline int moved_exit(long ret, int sys)
{
	struct pt_regs *r;

	if (ret != 0)
		return 0;
	r = bt_syscall_regs();
	if (sys == BT_SYS_LINK || sys == BT_SYS_RENAME)
		on_moved(ret, sys, BT_AT_FDCWD, (const char *)BT_ARG1(r), BT_AT_FDCWD,
			 (const char *)BT_ARG2(r), 0);
	else
		on_moved(ret, sys, (int)BT_ARG1(r), (const char *)BT_ARG2(r), (int)BT_ARG3(r),
			 (const char *)BT_ARG4(r),
			 sys == BT_SYS_RENAMEAT ? 0 : (__u32)BT_ARG5(r));
	return 0;
}

/* link(2) and rename(2) exist on x86_64, not on arm64: user space loads
 * only the programs whose tracepoint the kernel has. */
SEC("tracepoint/syscalls/sys_exit_link")
int handle_link_exit(struct trace_event_raw_sys_exit *ctx)
{
	return moved_exit(ctx->ret, BT_SYS_LINK);
}

SEC("tracepoint/syscalls/sys_exit_linkat")
int handle_linkat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return moved_exit(ctx->ret, BT_SYS_LINKAT);
}

SEC("tracepoint/syscalls/sys_exit_rename")
int handle_rename_exit(struct trace_event_raw_sys_exit *ctx)
{
	return moved_exit(ctx->ret, BT_SYS_RENAME);
}

SEC("tracepoint/syscalls/sys_exit_renameat")
int handle_renameat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return moved_exit(ctx->ret, BT_SYS_RENAMEAT);
}

SEC("tracepoint/syscalls/sys_exit_renameat2")
int handle_renameat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return moved_exit(ctx->ret, BT_SYS_RENAMEAT2);
}

/*
 * The last link of an inode went and its last user let go: ext4 frees the
 * number for the next file it makes (in the issue, a directory rsync made
 * was reported as the deleted key). A learned inode (exactly
 * BT_INODE_WATCH: an armed tripwire's canary is held open, so never freed
 * while armed) leaves inode_filter here, and user space is told so that it
 * forgets the file too. Only ext4 has such a tracepoint; elsewhere user
 * space's identity check (type, generation) tells a reused number apart.
 */
struct trace_event_raw_ext4_free_inode___bt {
	dev_t dev;
	ino_t ino;
} __attribute__((preserve_access_index));

SEC("tracepoint/ext4/ext4_free_inode")
int handle_ext4_free_inode(struct trace_event_raw_ext4_free_inode___bt *ctx)
{
	struct bt_inode_key k = { .dev = ctx->dev, .ino = ctx->ino };
	__u32 slot = k.ino & (BT_INODE_HINTS - 1);
	struct bt_file_event *e;
	__u8 *hint;
	__u32 *v;

	hint = bpf_map_lookup_elem(&inode_hint, &slot);
	if (!hint || !*hint)
		return 0;
	v = bpf_map_lookup_elem(&inode_filter, &k);
	if (!v || *v != BT_INODE_WATCH)
		return 0;
	bpf_map_delete_elem(&inode_filter, &k);
	e = file_record();
	if (!e)
		return 0;
	bt_fill_header(&e->hdr, BT_EV_FILE);
	e->ret = 0;
	e->flags = 0;
	e->fmode = 0;
	e->path_flags = 0;
	e->dev = k.dev;
	e->ino = k.ino;
	e->path_depth = 0;
	e->req_len = 0;
	e->layout = BT_PATH_RESOLVED;
	e->syscall = 0;
	e->action = BT_FILE_FREED;
	e->ftype = 0;
	e->new_off = 0;
	e->igen = 0;
	send_file(e, NULL, 0);
	return 0;
}

#endif
