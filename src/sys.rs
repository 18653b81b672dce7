//! What the host must offer before anything loads: root or the BPF
//! capabilities, kernel BTF, a mounted tracefs, cgroup v2. Each failure says
//! what to do about it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error(
        "bee-trace needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE): run it with sudo"
    )]
    NotPrivileged,
    #[error("the kernel exposes no BTF at /sys/kernel/btf/vmlinux: bee-trace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (see scripts/check-kernel.sh)")]
    NoBtf,
    #[error("tracefs is not mounted and mounting it at /sys/kernel/tracing failed ({0}): mount it with `mount -t tracefs nodev /sys/kernel/tracing` and retry")]
    Tracefs(std::io::Error),
    #[error("cannot read /proc/self/mountinfo: {0}")]
    Mountinfo(std::io::Error),
    #[error("cannot open {}: {err}", .path.display())]
    CgroupOpen { path: PathBuf, err: std::io::Error },
    #[error("cannot create {}: {err}", .path.display())]
    CgroupDir { path: PathBuf, err: std::io::Error },
    #[error("no cgroup v2 hierarchy is mounted and mounting one failed ({0}): mount it with `mount -t cgroup2 none /sys/fs/cgroup/unified`")]
    CgroupMount(std::io::Error),
    #[error("cannot open the cgroup v2 root: {0}")]
    CgroupRoot(std::io::Error),
}

pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Effective capabilities of this process, from /proc/self/status.
pub fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

pub fn check_privileges() -> Result<(), SysError> {
    if privileged(effective_caps()) {
        Ok(())
    } else {
        Err(SysError::NotPrivileged)
    }
}

/// Whether an effective capability set can load and attach the programs:
/// CAP_SYS_ADMIN alone, or CAP_BPF with CAP_PERFMON (kernels since 5.8).
fn privileged(caps: u64) -> bool {
    let has = |c: u32| caps & (1u64 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

pub fn check_btf() -> Result<(), SysError> {
    if Path::new(BTF_PATH).exists() {
        Ok(())
    } else {
        Err(SysError::NoBtf)
    }
}

/// Where tracefs is mounted, mounting it first if it is nowhere.
pub fn ensure_tracefs() -> Result<PathBuf, SysError> {
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(dir.into());
        }
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: all arguments are valid NUL-terminated strings; data is NULL.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(SysError::Tracefs(std::io::Error::last_os_error()));
    }
    log::info!("mounted tracefs at {TRACEFS}");
    Ok(TRACEFS.into())
}

/// Does the kernel have this tracepoint (category/name)?
pub fn has_tracepoint(tracefs: &Path, category: &str, name: &str) -> bool {
    tracefs.join("events").join(category).join(name).is_dir()
}

/// CLOCK_BOOTTIME now, the kernel's event clock.
pub fn boot_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds to add to a CLOCK_BOOTTIME stamp to get Unix time.
pub fn boot_to_unix_offset_ns() -> i128 {
    fn now(clock: libc::clockid_t) -> i128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    }
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_BOOTTIME)
}

