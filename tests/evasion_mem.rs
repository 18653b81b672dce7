//! Evasions of the memory and program sensors, for real, each done by an
//! unprivileged job (uid 65534): the memory layout listed through smaps,
//! smaps_rollup or pagemap instead of maps; a process's memory dumped to a
//! core file (prlimit RLIMIT_CORE, then a fatal signal); a program run from
//! a memfd; a downloaded script run directly or by its interpreter; a
//! process or binary named ssh reading a key.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const NOBODY: u32 = 65534;

/// A directory of the scratch dir that uid 65534 owns: the job's working
/// directory.
fn job_dir(s: &Scratch, name: &str) -> std::path::PathBuf {
    let d = s.path(name);
    std::fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(NOBODY), Some(NOBODY)).unwrap();
    d
}

/// Runs argv[1..] in a grandchild reparented to init (setsid, double
/// fork), so its events are a trace of their own: every process on this
/// host may share the test's trace, and a rule fires once per trace. The
/// grandchild's pid is the first line of stdout, its own stdout follows;
/// returns when its stdout closes.
const DETACHED: &str = r#"
import os, sys
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        os.write(w, f"{os.getpid()}\n".encode())
        os.dup2(w, 1)
        os.close(w)
        os.execvp(sys.argv[1], sys.argv[1:])
    os._exit(0)
os.close(w)
os.wait()
out = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
"#;

/// Runs `argv` as uid 65534 in `dir` in a trace of its own (`DETACHED`);
/// returns the pid of the process that ran it and its stdout.
fn detached(argv: &[&str], dir: &Path) -> (u32, String) {
    let (_, out) = as_nobody(
        Command::new("/usr/bin/python3")
            .args(["-c", DETACHED])
            .args(argv),
        dir,
    );
    let (pid, rest) = out.split_once('\n').expect("the grandchild's pid");
    (pid.parse().unwrap(), rest.to_string())
}

/// Runs `cmd` as uid/gid 65534 in `dir`; returns its pid and stdout.
fn as_nobody(cmd: &mut Command, dir: &Path) -> (u32, String) {
    let child = cmd
        .current_dir(dir)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the job's command failed: {cmd:?}");
    (pid, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first event of `kind` from `pid`'s tree that `pred` accepts.
fn own<'a>(events: &'a [Value], kind: &str, pid: u32, pred: &dyn Fn(&Value) -> bool) -> &'a Value {
    from_tree(events, kind, pid)
        .into_iter()
        .find(|e| pred(e))
        .unwrap_or_else(|| {
            panic!(
                "no such {kind} event of {pid}'s tree:\n{}",
                describe(events)
            )
        })
}

/// The signal of `rule` raised for the trace `ev` belongs to (its root is
/// `ev`'s process or one of its ancestors): other runs on the host may
/// raise the same rule in their own traces.
fn signal_for<'a>(events: &'a [Value], rule: &str, ev: &Value) -> &'a Value {
    events
        .iter()
        .filter(|g| g["type"] == "signal" && g["rule"] == rule)
        .find(|g| in_tree(ev, g["root"]["pid"].as_u64().unwrap() as u32))
        .unwrap_or_else(|| panic!("no {rule} signal for {ev}:\n{}", describe(events)))
}

fn names(g: &Value, ev: &Value) -> bool {
    g["events"]
        .as_array()
        .is_some_and(|v| v.contains(&ev["id"]))
}

/// Forks a child that sleeps, opens /proc/<child>/<argv[1]> and reads it,
/// then, when argv[2] is "mem", opens the child's memory; prints the
/// child's pid.
const LAYOUT_THEN_MEM: &str = r#"
import os, sys, time
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
try:
    open(f"/proc/{pid}/{sys.argv[1]}", "rb").read(4096)
    if sys.argv[2] == "mem":
        open(f"/proc/{pid}/mem", "rb").close()
finally:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(pid)
"#;

