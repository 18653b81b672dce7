//! Opens that are not open(2)-family syscalls (issue 12, class 2), for
//! real: a watched key reached through io_uring, open_by_handle_at,
//! pidfd_getfd and int $0x80, and the fanotify enabling acts. Each act is
//! done by a small C program (evasion_opens/opener.c) built at test time with the C compiler
//! bee-trace's build already needs (cc, else clang), as uid 65534 where an
//! unprivileged attacker can do it.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const OPENER_C: &str = include_str!("evasion_opens/opener.c");

const NOBODY: u32 = 65534;

/// Builds the opener into `dir` (non-PIE: int $0x80 takes 32-bit pointers,
/// so its path buffer must lie in the first 4 GiB).
fn opener(dir: &Path) -> PathBuf {
    let src = dir.join("opener.c");
    let bin = dir.join("opener");
    std::fs::write(&src, OPENER_C).unwrap();
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
    panic!("no C compiler (cc or clang) built the opener");
}

/// A key under a scratch home that the policy watches, readable by uid
/// 65534, and bee-trace watching it.
struct Planted {
    s: Scratch,
    key: String,
    bin: PathBuf,
    mon: Monitor,
}

fn plant(tag: &str) -> Planted {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new(tag);
    let ssh = s.path("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let key = ssh.join("id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY----- planted\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = key.to_str().unwrap().to_string();
    let bin = opener(&s.0);
    let cfg = write_policy(&s, &format!("files:\n  watch_read: [\"{key}\"]\n"));
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    Planted { s, key, bin, mon }
}

/// Runs the opener (as `uid`) and returns the pid that got the descriptor,
/// after checking that it read the file through it.
fn act(bin: &Path, uid: u32, args: &[&str]) -> u32 {
    u32::try_from(act_fields(bin, uid, args)[0]).unwrap()
}

/// The opener's line: the acting pid, then an fd (or a child's pid), then
/// the bytes it read.
fn act_fields(bin: &Path, uid: u32, args: &[&str]) -> Vec<i64> {
    let mut cmd = Command::new(bin);
    cmd.args(args).stderr(Stdio::inherit());
    if uid != 0 {
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().expect("run the opener");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "opener {args:?} failed: {line}");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 3, "opener {args:?} said {line:?}");
    f[..2].iter().map(|x| x.parse().unwrap()).collect()
}

/// The one file event of `pid` for `path`.
fn one_for(events: &[Value], pid: u32, path: &str) -> Value {
    let evs: Vec<_> = from_pid(events, "file", pid)
        .into_iter()
        .filter(|e| e["path"] == path)
        .collect();
    assert_eq!(
        evs.len(),
        1,
        "expected one file event for {path} from pid {pid}, got:\n{}",
        describe(events)
    );
    evs[0].clone()
}

