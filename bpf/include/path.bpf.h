/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The in-kernel path walk: a (dentry, mount) pair written out as its
 * components, leaf first, across mount points, into a per-CPU buffer. Only
 * the objects that walk paths (process, file) include it, so only they create
 * the buffer. */
#ifndef BEE_TRACE_PATH_BPF_H
#define BEE_TRACE_PATH_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "abi.h"

/* Mount crossings and components share this bound; deeper paths are cut and
 * user space marks them truncated. */
#define BT_MAX_DEPTH 48

static __always_inline struct mount *bt_real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((void *)mnt - bpf_core_field_offset(struct mount, mnt));
}

/* Per-CPU room for a path walk: programs on one CPU never interleave. */
struct bt_path_scratch {
	__u8 buf[BT_PATH_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bt_path_scratch);
} bt_path_buf SEC(".maps");

struct bt_walk {
	struct dentry *dentry;
	struct mount *mnt;
	__u32 off;
	__u32 flags;
	__u16 depth;
	__u32 limit; /* components end before this offset */
};

/* One step of the walk, run by bpf_loop so the verifier checks it once
 * rather than once per unrolled iteration. */
static long bt_walk_step(__u64 i, void *ctx)
{
	struct bt_walk *w = ctx;
	struct dentry *dentry = w->dentry;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	__u32 zero = 0;
	struct bt_path_scratch *s;
	long n;

	if (dentry == mnt_root || dentry == parent) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (dentry != mnt_root || up == mnt) {
			w->flags = 0; /* reached the root of everything */
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}
	s = bpf_map_lookup_elem(&bt_path_buf, &zero);
	if (!s)
		return 1;
	n = bpf_probe_read_kernel_str(s->buf + (w->off & BT_PATH_MASK), BT_NAME_MAX,
				       BPF_CORE_READ(dentry, d_name.name));
	if (n <= 0 || w->off + n > w->limit)
		return 1; /* full: the path stays marked truncated */
	w->off += n;
	w->depth++;
	w->dentry = parent;
	return 0;
}

/*
 * Writes the components of (dentry, mnt) up to the root of the mount tree,
 * leaf first, each NUL-terminated, into the per-CPU scratch buffer from
 * offset *off on. Mount points are crossed so the result is the absolute path
 * in the initial mount namespace. Returns the scratch buffer (NULL on
 * failure) and sets *depth, and *flags to BT_PATH_TRUNCATED when the root was
 * not reached. bt_walk_path_to stops the components before offset limit
 * (at most BT_PATH_MASK), leaving the rest of the buffer to another path.
 */
static __always_inline struct bt_path_scratch *
bt_walk_path_to(struct dentry *dentry, struct vfsmount *vfsmnt, __u32 *off, __u16 *depth,
		__u32 *flags, __u32 limit)
{
	struct bt_walk w = {
		.dentry = dentry,
		.mnt = bt_real_mount(vfsmnt),
		.off = *off,
		.flags = BT_PATH_TRUNCATED,
		.depth = 0,
		.limit = limit,
	};
	__u32 zero = 0;

	bpf_loop(BT_MAX_DEPTH, bt_walk_step, &w, 0);
	*off = w.off;
	*depth = w.depth;
	*flags = w.flags;
	return bpf_map_lookup_elem(&bt_path_buf, &zero);
}

static __always_inline struct bt_path_scratch *
bt_walk_path(struct dentry *dentry, struct vfsmount *vfsmnt, __u32 *off, __u16 *depth, __u32 *flags)
{
	return bt_walk_path_to(dentry, vfsmnt, off, depth, flags, BT_PATH_MASK);
}

#endif
