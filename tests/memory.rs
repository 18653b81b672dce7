//! Memory sensor, for real: another process's memory and environment read
//! through ptrace, process_vm_readv and /proc, with both sides named.

mod common;

use std::process::{Command, Stdio};

use common::*;

const PLANTED: &str = "ghp_plantedvalue0123456789abcdefghijABCD";

const READER: &str = r#"
import ctypes, os, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
# /proc/<pid>/maps, environ, mem: opened by another process
start = int(open(f"/proc/{pid}/maps").readline().split("-")[0], 16)
open(f"/proc/{pid}/environ", "rb").read()
open(f"/proc/{pid}/mem", "rb").close()
# process_vm_readv of the first mapped bytes
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(64)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)
remote = iovec(start, 64)
libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(iovec), ctypes.c_ulong, ctypes.POINTER(iovec), ctypes.c_ulong, ctypes.c_ulong]
assert libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) == 64
# ptrace attach, then detach
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
assert libc.ptrace(16, pid, None, None) == 0
os.waitpid(pid, 0)
assert libc.ptrace(17, pid, None, None) == 0
"#;

#[test]
fn another_process_memory_and_environment_are_reported_with_both_sides() {
    if !root_or_skip("another_process_memory_and_environment_are_reported_with_both_sides") {
        return;
    }
    let s = Scratch::new("mem");
    let mut victim = Command::new("sleep")
        .arg("60")
        .env("GITHUB_TOKEN", PLANTED)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let vpid = victim.id();
    let json = s.path("report.json");
    let mon = Monitor::start(
        &s.0,
        &[
            "--probe-type",
            "memory_monitor",
            "--report-json",
            json.to_str().unwrap(),
        ],
    );
    let mut reader = Command::new("python3")
        .args(["-c", READER, &vpid.to_string()])
        .spawn()
        .unwrap();
    let rpid = reader.id();
    assert!(reader.wait().unwrap().success(), "the reader script failed");
    let events = mon.stop();
    let _ = victim.kill();
    let _ = victim.wait();

    let got = from_pid(&events, "memory", rpid);
    let find = |kind: &str| {
        got.iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event from {rpid}:\n{}", describe(&events)))
    };
    for kind in [
        "proc_maps",
        "proc_environ",
        "proc_mem",
        "process_vm_readv",
        "ptrace",
    ] {
        let e = find(kind);
        assert_eq!(e["target_pid"], vpid, "{e}");
        assert_eq!(e["target_comm"], "sleep", "{e}");
        assert!(e["comm"].as_str().unwrap().starts_with("python3"), "{e}");
        assert_eq!(e["result"], "ok", "{e}");
    }
    assert_eq!(find("ptrace")["request"], "PTRACE_ATTACH");
    assert_eq!(find("process_vm_readv")["severity"], "critical");
    let env = find("proc_environ");
    assert_eq!(
        env["severity"], "critical",
        "the victim holds a token: {env}"
    );
    assert!(
        env["target_secret_env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "GITHUB_TOKEN"),
        "{env}"
    );

    // The secret's name is reported, never its value.
    let all = std::fs::read_to_string(s.path("events.ndjson")).unwrap()
        + &std::fs::read_to_string(&json).unwrap()
        + &std::fs::read_to_string(s.path("stderr.txt")).unwrap();
    assert!(
        !all.contains(PLANTED),
        "the planted token's value leaked into an output"
    );
}

/// In a grandchild of its own, reparented to init (so its events are a
/// trace of their own: a rule fires once per trace, and other tests run
/// beside this one), names itself argv[1] (prctl PR_SET_NAME), attaches
/// with ptrace to the pid in argv[2] and detaches; prints the grandchild's
/// pid, or "failed".
const NAMED: &str = r#"
import ctypes, os, sys
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        out = b"failed"
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.prctl(15, sys.argv[1].encode(), 0, 0, 0) == 0
            pid = int(sys.argv[2])
            libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
            assert libc.ptrace(16, pid, None, None) == 0
            os.waitpid(pid, 0)
            assert libc.ptrace(17, pid, None, None) == 0
            out = str(os.getpid()).encode()
        finally:
            os.write(w, out)
            os._exit(0)
    os._exit(0)
os.close(w)
os.wait()
print(os.read(r, 64).decode())
"#;

#[test]
fn a_process_named_like_an_excluded_program_or_a_debugger_is_neither() {
    if !root_or_skip("a_process_named_like_an_excluded_program_or_a_debugger_is_neither") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let s = Scratch::new("mem-named");
    let cfg = write_policy(&s, "memory:\n  exclude_processes: [\"gdb\"]\n");
    let mut victim = Command::new("sleep")
        .arg("60")
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let vpid = victim.id().to_string();
    // Excluded by the policy, the target's own name, a debugger's: each in
    // a run of its own (a rule fires once per trace).
    for name in ["gdb", "sleep", "strace"] {
        let mon = Monitor::start(&s.0, &["--config", &cfg]);
        let out = Command::new("/usr/bin/python3")
            .args(["-c", NAMED, name, &vpid])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        let pid: u32 = said
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: the attach failed: {said}"));
        let events = mon.stop();
        let attach = from_pid(&events, "memory", pid)
            .into_iter()
            .find(|e| e["kind"] == "ptrace" && e["comm"] == name)
            .unwrap_or_else(|| {
                panic!(
                    "{name}: the attach was not reported:\n{}",
                    describe(&events)
                )
            });
        assert_eq!(attach["severity"], "critical", "{attach}");
        assert!(
            events.iter().any(|g| g["type"] == "signal"
                && g["rule"] == "ptrace-attach-to-another-program"
                && g["events"]
                    .as_array()
                    .is_some_and(|v| v.contains(&attach["id"]))),
            "{name}: the attach raised no signal:\n{}",
            describe(&events)
        );
    }
    let _ = victim.kill();
    let _ = victim.wait();
}

/// Makes its own environment `argv[1]` bytes long without exec: an
/// unreadable-but-mapped anonymous region named as the environment with
/// prctl(PR_SET_MM_MAP), which needs no privilege (CONFIG_CHECKPOINT_RESTORE);
/// prints "ready", then sleeps.
const HUGE_ENVIRON: &str = r#"
import ctypes, mmap, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
size = int(sys.argv[1])
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000, -1, 0)
f = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
g = lambda n: int(f[n - 3])
libc.sbrk.restype = ctypes.c_void_p
m = struct.pack("11QQII", g(26), g(27), g(45), g(46), g(47), libc.sbrk(0), g(28), g(48), g(49),
                addr, addr + size, 0, 0, 0xffffffff)
