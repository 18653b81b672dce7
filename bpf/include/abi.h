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
	BT_DNS_NAME = 256, /* every wire-format name (at most 255 bytes), zero-padded */
	BT_DNS_ADDRS = 8,
	/* The loader's variables an exec carried (bt_exec_event.env): room,
	 * and the most one entry takes. */
	BT_ENV_BUF = 512,
	BT_ENV_ITEM = 256,
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
	/* A raw, packet or ICMP ping socket made (socket(2)): a bt_net_event
	 * with family, sock_type and protocol as asked, ret the fd or -errno. */
	BT_EV_SOCKET = 10,
	BT_EV_SERVE = 16,
};

/* Address families as the kernel numbers them (AF_INET, AF_INET6): the
 * family fields of network records. */
enum bt_af {
	BT_AF_INET = 2,
	BT_AF_INET6 = 10,
	BT_AF_PACKET = 17,
};

/* bt_exec_event.stdio */
enum bt_stdio {
	BT_STDIO_SOCKET = 1,
};

/* exe_flags, path_flags */
enum bt_path_flags {
	/* The walk stopped before the root: the path lacks its leading
	 * components. */
	BT_PATH_TRUNCATED = 1,
	/* BT_PATH_MOVED: the new name's part (from new_off) was cut; bit 0
	 * then speaks for the old name's part. */
	BT_PATH_NEW_TRUNCATED = 2,
	/* exe_flags: the executable's dentry has no parent (a memfd: a file no
	 * directory names); exe holds its dentry name alone. */
	BT_PATH_DETACHED = 2,
	/* script_flags: the exec's working directory follows the exe's
	 * components (and the script's name), script_depth of them. */
	BT_PATH_CWD = 4,
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
	/* exe_len bytes of executable components; when the program run was a
	 * script (the kernel ran an interpreter for it), the script's name as
	 * exec was given it follows at exe[exe_len], script_len bytes with its
	 * NUL (BT_NAME_MAX: it may have been cut); then, with BT_PATH_CWD, the
	 * working directory's components, script_depth of them, leaf first
	 * (a relative script name, or an interpreter's relative operand, is
	 * resolved against it). */
	__u8 exe[BT_PATH_BUF];
	__u16 script_len;   /* 0: not a script */
	__u16 script_depth;
	__u32 script_flags; /* BT_PATH_CWD; BT_PATH_TRUNCATED: the directory was cut */
	/* LD_PRELOAD, LD_AUDIT and LD_LIBRARY_PATH as the new program's stack
	 * holds them ("NAME=value", NUL-separated, each cut to BT_ENV_ITEM - 1
	 * bytes): env_len bytes; env_count entries were found, plus one when
	 * something is not shown whole (an entry cut, the scan stopped before
	 * the environment's end). So env_count above the whole entries in env
	 * (those ended by a NUL) says the list is cut. */
	__u32 env_len;
	__u32 env_count;
	__u8 env[BT_ENV_BUF];
	/* BT_STDIO_SOCKET when the new program's stdin or stdout is a network
	 * socket (a shell handed a connection: a reverse or bind shell). */
	__u32 stdio;
	__u32 _pad2;
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
	/* A link or rename: path holds the old name laid out as
	 * BT_PATH_REQUESTED, then from new_off the new name, the same way. */
	BT_PATH_MOVED = 2,
};

/* bt_file_event.action */
enum bt_file_action {
	BT_FILE_OBSERVED = 0,
	BT_FILE_KILLED = 1, /* the opener was sent SIGKILL (an action: kill inode) */
	/* Not an access: the watched inode dev/ino was freed (its last link
	 * and last user gone) and dropped from inode_filter; no path. */
	BT_FILE_FREED = 2,
};

/* bt_file_event.syscall */
enum bt_open_sys {
	BT_SYS_OPENAT = 1,
	BT_SYS_OPENAT2 = 2,
	BT_SYS_OPEN = 3,
	/* Links and renames (layout BT_PATH_MOVED); far from the opens so
	 * that new open syscalls keep counting up from 4. */
	BT_SYS_LINK = 16,
	BT_SYS_LINKAT = 17,
	BT_SYS_RENAME = 18,
	BT_SYS_RENAMEAT = 19,
	BT_SYS_RENAMEAT2 = 20,
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
	/* The opened file's type (i_mode >> 12) and i_generation, which tell a
	 * reused inode number from the file once learned; 0 when no file was
	 * opened. */
	__u8 ftype;
	__u16 new_off; /* BT_PATH_MOVED: where the new name's part starts in path */
	__u32 igen;
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
	BT_ACT_OBSERVED = 0,    /* an unconnected UDP send, or a connect not made by connect(2), seen, no rule matched */
	BT_ACT_BLOCKED = 1,     /* refused with EPERM */
	BT_ACT_WOULD_BLOCK = 2, /* audit mode: a rule matched, let through */
};

