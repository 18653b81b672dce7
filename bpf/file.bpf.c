// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * File family: opens (openat, openat2, and open where the architecture has
 * it) of sensitive files, reported by the real path of the opened file, and
 * opens of another process's /proc/<pid>/{mem,environ,maps}, which belong to
 * the memory family and go to its ring buffer.
 *
 * Everything hangs off the sys_exit tracepoints: the open has happened, so a
 * successful open is judged on the file it produced (symlinks, "..", dirfds and
 * hardlinks already resolved by the kernel). Cheap facts decide first - the
 * file's name, its parent's name, its inode - and only a candidate pays for the
 * path walk and a ring-buffer record. Those facts and their maps are
 * file_filter.bpf.h.
 */
#include "task.bpf.h"
#include "path.bpf.h"
#include "ring.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define BT_AT_FDCWD -100
#define BT_REQ_MAX 2048 /* requested paths longer than this are cut */
#define BT_SCAN_MAX 256 /* a component longer than this is not a name we watch */
#define BT_SIGKILL 9
#define BT_MAY_EXEC 0x1 /* open_flags.acc_mode of an exec */
#define BT_PROC_SUPER_MAGIC 0x9fa0
#define BT_FMODE_READ 0x1 /* include/linux/fs.h */
#define BT_FMODE_WRITE 0x2
#define BT_O_PATH 010000000 /* include/uapi/asm-generic/fcntl.h, the same on x86 and arm64 */

const volatile bool watch_files = true;
const volatile bool watch_proc = true;

BT_RINGBUF(file_events, BT_RING_FILE);

/* Owned by the memory family (mem.bpf.c); user space hands this skeleton the
 * same map when both families run. */
BT_RINGBUF(mem_events, BT_RING_MEM);

BT_LOST_COUNTER(file_lost);

BT_LOST_COUNTER(mem_lost);

/* The policy's pre-filter: its maps and the cheap verdict. */
#include "file_filter.bpf.h"
#include "fold.bpf.h"
#include "overlay.bpf.h"

/* File records are built here and sent at their used length. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bt_file_event);
} file_scratch SEC(".maps");

struct req_scratch {
	__u8 b[BT_REQ_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct req_scratch);
} req_buf SEC(".maps");

/* Reads the open flags the caller passed. */
static __always_inline __u32 open_flags(struct pt_regs *regs, int sys)
{
	__u64 flags = 0;

	if (sys == BT_SYS_OPEN)
		return BT_ARG2(regs);
	if (sys == BT_SYS_OPENAT)
		return BT_ARG3(regs);
	if (sys == BT_SYS_OPEN_BY_HANDLE_AT)
		return BT_ARG3(regs);
	/* The other opens of opens.bpf.h pass no flags in these registers. */
	if (sys != BT_SYS_OPENAT2)
		return 0;
	/* openat2: struct open_how starts with __u64 flags */
	bpf_probe_read_user(&flags, sizeof(flags), (void *)BT_ARG3(regs));
	return flags;
}

/* The caller's open flags: the kernel's copy when the fexit hook has it
 * (op), else read from the syscall's arguments. */
static __always_inline __u32 requested_flags(const struct open_flags *op, int sys)
{
	return op ? op->open_flag : open_flags(bt_syscall_regs(), sys);
}

/* Whether the len bytes at a are the string literal b: unrolled, so clang
 * folds b's bytes into the comparisons. */
static __always_inline bool bt_is(const char *a, __u32 len, const char *b, __u32 blen)
{
	if (len != blen)
		return false;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (i >= blen)
			break;
		if (a[i] != b[i])
			return false;
	}
	return true;
}
#define BT_IS(a, n, b) bt_is(a, n, b, sizeof(b) - 1)

/* The /proc/<pid> files that give another process's memory (mem), its
 * secrets (environ) or the map of where they lie (maps, smaps,
 * smaps_rollup, pagemap: the listing a memory dump starts with). The length
 * is checked before any byte is read: almost every name has another. */
