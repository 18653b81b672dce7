//! Loader variables an exec is given where its caller's envp, read at the
//! syscall's entry, does not show them (issue 12, class 9): bee-trace reads
//! them from the new program's own stack, the copy ld.so reads. Each exec
//! is done by a small C program (evasion_exec/execer.c) built at test time,
//! as uid 65534 where an unprivileged attacker can do it.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

const EXECER_C: &str = include_str!("evasion_exec/execer.c");

const NOBODY: u32 = 65534;

/// Builds the execer into `dir` (non-PIE: int $0x80 takes 32-bit pointers,
/// so its buffers must lie in the first 4 GiB).
fn execer(dir: &Path) -> PathBuf {
    let src = dir.join("execer.c");
    let bin = dir.join("execer");
    std::fs::write(&src, EXECER_C).unwrap();
    for cc in ["cc", "clang"] {
        let st = Command::new(cc)
            .args(["-O1", "-no-pie", "-o"])
            .arg(&bin)
            .arg(&src)
            .status();
        if matches!(st, Ok(s) if s.success()) {
            return bin;
        }
    }
    panic!("no C compiler (cc or clang) built the execer");
}

/// Runs `cmd` as uid 65534 to completion; returns its pid, which the
/// program it execs keeps.
fn run_nobody(cmd: &mut Command) -> u32 {
    let mut child = cmd
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let st = child.wait().unwrap();
    assert!(st.success(), "{cmd:?} failed: {st}");
    pid
}

/// The one exec of /bin/true by `pid`.
fn exec_of_true(events: &[Value], pid: u32) -> Value {
    let e: Vec<&Value> = from_pid(events, "process", pid)
        .into_iter()
        .filter(|e| e["kind"] == "exec" && e["comm"] == "true")
        .collect();
    assert_eq!(e.len(), 1, "execs of true by {pid}:\n{e:?}");
    e[0].clone()
}

/// The signals of `rule` that event `e` helped raise.
fn signals_with<'a>(events: &'a [Value], rule: &str, e: &Value) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|g| g["type"] == "signal" && g["rule"] == rule)
        .filter(|g| g["events"].as_array().is_some_and(|a| a.contains(&e["id"])))
        .collect()
}

/// Has the execer exec /bin/true with LD_PRELOAD by `how`, and checks the
/// exec names the variable and raises loader-preload-from-temp.
fn preload_is_seen(tag: &str, how: &str) {
    let s = Scratch::new(tag);
    let lib = s.path("hook.so");
    std::fs::write(&lib, "not a library\n").unwrap();
    let bin = execer(&s.0);
    let mon = Monitor::start(&s.0, &[]);
    let pid = run_nobody(Command::new(&bin).arg(how).arg(&lib).env_clear());
    let events = mon.stop();
    let e = exec_of_true(&events, pid);
    assert_eq!(
        e["loader_env"],
        json!([format!("LD_PRELOAD={}", lib.display())]),
        "{e}"
    );
    assert!(e.get("loader_env_truncated").is_none(), "{e}");
    assert_eq!(
        signals_with(&events, "loader-preload-from-temp", &e).len(),
        1,
        "{}",
        describe(&events)
    );
}

#[test]
fn ld_preload_in_a_page_not_yet_faulted_in_is_reported() {
    if !root_or_skip("ld_preload_in_a_page_not_yet_faulted_in_is_reported") {
        return;
    }
    preload_is_seen("lenv-unmapped", "unmapped");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn ld_preload_given_to_an_int80_execve_is_reported() {
    if !root_or_skip("ld_preload_given_to_an_int80_execve_is_reported") {
        return;
    }
    preload_is_seen("lenv-int80", "int80");
}

#[test]
fn loader_variables_past_the_scan_or_cut_short_say_so() {
    if !root_or_skip("loader_variables_past_the_scan_or_cut_short_say_so") {
        return;
    }
    let s = Scratch::new("lenv-cut");
    let mon = Monitor::start(&s.0, &[]);
    // Command's environment is sorted by name: the 600 fillers (more than
    // the 512 entries looked at) come before LD_PRELOAD.
    let mut padded = Command::new("/bin/true");
    padded.env_clear();
    for i in 0..600 {
        padded.env(format!("A{i:03}"), "x");
    }
    padded.env("LD_PRELOAD", "/tmp/past-the-scan.so");
    let padded = run_nobody(&mut padded);
    let audit = format!("LD_AUDIT=/tmp/{}", "a".repeat(300));
    let long = run_nobody(
        Command::new("/bin/true")
            .env_clear()
            .env("LD_AUDIT", &audit["LD_AUDIT=".len()..]),
    );
    let events = mon.stop();

    let p = exec_of_true(&events, padded);
    assert!(p.get("loader_env").is_none(), "{p}");
    assert_eq!(p["loader_env_truncated"], true, "the scan was cut: {p}");
    let l = exec_of_true(&events, long);
    assert_eq!(l["loader_env"], json!([&audit[..255]]), "{l}");
    assert_eq!(l["loader_env_truncated"], true, "the value was cut: {l}");
}
