//! The running loop: records to the sink, the periodic self-check and SIGHUP, until stopped.

use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::flow::REORDER_MAX;
use super::self_check::drift_line;
use super::{signals, Parts, Running};
use crate::sys;

impl Running {
    /// Runs until stopped; `shutdown` comes next.
    pub fn run_until_stopped(&mut self) {
        let deadline = self.parts.meta.deadline;
        loop {
            if signals::stop_requested() || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if signals::take_reload() {
                self.on_sighup();
            }
            let p = &mut self.parts;
            let flow = &mut p.flow;
            match flow.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(raw) => flow.reorder.push(raw),
                Err(RecvTimeoutError::Timeout) => flow.sink.flush(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Take whatever else is queued before releasing in order.
            flow.take_queued(Some(REORDER_MAX));
            flow.take_resolved(Some(&mut p.kernel.sensors));
            flow.release(Some(sys::boot_now_ns()), Some(&mut p.kernel.sensors));
            flow.hashed(false);
            flow.tell_floods(&p.kernel.sensors, false);
            if p.flow.guard.due() {
                self_check(p);
            }
            p.flow.integrity_events(false);
        }
    }
}

/// One round of the self-check: each new finding is said on stderr at once;
/// its event follows (`Flow::integrity_events`).
pub(super) fn self_check(p: &mut Parts) {
    let drift = p.flow.guard.check(
        &mut p.kernel.sensors,
        p.flow.pipeline.egress.plan(),
        &p.kernel.filter,
        p.dog.as_mut(),
    );
    for d in drift {
        eprintln!("{}", drift_line(&d));
    }
}
