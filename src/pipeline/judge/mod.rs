//! Judging: one enriched kernel record to at most one event, by the
//! policy, one file per probe family. Judges do not touch the kernel: what
//! they want done there they return as effects.

pub mod file;
pub mod mem;
pub mod net;
pub mod process;

use crate::egress::Egress;
use crate::policy::Policy;

use super::enrich::Enrich;
use super::{Effect, Stats};

/// What a judge reads and may update while judging one record.
pub struct Cx<'a> {
    pub policy: &'a Policy,
    pub enrich: &'a mut Enrich,
    pub stats: &'a mut Stats,
    /// Egress verdicts' rules and learned names, read only: learning is
    /// an effect.
    pub egress: &'a Egress,
    pub peers: Option<&'a mut crate::peers::Peers>,
    pub effects: &'a mut Vec<Effect>,
}

impl Cx<'_> {
    /// Another registered bee-trace monitor's own activity: counted as
    /// filtered, never a finding.
    pub fn is_peer_activity(&mut self, tgid: u32) -> bool {
        let peer = self.peers.as_mut().is_some_and(|p| p.is_peer(tgid));
        if peer {
            self.stats.filtered += 1;
        }
        peer
    }
}
