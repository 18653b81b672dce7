//! The files a run writes where the user asked (--output, --record,
//! --report-json, --report-md, --ready-file): opened at start, before the
//! job can race them, through the fd of their directory and never through a
//! link; created 0600 (0640 with --output-group), and an existing file is
//! used only if it is a plain regular file with one link, its mode narrowed
//! the same way.
//!
//! The reports are opened at start and written at the end through the fd
//! opened then, so swapping the name for a link to a system file in between
//! (a job owns `$GITHUB_STEP_SUMMARY`'s directory) changes nothing.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fsafe::{self, Dir};

#[derive(Debug, thiserror::Error)]
pub enum OutError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{0} is a symbolic link: bee-trace writes only to files it opens without following \
         links (whoever owns the directory could point one at a system file); name the file \
         itself"
    )]
    Symlink(PathBuf),
    #[error("{0}: {1}")]
    Path(PathBuf, String),
    #[error("{0} is not a regular file ({1}); bee-trace writes events and reports to regular files only")]
    NotRegular(PathBuf, &'static str),
    #[error(
        "{0} has {1} hard links: it may be another file under a second name; remove it and \
         let bee-trace create it"
    )]
    HardLinks(PathBuf, u64),
}

/// The directory a file is written in, reached from `/` without following
/// a link that anyone but root could have made (a job that owns a directory
/// on the way could otherwise point it at /etc/sudoers.d or /etc/cron.d).
fn open_parent(parent: &Path, name: &[u8]) -> Result<Dir, OutError> {
    let abs = if parent.is_absolute() {
        parent.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(io_err(parent))?
            .join(parent)
    };
    let file = abs.join(std::ffi::OsStr::from_bytes(name));
    let unsafe_path = |why: String| OutError::Path(file.clone(), why);
    let w = fsafe::walk(&file).map_err(|e| unsafe_path(e.0))?;
    if w.missing.len() != 1 {
        return Err(unsafe_path(format!(
            "the directory {} does not exist",
            abs.display()
        )));
    }
    Ok(w.dir)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutError + '_ {
    move |source| OutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who may read what bee-trace writes: the owner only (0600), or also the
/// members of one group (0640).
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    pub group: Option<u32>,
}

impl Access {
    pub fn mode(&self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }
}

fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        _ => "not a plain file",
    }
}

/// Opens `path` for writing, as the module comment says. `truncate` empties
/// an existing file now (streams); reports are emptied when written.
pub fn open(path: &Path, truncate: bool, access: Access) -> Result<File, OutError> {
    let (parent, name) = fsafe::split(path).map_err(io_err(path))?;
    let dir = open_parent(&parent, &name)?;
    let f = match dir.stat_at(&name).map_err(io_err(path))? {
        None => {
            let f = dir.create_new(&name, access.mode()).map_err(io_err(path))?;
            // The umask may have narrowed the mode further; set it exactly.
            f.set_permissions(std::fs::Permissions::from_mode(access.mode()))
                .map_err(io_err(path))?;
            f
        }
        Some(st) if st.is_symlink() => return Err(OutError::Symlink(path.into())),
        Some(st) if !st.is_file() => return Err(OutError::NotRegular(path.into(), kind(st.mode))),
        Some(_) => {
            let (f, st) = dir
                .open_regular(&name, libc::O_WRONLY)
                .map_err(io_err(path))?;
            if st.nlink != 1 {
                return Err(OutError::HardLinks(path.into(), st.nlink));
            }
            // Keep the owner (a runner reads its own step summary), narrow
            // who else may read it.
            let narrowed = st.mode & 0o777 & access.mode();
            f.set_permissions(std::fs::Permissions::from_mode(narrowed))
                .map_err(io_err(path))?;
            if truncate {
                f.set_len(0).map_err(io_err(path))?;
            }
            f
        }
    };
    if let Some(g) = access.group {
        std::os::unix::fs::fchown(&f, None, Some(g)).map_err(io_err(path))?;
    }
    Ok(f)
}

/// A report file opened at start and written once at the end.
#[derive(Debug)]
pub struct Report {
    file: File,
    pub path: PathBuf,
}

impl Report {
    pub fn open(path: &Path, access: Access) -> Result<Report, OutError> {
        Ok(Report {
            file: open(path, false, access)?,
            path: path.to_path_buf(),
        })
    }

