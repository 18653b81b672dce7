//! The process family: execs and exits keep the process table current
//! and, with `--probe-type all`, are events themselves.

use crate::abi;
use crate::event::{Detail, Event, Severity};
use crate::pipeline::programs::ExeId;

use super::Cx;

/// An exec: the table learns the new program (and the inode it ran);
/// shown as an event with `show`.
pub fn exec(cx: &mut Cx, show: bool, e: &abi::ExecEvent) -> Option<Event> {
    let exe_len = (e.exe_len as usize).min(abi::PATH_BUF);
    let exe = if e.exe_depth == 0 {
        String::new()
    } else {
        abi::join_components(&e.exe, 0, exe_len, e.exe_flags & abi::PATH_TRUNCATED != 0).0
    };
    let argv = abi::split_argv(&e.argv, e.argv_len as usize);
    let comm = abi::cstr(&e.hdr.comm);
    let id = (e.exe_ino != 0).then_some(ExeId {
        dev: e.exe_dev,
        ino: e.exe_ino,
        uid: e.exe_uid,
        mode: e.exe_mode,
    });
    cx.enrich
        .table
        .on_exec(e.hdr.pid, e.hdr.ppid, comm, exe, id);
    if !show {
        return None;
    }
    let truncated = e.argv_full > e.argv_len;
    let (loader_env, env_cut) = loader_env(e);
    let detail = Detail::Process {
        kind: "exec",
        argv,
        argv_truncated: truncated.then_some(true),
        exit_code: None,
        loader_env,
        loader_env_truncated: env_cut.then_some(true),
        stdio_socket: (e.stdio & abi::STDIO_SOCKET != 0).then_some(true),
    };
    Some(cx.enrich.base(&e.hdr, Severity::Info, detail))
}

/// An exit: the table forgets the process (after a while); shown as an
/// event with `show`.
pub fn exit(cx: &mut Cx, show: bool, e: &abi::ExitEvent) -> Option<Event> {
    let ev = show.then(|| {
        let code = e.exit_code;
        let status = if code & 0x7f == 0 {
            (code >> 8) & 0xff
        } else {
            128 + (code & 0x7f)
        };
        let detail = Detail::Process {
            kind: "exit",
            argv: Vec::new(),
            argv_truncated: None,
            exit_code: Some(status),
            loader_env: Vec::new(),
            loader_env_truncated: None,
            stdio_socket: None,
        };
        cx.enrich.base(&e.hdr, Severity::Info, detail)
    });
    cx.enrich.table.on_exit(e.hdr.pid);
    ev
}

/// The loader's variables of an exec record, and whether some did not fit
/// (fewer whole entries than the kernel counted). Only an entry ended by
/// its NUL is whole.
fn loader_env(e: &abi::ExecEvent) -> (Vec<String>, bool) {
    let bytes = &e.env[..(e.env_len as usize).min(abi::ENV_BUF)];
    let whole = bytes.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
    let vars: Vec<String> = bytes[..whole]
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let cut = e.env_count as usize > vars.len();
    (vars, cut)
}
