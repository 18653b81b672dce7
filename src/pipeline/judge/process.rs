//! The process family: execs and exits keep the process table current
//! and, with `--probe-type all`, are events themselves. An exec of a file
//! no directory names (a memfd) is a warning whatever the probe type; a
//! script run directly, or named to an interpreter, is named in `script`.

use crate::abi;
use crate::event::{Detail, Event, Severity};
use crate::pipeline::programs::ExeId;

use super::Cx;

/// An exec: the table learns the new program (and the inode it ran);
/// shown as an event with `show`.
pub fn exec(cx: &mut Cx, show: bool, e: &abi::ExecEvent) -> Option<Event> {
    let exe_len = (e.exe_len as usize).min(abi::PATH_BUF);
    let fileless = e.exe_flags & abi::PATH_DETACHED != 0;
    let exe = if e.exe_depth == 0 {
        String::new()
    } else if fileless {
        // The dentry name alone ("memfd:<name>"), which no path leads to.
        abi::cstr(&e.exe[..exe_len])
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
    let cwd_at = exe_len + e.script_len as usize;
    let script = kernel_script(e, exe_len)
        .or_else(|| interpreter_script(kernel_cwd(e, cwd_at), e.hdr.pid, &exe, &argv));
    // A script read from a descriptor (bash <(curl ...), a memfd run as
    // /proc/self/fd/N): no file any directory names was run either.
    let fileless = fileless || script.as_deref().is_some_and(names_a_descriptor);
    cx.enrich
        .table
        .on_exec(e.hdr.pid, e.hdr.ppid, comm, exe, id);
    if !show && !fileless {
        return None;
    }
    let truncated = e.argv_full > e.argv_len;
    let severity = if fileless {
        Severity::Warning
    } else {
        Severity::Info
    };
    let (loader_env, env_cut) = loader_env(e);
    let detail = Detail::Process {
        kind: "exec",
        argv,
        argv_truncated: truncated.then_some(true),
        exit_code: None,
        script,
        fileless: fileless.then_some(true),
        dropped: None,
        sha256: None,
        loader_env,
        loader_env_truncated: env_cut.then_some(true),
        stdio_socket: (e.stdio & abi::STDIO_SOCKET != 0).then_some(true),
    };
    Some(cx.enrich.base(&e.hdr, severity, detail))
}

/// The script the kernel ran an interpreter for: the name exec was given,
/// which the kernel sent after the exe's components, made absolute with
/// the working directory when relative.
fn kernel_script(e: &abi::ExecEvent, exe_len: usize) -> Option<String> {
    let len = e.script_len as usize;
    if len == 0 {
        return None;
    }
    let end = exe_len.checked_add(len)?.min(e.exe.len());
    let name = abi::cstr(e.exe.get(exe_len..end)?);
    if name.is_empty() {
        return None;
    }
    // A name as long as the kernel reads may have been cut.
    let name = if len >= abi::NAME_MAX {
        format!("{name}...")
    } else {
        name
    };
    if name.starts_with('/') {
        return Some(name);
    }
    Some(abi::resolve_lexically(&kernel_cwd(e, end)?, &name))
}

/// The working directory the kernel had at exec, sent from `start` on
/// (after the exe's components and the script's name).
fn kernel_cwd(e: &abi::ExecEvent, start: usize) -> Option<String> {
    if e.script_flags & abi::PATH_CWD == 0 {
        return None;
    }
    // script_depth components, each NUL-terminated, leaf first.
    let mut at = start;
    for _ in 0..e.script_depth {
        let rest = e.exe.get(at..)?;
        at += rest.iter().position(|&b| b == 0)? + 1;
    }
    let cut = e.script_flags & abi::PATH_TRUNCATED != 0;
    Some(abi::join_components(&e.exe, start, at, cut).0)
}

/// A path that names an open descriptor, not a file: /dev/fd/N,
/// /proc/self/fd/N, /proc/<pid>/fd/N.
fn names_a_descriptor(path: &str) -> bool {
    if path.starts_with("/dev/fd/") {
        return true;
    }
    let mut c = path.split('/').skip(1);
    c.next() == Some("proc") && c.next().is_some() && c.next() == Some("fd")
}

/// Programs that run the file named by their first operand.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "python", "python2", "python3",
    "perl", "ruby", "node", "php", "lua", "tclsh",
];

