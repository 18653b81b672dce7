//! Agent mode, for real: `agent start` returns once every probe is
//! attached (a read made the moment it returns is seen), a second start is
//! refused, `agent status` counts, `agent stop` ends the run, prints the
//! summary and annotations, appends the Markdown report to the step
//! summary a runner user owns, and exits with the verdict; a report path
//! that cannot be written is refused at start. Each test has its own state
//! directory, so agents of other test runs on the host are not in the way.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

const COMM: &str = "bt-agent-cat";

/// A root-only state directory under /run for one test.
struct AgentDir(PathBuf);

impl AgentDir {
    fn new(tag: &str) -> AgentDir {
        let p = PathBuf::from(format!(
            "/run/bee-trace-test-agent-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        AgentDir(p)
    }
    fn arg(&self) -> String {
        format!("--dir={}", self.0.display())
    }
}

impl Drop for AgentDir {
    fn drop(&mut self) {
        // A test that failed half-way must not leave its agent running.
        let _ = Command::new(BIN)
            .args(["agent", "stop", &self.arg(), "--timeout", "60"])
            .env_remove("GITHUB_STEP_SUMMARY")
            .output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent(dir: &AgentDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("agent")
        .arg(args[0])
        .arg(dir.arg())
        .args(&args[1..])
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A world-readable token under a rule of severity high, and a copy of cat
/// with a name of its own to read it.
fn setup(s: &Scratch) -> (PathBuf, PathBuf, String) {
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cat = s.path(COMM);
    std::fs::copy("/bin/cat", &cat).unwrap();
    let token = s.path("token");
    std::fs::write(&token, "not a secret\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = write_policy(
        s,
        &format!(
            "files:\n  rules:\n    - path: {:?}\n      severity: high\n",
            token.to_str().unwrap()
        ),
    );
    (cat, token, cfg)
}

fn read_as_nobody(cat: &Path, token: &Path) {
    run(Command::new(cat).arg(token).uid(65534).gid(65534));
}

#[test]
fn agent_start_returns_attached_and_stop_ends_with_the_verdict() {
    if !root_or_skip("agent_start_returns_attached_and_stop_ends_with_the_verdict") {
        return;
    }
    let s = Scratch::new("agent-cycle");
    let (cat, token, cfg) = setup(&s);
    let dir = AgentDir::new("cycle");
    let record = s.path("record.ndjson");
    let o = agent(
        &dir,
        &[
            "start",
            "--probe-type",
            "file_monitor",
            "--config",
            &cfg,
            "--command",
            COMM,
            "--fail-on",
            "high",
            "--record",
            record.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("every probe attached"),
        "{}",
        text(&o)
    );
    // No waiting: once start has returned, the probes are attached.
    read_as_nobody(&cat, &token);

    let again = agent(&dir, &["start", "--probe-type", "file_monitor"], &[]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("an agent already runs"),
        "{}",
        text(&again)
    );

    // The runner's step summary: a file of the runner user, in its
    // directory, with what earlier steps wrote.
    let runner_dir = s.path("runner");
    std::fs::create_dir(&runner_dir).unwrap();
    let summary = runner_dir.join("step_summary");
    std::fs::write(&summary, "earlier step\n").unwrap();
    std::os::unix::fs::chown(&runner_dir, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&summary, Some(65534), Some(65534)).unwrap();

    // The status counts the read once it has been judged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let st = agent(&dir, &["status"], &[]);
        assert!(st.status.success(), "{}", text(&st));
        let out = String::from_utf8_lossy(&st.stdout).into_owned();
        assert!(out.contains("bee-trace agent: running as pid"), "{out}");
        if out.contains("high=1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never counted: {out}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let o = agent(
        &dir,
        &["stop"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap_or("");
    assert!(
        last.starts_with(
            "bee-trace: verdict FAIL (fail-on high, exit 2): 1 event at or above high"
        ),
        "{}",
        text(&o)
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("::error title=bee-trace HIGH file::read ")),
        "{}",
        text(&o)
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("earlier step\n# bee-trace report"), "{md}");
    assert!(
        md.contains("**Verdict: ❌ FAIL** (fail-on high, exit 2)"),
        "{md}"
    );
    let meta = std::fs::metadata(&summary).unwrap();
    assert_eq!(meta.uid(), 65534, "the runner still owns its summary");

    // Sealed and gone.
    let rec = std::fs::read_to_string(&record).unwrap();
    assert!(rec.contains(token.to_str().unwrap()), "{rec}");
    let st = agent(&dir, &["status"], &[]);
    assert_eq!(st.status.code(), Some(1), "{}", text(&st));
    assert!(String::from_utf8_lossy(&st.stdout).contains("not running"));
    assert!(!dir.0.join("control.sock").exists() && !dir.0.join("agent.pid").exists());
    let mode = std::fs::metadata(&dir.0).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o700);
}

#[test]
fn agent_start_refuses_an_unwritable_report_at_once() {
    if !root_or_skip("agent_start_refuses_an_unwritable_report_at_once") {
        return;
    }
    let dir = AgentDir::new("badreport");
    let o = agent(
        &dir,
        &[
            "start",
            "--probe-type",
            "file_monitor",
            "--report-md",
            "/nonexistent-bee-trace-dir/summary.md",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the agent did not start")
            && err.contains("/nonexistent-bee-trace-dir/summary.md"),
        "{}",
        text(&o)
    );
    let st = agent(&dir, &["status"], &[]);
    assert_eq!(st.status.code(), Some(1), "{}", text(&st));
    let o = agent(&dir, &["stop"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no agent runs"),
        "{}",
        text(&o)
    );
}