/// The key as an open reports it, reached by `via`.
fn assert_key(e: &Value, via: &str, uid: u32) {
    assert_eq!(e["via"], via, "{e}");
    assert_eq!(e["comm"], "opener", "{e}");
    assert_eq!(e["uid"], uid, "{e}");
    assert_eq!(e["access"], "read", "{e}");
    assert_eq!(e["result"], "ok", "{e}");
    assert_eq!(e["resolved"], true, "{e}");
    assert_eq!(e["category"], "ssh_key", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
}

#[test]
fn a_key_taken_from_another_process_with_pidfd_getfd_is_critical() {
    if !root_or_skip("a_key_taken_from_another_process_with_pidfd_getfd_is_critical") {
        return;
    }
    let p = plant("opens-getfd");
    // The opener's child opens the key (reported as an ordinary open); the
    // opener takes the child's descriptor and reads the key through it.
    let thief = act(&p.bin, NOBODY, &["getfd", &p.key]);
    let events = p.mon.stop();
    let e = one_for(&events, thief, &p.key);
    assert_key(&e, "pidfd_getfd", NOBODY);
    let child: Vec<_> = from_tree(&events, "file", thief)
        .into_iter()
        .filter(|c| c["pid"] != thief && c["path"] == p.key.as_str())
        .collect();
    assert_eq!(
        child.len(),
        1,
        "the child's own open:\n{}",
        describe(&events)
    );
    assert!(child[0].get("via").is_none(), "{}", child[0]);
    drop(p.s);
}

#[test]
fn a_refused_pidfd_getfd_of_a_roots_key_is_critical() {
    if !root_or_skip("a_refused_pidfd_getfd_of_a_roots_key_is_critical") {
        return;
    }
    use std::io::BufRead;
    let p = plant("opens-steal");
    // A root process (a job step's, or the runner's) holds the key open.
    let mut holder = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print(fd, flush=True); sys.stdin.read()",
            &p.key,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fd = line.trim().to_string();
    let target = holder.id().to_string();
    // uid 65534 tries to take it: the kernel refuses (EPERM).
    let thief = act(&p.bin, NOBODY, &["steal", &target, &fd]);
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let events = p.mon.stop();
    let e = one_for(&events, thief, &p.key);
    assert_eq!(e["via"], "pidfd_getfd", "{e}");
    assert_eq!(e["result"], "EPERM", "{e}");
    assert_eq!(e["uid"], NOBODY, "{e}");
    assert_eq!(e["comm"], "opener", "{e}");
    assert_eq!(e["category"], "ssh_key", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
    drop(p.s);
}

#[test]
fn a_tripwire_taken_with_pidfd_getfd_kills_the_taker() {
    if !root_or_skip("a_tripwire_taken_with_pidfd_getfd_kills_the_taker") {
        return;
    }
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let s = Scratch::new("opens-trip");
    let bin = opener(&s.0);
    let honey = s.path("honey.txt");
    std::fs::write(&honey, "decoy\n").unwrap();
    std::os::unix::fs::chown(&honey, Some(NOBODY), Some(NOBODY)).unwrap();
    let honey_s = honey.to_str().unwrap();
    // A process of uid 65534 opened the file before bee-trace started (so
    // its open was never judged); the tripwire is armed at start.
    let mut holder = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print(fd, flush=True); sys.stdin.read()",
            honey_s,
        ])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fd = line.trim().to_string();
    let target = holder.id().to_string();
    let cfg = write_policy(
        &s,
        &format!("files:\n  rules:\n    - path: {honey_s}\n      action: kill\n"),
    );
    let mon = Monitor::start(&s.0, &["--config", &cfg]);
    let thief = Command::new(&bin)
        .args(["take", &target, &fd])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let thief_pid = thief.id();
    let out = thief.wait_with_output().unwrap();
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let events = mon.stop();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the taker is SIGKILLed: {out:?}"
    );
    assert!(out.stdout.is_empty(), "it read nothing: {out:?}");
    let e = one_for(&events, thief_pid, honey_s);
    assert_eq!(e["via"], "pidfd_getfd", "{e}");
    assert_eq!(e["action"], "killed", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
    assert_eq!(e["uid"], NOBODY, "{e}");
}

#[test]
fn a_key_opened_by_handle_is_reported_like_an_open() {
    if !root_or_skip("a_key_opened_by_handle_is_reported_like_an_open") {
        return;
    }
    let p = plant("opens-handle");
    // open_by_handle_at needs CAP_DAC_READ_SEARCH: a root job step.
    let tmp = std::env::temp_dir();
    let pid = act(&p.bin, 0, &["handle", &p.key, tmp.to_str().unwrap()]);
    let events = p.mon.stop();
    assert_key(&one_for(&events, pid, &p.key), "open_by_handle_at", 0);
    drop(p.s);
}

#[test]
fn a_key_opened_through_io_uring_is_reported_and_the_ring_once() {
    if !root_or_skip("a_key_opened_through_io_uring_is_reported_and_the_ring_once") {
        return;
    }
    let p = plant("opens-uring");
    // Three rings, the last one opening the key.
    let pid = act(&p.bin, NOBODY, &["uring", &p.key, "3"]);
    let events = p.mon.stop();
    assert_key(&one_for(&events, pid, &p.key), "io_uring", NOBODY);
    let rings: Vec<_> = from_pid(&events, "file", pid)
        .into_iter()
        .filter(|e| e["via"] == "io_uring_setup")
        .collect();
    assert_eq!(
        rings.len(),
        1,
        "one ring event per process:\n{}",
        describe(&events)
    );
    let r = rings[0];
    assert_eq!(r["severity"], "warning", "{r}");
    assert_eq!(r["category"], "io_uring", "{r}");
    assert_eq!(r["path"], "anon_inode:[io_uring]", "{r}");
    assert_eq!(r["uid"], NOBODY, "{r}");
    drop(p.s);
}

