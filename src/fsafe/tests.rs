//! Unit tests of the fd-relative file operations, in a temp dir.

use super::*;

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
