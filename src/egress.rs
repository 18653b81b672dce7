//! Egress control in user space: the network plan computed from the
//! policy's network section (numbered rules, blocked and allowed networks,
//! blocked ports, domain rules, resolvers), the rule behind each verdict, and
//! the addresses learned for domain names (at start and from DNS answers),
//! kept for as long as their TTL says. `kernel::egress_maps` encodes and
//! writes all of it into the kernel's maps.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::events::{EgressCfg, EGRESS_PORTS, MODE_AUDIT, MODE_BLOCK, MODE_OFF, RULE_NOT_ALLOWED};
use crate::kernel::egress_maps::{Contents, EgressMaps};
use crate::policy::{Cidr, EgressMode, EndpointHost, Policy};

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
            rules: vec![String::new(), "not in network.allowed_endpoints".into()],
            ..Default::default()
        };
        debug_assert_eq!(p.rules.len(), RULE_NOT_ALLOWED as usize + 1);
        let next = |rules: &mut Vec<String>, text: String| -> u32 {
            rules.push(text);
            (rules.len() - 1) as u32
        };
        for c in &policy.blocked_ips {
            let id = next(
                &mut p.rules,
                format!("network.blocked_ips: {}", cidr_text(c)),
            );
            p.block.push((*c, id));
        }
        for &port in &policy.blocked_ports {
            let id = next(&mut p.rules, format!("network.blocked_ports: {port}"));
            p.ports.push((port, id));
        }
        for d in &policy.blocked_domains {
            let id = next(&mut p.rules, format!("network.blocked_domains: {d}"));
            p.domains.push(DomainRule {
                name: d.clone(),
                subdomains: true,
                allow: false,
                ports: Vec::new(),
                rule: id,
            });
        }
        let allowlist = !policy.allowed_endpoints.is_empty();
        for e in &policy.allowed_endpoints {
            match &e.host {
                EndpointHost::Net(c) => add_allow(&mut p.allow, (*c).into(), e.port)?,
                EndpointHost::Domain { name, wildcard } => {
                    match p
                        .domains
                        .iter_mut()
                        .find(|d| d.allow && d.name == *name && d.subdomains == *wildcard)
                    {
                        Some(d) => merge_port(&mut d.ports, e.port, name)?,
                        None => p.domains.push(DomainRule {
                            name: name.clone(),
                            subdomains: *wildcard,
                            allow: true,
                            ports: e.port.into_iter().collect(),
                            rule: 0,
                        }),
                    }
                }
            }
        }
        for ip in nameservers.iter().chain(&policy.dns_resolvers) {
            let ip = ip.to_canonical();
            if !p.resolvers.contains(&ip) {
                p.resolvers.push(ip);
            }
        }
        for v4 in [true, false] {
            if p.resolvers.iter().filter(|a| a.is_ipv4() == v4).count() > RESOLVERS_MAX {
                return Err(PlanError::TooManyResolvers {
                    ip_version: if v4 { 4 } else { 6 },
                });
            }
        }
        if allowlist {
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
        };
        Ok(p)
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

/// An address learned for a domain rule, kept until its TTL runs out.
#[derive(Debug, Clone)]
struct Learned {
    name: String,
    allow: bool,
    until: Instant,
}

/// Least time a learned address stays in the maps: answers with a TTL of 0
/// (or a few seconds) are still about to be used by the caller.
const MIN_TTL: Duration = Duration::from_secs(30);
/// How many address -> name pairs are remembered for `dns_name`.
const NAMES_MAX: usize = 65536;

pub struct Egress {
    plan: Plan,
    /// Every rule text ever given an id, so ids stay stable across reloads
    /// (events already queued keep naming the rule they were judged by).
    rule_texts: Vec<String>,
    maps: Option<EgressMaps>,
    learned: HashMap<IpAddr, Learned>,
    /// Every address seen in a DNS answer (or resolved), for `dns_name`.
    names: HashMap<IpAddr, (String, Instant)>,
}

