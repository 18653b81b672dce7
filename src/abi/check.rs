//! Compile-time proof that the mirrors in `abi` are `bpf/include/abi.h` as clang lays it out.
//!
//! `bpf/abi.bpf.c` holds one global of every shared struct and enum, so the
//! skeleton generator writes their layout into `types::`. Each mirror is
//! checked here field by field: its size, every field's offset and width, and
//! that both sides name the same fields (a field added in C and not mirrored, or the
//! reverse, fails the build). Each shared constant is checked against its enum.

use std::mem::{offset_of, size_of};

use super::*;

// The generated loader of an object without programs trips these lints; it
// is never called, only its `types` are used.
#[allow(clippy::never_loop, clippy::match_single_binding)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/abi.skel.rs"));
}
use skel::types;

/// The size of the field that `field` picks out of a `T`; never called.
const fn field_size<T, F>(_field: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// `same_layout!(Rust = c_struct { c_field, c_field as rust_field, ... })`:
/// every field of the C struct, in any order, with the Rust name where it
/// differs.
macro_rules! same_layout {
    ($rust:ident = $c:ident { $($body:tt)* }) => {
        same_layout!(@munch $rust $c [] [] $($body)*);
    };
    (@munch $rust:ident $c:ident [$($cs:ident)*] [$($rs:ident)*]
        $cf:ident as $rf:ident $(, $($rest:tt)*)?) => {
        same_layout!(@munch $rust $c [$($cs)* $cf] [$($rs)* $rf] $($($rest)*)?);
    };
    (@munch $rust:ident $c:ident [$($cs:ident)*] [$($rs:ident)*]
        $cf:ident $(, $($rest:tt)*)?) => {
        same_layout!(@munch $rust $c [$($cs)* $cf] [$($rs)* $cf] $($($rest)*)?);
    };
    (@munch $rust:ident $c:ident [$($cs:ident)*] [$($rs:ident)*]) => {
        const _: () = {
            assert!(
                size_of::<$rust>() == size_of::<types::$c>(),
                concat!(stringify!($rust), " is not the size of ", stringify!($c))
            );
            $(assert!(
                offset_of!($rust, $rs) == offset_of!(types::$c, $cs),
                concat!(
                    stringify!($rust), ".", stringify!($rs), " is not where abi.h puts ",
                    stringify!($c), ".", stringify!($cs)
                )
            );
            assert!(
                field_size(|r: &$rust| &r.$rs) == field_size(|c: &types::$c| &c.$cs),
                concat!(
                    stringify!($rust), ".", stringify!($rs), " is not the width of ",
                    stringify!($c), ".", stringify!($cs)
                )
            );)*
        };
        // Exhaustive patterns: both sides have exactly the fields listed.
        const _: fn(&types::$c, &$rust) = |c, r| {
            let types::$c { $($cs: _),* } = c;
            let $rust { $($rs: _),* } = r;
        };
    };
}

same_layout!(Header = bt_header {
    ts_boot_ns, cgroup_id, r#type as kind, pid, tid, ppid, uid, _pad, comm,
});
same_layout!(
    ExecEvent = bt_exec_event {
        hdr,
        argv_len,
        argv_full,
        exe_len,
        exe_depth,
        exe_flags,
        exe_dev,
        exe_ino,
        exe_uid,
        exe_mode,
        argv,
        exe,
        script_len,
        script_depth,
        script_flags,
        env_len,
        env_count,
        env,
        stdio,
        _pad2,
    }
);
same_layout!(
    ForkEvent = bt_fork_event {
        hdr,
        child_pid,
        _pad
    }
);
same_layout!(
    ExitEvent = bt_exit_event {
        hdr,
        exit_code,
        _pad
    }
);
same_layout!(
    FileEvent = bt_file_event {
        hdr,
        ret,
        flags,
        fmode,
        path_flags,
        dev,
        ino,
        path_len,
        path_depth,
        req_len,
        layout,
        syscall,
        action,
        ftype,
        new_off,
        igen,
        path,
    }
);
same_layout!(
    NetEvent = bt_net_event {
        hdr,
        ret,
        family,
        dport,
        sock_type,
        protocol,
        _pad,
        daddr,
    }
);
same_layout!(
    EgressEvent = bt_egress_event {
        hdr,
        rule,
        family,
        dport,
        sock_type,
        protocol,
        action,
        hook,
        _pad,
        daddr,
    }
);
same_layout!(
    EgressCfg = bt_egress_cfg {
        mode,
        allowlist,
        dns_guard
    }
);
same_layout!(Lpm4Key = bt_lpm4_key { prefixlen, addr });
same_layout!(Lpm6Key = bt_lpm6_key { prefixlen, addr });
same_layout!(
    EgressVal = bt_egress_val {
        rule,
        nports,
        ports
    }
);
same_layout!(
    DnsEvent = bt_dns_event {
        hdr,
        name_len,
        naddrs,
        rule_hit,
        cut,
        action,
        server_family,
        _pad,
        rule,
        _pad2,
        server,
        ttl,
        family,
        addr,
        name,
    }
);
same_layout!(DnsKey = bt_dns_key { name });
same_layout!(
    DnsRule = bt_dns_rule {
        val,
        allow,
        exact,
        _pad
    }
);
same_layout!(ObjKey = bt_obj_key { r#type as kind, id });
same_layout!(
    TamperEvent = bt_tamper_event {
        hdr,
        kind,
        cmd,
        obj_type,
        obj_id,
        ret,
        sig,
        sig_result,
        target_tid,
        target_tgid,
        _pad,
    }
);
same_layout!(
    MemEvent = bt_mem_event {
        hdr,
        kind,
        target_pid,
        request,
        ret,
        target_tgid,
        fmode,
        target_comm,
    }
);
same_layout!(
    ServeEvent = bt_serve_event {
        hdr,
        ret,
        family,
        lport,
        rport,
        protocol,
        op,
        _pad,
        laddr,
        raddr,
    }
);
same_layout!(NameKey = bt_name_key { name });
same_layout!(AffixKey = bt_affix_key { len, s });
same_layout!(InodeKey = bt_inode_key { dev, ino });
same_layout!(
    FoldKey = bt_fold_key {
        dev,
        ino,
        tgid,
        access
    }
);
same_layout!(
    FoldVal = bt_fold_val {
        window_start,
        folded
    }
);
same_layout!(
    ShareVal = bt_share_val {
        window_start,
        suppressed,
        in_window,
        _pad
    }
);
same_layout!(
    FileCfg = bt_file_cfg {
        match_all,
        _pad,
        name_lens,
        parent_lens,
        name_last,
        parent_last,
        prefix_first,
        suffix_last,
        prefix_len,
        suffix_len,
    }
);

/// `same_values!(RUST_CONST = c_enum::C_CONST, ...)`.
macro_rules! same_values {
    ($($rust:ident = $enum:ident :: $c:ident),* $(,)?) => {
        const _: () = {
            $(assert!(
                $rust as u64 == types::$enum::$c.0 as u64,
                concat!(stringify!($rust), " is not ", stringify!($c), " of abi.h")
            );)*
        };
    };
}

same_values!(
    COMM_LEN = bt_sizes::BT_COMM_LEN,
    PATH_MASK = bt_sizes::BT_PATH_MASK,
    NAME_MAX = bt_sizes::BT_NAME_MAX,
    PATH_BUF = bt_sizes::BT_PATH_BUF,
    ARGV_BUF = bt_sizes::BT_ARGV_BUF,
    ENV_BUF = bt_sizes::BT_ENV_BUF,
    ENV_ITEM = bt_sizes::BT_ENV_ITEM,
    STDIO_SOCKET = bt_stdio::BT_STDIO_SOCKET,
    KEY_LEN = bt_sizes::BT_KEY_LEN,
    AFFIX_LENS = bt_sizes::BT_AFFIX_LENS,
    AFFIX_MAX = bt_sizes::BT_AFFIX_MAX,
    INODE_HINTS = bt_sizes::BT_INODE_HINTS,
    EGRESS_PORTS = bt_sizes::BT_EGRESS_PORTS,
    DNS_NAME = bt_sizes::BT_DNS_NAME,
    DNS_ADDRS = bt_sizes::BT_DNS_ADDRS,
    EV_EXEC = bt_ev_type::BT_EV_EXEC,
    EV_FORK = bt_ev_type::BT_EV_FORK,
    EV_EXIT = bt_ev_type::BT_EV_EXIT,
    EV_FILE = bt_ev_type::BT_EV_FILE,
    EV_NET = bt_ev_type::BT_EV_NET,
    EV_MEM = bt_ev_type::BT_EV_MEM,
    EV_EGRESS = bt_ev_type::BT_EV_EGRESS,
    EV_DNS = bt_ev_type::BT_EV_DNS,
    EV_TAMPER = bt_ev_type::BT_EV_TAMPER,
    EV_SOCKET = bt_ev_type::BT_EV_SOCKET,
    EV_SERVE = bt_ev_type::BT_EV_SERVE,
    SERVE_LISTEN = bt_serve_op::BT_SERVE_LISTEN,
    SERVE_ACCEPT = bt_serve_op::BT_SERVE_ACCEPT,
    AF_INET = bt_af::BT_AF_INET,
    AF_INET6 = bt_af::BT_AF_INET6,
    AF_PACKET = bt_af::BT_AF_PACKET,
    PATH_TRUNCATED = bt_path_flags::BT_PATH_TRUNCATED,
    PATH_DETACHED = bt_path_flags::BT_PATH_DETACHED,
    PATH_CWD = bt_path_flags::BT_PATH_CWD,
    PATH_RESOLVED = bt_path_layout::BT_PATH_RESOLVED,
    PATH_REQUESTED = bt_path_layout::BT_PATH_REQUESTED,
    FILE_OBSERVED = bt_file_action::BT_FILE_OBSERVED,
    FILE_KILLED = bt_file_action::BT_FILE_KILLED,
    FILE_FREED = bt_file_action::BT_FILE_FREED,
    SYS_OPENAT = bt_open_sys::BT_SYS_OPENAT,
    SYS_OPENAT2 = bt_open_sys::BT_SYS_OPENAT2,
    SYS_OPEN = bt_open_sys::BT_SYS_OPEN,
    SYS_LINK = bt_open_sys::BT_SYS_LINK,
    SYS_LINKAT = bt_open_sys::BT_SYS_LINKAT,
    SYS_RENAME = bt_open_sys::BT_SYS_RENAME,
    SYS_RENAMEAT = bt_open_sys::BT_SYS_RENAMEAT,
    SYS_RENAMEAT2 = bt_open_sys::BT_SYS_RENAMEAT2,
    PATH_MOVED = bt_path_layout::BT_PATH_MOVED,
    PATH_NEW_TRUNCATED = bt_path_flags::BT_PATH_NEW_TRUNCATED,
    FILE_HEAD = bt_file_head::BT_FILE_HEAD,
    INODE_WATCH = bt_inode_bits::BT_INODE_WATCH,
    INODE_KILL = bt_inode_bits::BT_INODE_KILL,
    MEM_PTRACE = bt_mem_kind::BT_MEM_PTRACE,
    MEM_VM_READV = bt_mem_kind::BT_MEM_VM_READV,
    MEM_VM_WRITEV = bt_mem_kind::BT_MEM_VM_WRITEV,
    MEM_PROC_MEM = bt_mem_kind::BT_MEM_PROC_MEM,
    MEM_PROC_ENVIRON = bt_mem_kind::BT_MEM_PROC_ENVIRON,
    MEM_PROC_MAPS = bt_mem_kind::BT_MEM_PROC_MAPS,
    MEM_PROC_SMAPS = bt_mem_kind::BT_MEM_PROC_SMAPS,
    MEM_PROC_SMAPS_ROLLUP = bt_mem_kind::BT_MEM_PROC_SMAPS_ROLLUP,
    MEM_PROC_PAGEMAP = bt_mem_kind::BT_MEM_PROC_PAGEMAP,
    MEM_CORE_LIMIT = bt_mem_kind::BT_MEM_CORE_LIMIT,
    MEM_CORE_SIGNAL = bt_mem_kind::BT_MEM_CORE_SIGNAL,
    TAMPER_BPF = bt_tamper_kind::BT_TAMPER_BPF,
    TAMPER_SIGNAL = bt_tamper_kind::BT_TAMPER_SIGNAL,
    OBJ_MAP = bt_obj_type::BT_OBJ_MAP,
    OBJ_PROG = bt_obj_type::BT_OBJ_PROG,
    OBJ_LINK = bt_obj_type::BT_OBJ_LINK,
    ACT_OBSERVED = bt_egress_action::BT_ACT_OBSERVED,
    ACT_BLOCKED = bt_egress_action::BT_ACT_BLOCKED,
    ACT_WOULD_BLOCK = bt_egress_action::BT_ACT_WOULD_BLOCK,
    HOOK_CONNECT = bt_egress_hook::BT_HOOK_CONNECT,
    HOOK_SENDMSG = bt_egress_hook::BT_HOOK_SENDMSG,
    HOOK_PACKET = bt_egress_hook::BT_HOOK_PACKET,
    HOOK_RAW_CONNECT = bt_egress_hook::BT_HOOK_RAW_CONNECT,
    HOOK_DEVICE = bt_egress_hook::BT_HOOK_DEVICE,
    RULE_NOT_ALLOWED = bt_egress_rule::BT_RULE_NOT_ALLOWED,
    RULE_DNS_TCP = bt_egress_rule::BT_RULE_DNS_TCP,
    RULE_DNS_UNKNOWN = bt_egress_rule::BT_RULE_DNS_UNKNOWN,
    MODE_OFF = bt_egress_mode::BT_MODE_OFF,
    MODE_AUDIT = bt_egress_mode::BT_MODE_AUDIT,
    MODE_BLOCK = bt_egress_mode::BT_MODE_BLOCK,
    DNS_WHOLE = bt_dns_cut::BT_DNS_WHOLE,
    DNS_CUT_COUNT = bt_dns_cut::BT_DNS_CUT_COUNT,
    DNS_CUT_SIZE = bt_dns_cut::BT_DNS_CUT_SIZE,
    DNS_CUT_MALFORMED = bt_dns_cut::BT_DNS_CUT_MALFORMED,
    FOLD_WINDOW_MS = bt_fold::BT_FOLD_WINDOW_MS,
    SHARE_PER_WINDOW = bt_fold::BT_SHARE_PER_WINDOW,
    FOLD_ENTRIES = bt_fold::BT_FOLD_ENTRIES,
    SHARE_ENTRIES = bt_fold::BT_SHARE_ENTRIES,
    SYS_OPEN_BY_HANDLE_AT = bt_open_sys::BT_SYS_OPEN_BY_HANDLE_AT,
    SYS_PIDFD_GETFD = bt_open_sys::BT_SYS_PIDFD_GETFD,
    SYS_IO_URING_OPENAT = bt_open_sys::BT_SYS_IO_URING_OPENAT,
    SYS_COMPAT_OPEN = bt_open_sys::BT_SYS_COMPAT_OPEN,
    SYS_IO_URING_SETUP = bt_open_sys::BT_SYS_IO_URING_SETUP,
    SYS_FANOTIFY_INIT = bt_open_sys::BT_SYS_FANOTIFY_INIT,
    SYS_FANOTIFY_MARK = bt_open_sys::BT_SYS_FANOTIFY_MARK,
    SYS_CREAT = bt_open_sys::BT_SYS_CREAT,
);
