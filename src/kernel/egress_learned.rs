//! The egress plan in force over a run: rule ids that stay the same across
//! reloads, the names seen for addresses, and the addresses learned for the
//! plan's domain rules (at start and from DNS answers), kept in the egress
//! maps for as long as their TTL says.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::egress_maps::{Contents, EgressMaps};
use crate::policy::network::{CidrKey, DomainRule, Plan};

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
    use crate::policy::Policy;
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

    #[test]
    fn learned_addresses_of_allow_and_block_rules_are_forgotten_when_their_ttl_runs_out() {
        let plan = Plan::new(
            &pol(
                "network:\n  blocked_domains: [evil.test]\n  allowed_endpoints: [api.good.test]\n",
            ),
            &[],
        )
        .unwrap();
        let mut e = Egress::new(plan, None);
        let (bad, good, kept): (IpAddr, IpAddr, IpAddr) = (
            "198.51.100.1".parse().unwrap(),
            "198.51.100.2".parse().unwrap(),
            "198.51.100.3".parse().unwrap(),
        );
        e.learn("x.evil.test", bad, Duration::ZERO);
        e.learn("api.good.test", good, Duration::ZERO);
        e.learn("y.evil.test", kept, Duration::from_secs(3600));
        // The allowed name is found past the block rule listed before it.
        let d = e.domain_rule_for(good).unwrap();
        assert!(d.allow);
        assert_eq!(d.name, "api.good.test");
        assert!(!e.domain_rule_for(bad).unwrap().allow);
        // A TTL of 0 still keeps the address MIN_TTL ...
        e.expire();
        assert!(e.domain_rule_for(bad).is_some() && e.domain_rule_for(good).is_some());
        // ... and once that has run out, both are forgotten, names too.
        let past = Instant::now();
        for ip in [bad, good] {
            e.learned.get_mut(&ip).unwrap().until = past;
            e.names.get_mut(&ip).unwrap().1 = past;
        }
        e.expire();
        for ip in [bad, good] {
            assert!(e.domain_rule_for(ip).is_none(), "{ip}");
            assert_eq!(e.dns_name(ip), None, "{ip}");
        }
        assert_eq!(e.domain_rule_for(kept).unwrap().name, "evil.test");
        assert_eq!(e.dns_name(kept), Some("y.evil.test"));
    }

    #[test]
    fn a_full_name_table_forgets_the_name_closest_to_expiry() {
        let plan = Plan::new(&pol("network:\n  blocked_domains: [evil.test]\n"), &[]).unwrap();
        let mut e = Egress::new(plan, None);
        let ip = |n: usize| IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
        for n in 0..NAMES_MAX {
            // The first one expires soonest.
            e.learn("a.test", ip(n), MIN_TTL + Duration::from_secs(n as u64));
        }
        // Learning a known address again forgets nothing ...
        e.learn("b.test", ip(1), Duration::from_secs(1 << 20));
        assert_eq!(e.names.len(), NAMES_MAX);
        assert_eq!(e.dns_name(ip(0)), Some("a.test"));
        assert_eq!(e.dns_name(ip(1)), Some("b.test"));
        // ... a new one forgets the one closest to expiry.
        e.learn("c.test", ip(NAMES_MAX), MIN_TTL);
        assert_eq!(e.names.len(), NAMES_MAX);
        assert_eq!(e.dns_name(ip(0)), None);
        assert_eq!(e.dns_name(ip(2)), Some("a.test"));
        assert_eq!(e.dns_name(ip(NAMES_MAX)), Some("c.test"));
    }
}
