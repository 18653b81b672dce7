//! The network family: connects seen by the tracepoints, verdicts of the
//! egress hooks (one event per judged connect), and DNS answers, which
//! teach the egress maps an address (an effect) and are events only when
//! the kernel could not read all of one a domain rule covers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::result_text;
use crate::abi;
use crate::event::{Detail, Event, Severity};

use super::{Cx, Effect};

/// How long an egress verdict absorbs the connect tracepoint's record.
const VERDICT_WINDOW_NS: u64 = 2_000_000_000;

/// Recent egress verdicts on connects, by (pid, address, port): the
/// connect tracepoint's record of the same call is folded into them.
#[derive(Default)]
pub struct Net {
    verdicts: HashMap<(u32, IpAddr, u16), u64>,
}

impl Net {
    /// A connect the tracepoints saw, unless the egress hooks already
    /// reported this very call with their verdict.
    pub fn connect(&mut self, cx: &mut Cx, e: &abi::NetEvent) -> Option<Event> {
        let (family, ip) = net_addr(e.family, &e.daddr)?;
        // The egress hook already reported this very connect with its verdict.
        if let Some(ts) = self.verdicts.get(&(e.hdr.pid, ip, e.dport)) {
            if e.hdr.ts_boot_ns.saturating_sub(*ts) < VERDICT_WINDOW_NS {
                return None;
            }
        }
        if !cx.policy.monitored_ports.is_empty() && !cx.policy.monitored_ports.contains(&e.dport) {
            cx.stats.filtered += 1;
            return None;
        }
        let severity = if cx.policy.alert_on_any_connection {
            Severity::Warning
        } else {
            Severity::Info
        };
        let detail = Detail::Network {
            op: "connect",
            protocol: protocol_name(e.protocol),
            family,
            daddr: ip.to_string(),
            dport: e.dport,
            result: result_text(e.ret as i64),
            policy: None,
            action: None,
            rule: None,
            dns_name: cx.egress.dns_name(ip).map(str::to_string),
            answer_cut: None,
        };
        Some(cx.enrich.base(&e.hdr, severity, detail))
    }

    /// A verdict of the cgroup egress hooks (or an unconnected UDP send).
    pub fn verdict(&mut self, cx: &mut Cx, e: &abi::EgressEvent) -> Option<Event> {
        let (family, ip) = net_addr(e.family, &e.daddr)?;
        let op = match e.hook {
            abi::HOOK_CONNECT | abi::HOOK_RAW_CONNECT => "connect",
            abi::HOOK_PACKET | abi::HOOK_DEVICE => "packet",
            _ => "sendmsg",
        };
        let (action, result) = match e.action {
            // A raw or UDP-Lite socket's connect succeeds (no hook can refuse
            // it); the backstop drops every packet it sends there.
            abi::ACT_BLOCKED if e.hook == abi::HOOK_RAW_CONNECT => {
                (Some("blocked"), "packets_dropped".to_string())
            }
            abi::ACT_BLOCKED if matches!(e.hook, abi::HOOK_PACKET | abi::HOOK_DEVICE) => {
                (Some("blocked"), "dropped".to_string())
            }
            abi::ACT_BLOCKED => (Some("blocked"), "EPERM".to_string()),
            abi::ACT_WOULD_BLOCK => (Some("would_block"), "permitted".to_string()),
            // A connect the hook saw from a thread not inside connect(2)
            // (io_uring, TCP Fast Open): no tracepoint tells its result.
            abi::ACT_OBSERVED if op == "connect" => (None, "attempted".to_string()),
            abi::ACT_OBSERVED => (None, "sent".to_string()),
            other => {
                log::debug!("unknown egress action {other}");
                (None, "sent".to_string())
            }
        };
        if action.is_some() && op == "connect" {
            if self.verdicts.len() > 4096 {
                let now = e.hdr.ts_boot_ns;
                self.verdicts
                    .retain(|_, t| now.saturating_sub(*t) < VERDICT_WINDOW_NS);
            }
            self.verdicts
                .insert((e.hdr.pid, ip, e.dport), e.hdr.ts_boot_ns);
        }
        if action.is_none()
            && !cx.policy.monitored_ports.is_empty()
            && !cx.policy.monitored_ports.contains(&e.dport)
        {
            cx.stats.filtered += 1;
            return None;
        }
        let severity = if action.is_some() {
            Severity::High
        } else if cx.policy.alert_on_any_connection {
            Severity::Warning
        } else {
            Severity::Info
        };
        let (rule, policy) = if action.is_some() {
            let text = cx.egress.rule_text(e.rule);
            let legacy = if let Some(d) = cx.egress.domain_rule_for(ip) {
                (!d.allow).then(|| format!("blocked_domain:{}", d.name))
            } else if text.starts_with("network.blocked_ips") {
                Some("blocked_ip".to_string())
            } else {
                None
            };
            (Some(text), legacy)
        } else {
            (None, None)
        };
        let detail = Detail::Network {
            op,
            protocol: protocol_name(e.protocol),
            family,
            daddr: ip.to_string(),
            dport: e.dport,
            result,
            policy,
            action,
            rule,
            dns_name: cx.egress.dns_name(ip).map(str::to_string),
            answer_cut: None,
        };
        let mut hdr = e.hdr;
        hdr.ppid = cx.enrich.table.get_or_load(hdr.pid).map_or(0, |p| p.ppid);
        Some(cx.enrich.base(&hdr, severity, detail))
    }
}

