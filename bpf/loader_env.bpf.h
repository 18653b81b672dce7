/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The dynamic loader's variables an exec was given (LD_PRELOAD, LD_AUDIT,
 * LD_LIBRARY_PATH): they make every program the process runs load a library
 * of the caller's choosing (ATT&CK T1574.006). Their values are paths, not
 * secrets; no other variable is read past its first three bytes (past
 * its name's first 16 when it starts "LD_").
 *
 * Read at sched_process_exec from the new program's own stack, the copy the
 * kernel made and ld.so will read: not from the caller's envp at syscall
 * entry, which another thread can rewrite between that read and the
 * kernel's copy, which a page not yet faulted in hides from a BPF read, and
 * which an exec through another entry (int $0x80) never shows.
 *
 * The strings lie NUL-separated in mm->env_start .. env_end. Where each one
 * starts is read from the envp array the kernel wrote below them (the ELF
 * start-up stack: argc at bprm->p, argv[argc], NULL, envp[envc], NULL), so
 * an entry's length is known without reading its value. Included by
 * process.bpf.c only.
 */
#ifndef BEE_TRACE_LOADER_ENV_BPF_H
#define BEE_TRACE_LOADER_ENV_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "abi.h"

/* Environment entries looked at per exec; a CI runner's has about 150. */
#define BT_ENV_SCAN 512
/* Bytes of an entry read to match its name ("LD_LIBRARY_PATH=" is 16),
 * and the shortest entry that can match ("LD_AUDIT=" and its NUL). */
#define BT_ENV_NAME 16
#define BT_ENV_SHORTEST 10

/* Each entry is read with a fixed bound at an offset masked into the
 * buffer; the extra BT_ENV_ITEM bytes keep the read in bounds, as the path
 * walk's buffer does. The walk's state lives here, not in bpf_loop's
 * context on the stack, so the verifier checks the step once. */
struct loader_env {
	__u32 len;   /* bytes of buf used */
	__u32 count; /* entries that matched, kept or not */
	__u64 cur;   /* where the next entry starts */
	__u32 cut;   /* something was not shown whole (see take_loader_env) */
	__u32 _pad;
	__u8 buf[BT_ENV_BUF + BT_ENV_ITEM];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loader_env);
} env_scratch SEC(".maps");

/* What stays the same for the whole walk. */
struct env_scan {
	struct loader_env *out;
	__u64 envp; /* &envp[0] in the new program's memory */
	__u64 end;  /* mm->env_end */
	__u32 envc;
	__u32 wide; /* 8-byte pointers; 0: 4-byte (a 32-bit program) */
};

/* envp[i] as the kernel wrote it; 0 when unreadable. */
static __always_inline __u64 env_ptr(const struct env_scan *sc, __u64 i)
{
	__u64 v = 0;
	__u32 v32 = 0;

	if (sc->wide) {
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(sc->envp + i * 8)))
			return 0;
		return v;
	}
	if (bpf_probe_read_user(&v32, sizeof(v32), (void *)(sc->envp + i * 4)))
		return 0;
	return v32;
}

/* Is the entry, which starts "LD_", one of the loader's variables? n holds
 * its first bytes and zeros after them. */
static __always_inline bool loader_name(const char *n)
{
	if (n[3] == 'P' && n[4] == 'R' && n[5] == 'E' && n[6] == 'L' && n[7] == 'O' && n[8] == 'A' &&
	    n[9] == 'D' && n[10] == '=')
		return true;
	if (n[3] == 'A' && n[4] == 'U' && n[5] == 'D' && n[6] == 'I' && n[7] == 'T' && n[8] == '=')
		return true;
	return n[3] == 'L' && n[4] == 'I' && n[5] == 'B' && n[6] == 'R' && n[7] == 'A' &&
	       n[8] == 'R' && n[9] == 'Y' && n[10] == '_' && n[11] == 'P' && n[12] == 'A' &&
	       n[13] == 'T' && n[14] == 'H' && n[15] == '=';
}

