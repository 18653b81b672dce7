/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The one event ABI: every record, map key and map value that the BPF
 * programs and user space both read, and the constants they share.
 *
 * Only __u8..__u64 and __s32/__s64 are used, so this header reads on its own
 * (bpf/abi.bpf.c builds it with nothing but those typedefs) and every field
 * has one obvious Rust mirror. src/abi/check.rs checks each mirror's every field
 * offset, and each constant, against what clang makes of this file; the
 * asserts at the end guard the C side on its own.
 *
 * Constants are enums, not macros, so that they reach the BTF and from there
 * the Rust build.
 */
#ifndef BEE_TRACE_ABI_H
#define BEE_TRACE_ABI_H

enum bt_sizes {
	BT_COMM_LEN = 16,
	/* Path components are written leaf first, each NUL-terminated, at
	 * offsets masked with BT_PATH_MASK; the extra BT_NAME_MAX bytes keep the
	 * last read in bounds, which is what lets the verifier accept a
	 * variable offset. */
	BT_PATH_MASK = 4095,
	BT_NAME_MAX = 256,
	BT_PATH_BUF = BT_PATH_MASK + 1 + BT_NAME_MAX,
	BT_ARGV_BUF = 1024,
	BT_KEY_LEN = 64,
	/* Distinct prefix (suffix) lengths the kernel filter tries. */
	BT_AFFIX_LENS = 8,
	BT_AFFIX_MAX = 27,
	/* inode_hint has this many one-byte slots, indexed by inode number
	 * modulo the count: a zero slot proves the inode is not in
	 * inode_filter, and a slot without BT_INODE_KILL proves no inode of it
	 * is a tripwire. */
	BT_INODE_HINTS = 4096,
	BT_EGRESS_PORTS = 7,
	BT_DNS_NAME = 128, /* longest wire-format name matched or reported */
	BT_DNS_ADDRS = 8,
};

/* bt_header.type */
enum bt_ev_type {
	BT_EV_EXEC = 1,
	BT_EV_FORK = 2,
	BT_EV_EXIT = 3,
	BT_EV_FILE = 4,
	BT_EV_NET = 5,
	BT_EV_MEM = 6,
	BT_EV_EGRESS = 7,
	BT_EV_DNS = 8,
	BT_EV_TAMPER = 9,
};

/* Address families as the kernel numbers them (AF_INET, AF_INET6): the
 * family fields of network records. */
enum bt_af {
	BT_AF_INET = 2,
	BT_AF_INET6 = 10,
};

/* exe_flags, path_flags */
enum bt_path_flags {
	/* The walk stopped before the root: the path lacks its leading
	 * components. */
	BT_PATH_TRUNCATED = 1,
};

struct bt_header {
	__u64 ts_boot_ns; /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id;
	__u32 type;
	__u32 pid; /* thread-group id, what user space calls a pid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 _pad;
	__u8 comm[BT_COMM_LEN];
};

struct bt_exec_event {
	struct bt_header hdr;
	__u32 argv_len;   /* bytes valid in argv: NUL-separated arguments */
	__u32 argv_full;  /* length of the whole argument area in the process */
	__u16 exe_len;    /* bytes used in exe, see BT_PATH_MASK */
	__u16 exe_depth;  /* components in exe, leaf first */
	__u32 exe_flags;  /* BT_PATH_TRUNCATED */
	/* The executable's inode as the kernel ran it, so that "an expected
	 * program" is judged by the file and its owner, never by a name:
	 * dev in the kernel's encoding (major << 20 | minor), uid global. All
	 * zero when the task has no executable. */
	__u64 exe_dev;
	__u64 exe_ino;
	__u32 exe_uid;
	__u32 exe_mode;
	__u8 argv[BT_ARGV_BUF];
	__u8 exe[BT_PATH_BUF];
};

struct bt_fork_event {
	struct bt_header hdr;
	__u32 child_pid;
	__u32 _pad;
};

