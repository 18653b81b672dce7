//! The home directories of this host, where `**/` credential patterns are looked for when inodes are seeded.
//!
//! `/root` and `/home/*` alone miss the homes jobs really use (a container
//! job's `$HOME` is `/github/home`, a service account's is in /etc/passwd),
//! and a credential under them that existed at start would be missed under a
//! hardlink or a new name. Every entry here only widens where existing files
//! are looked for by name: a job that names a home of its own can make
//! bee-trace watch files of its own, nothing more.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::input;

/// At most this many homes are looked in (a process table of hostile
/// processes, each naming another HOME, cannot make start-up unbounded).
const HOMES_MAX: usize = 256;
/// /etc/passwd is read up to this size.
const PASSWD_MAX: u64 = 4 << 20;
/// A process's environment is read up to this many bytes.
const ENVIRON_MAX: u64 = 128 << 10;

/// `/root`, `/home/*`, every account's home in /etc/passwd and the `HOME` of
/// every running process, each absolute, without `..`, at most `HOMES_MAX`.
pub fn on_host() -> Vec<PathBuf> {
    let mut homes = BTreeSet::new();
    homes.insert(PathBuf::from("/root"));
    if let Ok(rd) = std::fs::read_dir("/home") {
        homes.extend(rd.flatten().map(|e| e.path()));
    }
    if let Ok(text) = input::read_regular(
        Path::new("/etc/passwd"),
        PASSWD_MAX,
        "account list",
        input::Trust::Data,
    ) {
        homes.extend(passwd_homes(&text));
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if homes.len() >= HOMES_MAX {
                break;
            }
            let name = e.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            use crate::fsafe::lookout;
            let environ = e.path().join("environ");
            let what = format!("reading {}", environ.display());
            // The read waits for the process's memory-map lock, which it
            // can hold as long as it likes (see fsafe::lookout).
            let home = lookout::shared()
                .run(&what, lookout::AT_START, move || process_home(&environ))
                .ok()
                .flatten();
            if let Some(h) = home {
                homes.insert(h);
            }
        }
    }
    homes.into_iter().take(HOMES_MAX).collect()
}

/// The home field of each /etc/passwd line that has one.
fn passwd_homes(text: &[u8]) -> Vec<PathBuf> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b':').nth(5))
        .filter_map(usable)
        .collect()
}

/// The `HOME` in the environment file `environ` (NUL-separated).
fn process_home(environ: &Path) -> Option<PathBuf> {
    let mut buf = Vec::new();
    std::fs::File::open(environ)
        .ok()?
        .take(ENVIRON_MAX)
        .read_to_end(&mut buf)
        .ok()?;
    home_in(&buf)
}

fn home_in(environ: &[u8]) -> Option<PathBuf> {
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(b"HOME="))
        .and_then(usable)
}

/// A home worth looking in: absolute, no `..`, not `/` itself, of a sane length.
fn usable(raw: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let p = Path::new(std::ffi::OsStr::from_bytes(raw));
    let ok = p.is_absolute()
        && raw.len() < 1024
        && p != Path::new("/")
        && !p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    ok.then(|| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_come_from_passwd_lines_and_a_process_environment() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\nrunner:x:1001:1001::/srv/runner:/bin/sh\nbad\nrel:x:2:2::home/rel:/bin/sh\n";
        assert_eq!(
            passwd_homes(passwd),
            vec![PathBuf::from("/root"), PathBuf::from("/srv/runner")]
        );
        assert_eq!(
            home_in(b"PATH=/bin\0HOME=/github/home\0USER=x\0"),
            Some(PathBuf::from("/github/home"))
        );
        assert_eq!(home_in(b"PATH=/bin\0"), None);
    }

    #[test]
    fn a_home_that_is_relative_the_root_or_climbs_is_not_used() {
        for bad in [&b"home"[..], b"/", b"/tmp/../etc", b""] {
            assert_eq!(usable(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(usable(&[b'/'; 2000]), None);
        assert_eq!(usable(b"/github/home"), Some(PathBuf::from("/github/home")));
    }
}
