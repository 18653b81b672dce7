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
 * path walk and a ring-buffer record.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define BT_AT_FDCWD -100
#define BT_REQ_MAX 2048 /* requested paths longer than this are cut */
#define BT_SCAN_MAX 256 /* a component longer than this is not a name we watch */

const volatile bool watch_files = true;
const volatile bool watch_proc = true;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} file_events SEC(".maps");

/* Owned by the memory family (mem.bpf.c); user space hands this skeleton the
 * same map when both families run. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} mem_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} file_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} mem_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bt_name_key);
	__type(value, __u32);
} name_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bt_name_key);
	__type(value, __u32);
} parent_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct bt_affix_key);
	__type(value, __u32);
} prefix_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct bt_affix_key);
	__type(value, __u32);
} suffix_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bt_inode_key);
	__type(value, __u32);
} inode_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bt_file_cfg);
} file_cfg SEC(".maps");

struct req_scratch {
	__u8 b[BT_REQ_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct req_scratch);
} req_buf SEC(".maps");

static __always_inline void count_lost(void *map)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(map, &zero);

	if (n)
		(*n)++;
}

/* Is the name at kptr (len bytes, kernel memory) a key of map? */
static __always_inline bool name_in(void *map, const void *kptr, __u32 len)
{
	struct bt_name_key k;

	if (len == 0 || len >= BT_KEY_LEN)
		return false;
	barrier_var(len);
	len &= BT_KEY_LEN - 1;
	__builtin_memset(&k, 0, sizeof(k));
	if (bpf_probe_read_kernel(&k.name, len, kptr))
		return false;
	return bpf_map_lookup_elem(map, &k) != NULL;
}

struct affix_walk {
	const void *kptr;
	__u64 len;
	__u32 prefix_lens;
	__u32 suffix_lens;
	bool hit;
};

/* Tries the prefix and suffix of one length; run by bpf_loop. */
static long affix_step(__u64 i, void *ctx)
{
	struct affix_walk *w = ctx;
	__u64 l = i + 1;
	struct bt_affix_key k;

	if (l > w->len)
		return 1;
	barrier_var(l); /* keep the bound below where the verifier can see it */
	if (l > BT_AFFIX_MAX)
		return 1;
	if (w->prefix_lens & (1u << l)) {
		__builtin_memset(&k, 0, sizeof(k));
		k.len = l;
		if (!bpf_probe_read_kernel(&k.s, l, w->kptr) &&
		    bpf_map_lookup_elem(&prefix_filter, &k)) {
			w->hit = true;
			return 1;
		}
	}
	if (w->suffix_lens & (1u << l)) {
		__builtin_memset(&k, 0, sizeof(k));
		k.len = l;
		if (!bpf_probe_read_kernel(&k.s, l, w->kptr + w->len - l) &&
		    bpf_map_lookup_elem(&suffix_filter, &k)) {
			w->hit = true;
			return 1;
		}
	}
	return 0;
}

static __always_inline bool affix_match(const struct bt_file_cfg *cfg, const void *kptr, __u32 len)
{
	struct affix_walk w = {
		.kptr = kptr,
		.len = len,
		.prefix_lens = cfg->prefix_lens,
		.suffix_lens = cfg->suffix_lens,
		.hit = false,
	};

	if (!(w.prefix_lens | w.suffix_lens) || len == 0)
		return false;
	bpf_loop(BT_AFFIX_MAX, affix_step, &w, 0);
	return w.hit;
}

/* Cheap verdict for an opened file: could its path match the policy? */
static __always_inline bool file_candidate(const struct bt_file_cfg *cfg, struct dentry *d,
					   __u64 dev, __u64 ino)
{
	struct bt_inode_key ik = { .dev = dev, .ino = ino };
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	__u32 len = BPF_CORE_READ(d, d_name.len);
	struct dentry *parent;

	if (cfg->match_all)
		return true;
	if (name_in(&name_filter, name, len))
		return true;
	parent = BPF_CORE_READ(d, d_parent);
	if (parent != d && name_in(&parent_filter, BPF_CORE_READ(parent, d_name.name),
				   BPF_CORE_READ(parent, d_name.len)))
		return true;
	if (bpf_map_lookup_elem(&inode_filter, &ik))
		return true;
	return affix_match(cfg, name, len);
}

