//! SIGINT/SIGTERM ask the run to stop, SIGHUP to reload: flags the loop reads.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

pub(super) fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Asks the run to stop as SIGTERM does (the agent's `stop`).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

pub(super) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Whether a SIGHUP came since the last call.
pub(super) fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}
