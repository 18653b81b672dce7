//! Rust mirrors of `bpf/include/abi.h` and decoding of raw ring-buffer samples.
//!
//! The mirrors are written by hand for their names and derives; `check` proves
//! at compile time that each is the C layout, field by field. `decode` turns a
//! sample into one, `text` reads the strings and paths inside.
mod check;
mod decode;
mod text;
pub use decode::{decode, DecodeError, Raw};
pub use text::{
    cstr, dns_key, dns_name_text, file_event_old_path, file_event_path, join_components,
    resolve_lexically, split_argv,
};

pub const COMM_LEN: usize = 16;
pub const PATH_MASK: usize = 4095;
pub const NAME_MAX: usize = 256;
pub const PATH_BUF: usize = PATH_MASK + 1 + NAME_MAX;
pub const ARGV_BUF: usize = 1024;
pub const ENV_BUF: usize = 512;
pub const ENV_ITEM: usize = 256;
/// bt_exec_event.stdio
pub const STDIO_SOCKET: u32 = 1;
pub const KEY_LEN: usize = 64;
pub const AFFIX_MAX: usize = 27;
/// Distinct prefix (suffix) lengths the kernel filter tries.
pub const AFFIX_LENS: usize = 8;
/// Slots of the inode_hint map.
pub const INODE_HINTS: u64 = 4096;

pub const EV_EXEC: u32 = 1;
pub const EV_FORK: u32 = 2;
pub const EV_EXIT: u32 = 3;
pub const EV_FILE: u32 = 4;
pub const EV_NET: u32 = 5;
pub const EV_MEM: u32 = 6;
pub const EV_EGRESS: u32 = 7;
pub const EV_DNS: u32 = 8;
pub const EV_TAMPER: u32 = 9;
/// A raw, packet or ping socket made: a `NetEvent` without a destination.
pub const EV_SOCKET: u32 = 10;
pub const EV_SERVE: u32 = 16;
/// bt_serve_event.op
pub const SERVE_LISTEN: u8 = 1;
pub const SERVE_ACCEPT: u8 = 2;
pub const DNS_NAME: usize = 256;
pub const DNS_ADDRS: usize = 8;

/// Address families of network records (AF_INET, AF_INET6).
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const AF_PACKET: u16 = 17;

pub const PATH_TRUNCATED: u32 = 1;
pub const PATH_DETACHED: u32 = 2;
pub const PATH_CWD: u32 = 4;
pub const PATH_RESOLVED: u8 = 0;
pub const PATH_REQUESTED: u8 = 1;
/// bt_file_event.action: seen, or the kernel sent the opener SIGKILL.
pub const FILE_OBSERVED: u8 = 0;
pub const FILE_KILLED: u8 = 1;
/// Not an access: the watched inode dev/ino was freed (ext4) and dropped
/// from the kernel's inode filter.
pub const FILE_FREED: u8 = 2;
/// bt_file_event.syscall (0 from the fexit hook, which does not tell).
pub const SYS_OPENAT: u8 = 1;
pub const SYS_OPENAT2: u8 = 2;
pub const SYS_OPEN: u8 = 3;
/// bt_file_event.syscall of links and renames (layout PATH_MOVED).
pub const SYS_LINK: u8 = 16;
pub const SYS_LINKAT: u8 = 17;
pub const SYS_RENAME: u8 = 18;
pub const SYS_RENAMEAT: u8 = 19;
pub const SYS_RENAMEAT2: u8 = 20;
/// A link or rename: the old name, then from new_off the new name.
pub const PATH_MOVED: u8 = 2;
/// PATH_MOVED: the new name's part was cut.
pub const PATH_NEW_TRUNCATED: u32 = 2;
/// Opens that are not open(2)-family syscalls (bpf/opens.bpf.h), and the
/// enabling acts reported in their place where the open itself is unseen.
pub const SYS_OPEN_BY_HANDLE_AT: u8 = 4;
pub const SYS_PIDFD_GETFD: u8 = 5;
pub const SYS_IO_URING_OPENAT: u8 = 6;
pub const SYS_COMPAT_OPEN: u8 = 7;
pub const SYS_IO_URING_SETUP: u8 = 8;
pub const SYS_FANOTIFY_INIT: u8 = 9;
pub const SYS_FANOTIFY_MARK: u8 = 10;
pub const SYS_CREAT: u8 = 11;
/// inode_filter values and inode_hint bits.
pub const INODE_WATCH: u8 = 1;
pub const INODE_KILL: u8 = 2;