/* Reads the open flags the caller passed. */
static __always_inline __u32 open_flags(struct pt_regs *regs, int sys)
{
	__u64 flags = 0;

	if (sys == BT_SYS_OPEN)
		return BT_ARG2(regs);
	if (sys == BT_SYS_OPENAT)
		return BT_ARG3(regs);
	/* openat2: struct open_how starts with __u64 flags */
	bpf_probe_read_user(&flags, sizeof(flags), (void *)BT_ARG3(regs));
	return flags;
}

static __always_inline bool proc_name_kind(struct dentry *d, __u32 *kind)
{
	__u32 len = BPF_CORE_READ(d, d_name.len);
	char n[8] = {};

	if (len != 3 && len != 4 && len != 7)
		return false;
	bpf_probe_read_kernel(n, len & 7, BPF_CORE_READ(d, d_name.name));
	if (len == 3 && n[0] == 'm' && n[1] == 'e' && n[2] == 'm')
		*kind = BT_MEM_PROC_MEM;
	else if (len == 4 && n[0] == 'm' && n[1] == 'a' && n[2] == 'p' && n[3] == 's')
		*kind = BT_MEM_PROC_MAPS;
	else if (len == 7 && n[0] == 'e' && n[1] == 'n' && n[2] == 'v' && n[3] == 'i' &&
		 n[4] == 'r' && n[5] == 'o' && n[6] == 'n')
		*kind = BT_MEM_PROC_ENVIRON;
	else
		return false;
	return true;
}