#[test]
fn a_key_opened_by_an_io_uring_kernel_thread_is_the_submitters() {
    if !root_or_skip("a_key_opened_by_an_io_uring_kernel_thread_is_the_submitters") {
        return;
    }
    let p = plant("opens-uring-threads");
    // IOSQE_ASYNC: the open runs on an io-wq worker; SQPOLL: the ring's
    // poll thread submits it. Both are threads of the submitter's sharing
    // its file table; the event is the submitter's process, the thread's
    // comm says which one acted.
    let worker = act(&p.bin, NOBODY, &["uring-async", &p.key]);
    let poller = act(&p.bin, NOBODY, &["uring-sqpoll", &p.key]);
    let events = p.mon.stop();
    for (pid, comm) in [
        (worker, format!("iou-wrk-{worker}")),
        (poller, format!("iou-sqp-{poller}")),
    ] {
        let e = one_for(&events, pid, &p.key);
        assert_eq!(e["via"], "io_uring", "{e}");
        assert_eq!(e["comm"], comm.as_str(), "{e}");
        assert_eq!(e["uid"], NOBODY, "{e}");
        assert_eq!(e["severity"], "critical", "{e}");
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["category"], "ssh_key", "{e}");
    }
    drop(p.s);
}

#[test]
fn creat_of_a_watched_file_is_a_write_and_a_refused_one_is_reported() {
    if !root_or_skip("creat_of_a_watched_file_is_a_write_and_a_refused_one_is_reported") {
        return;
    }
    use std::os::unix::fs::chown;
    let p = plant("opens-creat");
    // The key is root's (0644): uid 65534 is refused. A second, its own,
    // is truncated by creat(2) (syscall 85 on x86_64).
    let own = p.s.path("home/.ssh/id_rsa");
    std::fs::write(&own, "-----BEGIN OPENSSH PRIVATE KEY----- own\n").unwrap();
    chown(&own, Some(NOBODY), Some(NOBODY)).unwrap();
    let own_s = own.to_str().unwrap();
    let script = "import ctypes,os,sys; c=ctypes.CDLL(None, use_errno=True); c.syscall.restype=ctypes.c_long; \
        r=c.syscall(85, os.fsencode(sys.argv[1]), 0o600); assert r < 0 and ctypes.get_errno() == 13, r; \
        r=c.syscall(85, os.fsencode(sys.argv[2]), 0o600); assert r >= 0, r";
    let pid = run(Command::new("/usr/bin/python3")
        .args(["-c", script, &p.key, own_s])
        .uid(NOBODY)
        .gid(NOBODY));
    let events = p.mon.stop();
    let refused = one_for(&events, pid, &p.key);
    assert_eq!(refused["via"], "creat", "{refused}");
    assert_eq!(refused["access"], "write", "{refused}");
    assert_eq!(refused["result"], "EACCES", "{refused}");
    assert_eq!(refused["resolved"], false, "{refused}");
    assert_eq!(refused["category"], "ssh_key", "{refused}");
    let done = one_for(&events, pid, own_s);
    assert_eq!(done["via"], "creat", "{done}");
    assert_eq!(done["access"], "write", "{done}");
    assert_eq!(done["result"], "ok", "{done}");
    assert_eq!(done["resolved"], true, "{done}");
    assert_eq!(
        std::fs::metadata(&own).unwrap().len(),
        0,
        "creat truncated it"
    );
    drop(p.s);
}