/// RFC 3339 UTC text of a Unix time in nanoseconds, to the microsecond.
pub fn rfc3339(unix_ns: i128) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let micros = (unix_ns.rem_euclid(1_000_000_000) / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// cgroup v2 mount points listed in mountinfo text, in the order given.
pub fn cgroup2_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split_whitespace().next()? == "cgroup2")
                .then(|| pre.split_whitespace().nth(4).map(unescape_mount))?
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mount(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The cgroup2 mount to attach at: /sys/fs/cgroup, then the hybrid
/// layout's /sys/fs/cgroup/unified, then the first other one listed.
fn preferred_cgroup2(mut mounts: Vec<PathBuf>) -> Option<PathBuf> {
    mounts.sort_by_key(|p| match p.to_str() {
        Some("/sys/fs/cgroup") => 0,
        Some("/sys/fs/cgroup/unified") => 1,
        _ => 2,
    });
    mounts.into_iter().next()
}

/// An open directory of the cgroup v2 root, for attaching cgroup programs.
/// Prefers /sys/fs/cgroup, then /sys/fs/cgroup/unified (hybrid layout), then
/// any other cgroup2 mount; with none, mounts one privately, opens it and
/// detaches the mount at once, so nothing is left mounted even if bee-trace
/// is killed.
pub fn open_cgroup2_root() -> Result<(std::fs::File, PathBuf), SysError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(SysError::Mountinfo)?;
    if let Some(p) = preferred_cgroup2(cgroup2_mounts(&info)) {
        let f = std::fs::File::open(&p).map_err(|err| SysError::CgroupOpen {
            path: p.clone(),
            err,
        })?;
        return Ok((f, p));
    }
    let dir = std::env::temp_dir().join(format!("bee-trace-cgroup2.{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|err| SysError::CgroupDir {
        path: dir.clone(),
        err,
    })?;
    let c = |s: &str| std::ffi::CString::new(s).unwrap_or_default();
    let path = c(&dir.to_string_lossy());
    // SAFETY: plain syscalls with NUL-terminated strings that outlive them.
    let rc = unsafe {
        libc::mount(
            c("cgroup2").as_ptr(),
            path.as_ptr(),
            c("cgroup2").as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let _ = std::fs::remove_dir(&dir);
        return Err(SysError::CgroupMount(e));
    }
    let f = std::fs::File::open(&dir);
    // SAFETY: as above.
    unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    let _ = std::fs::remove_dir(&dir);
    let f = f.map_err(SysError::CgroupRoot)?;
    Ok((f, PathBuf::from("(private cgroup2 mount)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_000 + 1_500),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            rfc3339(1_795_219_200_123_456_789),
            "2026-11-21T00:00:00.123456Z"
        );
    }

    #[test]
    fn finds_cgroup2_in_hybrid_and_unified_layouts() {
        let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                      27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(
            cgroup2_mounts(hybrid),
            vec![PathBuf::from("/sys/fs/cgroup/unified")]
        );
        let unified =
            "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            cgroup2_mounts(unified),
            vec![PathBuf::from("/sys/fs/cgroup")]
        );
        let odd = "31 24 0:27 / /mnt/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mounts(odd), vec![PathBuf::from("/mnt/my cg")]);
        assert!(cgroup2_mounts("").is_empty());
    }

    #[test]
    fn rfc3339_counts_back_before_the_epoch() {
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339(-86_400_000_000_000), "1969-12-31T00:00:00.000000Z");
        // The end of a leap year's last day, and the century rule (2100 is not one).
        assert_eq!(
            rfc3339(4_107_542_399_000_000_000),
            "2100-02-28T23:59:59.000000Z"
        );
        assert_eq!(
            rfc3339(4_107_542_400_000_000_000),
            "2100-03-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn either_sys_admin_or_bpf_with_perfmon_is_enough() {
        let cap = |c: u32| 1u64 << c;
        assert!(privileged(cap(CAP_SYS_ADMIN)));
        assert!(privileged(cap(CAP_BPF) | cap(CAP_PERFMON)));
        assert!(!privileged(cap(CAP_BPF)));
        assert!(!privileged(cap(CAP_PERFMON)));
        assert!(!privileged(0));
        assert!(!privileged(!(cap(CAP_SYS_ADMIN) | cap(CAP_BPF))));
    }

    #[test]
    fn the_not_privileged_error_says_how_to_run() {
        assert_eq!(
            SysError::NotPrivileged.to_string(),
            "bee-trace needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE): run it with sudo"
        );
    }

    #[test]
    fn the_usual_cgroup2_root_is_preferred_wherever_it_is_listed() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            preferred_cgroup2(vec![
                p("/mnt/a"),
                p("/sys/fs/cgroup/unified"),
                p("/sys/fs/cgroup")
            ]),
            Some(p("/sys/fs/cgroup"))
        );
        assert_eq!(
            preferred_cgroup2(vec![p("/mnt/a"), p("/sys/fs/cgroup/unified")]),
            Some(p("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            preferred_cgroup2(vec![p("/mnt/b"), p("/mnt/a")]),
            Some(p("/mnt/b"))
        );
        assert_eq!(preferred_cgroup2(Vec::new()), None);
    }

    #[test]
    fn mount_points_unescape_only_whole_octal_escapes() {
        assert_eq!(
            unescape_mount(r"/a\011b\012c\134d"),
            PathBuf::from("/a\tb\nc\\d")
        );
        // A backslash not followed by three octal digits is kept as it is.
        assert_eq!(unescape_mount(r"/a\09x"), PathBuf::from(r"/a\09x"));
        assert_eq!(unescape_mount(r"/a\04"), PathBuf::from(r"/a\04"));
        assert_eq!(unescape_mount(r"/a\"), PathBuf::from(r"/a\"));
        // Lines without the separator or a fifth field are skipped, not misread.
        let info = "garbage\n1 2 3 - cgroup2 x rw\n5 6 0:1 / /ok rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mounts(info), vec![PathBuf::from("/ok")]);
    }

    #[test]
    fn a_tracepoint_is_a_directory_under_events() {
        let d = std::env::temp_dir().join(format!("bt-sys-tp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("events/sched/sched_process_exec")).unwrap();
        std::fs::write(d.join("events/sched/enable"), "0").unwrap();
        assert!(has_tracepoint(&d, "sched", "sched_process_exec"));
        assert!(!has_tracepoint(&d, "sched", "enable"));
        assert!(!has_tracepoint(&d, "sched", "sched_process_fork"));
        assert!(!has_tracepoint(&d, "kmem", "rss_stat"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_clocks_move_forward_and_agree_with_unix_time() {
        let a = boot_now_ns();
        let b = boot_now_ns();
        assert!(a > 0 && b >= a);
        let unix = boot_to_unix_offset_ns() + i128::from(boot_now_ns());
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        assert!((unix - wall).abs() < 5_000_000_000, "{unix} vs {wall}");
    }

    #[test]
    fn a_mounted_tracefs_is_used_where_it_is() {
        let mounted = [TRACEFS, DEBUGFS_TRACING]
            .into_iter()
            .find(|d| Path::new(d).join("events").is_dir());
        let Some(dir) = mounted else {
            eprintln!("SKIPPED a_mounted_tracefs_is_used_where_it_is: tracefs is not mounted or not readable");
            return;
        };
        assert_eq!(ensure_tracefs().unwrap(), PathBuf::from(dir));
        assert!(has_tracepoint(
            Path::new(dir),
            "sched",
            "sched_process_exec"
        ));
    }
}