/* An opened /proc/<pid>/{mem,environ,maps} of another process. */
static __always_inline void on_proc_open(struct file *f, struct dentry *d, struct inode *inode,
					 long ret, __u32 flags)
{
	struct proc_inode *pi;
	struct task_struct *target;
	struct hlist_node *first;
	struct bt_mem_event *e;
	__u32 kind;

	if (!proc_name_kind(d, &kind))
		return;
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
		count_lost(&mem_lost);
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

static __always_inline void emit_resolved(struct file *f, struct dentry *d, long ret, __u32 flags,
					  __u64 dev, __u64 ino, int sys)
{
	struct bt_path_scratch *s;
	struct bt_file_event *e;
	__u32 off = 0;

	e = bpf_ringbuf_reserve(&file_events, sizeof(*e), 0);
	if (!e) {
		count_lost(&file_lost);
		return;
	}
	bt_fill_header(&e->hdr, BT_EV_FILE);
	e->ret = ret;
	e->flags = flags;
	e->fmode = BPF_CORE_READ(f, f_mode);
	e->dev = dev;
	e->ino = ino;
	e->layout = BT_PATH_RESOLVED;
	e->syscall = sys;
	e->req_len = 0;
	s = bt_walk_path(d, BPF_CORE_READ(f, f_path.mnt), &off, &e->path_depth, &e->path_flags);
	if (s)
		bpf_probe_read_kernel(e->path, sizeof(e->path), s->buf);
	else
		off = 0;
	e->path_len = off;
	bpf_ringbuf_submit(e, 0);
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
 * A failed open: judge the requested string by its last two components, and
 * report it with the directory it was relative to, which user space joins.
 */
static __always_inline void on_failed_open(const struct bt_file_cfg *cfg, struct pt_regs *regs,
					   long ret, __u32 flags, int sys)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const char *upath = (const char *)(sys == BT_SYS_OPEN ? BT_ARG1(regs) : BT_ARG2(regs));
	int dfd = sys == BT_SYS_OPEN ? BT_AT_FDCWD : (int)BT_ARG1(regs);
	__u32 zero = 0, off;
	struct req_scratch *s = bpf_map_lookup_elem(&req_buf, &zero);
	struct bt_path_scratch *ps;
	struct bt_file_event *e;
	bool hit = cfg->match_all;
	long n;
	int len, slash, pslash;

	if (!s)
		return;
	n = bpf_probe_read_user_str(s->b, sizeof(s->b), upath);
	if (n <= 1)
		return;
	len = n - 1;
	slash = last_slash(len);
	if (slash == -2)
		return;
	if (!hit) {
		__u32 start = (slash + 1) & (BT_REQ_MAX - 1);
		__u32 nlen = (__u32)(len - start) & (BT_REQ_MAX - 1);
		hit = name_in(&name_filter, s->b + start, nlen) || affix_match(cfg, s->b + start, nlen);
	}
	if (!hit && slash > 0) {
		pslash = last_slash(slash);
		if (pslash >= -1) {
			__u32 pstart = (pslash + 1) & (BT_REQ_MAX - 1);
			__u32 plen = (__u32)(slash - pstart) & (BT_REQ_MAX - 1);
			hit = name_in(&parent_filter, s->b + pstart, plen);
		}
	} else if (!hit && slash == -1 && dfd == BT_AT_FDCWD) {
		struct dentry *cwd = BPF_CORE_READ(task, fs, pwd.dentry);
		hit = name_in(&parent_filter, BPF_CORE_READ(cwd, d_name.name),
			      BPF_CORE_READ(cwd, d_name.len));
	}
	if (!hit)
		return;

	e = bpf_ringbuf_reserve(&file_events, sizeof(*e), 0);
	if (!e) {
		count_lost(&file_lost);
		return;
	}
	bt_fill_header(&e->hdr, BT_EV_FILE);
	e->ret = ret;
	e->flags = flags;
	e->fmode = 0;
	e->dev = 0;
	e->ino = 0;
	e->layout = BT_PATH_REQUESTED;
	e->syscall = sys;
	e->path_depth = 0;
	e->path_flags = 0;
	ps = bpf_map_lookup_elem(&bt_path_buf, &zero);
	if (!ps) {
		bpf_ringbuf_discard(e, 0);
		return;
	}
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
	if (ps)
		bpf_probe_read_kernel(e->path, sizeof(e->path), ps->buf);
	e->path_len = off;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int on_open_exit(long ret, int sys)
{
	struct pt_regs *regs;
	struct bt_file_cfg *cfg;
	__u32 zero = 0;

	if (bt_is_self())
		return 0;
	regs = bt_syscall_regs();
	if (ret >= 0) {
		struct file *f = bt_fd_file(ret);
		struct dentry *d;
		struct inode *inode;
		struct super_block *sb;

		if (!f)
			return 0;
		d = BPF_CORE_READ(f, f_path.dentry);
		inode = BPF_CORE_READ(f, f_inode);
		sb = BPF_CORE_READ(inode, i_sb);
		if (BPF_CORE_READ(sb, s_magic) == BT_PROC_SUPER_MAGIC) {
			if (watch_proc)
				on_proc_open(f, d, inode, ret, open_flags(regs, sys));
			return 0;
		}
		if (!watch_files)
			return 0;
		cfg = bpf_map_lookup_elem(&file_cfg, &zero);
		if (!cfg)
			return 0;
		__u64 dev = BPF_CORE_READ(sb, s_dev);
		__u64 ino = BPF_CORE_READ(inode, i_ino);
		if (file_candidate(cfg, d, dev, ino))
			emit_resolved(f, d, ret, open_flags(regs, sys), dev, ino, sys);
		return 0;
	}
	if (!watch_files)
		return 0;
	cfg = bpf_map_lookup_elem(&file_cfg, &zero);
	if (cfg)
		on_failed_open(cfg, regs, ret, open_flags(regs, sys), sys);
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
