//! Shared harness for the integration tests: start the real bee-trace binary
//! as root, wait for its ready file, make things happen, stop it with
//! SIGTERM and read every event it wrote.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod net;
pub use net::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_bee-trace");

/// True when the test may run. Without root it skips, unless
/// BEE_TRACE_REQUIRE_ROOT=1 (CI), where a skip is a failure.
pub fn root_or_skip(name: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("BEE_TRACE_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{name} needs root and BEE_TRACE_REQUIRE_ROOT=1 forbids skipping it");
    }
    eprintln!("SKIPPED {name}: needs root");
    false
}

/// A scratch directory removed at drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("bee-trace-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Monitor {
    pub child: Child,
    pub dir: PathBuf,
    pub events_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Held while this monitor may refuse connections: its egress programs
    /// judge every process on the host, other test runs' too (`NetLock`).
    _net: Option<NetLock>,
}

impl Monitor {
    /// Starts bee-trace with NDJSON output into `dir` and waits until every
    /// probe is attached.
    pub fn start(dir: &Path, extra: &[&str]) -> Monitor {
        Monitor::start_as(dir, "", "json", extra)
    }

    /// A monitor whose files carry `tag` (several can run side by side),
    /// writing `format` (json or human) to its output file.
    pub fn start_as(dir: &Path, tag: &str, format: &str, extra: &[&str]) -> Monitor {
        Monitor::start_env(dir, tag, format, extra, &[])
    }

    /// `start_as` with these variables set in bee-trace's environment.
    pub fn start_env(
        dir: &Path,
        tag: &str,
        format: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Monitor {
        let events_path = dir.join(format!("{tag}events.ndjson"));
        let ready = dir.join(format!("{tag}ready"));
        let stderr_path = dir.join(format!("{tag}stderr.txt"));
        let _ = std::fs::remove_file(&ready);
        let net = enforces(extra).then(NetLock::take);
        let child = Command::new(BIN)
            .args(["--format", format, "--output"])
            .arg(&events_path)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("start bee-trace");
        let mut m = Monitor {
            child,
            dir: dir.into(),
            events_path,
            stderr_path,
            _net: net,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("bee-trace exited before ready ({status}): {}", m.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "bee-trace not ready in 60s: {}",
                m.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGHUP and waits until bee-trace says how the reload went;
    /// returns that line.
    pub fn reload(&self) -> String {
        let lines = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.contains("policy reloaded") || l.contains("refused"))
                .map(str::to_string)
                .collect()
        };
        let before = lines(&self.stderr()).len();
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = lines(&self.stderr());
            if now.len() > before {
                return now[before].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no reload outcome in 30s: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for a clean exit.
    fn terminate(&mut self) {
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "bee-trace exited with {status}: {}",
            self.stderr()
        );
    }

    /// SIGTERM; returns how it exited (a verdict may make that non-zero),
    /// its stderr and every event written.
    pub fn stop_status(mut self) -> (std::process::ExitStatus, String, Vec<Value>) {
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        (status, self.stderr(), read_events(&self.events_path))
    }

    /// SIGTERM, wait for a clean exit, return the output file's text.
    pub fn stop_text(mut self) -> String {
        self.terminate();
        std::fs::read_to_string(&self.events_path).unwrap_or_default()
    }

    /// SIGTERM, wait for a clean exit, return every event written.
    pub fn stop(mut self) -> Vec<Value> {
        self.terminate();
        read_events(&self.events_path)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad NDJSON line {l:?}: {e}")))
        .collect()
}

/// Writes `yaml` as the scratch directory's policy.yml; returns its path.
pub fn write_policy(s: &Scratch, yaml: &str) -> String {
    let p = s.path("policy.yml");
    std::fs::write(&p, yaml).unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs a Python script that prints one JSON value; returns its pid and
/// that value.
pub fn python_json<T: serde::de::DeserializeOwned>(script: &str, args: &[&str]) -> (u32, T) {
    let child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the python client failed");
    (pid, serde_json::from_slice(&out.stdout).unwrap())
}

/// Runs a command to completion and returns its pid.
pub fn run(cmd: &mut Command) -> u32 {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    child.wait().unwrap();
    pid
}

pub fn describe(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] != "process")
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The events of one type from one pid.
pub fn from_pid<'a>(events: &'a [Value], kind: &str, pid: u32) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["pid"] == pid)
        .collect()
}

/// Did `pid` or one of its descendants act in `e` (the acting process or
/// one of its listed ancestors)? Other processes on the host, other test
/// runs' among them, are never taken for the test's own.
pub fn in_tree(e: &Value, pid: u32) -> bool {
    e["pid"] == pid
        || e["ancestors"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["pid"] == pid))
}

/// The events of one type from `pid`'s process tree.
pub fn from_tree<'a>(events: &'a [Value], kind: &str, pid: u32) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && in_tree(e, pid))
        .collect()
}

/// bee-trace's program names: tracepoint handlers, fexit handlers and the
/// cgroup egress hooks (the kernel keeps 15 characters of each).
pub fn ours(name: &str) -> bool {
    name.starts_with("handle_") || name.starts_with("egress_") || name.starts_with("fexit_")
}

/// The names of bee-trace's programs loaded in the kernel now.
pub fn our_programs() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .expect("bpftool is installed by make");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str())
                .filter(|n| ours(n))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to 10 s for bee-trace's loaded programs to fall back to `before`
/// of them (the kernel frees a program once its last fd closes, shortly after
/// the process exits); fails naming the ones still loaded and `after`, what
/// just happened.
pub fn assert_programs_unloaded(before: usize, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = our_programs();
        if now.len() <= before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "programs still loaded 10s after {after}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ids (`prog_id`, `map_id` or `link_id`) of the BPF objects `pid` holds
/// open, from its fdinfo: how a test tells its own instance's objects from
/// another bee-trace's on the same host.
pub fn held_ids(pid: u32, field: &str) -> std::collections::BTreeSet<u64> {
    let mut out = std::collections::BTreeSet::new();
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix(&format!("{field}:")) {
                if let Ok(id) = v.trim().parse() {
                    out.insert(id);
                }
            }
        }
    }
    out
}

/// `bpftool -j ARGS` as a list of objects (bpftool must succeed).
pub fn bpftool_json(args: &[&str]) -> Vec<Value> {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .expect("bpftool is installed by make");
    assert!(out.status.success(), "bpftool {args:?} failed");
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}
