//! Rust mirrors of `bpf/include/abi.h` and decoding of raw ring-buffer samples.
//!
//! The mirrors are written by hand for their names and derives; `abi` proves
//! at compile time that each is the C layout, field by field.

use std::mem::size_of;

mod abi;

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

/// `example.com` in DNS wire format (length-prefixed labels, final zero
/// label), zero-padded to a dns_rules key; None when it does not fit.
pub fn dns_key(name: &str) -> Option<DnsKey> {
    let mut k = DnsKey {
        name: [0; DNS_NAME],
    };
    let mut at = 0;
    for label in name.trim_end_matches('.').split('.') {
        let b = label.as_bytes();
        if b.is_empty() || b.len() > 63 || at + 1 + b.len() + 1 > DNS_NAME - 1 {
            return None;
        }
        k.name[at] = b.len() as u8;
        k.name[at + 1..at + 1 + b.len()].copy_from_slice(&label.to_ascii_lowercase().into_bytes());
        at += 1 + b.len();
    }
    Some(k)
}

/// The dotted name of a wire-format name (`\x03www\x07example\x00`); None
/// when the labels do not add up.
pub fn dns_name_text(wire: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut at = 0;
    loop {
        let l = usize::from(*wire.get(at)?);
        if l == 0 {
            return (!out.is_empty()).then_some(out);
        }
        let label = wire.get(at + 1..at + 1 + l)?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&crate::escape::decode(label));
        at += 1 + l;
    }
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

// SAFETY: all of these are plain integers and byte arrays with explicit
// padding fields, so every bit pattern is a valid value.
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

/// Byte view of a plain map key or value, for map updates.
pub fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is one of the repr(C) structs above: no uninitialised padding
    // (every gap is an explicit field) and any byte pattern is valid to read.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A decoded ring-buffer sample.
#[derive(Debug, Clone)]
pub enum Raw {
    Exec(Box<ExecEvent>),
    Fork(ForkEvent),
    Exit(ExitEvent),
    File(Box<FileEvent>),
    Net(NetEvent),
    Mem(MemEvent),
    Egress(EgressEvent),
    Dns(Box<DnsEvent>),
    Tamper(TamperEvent),
}

impl Raw {
    pub fn header(&self) -> &Header {
        match self {
            Raw::Exec(e) => &e.hdr,
            Raw::Fork(e) => &e.hdr,
            Raw::Exit(e) => &e.hdr,
            Raw::File(e) => &e.hdr,
            Raw::Net(e) => &e.hdr,
            Raw::Mem(e) => &e.hdr,
            Raw::Egress(e) => &e.hdr,
            Raw::Dns(e) => &e.hdr,
            Raw::Tamper(e) => &e.hdr,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("sample of {0} bytes is shorter than an event header")]
    Short(usize),
    #[error("unknown event type {0}")]
    UnknownType(u32),
    #[error("event type {kind} needs {need} bytes, sample has {got}")]
    Size { kind: u32, need: usize, got: usize },
}

/// Bytes of a file record before its path (BT_FILE_HEAD).
pub const FILE_HEAD: usize = std::mem::offset_of!(FileEvent, path);

/// A file record is sent at its used length: the head, then path_len bytes
/// of path. The rest of the buffer is zero.
fn decode_file(data: &[u8]) -> Result<Box<FileEvent>, DecodeError> {
    let size = |need| DecodeError::Size {
        kind: EV_FILE,
        need,
        got: data.len(),
    };
    if data.len() < FILE_HEAD {
        return Err(size(FILE_HEAD));
    }
    let mut e = Box::new(FileEvent {
        hdr: Header::default(),
        ret: 0,
        flags: 0,
        fmode: 0,
        path_flags: 0,
        dev: 0,
        ino: 0,
        path_len: 0,
        path_depth: 0,
        req_len: 0,
        layout: 0,
        syscall: 0,
        action: 0,
        _pad: [0; 7],
        path: [0; PATH_BUF],
    });
    let n = data.len().min(size_of::<FileEvent>());
    // SAFETY: e is a FileEvent (Plain: any bytes are valid) with room for
    // size_of::<FileEvent>() >= n bytes, and data has n bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), (&mut *e as *mut FileEvent).cast::<u8>(), n);
    }
    let need = FILE_HEAD + usize::from(e.path_len);
    if need > n {
        return Err(size(need));
    }
    Ok(e)
}

fn copy_from<T: plain::Plain + Copy>(data: &[u8], kind: u32) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if data.len() < need {
        return Err(DecodeError::Size {
            kind,
            need,
            got: data.len(),
        });
    }
    // from_bytes needs alignment; ring-buffer samples are 8-aligned but a copy
    // keeps this correct for any slice (tests, replays).
    let mut out = std::mem::MaybeUninit::<T>::uninit();
    // SAFETY: `out` has room for size_of::<T>() bytes and data has at least
    // that many; T is Plain so any byte pattern is a valid T.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), out.as_mut_ptr().cast::<u8>(), need);
        Ok(out.assume_init())
    }
}

