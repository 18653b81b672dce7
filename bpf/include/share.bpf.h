/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A process's share of a ring per window: one process flooding a family's
 * ring (opening files, connecting, sending) must not fill it and hide
 * another process's records behind its own. Past BT_SHARE_PER_WINDOW
 * records in a window of BT_FOLD_WINDOW_MS a process's routine records are
 * counted in its family's share map (BT_SHARE_MAP, keyed by tgid) and not
 * sent. The count only grows; user space reads every share map every second
 * and at the end and reports what grew (kernel/mod.rs share_counts,
 * pipeline/flood.rs). Used by the file family (fold.bpf.h) and the network
 * family (net.bpf.c, serve.bpf.h, egress.bpf.c). A verdict, a kill or
 * anything more severe than a routine observation never asks.
 */
#ifndef BEE_TRACE_SHARE_BPF_H
#define BEE_TRACE_SHARE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "abi.h"

#define BT_FOLD_NS ((__u64)BT_FOLD_WINDOW_MS * 1000000ULL)

#define BT_SHARE_MAP(name)                                                                         \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                                               \
		__uint(max_entries, BT_SHARE_ENTRIES);                                             \
		__type(key, __u32);                                                                \
		__type(value, struct bt_share_val);                                                \
	} name SEC(".maps")

/* True when process tgid has used its share of this window in `map` (a
 * BT_SHARE_MAP): the record is counted there and must not be sent. */
static __always_inline bool bt_over_share(void *map, __u32 tgid, __u64 now)
{
	struct bt_share_val *v = bpf_map_lookup_elem(map, &tgid);

	if (v) {
		if (now - v->window_start >= BT_FOLD_NS) {
			v->window_start = now;
			v->in_window = 1;
			return false;
		}
		if (v->in_window >= BT_SHARE_PER_WINDOW) {
			__sync_fetch_and_add(&v->suppressed, 1);
			return true;
		}
		__sync_fetch_and_add(&v->in_window, 1);
		return false;
	}
	struct bt_share_val nv = { .window_start = now, .suppressed = 0, .in_window = 1 };
	bpf_map_update_elem(map, &tgid, &nv, BPF_NOEXIST);
	return false;
}

/* The same for the current task (tracepoints, fexit, sock_addr hooks: not
 * cgroup_skb programs, which on 6.1 cannot call bpf_get_current_pid_tgid). */
static __always_inline bool bt_over_share_current(void *map)
{
	return bt_over_share(map, bpf_get_current_pid_tgid() >> 32, bpf_ktime_get_boot_ns());
}

#endif
