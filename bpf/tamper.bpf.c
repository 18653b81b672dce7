// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Tamper family: what is done to bee-trace itself.
 *
 * - bpf(2) commands that change one of this instance's maps, programs or
 *   links (update, delete, freeze, detach, replace, pin), made by any other
 *   process, with their result; and the commands that open one of them by id
 *   (which every such change from outside starts with).
 * - SIGKILL and SIGSTOP sent to bee-trace or to its watchdog: neither can be
 *   caught, so the kernel is the last place they can be seen.
 *
 * Ownership is by object id: user space fills own_objs with the id of every
 * map, program and link it holds once everything is loaded, so another
 * bee-trace instance changing its own maps never matches.
 */
#include "task.bpf.h"
#include "ring.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* The watchdog process (see src/watchdog.rs); 0 when there is none. */
__u32 watchdog_tgid = 0;

BT_RINGBUF(tamper_events, BT_RING_TAMPER);

/* Signal records for the watchdog only: the process they are about may be
 * dead before it could read its own ring. */
BT_RINGBUF(watch_events, BT_RING_WATCH);

BT_LOST_COUNTER(tamper_lost);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bt_obj_key);
	__type(value, __u32);
} own_objs SEC(".maps");

/* A command on one of our objects, between its enter and its exit. */
struct pending {
	__u32 cmd;
	__u32 obj_type;
	__u32 obj_id;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct pending);
} pending_cmds SEC(".maps");

/*
 * Where the fd or id a command acts on sits in its union bpf_attr, and what
 * kind of object it names. Read-only commands (lookups, info, iteration) are
 * not listed: reading bee-trace's maps is not tampering with them.
 */
static __always_inline int attr_target(__u32 cmd, __u32 *off, __u32 *type, bool *by_id)
{
	*by_id = false;
	switch (cmd) {
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
	case BPF_MAP_FREEZE:
		*off = 0; /* map_fd */
		*type = BT_OBJ_MAP;
		return 0;
	case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
		*off = 36; /* batch.map_fd, after four u64s and count */
		*type = BT_OBJ_MAP;
		return 0;
	case BPF_LINK_UPDATE:
	case BPF_LINK_DETACH:
		*off = 0; /* link_fd */
		*type = BT_OBJ_LINK;
		return 0;
	case BPF_PROG_DETACH:
		*off = 4; /* attach_bpf_fd */
		*type = BT_OBJ_PROG;
		return 0;
	case BPF_OBJ_PIN:
		*off = 8; /* bpf_fd: any of the three */
		*type = 0;
		return 0;
	case BPF_MAP_GET_FD_BY_ID:
		*by_id = true;
		*off = 0;
		*type = BT_OBJ_MAP;
		return 0;
	case BPF_PROG_GET_FD_BY_ID:
		*by_id = true;
		*off = 0;
		*type = BT_OBJ_PROG;
		return 0;
	case BPF_LINK_GET_FD_BY_ID:
		*by_id = true;
		*off = 0;
		*type = BT_OBJ_LINK;
		return 0;
	}
	return -1;
}

/* What the anonymous inode of a bpf object's file is called ("bpf-map",
 * "bpf-prog"; "bpf_link" for the fd a link is created with, "bpf-link" for
 * one opened by id), read as the first 8 bytes of its dentry name. */
#define NAME8(a, b, c, d, e, f, g, h)                                                  \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 |          \
	 (__u64)(e) << 32 | (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

/* The type and id of the bpf object behind fd in the calling task; 0 when fd
 * is not one. The file's name says the type, so a link fd passed to a map
 * command is never read as a map. */
static __always_inline __u32 fd_object(int fd, __u32 want, __u32 *id)
{
	struct file *f = bt_fd_file(fd);
	const unsigned char *name;
	void *obj;
	__u64 n = 0;
	__u32 type;

	if (!f)
		return 0;
	name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel(&n, sizeof(n), name))
		return 0;
	if (n == NAME8('b', 'p', 'f', '-', 'm', 'a', 'p', 0))
		type = BT_OBJ_MAP;
	else if (n == NAME8('b', 'p', 'f', '-', 'p', 'r', 'o', 'g'))
		type = BT_OBJ_PROG;
	else if (n == NAME8('b', 'p', 'f', '_', 'l', 'i', 'n', 'k') ||
		 n == NAME8('b', 'p', 'f', '-', 'l', 'i', 'n', 'k'))
		type = BT_OBJ_LINK;
	else
		return 0;
	if (want && type != want)
		return 0;
	obj = BPF_CORE_READ(f, private_data);
	if (!obj)
		return 0;
	if (type == BT_OBJ_MAP)
		*id = BPF_CORE_READ((struct bpf_map *)obj, id);
	else if (type == BT_OBJ_PROG)
		*id = BPF_CORE_READ((struct bpf_prog *)obj, aux, id);
	else
		*id = BPF_CORE_READ((struct bpf_link *)obj, id);
	return type;
}