#[test]
fn smaps_smaps_rollup_and_pagemap_are_the_maps_listing_step_of_a_memory_dump() {
    if !root_or_skip("smaps_smaps_rollup_and_pagemap_are_the_maps_listing_step_of_a_memory_dump") {
        return;
    }
    let s = Scratch::new("evasion-smaps");
    let dir = job_dir(&s, "job");
    let mon = Monitor::start(&s.0, &["--probe-type", "memory_monitor"]);
    // Each in a trace of its own: a rule fires once per trace.
    let runs: Vec<(&str, u32, u32)> = [("smaps", "mem"), ("smaps_rollup", "-"), ("pagemap", "-")]
        .into_iter()
        .map(|(file, then)| {
            let (pid, out) = detached(
                &["/usr/bin/python3", "-c", LAYOUT_THEN_MEM, file, then],
                &dir,
            );
            (file, pid, out.trim().parse().unwrap())
        })
        .collect();
    let events = mon.stop();

    for &(file, pid, target) in &runs {
        let e = own(&events, "memory", pid, &|e| {
            e["kind"] == "proc_maps" && e["proc_file"] == file
        });
        assert_eq!(e["pid"], pid, "{e}");
        assert_eq!(e["uid"], NOBODY, "{e}");
        assert_eq!(e["target_pid"], target, "{e}");
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["severity"], "warning", "{e}");
    }
    // smaps, then the memory: the dump's signal, naming both events.
    let (_, pid, target) = runs[0];
    let smaps = own(&events, "memory", pid, &|e| e["proc_file"] == "smaps");
    let mem = own(&events, "memory", pid, &|e| {
        e["kind"] == "proc_mem" && e["target_pid"] == target
    });
    assert_eq!(mem["proc_file"], "mem", "{mem}");
    let g = signal_for(&events, "runner-memory-dump", mem);
    assert_eq!(g["severity"], "critical", "{g}");
    assert_eq!(
        g["events"],
        serde_json::json!([smaps["id"], mem["id"]]),
        "{g}"
    );
}

/// Starts a sleeping child, raises its core limit with prlimit(1) and
/// sends it SIGSEGV (the shell's kill: the shell is the sender); prints the
/// child's pid.
const CORE_DUMP: &str = r#"sleep 30 & p=$!
prlimit --pid "$p" --core=unlimited
kill -SEGV "$p"
wait "$p"
echo "$p""#;

#[test]
fn a_core_dump_forced_on_another_process_is_reported_and_raises_its_rule() {
    if !root_or_skip("a_core_dump_forced_on_another_process_is_reported_and_raises_its_rule") {
        return;
    }
    let s = Scratch::new("evasion-core");
    let dir = job_dir(&s, "job");
    let mon = Monitor::start(&s.0, &["--probe-type", "memory_monitor"]);
    let (sh, out) = detached(&["/bin/sh", "-c", CORE_DUMP], &dir);
    let target: u32 = out.trim().parse().unwrap();
    let events = mon.stop();

    let limit = own(&events, "memory", sh, &|e| {
        e["kind"] == "core_limit" && e["target_pid"] == target
    });
    assert_eq!(limit["comm"], "prlimit", "{limit}");
    assert_eq!(limit["uid"], NOBODY, "{limit}");
    assert_eq!(limit["request"], "RLIMIT_CORE=unlimited", "{limit}");
    assert_eq!(limit["result"], "ok", "{limit}");
    assert_eq!(limit["severity"], "high", "{limit}");
    let sig = own(&events, "memory", sh, &|e| {
        e["kind"] == "core_signal" && e["target_pid"] == target
    });
    assert_eq!(sig["pid"], sh, "the shell sent it: {sig}");
    assert_eq!(sig["request"], "SIGSEGV", "{sig}");
    assert_eq!(sig["target_comm"], "sleep", "{sig}");
    // Its own child: milder than a stranger's, which is high.
    assert_eq!(sig["severity"], "warning", "{sig}");
    let g = signal_for(&events, "core-dump-of-another-process", sig);
    assert_eq!(g["severity"], "critical", "{g}");
    assert_eq!(
        g["events"],
        serde_json::json!([limit["id"], sig["id"]]),
        "{g}"
    );
    assert!(
        g["tags"].as_array().unwrap().iter().any(|t| t == "T1003"),
        "{g}"
    );
}

