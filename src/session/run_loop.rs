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
        self.run_until_stopped_with(|_| {});
    }

    /// `run_until_stopped`, calling `tick` between rounds (at least every
    /// 100 ms), e.g. to publish a `Snapshot`.
    pub fn run_until_stopped_with(&mut self, mut tick: impl FnMut(&Running)) {
        let deadline = self.parts.meta.deadline;
        loop {
            tick(self);
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

/// How a running session stands, for `bee-trace agent status`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub started: String,
    pub uptime_secs: u64,
    /// Events judged so far, by severity.
    pub events: std::collections::BTreeMap<String, u64>,
    pub signals: u64,
    pub blocked: u64,
    /// Events lost before bee-trace could see them, so far.
    pub lost: u64,
}

impl Running {
    pub fn snapshot(&self) -> Snapshot {
        let p = &self.parts;
        let t = &p.flow.sink.tally;
        let c = &p.kernel.counters;
        let kernel: u64 = p.kernel.sensors.kernel_lost().iter().map(|(_, n)| n).sum();
        Snapshot {
            started: p.meta.started.clone(),
            uptime_secs: p.meta.started_at.elapsed().as_secs(),
            events: t
                .events
                .iter()
                .map(|(s, n)| (s.as_str().to_string(), *n))
                .collect(),
            signals: t.signals.values().sum(),
            blocked: t.blocked,
            lost: kernel
                + c.channel_full.load(std::sync::atomic::Ordering::Relaxed)
                + c.undecodable.load(std::sync::atomic::Ordering::Relaxed)
                + t.held_back,
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
