/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The dynamic loader's variables an exec was given (LD_PRELOAD, LD_AUDIT,
 * LD_LIBRARY_PATH): they make every program the process runs load a library
 * of the caller's choosing (ATT&CK T1574.006). Their values are paths, not
 * secrets; no other variable is read past its name's first bytes.
 *
 * execve(2)/execveat(2) entry walks the envp array (bounded) and keeps the
 * matching "NAME=value" strings per process; sched_process_exec copies them
 * into the exec record; a failed exec's are dropped at the syscall's exit.
 * Included by process.bpf.c only.
 */
#ifndef BEE_TRACE_LOADER_ENV_BPF_H
#define BEE_TRACE_LOADER_ENV_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "abi.h"
#include "task.bpf.h"

/* Environment entries looked at per exec; a CI runner's has about 150. */
#define BT_ENV_SCAN 512

/* Each entry is read with a fixed bound at an offset masked into the
 * buffer; the extra BT_ENV_ITEM bytes keep the read in bounds, as the path
 * walk's buffer does. */
struct loader_env {
	__u32 len;
	__u32 count;
	__u8 buf[BT_ENV_BUF + BT_ENV_ITEM];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tgid: after exec the process keeps it */
	__type(value, struct loader_env);
} exec_env SEC(".maps");

/* Built here, then copied into exec_env when something matched. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loader_env);
} env_scratch SEC(".maps");

struct env_scan {
	const char *const *envp;
	struct loader_env *out;
};

/* Is the entry's start one of the loader's variables? */
static __always_inline bool loader_name(const char *p)
{
	char n[17] = {};

	if (bpf_probe_read_user(n, 16, p))
		return false;
	if (n[0] != 'L' || n[1] != 'D' || n[2] != '_')
		return false;
	if (n[3] == 'P' && n[4] == 'R' && n[5] == 'E' && n[6] == 'L' && n[7] == 'O' && n[8] == 'A' &&
	    n[9] == 'D' && n[10] == '=')
		return true;
	if (n[3] == 'A' && n[4] == 'U' && n[5] == 'D' && n[6] == 'I' && n[7] == 'T' && n[8] == '=')
		return true;
	return n[3] == 'L' && n[4] == 'I' && n[5] == 'B' && n[6] == 'R' && n[7] == 'A' &&
	       n[8] == 'R' && n[9] == 'Y' && n[10] == '_' && n[11] == 'P' && n[12] == 'A' &&
	       n[13] == 'T' && n[14] == 'H' && n[15] == '=';
}

static long env_step(__u64 i, void *ctx)
{
	struct env_scan *sc = ctx;
	struct loader_env *out = sc->out;
	const char *p = NULL;
	long n;

	if (bpf_probe_read_user(&p, sizeof(p), &sc->envp[i]) || !p)
		return 1; /* the array's end (or unreadable) */
	if (!loader_name(p))
		return 0;
	out->count++; /* counted even without room: the record says it was cut */
	if (out->len >= BT_ENV_BUF)
		return 0;
	n = bpf_probe_read_user_str(out->buf + (out->len & (BT_ENV_BUF - 1)), BT_ENV_ITEM, p);
	if (n > 0)
		out->len += n;
	return 0;
}

static __always_inline void scan_env(const char *const *envp)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct loader_env *s = bpf_map_lookup_elem(&env_scratch, &zero);
	struct env_scan sc;

	bpf_map_delete_elem(&exec_env, &tgid);
	if (!s || !envp)
		return;
	s->len = 0;
	s->count = 0;
	sc.envp = envp;
	sc.out = s;
	bpf_loop(BT_ENV_SCAN, env_step, &sc, 0);
	if (s->count)
		bpf_map_update_elem(&exec_env, &tgid, s, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int handle_execve_enter(void *ctx)
{
	scan_env((const char *const *)BT_ARG3(bt_syscall_regs()));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int handle_execveat_enter(void *ctx)
{
	scan_env((const char *const *)PT_REGS_PARM4_CORE_SYSCALL(bt_syscall_regs()));
	return 0;
}

/* A failed exec keeps the old program: what its call carried is dropped. */
static __always_inline int drop_env(long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (ret < 0)
		bpf_map_delete_elem(&exec_env, &tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int handle_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return drop_env(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int handle_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return drop_env(ctx->ret);
}

/* Moves what the exec carried into its record (nothing: env_len 0). */
static __always_inline void take_loader_env(struct bt_exec_event *e)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct loader_env *v = bpf_map_lookup_elem(&exec_env, &tgid);
	__u32 len;

	e->env_len = 0;
	e->env_count = 0;
	if (!v)
		return;
	len = v->len;
	if (len > BT_ENV_BUF)
		len = BT_ENV_BUF; /* the last entry is cut; user space sees no NUL */
	barrier_var(len);
	if (len > 0 && len <= BT_ENV_BUF && !bpf_probe_read_kernel(e->env, len, v->buf))
		e->env_len = len;
	e->env_count = v->count;
	bpf_map_delete_elem(&exec_env, &tgid);
}

#endif
