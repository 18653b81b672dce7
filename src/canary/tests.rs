//! Unit tests of planting, removal and leftover cleanup in a temp dir.

use super::*;
use crate::abi::InodeKey;
use crate::fsafe::Dir;
use crate::policy::FileAction;
use crate::policy::{Canary, CanaryKind, Policy};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bt-canary-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn canary(path: PathBuf) -> Canary {
    Canary {
        kind: CanaryKind::guess(&path),
        path,
        action: FileAction::Kill,
    }
}

#[test]
fn decoys_differ_each_time_and_look_like_their_kind() {
    assert_ne!(
        crate::decoy::make(CanaryKind::Aws),
        crate::decoy::make(CanaryKind::Aws)
    );
    assert!(crate::decoy::make(CanaryKind::Aws).contains("aws_access_key_id = AKIA"));
    assert!(
        crate::decoy::make(CanaryKind::Ssh).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    );
    assert!(crate::decoy::make(CanaryKind::Npm).contains("_authToken=npm_"));
}

#[test]
fn plants_with_its_directories_and_removes_exactly_that() {
    let d = scratch("plant");
    let path = d.join("home/.aws/credentials");
    let (c, out) = Canaries::plant(&[canary(path.clone())], None);
    assert!(matches!(out[0], Outcome::Planted), "{out:?}");
    assert!(fs::read_to_string(&path).unwrap().contains("AKIA"));
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    drop(c);
    assert!(!path.exists());
    assert!(!d.join("home").exists(), "planted directories are removed");
    assert!(d.exists(), "the existing ancestor stays");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn never_touches_an_existing_file_or_a_replaced_one() {
    let d = scratch("exists");
    let real = d.join("credentials");
    fs::write(&real, "real").unwrap();
    let (c, out) = Canaries::plant(&[canary(real.clone())], None);
    assert!(matches!(out[0], Outcome::Exists));
    drop(c);
    assert_eq!(fs::read_to_string(&real).unwrap(), "real");

    let swapped = d.join(".netrc");
    let (c, out) = Canaries::plant(&[canary(swapped.clone())], None);
    assert!(matches!(out[0], Outcome::Planted));
    fs::remove_file(&swapped).unwrap();
    fs::write(&swapped, "someone else's").unwrap();
    drop(c);
    assert_eq!(fs::read_to_string(&swapped).unwrap(), "someone else's");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn leftovers_of_a_dead_process_are_removed_and_nothing_else() {
    let d = scratch("leftover");
    let state = d.join("state");
    let path = d.join("x/.env");
    let (mut c, _) = Canaries::plant(
        &[canary(path.clone())],
        Some(open_state_dir(&state).unwrap()),
    );
    let record = state.join(format!("canaries-{}.json", std::process::id()));
    assert!(record.exists());
    // Pretend a killed run (pid 0 never names a live bee-trace) left it.
    let planted = std::mem::take(&mut c.planted);
    let dead = state.join("canaries-0.json");
    fs::rename(&record, &dead).unwrap();
    fs::write(d.join("other"), "x").unwrap();
    assert_eq!(clean_leftovers(&open_state_dir(&state).unwrap()), 1);
    assert!(!path.exists() && !dead.exists());
    assert!(d.join("other").exists());
    drop(planted);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn retain_removes_only_the_canaries_no_longer_wanted() {
    let d = scratch("retain");
    let a = d.join("a/.npmrc");
    let b = d.join("b/.npmrc");
    let (mut c, _) = Canaries::plant(&[canary(a.clone()), canary(b.clone())], None);
    c.retain(std::slice::from_ref(&a));
    assert!(a.exists());
    assert!(!b.exists() && !d.join("b").exists());
    assert!(c.is_planted(&a) && !c.is_planted(&b));
    drop(c);
    assert!(!a.exists());
    fs::remove_dir_all(&d).unwrap();
}

// SAFETY (both): geteuid and getegid have no preconditions.
fn euid() -> u32 {
    unsafe { libc::geteuid() }
}

#[test]
fn the_state_directory_must_be_root_only() {
    let d = scratch("statedir");
    let fresh = d.join("state");
    match open_state_dir(&fresh) {
        Ok(_) => {
            assert_eq!(euid(), 0, "only root's directory is accepted");
            assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o700);
        }
        Err(e) => assert_eq!(
            e.to_string(),
            format!(
                "{} is owned by uid {} with mode 0700: bee-trace keeps its state only in a \
                 directory that root alone owns and can use (mode 0700); remove it and start \
                 again (it is recreated)",
                fresh.display(),
                euid()
            )
        ),
    }
    let open = d.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    let e = open_state_dir(&open).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "{} is owned by uid {} with mode 0755: ",
            open.display(),
            euid()
        )),
        "{e}"
    );
    std::os::unix::fs::symlink(&open, d.join("link")).unwrap();
    let e = open_state_dir(&d.join("link")).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "{} is a symbolic link: ",
            d.join("link").display()
        )),
        "{e}"
    );
    let e = open_state_dir(&d.join("missing/state")).unwrap_err();
    assert!(matches!(e, CanaryError::Io(..)), "{e}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_path_that_cannot_hold_a_decoy_is_skipped_with_the_reason() {
    let d = scratch("skip");
    fs::write(d.join("file"), "x").unwrap();
    let (c, out) = Canaries::plant(&[canary(d.join("file/.env"))], None);
    assert!(
        matches!(&out[0], Outcome::Skipped(why) if why == "file is not a directory"),
        "{out:?}"
    );
    // A link in a directory anyone can write to is not followed.
    fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir(d.join("real")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("via")).unwrap();
    let (c2, out) = Canaries::plant(&[canary(d.join("via/.netrc"))], None);
    assert!(
        matches!(&out[0], Outcome::Skipped(why) if why.starts_with("via is a symbolic link")),
        "{out:?}"
    );
    assert!(!d.join("real/.netrc").exists());
    assert!(c.planted.is_empty() && c2.planted.is_empty());
    drop((c, c2));
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_decoy_someone_wrote_to_is_left_in_place() {
    let d = scratch("edited");
    let path = d.join(".npmrc");
    let (c, _) = Canaries::plant(&[canary(path.clone())], None);
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"mine\n")
        .unwrap();
    drop(c);
    assert!(fs::read_to_string(&path).unwrap().ends_with("mine\n"));
    fs::remove_dir_all(&d).unwrap();
}

