//! Putting the rings' records back in kernel-time order before they are
//! judged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::abi::Raw;

/// Records from the four ring buffers arrive out of order (an exec can be
/// queued behind the file read its process made). Holding each record for a
/// short delay and releasing them in kernel-timestamp order keeps the process
/// table ahead of the events that need it.
pub struct Reorder {
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    delay_ns: u64,
}

struct Pending {
    ts: u64,
    seq: u64,
    raw: Raw,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

impl Reorder {
    pub fn new(delay_ns: u64) -> Reorder {
        Reorder {
            heap: BinaryHeap::new(),
            seq: 0,
            delay_ns,
        }
    }

    pub fn push(&mut self, raw: Raw) {
        self.seq += 1;
        let ts = raw.header().ts_boot_ns;
        self.heap.push(Reverse(Pending {
            ts,
            seq: self.seq,
            raw,
        }));
    }

    /// The next record older than `now_boot_ns` minus the delay (or any, when
    /// `now_boot_ns` is None: draining at exit).
    pub fn pop_ready(&mut self, now_boot_ns: Option<u64>) -> Option<Raw> {
        let head = self.heap.peek()?;
        if let Some(now) = now_boot_ns {
            if head.0.ts.saturating_add(self.delay_ns) > now {
                return None;
            }
        }
        self.heap.pop().map(|p| p.0.raw)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{ForkEvent, Header};

    fn fork(ts: u64, child: u32) -> Raw {
        Raw::Fork(ForkEvent {
            hdr: Header {
                ts_boot_ns: ts,
                ..Default::default()
            },
            child_pid: child,
            _pad: 0,
        })
    }

    fn child(r: Option<Raw>) -> Option<u32> {
        match r? {
            Raw::Fork(f) => Some(f.child_pid),
            _ => None,
        }
    }

    #[test]
    fn records_leave_in_kernel_time_order_once_the_delay_has_passed() {
        let mut r = Reorder::new(100);
        r.push(fork(1_000, 2));
        r.push(fork(900, 1));
        r.push(fork(1_000, 3)); // same time: arrival order
        assert_eq!(child(r.pop_ready(Some(999))), None, "900 + 100 > 999");
        assert_eq!(child(r.pop_ready(Some(1_000))), Some(1));
        assert_eq!(child(r.pop_ready(Some(1_000))), None);
        assert_eq!(r.len(), 2);
        // Draining at exit waits for nothing.
        assert_eq!(child(r.pop_ready(None)), Some(2));
        assert_eq!(child(r.pop_ready(None)), Some(3));
        assert!(r.is_empty());
    }
}