    /// Replaces the file's content with `bytes`.
    pub fn write(mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }
}

/// The --ready-file: its directory is opened at start; the file appears,
/// made new and renamed into place, once every probe is attached.
#[derive(Debug)]
pub struct Ready {
    dir: Dir,
    name: Vec<u8>,
    mode: u32,
}

impl Ready {
    pub fn prepare(path: &Path, access: Access) -> Result<Ready, OutError> {
        let (parent, name) = fsafe::split(path).map_err(io_err(path))?;
        let dir = open_parent(&parent, &name)?;
        match dir.stat_at(&name).map_err(io_err(path))? {
            Some(st) if !st.is_file() && !st.is_symlink() => {
                Err(OutError::NotRegular(path.into(), kind(st.mode)))
            }
            _ => Ok(Ready {
                dir,
                name,
                mode: access.mode(),
            }),
        }
    }

    /// Creates the file (replacing whatever is at its name, never writing
    /// through it).
    pub fn signal(&self) -> io::Result<()> {
        self.dir.replace(&self.name, b"", self.mode)
    }
}

/// Why --output-group names no group.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("bad group name {0:?}")]
    BadName(String),
    #[error("no group named {0:?} on this host")]
    Unknown(String),
}

/// A group given by name or number.
pub fn group_id(g: &str) -> Result<u32, GroupError> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    let c = std::ffi::CString::new(g).map_err(|_| GroupError::BadName(g.into()))?;
    // SAFETY: c is NUL-terminated; getgrnam returns static storage or null,
    // read at once on this (still single) thread.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        return Err(GroupError::Unknown(g.into()));
    }
    // SAFETY: gr is non-null and points to a valid group entry.
    Ok(unsafe { (*gr).gr_gid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("bt-outfile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn groups_are_named_by_number_or_name() {
        assert_eq!(group_id("4242"), Ok(4242));
        assert_eq!(group_id("root"), Ok(0));
        assert_eq!(
            group_id("no-such-group-bt"),
            Err(GroupError::Unknown("no-such-group-bt".into()))
        );
        let e = group_id("a\0b").unwrap_err();
        assert_eq!(e.to_string(), "bad group name \"a\\0b\"");
    }

    #[test]
    fn new_files_are_private_and_links_refused() {
        let d = scratch("new");
        let f = open(&d.join("out"), true, Access::default()).unwrap();
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        assert!(matches!(
            open(&d.join("link"), true, Access::default()),
            Err(OutError::Symlink(_))
        ));
        std::fs::write(d.join("a"), "x").unwrap();
        std::fs::hard_link(d.join("a"), d.join("b")).unwrap();
        assert!(matches!(
            open(&d.join("b"), true, Access::default()),
            Err(OutError::HardLinks(_, 2))
        ));
        assert!(matches!(
            open(&d, true, Access::default()),
            Err(OutError::NotRegular(..))
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_existing_file_keeps_its_content_until_the_report_is_written() {
        let d = scratch("rep");
        let p = d.join("summary.md");
        std::fs::write(&p, "before").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = Report::open(&p, Access::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "before");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        r.write(b"after").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "after");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_ready_file_replaces_a_link_instead_of_following_it() {
        let d = scratch("ready");
        std::fs::write(d.join("victim"), "keep").unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join("ready")).unwrap();
        let r = Ready::prepare(&d.join("ready"), Access::default()).unwrap();
        r.signal().unwrap();
        assert_eq!(std::fs::read_to_string(d.join("victim")).unwrap(), "keep");
        assert!(std::fs::symlink_metadata(d.join("ready"))
            .unwrap()
            .is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn each_refusal_says_what_is_there_and_what_to_do() {
        let d = scratch("why");
        let c = std::ffi::CString::new(d.join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: c is NUL-terminated.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let _sock = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
        let err = |p: &Path| open(p, true, Access::default()).unwrap_err().to_string();
        assert_eq!(
            err(&d.join("fifo")),
            format!(
                "{} is not a regular file (a FIFO); bee-trace writes events and reports to \
                 regular files only",
                d.join("fifo").display()
            )
        );
        assert!(err(&d.join("sock")).contains(" (a socket);"));
        assert!(err(Path::new("/dev/null")).contains(" (a character device);"));
        assert!(err(&d).contains(" (a directory);"));
        std::os::unix::fs::symlink("/etc/shadow", d.join("l")).unwrap();
        assert_eq!(
            err(&d.join("l")),
            format!(
                "{} is a symbolic link: bee-trace writes only to files it opens without \
                 following links (whoever owns the directory could point one at a system \
                 file); name the file itself",
                d.join("l").display()
            )
        );
        std::fs::write(d.join("a"), "x").unwrap();
        std::fs::hard_link(d.join("a"), d.join("b")).unwrap();
        assert_eq!(
            err(&d.join("a")),
            format!(
                "{} has 2 hard links: it may be another file under a second name; remove it \
                 and let bee-trace create it",
                d.join("a").display()
            )
        );
        assert_eq!(
            std::fs::read_to_string(d.join("a")).unwrap(),
            "x",
            "left as it was"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_file_in_a_missing_directory_or_behind_a_job_owned_link_is_refused() {
        let d = scratch("parent");
        let p = d.join("nope/out.json");
        assert_eq!(
            open(&p, true, Access::default()).unwrap_err().to_string(),
            format!(
                "{}: the directory {} does not exist",
                p.display(),
                d.join("nope").display()
            )
        );
        assert!(!d.join("nope").exists(), "nothing is created on the way");
        // The scratch directory is world-writable: a link in it could be anyone's.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::create_dir(d.join("real")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("via")).unwrap();
        let e = open(&d.join("via/out"), true, Access::default()).unwrap_err();
        assert!(matches!(e, OutError::Path(..)), "{e}");
        assert!(e.to_string().contains("via is a symbolic link"), "{e}");
        assert!(!d.join("real/out").exists());
        assert!(matches!(
            Ready::prepare(&d.join("via/ready"), Access::default()),
            Err(OutError::Path(..))
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_relative_path_is_taken_from_the_working_directory() {
        let rel = PathBuf::from("target").join(format!("bt-outfile-rel-{}", std::process::id()));
        let _ = std::fs::remove_file(&rel);
        std::fs::create_dir_all("target").unwrap();
        let mut f = open(&rel, true, Access::default()).unwrap();
        f.write_all(b"here").unwrap();
        assert_eq!(std::fs::read_to_string(&rel).unwrap(), "here");
        std::fs::remove_file(&rel).unwrap();
    }

    #[test]
    fn streams_are_emptied_at_open_and_reports_only_when_written() {
        let d = scratch("trunc");
        let p = d.join("events.ndjson");
        std::fs::write(&p, "old").unwrap();
        drop(open(&p, false, Access::default()).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        drop(open(&p, true, Access::default()).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_group_may_read_what_is_written_for_it_and_no_one_else() {
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        let group = Access { group: Some(gid) };
        assert_eq!(group.mode(), 0o640);
        assert_eq!(Access::default().mode(), 0o600);
        let d = scratch("group");
        let f = open(&d.join("new"), true, group).unwrap();
        let m = f.metadata().unwrap();
        assert_eq!((m.mode() & 0o777, m.gid()), (0o640, gid));
        // An existing file is only narrowed: a bit it lacks is not added.
        std::fs::write(d.join("old"), "x").unwrap();
        std::fs::set_permissions(d.join("old"), std::fs::Permissions::from_mode(0o666)).unwrap();
        drop(open(&d.join("old"), true, group).unwrap());
        assert_eq!(
            std::fs::metadata(d.join("old")).unwrap().mode() & 0o777,
            0o640
        );
        std::fs::set_permissions(d.join("old"), std::fs::Permissions::from_mode(0o600)).unwrap();
        drop(open(&d.join("old"), true, group).unwrap());
        assert_eq!(
            std::fs::metadata(d.join("old")).unwrap().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_ready_file_appears_only_when_signalled_and_not_over_a_directory() {
        let d = scratch("ready2");
        let r = Ready::prepare(&d.join("up"), Access::default()).unwrap();
        assert!(!d.join("up").exists());
        r.signal().unwrap();
        let m = std::fs::metadata(d.join("up")).unwrap();
        assert_eq!((m.len(), m.mode() & 0o777), (0, 0o600));
        std::fs::create_dir(d.join("dir")).unwrap();
        let e = Ready::prepare(&d.join("dir"), Access::default()).unwrap_err();
        assert!(matches!(e, OutError::NotRegular(_, "a directory")), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