/// A state directory for a test, or None (with a note) when not root: it
/// must be root's.
fn state_or_skip(d: &Path, name: &str) -> Option<Dir> {
    if euid() != 0 {
        eprintln!("SKIPPED {name}: the state directory must be root's");
        return None;
    }
    Some(open_state_dir(&d.join("state")).unwrap())
}

#[test]
fn records_of_live_or_other_processes_and_bad_records_are_left_alone() {
    let d = scratch("records");
    let Some(state) = state_or_skip(&d, "records_of_live_or_other_processes") else {
        return;
    };
    let s = d.join("state");
    let path = d.join(".env");
    fs::write(&path, "real").unwrap();
    let rec = |p: &Path| {
        serde_json::to_vec(&vec![Planted {
            path: p.to_path_buf(),
            dev: None,
            ino: None,
            ctime_ns: None,
            fingerprint: 0,
            dirs: Vec::new(),
        }])
        .unwrap()
    };
    // pid 1 is alive; ours is this process; the others are not records.
    fs::write(s.join("canaries-1.json"), rec(&path)).unwrap();
    fs::write(s.join("notes.txt"), "x").unwrap();
    fs::write(s.join("canaries-x.json"), rec(&path)).unwrap();
    fs::write(s.join("canaries-0.json"), b"{not json").unwrap();
    assert_eq!(clean_leftovers(&state), 0);
    assert_eq!(fs::read_to_string(&path).unwrap(), "real");
    for n in [
        "canaries-1.json",
        "notes.txt",
        "canaries-x.json",
        "canaries-0.json",
    ] {
        assert!(s.join(n).exists(), "{n} is kept");
    }
    // A record of a dead run naming a file that is not the decoy: the file
    // stays, the record goes.
    fs::remove_file(s.join("canaries-0.json")).unwrap();
    fs::write(s.join("canaries-0.json"), rec(&path)).unwrap();
    assert_eq!(clean_leftovers(&state), 0);
    assert_eq!(fs::read_to_string(&path).unwrap(), "real");
    assert!(!s.join("canaries-0.json").exists());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_run_killed_before_it_wrote_the_decoy_leaves_nothing_behind() {
    let d = scratch("early");
    let Some(state) = state_or_skip(&d, "a_run_killed_before_it_wrote_the_decoy") else {
        return;
    };
    // What a kill right after create_new leaves: an empty root-owned file in
    // a directory made 0700, both recorded before they had an inode.
    let dir = d.join("made");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("credentials");
    fs::write(&path, "").unwrap();
    let record = vec![Planted {
        path: path.clone(),
        dev: None,
        ino: None,
        ctime_ns: None,
        fingerprint: 1,
        dirs: vec![MadeDir {
            path: dir.clone(),
            dev: None,
            ino: None,
        }],
    }];
    fs::write(
        d.join("state/canaries-0.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    assert_eq!(clean_leftovers(&state), 1);
    assert!(!dir.exists(), "the directory made for it goes too");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn tripwires_are_armed_pinned_and_released_after_the_kernel_disarms() {
    let d = scratch("armed");
    // Root-only, so walking to the files does not refuse the scratch directory.
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    let honey = d.join("honey.key");
    let plain = d.join("notes.txt");
    fs::write(&honey, "k").unwrap();
    fs::write(&plain, "n").unwrap();
    let key = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        InodeKey {
            dev: crate::kernel::kernel_dev(m.dev()),
            ino: m.ino(),
        }
    };
    let yaml = format!(
        "files:\n  rules:\n    - path: {}/*.key\n      action: kill\n",
        d.display()
    );
    let policy = Policy::from_yaml(&yaml, Path::new("t.yml")).unwrap();
    let mut armed = Armed::default();
    let seeds = vec![(key(&honey), honey.clone()), (key(&plain), plain.clone())];
    let (flags, disarm) = armed.arm(&policy, &seeds);
    assert_eq!(
        flags,
        vec![
            (
                key(&honey),
                crate::abi::INODE_WATCH | crate::abi::INODE_KILL
            ),
            (key(&plain), crate::abi::INODE_WATCH)
        ]
    );
    assert!(disarm.is_empty());
    assert_eq!(armed.count(), 1);

    // A tripwire whose name now holds another inode is watched, not armed.
    let stale = InodeKey {
        dev: key(&honey).dev,
        ino: key(&honey).ino + 1_000_000,
    };
    let (flags, disarm) = armed.arm(&policy, &[(stale, honey.clone())]);
    assert_eq!(flags, vec![(stale, crate::abi::INODE_WATCH)]);
    assert_eq!(disarm, vec![key(&honey)]);
    assert_eq!(armed.count(), 1, "the old pin is held until released");
    armed.release(&disarm);
    assert_eq!(armed.count(), 0);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_decoy_that_cannot_be_made_fails_and_leaves_no_record_of_itself() {
    // /proc takes neither files nor directories, root or not.
    let file = PathBuf::from("/proc/self/bt-canary-test");
    let dir = PathBuf::from("/proc/self/bt-canary-dir/.env");
    let (c, out) = Canaries::plant(&[canary(file.clone()), canary(dir)], None);
    assert!(
        matches!(&out[0], Outcome::Failed(why) if why.starts_with("cannot create /proc/self/bt-canary-test: ")),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], Outcome::Failed(why) if why.starts_with("cannot create /proc/self/bt-canary-dir: ")),
        "{out:?}"
    );
    assert!(c.planted.is_empty() && !c.is_planted(&file));
}

/// What a run records for the decoy at `path`, as planting records it.
fn record_of(path: &Path, dirs: Vec<MadeDir>) -> Planted {
    let m = fs::metadata(path).unwrap();
    Planted {
        path: path.to_path_buf(),
        dev: Some(m.dev()),
        ino: Some(m.ino()),
        ctime_ns: Some(i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())),
        fingerprint: record::fnv1a(&fs::read(path).unwrap()),
        dirs,
    }
}

#[test]
fn a_leftover_is_removed_only_while_it_is_the_very_file_and_directory_recorded() {
    let d = scratch("very");
    let Some(state) = state_or_skip(&d, "a_leftover_is_removed_only_while_it_is_the_very_file")
    else {
        return;
    };
    let dir = d.join("made");
    let path = dir.join(".env");
    let clean = |planted: &Planted| {
        fs::write(
            d.join("state/canaries-0.json"),
            serde_json::to_vec(&vec![planted.clone()]).unwrap(),
        )
        .unwrap();
        clean_leftovers(&state)
    };
    let fresh = || {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(&path, "TOKEN=0123456789\n").unwrap();
        let m = fs::metadata(&dir).unwrap();
        record_of(
            &path,
            vec![MadeDir {
                path: dir.clone(),
                dev: Some(m.dev()),
                ino: Some(m.ino()),
            }],
        )
    };
    // Another device, inode or change time: another file, left in place.
    for change in [
        |p: &mut Planted| p.dev = p.dev.map(|v| v + 1),
        |p: &mut Planted| p.ino = p.ino.map(|v| v + 1),
        |p: &mut Planted| p.ctime_ns = p.ctime_ns.map(|v| v + 1),
        |p: &mut Planted| p.fingerprint ^= 1,
    ] {
        let mut p = fresh();
        change(&mut p);
        assert_eq!(clean(&p), 0, "{p:?}");
        assert!(path.exists(), "{p:?}");
    }
    // A second name for the decoy: someone linked it, so it is kept.
    let p = fresh();
    fs::hard_link(&path, d.join("link")).unwrap();
    // (Linking changed its ctime: recorded as it is now, only the link differs.)
    let p = Planted {
        dirs: p.dirs,
        ..record_of(&path, Vec::new())
    };
    assert_eq!(clean(&p), 0);
    assert!(path.exists());
    fs::remove_file(d.join("link")).unwrap();
    // The very file goes; a directory that is not the one made stays.
    let mut p = fresh();
    p.dirs[0].ino = p.dirs[0].ino.map(|v| v + 1);
    assert_eq!(clean(&p), 1);
    assert!(!path.exists() && dir.exists());
    // A directory recorded before it was made is taken only if it is
    // root's and 0700, as planting makes it.
    let mut p = fresh();
    (p.dirs[0].dev, p.dirs[0].ino) = (None, None);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(clean(&p), 1);
    assert!(dir.exists(), "a 0755 directory is not one planting made");
    // The very file in the very directory: both go.
    let p = fresh();
    assert_eq!(clean(&p), 1);
    assert!(!dir.exists());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_record_of_this_run_or_not_roots_or_too_large_is_not_acted_on() {
    let d = scratch("bad-record");
    let Some(state) = state_or_skip(&d, "a_record_of_this_run_or_not_roots") else {
        return;
    };
    let path = d.join(".env");
    fs::write(&path, "TOKEN=x\n").unwrap();
    let rec = serde_json::to_vec(&vec![record_of(&path, Vec::new())]).unwrap();
    let s = d.join("state");
    // This very run's record: its canaries are its own to remove.
    let ours = s.join(format!("canaries-{}.json", std::process::id()));
    fs::write(&ours, &rec).unwrap();
    assert_eq!(clean_leftovers(&state), 0);
    assert!(path.exists() && ours.exists());
    fs::remove_file(&ours).unwrap();
    // A record another user owns could name any file: ignored, kept.
    let dead = s.join("canaries-0.json");
    fs::write(&dead, &rec).unwrap();
    std::os::unix::fs::chown(&dead, Some(1), None).unwrap();
    assert_eq!(clean_leftovers(&state), 0);
    assert!(path.exists() && dead.exists());
    fs::remove_file(&dead).unwrap();
    // A record larger than any run writes is not read.
    let mut big = rec.clone();
    big.resize(MAX_RECORD as usize + 1, b' ');
    fs::write(&dead, &big).unwrap();
    assert_eq!(clean_leftovers(&state), 0);
    assert!(path.exists() && dead.exists());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_directory_made_for_a_decoy_stays_when_someone_used_or_replaced_it() {
    let d = scratch("dirs");
    // Someone put a file of theirs beside the decoy: the decoy goes, the
    // directory (no longer empty) and their file stay, and so does the
    // directory above it.
    let path = d.join("a/b/.env");
    let (c, out) = Canaries::plant(&[canary(path.clone())], None);
    assert!(matches!(out[0], Outcome::Planted), "{out:?}");
    fs::write(d.join("a/b/theirs"), "x").unwrap();
    drop(c);
    assert!(!path.exists());
    assert!(d.join("a/b/theirs").exists());
    assert!(
        d.join("a").is_dir(),
        "removal stops at the first directory kept"
    );

    // The made directory was swapped for another: the decoy is still
    // removed where it was made, and the new directory is left alone.
    let path = d.join("c/.env");
    let (c, out) = Canaries::plant(&[canary(path.clone())], None);
    assert!(matches!(out[0], Outcome::Planted), "{out:?}");
    fs::rename(d.join("c"), d.join("moved")).unwrap();
    fs::create_dir(d.join("c")).unwrap();
    drop(c);
    assert!(
        !d.join("moved/.env").exists(),
        "the decoy is removed by its fd"
    );
    assert!(d.join("c").exists() && d.join("moved").exists());

    // Someone removed the decoy already: nothing to do but the directory.
    let path = d.join("e/.env");
    let (c, _) = Canaries::plant(&[canary(path.clone())], None);
    fs::remove_file(&path).unwrap();
    drop(c);
    assert!(!d.join("e").exists());
    fs::remove_dir_all(&d).unwrap();
}