static __always_inline bool proc_name_kind(const struct qstr *q, __u32 *kind)
{
	__u32 len = q->len;
	char n[16] = {};

	if (len != 3 && len != 4 && len != 5 && len != 7 && len != 12)
		return false;
	bpf_probe_read_kernel(n, len & 15, q->name);
	if (BT_IS(n, len, "mem"))
		*kind = BT_MEM_PROC_MEM;
	else if (BT_IS(n, len, "maps"))
		*kind = BT_MEM_PROC_MAPS;
	else if (BT_IS(n, len, "environ"))
		*kind = BT_MEM_PROC_ENVIRON;
	else if (BT_IS(n, len, "smaps"))
		*kind = BT_MEM_PROC_SMAPS;
	else if (BT_IS(n, len, "smaps_rollup"))
		*kind = BT_MEM_PROC_SMAPS_ROLLUP;
	else if (BT_IS(n, len, "pagemap"))
		*kind = BT_MEM_PROC_PAGEMAP;
	else
		return false;
	return true;
}

/* An opened /proc/<pid>/{mem,environ,maps} of another process. */
static __always_inline void on_proc_open(struct file *f, __u32 kind, struct inode *inode, long ret,
					 __u32 flags)
{
	struct proc_inode *pi;
	struct task_struct *target;
	struct hlist_node *first;
	struct bt_mem_event *e;

	pi = (struct proc_inode *)((void *)inode - bpf_core_field_offset(struct proc_inode, vfs_inode));
	first = BPF_CORE_READ(pi, pid, tasks[PIDTYPE_PID].first);
	if (!first)
		return;
	target = (struct task_struct *)((void *)first -
					bpf_core_field_offset(struct task_struct, pid_links));
	__u32 target_tgid = BPF_CORE_READ(target, tgid);
	if (target_tgid == bpf_get_current_pid_tgid() >> 32)
		return; /* a process reading itself is ordinary */

	e = bpf_ringbuf_reserve(&mem_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&mem_lost);
		return;
	}
	bt_fill_header(&e->hdr, BT_EV_MEM);
	e->kind = kind;
	e->target_pid = BPF_CORE_READ(target, pid);
	e->target_tgid = target_tgid;
	e->request = flags;
	e->ret = ret;
	e->fmode = BPF_CORE_READ(f, f_mode);
	BPF_CORE_READ_STR_INTO(&e->target_comm, target, comm);
	bpf_ringbuf_submit(e, 0);
}

/* Copies the len path bytes at buf into e and sends e with only those:
 * a typical record is a few hundred bytes, not the whole path buffer. */
static __always_inline void send_file(struct bt_file_event *e, const __u8 *buf, __u64 len)
{
	/* 64-bit, so the bound checked is the bound of the register passed. */
	if (len > BT_PATH_BUF)
		len = 0;
	if (len > 0 && bpf_probe_read_kernel(e->path, len, buf))
		len = 0;
	e->path_len = len;
	if (bt_output(&file_events, e, BT_FILE_HEAD + len))
		bt_count_lost(&file_lost);
}

static __always_inline struct bt_file_event *file_record(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&file_scratch, &zero);
}

static __always_inline void emit_resolved(struct file *f, struct dentry *d, struct inode *inode,
					  long ret, __u32 flags, int sys, __u8 action)
{
	struct bt_path_scratch *s;
	struct bt_file_event *e;
	__u32 off = 0;

	e = file_record();
	if (!e)
		return;
	bt_fill_header(&e->hdr, BT_EV_FILE);
	e->ret = ret;
	e->flags = flags;
	e->fmode = BPF_CORE_READ(f, f_mode);
	e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->ino = BPF_CORE_READ(inode, i_ino);
	e->ftype = (BPF_CORE_READ(inode, i_mode) >> 12) & 0xf;
	e->igen = BPF_CORE_READ(inode, i_generation);
	e->new_off = 0;
	e->layout = BT_PATH_RESOLVED;
	e->syscall = sys;
	e->action = action;
	e->req_len = 0;
	s = bt_walk_path(d, BPF_CORE_READ(f, f_path.mnt), &off, &e->path_depth, &e->path_flags);
	send_file(e, s ? s->buf : NULL, s ? off : 0);
}