impl Egress {
    pub fn new(plan: Plan, maps: Option<EgressMaps>) -> Egress {
        Egress {
            rule_texts: plan.rules.clone(),
            plan,
            maps,
            learned: HashMap::new(),
            names: HashMap::new(),
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Writes the plan into the kernel maps.
    pub fn install(&mut self) -> libbpf_rs::Result<()> {
        let Some(m) = &self.maps else { return Ok(()) };
        m.install(&self.contents(), &self.plan.cfg)
    }

    /// Puts a reloaded policy's plan in force, in place (see
    /// `EgressMaps::replace`). Addresses learned for names the new plan
    /// still covers stay learned.
    pub fn reload(&mut self, mut plan: Plan) -> libbpf_rs::Result<()> {
        self.renumber(&mut plan);
        self.plan = plan;
        for (ip, l) in std::mem::take(&mut self.learned) {
            if let Some(rule) = self.rule_covering(&l.name) {
                let allow = rule.allow;
                self.learned.insert(ip, Learned { allow, ..l });
            }
        }
        let Some(m) = &self.maps else { return Ok(()) };
        m.replace(&self.contents(), &self.plan.cfg)
    }

    /// What the maps must hold: the plan, and each learned address under
    /// the rule that covers its name now.
    fn contents(&self) -> Contents {
        let learned = self
            .learned
            .iter()
            .filter_map(|(ip, l)| Some((*ip, self.rule_covering(&l.name)?)));
        Contents::new(&self.plan, learned)
    }

    /// Gives the plan's rules the ids their texts already have, or new ones.
    fn renumber(&mut self, plan: &mut Plan) {
        let ids: Vec<u32> = plan
            .rules
            .iter()
            .map(|t| match self.rule_texts.iter().position(|x| x == t) {
                Some(i) => i as u32,
                None => {
                    self.rule_texts.push(t.clone());
                    (self.rule_texts.len() - 1) as u32
                }
            })
            .collect();
        let map = |id: &mut u32| *id = ids.get(*id as usize).copied().unwrap_or(*id);
        plan.block.iter_mut().for_each(|(_, id)| map(id));
        plan.ports.iter_mut().for_each(|(_, id)| map(id));
        plan.domains.iter_mut().for_each(|d| map(&mut d.rule));
        plan.rules = self.rule_texts.clone();
    }

    /// The domain rule for a name: a blocked rule wins over an allowed one.
    fn rule_covering(&self, name: &str) -> Option<&DomainRule> {
        self.plan
            .domains
            .iter()
            .filter(|d| d.covers(name))
            .min_by_key(|d| d.allow)
    }

    /// The name an address was learned under, if any.
    pub fn dns_name(&self, ip: IpAddr) -> Option<&str> {
        self.names.get(&ip).map(|(n, _)| n.as_str())
    }

    /// Text of the rule behind a verdict.
    pub fn rule_text(&self, id: u32) -> String {
        self.rule_texts
            .get(id as usize)
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("rule {id}"))
    }

    /// Which domain rule an address belongs to, from what was learned.
    pub fn domain_rule_for(&self, ip: IpAddr) -> Option<&DomainRule> {
        let l = self.learned.get(&ip)?;
        self.plan
            .domains
            .iter()
            .find(|d| d.allow == l.allow && d.covers(&l.name))
    }

    /// Records that `name` resolved to `ip` for `ttl`: remembers the name,
    /// and when a domain rule covers it, puts the address in the block or
    /// allow map (the kernel may have done so already from the DNS answer;
    /// the update is idempotent) until the TTL runs out.
    pub fn learn(&mut self, name: &str, ip: IpAddr, ttl: Duration) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let now = Instant::now();
        let until = now + ttl.max(MIN_TTL);
        if self.names.len() >= NAMES_MAX && !self.names.contains_key(&ip) {
            // Forget the entry closest to expiry.
            if let Some(old) = self
                .names
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(a, _)| *a)
            {
                self.names.remove(&old);
            }
        }
        self.names.insert(ip, (name.clone(), until));
        let rule = self.rule_covering(&name).cloned();
        let Some(rule) = rule else { return };
        if let Some(m) = &self.maps {
            if let Err(e) = m.learn(ip, &rule) {
                // The name came in a DNS answer: anyone's bytes.
                let name = crate::escape::terminal(&name);
                log::warn!("cannot add {ip} ({name}) to the egress map: {e}");
                return;
            }
        }
        self.learned.insert(
            ip,
            Learned {
                name,
                allow: rule.allow,
                until,
            },
        );
    }

    /// Drops learned addresses whose TTL ran out (unless the policy names the
    /// address itself).
    pub fn expire(&mut self) {
        let now = Instant::now();
        let gone: Vec<(IpAddr, bool)> = self
            .learned
            .iter()
            .filter(|(_, l)| l.until <= now)
            .map(|(ip, l)| (*ip, l.allow))
            .collect();
        for (ip, allow) in gone {
            self.learned.remove(&ip);
            let key = CidrKey::host(ip);
            let static_entry = if allow {
                self.plan.allow.contains_key(&key)
            } else {
                self.plan
                    .block
                    .iter()
                    .any(|(c, _)| CidrKey::from(*c) == key)
            };
            if let (Some(m), false) = (&self.maps, static_entry) {
                let _ = m.forget(ip, allow);
            }
        }
        self.names.retain(|_, (_, t)| *t > now);
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
    fn reload_keeps_rule_ids_and_what_was_learned_for_names_still_covered() {
        let p1 = Plan::new(
            &pol("network:\n  blocked_ips: [\"198.51.100.3\"]\n  blocked_domains: [evil.example, gone.example]\n"),
            &[],
        )
        .unwrap();
        let old_id = p1.block[0].1;
        let mut e = Egress::new(p1, None);
        e.learn(
            "cdn.evil.example",
            "203.0.113.9".parse().unwrap(),
            Duration::from_secs(60),
        );
        e.learn(
            "gone.example",
            "203.0.113.10".parse().unwrap(),
            Duration::from_secs(60),
        );
        let p2 = Plan::new(
            &pol("network:\n  blocked_ports: [4444]\n  blocked_ips: [\"198.51.100.3\"]\n  blocked_domains: [evil.example]\n"),
            &[],
        )
        .unwrap();
        e.reload(p2).unwrap();
        // The same rule text keeps its id; a new text gets a new one, and
        // an id given before the reload still names its rule.
        assert_eq!(e.plan().block[0].1, old_id);
        assert_eq!(e.rule_text(old_id), "network.blocked_ips: 198.51.100.3");
        assert_eq!(
            e.rule_text(e.plan().ports[0].1),
            "network.blocked_ports: 4444"
        );
        assert!(e.rule_text(e.plan().ports[0].1) != e.rule_text(old_id));
        let evil = e.domain_rule_for("203.0.113.9".parse().unwrap()).unwrap();
        assert_eq!(
            e.rule_text(evil.rule),
            "network.blocked_domains: evil.example"
        );
        assert!(e.domain_rule_for("203.0.113.10".parse().unwrap()).is_none());
        assert_eq!(
            e.dns_name("203.0.113.10".parse().unwrap()),
            Some("gone.example")
        );
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

    #[test]
    fn learning_names_addresses_and_expires_them() {
        let plan = Plan::new(&pol("network:\n  blocked_domains: [evil.test]\n"), &[]).unwrap();
        let mut e = Egress::new(plan, None);
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        e.learn("X.Evil.Test.", ip, Duration::from_secs(60));
        assert_eq!(e.dns_name(ip), Some("x.evil.test"));
        assert_eq!(e.domain_rule_for(ip).unwrap().name, "evil.test");
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        e.learn("ok.test", other, Duration::from_secs(60));
        assert_eq!(e.dns_name(other), Some("ok.test"));
        assert!(e.domain_rule_for(other).is_none());
    }
}
