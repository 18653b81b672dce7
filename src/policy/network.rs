//! The policy's network section compiled into the plan the egress maps
//! hold: numbered rules, blocked and allowed networks, blocked ports,
//! domain rules and the resolvers whose answers may be learned. Computed
//! without touching the kernel, so a reload is checked before anything
//! changes; `kernel::egress_learned` keeps it in force.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{Cidr, EgressMode, Endpoint, EndpointHost, Policy};
use crate::abi::{
    EgressCfg, EGRESS_PORTS, MODE_AUDIT, MODE_BLOCK, MODE_OFF, RULE_DNS_UNKNOWN, RULE_NOT_ALLOWED,
};

/// A network policy the kernel's maps cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("network.dns_resolvers: at most {RESOLVERS_MAX} IPv{ip_version} resolvers, /etc/resolv.conf's included")]
    TooManyResolvers { ip_version: u8 },
    /// The host (as the policy names it) has more allowed ports.
    #[error("network.allowed_endpoints: at most {EGRESS_PORTS} ports per host ({0})")]
    TooManyPorts(String),
}

/// A domain the policy names, blocked or allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRule {
    pub name: String,
    /// Also every subdomain (always true for blocked domains).
    pub subdomains: bool,
    pub allow: bool,
    /// Allowed ports (empty: any); unused for blocked domains.
    pub ports: Vec<u16>,
    pub rule: u32,
}

impl DomainRule {
    pub fn covers(&self, name: &str) -> bool {
        name == self.name
            || (self.subdomains
                && name.len() > self.name.len()
                && name.ends_with(&self.name)
                && name.as_bytes()[name.len() - self.name.len() - 1] == b'.')
    }
}

/// Everything the kernel maps hold for a policy, computed without touching
/// them (so a reload can be validated before anything changes).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub cfg: EgressCfg,
    pub block: Vec<(Cidr, u32)>,
    pub allow: BTreeMap<CidrKey, Vec<u16>>,
    pub ports: Vec<(u16, u32)>,
    pub domains: Vec<DomainRule>,
    /// The resolvers whose answers may be learned: the nameservers of
    /// resolv.conf and the policy's `network.dns_resolvers`, IPv4-mapped
    /// addresses as IPv4 (as they are on the wire), each once.
    pub resolvers: Vec<IpAddr>,
    /// Rule id -> what the user wrote, for events.
    pub rules: Vec<String>,
}

/// How many resolvers the kernel's resolver maps hold, per family.
pub const RESOLVERS_MAX: usize = 64;

/// A Cidr usable as a map key (ordered, hashable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CidrKey {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl CidrKey {
    /// One address, as a key of its own.
    pub fn host(addr: IpAddr) -> CidrKey {
        CidrKey {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl From<Cidr> for CidrKey {
    fn from(c: Cidr) -> Self {
        CidrKey {
            addr: c.addr,
            prefix: c.prefix,
        }
    }
}

/// Nameservers from resolv.conf text: their answers may be learned, and in
/// allowlist mode they stay reachable on port 53, or no name could be
/// resolved at all.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                .and_then(|a| a.split('%').next()?.parse().ok())
        })
        .collect()
}

impl Plan {
    pub fn new(policy: &Policy, nameservers: &[IpAddr]) -> Result<Plan, PlanError> {
        let mut p = Plan {
            rules: vec![
                String::new(),
                "not in network.allowed_endpoints".into(),
                "DNS over TCP, whose answers bee-trace cannot read, while domain rules are in force".into(),
                "DNS to a server that is not a resolver, while domain rules are in force".into(),
            ],
            ..Default::default()
        };
        debug_assert_eq!(
            p.rules[RULE_NOT_ALLOWED as usize],
            "not in network.allowed_endpoints"
        );
        debug_assert_eq!(p.rules.len(), RULE_DNS_UNKNOWN as usize + 1);
        p.add_blocked(policy);
        let allowlist = !policy.allowed_endpoints.is_empty();
        for e in &policy.allowed_endpoints {
            p.add_allowed(e)?;
        }
        p.add_resolvers(nameservers.iter().chain(&policy.dns_resolvers))?;
        if allowlist {
            // The resolvers stay reachable, or no name could be resolved.
            for ns in &p.resolvers {
                add_allow(&mut p.allow, CidrKey::host(*ns), Some(53))?;
            }
        }
        let any = !p.block.is_empty() || !p.ports.is_empty() || !p.domains.is_empty() || allowlist;
        p.cfg = EgressCfg {
            mode: match (any, policy.egress_mode) {
                (false, _) => MODE_OFF,
                (true, EgressMode::Audit) => MODE_AUDIT,
                (true, EgressMode::Block) => MODE_BLOCK,
            },
            allowlist: u32::from(allowlist),
            // Names are learned only from UDP answers of the resolvers: a
            // name resolved another way would escape the blocked domains.
            // An allowlist decides DNS itself (the resolvers, and what it
            // names), and what it cannot learn stays refused.
            dns_guard: u32::from(!p.domains.is_empty() && !allowlist),
        };
        Ok(p)
    }

