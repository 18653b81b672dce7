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
    cstr, dns_key, dns_name_text, file_event_path, join_components, resolve_lexically, split_argv,
};

pub const COMM_LEN: usize = 16;
pub const PATH_MASK: usize = 4095;
pub const NAME_MAX: usize = 256;
pub const PATH_BUF: usize = PATH_MASK + 1 + NAME_MAX;
pub const ARGV_BUF: usize = 1024;
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
pub const DNS_NAME: usize = 128;
pub const DNS_ADDRS: usize = 8;

/// Address families of network records (AF_INET, AF_INET6).
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

pub const PATH_TRUNCATED: u32 = 1;
pub const PATH_RESOLVED: u8 = 0;
pub const PATH_REQUESTED: u8 = 1;
/// bt_file_event.action: seen, or the kernel sent the opener SIGKILL.
pub const FILE_OBSERVED: u8 = 0;
pub const FILE_KILLED: u8 = 1;
/// bt_file_event.syscall (0 from the fexit hook, which does not tell).
pub const SYS_OPENAT: u8 = 1;
pub const SYS_OPENAT2: u8 = 2;
pub const SYS_OPEN: u8 = 3;
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
    pub _pad: [u8; 7],
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
/// bt_egress_event.rule for a destination outside the allowlist.
pub const RULE_NOT_ALLOWED: u32 = 1;
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
    pub _pad: u32,
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
            _pad: 0,
            ttl: [0; DNS_ADDRS],
            family: [0; DNS_ADDRS],
            addr: [[0; 16]; DNS_ADDRS],
            name: [0; DNS_NAME],
        }
    }
}

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

/// Byte view of a mirrored map key or value, for map updates.
pub fn as_bytes<T: plain::Plain>(v: &T) -> &[u8] {
    // SAFETY: T is one of the mirrors above, which have no implicit padding
    // (see the Plain impls), so every byte is initialised.
    unsafe { plain::as_bytes(v) }
}

/// Bytes of a file record before its path (BT_FILE_HEAD).
pub const FILE_HEAD: usize = std::mem::offset_of!(FileEvent, path);