/* Whether this bpf(2) call acts on one of our objects: fills the pending
 * record (command, object type and id) when it does. */
static __always_inline bool our_object(__u32 cmd, void *uattr, struct pending *p)
{
	__u32 off = 0, type = 0, id = 0, arg = 0;
	struct bt_obj_key key = {};
	bool by_id;

	if (attr_target(cmd, &off, &type, &by_id) || bt_is_self())
		return false;
	if (bpf_probe_read_user(&arg, sizeof(arg), uattr + (off & 63)))
		return false;
	if (by_id) {
		id = arg;
	} else {
		type = fd_object((int)arg, type, &id);
		if (!type)
			return false;
	}
	key.type = type;
	key.id = id;
	if (!bpf_map_lookup_elem(&own_objs, &key))
		return false;
	p->cmd = cmd;
	p->obj_type = type;
	p->obj_id = id;
	return true;
}

static __always_inline void bpf_record(const struct pending *p, long ret)
{
	struct bt_tamper_event *e = bpf_ringbuf_reserve(&tamper_events, sizeof(*e), 0);

	if (!e) {
		bt_count_lost(&tamper_lost);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	bt_fill_header(&e->hdr, BT_EV_TAMPER);
	e->kind = BT_TAMPER_BPF;
	e->cmd = p->cmd;
	e->obj_type = p->obj_type;
	e->obj_id = p->obj_id;
	e->ret = (__s32)ret;
	/* Rare and urgent: wake the reader now. */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

/* The tracepoint pair: the object is resolved on entry (before a command
 * such as a detach changes it), the record is sent on exit with the result. */
SEC("tracepoint/syscalls/sys_enter_bpf")
int handle_bpf_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct pending p = {};
	__u64 pid_tgid;

	if (!our_object((__u32)ctx->args[0], (void *)ctx->args[1], &p))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&pending_cmds, &pid_tgid, &p, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int handle_bpf_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending_cmds, &pid_tgid);
	struct pending copy;

	if (!p)
		return 0;
	copy = *p;
	bpf_map_delete_elem(&pending_cmds, &pid_tgid);
	/* A left-over entry (its exit never came) must not be taken for this
	 * call: the saved registers still hold this call's command. */
	if (copy.cmd != (__u32)BT_ARG1(bt_syscall_regs()))
		return 0;
	bpf_record(&copy, ctx->ret);
	return 0;
}

/* The fexit upgrade (see BT_SYSCALL_FEXIT): one program at the end of the
 * syscall, which still holds every fd and id the call was given, so no
 * syscall tracepoint puts every task on the slow path. */
SEC(BT_SYSCALL_FEXIT(bpf))
int BPF_PROG(fexit_bpf, const struct pt_regs *regs, long ret)
{
	struct pt_regs *uregs = bt_syscall_regs();
	struct pending p = {};

	if (our_object((__u32)BT_ARG1(uregs), (void *)BT_ARG2(uregs), &p))
		bpf_record(&p, ret);
	return 0;
}

#define BT_SIGKILL 9
#define BT_SIGSTOP 19

static __always_inline void signal_record(void *rb, int sig, struct task_struct *task, int result)
{
	struct bt_tamper_event *e = bpf_ringbuf_reserve(rb, sizeof(*e), 0);

	if (!e) {
		bt_count_lost(&tamper_lost);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	bt_fill_header(&e->hdr, BT_EV_TAMPER);
	e->kind = BT_TAMPER_SIGNAL;
	e->sig = sig;
	e->sig_result = result;
	e->target_tid = BPF_CORE_READ(task, pid);
	e->target_tgid = BPF_CORE_READ(task, tgid);
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

/* Every signal the kernel generates passes here, before it is delivered:
 * also a SIGKILL, after which the target never runs again. */
SEC("tp_btf/signal_generate")
int BPF_PROG(handle_signal, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	__u32 tgid;

	if (sig != BT_SIGKILL && sig != BT_SIGSTOP)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	if (tgid != self_tgid && (!watchdog_tgid || tgid != watchdog_tgid))
		return 0;
	/* bee-trace ending its own watchdog is not tampering. */
	if (tgid == watchdog_tgid && bt_is_self())
		return 0;
	signal_record(&tamper_events, sig, task, result);
	signal_record(&watch_events, sig, task, result);
	return 0;
}
