//! The verdict, for real: `--fail-on` (or the policy's `verdict.fail_on`)
//! makes the exit status follow what the run saw, a blocked connect fails
//! it whatever the level, the summary's last line says why, findings become
//! GitHub workflow commands that the watched system cannot forge, and a CI
//! log gets human lines without INFO exec/exit.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A file rule of severity high on `token`, read by a copy of cat whose
/// name no other process on the host has: `--command` keeps the run to it,
/// so other work on the host cannot change the verdict.
struct Reader {
    s: Scratch,
    cat: std::path::PathBuf,
    token: std::path::PathBuf,
}

const COMM: &str = "bt-verdict-cat";

impl Reader {
    fn new(tag: &str, token_name: &str) -> Reader {
        let s = Scratch::new(tag);
        std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cat = s.path(COMM);
        std::fs::copy("/bin/cat", &cat).unwrap();
        let token = s.path(token_name);
        std::fs::write(&token, "not a secret\n").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        Reader { s, cat, token }
    }

    fn policy(&self, extra: &str) -> String {
        let yaml = format!(
            "files:\n  rules:\n    - path: {:?}\n      severity: high\n{extra}",
            self.token.to_str().unwrap()
        );
        write_policy(&self.s, &yaml)
    }

    /// The read, as nobody.
    fn read(&self) -> u32 {
        run(Command::new(&self.cat)
            .arg(&self.token)
            .uid(65534)
            .gid(65534))
    }
}

use std::os::unix::process::CommandExt;

/// Whether the file holds `pid`'s file event; read while it is written,
/// so a line not yet whole is passed over.
fn has_read(path: &std::path::Path, pid: u32) -> bool {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|e| e["type"] == "file" && e["pid"] == pid)
}

fn last_line(stderr: &str) -> &str {
    stderr.lines().last().unwrap_or("")
}

