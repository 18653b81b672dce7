//! What the kernel's flood control counted instead of sending
//! (bpf/fold.bpf.h, bpf/include/share.bpf.h), told as events: an open's
//! folded repeats as a report of the same open with `repeats`, a process's
//! records over its share of a family's ring (file, network) as a `flood`
//! tamper event with `suppressed`. Read every second and once more after
//! the last record is drained, so every counted record is told.

use std::collections::HashMap;

use super::Pipeline;
use crate::abi::{self, Header};
use crate::event::{Detail, Event, Severity};
use crate::kernel::FoldCounts;

/// What was told of each process's records over one family's share so far.
#[derive(Default)]
struct Shares {
    suppressed: HashMap<u32, u64>,
}

/// What was told of the kernel's flood control so far.
#[derive(Default)]
pub struct Told {
    file_share: Shares,
    net_share: Shares,
    /// Repeats counted for an open whose own report never reached user
    /// space (lost, or filtered by the full policy): told only as a count.
    pub unmatched_repeats: u64,
    unmatched_seen: HashMap<abi::FoldKey, u64>,
}

/// The part of a kernel counter not told yet. A counter below what was
/// told belongs to a new map entry (the old one was evicted): all of it is
/// new.
fn growth(now: u64, told: u64) -> u64 {
    if now >= told {
        now - told
    } else {
        now
    }
}

impl Shares {
    /// Each process's records over its share not told yet, as (tgid,
    /// growth), from a reading of the kernel's counters. What is told is
    /// kept only for the processes the reading holds: a process whose
    /// entry left the kernel's map is forgotten (a new entry for it counts
    /// from zero), so over weeks of short-lived processes nothing grows.
    fn share_growth(&mut self, reading: &[(u32, u64)]) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut kept = HashMap::with_capacity(reading.len());
        for &(tgid, now) in reading {
            let delta = growth(now, self.suppressed.get(&tgid).copied().unwrap_or(0));
            kept.insert(tgid, now);
            if delta > 0 {
                out.push((tgid, delta));
            }
        }
        self.suppressed = kept;
        out
    }
}

impl Pipeline {
    /// The events for what grew in `counts` since the last call. `last`:
    /// the final reading, after which repeats of an open never reported
    /// are counted as unmatched.
    pub fn flood_events(&mut self, counts: &FoldCounts, last: bool) -> Vec<Event> {
        let now = crate::sys::boot_now_ns();
        let mut out = Vec::new();
        for (key, folded) in &counts.folded {
            let Some(f) = self.files.folds.get_mut(key) else {
                if last {
                    let seen = self.told.unmatched_seen.entry(*key).or_default();
                    self.told.unmatched_repeats += growth(*folded, *seen);
                    *seen = *folded;
                }
                continue;
            };
            let delta = growth(*folded, f.reported);
            if delta == 0 {
                continue;
            }
            f.reported = *folded;
            let hdr = Header {
                ts_boot_ns: now,
                ..f.hdr
            };
            let (severity, mut detail) = (f.severity, f.detail.clone());
            if let Detail::File { repeats, .. } = &mut detail {
                *repeats = Some(delta);
            }
            let ev = self.base(&hdr, "file", severity, detail);
            out.extend(self.finish(ev));
        }
        for (tgid, delta) in self.told.file_share.share_growth(&counts.suppressed) {
            // The process's own header, from any report of it, names it.
            let mut hdr = self
                .files
                .folds
                .iter()
                .find(|(k, _)| k.tgid == tgid)
                .map(|(_, f)| f.hdr)
                .unwrap_or(Header {
                    pid: tgid,
                    tid: tgid,
                    ..Header::default()
                });
            hdr.ts_boot_ns = now;
            out.extend(self.share_event(&hdr, delta, "sensitive file"));
        }
        for (tgid, delta) in self.told.net_share.share_growth(&counts.net_suppressed) {
            let hdr = Header {
                ts_boot_ns: now,
                pid: tgid,
                tid: tgid,
                ..Header::default()
            };
            out.extend(self.share_event(&hdr, delta, "network"));
        }
        out
    }

    /// The `flood` event of `delta` more `what` records of one process
    /// over its share, counted in the kernel and not sent.
    fn share_event(&mut self, hdr: &Header, delta: u64, what: &str) -> Option<Event> {
        let detail = Detail::Tamper {
            op: "flood",
            source: "share",
            object_type: None,
            object_id: None,
            object_name: None,
            result: None,
            signal: None,
            target_pid: None,
            found: Some(format!(
                "more than {} {what} records in {} ms: the rest were counted, not reported",
                abi::SHARE_PER_WINDOW,
                abi::FOLD_WINDOW_MS
            )),
            suppressed: Some(delta),
        };
        let ev = self.base(hdr, "tamper", Severity::High, detail);
        self.finish(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::{growth, Shares};

    #[test]
    fn what_was_told_is_kept_only_for_processes_the_kernel_still_counts() {
        let mut told = Shares::default();
        for tgid in 1..=1000u32 {
            assert_eq!(told.share_growth(&[(tgid, 5)]), vec![(tgid, 5)]);
        }
        assert_eq!(told.suppressed.len(), 1, "gone processes are forgotten");
        assert_eq!(
            told.share_growth(&[(1000, 7), (3, 2)]),
            vec![(1000, 2), (3, 2)]
        );
        assert_eq!(told.share_growth(&[(1000, 7), (3, 2)]), vec![]);
    }

    #[test]
    fn growth_is_what_was_not_told_and_a_reset_counter_is_all_new() {
        assert_eq!(growth(10, 4), 6);
        assert_eq!(growth(4, 4), 0);
        assert_eq!(growth(3, 9), 3);
    }
}
