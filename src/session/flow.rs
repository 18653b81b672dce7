//! The user-space path of the records: queue, reorder buffer, pipeline, guard, sink; the one drain loop.

use crossbeam_channel::Receiver;

use crate::events::Raw;
use crate::kernel::Sensors;
use crate::pipeline::{Pipeline, Reorder};
use crate::sink::Sink;
use crate::tamper;

/// How long records wait to be put in kernel-time order (see `Reorder`).
pub(super) const REORDER_DELAY_NS: u64 = 50_000_000;
/// Past this many held records, release without waiting.
pub(super) const REORDER_MAX: usize = 65536;

/// Field order is the drop order the run has always had.
pub(super) struct Flow {
    pub(super) sink: Sink,
    pub(super) reorder: Reorder,
    pub(super) pipeline: Pipeline,
    pub(super) guard: tamper::Guard,
    pub(super) rx: Receiver<Raw>,
}

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
    /// while the buffer is full) through the pipeline to the sink. While
    /// probes are attached (`sensors`), the pipeline's effects are applied
    /// after each event.
    pub(super) fn release(&mut self, now: Option<u64>, mut sensors: Option<&mut Sensors>) {
        loop {
            let until = now.filter(|_| self.reorder.len() < REORDER_MAX);
            let Some(raw) = self.reorder.pop_ready(until) else {
                break;
            };
            if let Some(ev) = self.pipeline.handle(raw) {
                apply_effects(&mut self.pipeline, sensors.as_deref_mut());
                self.guard.saw(&ev);
                self.sink.deliver(ev);
            }
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

/// What the pipeline asked of the kernel while judging (inodes it learned
/// to watch). Once detached there is no kernel to tell, and they are left.
fn apply_effects(pipeline: &mut Pipeline, sensors: Option<&mut Sensors>) {
    let Some(sensors) = sensors else {
        return;
    };
    for key in pipeline.learned_inodes.drain(..) {
        sensors.watch_inode(key);
    }
}
