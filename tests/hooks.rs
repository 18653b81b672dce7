//! The choice of hooks for the syscall families (file, memory, network):
//! fexit where the kernel allows it, the syscall tracepoints otherwise.
//! These tests hold on any kernel: they read which hooks `bee-trace check`
//! found, then hold bee-trace to it. (Kernels that do allow fexit are covered
//! for real by `make qemu-kernels`, which also checks every detection there.)

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::*;

/// Per family, the hook `check` reports ("fexit" or "tracepoints") and the
/// probe lines it printed as attached for that family.
fn check() -> (BTreeMap<String, String>, Vec<(String, String)>, String) {
    let out = Command::new(BIN).arg("check").output().expect("run check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "check failed:\n{text}");
    let mut hooks = BTreeMap::new();
    let mut attached = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["hooks", family, hook, rest @ ..] => {
                let prev = hooks.insert(family.to_string(), hook.to_string());
                assert!(prev.is_none(), "two hooks lines for {family}:\n{text}");
                if *hook == "tracepoints" && !rest.is_empty() {
                    assert!(
                        line.contains("fexit upgrade was refused: "),
                        "a refusal names its reason: {line}"
                    );
                }
            }
            ["attached", family, probe, ..] => {
                attached.push((family.to_string(), probe.to_string()))
            }
            _ => {}
        }
    }
    (hooks, attached, text)
}

#[test]
fn check_reports_one_hook_per_syscall_family_and_attaches_exactly_that() {
    if !root_or_skip("check_reports_one_hook_per_syscall_family_and_attaches_exactly_that") {
        return;
    }
    let (hooks, attached, text) = check();
    for family in ["file", "memory", "network"] {
        let hook = hooks
            .get(family)
            .unwrap_or_else(|| panic!("no hooks line for {family}:\n{text}"));
        let probes: Vec<&str> = attached
            .iter()
            .filter(|(f, _)| f == family)
            .map(|(_, p)| p.as_str())
            .collect();
        let fexit = probes.iter().filter(|p| p.starts_with("fexit/")).count();
        // Links and renames have no fexit variant: the file family hooks
        // their tracepoints under either (bpf/link.bpf.h).
        let every_mode = |p: &str| p.contains("link") || p.contains("rename");
        let tps = probes
            .iter()
            .filter(|p| p.starts_with("syscalls/") && !every_mode(p))
            .count();
        match hook.as_str() {
            "fexit" => assert!(
                fexit >= 1 && tps == 0,
                "{family} on fexit must attach fexit programs and no syscall tracepoint:\n{text}"
            ),
            "tracepoints" => assert!(
                tps >= 1 && fexit == 0,
                "{family} on tracepoints must attach syscall tracepoints and no fexit program:\n{text}"
            ),
            other => panic!("unknown hook {other} for {family}:\n{text}"),
        }
    }
}

#[test]
fn forced_fexit_runs_where_allowed_and_otherwise_fails_cleanly() {
    if !root_or_skip("forced_fexit_runs_where_allowed_and_otherwise_fails_cleanly") {
        return;
    }
    let (hooks, _, text) = check();
    let allowed = hooks.get("file").map(String::as_str) == Some("fexit");
    let s = Scratch::new("hooks-fexit");
    let before = our_programs();
    let out = Command::new(BIN)
        .args([
            "--hooks",
            "fexit",
            "--probe-type",
            "file_monitor",
            "--duration",
            "1",
            "--format",
            "json",
            "--output",
        ])
        .arg(s.path("events.ndjson"))
        .stdin(Stdio::null())
        .output()
        .expect("run bee-trace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if allowed {
        assert!(
            out.status.success(),
            "check says fexit attaches, so --hooks fexit must run: {stderr}"
        );
    } else {
        assert_eq!(
            out.status.code(),
            Some(1),
            "check says fexit is refused ({text}), so --hooks fexit must fail: {stderr}"
        );
        assert!(
            stderr.contains("file probe fexit: refused (--hooks fexit has no fallback)"),
            "the error names the family and the missing fallback: {stderr}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.contains("libbpf")).count(),
            0,
            "libbpf's own complaint stays out of the error: {stderr}"
        );
    }
    // Nothing of ours stays loaded either way.
    assert_programs_unloaded(before.len(), "--hooks fexit exited");
}

#[test]
fn forced_tracepoints_attach_the_tracepoints_and_see_a_key_read() {
    if !root_or_skip("forced_tracepoints_attach_the_tracepoints_and_see_a_key_read") {
        return;
    }
    let s = Scratch::new("hooks-tp");
    let key = s.path("home/.ssh/id_rsa");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let report = s.path("report.json");
    let mon = Monitor::start(
        &s.0,
        &[
            "--hooks",
            "tracepoints",
            "--report-json",
            report.to_str().unwrap(),
        ],
    );
    // Planted after the start: matched by name in the kernel, not by inode.
    std::fs::write(&key, "planted, not a key\n").unwrap();
    let loaded = our_programs();
    let pid = run(Command::new("cat").arg(&key));
    let events = mon.stop();
    assert!(
        loaded.iter().any(|n| n.starts_with("handle_openat")),
        "the openat tracepoint program is loaded: {loaded:?}"
    );
    assert!(
        !loaded.iter().any(|n| n.starts_with("fexit_")),
        "no fexit program is loaded with --hooks tracepoints: {loaded:?}"
    );
    let reads: Vec<_> = from_pid(&events, "file", pid);
    assert_eq!(reads.len(), 1, "one read event:\n{}", describe(&events));
    assert_eq!(reads[0]["path"], key.to_str().unwrap());
    assert_eq!(reads[0]["access"], "read");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let hooks: BTreeMap<&str, &str> = r["hooks"]
        .as_array()
        .expect("the report says which hooks were used")
        .iter()
        .map(|h| (h["family"].as_str().unwrap(), h["hook"].as_str().unwrap()))
        .collect();
    for family in ["file", "memory", "network"] {
        assert_eq!(
            hooks.get(family),
            Some(&"tracepoints"),
            "report hooks: {hooks:?}"
        );
    }
}
