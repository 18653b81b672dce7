/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The real file behind a file opened on overlayfs, included by file.bpf.c.
 *
 * An overlay file has an inode of its own, on the overlay's device, which
 * matches no inode bee-trace learned on the real file system: a watched file
 * of a lower (or upper) directory read through the overlay under an
 * unwatched name would go unseen. Opening a regular overlay file makes the
 * overlay open the real one (ovl_open_realfile, a backing file): its inode
 * is the upper or lower file's, the one bee-trace knows.
 */
#ifndef BEE_TRACE_OVERLAY_BPF_H
#define BEE_TRACE_OVERLAY_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

#define BT_OVERLAYFS_SUPER_MAGIC 0x794c7630
#define BT_S_IFMT 00170000
#define BT_S_IFREG 0100000

/*
 * overlayfs's file->private_data: the real file itself until the commit
 * "ovl: allocate a container struct ovl_file for ovl private context"
 * (Linux 6.13), since then a struct ovl_file whose realfile is the real one.
 */
struct ovl_file___bt {
	struct file *realfile;
} __attribute__((preserve_access_index));

/* The inode of the real file behind f, a regular file opened on overlayfs
 * whose inode is inode; NULL when f is not one. */
static __always_inline struct inode *bt_overlay_real_inode(struct file *f, struct inode *inode)
{
	struct file *real;
	void *priv;

	if (BPF_CORE_READ(inode, i_sb, s_magic) != BT_OVERLAYFS_SUPER_MAGIC)
		return NULL;
	if ((BPF_CORE_READ(inode, i_mode) & BT_S_IFMT) != BT_S_IFREG)
		return NULL;
	priv = BPF_CORE_READ(f, private_data);
	if (!priv)
		return NULL;
	if (bpf_core_type_exists(struct ovl_file))
		real = BPF_CORE_READ((struct ovl_file___bt *)priv, realfile);
	else
		real = priv;
	if (!real)
		return NULL;
	return BPF_CORE_READ(real, f_inode);
}

#endif
