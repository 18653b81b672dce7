//! The memory family: ptrace, process_vm_readv/writev and the core-dump
//! route (prlimit64 of RLIMIT_CORE, a core-dumping signal); the opens of
//! /proc/<pid>/{mem,environ,maps,smaps,...} are the file family's programs.

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::hooks::{sys_fexit, HookMode, Loaded};
use super::{storage, Family, Probe, Sensors};

mod mem_skel {
    include!(concat!(env!("OUT_DIR"), "/mem.skel.rs"));
}
pub(super) use mem_skel::MemSkel;
use mem_skel::MemSkelBuilder;

const FEXIT: &[Probe<MemSkel>] = &[
    Probe {
        name: sys_fexit!("ptrace"),
        prog: |s| &s.progs.fexit_ptrace,
    },
    Probe {
        name: sys_fexit!("process_vm_readv"),
        prog: |s| &s.progs.fexit_vm_readv,
    },
    Probe {
        name: sys_fexit!("process_vm_writev"),
        prog: |s| &s.progs.fexit_vm_writev,
    },
    Probe {
        name: sys_fexit!("prlimit64"),
        prog: |s| &s.progs.fexit_prlimit,
    },
    Probe {
        name: "tp_btf/signal_generate",
        prog: |s| &s.progs.handle_core_signal,
    },
];
const TRACEPOINTS: &[Probe<MemSkel>] = &[
    Probe {
        name: "syscalls/sys_exit_ptrace",
        prog: |s| &s.progs.handle_ptrace_exit,
    },
    Probe {
        name: "syscalls/sys_exit_process_vm_readv",
        prog: |s| &s.progs.handle_vm_readv_exit,
    },
    Probe {
        name: "syscalls/sys_exit_process_vm_writev",
        prog: |s| &s.progs.handle_vm_writev_exit,
    },
    Probe {
        name: "syscalls/sys_exit_prlimit64",
        prog: |s| &s.progs.handle_prlimit_exit,
    },
    Probe {
        name: "tp_btf/signal_generate",
        prog: |s| &s.progs.handle_core_signal,
    },
];

impl Sensors {
    pub(super) fn start_mem(&mut self, self_tgid: u32, hooks: HookMode) {
        self.mem = self.hook_family(
            hooks,
            Family::Memory,
            |fexit| Self::load_mem(self_tgid, fexit).map(Loaded::all),
            FEXIT,
            TRACEPOINTS,
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
            &mut p.handle_prlimit_exit,
        ] {
            prog.set_autoload(!fexit);
        }
        for prog in [
            &mut p.fexit_ptrace,
            &mut p.fexit_vm_readv,
            &mut p.fexit_vm_writev,
            &mut p.fexit_prlimit,
        ] {
            prog.set_autoload(fexit);
        }
        open.load()
    }
}