if libc.prctl(35, 14, ctypes.create_string_buffer(m), len(m), 0) != 0:
    print("failed", ctypes.get_errno(), flush=True)
    sys.exit(1)
print("ready", flush=True)
time.sleep(60)
"#;

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_huge_environment_does_not_make_bee_trace_read_it_all() {
    if !root_or_skip("a_huge_environment_does_not_make_bee_trace_read_it_all") {
        return;
    }
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let s = Scratch::new("mem-huge-env");
    let mon = Monitor::start(&s.0, &["--probe-type", "memory_monitor"]);
    // The job, as nobody: one process with a 512 MiB "environment" (no
    // memory behind it: untouched pages read as the zero page), another
    // opening it, which makes bee-trace look for secret names in it.
    let size: u64 = 512 << 20;
    let mut holder = Command::new("/usr/bin/python3")
        .args(["-c", HUGE_ENVIRON, &size.to_string()])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "ready",
        "the holder could not grow its environ"
    );
    let before = peak_rss_kib(mon.child.id());
    let reader = run(Command::new("head")
        .args(["-c", "1"])
        .arg(format!("/proc/{}/environ", holder.id()))
        .uid(65534)
        .gid(65534));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !read_events(&mon.events_path)
        .iter()
        .any(|e| e["type"] == "memory" && e["pid"] == reader && e["kind"] == "proc_environ")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no proc_environ event from {reader}: {}",
            mon.stderr()
        );
        // Another event, so the pipeline moves on and the stream is flushed.
        run(Command::new("head")
            .args(["-c", "1"])
            .arg(format!("/proc/{}/maps", holder.id())));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let grew = peak_rss_kib(mon.child.id()).saturating_sub(before);
    let _ = holder.kill();
    let _ = holder.wait();
    mon.stop();
    assert!(
        grew < 64 << 10,
        "bee-trace's peak memory grew by {grew} KiB reading a job's environ"
    );
}
