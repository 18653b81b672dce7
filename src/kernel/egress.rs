//! The egress programs: cgroup connect/sendmsg verdicts, the DNS query
//! and answer parsers and the backstop below the socket hooks, attached at
//! the cgroup v2 root, and the check that their maps still enforce the plan.

use std::os::fd::AsFd;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::egress_maps::lpm_key;
use super::guard::{map_drift, Drift};
use super::net::NetSkel;
use super::{explain, storage, Family, Probe, ProbeError, ProbeStatus, Sensors};
use crate::abi::as_bytes;
use crate::policy::network::{CidrKey, Plan};

mod egress_skel {
    include!(concat!(env!("OUT_DIR"), "/egress.skel.rs"));
}
pub(super) use egress_skel::EgressSkel;
use egress_skel::EgressSkelBuilder;

const PROBES: &[Probe<EgressSkel>] = &[
    Probe {
        name: "cgroup/connect4",
        prog: |s| &s.progs.egress_connect4,
    },
    Probe {
        name: "cgroup/connect6",
        prog: |s| &s.progs.egress_connect6,
    },
    Probe {
        name: "cgroup/sendmsg4",
        prog: |s| &s.progs.egress_sendmsg4,
    },
    Probe {
        name: "cgroup/sendmsg6",
        prog: |s| &s.progs.egress_sendmsg6,
    },
    Probe {
        name: "cgroup_skb/egress (DNS queries)",
        prog: |s| &s.progs.egress_dnsq,
    },
    Probe {
        name: "cgroup_skb/ingress (DNS answers)",
        prog: |s| &s.progs.egress_dns,
    },
];

/// The backstop below the socket hooks (`bpf/backstop.bpf.h`): at the
/// cgroup root, the packets of raw, ping and UDP-Lite sockets.
const BACKSTOP: &[Probe<EgressSkel>] = &[Probe {
    name: "cgroup_skb/egress (backstop: raw, ping, UDP-Lite packets)",
    prog: |s| &s.progs.egress_backstop,
}];

/// The backstop's tracepoint: connect(2) of a raw or UDP-Lite socket,
/// which no cgroup connect hook judges.
const TRACEPOINTS: &[Probe<EgressSkel>] = &[Probe {
    name: "syscalls/sys_enter_connect (raw, UDP-Lite)",
    prog: |s| &s.progs.egress_raw_connect,
}];

impl Sensors {
    /// The cgroup sock_addr programs and the DNS query and answer skb
    /// programs, at the cgroup v2 root so every process on the host passes
    /// through them.
    pub(super) fn start_egress(&mut self, self_tgid: u32) {
        let family = Family::Network;
        let fail = |s: &mut Self, why: ProbeError| {
            s.fail_all(family, PROBES, why.clone());
            s.fail_all(family, BACKSTOP, why.clone());
            s.fail_all(family, TRACEPOINTS, why);
        };
        let Some(net) = &self.net else {
            return fail(self, ProbeError::NeedsConnect);
        };
        let (cg, path) = match crate::sys::open_cgroup2_root() {
            Ok(x) => x,
            Err(e) => return fail(self, ProbeError::Cgroup(e.to_string())),
        };
        let mut backstop = true;
        let skel = match Self::load_egress(self_tgid, net, true) {
            Ok(s) => s,
            // A kernel without the helpers the backstop's cgroup_skb program
            // uses (the current task's pid, before Linux 6.x gave them to
            // every program type) refuses the whole object: the verdicts
            // and DNS learning still load without the backstop.
            Err(e) => match Self::load_egress(self_tgid, net, false) {
                Ok(s) => {
                    backstop = false;
                    let why = explain(&e);
                    log::warn!(
                        "the egress backstop did not load ({why}): raw, ping, UDP-Lite, AF_PACKET and tunnelled packets are not judged"
                    );
                    for p in BACKSTOP.iter().chain(TRACEPOINTS) {
                        self.skipped.push((family, p.name, why.clone()));
                    }
                    self.skipped.push((family, DEVICE_PROBE, why.clone()));
                    s
                }
                Err(e) => return fail(self, ProbeError::Load(explain(&e))),
            },
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&cg);
        let attach = |p: &Probe<EgressSkel>, cgroup: bool| {
            let prog = (p.prog)(&skel);
            if cgroup {
                prog.attach_cgroup(fd)
            } else {
                prog.attach()
            }
        };
        let (backstops, tracepoints) = if backstop {
            (BACKSTOP, TRACEPOINTS)
        } else {
            (&[][..], &[][..])
        };
        for (p, cgroup) in PROBES
            .iter()
            .chain(backstops)
            .map(|p| (p, true))
            .chain(tracepoints.iter().map(|p| (p, false)))
        {
            let at = self.status.len();
            let outcome = attach(p, cgroup)
                .map(|l| self.links.push((at, l)))
                .map_err(|e| ProbeError::Attach(explain(&e)));
            self.status.push(ProbeStatus {
                family,
                probe: p.name.to_string(),
                outcome,
            });
        }
        // The links hold the cgroup; the directory fd is not needed any more.
        drop(cg);
        self.cgroup_root = Some(path);
        self.egress = Some(skel);
        if backstop {
            let outcome = self.cover_devices().map(|_| ()).map_err(ProbeError::Attach);
            if let Err(e) = &outcome {
                log::warn!("the device backstop is not attached ({e}): AF_PACKET frames and tunnel encapsulations are not judged");
                self.skipped.push((family, DEVICE_PROBE, e.to_string()));
            }
            // Optional: a kernel without tcx (before 6.6) runs without it.
            if outcome.is_ok() {
                self.status.push(ProbeStatus {
                    family,
                    probe: DEVICE_PROBE.to_string(),
                    outcome,
                });
            }
        }
    }