/* bt_egress_event.hook */
enum bt_egress_hook {
	BT_HOOK_CONNECT = 1,
	BT_HOOK_SENDMSG = 2,
	/* The backstop (cgroup_skb egress): a packet of a raw, ping or UDP-Lite
	 * socket, dropped (block) or let through (audit). */
	BT_HOOK_PACKET = 3,
	/* connect(2) of a raw or UDP-Lite socket, which runs no
	 * cgroup connect hook: it succeeds, and the backstop drops its packets
	 * (block) or lets them through (audit). */
	BT_HOOK_RAW_CONNECT = 4,
	/* The device backstop (tcx egress on every interface): a packet no
	 * socket hook judged (AF_PACKET frames, tunnel encapsulations such as
	 * VXLAN to its remote), dropped (block) or let through (audit). */
	BT_HOOK_DEVICE = 5,
};

/* bt_egress_event.rule for a destination outside the allowlist; other ids
 * are given out by user space when it fills the maps. */
enum bt_egress_rule {
	BT_RULE_NOT_ALLOWED = 1,
	/* With dns_guard: DNS that answers the kernel cannot read. */
	BT_RULE_DNS_TCP = 2,     /* a TCP connect to port 53 */
	BT_RULE_DNS_UNKNOWN = 3, /* UDP to port 53 of a server that is not a resolver */
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
	/* Domain rules are in force: DNS whose answers the kernel cannot learn
	 * from (over TCP, or to a server that is not a resolver) matches
	 * BT_RULE_DNS_TCP / BT_RULE_DNS_UNKNOWN, so a name cannot be resolved
	 * around them. */
	__u32 dns_guard;
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

/* bt_dns_event.cut: why not every A/AAAA record of an answer's answer
 * section could be read (dns.bpf.h). */
enum bt_dns_cut {
	BT_DNS_WHOLE = 0,         /* every record was read */
	BT_DNS_CUT_COUNT = 1,     /* more records than the kernel reads */
	BT_DNS_CUT_SIZE = 2,      /* records past the bytes of the datagram it looks at */
	BT_DNS_CUT_MALFORMED = 3, /* a record it could not parse, or fewer bytes than the records announced */
};

/* A DNS answer the kernel took (UDP, from a resolver's port 53, answering a
 * query seen leaving the same socket of the host's network namespace; see
 * dns.bpf.h): the name asked for, in wire format (length-prefixed labels,
 * lower case), and its A/AAAA records. The header names the process that
 * last sent from the socket to the resolver (pid, tid, uid, comm, as the
 * sock_addr hook saw it; the program runs where the packet is delivered);
 * ppid and cgroup_id are 0. An answer of more than BT_DNS_ADDRS addresses is
 * sent as several records; the last one carries `cut`. */
struct bt_dns_event {
	struct bt_header hdr;
	__u16 name_len; /* bytes of name, the final zero label included */
	__u8 naddrs;
	__u8 rule_hit;  /* a domain rule covered the name: its addresses went into the maps */
	__u8 cut;       /* enum bt_dns_cut */
	/* With cut and a block rule: BT_ACT_BLOCKED (the answer was dropped
	 * before the socket got it) or BT_ACT_WOULD_BLOCK (audit mode); else
	 * BT_ACT_OBSERVED. */
	__u8 action;
	__u8 server_family; /* the resolver's: 4 or 6 */
	__u8 _pad;
	__u32 rule;         /* with rule_hit: the domain rule's id */
	__u32 _pad2;
	__u8 server[16];    /* the resolver that answered; IPv4 in the first 4 bytes */
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
	/* More views of the memory layout, reported as the maps-listing step
	 * (kind proc_maps, proc_file names which). */
	BT_MEM_PROC_SMAPS = 7,
	BT_MEM_PROC_SMAPS_ROLLUP = 8,
	BT_MEM_PROC_PAGEMAP = 9,
	/* prlimit64(RLIMIT_CORE) on another process: request is the new soft
	 * limit (-1: unlimited). */
	BT_MEM_CORE_LIMIT = 10,
	/* A core-dumping signal sent to another process whose RLIMIT_CORE is
	 * not 0: its memory goes to a core file. request is the signal. */
	BT_MEM_CORE_SIGNAL = 11,
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
_Static_assert(sizeof(struct bt_exec_event) == 6008, "bt_exec_event layout");
_Static_assert(sizeof(struct bt_fork_event) == 64, "bt_fork_event layout");
_Static_assert(sizeof(struct bt_exit_event) == 64, "bt_exit_event layout");
_Static_assert(sizeof(struct bt_file_event) == 4456, "bt_file_event layout");
_Static_assert(__builtin_offsetof(struct bt_file_event, path) == BT_FILE_HEAD, "bt_file_event head");
_Static_assert(sizeof(struct bt_net_event) == 88, "bt_net_event layout");
_Static_assert(sizeof(struct bt_mem_event) == 104, "bt_mem_event layout");
_Static_assert(sizeof(struct bt_egress_event) == 88, "bt_egress_event layout");
_Static_assert(sizeof(struct bt_egress_cfg) == 12, "bt_egress_cfg layout");
_Static_assert(sizeof(struct bt_lpm4_key) == 8, "bt_lpm4_key layout");
_Static_assert(sizeof(struct bt_lpm6_key) == 20, "bt_lpm6_key layout");
_Static_assert(sizeof(struct bt_egress_val) == 20, "bt_egress_val layout");
_Static_assert(sizeof(struct bt_affix_key) == 32, "bt_affix_key layout");
_Static_assert(BT_AFFIX_MAX < sizeof(((struct bt_affix_key *)0)->s), "bt_affix_key room");
_Static_assert(sizeof(struct bt_file_cfg) == 168, "bt_file_cfg layout");
_Static_assert(sizeof(struct bt_dns_event) == 512, "bt_dns_event layout");
_Static_assert(sizeof(struct bt_dns_key) == 256, "bt_dns_key layout");
_Static_assert(sizeof(struct bt_dns_rule) == 24, "bt_dns_rule layout");
_Static_assert(sizeof(struct bt_obj_key) == 8, "bt_obj_key layout");
_Static_assert(sizeof(struct bt_tamper_event) == 96, "bt_tamper_event layout");

/* Flood control of the file family (bpf/fold.bpf.h). A repeat of the same
 * open (process, file, access) within BT_FOLD_WINDOW_NS of the window's
 * first is counted, not sent; a process past BT_SHARE_PER_WINDOW file
 * records in a window is counted, not sent. Both counts only grow: user
 * space reads them and reports what grew. */
enum bt_fold {
	BT_FOLD_WINDOW_MS = 1000,
	BT_SHARE_PER_WINDOW = 512,
	BT_FOLD_ENTRIES = 16384,
	BT_SHARE_ENTRIES = 8192,
};

struct bt_fold_key {
	__u64 dev;
	__u64 ino;
	__u32 tgid;
	__u32 access; /* f_mode & (FMODE_READ | FMODE_WRITE) */
};

struct bt_fold_val {
	__u64 window_start; /* bpf_ktime_get_boot_ns() */
	__u64 folded;       /* repeats counted, not sent, since the entry was made */
};

struct bt_share_val {
	__u64 window_start;
	__u64 suppressed;   /* records over the share, since the entry was made */
	__u32 in_window;
	__u32 _pad;
};

_Static_assert(sizeof(struct bt_fold_key) == 24, "bt_fold_key layout");
_Static_assert(sizeof(struct bt_fold_val) == 16, "bt_fold_val layout");
_Static_assert(sizeof(struct bt_share_val) == 24, "bt_share_val layout");

/* bt_serve_event.op */
enum bt_serve_op {
	BT_SERVE_LISTEN = 1, /* listen(2) succeeded: laddr/lport are what it listens on */
	BT_SERVE_ACCEPT = 2, /* accept(2)/accept4(2) of a peer that is not loopback */
};

/* A server in the job (bpf/serve.bpf.h): a listen, or an accepted
 * connection from another host. Addresses in network byte order, ports in
 * host order. */
struct bt_serve_event {
	struct bt_header hdr;
	__s32 ret;        /* listen: 0 or -errno; accept: the new fd */
	__u16 family;     /* BT_AF_INET / BT_AF_INET6 */
	__u16 lport;
	__u16 rport;      /* accept: the peer's port */
	__u16 protocol;
	__u8 op;          /* BT_SERVE_* */
	__u8 _pad[3];
	__u8 laddr[16];
	__u8 raddr[16];   /* accept: the peer's address */
};

_Static_assert(sizeof(struct bt_serve_event) == 104, "bt_serve_event layout");

#endif
