//! File sensor, for real: a planted key read every way a path can be named.

mod common;

use std::os::unix::fs::symlink;
use std::process::Command;

use common::*;

#[test]
fn key_reads_are_reported_by_real_path_however_named() {
    if !root_or_skip("key_reads_are_reported_by_real_path_however_named") {
        return;
    }
    let s = Scratch::new("files");
    let home = s.path("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = home.join(".ssh/id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY----- planted\n").unwrap();
    let key_s = key.to_str().unwrap().to_string();
    symlink(&key, s.path("innocent-link")).unwrap();
    std::fs::hard_link(&key, s.path("innocent-hardlink")).unwrap();
    std::fs::write(s.path("notes.txt"), "nothing to see\n").unwrap();
    // A literal policy path makes bee-trace learn the key's inode at start.
    let cfg = s.path("policy.yml");
    std::fs::write(&cfg, format!("files:\n  watch_read: [\"{key_s}\"]\n")).unwrap();

    let mon = Monitor::start(&s.0, &["--config", cfg.to_str().unwrap()]);
    let abs = run(Command::new("cat").arg(&key));
    let rel = run(Command::new("cat")
        .arg(".ssh/id_ed25519")
        .current_dir(&home));
    let dotdot = run(Command::new("cat")
        .arg("../../home/.ssh/../.ssh/id_ed25519")
        .current_dir(s.path("home/.ssh")));
    let dirfd = run(Command::new("python3").args([
        "-c",
        "import os,sys; d=os.open(sys.argv[1], os.O_RDONLY); os.close(os.open('.ssh/id_ed25519', os.O_RDONLY, dir_fd=d))",
        home.to_str().unwrap(),
    ]));
    let link = run(Command::new("cat").arg(s.path("innocent-link")));
    let hard = run(Command::new("cat").arg(s.path("innocent-hardlink")));
    let plain = run(Command::new("cat").arg(s.path("notes.txt")));
    let missing = run(Command::new("cat")
        .arg("id_missing")
        .current_dir(home.join(".ssh")));
    let events = mon.stop();

    let one = |pid: u32, what: &str| -> serde_json::Value {
        let evs = from_pid(&events, "file", pid);
        assert_eq!(
            evs.len(),
            1,
            "{what}: expected one file event from pid {pid}, got:\n{}",
            describe(&events)
        );
        evs[0].clone()
    };
    for (pid, what) in [
        (abs, "absolute"),
        (rel, "relative"),
        (dotdot, "dotdot"),
        (link, "symlink"),
    ] {
        let e = one(pid, what);
        assert_eq!(e["path"], key_s.as_str(), "{what}: {e}");
        assert_eq!(e["comm"], "cat", "{what}: {e}");
        assert_eq!(e["access"], "read", "{what}: {e}");
        assert_eq!(e["result"], "ok", "{what}: {e}");
        assert_eq!(e["resolved"], true, "{what}: {e}");
        assert_eq!(e["severity"], "critical", "{what}: {e}");
        assert_eq!(e["category"], "ssh_key", "{what}: {e}");
        assert_eq!(e["exe"], "/usr/bin/cat", "{what}: {e}");
    }
    let e = one(dirfd, "dirfd");
    assert_eq!(e["path"], key_s.as_str(), "dirfd: {e}");

    let e = one(hard, "hardlink");
    assert_eq!(
        e["path"],
        s.path("innocent-hardlink").to_str().unwrap(),
        "hardlink: {e}"
    );
    assert_eq!(e["same_inode_as"], key_s.as_str(), "hardlink: {e}");

    assert!(
        from_pid(&events, "file", plain).is_empty(),
        "a non-sensitive read made an event:\n{}",
        describe(&events)
    );

    let e = one(missing, "failed open");
    assert_eq!(
        e["path"],
        home.join(".ssh/id_missing").to_str().unwrap(),
        "failed: {e}"
    );
    assert_eq!(e["result"], "ENOENT", "failed: {e}");
    assert_eq!(e["resolved"], false, "failed: {e}");
}

#[test]
fn write_open_of_a_protected_file_is_a_write() {
    if !root_or_skip("write_open_of_a_protected_file_is_a_write") {
        return;
    }
    let s = Scratch::new("write");
    let protected = s.path("protected.conf");
    std::fs::write(&protected, "x=1\n").unwrap();
    let cfg = s.path("policy.yml");
    std::fs::write(
        &cfg,
        format!("files:\n  watch_write: [\"{}\"]\n", protected.display()),
    )
    .unwrap();

    let mon = Monitor::start(
        &s.0,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--probe-type",
            "file_monitor",
        ],
    );
    let reader = run(Command::new("cat").arg(&protected));
    let writer = run(Command::new("sh")
        .arg("-c")
        .arg(format!("echo y=2 >> {}", protected.display())));
    let events = mon.stop();

    assert!(
        from_pid(&events, "file", reader).is_empty(),
        "a read of a write-protected file is not an event:\n{}",
        describe(&events)
    );
    let w = from_pid(&events, "file", writer);
    assert_eq!(w.len(), 1, "{}", describe(&events));
    assert_eq!(w[0]["access"], "write");
    assert_eq!(w[0]["path"], protected.to_str().unwrap());
    assert_eq!(w[0]["category"], "protected_file");
    assert!(
        events.iter().all(|e| e["type"] != "process"),
        "file_monitor prints no process events"
    );
}