pub const MEM_PTRACE: u32 = 1;
pub const MEM_VM_READV: u32 = 2;
pub const MEM_VM_WRITEV: u32 = 3;
pub const MEM_PROC_MEM: u32 = 4;
pub const MEM_PROC_ENVIRON: u32 = 5;
pub const MEM_PROC_MAPS: u32 = 6;
pub const MEM_PROC_SMAPS: u32 = 7;
pub const MEM_PROC_SMAPS_ROLLUP: u32 = 8;
pub const MEM_PROC_PAGEMAP: u32 = 9;
pub const MEM_CORE_LIMIT: u32 = 10;
pub const MEM_CORE_SIGNAL: u32 = 11;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Header {
    pub ts_boot_ns: u64,
    pub cgroup_id: u64,
    pub kind: u32,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExecEvent {
    pub hdr: Header,
    pub argv_len: u32,
    pub argv_full: u32,
    pub exe_len: u16,
    pub exe_depth: u16,
    pub exe_flags: u32,
    /// The executable's inode as the kernel ran it (kernel dev encoding).
    pub exe_dev: u64,
    pub exe_ino: u64,
    pub exe_uid: u32,
    pub exe_mode: u32,
    pub argv: [u8; ARGV_BUF],
    pub exe: [u8; PATH_BUF],
    /// A script's name (with its NUL) after the exe's bytes; 0: none.
    pub script_len: u16,
    pub script_depth: u16,
    pub script_flags: u32,
    /// The loader's variables the exec carried (bpf/loader_env.bpf.h).
    pub env_len: u32,
    pub env_count: u32,
    pub env: [u8; ENV_BUF],
    pub stdio: u32,
    pub _pad2: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ForkEvent {
    pub hdr: Header,
    pub child_pid: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ExitEvent {
    pub hdr: Header,
    pub exit_code: i32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FileEvent {
    pub hdr: Header,
    pub ret: i32,
    pub flags: u32,
    pub fmode: u32,
    pub path_flags: u32,
    pub dev: u64,
    pub ino: u64,
    pub path_len: u16,
    pub path_depth: u16,
    pub req_len: u16,
    pub layout: u8,
    pub syscall: u8,
    pub action: u8,
    pub ftype: u8,
    pub new_off: u16,
    pub igen: u32,
    pub path: [u8; PATH_BUF],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NetEvent {
    pub hdr: Header,
    pub ret: i32,
    pub family: u16,
    pub dport: u16,
    pub sock_type: u16,
    pub protocol: u16,
    pub _pad: u32,
    pub daddr: [u8; 16],
}

/// A listen, or a connection accepted from another host
/// (bpf/serve.bpf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeEvent {
    pub hdr: Header,
    pub ret: i32,
    pub family: u16,
    pub lport: u16,
    pub rport: u16,
    pub protocol: u16,
    pub op: u8,
    pub _pad: [u8; 3],
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
}

/// bt_tamper_event.kind
pub const TAMPER_BPF: u32 = 1;
pub const TAMPER_SIGNAL: u32 = 2;
/// bt_tamper_event.obj_type and bt_obj_key.type
pub const OBJ_MAP: u32 = 1;
pub const OBJ_PROG: u32 = 2;
pub const OBJ_LINK: u32 = 3;

/// Something done to bee-trace itself (see bpf/tamper.bpf.c).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TamperEvent {
    pub hdr: Header,
    pub kind: u32,
    pub cmd: u32,
    pub obj_type: u32,
    pub obj_id: u32,
    pub ret: i32,
    pub sig: i32,
    pub sig_result: i32,
    pub target_tid: u32,
    pub target_tgid: u32,
    pub _pad: u32,
}

/// Key of own_objs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ObjKey {
    pub kind: u32,
    pub id: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MemEvent {
    pub hdr: Header,
    pub kind: u32,
    pub target_pid: u32,
    pub request: i64,
    pub ret: i64,
    pub target_tgid: u32,
    pub fmode: u32,
    pub target_comm: [u8; COMM_LEN],
}

/// bt_egress_event.action
pub const ACT_OBSERVED: u8 = 0;
pub const ACT_BLOCKED: u8 = 1;
pub const ACT_WOULD_BLOCK: u8 = 2;
/// bt_egress_event.hook
pub const HOOK_CONNECT: u8 = 1;
pub const HOOK_SENDMSG: u8 = 2;
/// The backstop: a packet of a raw, ping or UDP-Lite socket.
pub const HOOK_PACKET: u8 = 3;
/// connect(2) of a raw or UDP-Lite socket, judged at its entry.
pub const HOOK_RAW_CONNECT: u8 = 4;
/// The device backstop (tcx egress): AF_PACKET frames, tunnel encapsulations.
pub const HOOK_DEVICE: u8 = 5;
/// bt_egress_event.rule for a destination outside the allowlist.
pub const RULE_NOT_ALLOWED: u32 = 1;
/// bt_egress_event.rule with dns_guard: DNS over TCP, DNS to a server that
/// is not a resolver.
pub const RULE_DNS_TCP: u32 = 2;
pub const RULE_DNS_UNKNOWN: u32 = 3;
pub const MODE_OFF: u32 = 0;
pub const MODE_AUDIT: u32 = 1;
pub const MODE_BLOCK: u32 = 2;
pub const EGRESS_PORTS: usize = 7;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EgressEvent {
    pub hdr: Header,
    pub rule: u32,
    pub family: u16,
    pub dport: u16,
    pub sock_type: u16,
    pub protocol: u16,
    pub action: u8,
    pub hook: u8,
    pub _pad: u16,
    pub daddr: [u8; 16],
}

/// A DNS answer seen in the kernel (see bt_dns_event).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DnsEvent {
    pub hdr: Header,
    pub name_len: u16,
    pub naddrs: u8,
    pub rule_hit: u8,
    /// `DNS_WHOLE` or why not every address record was read (`DNS_CUT_*`).
    pub cut: u8,
    /// With `cut` and a block rule: `ACT_BLOCKED` (dropped) or `ACT_WOULD_BLOCK`.
    pub action: u8,
    pub server_family: u8,
    pub _pad: u8,
    pub rule: u32,
    pub _pad2: u32,
    pub server: [u8; 16],
    pub ttl: [u32; DNS_ADDRS],
    pub family: [u8; DNS_ADDRS],
    pub addr: [[u8; 16]; DNS_ADDRS],
    pub name: [u8; DNS_NAME],
}

impl Default for DnsEvent {
    fn default() -> Self {
        DnsEvent {
            hdr: Header::default(),
            name_len: 0,
            naddrs: 0,
            rule_hit: 0,
            cut: DNS_WHOLE,
            action: ACT_OBSERVED,
            server_family: 0,
            _pad: 0,
            rule: 0,
            _pad2: 0,
            server: [0; 16],
            ttl: [0; DNS_ADDRS],
            family: [0; DNS_ADDRS],
            addr: [[0; 16]; DNS_ADDRS],
            name: [0; DNS_NAME],
        }
    }
}

/// bt_dns_event.cut
pub const DNS_WHOLE: u8 = 0;
pub const DNS_CUT_COUNT: u8 = 1;
pub const DNS_CUT_SIZE: u8 = 2;
pub const DNS_CUT_MALFORMED: u8 = 3;

/// Key and value of the dns_rules map.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DnsKey {
    pub name: [u8; DNS_NAME],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsRule {
    pub val: EgressVal,
    pub allow: u8,
    pub exact: u8,
    pub _pad: u16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EgressCfg {
    pub mode: u32,
    pub allowlist: u32,
    pub dns_guard: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Lpm4Key {
    pub prefixlen: u32,
    pub addr: [u8; 4],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Lpm6Key {
    pub prefixlen: u32,
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressVal {
    pub rule: u32,
    pub nports: u16,
    pub ports: [u16; EGRESS_PORTS],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NameKey {
    pub name: [u8; KEY_LEN],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct AffixKey {
    pub len: u32,
    pub s: [u8; 28],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct InodeKey {
    pub dev: u64,
    pub ino: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FileCfg {
    pub match_all: u32,
    pub _pad: u32,
    pub name_lens: u64,
    pub parent_lens: u64,
    pub name_last: [u64; 4],
    pub parent_last: [u64; 4],
    pub prefix_first: [u64; 4],
    pub suffix_last: [u64; 4],
    pub prefix_len: [u8; AFFIX_LENS],
    pub suffix_len: [u8; AFFIX_LENS],
}

/// Flood control of the file family (bpf/fold.bpf.h): the window, a
/// process's share of file records per window, the maps' sizes.
pub const FOLD_WINDOW_MS: u64 = 1000;
pub const SHARE_PER_WINDOW: u64 = 512;
pub const FOLD_ENTRIES: u64 = 16384;
pub const SHARE_ENTRIES: u64 = 8192;

/// Key and value of file_fold: one open (process, file, access) and the
/// repeats of it counted, not sent.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FoldKey {
    pub dev: u64,
    pub ino: u64,
    pub tgid: u32,
    pub access: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FoldVal {
    pub window_start: u64,
    pub folded: u64,
}

/// Value of file_share (keyed by tgid): the records of a process over its
/// share, counted, not sent.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ShareVal {
    pub window_start: u64,
    pub suppressed: u64,
    pub in_window: u32,
    pub _pad: u32,
}

// SAFETY: all of these are integers and arrays of them with explicit padding
// fields (`abi` proves every byte of each belongs to a named field, as in C),
// so every bit pattern is a valid value and none is uninitialised.
unsafe impl plain::Plain for Header {}
unsafe impl plain::Plain for ExecEvent {}
unsafe impl plain::Plain for ForkEvent {}
unsafe impl plain::Plain for ExitEvent {}
unsafe impl plain::Plain for EgressEvent {}
unsafe impl plain::Plain for DnsEvent {}
unsafe impl plain::Plain for FileEvent {}
unsafe impl plain::Plain for NetEvent {}
unsafe impl plain::Plain for ServeEvent {}
unsafe impl plain::Plain for MemEvent {}
unsafe impl plain::Plain for TamperEvent {}
unsafe impl plain::Plain for ObjKey {}
unsafe impl plain::Plain for DnsKey {}
unsafe impl plain::Plain for DnsRule {}
unsafe impl plain::Plain for EgressCfg {}
unsafe impl plain::Plain for Lpm4Key {}
unsafe impl plain::Plain for Lpm6Key {}
unsafe impl plain::Plain for EgressVal {}
unsafe impl plain::Plain for NameKey {}
unsafe impl plain::Plain for AffixKey {}
unsafe impl plain::Plain for InodeKey {}
unsafe impl plain::Plain for FileCfg {}
unsafe impl plain::Plain for FoldKey {}
unsafe impl plain::Plain for FoldVal {}
unsafe impl plain::Plain for ShareVal {}

/// Byte view of a mirrored map key or value, for map updates.
pub fn as_bytes<T: plain::Plain>(v: &T) -> &[u8] {
    // SAFETY: T is one of the mirrors above, which have no implicit padding
    // (see the Plain impls), so every byte is initialised.
    unsafe { plain::as_bytes(v) }
}

/// Bytes of a file record before its path (BT_FILE_HEAD).
pub const FILE_HEAD: usize = std::mem::offset_of!(FileEvent, path);