/// A DNS answer the kernel took: its addresses are learned under the name
/// asked for (for `dns_name`, and with their TTL for the egress maps).
/// The kernel sends only answers to a query it saw leaving a socket of
/// the host's network namespace for a configured resolver (same socket,
/// resolver, ports, id and question), so nothing a job answers itself
/// gets here. An event only when a domain rule covers the name and the
/// kernel could not read every address record (`answer_cut`): for a
/// blocked name the answer was dropped (block mode) or would have been.
pub fn dns(cx: &mut Cx, e: &abi::DnsEvent) -> Option<Event> {
    let wire = e.name.get(..usize::from(e.name_len)).unwrap_or(&e.name);
    let Some(name) = abi::dns_name_text(wire) else {
        cx.stats.filtered += 1;
        return None;
    };
    for k in 0..usize::from(e.naddrs).min(abi::DNS_ADDRS) {
        let ip = match e.family[k] {
            4 => IpAddr::from([e.addr[k][0], e.addr[k][1], e.addr[k][2], e.addr[k][3]]),
            6 => IpAddr::from(e.addr[k]),
            _ => continue,
        };
        cx.effects.push(Effect::LearnAddr {
            name: name.clone(),
            ip,
            ttl: Duration::from_secs(u64::from(e.ttl[k])),
        });
    }
    let cut = answer_cut(e.cut)?;
    if e.rule_hit == 0 {
        return None;
    }
    cut_answer(cx, e, name, cut)
}

/// Why not every address record of an answer was read, in the event's words.
fn answer_cut(cut: u8) -> Option<&'static str> {
    match cut {
        abi::DNS_WHOLE => None,
        abi::DNS_CUT_COUNT => Some("too_many_records"),
        abi::DNS_CUT_SIZE => Some("too_long"),
        abi::DNS_CUT_MALFORMED => Some("malformed"),
        other => {
            log::debug!("unknown DNS cut {other}");
            Some("malformed")
        }
    }
}

/// The event of an answer the kernel could not fully learn for a name a
/// domain rule covers: `op` `dns_answer`, the resolver as `daddr`.
fn cut_answer(cx: &mut Cx, e: &abi::DnsEvent, name: String, cut: &'static str) -> Option<Event> {
    let (family, ip) = match e.server_family {
        4 => (
            "ipv4",
            IpAddr::from([e.server[0], e.server[1], e.server[2], e.server[3]]),
        ),
        6 => ("ipv6", IpAddr::from(e.server)),
        _ => return None,
    };
    let (action, result) = match e.action {
        abi::ACT_BLOCKED => (Some("blocked"), "dropped"),
        abi::ACT_WOULD_BLOCK => (Some("would_block"), "permitted"),
        // An allow rule: the addresses not learned stay refused.
        _ => (None, "ok"),
    };
    let (rule, policy) = match action {
        Some(_) => {
            let domain = cx
                .egress
                .plan()
                .domains
                .iter()
                .find(|d| !d.allow && d.rule == e.rule)
                .map(|d| format!("blocked_domain:{}", d.name));
            (Some(cx.egress.rule_text(e.rule)), domain)
        }
        None => (None, None),
    };
    let detail = Detail::Network {
        op: "dns_answer",
        protocol: "udp".to_string(),
        family,
        daddr: ip.to_string(),
        dport: 53,
        result: result.to_string(),
        policy,
        action,
        rule,
        dns_name: Some(name),
        answer_cut: Some(cut),
    };
    let severity = if action.is_some() {
        Severity::High
    } else {
        Severity::Warning
    };
    let mut hdr = e.hdr;
    hdr.ppid = cx.enrich.table.get_or_load(hdr.pid).map_or(0, |p| p.ppid);
    Some(cx.enrich.base(&hdr, severity, detail))
}

