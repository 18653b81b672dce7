//! The memory family: ptrace, process_vm_readv/writev and opens of another
//! process's /proc mem, environ and maps.

use super::result_text;
use crate::abi;
use crate::event::{Detail, Event, Severity};
use crate::policy::Policy;

use super::Cx;

/// The target's name: the kernel's, else the table's, else /proc's.
fn target_comm(cx: &mut Cx, e: &abi::MemEvent, target_tgid: u32) -> String {
    let mut comm = abi::cstr(&e.target_comm);
    if comm.is_empty() {
        comm = cx
            .enrich
            .table
            .get_or_load(target_tgid)
            .map(|p| p.comm.clone())
            .unwrap_or_default();
    }
    if comm.is_empty() {
        comm = crate::pipeline::proctable::read_proc_file(e.target_pid, "comm", 64)
            .map(|b| crate::escape::decode(b.strip_suffix(b"\n").unwrap_or(&b)))
            .unwrap_or_default();
    }
    comm
}

/// A memory access, judged: a stranger's memory is critical, a debugger's
/// own descendant less so; environ reads name the secrets they exposed.
pub fn judge(cx: &mut Cx, e: &abi::MemEvent) -> Option<Event> {
    if cx.is_peer_activity(e.hdr.pid) {
        return None;
    }
    let excluded = &cx.policy.exclude_processes;
    if cx.enrich.runs_program(e.hdr.pid, excluded) {
        cx.stats.filtered += 1;
        return None;
    }
    let target_tgid = if e.target_tgid != 0 {
        e.target_tgid
    } else {
        e.target_pid
    };
    let target_comm = target_comm(cx, e, target_tgid);
    // The target's own child or descendant being inspected is how debuggers
    // and test runners work; a stranger's memory is the attack.
    let own_descendant = cx.enrich.table.is_ancestor(e.hdr.pid, target_tgid);
    let (kind, mut severity) = match e.kind {
        abi::MEM_PTRACE => (
            "ptrace",
            if own_descendant {
                Severity::Warning
            } else {
                Severity::Critical
            },
        ),
        abi::MEM_VM_READV => (
            "process_vm_readv",
            if own_descendant {
                Severity::High
            } else {
                Severity::Critical
            },
        ),
        abi::MEM_VM_WRITEV => ("process_vm_writev", Severity::Critical),
        abi::MEM_PROC_MEM => (
            "proc_mem",
            if own_descendant {
                Severity::High
            } else {
                Severity::Critical
            },
        ),
        abi::MEM_PROC_ENVIRON => ("proc_environ", Severity::High),
        abi::MEM_PROC_MAPS => ("proc_maps", Severity::Warning),
        _ => return None,
    };
    let mut target_secret_env = Vec::new();
    if e.kind == abi::MEM_PROC_ENVIRON {
        target_secret_env = secret_env_names(cx.policy, target_tgid);
        if !target_secret_env.is_empty() {
            severity = Severity::Critical;
        }
    }
    if !cx.policy.alert_on_memory_access {
        severity = Severity::Info;
    }
    let request = (e.kind == abi::MEM_PTRACE).then(|| ptrace_request_name(e.request));
    let detail = Detail::Memory {
        kind,
        target_pid: e.target_pid,
        target_comm,
        result: result_text(e.ret),
        request,
        target_secret_env,
    };
    Some(cx.enrich.base(&e.hdr, severity, detail))
}

/// Names (never values) of the target's environment variables that the
/// policy calls secret: what a reader of its environ could have taken.
fn secret_env_names(policy: &Policy, pid: u32) -> Vec<String> {
    let read = crate::pipeline::proctable::read_proc_file(
        pid,
        "environ",
        crate::pipeline::proctable::ENVIRON_MAX,
    );
    let Ok(env) = read else {
        return Vec::new();
    };
    let mut names: Vec<String> = env
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let eq = kv.iter().position(|&b| b == b'=')?;
            let name = std::str::from_utf8(&kv[..eq]).ok()?;
            policy.is_secret_env_name(name).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names.truncate(32);
    names
}

pub fn ptrace_request_name(r: i64) -> String {
    match r {
        1 => "PTRACE_PEEKTEXT".into(),
        2 => "PTRACE_PEEKDATA".into(),
        3 => "PTRACE_PEEKUSER".into(),
        4 => "PTRACE_POKETEXT".into(),
        5 => "PTRACE_POKEDATA".into(),
        6 => "PTRACE_POKEUSER".into(),
        12 => "PTRACE_GETREGS".into(),
        13 => "PTRACE_SETREGS".into(),
        14 => "PTRACE_GETFPREGS".into(),
        15 => "PTRACE_SETFPREGS".into(),
        16 => "PTRACE_ATTACH".into(),
        0x4204 => "PTRACE_GETREGSET".into(),
        0x4205 => "PTRACE_SETREGSET".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        n => format!("ptrace request {n}"),
    }
}
