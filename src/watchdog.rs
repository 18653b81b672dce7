//! The watchdog: a small process forked at start that writes down what
//! bee-trace itself no longer can. A SIGKILL leaves bee-trace no moment to
//! report it; the kernel's record of the signal goes to a ring only the
//! watchdog reads, and once bee-trace is gone the watchdog writes the event
//! to stderr and to the event stream, then exits. SIGSTOP, which freezes
//! bee-trace unseen, is said on stderr at once.
//!
//! It holds nothing else of bee-trace's: every other inherited descriptor is
//! closed, so the programs and links still go away with bee-trace, and of
//! root's capabilities it keeps only CAP_SYS_PTRACE. A clean
//! stop tells it so through a pipe; the pipe closing without that word means
//! bee-trace ended some other way, which it reports too.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use libbpf_rs::{MapHandle, RingBufferBuilder};

use crate::abi::{decode, Raw, TamperEvent};
use crate::event::Severity;
use crate::event::{Detail, Event};
use crate::sink::Format;

/// The byte a clean stop writes before closing the pipe.
const CLEAN: u8 = b'c';

/// The parent's handle on its watchdog.
pub struct Watchdog {
    pub pid: u32,
    pipe: Option<OwnedFd>,
    reaped: bool,
}

/// Where the watchdog writes: stderr always, and the event stream.
pub struct Outputs {
    /// The event stream: the --output file, or standard output.
    pub stream: RawFd,
    pub format: Format,
    pub redactor: crate::sink::redact::Redactor,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks the watchdog. Must be called while bee-trace has one thread: the
/// child runs ordinary Rust code, which is only safe after a fork when no
/// other thread could have held a lock.
pub fn spawn(ring: MapHandle, out: Outputs) -> std::io::Result<Watchdog> {
    let parent = std::process::id();
    let (read, write) = pipe()?;
    // SAFETY: single-threaded (see above); the child never returns from
    // `child_main`, it ends in _exit.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            drop(write);
            child_main(parent, ring, read, out)
        }
        pid => Ok(Watchdog {
            pid: pid as u32,
            pipe: Some(write),
            reaped: false,
        }),
    }
}

impl Watchdog {
    /// Whether it is still running; once it is not, why (for the self-check).
    pub fn gone(&mut self) -> Option<String> {
        if self.reaped {
            return None;
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let rc = unsafe { libc::waitpid(self.pid as i32, &mut status, libc::WNOHANG) };
        if rc != self.pid as i32 {
            return None;
        }
        self.reaped = true;
        Some(if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exited with status {}", libc::WEXITSTATUS(status))
        })
    }

    /// Not yet seen gone.
    pub fn running(&self) -> bool {
        !self.reaped
    }

    /// A clean stop: tells the watchdog, then waits for it.
    pub fn release(&mut self) {
        if let Some(p) = self.pipe.take() {
            let mut f = std::fs::File::from(p);
            let _ = f.write_all(&[CLEAN]);
        }
        if !self.reaped {
            self.reaped = true;
            let mut status = 0;
            // SAFETY: as in `gone`, blocking this time.
            unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // A panic is not a clean stop: the pipe just closes, and the
        // watchdog says bee-trace ended without one.
        if !std::thread::panicking() {
            self.release();
        }
    }
}

/// Closes every descriptor but standard input/output/error and `keep`.
fn close_others(keep: &[RawFd]) {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing a descriptor this process no longer uses; the
            // objects that owned it in the parent's memory are never dropped
            // here (the child ends in _exit).
            unsafe { libc::close(fd) };
        }
    }
}

