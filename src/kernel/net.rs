//! The network family: connect(2) as it returns, and the mark of a thread
//! inside it (the egress programs that judge connects before they happen,
//! and report those not made by connect(2), are in `egress`).

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::hooks::{sys_fexit, HookMode, Loaded};
use super::{storage, Family, Probe, Sensors};

mod net_skel {
    include!(concat!(env!("OUT_DIR"), "/net.skel.rs"));
}
pub(super) use net_skel::NetSkel;
use net_skel::NetSkelBuilder;

/// The fentry program of connect(2), beside its fexit: marks the thread
/// as inside connect(2) for the egress hooks.
#[cfg(target_arch = "aarch64")]
const FENTRY_CONNECT: &str = "fentry/__arm64_sys_connect";
#[cfg(not(target_arch = "aarch64"))]
const FENTRY_CONNECT: &str = "fentry/__x64_sys_connect";

const FEXIT: &[Probe<NetSkel>] = &[
    Probe {
        name: FENTRY_CONNECT,
        prog: |s| &s.progs.fentry_connect,
    },
    Probe {
        name: sys_fexit!("connect"),
        prog: |s| &s.progs.fexit_connect,
    },
    Probe {
        name: sys_fexit!("socket"),
        prog: |s| &s.progs.fexit_socket,
    },
    Probe {
        name: sys_fexit!("listen"),
        prog: |s| &s.progs.fexit_listen,
    },
    Probe {
        name: sys_fexit!("accept"),
        prog: |s| &s.progs.fexit_accept,
    },
    Probe {
        name: sys_fexit!("accept4"),
        prog: |s| &s.progs.fexit_accept4,
    },
];
const TRACEPOINTS: &[Probe<NetSkel>] = &[
    Probe {
        name: "syscalls/sys_enter_connect",
        prog: |s| &s.progs.handle_connect_enter,
    },
    Probe {
        name: "syscalls/sys_exit_connect",
        prog: |s| &s.progs.handle_connect_exit,
    },
    Probe {
        name: "syscalls/sys_exit_socket",
        prog: |s| &s.progs.handle_socket_exit,
    },
    Probe {
        name: "syscalls/sys_exit_listen",
        prog: |s| &s.progs.handle_listen_exit,
    },
    Probe {
        name: "syscalls/sys_exit_accept",
        prog: |s| &s.progs.handle_accept_exit,
    },
    Probe {
        name: "syscalls/sys_exit_accept4",
        prog: |s| &s.progs.handle_accept4_exit,
    },
];

impl Sensors {
    pub(super) fn start_net(&mut self, self_tgid: u32, hooks: HookMode) {
        self.net = self.hook_family(
            hooks,
            Family::Network,
            |fexit| Self::load_net(self_tgid, fexit).map(Loaded::all),
            FEXIT,
            TRACEPOINTS,
        );
    }

    fn load_net(self_tgid: u32, fexit: bool) -> libbpf_rs::Result<NetSkel<'static>> {
        let mut open = NetSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        open.progs.handle_connect_enter.set_autoload(!fexit);
        open.progs.handle_connect_exit.set_autoload(!fexit);
        open.progs.fentry_connect.set_autoload(fexit);
        open.progs.fexit_connect.set_autoload(fexit);
        open.progs.handle_socket_exit.set_autoload(!fexit);
        open.progs.fexit_socket.set_autoload(fexit);
        let p = &mut open.progs;
        p.handle_listen_exit.set_autoload(!fexit);
        p.handle_accept_exit.set_autoload(!fexit);
        p.handle_accept4_exit.set_autoload(!fexit);
        p.fexit_listen.set_autoload(fexit);
        p.fexit_accept.set_autoload(fexit);
        p.fexit_accept4.set_autoload(fexit);
        open.load()
    }
}