#[test]
fn a_key_opened_or_refused_through_int_0x80_is_reported() {
    if !root_or_skip("a_key_opened_or_refused_through_int_0x80_is_reported") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let p = plant("opens-int80");
    let pid = act(&p.bin, NOBODY, &["int80", &p.key]);
    // root's 0600 key: refused, reported by the path asked for.
    let private = p.s.path("home/.ssh/id_rsa");
    std::fs::write(&private, "-----BEGIN OPENSSH PRIVATE KEY----- root's\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let private_s = private.to_str().unwrap();
    let refused =
        u32::try_from(act_fields(&p.bin, NOBODY, &["int80-refused", private_s])[0]).unwrap();
    let events = p.mon.stop();
    assert_key(&one_for(&events, pid, &p.key), "int80", NOBODY);
    let e = one_for(&events, refused, private_s);
    assert_eq!(e["via"], "int80", "{e}");
    assert_eq!(e["result"], "EACCES", "{e}");
    assert_eq!(e["resolved"], false, "{e}");
    assert_eq!(e["access"], "read", "{e}");
    assert_eq!(e["category"], "ssh_key", "{e}");
    assert_eq!(e["uid"], NOBODY, "{e}");
    drop(p.s);
}

#[test]
fn fanotify_init_and_mark_by_a_job_are_warnings() {
    if !root_or_skip("fanotify_init_and_mark_by_a_job_are_warnings") {
        return;
    }
    let p = plant("opens-fanotify");
    // fanotify_init with FAN_CLASS_NOTIF needs CAP_SYS_ADMIN: a root job.
    let home = p.s.path("home");
    let pid = act(&p.bin, 0, &["fanotify", home.to_str().unwrap()]);
    let events = p.mon.stop();
    let of = |via: &str| -> Value {
        let evs: Vec<_> = from_pid(&events, "file", pid)
            .into_iter()
            .filter(|e| e["via"] == via)
            .collect();
        assert_eq!(evs.len(), 1, "one {via} event:\n{}", describe(&events));
        evs[0].clone()
    };
    let init = of("fanotify_init");
    assert_eq!(init["severity"], "warning", "{init}");
    assert_eq!(init["category"], "fanotify", "{init}");
    assert_eq!(init["path"], "anon_inode:[fanotify]", "{init}");
    let mark = of("fanotify_mark");
    assert_eq!(mark["severity"], "warning", "{mark}");
    assert_eq!(mark["category"], "fanotify", "{mark}");
    assert_eq!(mark["path"], home.to_str().unwrap(), "{mark}");
    assert_eq!(mark["resolved"], false, "{mark}");
}

#[test]
fn a_childs_memory_reached_through_int_0x80_is_reported() {
    if !root_or_skip("a_childs_memory_reached_through_int_0x80_is_reported") {
        return;
    }
    let p = plant("opens-int80mem");
    // ptrace(PTRACE_ATTACH) then process_vm_readv of its own child, both by
    // ia32 numbers, as uid 65534.
    let f = act_fields(&p.bin, NOBODY, &["int80mem", "-"]);
    let (pid, child) = (f[0] as u32, f[1] as u32);
    let events = p.mon.stop();
    let of = |kind: &str| -> Value {
        let evs: Vec<_> = from_pid(&events, "memory", pid)
            .into_iter()
            .filter(|e| e["kind"] == kind && e["target_pid"] == child)
            .collect();
        assert_eq!(
            evs.len(),
            1,
            "one {kind} of {child}:\n{}",
            describe(&events)
        );
        evs[0].clone()
    };
    let attach = of("ptrace");
    assert_eq!(attach["request"], "PTRACE_ATTACH", "{attach}");
    assert_eq!(attach["result"], "ok", "{attach}");
    assert_eq!(attach["uid"], NOBODY, "{attach}");
    // Its own child: what the memory judge gives a 64-bit call on it too.
    assert_eq!(attach["severity"], "warning", "{attach}");
    let read = of("process_vm_readv");
    assert_eq!(read["result"], "ok", "{read}");
    assert_eq!(read["severity"], "high", "{read}");
    drop(p.s);
}

#[test]
fn check_attaches_the_other_opens_and_names_what_stays_unseen() {
    if !root_or_skip("check_attaches_the_other_opens_and_names_what_stays_unseen") {
        return;
    }
    let out = Command::new(BIN).arg("check").output().expect("run check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "check failed:\n{text}");
    let has = |family: &str, probe: &str| {
        text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 3 && f[0] == "attached" && f[1] == family && f[2] == probe
        })
    };
    for probe in [
        "syscalls/sys_exit_open_by_handle_at",
        "syscalls/sys_exit_pidfd_getfd",
        "syscalls/sys_exit_io_uring_setup",
        "syscalls/sys_exit_fanotify_init",
        "syscalls/sys_exit_fanotify_mark",
        "syscalls/sys_exit_creat",
        "io_uring/io_uring_complete",
        "raw_syscalls/sys_exit",
    ] {
        assert!(has("file", probe), "{probe} not attached:\n{text}");
    }
    let blind: Vec<&str> = text.lines().filter(|l| l.starts_with("blind ")).collect();
    assert!(
        blind
            .iter()
            .any(|l| l.contains("file") && l.contains("fanotify listener")),
        "{text}"
    );
    assert!(
        blind
            .iter()
            .any(|l| l.contains("network") && l.contains("int $0x80")),
        "{text}"
    );
}
