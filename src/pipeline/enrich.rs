//! Enrichment: what the kernel's record does not say about who acted (its
//! executable, its lineage, wall-clock time), from the process table.

use super::proctable::ProcTable;
use super::programs::Programs;
use crate::abi;
use crate::event::{Detail, Event, Severity};

pub struct Enrich {
    pub table: ProcTable,
    /// Which executables are the expected programs of file rules.
    pub programs: Programs,
    boot_offset_ns: i128,
}

impl Enrich {
    pub fn new(table: ProcTable) -> Enrich {
        Enrich {
            table,
            programs: Programs::default(),
            boot_offset_ns: crate::sys::boot_to_unix_offset_ns(),
        }
    }

    /// The event of a record's header: who acted, when, and their
    /// lineage; its `type` is its detail's.
    pub fn base(&mut self, h: &abi::Header, severity: Severity, detail: Detail) -> Event {
        let comm = abi::cstr(&h.comm);
        let exe = self
            .table
            .get_or_load(h.pid)
            .map(|p| p.exe.clone())
            .unwrap_or_default();
        Event {
            id: 0,
            kind: detail.kind().as_str(),
            ts: crate::sys::rfc3339(h.ts_boot_ns as i128 + self.boot_offset_ns),
            pid: h.pid,
            ppid: h.ppid,
            uid: h.uid,
            comm,
            exe,
            ancestors: self.table.ancestors(h.ppid),
            severity,
            detail,
        }
    }

    /// Does `pid` run one of the programs `names`: by the executable the
    /// kernel ran (see `programs`), never by its comm, which any process
    /// can set.
    pub fn runs_program(&mut self, pid: u32, names: &[String]) -> bool {
        if names.is_empty() {
            return false;
        }
        match self.table.get_or_load(pid) {
            Some(p) => self.programs.is_expected(&p.exe, p.exe_id, names),
            None => false,
        }
    }
}
