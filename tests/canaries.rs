//! Canary planting and removal cannot be turned by the job that owns the
//! directories involved, a run killed while planting leaves nothing the next
//! start does not remove, and the state directory is trusted only when root
//! alone can use it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const JOB_UID: u32 = 65534;

fn policy_with_canaries(s: &Scratch, paths: &[std::path::PathBuf]) -> String {
    let mut y = String::from("canaries:\n");
    for p in paths {
        y.push_str(&format!("  - path: {}\n", p.display()));
    }
    write_policy(s, &y)
}

#[test]
fn a_job_link_on_the_way_to_a_canary_is_not_followed() {
    if !root_or_skip("a_job_link_on_the_way_to_a_canary_is_not_followed") {
        return;
    }
    let s = Scratch::new("canary-link");
    let home = s.path("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(JOB_UID), Some(JOB_UID)).unwrap();
    let vault = s.path("vault");
    std::fs::create_dir(&vault).unwrap();
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The job points its own .aws at a directory only root may write.
    let st = Command::new("ln")
        .arg("-s")
        .arg(&vault)
        .arg(home.join(".aws"))
        .uid(JOB_UID)
        .status()
        .unwrap();
    assert!(st.success());
    // And a canary whose parent is a plain file: skipped, not fatal.
    std::fs::write(s.path("plain"), "x").unwrap();
    let cfg = policy_with_canaries(
        &s,
        &[
            home.join(".aws/credentials"),
            s.path("plain/.npmrc"),
            home.join(".netrc"),
        ],
    );
    let m = Monitor::start(&s.0, &["--config", &cfg]);
    let err = m.stderr();
    assert!(
        !vault.join("credentials").exists(),
        "root planted a decoy through the job's link into a root-only directory"
    );
    assert!(home.join(".netrc").is_file(), "the ordinary canary: {err}");
    m.stop();
    assert!(!home.join(".netrc").exists());
    assert!(
        std::fs::read_dir(&vault).unwrap().next().is_none(),
        "vault touched"
    );
}

#[test]
fn a_run_killed_while_planting_leaves_nothing_behind() {
    if !root_or_skip("a_run_killed_while_planting_leaves_nothing_behind") {
        return;
    }
    let s = Scratch::new("canary-kill");
    let paths: Vec<_> = (0..400)
        .map(|i| s.path(&format!("h{i}/.aws/credentials")))
        .collect();
    let cfg = policy_with_canaries(&s, &paths);
    let mut child = Command::new(BIN)
        .args(["--probe-type", "file_monitor", "--config", &cfg])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the first decoy is there, mid-way through the list.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !paths[0].exists() {
        assert!(Instant::now() < deadline, "no canary planted in 60s");
        assert!(child.try_wait().unwrap().is_none(), "bee-trace exited");
        std::hint::spin_loop();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let planted = paths.iter().filter(|p| p.exists()).count();
    assert!(planted > 0);
    // The next start removes what the killed one left.
    let st = Command::new(BIN)
        .args(["--probe-type", "file_monitor", "--duration", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let left: Vec<_> = paths.iter().filter(|p| p.exists()).collect();
    assert!(
        left.is_empty(),
        "{} of {planted} decoys survived: {:?}",
        left.len(),
        left.first()
    );
    let dirs = (0..400)
        .filter(|i| s.path(&format!("h{i}")).exists())
        .count();
    assert_eq!(dirs, 0, "directories made for decoys survived");
}

/// Runs bee-trace in a private mount namespace whose /run is a fresh tmpfs
/// prepared by `setup` (a shell snippet); returns (success, stderr).
fn run_with_private_run(setup: &str) -> (bool, String) {
    let script = format!(
        "mount -t tmpfs tmpfs /run && {setup} && exec {BIN} --probe-type file_monitor --duration 1"
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_state_directory_others_can_use_is_refused() {
    if !root_or_skip("a_state_directory_others_can_use_is_refused") {
        return;
    }
    for setup in [
        "mkdir -m 0700 /run/bee-trace && chown 65534 /run/bee-trace",
        "mkdir -m 0777 /run/bee-trace",
        "mkdir -m 0700 /run/elsewhere && ln -s /run/elsewhere /run/bee-trace",
    ] {
        let (ok, err) = run_with_private_run(setup);
        assert!(
            !ok && err.contains("/run/bee-trace"),
            "{setup}: accepted: {err}"
        );
    }
    let (ok, err) = run_with_private_run("true");
    assert!(ok, "a fresh /run: {err}");
}
