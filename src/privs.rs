//! Least privilege after attach: once every program is attached and every
//! output is open, bee-trace keeps only the capabilities its remaining work
//! needs, drops every other one from all sets and the bounding set, and sets
//! no_new_privs so nothing it might exec could regain them.
//!
//! Kept, and why (docs/privileges.md says the same):
//! - CAP_BPF (CAP_SYS_ADMIN on kernels older than 5.8, which lack CAP_BPF):
//!   map updates (hardlink learning, names learned for egress rules) and map
//!   reads (loss counters) go through bpf(2), which a host with
//!   kernel.unprivileged_bpf_disabled refuses without it.
//! - CAP_SYS_PTRACE: reading /proc/<pid>/exe and /proc/<pid>/environ of other
//!   users' processes, to name programs and the secret variables a memory
//!   event exposed.
//! - CAP_DAC_READ_SEARCH: reading /proc and policy-named paths owned by
//!   other users (process table, inode learning).
//! - CAP_DAC_OVERRIDE: writing reports where the caller asked and removing
//!   planted canaries from other users' directories at exit.
//! - CAP_CHOWN, only when a --config file can be reloaded: a canary a reload
//!   plants in another user's directory is given that user's ownership.

use std::io;

const CAP_CHOWN: u32 = 0;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The capability set kept after attach, as a 64-bit mask; `reloadable`
/// when a policy file may be re-read (and so plant canaries) later.
pub fn kept_mask(last_cap: u32, reloadable: bool) -> u64 {
    let bpf = if last_cap >= CAP_BPF {
        CAP_BPF
    } else {
        CAP_SYS_ADMIN
    };
    let chown = if reloadable { 1 << CAP_CHOWN } else { 0 };
    [bpf, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE]
        .iter()
        .fold(chown, |m, c| m | 1 << c)
}

/// The watchdog's only capability: naming the executable of whoever
/// killed bee-trace (/proc/<pid>/exe of another user's, or a more
/// capable, process). Its ring and outputs are descriptors it holds.
pub const WATCHDOG_MASK: u64 = 1 << CAP_SYS_PTRACE;

/// A lookout worker's (fsafe::lookout): looking at names and /proc files of
/// other users' (search and read, ptrace-read access), nothing else. A
/// worker is made before the drop after attach too, and one stuck in the
/// kernel lives on: it must never hold more than this.
pub const LOOK_MASK: u64 = (1 << CAP_DAC_READ_SEARCH) | (1 << CAP_SYS_PTRACE);

/// Drops everything but `kept_mask` and sets no_new_privs. Returns the mask
/// kept.
pub fn drop_privileges(reloadable: bool) -> io::Result<u64> {
    drop_to(kept_mask(last_cap(), reloadable))
}

/// Drops every capability not in `keep`, from every set and the bounding
/// set, and sets no_new_privs. Returns `keep`.
pub fn drop_to(keep: u64) -> io::Result<u64> {
    drop_thread_to(keep, false)
}

/// `drop_to` for one thread made at any time, such as a lookout worker
/// made after the drop after attach: the calling thread then no longer has
/// CAP_SETPCAP, so its bounding set stays the process's kept set (it never
/// execs, and no_new_privs is set); effective and permitted still go down
/// to `keep`.
pub fn drop_thread_to(keep: u64, bounding_best_effort: bool) -> io::Result<u64> {
    let last = last_cap();
    // The bounding set first: that needs CAP_SETPCAP, which goes next.
    for cap in 0..=last {
        if keep & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                // EINVAL: a capability this kernel does not know.
                let tolerated = e.raw_os_error() == Some(libc::EINVAL)
                    || (bounding_best_effort && e.raw_os_error() == Some(libc::EPERM));
                if !tolerated {
                    return Err(e);
                }
            }
        }
    }
    // SAFETY: as above.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: keep as u32,
            permitted: keep as u32,
            inheritable: 0,
        },
        CapData {
            effective: (keep >> 32) as u32,
            permitted: (keep >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: capset(2) with a v3 header and two data words, as the ABI asks.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(keep)
}

/// Names of the capabilities in a mask, for the log.
pub fn names(mask: u64) -> Vec<&'static str> {
    [
        (CAP_CHOWN, "cap_chown"),
        (CAP_DAC_OVERRIDE, "cap_dac_override"),
        (CAP_DAC_READ_SEARCH, "cap_dac_read_search"),
        (CAP_SYS_PTRACE, "cap_sys_ptrace"),
        (CAP_SYS_ADMIN, "cap_sys_admin"),
        (CAP_BPF, "cap_bpf"),
    ]
    .iter()
    .filter(|(c, _)| mask & (1 << c) != 0)
    .map(|(_, n)| *n)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_cap_bpf_or_falls_back_to_sys_admin() {
        let m = kept_mask(40, false);
        assert_eq!(
            names(m),
            [
                "cap_dac_override",
                "cap_dac_read_search",
                "cap_sys_ptrace",
                "cap_bpf"
            ]
        );
        let old = kept_mask(37, false);
        assert!(names(old).contains(&"cap_sys_admin"));
        assert!(!names(old).contains(&"cap_bpf"));
        assert_eq!(
            kept_mask(40, true),
            m | 1,
            "cap_chown only with a reloadable policy"
        );
    }

    /// A capability set line of /proc/self/status (`CapEff:`), as a mask.
    fn status_mask(status: &str, key: &str) -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap()
    }

    const CHILD: &str = "BEE_TRACE_TEST_PRIVS_CHILD";

    /// Dropping is for good, so it is done in a child: this test binary run
    /// again for this one test, with CHILD set.
    #[test]
    fn dropping_keeps_exactly_the_mask_in_every_set_and_sets_no_new_privs() {
        if std::env::var_os(CHILD).is_some() {
            assert_eq!(drop_to(WATCHDOG_MASK).unwrap(), WATCHDOG_MASK);
            // Capabilities are per thread: this test's thread is the one dropped.
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            for key in ["CapEff:", "CapPrm:", "CapBnd:"] {
                assert_eq!(status_mask(&status, key), WATCHDOG_MASK, "{key}");
            }
            assert_eq!(status_mask(&status, "CapAmb:"), 0);
            assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "{status}");
            return;
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED dropping_keeps_exactly_the_mask: needs root's capabilities");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "privs::tests::dropping_keeps_exactly_the_mask_in_every_set_and_sets_no_new_privs",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
    }
}
