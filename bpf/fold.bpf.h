/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Flood control for the file family, included by file.bpf.c only. One
 * process opening the same file over and over (or a great many files) must
 * not fill the ring and hide another process's open behind its own:
 *  - a repeat of the same open (process, file, access) within a window of
 *    the window's first is counted in file_fold and not sent;
 *  - a process past its share of records in a window is counted in
 *    file_share and not sent (share.bpf.h, shared with the network family).
 * Both counts only grow; user space reads the maps every second and at the
 * end and reports what grew (kernel/file.rs, session/flood.rs), so every
 * open is accounted for. A tripwire's kill is always sent.
 */
#ifndef BEE_TRACE_FOLD_BPF_H
#define BEE_TRACE_FOLD_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "abi.h"
#include "share.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BT_FOLD_ENTRIES);
	__type(key, struct bt_fold_key);
	__type(value, struct bt_fold_val);
} file_fold SEC(".maps");

BT_SHARE_MAP(file_share);

/*
 * Whether an open of (dev, ino) with f_mode access bits is held back:
 * a repeat within the window of the open last sent is folded into it; any
 * other open past the process's share is suppressed. Only an open that is
 * sent starts a window, so every folded repeat has a report to be told
 * against. A failed open has no inode: it only counts against the share.
 */
static __always_inline bool held_back(__u64 dev, __u64 ino, __u32 access)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_boot_ns();
	struct bt_fold_key k = { .dev = dev, .ino = ino, .tgid = tgid, .access = access };
	struct bt_fold_val *v = NULL;

	if (ino) {
		v = bpf_map_lookup_elem(&file_fold, &k);
		if (v && now - v->window_start < BT_FOLD_NS) {
			__sync_fetch_and_add(&v->folded, 1);
			return true;
		}
	}
	if (bt_over_share(&file_share, tgid, now))
		return true;
	if (!ino)
		return false;
	if (v) {
		v->window_start = now; /* this one is sent and opens a new window */
	} else {
		struct bt_fold_val nv = { .window_start = now, .folded = 0 };
		bpf_map_update_elem(&file_fold, &k, &nv, BPF_NOEXIST);
	}
	return false;
}

#endif