struct slash_scan {
	int end;
	int found; /* index of the last '/', -1 when none */
};

static long slash_step(__u64 i, void *ctx)
{
	struct slash_scan *sc = ctx;
	int idx = sc->end - 1 - (int)i;
	__u32 zero = 0;
	struct req_scratch *s;

	if (idx < 0)
		return 1;
	s = bpf_map_lookup_elem(&req_buf, &zero);
	if (!s)
		return 1;
	if (s->b[idx & (BT_REQ_MAX - 1)] == '/') {
		sc->found = idx;
		return 1;
	}
	return 0;
}

/* Index of the last '/' in req_buf[0..end), -1 when there is none, or -2 when
 * the component is longer than any name we watch. */
static __always_inline int last_slash(int end)
{
	struct slash_scan sc = { .end = end, .found = -2 };

	if (end <= 0)
		return -1;
	bpf_loop(BT_SCAN_MAX, slash_step, &sc, 0);
	if (sc.found == -2 && end <= BT_SCAN_MAX)
		return -1;
	return sc.found;
}

/*
 * Whether the requested string (len bytes in s) names a watched file, by its
 * last two components; a bare name's parent is the working directory.
 */
static __always_inline bool requested_matches(const struct bt_file_cfg *cfg,
					      struct req_scratch *s, int len, int dfd,
					      struct task_struct *task)
{
	struct bt_name_key k;
	bool hit = cfg->match_all;
	int slash, pslash;

	slash = last_slash(len);
	if (slash == -2)
		return false;
	if (!hit) {
		__u32 start = (slash + 1) & (BT_REQ_MAX - 1);
		__u32 nlen = (__u32)(len - start) & (BT_REQ_MAX - 1);

		if (nlen == 0)
			return false;
		if (nlen < BT_KEY_LEN) {
			hit = load_name(&k, s->b + start, nlen) && leaf_in(cfg, &k, s->b + start, nlen);
		} else {
			__u8 first = s->b[start];
			__u8 last = s->b[(start + nlen - 1) & (BT_REQ_MAX - 1)];

			hit = affix_in(cfg, s->b + start, nlen, first, last);
		}
	}
	if (!hit && slash > 0) {
		pslash = last_slash(slash);
		if (pslash >= -1) {
			__u32 pstart = (pslash + 1) & (BT_REQ_MAX - 1);
			__u32 plen = (__u32)(slash - pstart) & (BT_REQ_MAX - 1);
			hit = parent_in(cfg, &k, s->b + pstart, plen, NULL, false);
		}
	} else if (!hit && slash == -1 && dfd == BT_AT_FDCWD) {
		struct dentry *cwd = BPF_CORE_READ(task, fs, pwd.dentry);
		hit = parent_in(cfg, &k, BPF_CORE_READ(cwd, d_name.name),
				BPF_CORE_READ(cwd, d_name.len), NULL, false);
	}
	return hit;
}

/* Reports a refused open: the requested string (in s), then, when it is
 * relative, the components of the directory it was relative to, which user
 * space joins. */
static __always_inline void emit_requested(struct req_scratch *s, long ret, __u32 flags, int sys,
					   int dfd, struct task_struct *task)
{
	struct bt_path_scratch *ps;
	struct bt_file_event *e;
	__u32 zero = 0, off;
	long n;

	e = file_record();
	if (!e)
		return;
	bt_fill_header(&e->hdr, BT_EV_FILE);
	e->ret = ret;
	e->flags = flags;
	e->fmode = 0;
	e->dev = 0;
	e->ino = 0;
	e->ftype = 0;
	e->igen = 0;
	e->new_off = 0;
	e->layout = BT_PATH_REQUESTED;
	e->syscall = sys;
	e->action = BT_FILE_OBSERVED;
	e->path_depth = 0;
	e->path_flags = 0;
	ps = bpf_map_lookup_elem(&bt_path_buf, &zero);
	if (!ps)
		return;
	n = bpf_probe_read_kernel_str(ps->buf, BT_REQ_MAX, s->b);
	off = n > 0 ? n : 0;
	e->req_len = off;
	if (s->b[0] != '/') {
		struct dentry *bd = NULL;
		struct vfsmount *bm = NULL;

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
		if (bd && bm)
			ps = bt_walk_path(bd, bm, &off, &e->path_depth, &e->path_flags);
		else
			e->path_flags = BT_PATH_TRUNCATED;
	}
	send_file(e, ps ? ps->buf : NULL, ps ? off : 0);
}

