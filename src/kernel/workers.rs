//! Ring-buffer workers: one thread per family polls its ring buffer, decodes
//! each sample and hands it to the processing thread over a bounded channel.
//! Nothing is dropped silently: a full channel or a bad sample is counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The kernel wakes a worker only once a batch of records is waiting (see
/// bt_submit in bpf/include/ring.bpf.h); this poll bounds the wait of a lone one.
const POLL_EVERY: Duration = Duration::from_millis(50);

use crossbeam_channel::{Sender, TrySendError};
use libbpf_rs::RingBufferBuilder;

use super::{Family, RingSource};
use crate::abi::{decode, Raw};

#[derive(Default)]
pub struct Counters {
    /// Decoded events the processing thread could not take in time.
    pub channel_full: AtomicU64,
    /// Samples that did not decode.
    pub undecodable: AtomicU64,
}

pub struct Workers {
    handles: Vec<(Family, JoinHandle<()>)>,
}

impl Workers {
    pub fn spawn(
        sources: Vec<RingSource>,
        tx: Sender<Raw>,
        counters: Arc<Counters>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Workers> {
        let mut handles = Vec::new();
        for src in sources {
            let tx = tx.clone();
            let counters = counters.clone();
            let stop = stop.clone();
            let family = src.family;
            let h = std::thread::Builder::new()
                .name(format!("rb-{}", family.as_str()))
                .spawn(move || poll_loop(src, tx, counters, stop))?;
            handles.push((family, h));
        }
        Ok(Workers { handles })
    }

    /// Waits for every worker, which have drained their ring buffers once
    /// `stop` was set.
    pub fn join(self) {
        for (family, h) in self.handles {
            if h.join().is_err() {
                log::error!("the {} ring-buffer worker panicked", family.as_str());
            }
        }
    }
}

fn poll_loop(src: RingSource, tx: Sender<Raw>, counters: Arc<Counters>, stop: Arc<AtomicBool>) {
    let mut builder = RingBufferBuilder::new();
    let handler = |data: &[u8]| -> i32 {
        match decode(data) {
            Ok(raw) => match tx.try_send(raw) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    counters.channel_full.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return -1,
            },
            Err(e) => {
                counters.undecodable.fetch_add(1, Ordering::Relaxed);
                log::debug!("{} ring buffer: {e}", src.family.as_str());
            }
        }
        0
    };
    if let Err(e) = builder.add(&src.map, handler) {
        log::error!("cannot poll the {} ring buffer: {e}", src.family.as_str());
        return;
    }
    let rb = match builder.build() {
        Ok(rb) => rb,
        Err(e) => {
            log::error!("cannot poll the {} ring buffer: {e}", src.family.as_str());
            return;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = rb.poll(POLL_EVERY) {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                log::error!("polling the {} ring buffer: {e}", src.family.as_str());
                break;
            }
        }
        // poll() reads only rings that signalled; records submitted without
        // a wakeup are read here.
        if let Err(e) = rb.consume() {
            log::error!("reading the {} ring buffer: {e}", src.family.as_str());
            break;
        }
    }
    // Whatever the kernel queued before detach is still ours to report.
    let _ = rb.consume();
}