fn net_addr(family: u16, daddr: &[u8; 16]) -> Option<(&'static str, IpAddr)> {
    match family {
        2 => Some((
            "ipv4",
            IpAddr::V4(Ipv4Addr::new(daddr[0], daddr[1], daddr[2], daddr[3])),
        )),
        10 => Some(("ipv6", IpAddr::V6(Ipv6Addr::from(*daddr)))),
        _ => None,
    }
}

fn protocol_name(p: u16) -> String {
    match p {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        1 => "icmp".to_string(),
        58 => "icmpv6".to_string(),
        136 => "udplite".to_string(),
        255 => "raw".to_string(),
        262 => "mptcp".to_string(),
        n => format!("ip-proto-{n}"),
    }
}

/// A raw, packet or ICMP ping socket made (or refused): these send below
/// the cgroup egress hooks, and a CI step rarely needs one, so a warning.
pub fn socket(cx: &mut Cx, e: &abi::NetEvent) -> Option<Event> {
    let family = match e.family {
        abi::AF_INET => "ipv4",
        abi::AF_INET6 => "ipv6",
        abi::AF_PACKET => "packet",
        other => {
            log::debug!("socket record of family {other}");
            cx.stats.filtered += 1;
            return None;
        }
    };
    let protocol = if e.family == abi::AF_PACKET {
        // The ethertype, as the caller passed it: network byte order.
        format!("ethertype-{:#06x}", u16::from_be(e.protocol))
    } else {
        protocol_name(e.protocol)
    };
    let detail = Detail::Socket {
        op: "socket",
        family,
        sock_type: sock_type_name(e.sock_type),
        protocol,
        // An fd or -errno.
        result: result_text(i64::from(e.ret.min(0))),
    };
    Some(cx.enrich.base(&e.hdr, Severity::Warning, detail))
}

fn sock_type_name(t: u16) -> String {
    match t {
        1 => "stream".to_string(),
        2 => "dgram".to_string(),
        3 => "raw".to_string(),
        5 => "seqpacket".to_string(),
        10 => "packet".to_string(),
        n => format!("type-{n}"),
    }
}

/// A server in the job. A listen on loopback is the job's own business
/// (info); one reachable from other hosts is a warning; a connection
/// accepted from another host (the kernel sends no loopback ones) is high:
/// a bind shell's, or a tunnel's.
pub fn serve(cx: &mut Cx, e: &abi::ServeEvent) -> Option<Event> {
    let (Some((family, local)), Some((_, peer))) =
        (net_addr(e.family, &e.laddr), net_addr(e.family, &e.raddr))
    else {
        cx.stats.filtered += 1;
        return None;
    };
    let accept = e.op == abi::SERVE_ACCEPT;
    let severity = if accept {
        Severity::High
    } else if local.to_canonical().is_loopback() {
        Severity::Info
    } else {
        Severity::Warning
    };
    let detail = Detail::Serve {
        op: if accept { "accept" } else { "listen" },
        protocol: protocol_name(e.protocol),
        family,
        laddr: local.to_string(),
        lport: e.lport,
        daddr: accept.then(|| peer.to_canonical().to_string()),
        dport: accept.then_some(e.rport),
        result: result_text(i64::from(e.ret.min(0))),
    };
    Some(cx.enrich.base(&e.hdr, severity, detail))
}
