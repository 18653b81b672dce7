//! The memory family: ptrace, process_vm_readv/writev, opens of another
//! process's /proc mem, environ and memory-layout files (maps, smaps,
//! smaps_rollup, pagemap), and the core-dump route (RLIMIT_CORE raised on
//! another process, a core-dumping signal sent to it).

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
    let (kind, mut severity) = kind_and_severity(e.kind, own_descendant)?;
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
    let request = match e.kind {
        abi::MEM_PTRACE => Some(ptrace_request_name(e.request)),
        abi::MEM_CORE_LIMIT => Some(core_limit_text(e.request)),
        abi::MEM_CORE_SIGNAL => Some(core_signal_name(e.request)),
        _ => None,
    };
    let detail = Detail::Memory {
        kind,
        target_pid: e.target_pid,
        target_comm,
        result: result_text(e.ret),
        request,
        target_secret_env,
        proc_file: proc_file(e.kind),
    };
    Some(cx.enrich.base(&e.hdr, severity, detail))
}

/// The event's kind and severity for a record's kind; None for a kind this
/// build does not know. Every view of the memory layout (maps, smaps,
/// smaps_rollup, pagemap) is the maps-listing step a dump starts with, so
/// all are `proc_maps` (`proc_file` says which): one rule covers them all.
fn kind_and_severity(kind: u32, own_descendant: bool) -> Option<(&'static str, Severity)> {
    let milder = |mild, harsh| if own_descendant { mild } else { harsh };
    Some(match kind {
        abi::MEM_PTRACE => ("ptrace", milder(Severity::Warning, Severity::Critical)),
        abi::MEM_VM_READV => (
            "process_vm_readv",
            milder(Severity::High, Severity::Critical),
        ),
        abi::MEM_VM_WRITEV => ("process_vm_writev", Severity::Critical),
        abi::MEM_PROC_MEM => ("proc_mem", milder(Severity::High, Severity::Critical)),
        abi::MEM_PROC_ENVIRON => ("proc_environ", Severity::High),
        abi::MEM_PROC_MAPS
        | abi::MEM_PROC_SMAPS
        | abi::MEM_PROC_SMAPS_ROLLUP
        | abi::MEM_PROC_PAGEMAP => ("proc_maps", Severity::Warning),
        // Raising another process's core limit has no use but making it
        // dump its memory to a file.
        abi::MEM_CORE_LIMIT => ("core_limit", Severity::High),
        abi::MEM_CORE_SIGNAL => ("core_signal", milder(Severity::Warning, Severity::High)),
        _ => return None,
    })
}

/// The /proc/<pid> file of a /proc kind.
fn proc_file(kind: u32) -> Option<&'static str> {
    Some(match kind {
        abi::MEM_PROC_MEM => "mem",
        abi::MEM_PROC_ENVIRON => "environ",
        abi::MEM_PROC_MAPS => "maps",
        abi::MEM_PROC_SMAPS => "smaps",
        abi::MEM_PROC_SMAPS_ROLLUP => "smaps_rollup",
        abi::MEM_PROC_PAGEMAP => "pagemap",
        _ => return None,
    })
}

/// The soft core limit asked for: `RLIMIT_CORE=unlimited` or a byte count.
fn core_limit_text(limit: i64) -> String {
    if limit == -1 {
        "RLIMIT_CORE=unlimited".into()
    } else {
        format!("RLIMIT_CORE={}", limit as u64)
    }
}

/// The name of a core-dumping signal.
fn core_signal_name(sig: i64) -> String {
    match sig {
        3 => "SIGQUIT".into(),
        4 => "SIGILL".into(),
        5 => "SIGTRAP".into(),
        6 => "SIGABRT".into(),
        7 => "SIGBUS".into(),
        8 => "SIGFPE".into(),
        11 => "SIGSEGV".into(),
        24 => "SIGXCPU".into(),
        25 => "SIGXFSZ".into(),
        31 => "SIGSYS".into(),
        n => format!("signal {n}"),
    }
}

/// Names (never values) of the target's environment variables that the
/// policy calls secret: what a reader of its environ could have taken.
fn secret_env_names(policy: &Policy, pid: u32) -> Vec<String> {
    // The read waits for the target's memory-map lock, which the target
    // can hold as long as it likes (see fsafe::lookout).
    use crate::fsafe::lookout;
    let read = lookout::shared().run(
        &format_args!("reading /proc/{pid}/environ"),
        lookout::WHILE_RUNNING,
        move || {
            crate::pipeline::proctable::read_proc_file(
                pid,
                "environ",
                crate::pipeline::proctable::ENVIRON_MAX,
            )
        },
    );
    let Ok(Ok(env)) = read else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_memory_layout_file_is_the_maps_listing_step_named_by_its_file() {
        for (kind, file) in [
            (abi::MEM_PROC_MAPS, "maps"),
            (abi::MEM_PROC_SMAPS, "smaps"),
            (abi::MEM_PROC_SMAPS_ROLLUP, "smaps_rollup"),
            (abi::MEM_PROC_PAGEMAP, "pagemap"),
        ] {
            assert_eq!(
                kind_and_severity(kind, false),
                Some(("proc_maps", Severity::Warning))
            );
            assert_eq!(proc_file(kind), Some(file));
        }
        assert_eq!(proc_file(abi::MEM_PROC_MEM), Some("mem"));
        assert_eq!(proc_file(abi::MEM_PROC_ENVIRON), Some("environ"));
        assert_eq!(proc_file(abi::MEM_PTRACE), None);
        assert_eq!(proc_file(abi::MEM_CORE_LIMIT), None);
    }

    #[test]
    fn the_core_dump_route_is_judged_and_named() {
        assert_eq!(
            kind_and_severity(abi::MEM_CORE_LIMIT, true),
            Some(("core_limit", Severity::High))
        );
        assert_eq!(
            kind_and_severity(abi::MEM_CORE_SIGNAL, false),
            Some(("core_signal", Severity::High))
        );
        assert_eq!(
            kind_and_severity(abi::MEM_CORE_SIGNAL, true),
            Some(("core_signal", Severity::Warning))
        );
        assert_eq!(core_limit_text(-1), "RLIMIT_CORE=unlimited");
        assert_eq!(core_limit_text(4096), "RLIMIT_CORE=4096");
        assert_eq!(core_signal_name(11), "SIGSEGV");
        assert_eq!(core_signal_name(6), "SIGABRT");
        assert_eq!(core_signal_name(40), "signal 40");
        assert_eq!(kind_and_severity(99, false), None);
    }
}
