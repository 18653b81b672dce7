//! The network family: connect(2) as it returns (the egress programs that
//! judge connects before they happen are in `egress`).

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::hooks::{attach_fexit, load_refusal, syscall_fexit, HookMode};
use super::{attach_one, load_failed, storage, Family, Sensors};

mod net_skel {
    include!(concat!(env!("OUT_DIR"), "/net.skel.rs"));
}
pub(super) use net_skel::NetSkel;
use net_skel::NetSkelBuilder;

const NET_PROBES: &[&str] = &["syscalls/sys_exit_connect"];

impl Sensors {
    pub(super) fn start_net(&mut self, self_tgid: u32, hooks: HookMode) {
        let s = self;
        s.net = s.hook_family(
            hooks,
            Family::Network,
            || {
                let skel = Self::load_net(self_tgid, true).map_err(|e| load_refusal(&e))?;
                let name = syscall_fexit("connect");
                let links = attach_fexit(&[(name.clone(), &skel.progs.fexit_connect)])?;
                Ok((skel, links, vec![name]))
            },
            |s| match Self::load_net(self_tgid, false) {
                Ok(skel) => {
                    attach_one(
                        Family::Network,
                        NET_PROBES[0],
                        &skel.progs.handle_connect_exit,
                        &mut s.links,
                        &mut s.status,
                    );
                    Some(skel)
                }
                Err(e) => {
                    load_failed(Family::Network, NET_PROBES, &e, &mut s.status);
                    None
                }
            },
        );
    }

    fn load_net(self_tgid: u32, fexit: bool) -> libbpf_rs::Result<NetSkel<'static>> {
        let mut open = NetSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        open.progs.handle_connect_exit.set_autoload(!fexit);
        open.progs.fexit_connect.set_autoload(fexit);
        open.load()
    }
}