/// Copies /bin/sleep into a memfd named argv[1] and executes it, through
/// /proc/self/fd (argv[2] "path") or with fexecve (execveat AT_EMPTY_PATH,
/// the memfd close-on-exec), sleeping a second: a memfd is hashed only
/// while its process lives. No file on any filesystem is run.
const MEMFD_EXEC: &str = r#"
import os, sys
name, how = sys.argv[1], sys.argv[2]
fd = os.memfd_create(name, 0 if how == "path" else os.MFD_CLOEXEC)
os.write(fd, open("/bin/sleep", "rb").read())
os.execve(f"/proc/self/fd/{fd}" if how == "path" else fd, [name, "1"], {})
"#;

#[test]
fn a_program_run_from_a_memfd_is_named_and_flagged_fileless() {
    if !root_or_skip("a_program_run_from_a_memfd_is_named_and_flagged_fileless") {
        return;
    }
    let s = Scratch::new("evasion-memfd");
    let dir = job_dir(&s, "job");
    // Not `all`: a fileless exec is a finding, written whatever the probe
    // type, not an exec shown for lineage.
    let mon = Monitor::start(&s.0, &["--probe-type", "memory_monitor"]);
    let runs: Vec<(&str, u32)> = [("payload", "path"), ("fexecve", "fd")]
        .into_iter()
        .map(|(name, how)| {
            let mut py = Command::new("/usr/bin/python3");
            py.args(["-c", MEMFD_EXEC, name, how]);
            (name, as_nobody(&mut py, &dir).0)
        })
        .collect();
    let events = mon.stop();
    for (name, pid) in runs {
        let exec = from_pid(&events, "process", pid)
            .into_iter()
            .find(|e| e["kind"] == "exec")
            .unwrap_or_else(|| panic!("no exec event of {pid}:\n{}", describe(&events)));
        assert_eq!(exec["exe"], format!("memfd:{name}"), "{exec}");
        assert_eq!(exec["fileless"], true, "{exec}");
        assert_eq!(exec["severity"], "warning", "{exec}");
        assert_eq!(exec["uid"], NOBODY, "{exec}");
        assert_eq!(exec["argv"], serde_json::json!([name, "1"]), "{exec}");
        // Written during the run: the memfd is a dropped file too, hashed.
        assert_eq!(exec["dropped"], true, "{exec}");
        assert_eq!(exec["sha256"], sha256_of("/bin/sleep"), "{exec}");
    }
}