fn child_main(parent: u32, ring: MapHandle, pipe: OwnedFd, out: Outputs) -> ! {
    let pipe_fd = pipe.as_raw_fd();
    close_others(&[ring.as_fd().as_raw_fd(), pipe_fd, out.stream]);
    // SAFETY: prctl and signal with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            c"bee-trace-watch".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        // Ctrl-C reaches the whole process group; the watchdog ends with
        // bee-trace, not before it.
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    let code = watch(parent, &ring, pipe_fd, &out);
    write_coverage();
    // SAFETY: ends the child without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

/// Under `make coverage` the child's counts are written out before _exit
/// (which skips the exit hook that writes them), so the watchdog's code is
/// measured like the rest; in every other build this does nothing.
fn write_coverage() {
    #[cfg(coverage)]
    {
        extern "C" {
            fn __llvm_profile_write_file() -> libc::c_int;
        }
        // SAFETY: the profiling runtime is linked into every build made with
        // -C instrument-coverage (the only builds with cfg(coverage)); the
        // call takes no arguments and only writes the profile file.
        unsafe {
            __llvm_profile_write_file();
        }
    }
}

/// Reads signal records until bee-trace is gone; returns the exit code.
fn watch(parent: u32, ring: &MapHandle, pipe: RawFd, out: &Outputs) -> i32 {
    let seen = std::cell::RefCell::new(Vec::<TamperEvent>::new());
    let mut builder = RingBufferBuilder::new();
    let added = builder
        .add(ring, |data: &[u8]| {
        if let Ok(Raw::Tamper(e)) = decode(data) {
            if e.target_tgid == parent {
                if e.sig == libc::SIGSTOP {
                    eprintln!(
                        "bee-trace watchdog: bee-trace (pid {parent}) was sent SIGSTOP by {}[{}] uid={}: it sees nothing while stopped",
                        crate::escape::terminal(&crate::abi::cstr(&e.hdr.comm)),
                        e.hdr.pid,
                        e.hdr.uid
                    );
                }
                seen.borrow_mut().push(e);
            }
        }
        0
    })
        .is_ok();
    let rb = builder.build();
    // The ring is mapped (on kernels before 6.5 that took CAP_BPF); all the
    // rest is done through descriptors already held.
    if let Err(e) = crate::privs::drop_to(crate::privs::WATCHDOG_MASK) {
        eprintln!("bee-trace watchdog: cannot drop privileges: {e}");
    }
    let rb = match rb.ok().filter(|_| added).ok_or("the ring was refused") {
        Ok(rb) => rb,
        Err(e) => {
            eprintln!("bee-trace watchdog: cannot read the signal ring: {e}");
            return wait_pipe_only(pipe);
        }
    };
    let clean = loop {
        let mut fds = [
            libc::pollfd {
                fd: rb.epoll_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pipe,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two valid pollfd entries.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
        let _ = rb.consume();
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break false;
        }
        if fds[1].revents != 0 {
            break read_clean(pipe);
        }
    };
    if clean {
        return 0;
    }
    // Whatever the kernel recorded up to bee-trace's end is in the ring now.
    let _ = rb.consume();
    let kills: Vec<TamperEvent> = seen
        .borrow()
        .iter()
        .filter(|e| e.sig == libc::SIGKILL)
        .copied()
        .collect();
    report_end(parent, &kills, out);
    1
}

/// Reads the pipe once bee-trace closed or wrote it: the clean word, or EOF.
fn read_clean(pipe: RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into a one-byte buffer.
    let n = unsafe { libc::read(pipe, b.as_mut_ptr().cast(), 1) };
    n == 1 && b[0] == CLEAN
}

fn wait_pipe_only(pipe: RawFd) -> i32 {
    i32::from(!read_clean(pipe))
}

/// bee-trace ended without a clean stop: says so on stderr and in the event
/// stream, naming who sent the SIGKILL when the kernel saw one.
fn report_end(parent: u32, kills: &[TamperEvent], out: &Outputs) {
    let offset = crate::sys::boot_to_unix_offset_ns();
    let mut table = crate::pipeline::proctable::ProcTable::default();
    let mut events = Vec::new();
    for k in kills {
        let Some((severity, detail)) = crate::pipeline::judge::tamper::Judge::default().judge(k)
        else {
            continue;
        };
        let exe = table
            .get_or_load(k.hdr.pid)
            .map(|p| p.exe.clone())
            .unwrap_or_default();
        events.push(Event {
            kind: "tamper",
            id: 0,
            ts: crate::sys::rfc3339(k.hdr.ts_boot_ns as i128 + offset),
            pid: k.hdr.pid,
            ppid: k.hdr.ppid,
            uid: k.hdr.uid,
            comm: crate::abi::cstr(&k.hdr.comm),
            exe,
            ancestors: table.ancestors(k.hdr.ppid),
            severity,
            detail,
        });
    }
    if events.is_empty() {
        events.push(Event {
            kind: "tamper",
            id: 0,
            ts: crate::sys::rfc3339(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i128),
            ),
            pid: 0,
            ppid: 0,
            uid: 0,
            comm: String::new(),
            exe: String::new(),
            ancestors: Vec::new(),
            severity: Severity::Critical,
            detail: Detail::Tamper {
                op: "unclean_exit",
                source: "watchdog",
                object_type: None,
                object_id: None,
                object_name: Some("bee-trace".into()),
                result: None,
                signal: None,
                target_pid: Some(parent),
                found: Some("bee-trace ended without a clean stop, and no SIGKILL was seen".into()),
                suppressed: None,
            },
        });
    }
    // SAFETY: the stream fd was kept open for this; the File is forgotten,
    // never closed, since the process ends right after.
    let mut stream = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(out.stream) });
    for mut ev in events {
        out.redactor.event(&mut ev);
        eprintln!("bee-trace watchdog: {}", crate::sink::human::human(&ev));
        let line = match out.format {
            Format::Human => crate::sink::human::human(&ev),
            Format::Json => serde_json::to_string(&ev).unwrap_or_default(),
        };
        let _ = writeln!(stream, "{line}");
    }
    let _ = stream.flush();
}

/// Whether this process runs one thread only (forking is safe then).
pub fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .map(|n| n.trim() == "1")
        })
        .unwrap_or(false)
}
