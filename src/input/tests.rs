//! Unit tests of reading bounded, trusted input files, in a temp dir.

use super::*;
use std::os::unix::fs::PermissionsExt;

/// A scratch directory under /tmp (sticky and root's, so trusted when
/// root runs the tests).
fn scratch(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("bee-trace-input-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn reads_a_regular_file_up_to_the_bound() {
    let d = scratch("regular");
    let f = d.join("a.yml");
    std::fs::write(&f, b"hello").unwrap();
    assert_eq!(
        read_regular(&f, 5, "test file", Trust::Data).unwrap(),
        b"hello"
    );
    let e = read_regular(&f, 4, "test file", Trust::Data).unwrap_err();
    assert!(matches!(e, InputError::TooLarge { max: 4, .. }), "{e}");
    assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn refuses_devices_fifos_and_directories_without_blocking() {
    let e = read_regular(Path::new("/dev/zero"), 1 << 20, "test file", Trust::Data).unwrap_err();
    assert!(
        matches!(
            e,
            InputError::NotRegular {
                kind: "a character device",
                ..
            }
        ),
        "{e}"
    );
    let d = scratch("fifo");
    let fifo = d.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // No writer: a blocking open would hang here forever.
    let e = read_regular(&fifo, 1 << 20, "test file", Trust::Data).unwrap_err();
    assert!(
        matches!(e, InputError::NotRegular { kind: "a FIFO", .. }),
        "{e}"
    );
    let e = read_regular(&d, 1 << 20, "test file", Trust::Data).unwrap_err();
    assert!(
        matches!(
            e,
            InputError::NotRegular {
                kind: "a directory",
                ..
            }
        ),
        "{e}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn refuses_a_symlink_where_the_file_is_trusted() {
    let d = scratch("symlink");
    let f = d.join("real.yml");
    std::fs::write(&f, b"x: 1\n").unwrap();
    std::os::unix::fs::symlink(&f, d.join("link.yml")).unwrap();
    let e = read_regular(&d.join("link.yml"), 100, "test file", Trust::Owner).unwrap_err();
    assert!(matches!(e, InputError::Symlink { .. }), "{e}");
    assert!(e.to_string().contains("readlink -f"), "{e}");
    // Data may be reached through a link.
    assert!(read_regular(&d.join("link.yml"), 100, "test file", Trust::Data).is_ok());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn refuses_files_and_directories_others_can_change() {
    if !is_root() {
        eprintln!("SKIPPED: ownership checks need root to chown");
        return;
    }
    let d = scratch("owner");
    let f = d.join("policy.yml");
    std::fs::write(&f, b"x: 1\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(read_regular(&f, 100, "test file", Trust::Owner).is_ok());

    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = read_regular(&f, 100, "test file", Trust::Owner).unwrap_err();
    assert!(matches!(e, InputError::Writable { mode: 0o666, .. }), "{e}");
    assert!(e.to_string().contains("chmod go-w"), "{e}");

    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
    let e = read_regular(&f, 100, "test file", Trust::Owner).unwrap_err();
    assert!(matches!(e, InputError::Owner { uid: 65534, .. }), "{e}");
    assert!(e.to_string().contains("chown root"), "{e}");

    std::os::unix::fs::chown(&f, Some(0), None).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = read_regular(&f, 100, "test file", Trust::Owner).unwrap_err();
    assert!(
        matches!(&e, InputError::Writable { place, .. } if *place == d),
        "{e}"
    );
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();

    let e = read_regular(&f, 100, "key file", Trust::Secret).unwrap_err();
    assert!(matches!(e, InputError::Readable { .. }), "{e}");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(read_regular(&f, 100, "key file", Trust::Secret).is_ok());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn entries_of_a_trusted_directory_are_opened_by_its_fd() {
    if !is_root() {
        eprintln!("SKIPPED: the trusted-directory check needs a root-owned chain");
        return;
    }
    let d = scratch("dir");
    std::fs::write(d.join("a.yml"), b"rules: []\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("b.yml")).unwrap();
    let dir = open_dir(&d, "rules directory").unwrap();
    let (f, m) = open_in(
        &dir,
        OsStr::new("a.yml"),
        &d.join("a.yml"),
        "rule file",
        Trust::Owner,
    )
    .unwrap();
    assert_eq!(
        read_bounded(f, &m, &d, 100, "rule file").unwrap(),
        b"rules: []\n"
    );
    let e = open_in(
        &dir,
        OsStr::new("b.yml"),
        &d.join("b.yml"),
        "rule file",
        Trust::Owner,
    )
    .unwrap_err();
    assert!(matches!(e, InputError::Symlink { .. }), "{e}");
    let e = open_dir(&d.join("a.yml"), "rules directory").unwrap_err();
    assert!(matches!(e, InputError::NotDir { .. }), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_missing_file_says_its_error_once_through_anyhow() {
    let e = read_regular(
        Path::new("/nonexistent/bee-trace-policy.yml"),
        100,
        "policy file",
        Trust::Owner,
    )
    .unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(text.matches("No such file").count(), 1, "{text}");
    assert!(
        text.starts_with("cannot open the policy file /nonexistent/"),
        "{text}"
    );
}

#[test]
fn a_file_that_grows_past_its_stated_size_is_cut_at_the_bound() {
    // /proc files say they are empty and then give more: the bound holds on
    // what is read, not on what fstat said.
    let p = Path::new("/proc/self/status");
    assert_eq!(std::fs::metadata(p).unwrap().len(), 0);
    let e = read_regular(p, 16, "status file", Trust::Data).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the status file /proc/self/status is larger than 16 bytes, the most bee-trace reads from it"
    );
    let all = read_regular(p, 1 << 20, "status file", Trust::Data).unwrap();
    assert!(
        all.starts_with(b"Name:"),
        "{}",
        String::from_utf8_lossy(&all)
    );
}

#[test]
fn a_block_device_or_a_socket_is_not_read() {
    let d = scratch("kinds");
    let sock = d.join("sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // A socket cannot even be opened as a file.
    let e = read_regular(&sock, 100, "policy file", Trust::Data).unwrap_err();
    assert!(matches!(e, InputError::Open { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot open the policy file {}: ", sock.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&d).unwrap();
    if !is_root() {
        eprintln!("SKIPPED: opening a block device needs root");
        return;
    }
    let Some(dev) = std::fs::read_dir("/dev").unwrap().flatten().find(|e| {
        e.file_type()
            .is_ok_and(|t| std::os::unix::fs::FileTypeExt::is_block_device(&t))
    }) else {
        eprintln!("SKIPPED: no block device in /dev");
        return;
    };
    let e = read_regular(&dev.path(), 100, "policy file", Trust::Data).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the policy file {} is a block device, not a regular file; name a regular file",
            dev.path().display()
        )
    );
}

#[test]
fn a_file_its_owner_lets_others_change_or_read_is_refused_whoever_runs() {
    // The file is the runner's own (a trusted uid, root or not); only the
    // mode is wrong.
    let d = scratch("mode");
    let f = d.join("key");
    std::fs::write(&f, b"k").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o646)).unwrap();
    let e = read_regular(&f, 100, "key file", Trust::Secret).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "refusing the key file {0}: {0} has mode 0646, so other users can change what \
             bee-trace reads; `chmod go-w {0}`",
            f.display()
        )
    );
    // Data is examined whatever its mode.
    assert_eq!(read_regular(&f, 100, "record", Trust::Data).unwrap(), b"k");

    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(read_regular(&f, 100, "policy file", Trust::Owner).is_ok());
    let e = read_regular(&f, 100, "key file", Trust::Secret).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "refusing the key file {0}: mode 0640 lets other users read it (and forge what \
             it signs); `chmod 600 {0}`",
            f.display()
        )
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        read_regular(&f, 100, "key file", Trust::Secret).unwrap(),
        b"k"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_directory_others_can_change_is_not_trusted_to_hold_rules() {
    let d = scratch("opendir");
    let missing = d.join("nothing");
    let e = open_dir(&missing, "rules directory").unwrap_err();
    assert!(matches!(e, InputError::Open { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "cannot open the rules directory {}: No such file",
            missing.display()
        )),
        "{e}"
    );
    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::set_permissions(d.join("rules"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = open_dir(&d.join("rules"), "rules directory").unwrap_err();
    assert!(
        matches!(&e, InputError::Writable { place, mode: 0o777, .. } if *place == d.join("rules")),
        "{e}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_entry_of_a_trusted_directory_must_be_a_regular_file_and_bounded() {
    let d = scratch("entry");
    std::fs::create_dir(d.join("sub.yml")).unwrap();
    std::fs::write(d.join("big.yml"), [b'x'; 10]).unwrap();
    let dir = File::open(&d).unwrap();
    let e = open_in(
        &dir,
        OsStr::new("sub.yml"),
        &d.join("sub.yml"),
        "rule file",
        Trust::Data,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            InputError::NotRegular {
                kind: "a directory",
                ..
            }
        ),
        "{e}"
    );
    let e = open_in(
        &dir,
        OsStr::new("gone.yml"),
        &d.join("gone.yml"),
        "rule file",
        Trust::Data,
    )
    .unwrap_err();
    assert!(matches!(e, InputError::Open { .. }), "{e}");
    let (f, m) = open_in(
        &dir,
        OsStr::new("big.yml"),
        &d.join("big.yml"),
        "rule file",
        Trust::Data,
    )
    .unwrap();
    let e = read_bounded(f, &m, &d.join("big.yml"), 9, "rule file").unwrap_err();
    assert!(matches!(e, InputError::TooLarge { max: 9, .. }), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_socket_handed_over_as_an_open_file_is_named_a_socket() {
    // A socket cannot be opened by path (see above), but an fd can be one.
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let f = File::from(std::os::fd::OwnedFd::from(a));
    let e = checked_file(&f, Path::new("/x/sock"), "policy file", Trust::Data).unwrap_err();
    assert!(
        matches!(
            e,
            InputError::NotRegular {
                kind: "a socket",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the policy file /x/sock is a socket, not a regular file; name a regular file"
    );
}

#[test]
fn a_directory_above_a_file_that_is_not_one_is_refused() {
    // The kernel named an open file's path, then a directory above it was
    // swapped for something else: refused, naming that component.
    let d = scratch("swapped");
    let file = d.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let asked = file.join("policy.yml");
    let e = check_ancestors(&asked, &asked, "policy file").unwrap_err();
    assert!(
        matches!(&e, InputError::AncestorNotDir { what: "policy file", dir, .. } if *dir == file),
        "{e:?}"
    );
    // The message names the component and the file asked for, apart.
    assert_eq!(
        e.to_string(),
        format!(
            "{}, on the way to the policy file {}, is not a directory",
            file.display(),
            asked.display()
        )
    );
    std::fs::remove_dir_all(&d).unwrap();
}