    /// Gives a rule text the next id.
    fn number(&mut self, text: String) -> u32 {
        self.rules.push(text);
        (self.rules.len() - 1) as u32
    }

    /// The blocked networks, ports and domains, numbered in that order.
    fn add_blocked(&mut self, policy: &Policy) {
        for c in &policy.blocked_ips {
            let id = self.number(format!("network.blocked_ips: {}", cidr_text(c)));
            self.block.push((*c, id));
        }
        for &port in &policy.blocked_ports {
            let id = self.number(format!("network.blocked_ports: {port}"));
            self.ports.push((port, id));
        }
        for d in &policy.blocked_domains {
            let id = self.number(format!("network.blocked_domains: {d}"));
            self.domains.push(DomainRule {
                name: d.clone(),
                subdomains: true,
                allow: false,
                ports: Vec::new(),
                rule: id,
            });
        }
    }

    /// One allowed endpoint: its ports merge with those of an earlier entry
    /// for the same network or domain.
    fn add_allowed(&mut self, e: &Endpoint) -> Result<(), PlanError> {
        let (name, wildcard) = match &e.host {
            EndpointHost::Net(c) => return add_allow(&mut self.allow, (*c).into(), e.port),
            EndpointHost::Domain { name, wildcard } => (name, *wildcard),
        };
        let same = |d: &&mut DomainRule| d.allow && d.name == *name && d.subdomains == wildcard;
        match self.domains.iter_mut().find(same) {
            Some(d) => merge_port(&mut d.ports, e.port, name),
            None => {
                self.domains.push(DomainRule {
                    name: name.clone(),
                    subdomains: wildcard,
                    allow: true,
                    ports: e.port.into_iter().collect(),
                    rule: 0,
                });
                Ok(())
            }
        }
    }

