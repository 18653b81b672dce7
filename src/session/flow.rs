//! The user-space path of the records: queue, reorder buffer, pipeline, guard, sink; the one drain loop.

use crossbeam_channel::Receiver;

use super::self_check::Guard;
use crate::abi::Raw;
use crate::kernel::Sensors;
use crate::pipeline::{Effect, Pipeline, Reorder};
use crate::sink::Sink;

/// How long records wait to be put in kernel-time order (see `Reorder`).
pub(super) const REORDER_DELAY_NS: u64 = 50_000_000;
/// Past this many held records, release without waiting.
pub(super) const REORDER_MAX: usize = 65536;

/// Field order is the drop order the run has always had.
pub(super) struct Flow {
    pub(super) sink: Sink,
    pub(super) reorder: Reorder,
    pub(super) pipeline: Pipeline,
    pub(super) guard: Guard,
    pub(super) rx: Receiver<Raw>,
    /// When the flood-control maps were last read.
    pub(super) floods_read: std::time::Instant,
}

/// How often the flood-control maps are read while running.
const FLOODS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Flow {
    /// Moves what the workers queued into the reorder buffer; with `cap`,
    /// stops once it holds that many.
    pub(super) fn take_queued(&mut self, cap: Option<usize>) {
        while let Ok(raw) = self.rx.try_recv() {
            self.reorder.push(raw);
            if cap.is_some_and(|m| self.reorder.len() >= m) {
                break;
            }
        }
    }

    /// Sends every record due by `now` (all of them with `None`, and all
    /// while the buffer is full) through the pipeline to the sink, applying
    /// the pipeline's effects after each record (`sensors` is `None` once
    /// the probes are detached).
    pub(super) fn release(&mut self, now: Option<u64>, mut sensors: Option<&mut Sensors>) {
        let mut effects = Vec::new();
        loop {
            let until = now.filter(|_| self.reorder.len() < REORDER_MAX);
            let Some(raw) = self.reorder.pop_ready(until) else {
                break;
            };
            let ev = self.pipeline.handle(raw, &mut effects);
            self.apply(&mut effects, sensors.as_deref_mut());
            if let Some(ev) = ev {
                self.guard.saw(&ev);
                self.sink.deliver(ev);
            }
        }
    }

    /// Addresses the resolver thread found for the policy's domains, and
    /// the expiry of those whose TTL ran out, put into the egress maps.
    pub(super) fn take_resolved(&mut self, sensors: Option<&mut Sensors>) {
        let mut effects = Vec::new();
        self.pipeline.take_resolved(&mut effects);
        self.apply(&mut effects, sensors);
    }

    /// Execs of dropped files, hashed off this thread, and the events
    /// parked behind them, delivered in order once the hash is back (all of
    /// them with `all`: the end of the run).
    pub(super) fn hashed(&mut self, all: bool) {
        for ev in self.pipeline.take_hashed(all) {
            self.guard.saw(&ev);
            self.sink.deliver(ev);
        }
    }

    /// What the pipeline asked of the kernel while judging: inodes to
    /// watch (left once detached: there is no kernel to tell) and learned
    /// egress addresses.
    fn apply(&mut self, effects: &mut Vec<Effect>, sensors: Option<&mut Sensors>) {
        for e in effects.drain(..) {
            match e {
                Effect::WatchInode(key) => {
                    if let Some(s) = sensors.as_deref() {
                        s.watch_inode(key);
                    }
                }
                Effect::ForgetInode(key) => {
                    if let Some(s) = sensors.as_deref() {
                        s.forget_inode(key);
                    }
                }
                Effect::LearnAddr { name, ip, ttl } => self.pipeline.egress.learn(&name, ip, ttl),
                Effect::ExpireLearned => self.pipeline.egress.expire(),
            }
        }
    }

    /// What the kernel's flood control counted since the last reading,
    /// as events (pipeline/flood.rs); at most once a second unless `last`.
    pub(super) fn tell_floods(&mut self, sensors: &Sensors, last: bool) {
        if !last && self.floods_read.elapsed() < FLOODS_EVERY {
            return;
        }
        self.floods_read = std::time::Instant::now();
        let counts = sensors.fold_counts();
        for ev in self.pipeline.flood_events(&counts, last) {
            self.guard.saw(&ev);
            self.sink.deliver(ev);
        }
        if last && self.pipeline.told.unmatched_repeats > 0 {
            // Repeats of opens the policy ruled out in user space, or whose
            // own record was lost (a loss the summary counts already).
            log::debug!(
                "{} folded repeats of opens that were not reported",
                self.pipeline.told.unmatched_repeats
            );
        }
    }

    /// The self-check's findings as critical events, once they are due (all
    /// of them with `all`).
    pub(super) fn integrity_events(&mut self, all: bool) {
        for d in self.guard.ready(all) {
            if let Some(ev) = self.pipeline.integrity_event(&d) {
                self.guard.saw(&ev);
                self.sink.deliver(ev);
            }
        }
    }
}
