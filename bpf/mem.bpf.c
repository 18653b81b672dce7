// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Memory family: ptrace requests aimed at another process,
 * process_vm_readv/writev, and the core-dump route: RLIMIT_CORE raised on
 * another process (prlimit64), then a core-dumping signal sent to it, which
 * makes the kernel write its memory to a file with no ptrace or /proc access.
 * Opens of /proc/<pid>/{mem,environ,maps,smaps,smaps_rollup,pagemap} are seen
 * by the open programs in file.bpf.c and arrive on this family's ring buffer.
 */
#include "task.bpf.h"
#include "ring.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define BT_PTRACE_PEEKTEXT 1
#define BT_PTRACE_POKEUSR 6
#define BT_PTRACE_GETREGS 12
#define BT_PTRACE_SETFPREGS 15
#define BT_PTRACE_ATTACH 16
#define BT_PTRACE_GETREGSET 0x4204
#define BT_PTRACE_SETREGSET 0x4205
#define BT_PTRACE_SEIZE 0x4206
#define BT_RLIMIT_CORE 4
/* The signals whose default action dumps core (signal(7)): QUIT, ILL, TRAP,
 * ABRT, BUS, FPE, SEGV, XCPU, XFSZ, SYS, as a bit mask by number. */
#define BT_CORE_SIGNALS                                                                            \
	((1ULL << 3) | (1ULL << 4) | (1ULL << 5) | (1ULL << 6) | (1ULL << 7) | (1ULL << 8) |      \
	 (1ULL << 11) | (1ULL << 24) | (1ULL << 25) | (1ULL << 31))

/* Repeats of the same (caller, target, request) within this window are folded
 * into the first: a debugger or a dump issues thousands of them. */
#define BT_FOLD_NS 1000000000ULL

BT_RINGBUF(mem_events, BT_RING_MEM);

BT_LOST_COUNTER(mem_lost);

struct fold_key {
	__u32 tgid;
	__u32 target;
	__s64 request;
	__u32 kind;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fold_key);
	__type(value, __u64);
} mem_fold SEC(".maps");

/* True when this access was already reported within BT_FOLD_NS. */
static __always_inline bool folded(__u32 kind, __u32 target, __s64 request)
{
	struct fold_key k = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.target = target,
		.request = request,
		.kind = kind,
	};
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *last = bpf_map_lookup_elem(&mem_fold, &k);

	if (last && now - *last < BT_FOLD_NS)
		return true;
	bpf_map_update_elem(&mem_fold, &k, &now, BPF_ANY);
	return false;
}

