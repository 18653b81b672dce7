//! Kill on tripwires and canaries, for real: the reader of a decoy dies by
//! SIGKILL from the kernel, the event says so, and bee-trace removes exactly
//! the decoys it planted.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::*;

/// Runs `cmd` and returns (pid, the signal that ended it, what it printed).
fn run_signalled(cmd: &mut Command) -> (u32, Option<i32>, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    (
        pid,
        out.status.signal(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn canary_read_kills_the_reader_and_canaries_are_removed_on_exit() {
    if !root_or_skip("canary_read_kills_the_reader_and_canaries_are_removed_on_exit") {
        return;
    }
    let s = Scratch::new("canary");
    let home = s.path("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let aws = home.join(".aws/credentials"); // .aws/ does not exist: planted too
    let ssh = home.join(".ssh/id_rsa");
    let real = home.join(".npmrc"); // a real file already there
    std::fs::write(&real, "registry=https://registry.example.invalid/\n").unwrap();
    let honey = s.path("honey.txt");
    std::fs::write(&honey, "decoy\n").unwrap();
    let cfg = s.path("policy.yml");
    std::fs::write(
        &cfg,
        format!(
            "canaries:\n  - path: {}\n  - path: {}\n    action: alert\n  - path: {}\nfiles:\n  rules:\n    - path: {}\n      action: kill\n",
            aws.display(),
            ssh.display(),
            real.display(),
            honey.display()
        ),
    )
    .unwrap();

    let mon = Monitor::start(&s.0, &["--config", cfg.to_str().unwrap()]);
    assert!(
        aws.is_file() && ssh.is_file(),
        "canaries planted: {}",
        mon.stderr()
    );
    let (aws_pid, aws_sig, aws_out) = run_signalled(Command::new("cat").arg(&aws));
    let (ssh_pid, ssh_sig, _) = run_signalled(Command::new("cat").arg(&ssh));
    let (real_pid, real_sig, real_out) = run_signalled(Command::new("cat").arg(&real));
    std::fs::hard_link(&honey, s.path("renamed")).unwrap();
    let (hard_pid, hard_sig, hard_out) = run_signalled(Command::new("cat").arg(s.path("renamed")));
    let events = mon.stop();

    assert_eq!(
        aws_sig,
        Some(libc::SIGKILL),
        "the canary reader dies by SIGKILL"
    );
    assert_eq!(aws_out, "", "killed before it could print the decoy");
    let ev = from_pid(&events, "file", aws_pid);
    assert_eq!(ev.len(), 1, "{}", describe(&events));
    assert_eq!(ev[0]["severity"], "critical");
    assert_eq!(ev[0]["action"], "killed");
    assert_eq!(ev[0]["category"], "canary");
    assert_eq!(ev[0]["path"], aws.to_str().unwrap());

    // An alert-only canary is reported, and its reader lives.
    assert_eq!(ssh_sig, None);
    let ev = from_pid(&events, "file", ssh_pid);
    assert_eq!(ev.len(), 1, "{}", describe(&events));
    assert_eq!(ev[0]["severity"], "critical");
    assert!(ev[0].get("action").is_none(), "{}", ev[0]);

    // The real file at a canary path is neither touched nor armed.
    assert_eq!(real_sig, None);
    assert!(real_out.contains("registry.example.invalid"));
    assert!(
        from_pid(&events, "file", real_pid)
            .iter()
            .all(|e| e["category"] != "canary"),
        "{}",
        describe(&events)
    );

    // A kill rule arms the inode: a hardlink under another name kills too.
    assert_eq!(hard_sig, Some(libc::SIGKILL));
    assert_eq!(hard_out, "");
    let ev = from_pid(&events, "file", hard_pid);
    assert_eq!(ev.len(), 1, "{}", describe(&events));
    assert_eq!(ev[0]["action"], "killed");
    assert_eq!(ev[0]["same_inode_as"], honey.to_str().unwrap());

    // Exactly what was planted is gone; what was there stays.
    assert!(!aws.exists() && !home.join(".aws").exists());
    assert!(!ssh.exists() && home.join(".ssh").is_dir());
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "registry=https://registry.example.invalid/\n"
    );
    assert!(honey.exists());
    // No decoy value appears in any output.
    let all = std::fs::read_to_string(s.0.join("events.ndjson")).unwrap();
    assert!(!all.contains("AKIA") && !all.contains("OPENSSH PRIVATE KEY"));
}

#[test]
fn canaries_left_by_a_killed_run_are_removed_by_the_next() {
    if !root_or_skip("canaries_left_by_a_killed_run_are_removed_by_the_next") {
        return;
    }
    let s = Scratch::new("canary-left");
    let decoy = s.path("home/.env");
    let cfg = s.path("policy.yml");
    std::fs::write(&cfg, format!("canaries:\n  - path: {}\n", decoy.display())).unwrap();
    let mut first = Monitor::start(&s.0, &["--config", cfg.to_str().unwrap()]);
    assert!(decoy.is_file());
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(decoy.is_file(), "SIGKILL leaves the decoy behind");

    // The next run, without canaries, removes it.
    let empty = s.path("empty.yml");
    std::fs::write(&empty, "").unwrap();
    let second = Monitor::start(&s.0, &["--config", empty.to_str().unwrap()]);
    assert!(!decoy.exists() && !s.path("home").exists());
    second.stop();
}

/// The job owns the directory of a file a kill rule names and puts a link
/// there to a file of the host's: bee-trace must not arm the host's file,
/// or every process that reads it (root's included) dies by SIGKILL.
#[test]
fn a_kill_rule_is_not_armed_through_a_link_the_job_made() {
    if !root_or_skip("a_kill_rule_is_not_armed_through_a_link_the_job_made") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let s = Scratch::new("tripwire-link");
    let job = s.path("job");
    std::fs::create_dir(&job).unwrap();
    std::os::unix::fs::chown(&job, Some(65534), Some(65534)).unwrap();
    let host_file = s.path("host-file");
    std::fs::write(&host_file, "the host's own data\n").unwrap();
    let named = job.join("honey");
    let st = Command::new("ln")
        .arg("-s")
        .arg(&host_file)
        .arg(&named)
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(st.success(), "ln -s as nobody");
    let cfg = s.path("policy.yml");
    std::fs::write(
        &cfg,
        format!(
            "files:\n  rules:\n    - path: {}\n      action: kill\n",
            named.display()
        ),
    )
    .unwrap();
    let mon = Monitor::start(&s.0, &["--config", cfg.to_str().unwrap()]);
    let (_, sig, out) = run_signalled(Command::new("cat").arg(&host_file));
    let stderr = mon.stderr();
    mon.stop();
    assert_eq!(
        sig, None,
        "root reading the host's file was killed: {stderr}"
    );
    assert_eq!(out, "the host's own data\n");
}