/* Entry i: from out->cur to envp[i + 1] (env_end for the last). */
static long env_step(__u64 i, void *ctx)
{
	struct env_scan *sc = ctx;
	struct loader_env *out = sc->out;
	char n[BT_ENV_NAME + 1] = {};
	__u64 p = out->cur, next = sc->end, len;
	__u32 nlen;
	long k;

	if (i + 1 < sc->envc)
		next = env_ptr(sc, i + 1);
	if (next <= p || next > sc->end) {
		out->cut = 1; /* not the layout the kernel writes: stop */
		return 1;
	}
	out->cur = next;
	len = next - p; /* with its NUL */
	if (len < BT_ENV_SHORTEST)
		return 0;
	/* Three bytes of every entry; the name's rest only after "LD_". */
	if (bpf_probe_read_user(n, 3, (void *)p))
		goto unreadable;
	if (n[0] != 'L' || n[1] != 'D' || n[2] != '_')
		return 0;
	nlen = len < BT_ENV_NAME ? len : BT_ENV_NAME;
	barrier_var(nlen);
	if (nlen > BT_ENV_NAME || bpf_probe_read_user(n, nlen, (void *)p))
		goto unreadable;
	if (!loader_name(n))
		return 0;
	out->count++; /* counted even without room: the record says it was cut */
	if (len > BT_ENV_ITEM)
		out->cut = 1; /* kept to BT_ENV_ITEM - 1 bytes and a NUL */
	if (out->len >= BT_ENV_BUF)
		return 0;
	k = bpf_probe_read_user_str(out->buf + (out->len & (BT_ENV_BUF - 1)), BT_ENV_ITEM,
				    (void *)p);
	if (k > 0)
		out->len += k;
	return 0;
unreadable:
	out->cut = 1;
	return 1;
}

/*
 * Walks the environment into s; false when its layout is not the one
 * expected (nothing read). envp[0] must be env_start: that both finds the
 * pointers' width and proves the array is where the strings say.
 */
static __always_inline bool walk_env(struct loader_env *s, struct linux_binprm *bprm, __u64 start,
				     __u64 end)
{
	struct env_scan sc = { .out = s, .end = end, .wide = 1 };
	__u64 sp = BPF_CORE_READ(bprm, p), word = 0;
	__u32 argc = BPF_CORE_READ(bprm, argc);
	__u32 nr;

	sc.envc = BPF_CORE_READ(bprm, envc);
	/* argc fills one pointer-sized slot: 8 bytes read as argc alone say
	 * 64-bit; a 32-bit program's argc is followed by argv[0], not 0. */
	if (bpf_probe_read_user(&word, sizeof(word), (void *)sp))
		return false;
	if (word != argc) {
		if ((__u32)word != argc)
			return false;
		sc.wide = 0;
	}
	sc.envp = sp + (sc.wide ? 8 : 4) * ((__u64)argc + 2);
	if (!sc.envc || env_ptr(&sc, 0) != start)
		return false;
	s->cur = start;
	nr = sc.envc;
	if (nr > BT_ENV_SCAN) {
		nr = BT_ENV_SCAN;
		s->cut = 1;
	}
	bpf_loop(nr, env_step, &sc, 0);
	return true;
}

/*
 * Writes what the exec carried into its record (nothing: env_len 0). When
 * something was not shown whole (an entry past BT_ENV_ITEM, entries past
 * BT_ENV_SCAN, a layout not understood), env_count is one more than the
 * entries found, so user space reports the list as cut.
 */
static __always_inline void take_loader_env(struct bt_exec_event *e, struct linux_binprm *bprm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 zero = 0;
	struct loader_env *s = bpf_map_lookup_elem(&env_scratch, &zero);
	__u64 start = BPF_CORE_READ(task, mm, env_start);
	__u64 end = BPF_CORE_READ(task, mm, env_end);
	__u32 len;

	e->env_len = 0;
	e->env_count = 0;
	if (!s || end <= start)
		return; /* no environment */
	s->len = 0;
	s->count = 0;
	s->cut = 0;
	if (!bprm || !walk_env(s, bprm, start, end))
		s->cut = 1;
	len = s->len;
	if (len > BT_ENV_BUF)
		len = BT_ENV_BUF; /* the last entry is cut; user space sees no NUL */
	barrier_var(len);
	if (len > 0 && len <= BT_ENV_BUF && !bpf_probe_read_kernel(e->env, len, s->buf))
		e->env_len = len;
	e->env_count = s->count + (s->cut ? 1 : 0);
}

#endif
