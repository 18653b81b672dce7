//! The process family: exec, fork and exit, always loaded (it names everyone
//! else's processes).

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::{attach_one, load_failed, storage, Family, Sensors};

mod process_skel {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}
pub(super) use process_skel::ProcessSkel;
use process_skel::ProcessSkelBuilder;

const PROCESS_PROBES: &[&str] = &[
    "sched/sched_process_exec",
    "raw_tp/sched_process_fork",
    "sched/sched_process_exit",
];

impl Sensors {
    pub(super) fn start_process(&mut self, self_tgid: u32) {
        let s = self;
        match Self::load_process(self_tgid) {
            Ok(skel) => {
                attach_one(
                    Family::Process,
                    PROCESS_PROBES[0],
                    &skel.progs.handle_exec,
                    &mut s.links,
                    &mut s.status,
                );
                attach_one(
                    Family::Process,
                    PROCESS_PROBES[1],
                    &skel.progs.handle_fork,
                    &mut s.links,
                    &mut s.status,
                );
                attach_one(
                    Family::Process,
                    PROCESS_PROBES[2],
                    &skel.progs.handle_exit,
                    &mut s.links,
                    &mut s.status,
                );
                s.process = Some(skel);
            }
            Err(e) => load_failed(Family::Process, PROCESS_PROBES, &e, &mut s.status),
        }
    }

    fn load_process(self_tgid: u32) -> libbpf_rs::Result<ProcessSkel<'static>> {
        let mut open = ProcessSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        open.load()
    }
}
