//! Evading the file sensor through inode knowledge, for real: credentials
//! that come into being by rename or link, linked or renamed away, and
//! inode numbers that a deleted credential leaves for another file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const NOBODY: u32 = 65534;

/// Runs a Python script as uid/gid 65534 (no supplementary groups: std
/// drops them when root sets a uid) to completion; returns its pid.
fn nobody_py(script: &str, args: &[&Path]) -> u32 {
    let mut c = Command::new("/usr/bin/python3");
    c.arg("-c").arg(script).args(args).uid(NOBODY).gid(NOBODY);
    run(&mut c)
}

/// A scratch directory the job's uid may write in.
fn job_scratch(tag: &str) -> Scratch {
    let s = Scratch::new(tag);
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    s
}

/// Waits until some event satisfies `want`, prodding the pipeline with an
/// event of our own meanwhile (records are released as others arrive).
fn wait_event(mon: &Monitor, what: &str, want: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read_events(&mon.events_path).iter().any(&want) {
        assert!(
            Instant::now() < deadline,
            "no {what} in 30s: {}\n{}",
            mon.stderr(),
            describe(&read_events(&mon.events_path))
        );
        run(Command::new("cat").arg("/nonexistent-bee-trace/.ssh/id_prod"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn only<'a>(events: &'a [serde_json::Value], pid: u32, access: &str) -> &'a serde_json::Value {
    let evs: Vec<_> = from_pid(events, "file", pid)
        .into_iter()
        .filter(|e| e["access"] == access)
        .collect();
    assert_eq!(
        evs.len(),
        1,
        "expected one {access} event from pid {pid}:\n{}",
        describe(events)
    );
    evs[0]
}

/// A registry credential written the way `docker login` writes it (a
/// temporary file renamed onto its name) after bee-trace started, then
/// linked to an innocent name and read through it: the rename and the link
/// are events, and the read is the credential's, by inode.
#[test]
fn a_credential_renamed_into_place_is_learned_and_caught_through_a_later_hardlink() {
    if !root_or_skip(
        "a_credential_renamed_into_place_is_learned_and_caught_through_a_later_hardlink",
    ) {
        return;
    }
    let s = job_scratch("evasion-rename");
    let docker = s.path("home/.docker");
    let cred = docker.join("config.json");
    let tmp = docker.join("config.json2841937");
    let innocent = s.path("innocent.txt");
    let cred_s = cred.to_str().unwrap();

    let mon = Monitor::start(&s.0, &["--probe-type", "file_monitor"]);
    let writer = nobody_py(
        "import os,sys; os.makedirs(os.path.dirname(sys.argv[1]));\n\
         f=open(sys.argv[2],'w'); f.write('{\"auths\":{\"r\":{\"auth\":\"planted\"}}}'); f.close()\n\
         os.rename(sys.argv[2], sys.argv[1])",
        &[&cred, &tmp],
    );
    wait_event(&mon, "rename event", |e| {
        e["pid"] == writer && e["access"] == "rename"
    });
    let thief = nobody_py(
        "import os,sys; os.link(sys.argv[1], sys.argv[2]); open(sys.argv[2],'rb').read()",
        &[&cred, &innocent],
    );
    let events = mon.stop();

    let e = only(&events, writer, "rename");
    assert_eq!(e["path"], cred_s, "{e}");
    assert_eq!(e["old_path"], tmp.to_str().unwrap(), "{e}");
    assert_eq!(e["category"], "registry_credential", "{e}");
    assert_eq!(e["severity"], "high", "{e}");
    assert_eq!(e["result"], "ok", "{e}");
    assert_eq!(e["uid"], NOBODY, "{e}");

    let e = only(&events, thief, "link");
    assert_eq!(e["path"], innocent.to_str().unwrap(), "{e}");
    assert_eq!(e["old_path"], cred_s, "{e}");
    assert_eq!(e["category"], "registry_credential", "{e}");
    assert_eq!(e["severity"], "high", "{e}");

    let e = only(&events, thief, "read");
    assert_eq!(e["path"], innocent.to_str().unwrap(), "{e}");
    assert_eq!(e["same_inode_as"], cred_s, "{e}");
    assert_eq!(e["category"], "registry_credential", "{e}");
    assert_eq!(e["severity"], "high", "{e}");
    assert_eq!(e["resolved"], true, "{e}");
}