static __always_inline void emit(__u32 kind, __u32 target, __s64 request, long ret)
{
	struct bt_mem_event *e = bpf_ringbuf_reserve(&mem_events, sizeof(*e), 0);

	if (!e) {
		bt_count_lost(&mem_lost);
		return;
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
}

static __always_inline int on_ptrace_exit(long ret)
{
	struct pt_regs *regs;
	__s64 request;
	__u32 target;

	if (bt_is_self())
		return 0;
	regs = bt_syscall_regs();
	request = (__s64)BT_ARG1(regs);
	target = (__u32)BT_ARG2(regs);
	if (request == BT_PTRACE_ATTACH || request == BT_PTRACE_SEIZE) {
		emit(BT_MEM_PTRACE, target, request, ret);
		return 0;
	}
	/* Requests that read or write the tracee's memory or registers. */
	if ((request >= BT_PTRACE_PEEKTEXT && request <= BT_PTRACE_POKEUSR) ||
	    (request >= BT_PTRACE_GETREGS && request <= BT_PTRACE_SETFPREGS) ||
	    request == BT_PTRACE_GETREGSET || request == BT_PTRACE_SETREGSET) {
		if (!folded(BT_MEM_PTRACE, target, request))
			emit(BT_MEM_PTRACE, target, request, ret);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ptrace")
int handle_ptrace_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_ptrace_exit(ctx->ret);
}

static __always_inline int on_vm_exit(long ret, __u32 kind)
{
	__u32 target;

	if (bt_is_self())
		return 0;
	target = (__u32)BT_ARG1(bt_syscall_regs());
	if (target == bpf_get_current_pid_tgid() >> 32)
		return 0;
	if (!folded(kind, target, 0))
		emit(kind, target, 0, ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_process_vm_readv")
int handle_vm_readv_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_vm_exit(ctx->ret, BT_MEM_VM_READV);
}

SEC("tracepoint/syscalls/sys_exit_process_vm_writev")
int handle_vm_writev_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_vm_exit(ctx->ret, BT_MEM_VM_WRITEV);
}

/* The fexit upgrade (see BT_SYSCALL_FEXIT): the same handlers on the syscalls'
 * own functions, whose argument is the task's saved registers. */
SEC(BT_SYSCALL_FEXIT(ptrace))
int BPF_PROG(fexit_ptrace, const struct pt_regs *regs, long ret)
{
	return on_ptrace_exit(ret);
}

SEC(BT_SYSCALL_FEXIT(process_vm_readv))
int BPF_PROG(fexit_vm_readv, const struct pt_regs *regs, long ret)
{
	return on_vm_exit(ret, BT_MEM_VM_READV);
}

SEC(BT_SYSCALL_FEXIT(process_vm_writev))
int BPF_PROG(fexit_vm_writev, const struct pt_regs *regs, long ret)
{
	return on_vm_exit(ret, BT_MEM_VM_WRITEV);
}

/* prlimit64(pid, RLIMIT_CORE, new, old) on another process: the first step
 * of dumping its memory through a core file. Reading or setting one's own
 * limit (pid 0 or one's own) is not an event. */
static __always_inline int on_prlimit_exit(long ret)
{
	struct pt_regs *regs;
	__u64 cur = 0;
	void *new_rlim;
	__u32 target;

	regs = bt_syscall_regs();
	if ((__u32)BT_ARG2(regs) != BT_RLIMIT_CORE)
		return 0;
	new_rlim = (void *)BT_ARG3(regs);
	target = (__u32)BT_ARG1(regs);
	if (!new_rlim || target == 0 || target == bpf_get_current_pid_tgid() >> 32 ||
	    bt_is_self())
		return 0;
	/* struct rlimit64 starts with the soft limit, the one a dump obeys. */
	bpf_probe_read_user(&cur, sizeof(cur), new_rlim);
	emit(BT_MEM_CORE_LIMIT, target, (__s64)cur, ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_prlimit64")
int handle_prlimit_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_prlimit_exit(ctx->ret);
}

SEC(BT_SYSCALL_FEXIT(prlimit64))
int BPF_PROG(fexit_prlimit, const struct pt_regs *regs, long ret)
{
	return on_prlimit_exit(ret);
}

/*
 * A core-dumping signal delivered to another process whose RLIMIT_CORE is
 * not 0: the kernel writes that process's memory to a core file (or a
 * core_pattern pipe). A process's own fault (current is the target) is a
 * crash, not an event; with the limit 0, the default, nothing is written.
 * Runs in both hook modes: tp_btf is a tracepoint, not an fexit.
 */
SEC("tp_btf/signal_generate")
int BPF_PROG(handle_core_signal, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	struct bt_mem_event *e;
	__u32 tgid;

	if (sig <= 0 || sig > 31 || !(BT_CORE_SIGNALS & (1ULL << sig)) || result != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	if (tgid == bpf_get_current_pid_tgid() >> 32 || bt_is_self())
		return 0;
	if (BPF_CORE_READ(task, signal, rlim[BT_RLIMIT_CORE].rlim_cur) == 0)
		return 0;
	if (folded(BT_MEM_CORE_SIGNAL, tgid, sig))
		return 0;
	e = bpf_ringbuf_reserve(&mem_events, sizeof(*e), 0);
	if (!e) {
		bt_count_lost(&mem_lost);
		return 0;
	}
	bt_fill_header(&e->hdr, BT_EV_MEM);
	e->kind = BT_MEM_CORE_SIGNAL;
	e->target_pid = BPF_CORE_READ(task, pid);
	e->target_tgid = tgid;
	e->request = sig;
	e->ret = 0;
	e->fmode = 0;
	BPF_CORE_READ_STR_INTO(&e->target_comm, task, comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
