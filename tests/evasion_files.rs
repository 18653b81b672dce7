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

/// A small ext4 file system on a loop device, mounted at `mnt` until drop:
/// one block group, so a freed inode number is the next one handed out.
struct LoopExt4 {
    mnt: std::path::PathBuf,
}

impl LoopExt4 {
    fn new(s: &Scratch) -> LoopExt4 {
        let img = s.path("fs.img");
        let mnt = s.path("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        ok(Command::new("truncate").arg("-s").arg("8M").arg(&img));
        ok(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-N", "64"])
            .arg(&img));
        ok(Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(&img)
            .arg(&mnt));
        LoopExt4 { mnt }
    }
}

impl Drop for LoopExt4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

fn ino(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).unwrap().ino()
}

/// A credential deleted while bee-trace runs leaves its inode number to the
/// next file: a directory (rsync's, in the issue) or a plain file (pip's
/// temporary file). Opening either is not the credential's read, whether
/// the credential was found at start or learned from an open. A hardlink of
/// a credential that is still there is, on the same file system.
#[test]
fn an_inode_number_reused_after_a_credential_is_deleted_is_not_the_credential() {
    if !root_or_skip("an_inode_number_reused_after_a_credential_is_deleted_is_not_the_credential") {
        return;
    }
    let s = Scratch::new("evasion-reuse");
    let fs = LoopExt4::new(&s);
    let ssh = fs.mnt.join("home/.ssh");
    let work = fs.mnt.join("work");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::create_dir(&work).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    let key = |n: &str| {
        let p = ssh.join(n);
        std::fs::write(&p, "-----BEGIN OPENSSH PRIVATE KEY----- planted\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    };
    let seeded = key("id_rsa");
    let kept = key("id_ed25519");
    let kept_link = work.join("kept-link");
    std::fs::hard_link(&kept, &kept_link).unwrap();
    let cfg = s.path("policy.yml");
    std::fs::write(
        &cfg,
        format!(
            "files:\n  rules:\n    - {{path: \"{}/id_*\", kind: ssh_key, severity: critical}}\n",
            ssh.display()
        ),
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
    // One credential learned from an open while running.
    let learned = key("id_ecdsa");
    let reader = run(Command::new("cat").arg(&learned));
    wait_event(&mon, "read of the learned key", |e| {
        e["pid"] == reader && e["type"] == "file"
    });
    let (seeded_ino, learned_ino) = (ino(&seeded), ino(&learned));
    std::fs::remove_file(&seeded).unwrap();
    let dir = work.join("rsync-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::remove_file(&learned).unwrap();
    let tmp = work.join("tmp5d6k0jyd");
    std::fs::write(&tmp, "pip's own bytes\n").unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        ino(&dir),
        seeded_ino,
        "the directory did not get the number"
    );
    assert_eq!(ino(&tmp), learned_ino, "the file did not get the number");

    let opener = nobody_py(
        "import os,sys; os.close(os.open(sys.argv[1], os.O_RDONLY)); open(sys.argv[2],'rb').read()",
        &[&dir, &tmp],
    );
    let thief = nobody_py("import sys; open(sys.argv[1],'rb').read()", &[&kept_link]);
    let stderr_path = mon.stderr_path.clone();
    let events = mon.stop();
    eprintln!(
        "{}",
        std::fs::read_to_string(stderr_path).unwrap_or_default()
    );

    assert!(
        from_pid(&events, "file", opener).is_empty(),
        "a reused inode number was taken for the credential:\n{}",
        describe(&events)
    );
    let e = only(&events, thief, "read");
    assert_eq!(e["path"], kept_link.to_str().unwrap(), "{e}");
    assert_eq!(e["same_inode_as"], kept.to_str().unwrap(), "{e}");
    assert_eq!(e["category"], "ssh_key", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
    drop(fs);
}

/// A watched file of a directory that is an overlay's lower layer, known by
/// inode from start under its own path, read as uid 65534 through the
/// overlay (mounted in a private mount namespace) under a path no rule
/// names: the overlay file stands for the lower one, and is reported as it.
#[test]
fn a_watched_file_read_through_an_overlay_is_known_by_its_real_inode() {
    if !root_or_skip("a_watched_file_read_through_an_overlay_is_known_by_its_real_inode") {
        return;
    }
    let s = Scratch::new("evasion-overlay");
    for d in ["lower/secret", "upper", "work", "merged"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    let token = s.path("lower/secret/deploy-token.txt");
    std::fs::write(&token, "ghp_planted\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let token_s = token.to_str().unwrap();
    let cfg = s.path("policy.yml");
    std::fs::write(
        &cfg,
        format!(
            "files:\n  rules:\n    - {{path: \"{token_s}\", kind: token, severity: critical}}\n"
        ),
    )
    .unwrap();
    let through = s.path("merged/secret/deploy-token.txt");

    let mon = Monitor::start(
        &s.0,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--probe-type",
            "file_monitor",
        ],
    );
    let script = format!(
        "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {} && \
         setpriv --reuid 65534 --regid 65534 --clear-groups cat {}",
        s.path("lower").display(),
        s.path("upper").display(),
        s.path("work").display(),
        s.path("merged").display(),
        through.display()
    );
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let ns = c
        .stdout(std::process::Stdio::null())
        .status()
        .map(|_| ())
        .ok();
    assert!(ns.is_some(), "unshare");
    let events = mon.stop();
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "file" && e["path"] == through.to_str().unwrap())
        .collect();
    assert_eq!(
        reads.len(),
        1,
        "expected one read through the overlay:\n{}",
        describe(&events)
    );
    let e = reads[0];
    assert_eq!(e["comm"], "cat", "{e}");
    assert_eq!(e["uid"], NOBODY, "{e}");
    assert_eq!(e["access"], "read", "{e}");
    assert_eq!(e["same_inode_as"], token_s, "{e}");
    assert_eq!(e["category"], "token", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
}

/// A credential created under its own name (O_CREAT) after start is
/// learned from that open: a hardlink made later reads as the credential,
/// and the link itself is an evasion event.
#[test]
fn a_credential_created_after_start_is_caught_through_a_later_hardlink() {
    if !root_or_skip("a_credential_created_after_start_is_caught_through_a_later_hardlink") {
        return;
    }
    let s = job_scratch("evasion-create");
    let cred = s.path("home/.aws/credentials");
    let innocent = s.path("notes.txt");
    let cred_s = cred.to_str().unwrap();

    let mon = Monitor::start(&s.0, &["--probe-type", "file_monitor"]);
    let writer = nobody_py(
        "import os,sys; os.makedirs(os.path.dirname(sys.argv[1]));\n\
         f=open(sys.argv[1],'w'); f.write('[default]\\naws_secret_access_key=planted\\n'); f.close()",
        &[&cred],
    );
    wait_event(&mon, "create event", |e| {
        e["pid"] == writer && e["access"] == "write"
    });
    let thief = nobody_py(
        "import os,sys; os.link(sys.argv[1], sys.argv[2]); open(sys.argv[2],'rb').read()",
        &[&cred, &innocent],
    );
    let events = mon.stop();

    let e = only(&events, writer, "write");
    assert_eq!(e["path"], cred_s, "{e}");
    assert_eq!(e["category"], "cloud_credential", "{e}");
    let e = only(&events, thief, "link");
    assert_eq!(e["path"], innocent.to_str().unwrap(), "{e}");
    assert_eq!(e["old_path"], cred_s, "{e}");
    assert_eq!(e["category"], "cloud_credential", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
    let e = only(&events, thief, "read");
    assert_eq!(e["path"], innocent.to_str().unwrap(), "{e}");
    assert_eq!(e["same_inode_as"], cred_s, "{e}");
    assert_eq!(e["category"], "cloud_credential", "{e}");
    assert_eq!(e["severity"], "critical", "{e}");
}

/// The (dev, ino) keys of the kernel inode filter of the bee-trace `pid`.
fn inode_filter_keys(pid: u32) -> Vec<(u64, u64)> {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = Command::new("bpftool")
            .arg("-j")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "bpftool {args:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for id in held_ids(pid, "map_id") {
        let id = id.to_string();
        if json(&["map", "show", "id", &id])["name"] != "inode_filter" {
            continue;
        }
        let dump = json(&["map", "dump", "id", &id]);
        return dump
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let k = &e["formatted"]["key"];
                (k["dev"].as_u64().unwrap(), k["ino"].as_u64().unwrap())
            })
            .collect();
    }
    panic!("bee-trace {pid} holds no inode_filter map");
}

/// A watched file deleted while bee-trace runs leaves the kernel's inode
/// filter once ext4 frees its inode (its last link gone, its last user
/// done), whether it was found at start or learned from an open, so the
/// next file given the number is not even looked at. A credential with a
/// second link stays.
#[test]
fn a_deleted_credentials_inode_leaves_the_kernel_filter_when_ext4_frees_it() {
    if !root_or_skip("a_deleted_credentials_inode_leaves_the_kernel_filter_when_ext4_frees_it") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new("evasion-freed");
    let fs = LoopExt4::new(&s);
    let ssh = fs.mnt.join("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let key = |n: &str| {
        let p = ssh.join(n);
        std::fs::write(&p, "-----BEGIN OPENSSH PRIVATE KEY----- planted\n").unwrap();
        p
    };
    let seeded = key("id_rsa");
    let linked = key("id_ed25519");
    let second = fs.mnt.join("second-name");
    std::fs::hard_link(&linked, &second).unwrap();
    let cfg = s.path("policy.yml");
    std::fs::write(
        &cfg,
        format!(
            "files:\n  rules:\n    - {{path: \"{}/id_*\", kind: ssh_key, severity: critical}}\n",
            ssh.display()
        ),
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
    let learned = key("id_ecdsa");
    let reader = run(Command::new("cat").arg(&learned));
    wait_event(&mon, "read of the learned key", |e| {
        e["pid"] == reader && e["type"] == "file"
    });
    let kdev =
        |m: &std::fs::Metadata| (libc::major(m.dev()) as u64) << 20 | libc::minor(m.dev()) as u64;
    let keys: Vec<(u64, u64)> = [&seeded, &linked, &learned]
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).unwrap();
            (kdev(&m), m.ino())
        })
        .collect();
    let before = inode_filter_keys(mon.child.id());
    for k in &keys {
        assert!(before.contains(k), "{k:?} not watched at first: {before:?}");
    }
    for p in [&seeded, &linked, &learned] {
        std::fs::remove_file(p).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = inode_filter_keys(mon.child.id());
    while (after.contains(&keys[0]) || after.contains(&keys[2])) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        after = inode_filter_keys(mon.child.id());
    }
    mon.stop();
    assert!(
        !after.contains(&keys[0]),
        "the seeded key's inode is still watched"
    );
    assert!(
        !after.contains(&keys[2]),
        "the learned key's inode is still watched"
    );
    assert!(
        after.contains(&keys[1]),
        "the key with a second name is no longer watched"
    );
    drop(fs);
}

/// A job in its own mount namespace (a container's view: a tmpfs over a
/// directory the host sees empty) writes a credential by rename: the inode
/// is found under the job's root, not the host's, so a hardlink made later
/// in the job reads as the credential.
#[test]
fn a_credential_renamed_into_place_in_a_private_mount_namespace_is_learned_there() {
    if !root_or_skip(
        "a_credential_renamed_into_place_in_a_private_mount_namespace_is_learned_there",
    ) {
        return;
    }
    let s = Scratch::new("evasion-ns");
    let jobdir = s.path("job");
    std::fs::create_dir(&jobdir).unwrap();
    let cred = jobdir.join("home/.docker/config.json");
    let tmp = jobdir.join("home/.docker/cfg-1234");
    let innocent = jobdir.join("innocent");
    let cred_s = cred.to_str().unwrap();
    let mon = Monitor::start(&s.0, &["--probe-type", "file_monitor"]);
    let nobody = "setpriv --reuid 65534 --regid 65534 --clear-groups /usr/bin/python3 -c";
    let script = format!(
        "mount -t tmpfs -o mode=0777 none {job} && \
         {nobody} 'import os,sys,time; os.makedirs(os.path.dirname(sys.argv[1])); \
         open(sys.argv[2],\"w\").write(\"{{}}\"); os.rename(sys.argv[2], sys.argv[1]); time.sleep(1)' {cred} {tmp} && \
         {nobody} 'import os,sys; os.link(sys.argv[1], sys.argv[2]); open(sys.argv[2],\"rb\").read()' {cred} {innocent}",
        job = jobdir.display(),
        cred = cred.display(),
        tmp = tmp.display(),
        innocent = innocent.display(),
    );
    let ns =
        run(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]));
    let events = mon.stop();
    assert!(!cred.exists(), "the credential is the job's alone");
    let mine = from_tree(&events, "file", ns);
    let of = |access: &str| -> &serde_json::Value {
        let v: Vec<_> = mine.iter().filter(|e| e["access"] == access).collect();
        assert_eq!(v.len(), 1, "one {access} event:\n{}", describe(&events));
        v[0]
    };
    let e = of("rename");
    assert_eq!(e["path"], cred_s, "{e}");
    assert_eq!(e["category"], "registry_credential", "{e}");
    let e = of("read");
    assert_eq!(e["path"], innocent.to_str().unwrap(), "{e}");
    assert_eq!(e["same_inode_as"], cred_s, "{e}");
    assert_eq!(e["category"], "registry_credential", "{e}");
    assert_eq!(e["uid"], NOBODY, "{e}");
}

