/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The file family's kernel pre-filter, included by file.bpf.c only: the maps
 * user space fills from the policy (names, parents, prefixes, suffixes,
 * inodes, the cheap facts in file_cfg) and the verdict that lets an ordinary
 * file go before any path walk. */
#ifndef BEE_TRACE_FILE_FILTER_BPF_H
#define BEE_TRACE_FILE_FILTER_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "abi.h"
#include "compat.bpf.h"
#include "path.bpf.h"

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

/* Two slots: a policy reload writes the idle one, then flips cfg_slot, so a
 * program never reads a half-written configuration. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct bt_file_cfg);
} file_cfg SEC(".maps");

volatile __u32 cfg_slot;

static __always_inline struct bt_file_cfg *active_cfg(void)
{
	__u32 slot = cfg_slot & 1;

	return bpf_map_lookup_elem(&file_cfg, &slot);
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BT_INODE_HINTS);
	__type(key, __u32);
	__type(value, __u8);
} inode_hint SEC(".maps");

/*
 * One field of the struct at ptr. Under the fexit hook the verifier knows
 * each pointer's BTF type, so this is a plain load (a few instructions);
 * under a tracepoint the pointer came from a probe read and the field needs
 * a bpf_probe_read_kernel call of its own. btf is a constant at every call
 * site, so only one of the two is compiled into each program.
 */
#define BT_LOAD(btf, ptr, field) ((btf) ? (ptr)->field : BPF_CORE_READ(ptr, field))

/* The name of dentry d (its length and a pointer to its bytes). */
static __always_inline bool load_qstr(struct qstr *q, struct dentry *d, bool btf)
{
	if (btf) {
		q->len = d->d_name.len;
		q->name = d->d_name.name;
		return true;
	}
	return !BPF_CORE_READ_INTO(q, d, d_name);
}

static __always_inline bool byte_in(const __u64 *set, __u8 c)
{
	return (set[(c >> 6) & 3] >> (c & 63)) & 1;
}

/* Copies the name at kptr (len bytes, kernel memory) into a zeroed map key;
 * false when it does not fit one. */
static __always_inline bool load_name(struct bt_name_key *k, const void *kptr, __u32 len)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (len == 0 || len >= BT_KEY_LEN)
		return false;
	barrier_var(len);
	len &= BT_KEY_LEN - 1;
	return bpf_probe_read_kernel(k->name, len, kptr) == 0;
}

/*
 * Under the fexit hook: copies d's name (len bytes at kptr) into the zeroed
 * key k with four plain loads when the kernel keeps it inside the dentry,
 * sparing the probe read. False when the name is stored elsewhere (a long
 * name): the caller reads it the slow way.
 */
static __always_inline bool inline_name(struct bt_name_key *k, struct dentry *d,
					const void *kptr, __u32 len)
{
	const __u64 *w = bt_dentry_inline_name(d);
	__u64 *o = (__u64 *)k->name;
	int i;

	if (len == 0 || len >= BT_INLINE_NAME || (unsigned long)kptr != (unsigned long)w)
		return false;
#pragma unroll
	for (i = 0; i < BT_INLINE_NAME / 8; i++) {
		__u32 lo = i * 8;
		__u64 v = w[i];

		/* Bytes past the name may hold an older, longer name. */
		if (len <= lo)
			v = 0;
		else if (len < lo + 8)
			v &= (1ULL << ((len - lo) * 8)) - 1;
		o[i] = v;
	}
	return true;
}

/* The name at kptr (len bytes) into the zeroed key k. When it is the name of
 * dentry d and the fexit hook runs (btf), plain loads where possible; else
 * one probe read. d may be NULL for a name with no dentry (a requested path). */
static __always_inline bool name_into(struct bt_name_key *k, const void *kptr, __u32 len,
				      struct dentry *d, bool btf)
{
	if (btf && d) {
		__builtin_memset(k, 0, sizeof(*k));
		if (inline_name(k, d, kptr, len))
			return true;
	}
	return load_name(k, kptr, len);
}

/* Tries each length in lens (ended by 0) of the name at kptr (len bytes):
 * its first bytes, or with from_end its last, as a key of map. */
static __always_inline bool affix_try(void *map, const __u8 *lens, const void *kptr, __u64 len,
				      bool from_end)
{
	struct bt_affix_key k;
	int i;

#pragma unroll
	for (i = 0; i < BT_AFFIX_LENS; i++) {
		__u64 l = lens[i];

		if (l == 0)
			break;
		if (l > len)
			continue;
		barrier_var(l);
		if (l > BT_AFFIX_MAX)
			continue;
		__builtin_memset(&k, 0, sizeof(k));
		k.len = l;
		if (!bpf_probe_read_kernel(k.s, l, from_end ? kptr + len - l : kptr) &&
		    bpf_map_lookup_elem(map, &k))
			return true;
	}
	return false;
}

/* Is some watched prefix or suffix part of the name at kptr (len bytes)?
 * Only the distinct affix lengths the policy has are tried, and only when
 * the name's first (last) byte starts (ends) some prefix (suffix). */