struct bt_exit_event {
	struct bt_header hdr;
	__s32 exit_code;
	__u32 _pad;
};

/* bt_file_event.layout */
enum bt_path_layout {
	BT_PATH_RESOLVED = 0, /* path: components of the opened file, leaf first */
	BT_PATH_REQUESTED = 1, /* path: the requested string, then the base directory's components */
};

/* bt_file_event.action */
enum bt_file_action {
	BT_FILE_OBSERVED = 0,
	BT_FILE_KILLED = 1, /* the opener was sent SIGKILL (an action: kill inode) */
};

/* bt_file_event.syscall */
enum bt_open_sys {
	BT_SYS_OPENAT = 1,
	BT_SYS_OPENAT2 = 2,
	BT_SYS_OPEN = 3,
	/* Opens that are not open(2)-family syscalls (bpf/opens.bpf.h). */
	BT_SYS_OPEN_BY_HANDLE_AT = 4,
	BT_SYS_PIDFD_GETFD = 5,     /* a descriptor taken from another process */
	BT_SYS_IO_URING_OPENAT = 6, /* IORING_OP_OPENAT/OPENAT2 */
	BT_SYS_COMPAT_OPEN = 7,     /* open, openat, openat2 or creat through int $0x80 */
	/* Enabling acts: no sensitive file yet, the means to open one unseen. */
	BT_SYS_IO_URING_SETUP = 8,
	BT_SYS_FANOTIFY_INIT = 9,
	BT_SYS_FANOTIFY_MARK = 10,
	BT_SYS_CREAT = 11, /* creat(2), x86_64's: an open(O_CREAT|O_WRONLY|O_TRUNC) */
};

struct bt_file_event {
	struct bt_header hdr;
	__s32 ret;     /* fd, or -errno */
	__u32 flags;   /* open flags as passed */
	__u32 fmode;   /* f_mode of the opened file, 0 when the open failed */
	__u32 path_flags; /* BT_PATH_TRUNCATED */
	__u64 dev;     /* kernel dev_t of the file's superblock */
	__u64 ino;
	__u16 path_len;
	__u16 path_depth;
	__u16 req_len; /* BT_PATH_REQUESTED: bytes of the requested string incl. NUL */
	__u8 layout;
	__u8 syscall;
	__u8 action; /* BT_FILE_* */
	__u8 _pad[7];
	__u8 path[BT_PATH_BUF];
};

/* File records are sent only up to the path bytes they use: this head, then
 * path_len bytes. */
enum bt_file_head {
	BT_FILE_HEAD = 104,
};

/* bt_net_event.family: BT_AF_INET / BT_AF_INET6 */
struct bt_net_event {
	struct bt_header hdr;
	__s32 ret;
	__u16 family;
	__u16 dport; /* host byte order */
	__u16 sock_type;
	__u16 protocol;
	__u32 _pad;
	__u8 daddr[16];
};

/* bt_egress_event.action */
enum bt_egress_action {
	BT_ACT_OBSERVED = 0,    /* an unconnected UDP send, seen, no rule matched */
	BT_ACT_BLOCKED = 1,     /* refused with EPERM */
	BT_ACT_WOULD_BLOCK = 2, /* audit mode: a rule matched, let through */
};

/* bt_egress_event.hook */
enum bt_egress_hook {
	BT_HOOK_CONNECT = 1,
	BT_HOOK_SENDMSG = 2,
};

/* bt_egress_event.rule for a destination outside the allowlist; other ids
 * are given out by user space when it fills the maps. */
enum bt_egress_rule {
	BT_RULE_NOT_ALLOWED = 1,
};

/* What a cgroup sock_addr hook decided about one connect or send. The
 * header's ppid is 0: these programs cannot read the task; user space fills
 * it from its process table. */
struct bt_egress_event {
	struct bt_header hdr;
	__u32 rule;
	__u16 family;
	__u16 dport; /* host byte order */
	__u16 sock_type;
	__u16 protocol;
	__u8 action;
	__u8 hook;
	__u16 _pad;
	__u8 daddr[16];
};

