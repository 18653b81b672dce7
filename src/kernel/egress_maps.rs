//! The egress maps: a network plan and the addresses learned for its domain
//! rules, encoded as the kernel's map entries, and written in an order that
//! never lets a connect be judged against half a policy.

use std::collections::HashMap;
use std::net::IpAddr;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::abi::{as_bytes, EgressCfg, EgressVal, Lpm4Key, Lpm6Key};
use crate::policy::network::{CidrKey, DomainRule, Plan};

/// The egress maps, owned by the processing thread.
pub struct EgressMaps {
    pub cfg: MapHandle,
    pub block4: MapHandle,
    pub block6: MapHandle,
    pub allow4: MapHandle,
    pub allow6: MapHandle,
    pub ports: MapHandle,
    /// The resolvers whose answers the DNS programs learn.
    pub resolvers4: MapHandle,
    pub resolvers6: MapHandle,
    /// Domain rules for the DNS-answer program (absent when it did not load).
    pub dns: Option<MapHandle>,
}

/// A map's wanted content: key bytes -> value bytes.
type Entries = HashMap<Vec<u8>, Vec<u8>>;

/// What every egress map must hold, encoded: the plan's entries and the
/// addresses learned for its domain rules (an entry the plan names itself
/// wins).
#[derive(Debug, Default)]
pub struct Contents {
    /// block4, block6, allow4, allow6 (see `lpm_index`).
    lpm: [Entries; 4],
    ports: Entries,
    /// IPv4, IPv6.
    resolvers: [Entries; 2],
    dns: Entries,
}

impl Contents {
    /// `learned`: each learned address with the domain rule covering it now.
    pub fn new<'a>(
        plan: &Plan,
        learned: impl IntoIterator<Item = (IpAddr, &'a DomainRule)>,
    ) -> Contents {
        let mut c = Contents {
            dns: dns_entries(plan),
            ..Default::default()
        };
        for ip in &plan.resolvers {
            c.resolvers[usize::from(ip.is_ipv6())].insert(lpm_key(CidrKey::host(*ip)), vec![1]);
        }
        for (ip, rule) in learned {
            let k = CidrKey::host(ip);
            c.lpm[lpm_index(k, rule.allow)].insert(lpm_key(k), as_bytes(&entry(rule)).to_vec());
        }
        for (cidr, id) in &plan.block {
            let k = CidrKey::from(*cidr);
            c.lpm[lpm_index(k, false)].insert(lpm_key(k), as_bytes(&val(*id, &[])).to_vec());
        }
        for (k, ports) in &plan.allow {
            c.lpm[lpm_index(*k, true)].insert(lpm_key(*k), as_bytes(&val(0, ports)).to_vec());
        }
        for (port, id) in &plan.ports {
            c.ports
                .insert(port.to_ne_bytes().to_vec(), id.to_ne_bytes().to_vec());
        }
        c
    }
}

/// The dns_rules map: one key per domain. A blocked rule wins over an
/// allowed one, and a wildcard allow over an exact one for the same name
/// (it covers the name too).
fn dns_entries(plan: &Plan) -> Entries {
    let mut best: HashMap<&str, &DomainRule> = HashMap::new();
    for d in &plan.domains {
        let rank = |r: &DomainRule| (r.allow, !r.subdomains);
        match best.get(d.name.as_str()) {
            Some(b) if rank(b) <= rank(d) => {}
            _ => {
                best.insert(&d.name, d);
            }
        }
    }
    let mut out = Entries::new();
    for (name, d) in best {
        let Some(key) = crate::abi::dns_key(name) else {
            log::warn!("{name} is too long to be matched in DNS answers by the kernel");
            continue;
        };
        let rule = crate::abi::DnsRule {
            val: entry(d),
            allow: u8::from(d.allow),
            exact: u8::from(!d.subdomains),
            _pad: 0,
        };
        out.insert(as_bytes(&key).to_vec(), as_bytes(&rule).to_vec());
    }
    out
}