/// The script an interpreter was named to run (`bash /tmp/x.sh`): its first
/// operand, unless an option says the program text is an argument (`-c`,
/// `-e`, `-m` ...). Judged by the executable, never by comm; a relative
/// operand is made absolute with the working directory the kernel sent
/// (`cwd`), else the one /proc shows while the process lives.
fn interpreter_script(cwd: Option<String>, pid: u32, exe: &str, argv: &[String]) -> Option<String> {
    let base = exe.rsplit('/').next()?;
    let versioned = base
        .strip_prefix("python3.")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit()));
    if !INTERPRETERS.contains(&base) && !versioned {
        return None;
    }
    let mut ops = argv.iter().skip(1);
    let operand = loop {
        let a = ops.next()?;
        if a == "--" {
            break ops.next()?;
        }
        if !a.starts_with('-') || a == "-" {
            break a;
        }
        if matches!(
            a.as_str(),
            "-c" | "-e" | "-E" | "-m" | "-r" | "--eval" | "--command"
        ) || (a.len() > 2 && !a.starts_with("--") && a.ends_with('c'))
        {
            return None; // the program is an argument, not a file
        }
    };
    if operand == "-" || operand.is_empty() {
        return None;
    }
    if operand.starts_with('/') {
        return Some(abi::resolve_lexically("/", operand));
    }
    let cwd = match cwd {
        Some(c) => c,
        None => crate::escape::decode_path(&std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?),
    };
    Some(abi::resolve_lexically(&cwd, operand))
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
            script: None,
            fileless: None,
            dropped: None,
            sha256: None,
            loader_env: Vec::new(),
            loader_env_truncated: None,
            stdio_socket: None,
        };
        cx.enrich.base(&e.hdr, Severity::Info, detail)
    });
    cx.enrich.table.on_exit(e.hdr.pid);
    ev
}