/// Decodes one sample. Never panics: a bad sample is an error to count.
pub fn decode(data: &[u8]) -> Result<Raw, DecodeError> {
    if data.len() < size_of::<Header>() {
        return Err(DecodeError::Short(data.len()));
    }
    let mut hdr = Header::default();
    plain::copy_from_bytes(&mut hdr, data).map_err(|_| DecodeError::Short(data.len()))?;
    Ok(match hdr.kind {
        EV_EXEC => Raw::Exec(Box::new(copy_from(data, hdr.kind)?)),
        EV_FORK => Raw::Fork(copy_from(data, hdr.kind)?),
        EV_EXIT => Raw::Exit(copy_from(data, hdr.kind)?),
        EV_FILE => Raw::File(decode_file(data)?),
        EV_NET => Raw::Net(copy_from(data, hdr.kind)?),
        EV_MEM => Raw::Mem(copy_from(data, hdr.kind)?),
        EV_EGRESS => Raw::Egress(copy_from(data, hdr.kind)?),
        EV_DNS => Raw::Dns(Box::new(copy_from(data, hdr.kind)?)),
        EV_TAMPER => Raw::Tamper(copy_from(data, hdr.kind)?),
        other => return Err(DecodeError::UnknownType(other)),
    })
}

/// Text of a NUL-padded kernel string (comm and the like); invalid UTF-8
/// bytes are shown as `\xNN` (`escape::decode`).
pub fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    crate::escape::decode(&bytes[..end])
}

/// Joins components written leaf first (each NUL-terminated) into an absolute
/// path. Returns the path and whether it is complete.
pub fn join_components(buf: &[u8], start: usize, end: usize, truncated: bool) -> (String, bool) {
    let end = end.min(buf.len());
    let start = start.min(end);
    let mut parts: Vec<&[u8]> = buf[start..end]
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .collect();
    parts.reverse();
    let mut out = String::new();
    if truncated {
        out.push_str("...");
    }
    for p in &parts {
        out.push('/');
        out.push_str(&crate::escape::decode(p));
    }
    if out.is_empty() {
        out.push('/');
    }
    (out, !truncated)
}

/// Lexically normalises `rel` against `base` (both as the kernel gave them):
/// "." and ".." are applied, repeated slashes collapse. Symlinks inside a
/// requested path that did not open cannot be followed and stay as named.
pub fn resolve_lexically(base: &str, rel: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    let joined;
    let full = if rel.starts_with('/') {
        rel
    } else {
        joined = format!("{base}/{rel}");
        joined.as_str()
    };
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            p => stack.push(p),
        }
    }
    if stack.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    for p in stack {
        out.push('/');
        out.push_str(p);
    }
    out
}

/// The path a file event names: the opened file's, or the requested one
/// resolved against its base directory when the open failed.
pub fn file_event_path(e: &FileEvent) -> String {
    let len = (e.path_len as usize).min(PATH_BUF);
    let truncated = e.path_flags & PATH_TRUNCATED != 0;
    if e.layout != PATH_REQUESTED {
        return join_components(&e.path, 0, len, truncated).0;
    }
    let req_len = (e.req_len as usize).min(len);
    let requested = cstr(&e.path[..req_len]);
    if requested.starts_with('/') {
        return resolve_lexically("/", &requested);
    }
    let (base, _) = join_components(&e.path, req_len, len, truncated);
    resolve_lexically(&base, &requested)
}

