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