/// The loader's variables of an exec record, and whether the list is cut
/// (fewer whole entries than the kernel counted: it counts one more when
/// an entry was cut or the scan stopped early). Only an entry ended by its
/// NUL is whole.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An all-zero exec record with `exe` bytes at the start of its buffer.
    fn exec_with(buf: &[u8]) -> Box<abi::ExecEvent> {
        let mut b = vec![0u8; std::mem::size_of::<abi::ExecEvent>()];
        b[16..20].copy_from_slice(&abi::EV_EXEC.to_ne_bytes());
        let abi::Raw::Exec(mut e) = abi::decode(&b).unwrap() else {
            panic!("not an exec");
        };
        e.exe[..buf.len()].copy_from_slice(buf);
        e
    }

    #[test]
    fn a_script_named_relative_is_joined_to_the_working_directory() {
        // exe /bin/sh (leaf first), then "./x.sh", then the cwd /tmp/job.
        let exe = b"sh\0bin\0";
        let mut buf = exe.to_vec();
        buf.extend_from_slice(b"./x.sh\0job\0tmp\0");
        let mut e = exec_with(&buf);
        e.script_len = 7;
        e.script_depth = 2;
        e.script_flags = abi::PATH_CWD;
        assert_eq!(
            kernel_script(&e, exe.len()).as_deref(),
            Some("/tmp/job/x.sh")
        );
        // No script: none.
        e.script_len = 0;
        assert_eq!(kernel_script(&e, exe.len()), None);
    }

    #[test]
    fn an_absolute_or_cut_script_name_is_kept_as_given() {
        let exe = b"sh\0bin\0";
        let mut buf = exe.to_vec();
        buf.extend_from_slice(b"/tmp/a/../x.sh\0");
        let mut e = exec_with(&buf);
        e.script_len = 15;
        assert_eq!(
            kernel_script(&e, exe.len()).as_deref(),
            Some("/tmp/a/../x.sh")
        );
        // As long as the kernel reads: maybe cut.
        let long = format!("/{}", "a".repeat(abi::NAME_MAX - 2));
        let mut buf = exe.to_vec();
        buf.extend_from_slice(long.as_bytes());
        buf.push(0);
        let mut e = exec_with(&buf);
        e.script_len = abi::NAME_MAX as u16;
        assert_eq!(kernel_script(&e, exe.len()), Some(format!("{long}...")));
        // Lengths past the buffer, or components that never end, are no
        // panic.
        e.script_len = u16::MAX;
        assert_eq!(kernel_script(&e, abi::PATH_BUF), None);
        let mut e = exec_with(b"sh\0bin\0x\0job\0");
        e.script_len = 2;
        e.script_depth = u16::MAX;
        e.script_flags = abi::PATH_CWD;
        assert_eq!(kernel_script(&e, 7), None, "more components than bytes");
    }

    #[test]
    fn a_script_read_from_a_descriptor_names_one() {
        for p in ["/dev/fd/63", "/proc/self/fd/3", "/proc/123/fd/4"] {
            assert!(names_a_descriptor(p), "{p}");
        }
        for p in [
            "/tmp/x.sh",
            "/proc/self/exe",
            "/proc",
            "/dev/full",
            "/procx/1/fd/3",
        ] {
            assert!(!names_a_descriptor(p), "{p}");
        }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_interpreters_script_operand_is_its_script() {
        let me = std::process::id();
        let s = |exe: &str, a: &[&str]| interpreter_script(None, me, exe, &argv(a));
        assert_eq!(
            s("/usr/bin/bash", &["bash", "/tmp/x.sh"]).as_deref(),
            Some("/tmp/x.sh")
        );
        assert_eq!(
            s("/usr/bin/dash", &["sh", "-x", "--", "/tmp/a/../y.sh"]).as_deref(),
            Some("/tmp/y.sh")
        );
        assert_eq!(
            s("/usr/bin/python3.11", &["python3", "/var/tmp/p.py"]).as_deref(),
            Some("/var/tmp/p.py")
        );
        // Relative: joined to the process's working directory.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            s("/bin/sh", &["sh", "rel.sh"]),
            Some(format!("{}/rel.sh", cwd.display()))
        );
        // The kernel's directory first: the process may be gone.
        assert_eq!(
            interpreter_script(
                Some("/tmp/job".into()),
                me,
                "/bin/sh",
                &argv(&["sh", "../x.sh"])
            )
            .as_deref(),
            Some("/tmp/x.sh")
        );
        // The program is an argument, or read from stdin: no script.
        for a in [
            &["bash", "-c", "/tmp/x.sh"][..],
            &["sh", "-ec", "true"],
            &["python3", "-m", "http.server"],
            &["perl", "-e", "1"],
            &["bash"],
            &["bash", "-"],
        ] {
            assert_eq!(s("/usr/bin/bash", a), None, "{a:?}");
        }
        // Not an interpreter (by executable, not comm): none.
        assert_eq!(s("/usr/bin/cat", &["bash", "/tmp/x.sh"]), None);
        assert_eq!(s("/tmp/python3.x", &["python3", "/tmp/x.sh"]), None);
    }

    /// An exec record whose env holds `env` and whose kernel count is `count`.
    fn with_env(env: &[u8], count: u32) -> Box<abi::ExecEvent> {
        let mut e = exec_with(b"");
        e.env[..env.len()].copy_from_slice(env);
        e.env_len = env.len() as u32;
        e.env_count = count;
        e
    }

    #[test]
    fn loader_variables_are_whole_entries_and_a_higher_count_says_cut() {
        let whole = b"LD_PRELOAD=/tmp/a.so\0LD_AUDIT=/x\0";
        let (v, cut) = loader_env(&with_env(whole, 2));
        assert_eq!(v, ["LD_PRELOAD=/tmp/a.so", "LD_AUDIT=/x"]);
        assert!(!cut);
        // The kernel's one more: a value cut, or the scan stopped early.
        assert_eq!(loader_env(&with_env(whole, 3)), (v, true));
        // The record full: the last entry has no NUL and is not shown.
        let (v, cut) = loader_env(&with_env(b"LD_AUDIT=/x\0LD_PRE", 2));
        assert_eq!(
            (v.as_slice(), cut),
            (&["LD_AUDIT=/x".to_string()][..], true)
        );
        // Nothing read, something there (a variable behind 512 others).
        assert_eq!(loader_env(&with_env(b"", 1)), (Vec::new(), true));
        assert_eq!(loader_env(&with_env(b"", 0)), (Vec::new(), false));
    }
}
