//! Judging: one enriched kernel record to at most one event, by the
//! policy, one file per probe family. Judges do not touch the kernel: what
//! they want done there they return as effects.

pub mod file;
pub mod mem;
pub mod net;
pub mod process;
pub mod tamper;

use crate::kernel::Egress;
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

/// Symbolic name of an errno value, for results.
pub fn errno_name(errno: i64) -> String {
    let name = match errno {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        95 => "EOPNOTSUPP",
        40 => "ELOOP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        _ => return format!("errno {errno}"),
    };
    name.into()
}

/// "ok" for a non-negative return, the errno's name otherwise.
pub fn result_text(ret: i64) -> String {
    if ret >= 0 {
        "ok".into()
    } else if ret == -115 {
        "in_progress".into()
    } else {
        errno_name(-ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_name_errnos() {
        assert_eq!(result_text(3), "ok");
        assert_eq!(result_text(-13), "EACCES");
        assert_eq!(result_text(-115), "in_progress");
        assert_eq!(result_text(-4000), "errno 4000");
    }
}
