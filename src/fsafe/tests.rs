//! Unit tests of the fd-relative file operations, in a temp dir.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn scratch(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("bt-fsafe-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn never_follows_a_final_link() {
    let d = scratch("link");
    std::fs::write(d.join("victim"), "keep").unwrap();
    std::os::unix::fs::symlink(d.join("victim"), d.join("out")).unwrap();
    let dir = Dir::open(&d).unwrap();
    assert!(dir.create_new(b"out", 0o600).is_err());
    assert!(dir.open_regular(b"out", libc::O_WRONLY).is_err());
    dir.replace(b"out", b"new", 0o600).unwrap();
    assert_eq!(std::fs::read_to_string(d.join("victim")).unwrap(), "keep");
    assert_eq!(std::fs::read_to_string(d.join("out")).unwrap(), "new");
    assert!(!std::fs::symlink_metadata(d.join("out"))
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn refuses_a_fifo_without_blocking() {
    let d = scratch("fifo");
    let c = CString::new(d.join("p").as_os_str().as_bytes()).unwrap();
    // SAFETY: c is NUL-terminated.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let dir = Dir::open(&d).unwrap();
    assert!(dir.open_regular(b"p", libc::O_RDONLY).is_err());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn names_are_single_components() {
    for bad in [&b""[..], b".", b"..", b"a/b"] {
        assert!(!valid_name(bad));
    }
    assert!(valid_name(b"report.md"));
    assert_eq!(
        split(Path::new("/a/b/c.md")).unwrap(),
        (PathBuf::from("/a/b"), b"c.md".to_vec())
    );
    assert_eq!(
        split(Path::new("c.md")).unwrap(),
        (PathBuf::from("."), b"c.md".to_vec())
    );
    assert!(split(Path::new("/a/..")).is_err());
    assert!(split(Path::new("/")).is_err());
}

/// True when the test may run: the walk trusts only root-owned links, so
/// following one needs root to make it. Without root it skips, unless
/// BEE_TRACE_REQUIRE_ROOT=1, where a skip is a failure.
fn root_or_skip(name: &str) -> bool {
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

fn walk_err(path: &Path) -> String {
    match walk(path) {
        Ok(w) => panic!("{} walked to {:?}", path.display(), w.missing),
        Err(e) => e.to_string(),
    }
}

#[test]
fn walk_refuses_paths_it_cannot_reason_about() {
    assert_eq!(walk_err(Path::new("etc/passwd")), "not an absolute path");
    assert_eq!(walk_err(Path::new("/")), "no file name");
    assert_eq!(
        walk_err(Path::new("/tmp/../etc/x")),
        "/tmp/../etc/x has a `..` component"
    );
}

#[test]
fn walk_stops_at_the_first_missing_name_and_refuses_a_file_as_a_parent() {
    let d = scratch("walk");
    std::fs::write(d.join("f"), "x").unwrap();
    let w = walk(&d.join("a/b/c")).unwrap();
    assert_eq!(w.missing, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let here = std::fs::metadata(&d).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(w.owner, (here.uid(), here.gid()));
    assert_eq!(w.dir.stat().unwrap().ino, here.ino());

    assert_eq!(walk_err(&d.join("f/x")), "f is not a directory");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn walk_refuses_a_link_in_a_directory_others_can_change() {
    let d = scratch("badlink");
    // World-writable (sticky /tmp is too): anyone could have made the link.
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::create_dir(d.join("real")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("l")).unwrap();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        walk_err(&d.join("l/x")),
        format!(
            "l is a symbolic link owned by uid {uid} in a directory others can change; \
             bee-trace does not follow it"
        )
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn walk_follows_root_links_in_root_only_directories() {
    if !root_or_skip("walk_follows_root_links_in_root_only_directories") {
        return;
    }
    let d = scratch("rootlink");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(d.join("real/sub")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("abs")).unwrap();
    std::os::unix::fs::symlink("real/sub", d.join("rel")).unwrap();
    let real = std::fs::metadata(d.join("real")).unwrap();
    let sub = std::fs::metadata(d.join("real/sub")).unwrap();
    use std::os::unix::fs::MetadataExt;

    let w = walk(&d.join("abs/x")).unwrap();
    assert_eq!(w.missing, vec![b"x".to_vec()]);
    assert_eq!(w.dir.stat().unwrap().ino, real.ino());
    let w = walk(&d.join("rel/y/z")).unwrap();
    assert_eq!(w.missing, vec![b"y".to_vec(), b"z".to_vec()]);
    assert_eq!(w.dir.stat().unwrap().ino, sub.ino());

    // A loop ends at the link limit instead of walking forever.
    std::os::unix::fs::symlink(d.join("loop"), d.join("loop")).unwrap();
    assert!(walk_err(&d.join("loop/x")).starts_with("loop is a symbolic link"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn readlink_returns_the_target_as_written() {
    let d = scratch("readlink");
    std::os::unix::fs::symlink("../some/where", d.join("l")).unwrap();
    let dir = Dir::open(&d).unwrap();
    assert_eq!(dir.readlink(b"l").unwrap(), PathBuf::from("../some/where"));
    let st = dir.stat_at(b"l").unwrap().unwrap();
    assert!(st.is_symlink() && !st.is_file() && !st.is_dir());
    assert_eq!(
        dir.readlink(b"missing").unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn names_that_are_not_one_component_are_refused_before_any_call() {
    let d = scratch("names");
    std::fs::create_dir(d.join("sub")).unwrap();
    let dir = Dir::open(&d).unwrap();
    let einval = Some(libc::EINVAL);
    assert_eq!(dir.mkdir(b"a/b", 0o700).unwrap_err().raw_os_error(), einval);
    assert_eq!(dir.unlink(b"..").unwrap_err().raw_os_error(), einval);
    assert_eq!(dir.rmdir(b"").unwrap_err().raw_os_error(), einval);
    assert_eq!(dir.rename(b".", b"x").unwrap_err().raw_os_error(), einval);
    assert_eq!(
        dir.rename(b"sub", b"x/y").unwrap_err().raw_os_error(),
        einval
    );
    assert_eq!(dir.subdir(b"sub/..").unwrap_err().raw_os_error(), einval);
    assert_eq!(
        dir.create_new(b"a\0b", 0o600).unwrap_err().raw_os_error(),
        einval
    );
    assert!(d.join("sub").is_dir(), "nothing was changed");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn stat_at_says_none_for_a_missing_name_and_fails_on_a_file_as_a_directory() {
    let d = scratch("statat");
    std::fs::write(d.join("f"), "x").unwrap();
    let dir = Dir::open(&d).unwrap();
    assert!(dir.stat_at(b"nothing").unwrap().is_none());
    assert_eq!(
        dir.stat_at(b"f/x").unwrap_err().raw_os_error(),
        Some(libc::ENOTDIR)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_failed_replace_leaves_the_old_content_and_no_temp_file() {
    let d = scratch("replace");
    // A rename over a non-empty directory fails after the temp file is written.
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::write(d.join("out/keep"), "old").unwrap();
    let dir = Dir::open(&d).unwrap();
    assert!(dir.replace(b"out", b"new", 0o600).is_err());
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out")]);
    assert_eq!(std::fs::read_to_string(d.join("out/keep")).unwrap(), "old");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn mkdir_rmdir_and_rename_act_inside_the_held_directory() {
    let d = scratch("ops");
    let dir = Dir::open(&d).unwrap();
    dir.mkdir(b"m", 0o700).unwrap();
    assert_eq!(
        dir.mkdir(b"m", 0o700).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    std::fs::write(d.join("m/x"), "x").unwrap();
    assert!(dir.rmdir(b"m").is_err(), "a non-empty directory stays");
    dir.rename(b"m", b"n").unwrap();
    assert!(!d.join("m").exists() && d.join("n/x").exists());
    std::fs::remove_file(d.join("n/x")).unwrap();
    dir.rmdir(b"n").unwrap();
    assert!(!d.join("n").exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn ownership_helpers_read_the_mode_bits() {
    let d = scratch("mode");
    let dir = Dir::open(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let st = dir.stat().unwrap();
    assert!(st.is_dir() && !st.others_can_write());
    // SAFETY: geteuid has no preconditions.
    assert_eq!(st.root_only(), unsafe { libc::geteuid() } == 0);
    for mode in [0o775, 0o757] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        let st = dir.stat().unwrap();
        assert!(st.others_can_write() && !st.root_only(), "{mode:o}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn temp_names_are_hidden_bounded_and_differ() {
    let a = temp_name(b"report.md");
    assert!(a.starts_with(b".report.md.") && a.ends_with(b".tmp"));
    assert_eq!(a.len(), ".report.md.".len() + 16 + ".tmp".len());
    assert_ne!(a, temp_name(b"report.md"));
    assert_eq!(temp_name(&[b'a'; 300]).len(), 1 + 200 + 1 + 16 + 4);
}