    /// Attaches the device backstop (tcx egress) to every interface of this
    /// network namespace that it is not on yet, and lets go of the links of
    /// interfaces gone (the kernel detached them with the device). tcx links
    /// are bpf links held by this process: they go when it dies, however it
    /// dies, and nothing is left on an interface. Returns how many were
    /// added, or why the first attach failed.
    pub fn cover_devices(&mut self) -> Result<usize, String> {
        let Some(skel) = &self.egress else {
            return Ok(0);
        };
        // The backstop did not load (said once at the start): nothing to
        // attach, and no warning for every new interface. An attach that
        // failed on one interface at the start is still tried on new ones.
        if !skel.progs.egress_device.autoload() || self.no_tcx {
            return Ok(0);
        }
        let now = interfaces();
        self.devices.retain(|(i, _)| now.contains(i));
        let mut added = Vec::new();
        let mut failed = None;
        for ifindex in now {
            if self.devices.iter().any(|(i, _)| *i == ifindex) {
                continue;
            }
            match attach_tcx(&skel.progs.egress_device, ifindex) {
                Ok(l) => {
                    added.extend(l.info().ok().map(|i| super::OwnObject {
                        kind: crate::abi::OBJ_LINK,
                        id: i.id,
                        name: format!(
                            "{} {DEVICE_PROBE} on interface {ifindex}",
                            Family::Network.as_str()
                        ),
                    }));
                    self.devices.push((ifindex, l));
                }
                // Gone between the listing and the attach.
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                // The kernel does not know the attach type: it has no tcx.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.no_tcx = true;
                    failed = Some(format!(
                        "this kernel has no tcx (Linux 6.6 or later): {e} on interface {ifindex}"
                    ));
                    break;
                }
                Err(e) => {
                    failed = Some(format!("interface {ifindex}: {e}"));
                    break;
                }
            }
        }
        // Links made while running are guarded like those of the start
        // (which the start's scan of open fds finds on its own).
        if let Err(e) = self.register_own(&added) {
            log::warn!(
                "the tamper sensor was not told of new device links: {}",
                explain(&e)
            );
        }
        match failed {
            Some(why) => Err(why),
            None => Ok(added.len()),
        }
    }
    fn load_egress(
        self_tgid: u32,
        net: &NetSkel<'static>,
        backstop: bool,
    ) -> libbpf_rs::Result<EgressSkel<'static>> {
        // DNS answers are learned only for sockets of this namespace (the
        // host's): without its cookie, none is.
        let host_netns = super::egress_maps::own_netns_cookie().unwrap_or_else(|e| {
            log::warn!(
                "cannot read the cookie of bee-trace's network namespace ({e}): DNS answers will not be learned"
            );
            0
        });
        log::debug!("DNS answers are learned for sockets of network namespace cookie {host_netns}");
        let mut open = EgressSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
            ro.host_netns = host_netns;
        }
        open.maps.net_events.reuse_fd(net.maps.net_events.as_fd())?;
        open.maps.in_connect.reuse_fd(net.maps.in_connect.as_fd())?;
        open.maps.net_share.reuse_fd(net.maps.net_share.as_fd())?;
        open.progs.egress_backstop.set_autoload(backstop);
        open.progs.egress_raw_connect.set_autoload(backstop);
        open.progs.egress_device.set_autoload(backstop);
        open.load()
    }

    /// Handles on the egress maps, for the processing thread.
    pub fn egress_maps(&self) -> Option<super::EgressMaps> {
        let s = self.egress.as_ref()?;
        let h = |m: &libbpf_rs::Map<'_>| MapHandle::try_from(m).ok();
        Some(super::EgressMaps {
            cfg: h(&s.maps.egress_cfg)?,
            block4: h(&s.maps.block4)?,
            block6: h(&s.maps.block6)?,
            allow4: h(&s.maps.allow4)?,
            allow6: h(&s.maps.allow6)?,
            ports: h(&s.maps.blocked_ports)?,
            resolvers4: h(&s.maps.resolvers4)?,
            resolvers6: h(&s.maps.resolvers6)?,
            dns: h(&s.maps.dns_rules),
        })
    }

    /// Whether the egress maps still enforce `plan`: the mode and allowlist
    /// switch as written, every blocked network still blocked (found in the
    /// trie with a rule), every blocked port still there. Addresses learned
    /// for domain names come and go with their TTL and are not checked.
    pub fn egress_drift(&self, plan: &Plan) -> Vec<Drift> {
        let Some(skel) = &self.egress else {
            return Vec::new();
        };
        let m = &skel.maps;
        let mut out = Vec::new();
        let cfg = m
            .egress_cfg
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten();
        if cfg.as_deref() != Some(as_bytes(&plan.cfg)) {
            let now = cfg
                .as_deref()
                .and_then(|v| Some((v.get(..4)?.try_into().ok()?, v.get(4..8)?.try_into().ok()?)))
                .map(|(a, b): ([u8; 4], [u8; 4])| (u32::from_ne_bytes(a), u32::from_ne_bytes(b)));
            let guard = cfg
                .as_deref()
                .and_then(|v| v.get(8..12)?.try_into().ok())
                .map(u32::from_ne_bytes)
                .unwrap_or(0);
            let what = match now {
                Some((mode, allow)) => format!(
                    "holds mode {} and allowlist {allow} and dns guard {guard}; bee-trace wrote mode {} and allowlist {} and dns guard {}",
                    mode_name(mode),
                    mode_name(plan.cfg.mode),
                    plan.cfg.allowlist,
                    plan.cfg.dns_guard
                ),
                None => "its entry cannot be read".to_string(),
            };
            out.push(map_drift(&m.egress_cfg, "egress_cfg", what));
        }
        let mut unblocked = Vec::new();
        for (c, _) in &plan.block {
            let map: &dyn MapCore = if c.addr.is_ipv4() {
                &m.block4
            } else {
                &m.block6
            };
            let key = lpm_key(CidrKey::from(*c));
            let rule = map
                .lookup(&key, MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)));
            if rule.unwrap_or(0) == 0 {
                unblocked.push(format!("{}/{}", c.addr, c.prefix));
            }
        }
        if !unblocked.is_empty() {
            out.push(map_drift(
                &m.block4,
                "block4/block6",
                format!("no longer block {}", unblocked.join(", ")),
            ));
        }
        let gone: Vec<String> = plan
            .ports
            .iter()
            .filter(|(p, _)| {
                !matches!(
                    m.blocked_ports.lookup(&p.to_ne_bytes(), MapFlags::ANY),
                    Ok(Some(_))
                )
            })
            .map(|(p, _)| p.to_string())
            .collect();
        if !gone.is_empty() {
            out.push(map_drift(
                &m.blocked_ports,
                "blocked_ports",
                format!("no longer block port {}", gone.join(", ")),
            ));
        }
        out
    }
}