/// renameat2(RENAME_EXCHANGE) of a credential with a file of the job's: the
/// credential now under the job's name is an evasion, and the job's file
/// now under the watched name is learned as the credential, so a second
/// name the job gave that file before reads as the credential.
#[test]
fn a_credential_exchanged_with_another_file_is_an_evasion_and_both_files_are_known() {
    if !root_or_skip(
        "a_credential_exchanged_with_another_file_is_an_evasion_and_both_files_are_known",
    ) {
        return;
    }
    let s = job_scratch("evasion-exchange");
    let cred = s.path("home/.docker/config.json");
    let decoy = s.path("decoy-file");
    let kept = s.path("kept-name");
    let cred_s = cred.to_str().unwrap();
    let mon = Monitor::start(&s.0, &["--probe-type", "file_monitor"]);
    let writer = nobody_py(
        "import os,sys; os.makedirs(os.path.dirname(sys.argv[1])); open(sys.argv[1],'w').write('{}')",
        &[&cred],
    );
    wait_event(&mon, "create event", |e| e["pid"] == writer);
    let swapper = nobody_py(
        "import ctypes,os,sys; open(sys.argv[2],'w').write('decoy'); os.link(sys.argv[2], sys.argv[3])\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         assert libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) == 0, os.strerror(ctypes.get_errno())",
        &[&cred, &decoy, &kept],
    );
    wait_event(&mon, "exchange event", |e| {
        e["pid"] == swapper && e["access"] == "rename"
    });
    let thief = nobody_py("import sys; open(sys.argv[1],'rb').read()", &[&kept]);
    let events = mon.stop();

    let e = only(&events, swapper, "rename");
    assert_eq!(e["path"], decoy.to_str().unwrap(), "{e}");
    assert_eq!(e["old_path"], cred_s, "{e}");
    assert_eq!(e["category"], "registry_credential", "{e}");
    assert_eq!(e["severity"], "high", "{e}");
    let e = only(&events, thief, "read");
    assert_eq!(e["path"], kept.to_str().unwrap(), "{e}");
    assert_eq!(e["same_inode_as"], cred_s, "{e}");
    assert_eq!(e["category"], "registry_credential", "{e}");
}