/* bt_egress_cfg.mode */
enum bt_egress_mode {
	BT_MODE_OFF = 0,
	BT_MODE_AUDIT = 1,
	BT_MODE_BLOCK = 2,
};

/* Egress policy, single entry of the egress_cfg array map. */
struct bt_egress_cfg {
	__u32 mode;
	__u32 allowlist; /* anything not in allow4/allow6 matches BT_RULE_NOT_ALLOWED */
};

/* Keys of the LPM tries: prefix length in bits, then the address. */
struct bt_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct bt_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Value of the LPM tries: the rule, and for allow entries the ports allowed
 * (nports 0: any port). */
struct bt_egress_val {
	__u32 rule;
	__u16 nports;
	__u16 ports[BT_EGRESS_PORTS];
};

/* A DNS answer the kernel took (UDP, from a resolver's port 53, answering a
 * query seen leaving the same socket of the host's network namespace; see
 * egress.bpf.c): the name asked for, in wire format (length-prefixed labels,
 * lower case), and its A/AAAA records. The header's pid and comm are not the
 * receiver's (the program runs where the packet is delivered) and are zero. */
struct bt_dns_event {
	struct bt_header hdr;
	__u16 name_len; /* bytes of name, the final zero label included */
	__u8 naddrs;
	__u8 rule_hit;  /* a domain rule covered the name: its addresses went into the maps */
	__u32 _pad;
	__u32 ttl[BT_DNS_ADDRS];
	__u8 family[BT_DNS_ADDRS]; /* 4 or 6 */
	__u8 addr[BT_DNS_ADDRS][16];
	__u8 name[BT_DNS_NAME];
};

/* Key of dns_rules: a domain in wire format, zero-padded. */
struct bt_dns_key {
	__u8 name[BT_DNS_NAME];
};

/* Value of dns_rules: what an address learned for the name gets. */
struct bt_dns_rule {
	struct bt_egress_val val; /* rule id (block) or allowed ports (allow) */
	__u8 allow;
	__u8 exact; /* only the name itself, not its subdomains */
	__u16 _pad;
};

/* Something done to bee-trace itself (bpf/tamper.bpf.c): bt_tamper_event.kind */
enum bt_tamper_kind {
	BT_TAMPER_BPF = 1,    /* a bpf(2) command on one of its maps, programs or links */
	BT_TAMPER_SIGNAL = 2, /* SIGKILL or SIGSTOP sent to it (or to its watchdog) */
};

/* bt_tamper_event.obj_type and bt_obj_key.type */
enum bt_obj_type {
	BT_OBJ_MAP = 1,
	BT_OBJ_PROG = 2,
	BT_OBJ_LINK = 3,
};

/* Key of own_objs: one of this instance's kernel objects, by type and id. */
struct bt_obj_key {
	__u32 type;
	__u32 id;
};

struct bt_tamper_event {
	struct bt_header hdr;
	__u32 kind;     /* BT_TAMPER_* */
	__u32 cmd;      /* BT_TAMPER_BPF: the bpf(2) command */
	__u32 obj_type; /* BT_OBJ_* */
	__u32 obj_id;
	__s32 ret;      /* BT_TAMPER_BPF: the call's result (0 or more, or -errno) */
	__s32 sig;      /* BT_TAMPER_SIGNAL: the signal number */
	__s32 sig_result; /* the signal_generate tracepoint's result: 0 delivered */
	__u32 target_tid; /* the thread signalled */
	__u32 target_tgid;
	__u32 _pad;
};

/* bt_mem_event.kind */
enum bt_mem_kind {
	BT_MEM_PTRACE = 1,
	BT_MEM_VM_READV = 2,
	BT_MEM_VM_WRITEV = 3,
	BT_MEM_PROC_MEM = 4,
	BT_MEM_PROC_ENVIRON = 5,
	BT_MEM_PROC_MAPS = 6,
};