/// Arguments from the NUL-separated argument area.
pub fn split_argv(buf: &[u8], len: usize) -> Vec<String> {
    let len = len.min(buf.len());
    let mut v: Vec<String> = buf[..len]
        .split(|&b| b == 0)
        .map(crate::escape::decode)
        .collect();
    // The area ends with a NUL, which leaves one empty piece behind.
    if v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(kind: u32) -> Vec<u8> {
        let h = Header {
            kind,
            pid: 42,
            tid: 43,
            ppid: 1,
            uid: 1000,
            comm: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..Default::default()
        };
        as_bytes(&h).to_vec()
    }

    #[test]
    fn decodes_each_type_and_rejects_bad_samples() {
        let mut net = NetEvent {
            ret: -111,
            family: 2,
            dport: 443,
            ..Default::default()
        };
        net.hdr.kind = EV_NET;
        net.hdr.pid = 7;
        match decode(as_bytes(&net)).unwrap() {
            Raw::Net(n) => {
                assert_eq!(n.ret, -111);
                assert_eq!(n.dport, 443);
                assert_eq!(n.hdr.pid, 7);
            }
            other => panic!("decoded as {other:?}"),
        }
        assert_eq!(decode(&[0u8; 10]).unwrap_err(), DecodeError::Short(10));
        assert_eq!(
            decode(&header_bytes(99)).unwrap_err(),
            DecodeError::UnknownType(99)
        );
        assert_eq!(
            decode(&header_bytes(EV_MEM)).unwrap_err(),
            DecodeError::Size {
                kind: EV_MEM,
                need: 104,
                got: 56
            }
        );
    }

    #[test]
    fn joins_leaf_first_components() {
        let buf = b"id_rsa\0.ssh\0root\0";
        assert_eq!(
            join_components(buf, 0, buf.len(), false),
            ("/root/.ssh/id_rsa".into(), true)
        );
        assert_eq!(
            join_components(buf, 0, buf.len(), true).0,
            ".../root/.ssh/id_rsa"
        );
        assert_eq!(join_components(b"", 0, 0, false).0, "/");
    }

    #[test]
    fn resolves_requested_paths() {
        assert_eq!(
            resolve_lexically("/home/u", "../u/.ssh//id_rsa"),
            "/home/u/.ssh/id_rsa"
        );
        assert_eq!(resolve_lexically("/home/u", "/etc/./shadow"), "/etc/shadow");
        assert_eq!(resolve_lexically("/", "../../x"), "/x");
    }

    #[test]
    fn file_records_arrive_at_their_used_length() {
        let mut bytes = header_bytes(EV_FILE);
        bytes.resize(FILE_HEAD, 0);
        // path_len (offset 88) = 6: "id_rsa" follows the head.
        bytes[88..90].copy_from_slice(&6u16.to_ne_bytes());
        bytes.extend_from_slice(b"id_rsa");
        match decode(&bytes).unwrap() {
            Raw::File(f) => {
                assert_eq!(f.path_len, 6);
                assert_eq!(&f.path[..7], b"id_rsa\0");
            }
            other => panic!("decoded as {other:?}"),
        }
        // A path_len the sample does not hold, or a short head, is refused.
        bytes.truncate(FILE_HEAD + 3);
        assert_eq!(
            decode(&bytes).unwrap_err(),
            DecodeError::Size {
                kind: EV_FILE,
                need: FILE_HEAD + 6,
                got: FILE_HEAD + 3
            }
        );
        assert!(decode(&bytes[..FILE_HEAD - 1]).is_err());
    }

    #[test]
    fn dns_names_go_to_wire_format_and_back() {
        let k = dns_key("Evil.Example.").unwrap();
        assert_eq!(&k.name[..14], b"\x04evil\x07example\x00");
        assert!(k.name[14..].iter().all(|b| *b == 0));
        assert_eq!(dns_name_text(&k.name).as_deref(), Some("evil.example"));
        assert!(dns_key("a..b").is_none());
        assert!(dns_key(&"x".repeat(64)).is_none());
        assert!(
            dns_key(&["abcdefghij"; 12].join(".")).is_none(),
            "longer than a key"
        );
        assert_eq!(
            dns_name_text(b"\x03www\x07exa"),
            None,
            "labels run past the end"
        );
        assert_eq!(dns_name_text(b"\x00"), None);
    }

    #[test]
    fn failed_open_path_joins_request_and_base() {
        let mut e = FileEvent {
            hdr: Header::default(),
            ret: -13,
            flags: 0,
            fmode: 0,
            path_flags: 0,
            dev: 0,
            ino: 0,
            path_len: 0,
            path_depth: 0,
            req_len: 0,
            layout: PATH_REQUESTED,
            syscall: 1,
            action: 0,
            _pad: [0; 7],
            path: [0; PATH_BUF],
        };
        let bytes = b"../.aws/credentials\0work\0home\0";
        e.path[..bytes.len()].copy_from_slice(bytes);
        e.req_len = 20;
        e.path_len = bytes.len() as u16;
        assert_eq!(file_event_path(&e), "/home/.aws/credentials");
    }

    #[test]
    fn splits_argv() {
        assert_eq!(
            split_argv(b"sh\0-c\0cat key\0", 14),
            vec!["sh", "-c", "cat key"]
        );
        assert_eq!(split_argv(b"sh\0-c\0ca", 8), vec!["sh", "-c", "ca"]);
    }

    #[test]
    fn invalid_utf8_is_shown_byte_by_byte() {
        assert_eq!(split_argv(b"a\xff\0b\xfe\0", 6), vec!["a\\xff", "b\\xfe"]);
        assert_eq!(cstr(b"c\x80\0\0"), "c\\x80");
        let (p, _) = join_components(b"k\xc3\0d\0", 0, 5, false);
        assert_eq!(p, "/d/k\\xc3");
        assert_eq!(
            dns_name_text(b"\x02\xff\xfe\x03com\x00").as_deref(),
            Some("\\xff\\xfe.com")
        );
    }
}