#[test]
fn an_expected_program_is_known_by_its_executable_not_its_name() {
    if !root_or_skip("an_expected_program_is_known_by_its_executable_not_its_name") {
        return;
    }
    use std::os::unix::fs::{chown, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let nobody = |c: &mut Command| -> u32 { run(c.uid(65534).gid(65534)) };
    let s = Scratch::new("expected");
    let home = s.path("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = home.join(".ssh/id_rsa");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY----- planted\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bin = s.path("bin");
    std::fs::create_dir(&bin).unwrap();
    for p in [&home, &home.join(".ssh"), &key, &bin] {
        chown(p, Some(65534), Some(65534)).unwrap();
    }
    // The attacker's own copy of cat, named ssh.
    let st = Command::new("cp")
        .arg("/bin/cat")
        .arg(bin.join("ssh"))
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(st.success(), "cp as nobody");
    let cfg = s.path("policy.yml");
    let key_s = key.to_str().unwrap();
    std::fs::write(&cfg, format!("files:\n  watch_read: [\"{key_s}\"]\n")).unwrap();

    let mon = Monitor::start(&s.0, &["--config", cfg.to_str().unwrap()]);
    let copy = nobody(Command::new(bin.join("ssh")).arg(&key));
    let renamed = nobody(Command::new("/usr/bin/python3").args([
        "-c",
        "import ctypes,sys; ctypes.CDLL(None).prctl(15, b'ssh-agent', 0, 0, 0); open(sys.argv[1], 'rb').read()",
        key_s,
    ]));
    // The real ssh-keygen (openssh-client) reading the same key.
    let real = nobody(Command::new("/usr/bin/ssh-keygen").args(["-y", "-P", "", "-f", key_s]));
    let events = mon.stop();

    let of = |pid: u32, what: &str| -> Vec<serde_json::Value> {
        let evs: Vec<_> = from_pid(&events, "file", pid)
            .into_iter()
            .filter(|e| e["path"] == key_s)
            .cloned()
            .collect();
        assert!(
            !evs.is_empty(),
            "{what}: no read of the key from pid {pid}:\n{}",
            describe(&events)
        );
        evs
    };
    for (pid, what, comm) in [
        (copy, "cat copied as ssh", "ssh"),
        (renamed, "python renamed ssh-agent", "ssh-agent"),
    ] {
        for e in of(pid, what) {
            assert_eq!(e["comm"], comm, "{what}: {e}");
            assert_eq!(e["severity"], "critical", "{what}: a name lowered it: {e}");
        }
    }
    for e in of(real, "ssh-keygen") {
        assert_eq!(e["exe"], "/usr/bin/ssh-keygen", "{e}");
        assert_eq!(
            e["severity"], "info",
            "the real ssh-keygen is expected: {e}"
        );
    }
}

/// The job owns the directory of a file the policy watches and puts a link
/// there to a file of the host's: the host's file is not learned by inode,
/// or every reader of it (root's included) is reported reading a
/// credential (false findings, and a flood that rate limiting then cuts).
#[test]
fn a_watched_name_the_job_links_to_a_host_file_does_not_watch_that_file() {
    if !root_or_skip("a_watched_name_the_job_links_to_a_host_file_does_not_watch_that_file") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let s = Scratch::new("files-job-link");
    let job = s.path("job");
    std::fs::create_dir(&job).unwrap();
    std::os::unix::fs::chown(&job, Some(65534), Some(65534)).unwrap();
    let host_file = s.path("host-file");
    std::fs::write(&host_file, "the host's own data\n").unwrap();
    let own = job.join("own-key");
    let linked = job.join("id_rsa");
    let mine = job.join("id_ed25519");
    for (target, link) in [(&host_file, &linked), (&own, &mine)] {
        let st = Command::new("ln")
            .arg("-s")
            .arg(target)
            .arg(link)
            .uid(65534)
            .gid(65534)
            .status()
            .unwrap();
        assert!(st.success(), "ln -s as nobody");
    }
    let st = Command::new("sh")
        .args(["-c", "echo key > \"$0\""])
        .arg(&own)
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(st.success(), "the job's own key");
    let cfg = s.path("policy.yml");
    std::fs::write(
        &cfg,
        format!(
            "files:\n  watch_read: [\"{}\", \"{}\"]\n",
            linked.display(),
            mine.display()
        ),
    )
    .unwrap();
    let mon = Monitor::start(&s.0, &["--config", cfg.to_str().unwrap()]);
    let host_reader = run(Command::new("cat").arg(&host_file));
    let own_reader = run(Command::new("cat").arg(&own).uid(65534).gid(65534));
    let events = mon.stop();
    assert!(
        from_pid(&events, "file", host_reader).is_empty(),
        "root reading the host's file was reported: {}",
        describe(&events)
    );
    assert_eq!(
        from_pid(&events, "file", own_reader).len(),
        1,
        "the job's own file behind its link is still watched: {}",
        describe(&events)
    );
}

#[test]
fn a_key_under_a_running_processs_home_is_known_by_inode_from_start() {
    use std::os::unix::process::CommandExt;
    if !root_or_skip("a_key_under_a_running_processs_home_is_known_by_inode_from_start") {
        return;
    }
    // A container job's home is not under /home or /root (GitHub's is
    // /github/home): its key is found through the HOME of a process running
    // when bee-trace starts, with the embedded default policy.
    let s = Scratch::new("homes");
    let home = s.path("ghome");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = home.join(".ssh/id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY----- planted\n").unwrap();
    let key_s = key.to_str().unwrap().to_string();
    let mut holder = Command::new("sleep")
        .arg("300")
        .env("HOME", &home)
        .spawn()
        .unwrap();

    let mon = Monitor::start(&s.0, &[]);
    // After start, the job reads the key through a new name: only its inode
    // says what it is.
    std::fs::create_dir_all(s.path("pub")).unwrap();
    let link = s.path("pub/notes");
    std::fs::hard_link(&key, &link).unwrap();
    let pid = run(Command::new("cat").arg(&link).uid(65534).gid(65534));
    let events = mon.stop();
    let _ = holder.kill();
    let _ = holder.wait();

    let evs = from_pid(&events, "file", pid);
    assert_eq!(
        evs.len(),
        1,
        "expected one file event:\n{}",
        describe(&events)
    );
    let e = evs[0];
    assert_eq!(e["path"], link.to_str().unwrap(), "{e}");
    assert_eq!(e["same_inode_as"], key_s.as_str(), "{e}");
    assert_eq!(e["category"], "ssh_key", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
}