/* A failed open: judged by the string the caller asked for, since no file
 * was produced. */
static __always_inline void on_failed_open(const struct bt_file_cfg *cfg, struct pt_regs *regs,
					   long ret, __u32 flags, int sys)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const char *upath = (const char *)(sys == BT_SYS_OPEN ? BT_ARG1(regs) : BT_ARG2(regs));
	int dfd = sys == BT_SYS_OPEN ? BT_AT_FDCWD : (int)BT_ARG1(regs);
	__u32 zero = 0;
	struct req_scratch *s = bpf_map_lookup_elem(&req_buf, &zero);
	long n;

	if (!s)
		return;
	n = bpf_probe_read_user_str(s->b, sizeof(s->b), upath);
	if (n <= 1)
		return;
	if (requested_matches(cfg, s, n - 1, dfd, task) && !held_back(0, 0, 0))
		emit_requested(s, ret, flags, sys, dfd, task);
}

/*
 * A successful open that produced f. ret is the fd (0 from the fexit hook,
 * which runs before the fd exists). op is the kernel's open_flags when the
 * fexit hook has them; without them the flags are read from the syscall's
 * arguments, and only when an event needs them.
 */
static __always_inline void on_opened(struct file *f, long ret, const struct open_flags *op,
				      int sys, bool btf)
{
	struct bt_file_cfg *cfg;
	struct dentry *d;
	struct inode *inode, *real;
	struct qstr q;
	__u32 kind, verdict;
	__u8 action = BT_FILE_OBSERVED;

	d = BT_LOAD(btf, f, f_path.dentry);
	inode = BT_LOAD(btf, f, f_inode);
	if (!d || !inode)
		return;
	if (!load_qstr(&q, d, btf))
		return;
	/* Only a name proc uses for memory views costs the superblock check.
	 * bee-trace's own opens are dropped only once something matched: the
	 * check is a helper call, and almost every open matches nothing. */
	if (watch_proc && proc_name_kind(&q, &kind) &&
	    BPF_CORE_READ(inode, i_sb, s_magic) == BT_PROC_SUPER_MAGIC) {
		if (bt_is_self())
			return;
		on_proc_open(f, kind, inode, ret, requested_flags(op, sys));
		return;
	}
	if (!watch_files)
		return;
	cfg = active_cfg();
	if (!cfg)
		return;
	verdict = file_verdict(cfg, d, BT_LOAD(btf, f, f_path.mnt), &q, inode, btf);
	/* An overlay file stands for the real file it opened: watched by that
	 * one's inode too, and reported by it, which is the inode user space
	 * knows. */
	real = bt_overlay_real_inode(f, inode);
	if (real) {
		__u32 rv = inode_verdict(real, verdict != 0, false);

		if (rv) {
			verdict |= rv;
			inode = real;
		}
	}
	/* Never bee-trace itself: it holds armed tripwires open (O_PATH). */
	if (!verdict || bt_is_self())
		return;
	/* An O_PATH descriptor gives no access to the content (reading needs a
	 * second open, which is seen): neither a finding nor a kill target.
	 * Another bee-trace's tripwire pins are such opens. */
	if (BT_LOAD(btf, f, f_flags) & BT_O_PATH)
		return;
	/* A flood is counted, not sent (fold.bpf.h); a kill always is. The
	 * inode may be the overlay's real one, a pointer read with a helper:
	 * read through, never loaded directly. */
	if (!(verdict & BT_INODE_KILL) &&
	    held_back(BPF_CORE_READ(inode, i_sb, s_dev), BPF_CORE_READ(inode, i_ino),
		      BT_LOAD(btf, f, f_mode) & (BT_FMODE_READ | BT_FMODE_WRITE)))
		return;
	/* The signal is delivered on the way back to user space, so the
	 * opener never runs another instruction with the descriptor. */
	if ((verdict & BT_INODE_KILL) && !bpf_send_signal(BT_SIGKILL))
		action = BT_FILE_KILLED;
	emit_resolved(f, d, inode, ret, requested_flags(op, sys), sys, action);
}

