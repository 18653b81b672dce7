//! The process family: exec, fork and exit, always loaded (it names everyone
//! else's processes).

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::{storage, Family, Probe, Sensors};

mod process_skel {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}
pub(super) use process_skel::ProcessSkel;
use process_skel::ProcessSkelBuilder;

const PROBES: &[Probe<ProcessSkel>] = &[
    Probe {
        name: "raw_tp/sched_process_exec",
        prog: |s| &s.progs.handle_exec,
    },
    Probe {
        name: "raw_tp/sched_process_fork",
        prog: |s| &s.progs.handle_fork,
    },
    Probe {
        name: "sched/sched_process_exit",
        prog: |s| &s.progs.handle_exit,
    },
];

impl Sensors {
    pub(super) fn start_process(&mut self, self_tgid: u32) {
        self.process = self.attach_loaded(Family::Process, Self::load_process(self_tgid), PROBES);
    }

    fn load_process(self_tgid: u32) -> libbpf_rs::Result<ProcessSkel<'static>> {
        let mut open = ProcessSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        open.load()
    }
}