/// The egress modes by the name the policy gives them.
fn mode_name(mode: u32) -> &'static str {
    match mode {
        crate::abi::MODE_OFF => "off",
        crate::abi::MODE_AUDIT => "audit",
        crate::abi::MODE_BLOCK => "block",
        _ => "unknown",
    }
}

/// The device backstop's probe name in `status`.
const DEVICE_PROBE: &str = "tcx/egress (device backstop, every interface)";

/// The interface indexes of bee-trace's network namespace, from sysfs.
fn interfaces() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("ifindex")).ok()?;
            text.trim().parse().ok()
        })
        .collect()
}

/// A tcx egress link of `prog` on interface `ifindex` (libbpf-rs 0.27 has
/// no wrapper for it).
fn attach_tcx(prog: &libbpf_rs::ProgramMut<'_>, ifindex: u32) -> std::io::Result<libbpf_rs::Link> {
    use libbpf_rs::AsRawLibbpf;
    let ifindex =
        i32::try_from(ifindex).map_err(|_| std::io::Error::from_raw_os_error(libc::ENODEV))?;
    // SAFETY: the program is loaded and outlives the call; libbpf accepts
    // NULL options; on failure it returns NULL and sets errno.
    let ptr = unsafe {
        libbpf_rs::libbpf_sys::bpf_program__attach_tcx(
            prog.as_libbpf_object().as_ptr(),
            ifindex,
            std::ptr::null(),
        )
    };
    match std::ptr::NonNull::new(ptr) {
        // SAFETY: a link libbpf just made, owned by nobody else.
        Some(p) => Ok(unsafe { libbpf_rs::Link::from_ptr(p) }),
        None => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn modes_have_their_policy_names() {
        assert_eq!(super::mode_name(crate::abi::MODE_OFF), "off");
        assert_eq!(super::mode_name(crate::abi::MODE_AUDIT), "audit");
        assert_eq!(super::mode_name(crate::abi::MODE_BLOCK), "block");
    }
}
