//! The memory family: ptrace and process_vm_readv/writev (the opens of
//! /proc/<pid>/{mem,environ,maps} are the file family's programs).

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::hooks::{attach_fexit, load_refusal, syscall_fexit, HookMode};
use super::{attach_one, load_failed, storage, Family, Sensors};

mod mem_skel {
    include!(concat!(env!("OUT_DIR"), "/mem.skel.rs"));
}
pub(super) use mem_skel::MemSkel;
use mem_skel::MemSkelBuilder;

const MEM_PROBES: &[&str] = &[
    "syscalls/sys_exit_ptrace",
    "syscalls/sys_exit_process_vm_readv",
    "syscalls/sys_exit_process_vm_writev",
];

impl Sensors {
    pub(super) fn start_mem(&mut self, self_tgid: u32, hooks: HookMode) {
        let s = self;
        s.mem = s.hook_family(
            hooks,
            Family::Memory,
            || {
                let skel = Self::load_mem(self_tgid, true).map_err(|e| load_refusal(&e))?;
                let names = ["ptrace", "process_vm_readv", "process_vm_writev"].map(syscall_fexit);
                let links = attach_fexit(&[
                    (names[0].clone(), &skel.progs.fexit_ptrace),
                    (names[1].clone(), &skel.progs.fexit_vm_readv),
                    (names[2].clone(), &skel.progs.fexit_vm_writev),
                ])?;
                Ok((skel, links, names.to_vec()))
            },
            |s| match Self::load_mem(self_tgid, false) {
                Ok(skel) => {
                    for (name, prog) in MEM_PROBES.iter().zip([
                        &skel.progs.handle_ptrace_exit,
                        &skel.progs.handle_vm_readv_exit,
                        &skel.progs.handle_vm_writev_exit,
                    ]) {
                        attach_one(Family::Memory, name, prog, &mut s.links, &mut s.status);
                    }
                    Some(skel)
                }
                Err(e) => {
                    load_failed(Family::Memory, MEM_PROBES, &e, &mut s.status);
                    None
                }
            },
        );
    }

    /// Each loader loads either the fexit set or the tracepoint set of its
    /// family, never both.
    fn load_mem(self_tgid: u32, fexit: bool) -> libbpf_rs::Result<MemSkel<'static>> {
        let mut open = MemSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
        }
        let p = &mut open.progs;
        for prog in [
            &mut p.handle_ptrace_exit,
            &mut p.handle_vm_readv_exit,
            &mut p.handle_vm_writev_exit,
        ] {
            prog.set_autoload(!fexit);
        }
        for prog in [
            &mut p.fexit_ptrace,
            &mut p.fexit_vm_readv,
            &mut p.fexit_vm_writev,
        ] {
            prog.set_autoload(fexit);
        }
        open.load()
    }
}