static __always_inline void on_open_failed(long ret, int sys)
{
	struct bt_file_cfg *cfg;
	struct pt_regs *regs;

	if (!watch_files)
		return;
	cfg = active_cfg();
	if (!cfg)
		return;
	regs = bt_syscall_regs();
	on_failed_open(cfg, regs, ret, open_flags(regs, sys), sys);
}

static __always_inline int on_open_exit(long ret, int sys)
{
	if (ret >= 0) {
		struct file *f = bt_fd_file(ret);

		if (f)
			on_opened(f, ret, NULL, sys, false);
		return 0;
	}
	if (!bt_is_self())
		on_open_failed(ret, sys);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int handle_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx->ret, BT_SYS_OPENAT);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int handle_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx->ret, BT_SYS_OPENAT2);
}

/* Only architectures with a plain open(2) (x86_64, not arm64) have this
 * tracepoint; user space turns the program off where it is missing. */
SEC("tracepoint/syscalls/sys_exit_open")
int handle_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx->ret, BT_SYS_OPEN);
}

/* Which open(2)-family syscall the task is in, 0 when none (an exec's open,
 * an io_uring worker, a kernel-internal open). */
static __always_inline int current_open_sys(void)
{
	long nr = bt_syscall_nr(bt_syscall_regs());

#if defined(__TARGET_ARCH_x86)
	/* A 32-bit program's syscall numbers and argument registers differ
	 * (TS_COMPAT): its refused opens are not read with the 64-bit layout. */
	if (bpf_get_current_task_btf()->thread_info.status & 0x0002)
		return 0;
	if (nr == 257)
		return BT_SYS_OPENAT;
	if (nr == 2)
		return BT_SYS_OPEN;
#else
	if (nr == 56)
		return BT_SYS_OPENAT;
#endif
	if (nr == 437)
		return BT_SYS_OPENAT2;
	return 0;
}

/*
 * The fexit upgrade: every open(2), openat(2), openat2(2) and io_uring open
 * passes through do_filp_open, which returns the struct file itself (no fd
 * table walk) or the error. Only its callers pay; no syscall tracepoint is
 * needed. Opens for exec (MAY_EXEC) are not file reads and are skipped, as
 * the tracepoints never saw them either.
 */
SEC("?fexit/do_filp_open")
int BPF_PROG(fexit_do_filp_open, int dfd, struct filename *pathname, const struct open_flags *op,
	     struct file *ret)
{
	unsigned long v = (unsigned long)ret;
	int sys;

	if (op->acc_mode & BT_MAY_EXEC)
		return 0;
	if (v && v < (unsigned long)-4095) {
		/* syscall 0: the event does not need which one, and finding
		 * out would cost every open a helper call. */
		on_opened(ret, 0, op, 0, true);
		return 0;
	}
	/* A refused open is reported with the path as the caller wrote it,
	 * which only an open(2)-family syscall's arguments hold. */
	sys = current_open_sys();
	if (v && sys && !bt_is_self())
		on_open_failed((long)v, sys);
	return 0;
}

/* Links and renames of watched names (their own programs). */
#include "link.bpf.h"
/* Opens that are not open(2)-family syscalls, and their enabling acts. */
#include "opens.bpf.h"