#[test]
fn a_symlink_renamed_onto_a_watched_name_does_not_make_its_target_a_credential() {
    if !root_or_skip("a_symlink_renamed_onto_a_watched_name_does_not_make_its_target_a_credential")
    {
        return;
    }
    let s = Scratch::new("symlink-onto");
    let aws = s.path("home/.aws");
    std::fs::create_dir_all(&aws).unwrap();
    let mon = Monitor::start(&s.0, &[]);
    // A root job points a link at a host file and renames it onto a
    // watched name: the rename is seen, the host file is not learned.
    let tmp = s.path("home/.aws/tmp-link");
    std::os::unix::fs::symlink("/etc/hostname", &tmp).unwrap();
    let mover = run(Command::new("mv").arg(&tmp).arg(aws.join("credentials")));
    let renamed = |e: &serde_json::Value| e["pid"] == mover && e["access"] == "rename";
    wait_event(&mon, "the rename", renamed);
    std::thread::sleep(Duration::from_millis(300));
    let reader = run(Command::new("cat")
        .arg("/etc/hostname")
        .uid(NOBODY)
        .gid(NOBODY));
    let events = mon.stop();

    assert!(
        events.iter().any(renamed),
        "the rename onto the watched name is an event:\n{}",
        describe(&events)
    );
    let read = from_pid(&events, "file", reader);
    assert!(
        read.is_empty(),
        "a host file a job's link pointed at is not a credential: {read:?}"
    );
}