impl EgressMaps {
    /// Each map with what it must hold.
    fn paired<'a>(&'a self, c: &'a Contents) -> Vec<(&'a MapHandle, &'a Entries)> {
        let mut out = vec![
            (&self.block4, &c.lpm[0]),
            (&self.block6, &c.lpm[1]),
            (&self.allow4, &c.lpm[2]),
            (&self.allow6, &c.lpm[3]),
            (&self.ports, &c.ports),
            (&self.resolvers4, &c.resolvers[0]),
            (&self.resolvers6, &c.resolvers[1]),
        ];
        if let Some(dns) = &self.dns {
            out.push((dns, &c.dns));
        }
        out
    }

    /// Writes `c` into empty maps: the mode goes last so the programs never
    /// judge against half-filled maps.
    pub fn install(&self, c: &Contents, cfg: &EgressCfg) -> libbpf_rs::Result<()> {
        for (map, entries) in self.paired(c) {
            for (k, v) in entries {
                map.update(k, v, MapFlags::ANY)?;
            }
        }
        self.cfg
            .update(&0u32.to_ne_bytes(), as_bytes(cfg), MapFlags::ANY)
    }

    /// Puts new contents in force, in place: every entry `c` needs is
    /// written first, then the mode, and only then do the entries it no
    /// longer has go, so no connect is judged against a half-updated policy
    /// in the direction of letting through what both policies refuse.
    pub fn replace(&self, c: &Contents, cfg: &EgressCfg) -> libbpf_rs::Result<()> {
        self.install(c, cfg)?;
        for (map, entries) in self.paired(c) {
            let stale: Vec<Vec<u8>> = map.keys().filter(|k| !entries.contains_key(k)).collect();
            for k in stale {
                map.delete(&k)?;
            }
        }
        Ok(())
    }

    /// Puts one address learned for `rule` in the block or allow map.
    pub fn learn(&self, ip: IpAddr, rule: &DomainRule) -> libbpf_rs::Result<()> {
        let k = CidrKey::host(ip);
        self.lpm_map(k, rule.allow)
            .update(&lpm_key(k), as_bytes(&entry(rule)), MapFlags::ANY)
    }

    /// Takes a learned address out of the block or allow map again.
    pub fn forget(&self, ip: IpAddr, allow: bool) -> libbpf_rs::Result<()> {
        let k = CidrKey::host(ip);
        self.lpm_map(k, allow).delete(&lpm_key(k))
    }

    fn lpm_map(&self, k: CidrKey, allow: bool) -> &MapHandle {
        [&self.block4, &self.block6, &self.allow4, &self.allow6][lpm_index(k, allow)]
    }
}

/// What an address learned for a domain rule holds in the LPM maps: the
/// rule id (block) or the allowed ports (allow).
fn entry(rule: &DomainRule) -> EgressVal {
    if rule.allow {
        val(0, &rule.ports)
    } else {
        val(rule.rule, &[])
    }
}

fn val(rule: u32, ports: &[u16]) -> EgressVal {
    let mut v = EgressVal {
        rule,
        nports: ports.len() as u16,
        ..Default::default()
    };
    for (slot, p) in v.ports.iter_mut().zip(ports) {
        *slot = *p;
    }
    v
}

pub(super) fn lpm_key(c: CidrKey) -> Vec<u8> {
    match c.addr {
        IpAddr::V4(a) => as_bytes(&Lpm4Key {
            prefixlen: c.prefix.into(),
            addr: a.octets(),
        })
        .to_vec(),
        IpAddr::V6(a) => as_bytes(&Lpm6Key {
            prefixlen: c.prefix.into(),
            addr: a.octets(),
        })
        .to_vec(),
    }
}

/// Which LPM map an entry goes to, in the order block4, block6, allow4,
/// allow6.
fn lpm_index(k: CidrKey, allow: bool) -> usize {
    usize::from(k.addr.is_ipv6()) + 2 * usize::from(allow)
}

/// The cookie of the network namespace bee-trace runs in (the host's), which
/// the egress programs compare with a socket's to learn DNS answers only
/// there. A cookie, not the nsfs inode: the kernel never gives one to
/// another namespace, while an inode number is reused once its namespace is
/// gone.
pub fn own_netns_cookie() -> std::io::Result<u64> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket() takes no pointers; a valid fd is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket() and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: cookie and len are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<u64>() || cookie == 0 {
        return Err(std::io::Error::other("the kernel gave no namespace cookie"));
    }
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use std::path::Path;

    #[test]
    fn the_own_namespace_cookie_is_stable() {
        let c = own_netns_cookie().unwrap();
        assert_ne!(c, 0);
        assert_eq!(own_netns_cookie().unwrap(), c);
    }

    #[test]
    fn the_plans_own_entries_win_over_learned_ones() {
        let pol = Policy::from_yaml(
            "network:\n  blocked_ips: [198.51.100.9]\n  blocked_domains: [evil.test]\n  dns_resolvers: [\"2001:db8::53\"]\n",
            Path::new("t.yml"),
        )
        .unwrap();
        let plan = Plan::new(&pol, &[]).unwrap();
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        let c = Contents::new(&plan, [(ip, &plan.domains[0])]);
        let k = lpm_key(CidrKey::host(ip));
        let by_ip = as_bytes(&val(plan.block[0].1, &[])).to_vec();
        assert_eq!(c.lpm[0].get(&k), Some(&by_ip));
        assert!(c.lpm[1].is_empty() && c.lpm[2].is_empty() && c.resolvers[0].is_empty());
        assert_eq!(c.resolvers[1].len(), 1);
        assert_eq!(c.dns.len(), 1);
    }
}