struct bt_mem_event {
	struct bt_header hdr;
	__u32 kind;
	__u32 target_pid;  /* as the caller named it (may be a thread id) */
	__s64 request;     /* ptrace request; open flags for /proc files */
	__s64 ret;
	__u32 target_tgid; /* 0 when the kernel could not tell */
	__u32 fmode;
	__u8 target_comm[BT_COMM_LEN]; /* empty when the kernel could not tell */
};

/* Keys of the file pre-filter maps. */
struct bt_name_key {
	__u8 name[BT_KEY_LEN];
};

struct bt_affix_key {
	__u32 len;
	__u8 s[28];
};

struct bt_inode_key {
	__u64 dev;
	__u64 ino;
};

/* Value of inode_filter, and bits of an inode_hint slot. */
enum bt_inode_bits {
	BT_INODE_WATCH = 1, /* report opens of this inode under any name */
	BT_INODE_KILL = 2,  /* and SIGKILL the opener (a tripwire) */
};

/* Single entry of the file_cfg array map: cheap facts that let the kernel
 * reject an ordinary file before any hash lookup. Bit n of a *_lens mask is
 * set when some key of that length is in the map; bit c of a 256-bit byte set
 * when some key starts (prefix_first) or ends (name_last, parent_last,
 * suffix_last) with byte c. prefix_len and suffix_len list the distinct
 * affix lengths, ended by 0. */
struct bt_file_cfg {
	__u32 match_all; /* a pattern no cheap fact can pre-filter: resolve every open */
	__u32 _pad;
	__u64 name_lens;
	__u64 parent_lens;
	__u64 name_last[4];
	__u64 parent_last[4];
	__u64 prefix_first[4];
	__u64 suffix_last[4];
	__u8 prefix_len[BT_AFFIX_LENS];
	__u8 suffix_len[BT_AFFIX_LENS];
};

_Static_assert(sizeof(struct bt_header) == 56, "bt_header layout");
_Static_assert(sizeof(struct bt_exec_event) == 5472, "bt_exec_event layout");
_Static_assert(sizeof(struct bt_fork_event) == 64, "bt_fork_event layout");
_Static_assert(sizeof(struct bt_exit_event) == 64, "bt_exit_event layout");
_Static_assert(sizeof(struct bt_file_event) == 4456, "bt_file_event layout");
_Static_assert(__builtin_offsetof(struct bt_file_event, path) == BT_FILE_HEAD, "bt_file_event head");
_Static_assert(sizeof(struct bt_net_event) == 88, "bt_net_event layout");
_Static_assert(sizeof(struct bt_mem_event) == 104, "bt_mem_event layout");
_Static_assert(sizeof(struct bt_egress_event) == 88, "bt_egress_event layout");
_Static_assert(sizeof(struct bt_egress_cfg) == 8, "bt_egress_cfg layout");
_Static_assert(sizeof(struct bt_lpm4_key) == 8, "bt_lpm4_key layout");
_Static_assert(sizeof(struct bt_lpm6_key) == 20, "bt_lpm6_key layout");
_Static_assert(sizeof(struct bt_egress_val) == 20, "bt_egress_val layout");
_Static_assert(sizeof(struct bt_affix_key) == 32, "bt_affix_key layout");
_Static_assert(BT_AFFIX_MAX < sizeof(((struct bt_affix_key *)0)->s), "bt_affix_key room");
_Static_assert(sizeof(struct bt_file_cfg) == 168, "bt_file_cfg layout");
_Static_assert(sizeof(struct bt_dns_event) == 360, "bt_dns_event layout");
_Static_assert(sizeof(struct bt_dns_key) == 128, "bt_dns_key layout");
_Static_assert(sizeof(struct bt_dns_rule) == 24, "bt_dns_rule layout");
_Static_assert(sizeof(struct bt_obj_key) == 8, "bt_obj_key layout");
_Static_assert(sizeof(struct bt_tamper_event) == 96, "bt_tamper_event layout");

#endif