/// The SHA-256 of a file, in hex, by sha256sum(1).
fn sha256_of(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_binary_written_during_the_run_carries_dropped_and_its_sha256() {
    if !root_or_skip("a_binary_written_during_the_run_carries_dropped_and_its_sha256") {
        return;
    }
    let s = Scratch::new("evasion-dropped");
    let dir = job_dir(&s, "job");
    let mon = Monitor::start(&s.0, &[]);
    // The job drops a binary (a copy of true), runs it, then runs a
    // program that was there before the run.
    let (sh, _) = as_nobody(
        Command::new("/bin/sh").args(["-c", "cp /bin/true ./dropped && ./dropped && /bin/true"]),
        &dir,
    );
    let events = mon.stop();
    let dropped_exe = dir.join("dropped");
    let exec = own(&events, "process", sh, &|e| {
        e["kind"] == "exec" && e["exe"] == dropped_exe.to_str().unwrap()
    });
    assert_eq!(exec["uid"], NOBODY, "{exec}");
    assert_eq!(exec["dropped"], true, "{exec}");
    assert_eq!(exec["sha256"], sha256_of("/bin/true"), "{exec}");
    assert_eq!(exec["severity"], "info", "{exec}");
    let true_exe = std::fs::canonicalize("/bin/true").unwrap();
    let old = own(&events, "process", sh, &|e| {
        e["kind"] == "exec" && e["exe"] == true_exe.to_str().unwrap()
    });
    assert!(
        old.get("dropped").is_none(),
        "not written during the run: {old}"
    );
    assert!(old.get("sha256").is_none(), "{old}");
    // Hashing delays the dropped exec, never its order: what came after it
    // is numbered after it (the rules' sequences go by that order).
    assert!(
        exec["id"].as_u64() < old["id"].as_u64(),
        "the later exec went out first: {exec} {old}"
    );
}

#[test]
fn a_downloaded_script_run_directly_or_by_its_interpreter_is_download_then_execute() {
    if !root_or_skip(
        "a_downloaded_script_run_directly_or_by_its_interpreter_is_download_then_execute",
    ) {
        return;
    }
    let s = Scratch::new("evasion-script");
    let dir = job_dir(&s, "job");
    let src = s.path("payload.sh");
    std::fs::write(&src, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("file://{}", src.display());
    let mon = Monitor::start(&s.0, &[]);
    // Fetched, then run as ./x.sh: the exec's executable is /bin/sh.
    let direct_cmd = format!("curl -sS -o x.sh '{url}' && chmod +x x.sh && ./x.sh; true");
    let (direct, _) = detached(&["/bin/sh", "-c", &direct_cmd], &dir);
    // Fetched, then named to bash.
    let named_cmd = format!("curl -sS -o y.sh '{url}' && bash \"$PWD/y.sh\"; true");
    let (named, _) = detached(&["/bin/sh", "-c", &named_cmd], &dir);
    // Named relative: resolved with the directory the kernel had at exec
    // (the script is gone before its event is judged).
    let relative_cmd = format!("curl -sS -o z.sh '{url}' && bash z.sh; true");
    let (relative, _) = detached(&["/bin/sh", "-c", &relative_cmd], &dir);
    // Never written anywhere: fetched into a variable (so curl has run
    // before), then bash reads it from a pipe, /dev/fd/N.
    let piped_cmd = format!("s=$(curl -sS '{url}'); bash <(printf '%s\\n' \"$s\"); true");
    let (piped, _) = detached(&["/bin/bash", "-c", &piped_cmd], &dir);
    let events = mon.stop();

    let exec = own(&events, "process", piped, &|e| {
        e["kind"] == "exec"
            && e["comm"] == "bash"
            && e["script"]
                .as_str()
                .is_some_and(|s| s.starts_with("/dev/fd/"))
    });
    assert_eq!(exec["fileless"], true, "{exec}");
    assert_eq!(exec["severity"], "warning", "{exec}");
    let g = signal_for(&events, "download-then-execute", exec);
    assert!(names(g, exec), "{g} does not name {exec}");

    for (pid, script) in [
        (direct, dir.join("x.sh")),
        (named, dir.join("y.sh")),
        (relative, dir.join("z.sh")),
    ] {
        let script = script.to_str().unwrap();
        let exec = own(&events, "process", pid, &|e| {
            e["kind"] == "exec" && e["script"] == script
        });
        assert_eq!(exec["uid"], NOBODY, "{exec}");
        assert!(
            !exec["exe"].as_str().unwrap().starts_with("/tmp/"),
            "the executable is the interpreter: {exec}"
        );
        let g = signal_for(&events, "download-then-execute", exec);
        assert!(names(g, exec), "{g} does not name {exec}");
        let curl = own(&events, "process", pid, &|e| {
            e["kind"] == "exec" && e["comm"] == "curl"
        });
        assert!(names(g, curl), "{g} does not name {curl}");
    }
}

/// Names itself argv[1] (prctl PR_SET_NAME), then reads the file argv[2].
const RENAMED_READ: &str = r#"
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(15, sys.argv[1].encode(), 0, 0, 0) == 0
open(sys.argv[2], "rb").read()
"#;

/// Regression tests (they pass on the code before this branch too: the
/// expected-program check is by executable inode and owner): a process
/// named ssh, or a user's copy of cat named ssh, reading a key is reported
/// at the key's severity, not lowered to info as ssh's own read would be.
#[test]
fn a_process_or_binary_named_ssh_reading_a_key_keeps_the_keys_severity() {
    if !root_or_skip("a_process_or_binary_named_ssh_reading_a_key_keeps_the_keys_severity") {
        return;
    }
    let s = Scratch::new("evasion-ssh");
    let dir = job_dir(&s, "job");
    let ssh_dir = dir.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let key = ssh_dir.join("id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    std::os::unix::fs::chown(&ssh_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&key, Some(NOBODY), Some(NOBODY)).unwrap();
    let fake = dir.join("ssh");
    std::fs::copy("/bin/cat", &fake).unwrap();
    std::os::unix::fs::chown(&fake, Some(NOBODY), Some(NOBODY)).unwrap();
    let key_s = key.to_str().unwrap();

    let mon = Monitor::start(&s.0, &["--probe-type", "file_monitor"]);
    let (renamed, _) = as_nobody(
        Command::new("/usr/bin/python3").args(["-c", RENAMED_READ, "ssh", key_s]),
        &dir,
    );
    let (copy, _) = as_nobody(Command::new(&fake).arg(key_s), &dir);
    let events = mon.stop();

    for pid in [renamed, copy] {
        let read = own(&events, "file", pid, &|e| e["path"] == key_s);
        assert_eq!(read["comm"], "ssh", "{read}");
        assert_eq!(read["category"], "ssh_key", "{read}");
        assert_eq!(read["severity"], "critical", "not lowered: {read}");
    }
}

/// Runs /bin/sh from a memfd named "payload": it waits for a line on
/// stdin, then opens the file argv[1] itself (a builtin redirection).
const MEMFD_SHELL: &str = r#"
import os, sys
fd = os.memfd_create("payload", 0)
os.write(fd, open("/bin/sh", "rb").read())
os.execve(f"/proc/self/fd/{fd}", ["sh", "-c", 'read go; read k < "$0"', sys.argv[1]], {})
"#;

#[test]
fn a_memfd_program_started_before_the_run_is_named_as_its_exec_would_be() {
    if !root_or_skip("a_memfd_program_started_before_the_run_is_named_as_its_exec_would_be") {
        return;
    }
    use std::io::Write;
    let s = Scratch::new("evasion-memfd-seeded");
    let dir = job_dir(&s, "job");
    let ssh_dir = dir.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let key = ssh_dir.join("id_rsa");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    std::os::unix::fs::chown(&key, Some(NOBODY), Some(NOBODY)).unwrap();
    // Started, and its exec over, before bee-trace runs: the process table
    // learns it from /proc, where its executable reads "/memfd:payload
    // (deleted)".
    let mut job = Command::new("/usr/bin/python3")
        .args(["-c", MEMFD_SHELL, key.to_str().unwrap()])
        .current_dir(&dir)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = job.id();
    let exe = format!("/proc/{pid}/exe");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_link(&exe).map_or(true, |l| !l.to_string_lossy().contains("memfd:")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the memfd shell did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mon = Monitor::start(&s.0, &["--probe-type", "file_monitor"]);
    job.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(job.wait().unwrap().success());
    let events = mon.stop();
    let read = own(&events, "file", pid, &|e| {
        e["path"] == key.to_str().unwrap()
    });
    assert_eq!(read["exe"], "memfd:payload", "{read}");
    assert_eq!(read["severity"], "critical", "{read}");
}
