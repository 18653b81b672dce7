//! Reading the kernel's flood-control counters (bpf/include/share.bpf.h,
//! bpf/fold.bpf.h) of every family that has them: the file family's folded
//! repeats and share, the network family's share.

use libbpf_rs::{MapCore, MapFlags};

use super::Sensors;
use crate::abi::{FoldKey, FoldVal, ShareVal};

/// What the kernel's flood control counted instead of sending: per open,
/// the file family's repeats folded so far; per process and family, the
/// records over its share so far. All only grow while an entry lives.
#[derive(Debug, Default)]
pub struct FoldCounts {
    pub folded: Vec<(FoldKey, u64)>,
    /// The file family's share (file_share).
    pub suppressed: Vec<(u32, u64)>,
    /// The network family's share (net_share).
    pub net_suppressed: Vec<(u32, u64)>,
}

/// A share map's non-zero counts, as (tgid, records over the share).
fn share_counts<M: MapCore>(map: &M) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for k in map.keys() {
        let Some(tgid) = k
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
        else {
            continue;
        };
        if let Ok(Some(b)) = map.lookup(&k, MapFlags::ANY) {
            let mut v = ShareVal::default();
            if plain::copy_from_bytes(&mut v, &b).is_ok() && v.suppressed > 0 {
                out.push((tgid, v.suppressed));
            }
        }
    }
    out
}

impl Sensors {
    /// Reads the flood-control maps of the families loaded.
    pub fn fold_counts(&self) -> FoldCounts {
        let mut out = FoldCounts::default();
        if let Some(s) = &self.file {
            for k in s.maps.file_fold.keys() {
                let mut key = FoldKey::default();
                if plain::copy_from_bytes(&mut key, &k).is_err() {
                    continue;
                }
                if let Ok(Some(b)) = s.maps.file_fold.lookup(&k, MapFlags::ANY) {
                    let mut v = FoldVal::default();
                    if plain::copy_from_bytes(&mut v, &b).is_ok() && v.folded > 0 {
                        out.folded.push((key, v.folded));
                    }
                }
            }
            out.suppressed = share_counts(&s.maps.file_share);
        }
        if let Some(s) = &self.net {
            out.net_suppressed = share_counts(&s.maps.net_share);
        }
        out
    }
}