fn run_once(r: &Reader, cfg: &str, flags: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut args = vec![
        "--probe-type",
        "file_monitor",
        "--config",
        cfg,
        "--command",
        COMM,
    ];
    args.extend_from_slice(flags);
    let mon = Monitor::start_env(&r.s.0, "", "json", &args, env);
    let pid = r.read();
    // The read is in the stream before the run is stopped.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !has_read(&mon.events_path, pid) {
        assert!(
            Instant::now() < deadline,
            "the read was not reported: {}",
            mon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, stderr, _) = mon.stop_status();
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn the_exit_status_follows_fail_on_and_the_last_line_says_why() {
    if !root_or_skip("the_exit_status_follows_fail_on_and_the_last_line_says_why") {
        return;
    }
    let r = Reader::new("verdict-level", "token");
    let cfg = r.policy("");
    let (code, err) = run_once(&r, &cfg, &["--fail-on", "high"], &[]);
    let last = last_line(&err);
    assert_eq!(code, 2, "{err}");
    assert!(
        last.starts_with(
            "bee-trace: verdict FAIL (fail-on high, exit 2): 1 event at or above high"
        ) && last.contains(r.token.to_str().unwrap()),
        "{err}"
    );
    let (code, err) = run_once(&r, &cfg, &["--fail-on", "critical"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        last_line(&err).starts_with("bee-trace: verdict PASS (fail-on critical, exit 0)"),
        "{err}"
    );
    // The policy's key, with no flag; the flag overrides it.
    let cfg = r.policy("verdict:\n  fail_on: warning\n");
    let (code, err) = run_once(&r, &cfg, &[], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(last_line(&err).contains("FAIL (fail-on warning"), "{err}");
    let (code, err) = run_once(&r, &cfg, &["--fail-on", "critical"], &[]);
    assert_eq!(code, 0, "{err}");
    // Without a level there is no verdict: the run exits 0 as it always did.
    let cfg = r.policy("");
    let (code, err) = run_once(&r, &cfg, &[], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("verdict"), "{err}");
}

#[test]
fn findings_become_workflow_commands_the_watched_system_cannot_forge() {
    if !root_or_skip("findings_become_workflow_commands_the_watched_system_cannot_forge") {
        return;
    }
    let name = "x <img src=x onerror=alert(1)> **b**%0A::warning::forged,title=y:z";
    let r = Reader::new("verdict-annotations", name);
    let cfg = r.policy("");
    let env = [("GITHUB_ACTIONS", "true")];
    let (code, err) = run_once(&r, &cfg, &["--fail-on", "high"], &env);
    assert_eq!(code, 2, "{err}");
    let commands: Vec<&str> = err.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(commands.len(), 1, "one finding, one command: {err}");
    let c = commands[0];
    assert!(
        c.starts_with("::error title=bee-trace HIGH file::read "),
        "{c}"
    );
    assert!(
        c.contains("**b**%250A::warning::forged,title=y:z (watched_file, ok)"),
        "the name is in the message, its % escaped: {c}"
    );
    // Off a GitHub runner, no workflow commands.
    let (_, err) = run_once(&r, &cfg, &["--fail-on", "high"], &[]);
    assert!(!err.lines().any(|l| l.starts_with("::")), "{err}");
}

const CLIENT: &str = r#"
import errno, socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.connect(("198.51.100.3", 18081)); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
"#;

#[test]
fn a_blocked_connect_fails_the_verdict_whatever_the_level() {
    if !root_or_skip("a_blocked_connect_fails_the_verdict_whatever_the_level") {
        return;
    }
    let _ns = Netns::new();
    let s = Scratch::new("verdict-blocked");
    let cfg = write_policy(
        &s,
        "network:\n  mode: block\n  blocked_ips: [198.51.100.3]\n",
    );
    let report = s.path("report.json");
    let md = s.path("summary.md");
    let mon = Monitor::start(
        &s.0,
        &[
            "--probe-type",
            "network_monitor",
            "--config",
            &cfg,
            "--fail-on",
            "critical",
            "--report-json",
            report.to_str().unwrap(),
            "--report-md",
            md.to_str().unwrap(),
        ],
    );
    let out = Command::new("python3")
        .args(["-c", CLIENT])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "EPERM");
    let (status, err, _) = mon.stop_status();
    assert_eq!(status.code(), Some(2), "{err}");
    let last = last_line(&err);
    assert!(
        last.starts_with("bee-trace: verdict FAIL (fail-on critical, exit 2)")
            && last.contains("blocked")
            && last.contains("198.51.100.3:18081"),
        "{err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["verdict"]["result"], "fail", "{v}");
    assert!(v["verdict"]["blocked"].as_u64() >= Some(1), "{v}");
    let text = std::fs::read_to_string(&md).unwrap();
    let first = text
        .lines()
        .find(|l| l.starts_with("**Verdict"))
        .unwrap_or_default();
    assert!(
        first.starts_with("**Verdict: ❌ FAIL** (fail-on critical, exit 2)"),
        "{text}"
    );
    assert!(
        text.find("**Verdict").unwrap() < text.find("## Events").unwrap(),
        "the verdict comes first: {text}"
    );
}

/// Runs bee-trace as a CI step would: CI=true, the stream on standard
/// output (a file, not a terminal), until the read is in it.
fn ci_log(r: &Reader, cfg: &str, extra: &[&str]) -> String {
    let out_path = r.s.path("log.txt");
    let ready = r.s.path("ci-ready");
    let record = r.s.path("ci-record.ndjson");
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(&record);
    let mut child = Command::new(BIN)
        .args(["--probe-type", "all", "--config", cfg, "--command", COMM])
        .arg("--ready-file")
        .arg(&ready)
        .arg("--record")
        .arg(&record)
        .args(extra)
        .env("CI", "true")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "not ready in 60 s");
        assert!(child.try_wait().unwrap().is_none(), "bee-trace exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = r.read();
    // The record has every event, shown in the log or not.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !has_read(&record, pid) {
        assert!(Instant::now() < deadline, "the read was not recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    std::fs::read_to_string(&out_path).unwrap()
}

#[test]
fn a_ci_log_gets_human_lines_without_info_exec_unless_asked() {
    if !root_or_skip("a_ci_log_gets_human_lines_without_info_exec_unless_asked") {
        return;
    }
    let r = Reader::new("verdict-cilog", "token");
    let cfg = r.policy("");
    let log = ci_log(&r, &cfg, &[]);
    let read = format!("HIGH     file    read {}", r.token.display());
    assert!(log.contains(&read), "{log}");
    assert!(!log.contains("{\""), "no NDJSON in a CI log: {log}");
    assert!(!log.contains('\u{1b}'), "no colour off a terminal: {log}");
    assert!(!log.contains("INFO     process"), "{log}");
    let log = ci_log(&r, &cfg, &["--min-severity", "info"]);
    assert!(
        log.contains("INFO     process exec ") && log.contains(COMM),
        "--min-severity info shows exec: {log}"
    );
    let log = ci_log(&r, &cfg, &["--min-severity", "critical"]);
    assert!(!log.contains(&read), "below --min-severity: {log}");
}