static __always_inline bool affix_in(const struct bt_file_cfg *cfg, const void *kptr, __u64 len,
				     __u8 first, __u8 last)
{
	if (byte_in(cfg->prefix_first, first) &&
	    affix_try(&prefix_filter, cfg->prefix_len, kptr, len, false))
		return true;
	return byte_in(cfg->suffix_last, last) &&
	       affix_try(&suffix_filter, cfg->suffix_len, kptr, len, true);
}

/* Is the name (already in k, len bytes) a watched name, prefix or suffix? */
static __always_inline bool leaf_in(const struct bt_file_cfg *cfg, const struct bt_name_key *k,
				    const void *kptr, __u32 len)
{
	__u8 first = k->name[0];
	__u8 last = k->name[(len - 1) & (BT_KEY_LEN - 1)];

	if (len < BT_KEY_LEN && ((cfg->name_lens >> len) & 1) && byte_in(cfg->name_last, last) &&
	    bpf_map_lookup_elem(&name_filter, k))
		return true;
	return affix_in(cfg, kptr, len, first, last);
}

/* Is the directory name at kptr (len bytes) a watched parent? pd is that
 * directory's dentry when there is one (see name_into). */
static __always_inline bool parent_in(const struct bt_file_cfg *cfg, struct bt_name_key *k,
				      const void *kptr, __u32 len, struct dentry *pd, bool btf)
{
	if (len >= BT_KEY_LEN || !((cfg->parent_lens >> len) & 1))
		return false;
	if (!name_into(k, kptr, len, pd, btf))
		return false;
	if (!byte_in(cfg->parent_last, k->name[(len - 1) & (BT_KEY_LEN - 1)]))
		return false;
	return bpf_map_lookup_elem(&parent_filter, k) != NULL;
}

/* The directory a path shows d in. When d's parent is the root of its mount
 * (a file at the top of a tmpfs or a volume mounted on /etc/cron.d or
 * ~/.ssh), that root's own name is the mount's source ("/" for a tmpfs, a
 * volume's "_data"); the path names the mount point instead, so that is
 * what a parent rule must see. Stacked mounts are climbed a few levels. */
static __always_inline struct dentry *shown_parent(struct dentry *d, struct vfsmount *vfsmnt)
{
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	struct mount *m;

	if (!vfsmnt || parent == d)
		return parent;
	m = bt_real_mount(vfsmnt);
	for (int i = 0; i < 4; i++) {
		struct mount *up = BPF_CORE_READ(m, mnt_parent);

		if (parent != BPF_CORE_READ(m, mnt.mnt_root) || up == m)
			break;
		parent = BPF_CORE_READ(m, mnt_mountpoint);
		m = up;
	}
	return parent;
}

/* The inode part of the verdict: BT_INODE_WATCH when named or when the
 * inode is watched, with BT_INODE_KILL when it is a tripwire. */
static __always_inline __u32 inode_verdict(struct inode *inode, bool named, bool btf)
{
	__u64 ino;
	__u8 *hint;
	__u32 *v;

	/* A named candidate only needs the inode for the tripwire check. */
	ino = BT_LOAD(btf, inode, i_ino);
	__u32 slot = ino & (BT_INODE_HINTS - 1);
	hint = bpf_map_lookup_elem(&inode_hint, &slot);
	if (!hint || !*hint || (named && !(*hint & BT_INODE_KILL)))
		return named ? BT_INODE_WATCH : 0;
	struct bt_inode_key ik = { .dev = BPF_CORE_READ(inode, i_sb, s_dev), .ino = ino };
	v = bpf_map_lookup_elem(&inode_filter, &ik);
	if (!v)
		return named ? BT_INODE_WATCH : 0;
	return *v | BT_INODE_WATCH;
}

/* Cheap verdict for an opened file whose dentry is d and name q: 0 when its
 * path cannot match the policy, else BT_INODE_WATCH, with BT_INODE_KILL when
 * its inode is a tripwire. */
static __always_inline __u32 file_verdict(const struct bt_file_cfg *cfg, struct dentry *d,
					  struct vfsmount *mnt, const struct qstr *q,
					  struct inode *inode, bool btf)
{
	struct bt_name_key k;
	struct dentry *parent;
	__u32 len = q->len;
	bool named = cfg->match_all;

	if (named)
		goto inode;
	if (len < BT_KEY_LEN) {
		if (name_into(&k, q->name, len, d, btf) && leaf_in(cfg, &k, q->name, len)) {
			named = true;
			goto inode;
		}
	} else {
		/* Too long to be a watched name; still try the affixes. */
		__u8 fl[2] = {};

		bpf_probe_read_kernel(&fl[0], 1, q->name);
		bpf_probe_read_kernel(&fl[1], 1, q->name + len - 1);
		if (affix_in(cfg, q->name, len, fl[0], fl[1])) {
			named = true;
			goto inode;
		}
	}
	if (cfg->parent_lens) {
		struct qstr pq;

		parent = shown_parent(d, mnt);
		if (parent && parent != d && load_qstr(&pq, parent, false) &&
		    parent_in(cfg, &k, pq.name, pq.len, parent, false))
			named = true;
	}
inode:
	return inode_verdict(inode, named, btf);
}

#endif