    /// Each resolver once, IPv4-mapped as IPv4, no more per family than the
    /// kernel's maps hold.
    fn add_resolvers<'a>(
        &mut self,
        all: impl Iterator<Item = &'a IpAddr>,
    ) -> Result<(), PlanError> {
        for ip in all {
            let ip = ip.to_canonical();
            if !self.resolvers.contains(&ip) {
                self.resolvers.push(ip);
            }
        }
        for v4 in [true, false] {
            if self.resolvers.iter().filter(|a| a.is_ipv4() == v4).count() > RESOLVERS_MAX {
                return Err(PlanError::TooManyResolvers {
                    ip_version: if v4 { 4 } else { 6 },
                });
            }
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn rule_text(&self, id: u32) -> Option<&str> {
        self.rules
            .get(id as usize)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

fn cidr_text(c: &Cidr) -> String {
    let full = if c.addr.is_ipv4() { 32 } else { 128 };
    if c.prefix == full {
        c.addr.to_string()
    } else {
        format!("{}/{}", c.addr, c.prefix)
    }
}

/// Merges an allowed port into a list where empty means any port.
fn merge_port(ports: &mut Vec<u16>, port: Option<u16>, what: &str) -> Result<(), PlanError> {
    match port {
        None => ports.clear(),
        Some(_) if ports.is_empty() => {}
        Some(p) if ports.contains(&p) => {}
        Some(p) => {
            if ports.len() == EGRESS_PORTS {
                return Err(PlanError::TooManyPorts(what.to_string()));
            }
            ports.push(p);
        }
    }
    Ok(())
}

fn add_allow(
    allow: &mut BTreeMap<CidrKey, Vec<u16>>,
    key: CidrKey,
    port: Option<u16>,
) -> Result<(), PlanError> {
    match allow.get_mut(&key) {
        Some(ports) => merge_port(ports, port, &key.addr.to_string()),
        None => {
            allow.insert(key, port.into_iter().collect());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pol(yaml: &str) -> Policy {
        Policy::from_yaml(yaml, Path::new("t.yml")).unwrap()
    }

    #[test]
    fn plan_numbers_rules_and_sets_the_mode() {
        let p = Plan::new(&pol("network:\n  mode: block\n  blocked_ips: [198.51.100.7, 203.0.113.0/24, \"2001:db8::/32\"]\n  blocked_ports: [4444]\n  blocked_domains: [evil.test]\n"), &[]).unwrap();
        assert_eq!(p.cfg.mode, MODE_BLOCK);
        assert_eq!(p.cfg.allowlist, 0);
        assert_eq!(p.block.len(), 3);
        assert_eq!(
            p.rule_text(p.block[1].1),
            Some("network.blocked_ips: 203.0.113.0/24")
        );
        assert_eq!(
            p.rule_text(p.ports[0].1),
            Some("network.blocked_ports: 4444")
        );
        assert_eq!(
            p.rule_text(RULE_NOT_ALLOWED),
            Some("not in network.allowed_endpoints")
        );
        assert!(p.domains[0].covers("evil.test") && p.domains[0].covers("a.evil.test"));
        assert!(!p.domains[0].covers("notevil.test"));
    }

    #[test]
    fn no_rules_means_observe_only_and_audit_is_the_default() {
        assert_eq!(Plan::new(&pol(""), &[]).unwrap().cfg.mode, MODE_OFF);
        let p = Plan::new(&pol("network:\n  blocked_ips: [10.1.2.3]\n"), &[]).unwrap();
        assert_eq!(p.cfg.mode, MODE_AUDIT);
    }

    #[test]
    fn allowlist_merges_ports_and_keeps_nameservers_reachable() {
        let ns = nameservers("# x\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch a\n");
        assert_eq!(ns.len(), 2);
        let p = Plan::new(
            &pol("network:\n  mode: block\n  allowed_endpoints:\n    - 198.51.100.2:443\n    - 198.51.100.2:80\n    - \"[2001:db8::2]:22\"\n    - \"*.github.com:443\"\n    - 10.0.0.0/8\n"),
            &ns,
        )
        .unwrap();
        assert_eq!(p.cfg.allowlist, 1);
        let k = CidrKey {
            addr: "198.51.100.2".parse().unwrap(),
            prefix: 32,
        };
        assert_eq!(p.allow[&k], vec![443, 80]);
        let ns4 = CidrKey {
            addr: "192.0.2.53".parse().unwrap(),
            prefix: 32,
        };
        assert_eq!(p.allow[&ns4], vec![53]);
        let d = p.domains.iter().find(|d| d.name == "github.com").unwrap();
        assert!(d.allow && d.subdomains && d.ports == vec![443]);
        assert!(d.covers("api.github.com") && !d.covers("github.com.evil"));
        let net = CidrKey {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        };
        assert!(p.allow[&net].is_empty());
    }

    #[test]
    fn resolvers_are_resolv_conf_and_the_policys_each_once() {
        let ns = nameservers("nameserver 192.0.2.53\nnameserver ::ffff:198.51.100.2\n");
        let p = Plan::new(
            &pol("network:\n  dns_resolvers: [198.51.100.2, \"2001:db8::53\"]\n"),
            &ns,
        )
        .unwrap();
        let want: Vec<IpAddr> = ["192.0.2.53", "198.51.100.2", "2001:db8::53"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(p.resolvers, want);
        // Naming a resolver is not a rule: nothing is judged.
        assert_eq!(p.cfg.mode, MODE_OFF);
        let allow = Plan::new(
            &pol("network:\n  allowed_endpoints: [\"*.good.test:443\"]\n  dns_resolvers: [\"2001:db8::53\"]\n"),
            &ns,
        )
        .unwrap();
        for ip in &want {
            assert_eq!(allow.allow[&CidrKey::host(*ip)], vec![53], "{ip}");
        }
        let mut y = String::from("network:\n  dns_resolvers:\n");
        for i in 0..=RESOLVERS_MAX {
            y.push_str(&format!("    - 10.0.{}.{}\n", i / 250, i % 250 + 1));
        }
        assert_eq!(
            Plan::new(&pol(&y), &[]).unwrap_err().to_string(),
            format!("network.dns_resolvers: at most {RESOLVERS_MAX} IPv4 resolvers, /etc/resolv.conf's included")
        );
    }

    #[test]
    fn too_many_ports_for_one_host_is_an_error() {
        let mut y = String::from("network:\n  allowed_endpoints:\n");
        for port in 1..=8 {
            y.push_str(&format!("    - 198.51.100.2:{port}\n"));
        }
        assert_eq!(
            Plan::new(&pol(&y), &[]).unwrap_err(),
            PlanError::TooManyPorts("198.51.100.2".into())
        );
    }
}
