/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Ring buffers and their loss counters: one way to declare a ring, one way to
 * declare and bump the counter of records that did not fit, and the wakeup
 * batching every family submits with. */
#ifndef BEE_TRACE_RING_BPF_H
#define BEE_TRACE_RING_BPF_H

#include <bpf/bpf_helpers.h>

/*
 * Every ring's size, stated once. net_events (net.bpf.c, egress.bpf.c) and
 * mem_events (mem.bpf.c, file.bpf.c) are declared by two objects each and
 * user space hands the second object the first one's map, so both
 * declarations must name the same constant.
 */
#define BT_RING_PROCESS (4 * 1024 * 1024)
#define BT_RING_FILE (8 * 1024 * 1024)
#define BT_RING_NET (2 * 1024 * 1024)
#define BT_RING_MEM (1024 * 1024)
#define BT_RING_TAMPER (256 * 1024)
#define BT_RING_WATCH (64 * 1024)

#define BT_RINGBUF(name, bytes)                                                                    \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                                                \
		__uint(max_entries, bytes);                                                        \
	} name SEC(".maps")

/* One per-CPU __u64 of records a ring could not take; user space sums the
 * CPUs. */
#define BT_LOST_COUNTER(name)                                                                      \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                           \
		__uint(max_entries, 1);                                                            \
		__type(key, __u32);                                                                \
		__type(value, __u64);                                                              \
	} name SEC(".maps")

/* Atomic although the slot is per-CPU: a cgroup_skb program runs in softirq
 * and can interrupt another program of its object on the same CPU. */
static __always_inline void bt_count_lost(void *counter)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(counter, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Reader wakeups cost more than the record itself (an IPI and a scheduler
 * wakeup per record when the reader keeps up). Records are therefore
 * submitted without a wakeup until this much is waiting; the reader also
 * polls every 50 ms, which bounds the delay of a lone record. */
#define BT_WAKE_BYTES (64 * 1024)

static __always_inline void bt_submit(void *rb, void *rec)
{
	__u64 waiting = bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(rec, waiting >= BT_WAKE_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* bpf_ringbuf_output with the same wakeup batching: for records built in a
 * scratch map and sent at their used length. Non-zero when the ring is full. */
static __always_inline long bt_output(void *rb, void *rec, __u64 size)
{
	__u64 waiting = bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA);

	return bpf_ringbuf_output(rb, rec, size,
				  waiting >= BT_WAKE_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

#endif
