//! The files bee-trace is told to read, for real: a device, a FIFO, a file
//! another user can change, or a rule nested past the parser's bound is
//! refused at once with a message naming it, never read forever, waited on,
//! trusted, or allowed to abort the process.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How bee-trace ended: its status and standard error. Killed (and a
/// failure) when it runs past 20 s, which is how a read that never ends
/// shows; its address space is capped at 1 GiB so that an unbounded read
/// fails there instead of taking the host's memory.
fn outcome(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String) {
    let err_path = std::env::temp_dir().join(format!(
        "bee-trace-inputs-stderr-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start bee-trace");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            let _ = std::fs::remove_file(&err_path);
            panic!("bee-trace {args:?} still running after 20 s: {err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    (status, err)
}

/// bee-trace refused `args` cleanly: exit status 1 (not a signal) and an
/// error that contains every one of `says`.
fn refused(args: &[&std::ffi::OsStr], says: &[&str]) {
    let (status, err) = outcome(args);
    assert_eq!(
        status.code(),
        Some(1),
        "bee-trace {args:?} ended with {status} (signal {:?}): {err}",
        status.signal()
    );
    for s in says {
        assert!(err.contains(s), "bee-trace {args:?}: no {s:?} in: {err}");
    }
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {p:?}"
    );
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_device_as_the_policy_is_refused_not_read_forever() {
    refused(
        &[os("--config"), os("/dev/zero")],
        &["/dev/zero", "a character device, not a regular file"],
    );
}

#[test]
fn a_fifo_is_refused_wherever_a_file_is_meant() {
    let s = Scratch::new("inputs-fifo");
    let fifo = s.path("fifo");
    mkfifo(&fifo);
    let rules = s.path("rules");
    std::fs::create_dir(&rules).unwrap();
    mkfifo(&rules.join("pack.yml"));
    let key = s.path("key");
    std::fs::write(&key, b"0123456789abcdef0123456789").unwrap();
    chmod(&key, 0o600);
    let fifo = fifo.as_os_str();
    let cases: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec![os("--config"), fifo],
        vec![os("--format"), os("json"), os("--sign-key"), fifo],
        vec![os("rules"), os("--list"), os("--rules"), rules.as_os_str()],
        vec![os("replay"), fifo],
        vec![os("verify"), fifo, os("--key"), key.as_os_str()],
        vec![os("verify"), key.as_os_str(), os("--key"), fifo],
    ];
    for args in cases {
        refused(&args, &["a FIFO, not a regular file"]);
    }
}

#[test]
fn a_policy_another_user_can_change_is_refused() {
    if !root_or_skip("a_policy_another_user_can_change_is_refused") {
        return;
    }
    let s = Scratch::new("inputs-owner");
    let blind = "files:\n  exclude_paths: [\"/**\"]\n";
    let cfg = s.path("policy.yml");
    std::fs::write(&cfg, blind).unwrap();
    chmod(&cfg, 0o644);
    let run = |extra: &[&str], says: &[&str]| {
        let mut args = vec![os("--config"), cfg.as_os_str(), os("--duration"), os("1")];
        args.extend(extra.iter().map(|a| os(a)));
        refused(&args, says);
    };

    std::os::unix::fs::chown(&cfg, Some(65534), Some(65534)).unwrap();
    run(&[], &["owned by uid 65534", "chown root"]);
    std::os::unix::fs::chown(&cfg, Some(0), Some(0)).unwrap();

    chmod(&cfg, 0o666);
    run(&[], &["mode 0666", "chmod go-w"]);
    chmod(&cfg, 0o644);

    // A root-owned file in a directory another user owns: that user can
    // put another file in its place.
    let theirs = s.path("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let inner = theirs.join("policy.yml");
    std::fs::write(&inner, blind).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    refused(
        &[os("--config"), inner.as_os_str(), os("--duration"), os("1")],
        &["owned by uid 65534", theirs.to_str().unwrap()],
    );

    // A rules directory others can write to.
    let rules = s.path("rules");
    std::fs::create_dir(&rules).unwrap();
    chmod(&rules, 0o777);
    refused(
        &[os("rules"), os("--list"), os("--rules"), rules.as_os_str()],
        &["mode 0777", "chmod go-w"],
    );

    // Owned by root and not writable by others: accepted (the run ends
    // after its one second).
    let (status, err) = outcome(&[os("--config"), cfg.as_os_str(), os("--duration"), os("1")]);
    assert!(status.success(), "a trusted policy was refused: {err}");
}

#[test]
fn a_rule_nested_thousands_deep_is_refused_not_an_abort() {
    let s = Scratch::new("inputs-nesting");
    // Depths where the parser's own stack limit is not yet reached (the
    // old code then overflowed its stack building the tree), and past it.
    let cases = [
        ("not(", ")", 500),
        ("not(", ")", 1000),
        ("not ", "", 2000),
        ("not(", ")", 10_000),
    ];
    for (open, close, n) in cases {
        let rules = s.path(&format!("rules-{}-{n}", open.trim()));
        std::fs::create_dir(&rules).unwrap();
        let deep = format!(
            "rules:\n  - name: deep\n    severity: high\n    description: d\n    condition: \"{}has(file){}\"\n",
            open.repeat(n),
            close.repeat(n)
        );
        std::fs::write(rules.join("deep.yml"), deep).unwrap();
        let says = ["deep.yml:5:", "nests deeper than 32"];
        refused(
            &[os("rules"), os("--list"), os("--rules"), rules.as_os_str()],
            &says,
        );
        refused(
            &[os("--rules"), rules.as_os_str(), os("--duration"), os("1")],
            &says,
        );
    }
}

/// A job with sudo makes /etc/resolv.conf a FIFO (here in a private mount
/// namespace): bee-trace, which reads it for the resolvers whose DNS
/// answers it learns, starts anyway instead of waiting forever for a
/// writer.
#[test]
fn a_fifo_as_resolv_conf_does_not_hang_the_start() {
    if !root_or_skip("a_fifo_as_resolv_conf_does_not_hang_the_start") {
        return;
    }
    let s = Scratch::new("inputs-resolv-fifo");
    let fifo = s.path("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is NUL-terminated.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" --probe-type file_monitor --duration 1")
        .arg("sh")
        .arg(&fifo)
        .arg(BIN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bee-trace still starting after 20 s with a FIFO as /etc/resolv.conf");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
}
