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
    let caps = effective_caps();
    let has = |c: u32| caps & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(SysError::NotPrivileged)
    }
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
}
