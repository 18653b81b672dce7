/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* CO-RE shims for kernel structures that changed between the kernels
 * bee-trace loads on (6.1 and later): each names the change it bridges. */
#ifndef BEE_TRACE_COMPAT_BPF_H
#define BEE_TRACE_COMPAT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/*
 * A dentry's inline name: d_iname until Linux 6.14, d_shortname since commit
 * 58cf9c383c5c ("dcache: back inline names with a struct-wrapped array of
 * unsigned long"). Either way its first BT_INLINE_NAME bytes hold every name
 * shorter than that.
 */
struct dentry___iname {
	unsigned char d_iname[32];
} __attribute__((preserve_access_index));

struct dentry___shortname {
	union {
		unsigned char string[40];
		unsigned long words[5];
	} d_shortname;
} __attribute__((preserve_access_index));

#define BT_INLINE_NAME 32

/* Where dentry d keeps a short name, as 64-bit words. */
static __always_inline const __u64 *bt_dentry_inline_name(struct dentry *d)
{
	if (bpf_core_field_exists(((struct dentry___shortname *)d)->d_shortname))
		return (const __u64 *)&((struct dentry___shortname *)d)->d_shortname;
	return (const __u64 *)&((struct dentry___iname *)d)->d_iname;
}

#endif
