//! The files bee-trace writes where it is asked to (reports, the event
//! stream, the record, the ready file) cannot be turned against the host by
//! the job that owns their directory: no write through a link the job put
//! there, before start or while running, and nothing readable by others.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{root_or_skip, Monitor, Scratch, BIN};

const JOB_UID: u32 = 65534;

/// A directory owned by the unprivileged job user, and a root-only
/// directory holding the files the job would like root to overwrite.
fn layout(s: &Scratch) -> (std::path::PathBuf, std::path::PathBuf) {
    let job = s.path("job");
    std::fs::create_dir(&job).unwrap();
    std::os::unix::fs::chown(&job, Some(JOB_UID), Some(JOB_UID)).unwrap();
    let vault = s.path("vault");
    std::fs::create_dir(&vault).unwrap();
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o700)).unwrap();
    for v in ["md", "json", "out", "rec", "ready"] {
        std::fs::write(vault.join(v), "original\n").unwrap();
        std::fs::set_permissions(vault.join(v), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (job, vault)
}

/// As the job user: replace each name in `job` by a link into `vault`.
fn swap_for_links(job: &Path, vault: &Path, pairs: &[(&str, &str)]) {
    let mut script = String::new();
    for (name, target) in pairs {
        script.push_str(&format!(
            "rm -f '{j}/{name}' && ln -s '{v}/{target}' '{j}/{name}' && ",
            j = job.display(),
            v = vault.display()
        ));
    }
    script.push_str("true");
    let st = Command::new("sh")
        .args(["-c", &script])
        .uid(JOB_UID)
        .gid(JOB_UID)
        .status()
        .unwrap();
    assert!(st.success(), "the job could not make its links");
}

fn assert_vault_intact(vault: &Path) {
    for v in ["md", "json", "out", "rec", "ready"] {
        assert_eq!(
            std::fs::read_to_string(vault.join(v)).unwrap(),
            "original\n",
            "root wrote through the job's link into {v}"
        );
    }
}

#[test]
fn reports_are_not_written_through_a_link_swapped_in_while_running() {
    if !root_or_skip("reports_are_not_written_through_a_link_swapped_in_while_running") {
        return;
    }
    let s = Scratch::new("outfiles-swap");
    let (job, vault) = layout(&s);
    // Like $GITHUB_STEP_SUMMARY: the runner made the file, the job owns it.
    let summary = job.join("summary.md");
    std::fs::write(&summary, "").unwrap();
    std::os::unix::fs::chown(&summary, Some(JOB_UID), Some(JOB_UID)).unwrap();
    let m = Monitor::start(
        &s.0,
        &[
            "--probe-type",
            "file_monitor",
            "--report-md",
            summary.to_str().unwrap(),
            "--report-json",
            job.join("report.json").to_str().unwrap(),
            "--record",
            job.join("record.ndjson").to_str().unwrap(),
        ],
    );
    swap_for_links(
        &job,
        &vault,
        &[
            ("summary.md", "md"),
            ("report.json", "json"),
            ("record.ndjson", "rec"),
        ],
    );
    let stderr_path = m.stderr_path.clone();
    m.stop();
    assert_vault_intact(&vault);
    let err = std::fs::read_to_string(stderr_path).unwrap_or_default();
    assert!(!err.contains("cannot write"), "{err}");
}

#[test]
fn links_planted_before_start_are_refused() {
    if !root_or_skip("links_planted_before_start_are_refused") {
        return;
    }
    let s = Scratch::new("outfiles-before");
    let (job, vault) = layout(&s);
    let cases = [
        ("--report-md", "summary.md", "md"),
        ("--report-json", "report.json", "json"),
        ("--output", "events.ndjson", "out"),
        ("--record", "record.ndjson", "rec"),
    ];
    for (flag, name, target) in cases {
        swap_for_links(&job, &vault, &[(name, target)]);
        let out = Command::new(BIN)
            .args(["--probe-type", "file_monitor", "--duration", "1", flag])
            .arg(job.join(name))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("symbolic link"),
            "{flag} through a link was not refused: {err}"
        );
        assert_vault_intact(&vault);
    }
}

#[test]
fn written_files_are_private() {
    if !root_or_skip("written_files_are_private") {
        return;
    }
    let s = Scratch::new("outfiles-mode");
    // An existing world-readable report keeps its owner but not its mode.
    let md = s.path("summary.md");
    std::fs::write(&md, "").unwrap();
    std::fs::set_permissions(&md, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&md, Some(JOB_UID), Some(JOB_UID)).unwrap();
    let m = Monitor::start(
        &s.0,
        &[
            "--probe-type",
            "file_monitor",
            "--report-md",
            md.to_str().unwrap(),
            "--report-json",
            s.path("report.json").to_str().unwrap(),
            "--record",
            s.path("record.ndjson").to_str().unwrap(),
        ],
    );
    let events = m.events_path.clone();
    m.stop();
    for p in [
        events,
        s.path("report.json"),
        s.path("record.ndjson"),
        s.path("ready"),
    ] {
        let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", p.display());
    }
    let meta = std::fs::metadata(&md).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, JOB_UID));
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .contains("# bee-trace report"));
}

#[test]
fn a_fifo_as_output_is_refused_at_once() {
    if !root_or_skip("a_fifo_as_output_is_refused_at_once") {
        return;
    }
    let s = Scratch::new("outfiles-fifo");
    let fifo = s.path("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let mut child = Command::new(BIN)
        .args([
            "--probe-type",
            "file_monitor",
            "--duration",
            "1",
            "--output",
        ])
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("bee-trace hangs on a FIFO as --output");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        !status.success() && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn a_directory_the_job_swapped_for_a_link_is_not_followed() {
    if !root_or_skip("a_directory_the_job_swapped_for_a_link_is_not_followed") {
        return;
    }
    let s = Scratch::new("outfiles-dirlink");
    let (job, vault) = layout(&s);
    // The job points a directory on the report's path at a root-only one
    // (think /etc/sudoers.d, where any new file breaks sudo).
    let st = Command::new("ln")
        .arg("-s")
        .arg(&vault)
        .arg(job.join("step"))
        .uid(JOB_UID)
        .gid(JOB_UID)
        .status()
        .unwrap();
    assert!(st.success());
    for flag in [
        "--report-md",
        "--report-json",
        "--output",
        "--record",
        "--ready-file",
    ] {
        let out = Command::new(BIN)
            .args(["--probe-type", "file_monitor", "--duration", "1", flag])
            .arg(job.join("step/new-file"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("symbolic link owned by uid 65534"),
            "{flag} through the job's directory link was not refused: {err}"
        );
        assert!(
            !vault.join("new-file").exists(),
            "{flag}: root created a file in the root-only directory"
        );
    }
}
