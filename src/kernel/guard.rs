//! The kernel side of guarding bee-trace itself: the tamper family's programs,
//! the ids of every object this instance holds (so those programs know what
//! is ours), and the checks that what bee-trace attached and wrote is still
//! in place.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use libbpf_rs::query::LinkTypeInfo;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use serde::Serialize;

use super::hooks::{sys_fexit, HookMode, Loaded};
use super::{storage, Family, Probe, ProbeError, Sensors};
use crate::abi::{as_bytes, ObjKey, OBJ_LINK, OBJ_MAP, OBJ_PROG};

mod tamper_skel {
    include!(concat!(env!("OUT_DIR"), "/tamper.skel.rs"));
}
pub use tamper_skel::TamperSkel;
use tamper_skel::TamperSkelBuilder;

const SIGNAL: Probe<TamperSkel> = Probe {
    name: "tp_btf/signal_generate",
    prog: |s| &s.progs.handle_signal,
};
const FEXIT: &[Probe<TamperSkel>] = &[
    Probe {
        name: sys_fexit!("bpf"),
        prog: |s| &s.progs.fexit_bpf,
    },
    SIGNAL,
];
const TRACEPOINTS: &[Probe<TamperSkel>] = &[
    Probe {
        name: "syscalls/sys_enter_bpf",
        prog: |s| &s.progs.handle_bpf_enter,
    },
    Probe {
        name: "syscalls/sys_exit_bpf",
        prog: |s| &s.progs.handle_bpf_exit,
    },
    SIGNAL,
];

/// One of this instance's kernel objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnObject {
    pub kind: u32,
    pub id: u32,
    pub name: String,
}

/// Something the self-check found different from what bee-trace set up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Drift {
    pub object_type: &'static str,
    pub object_id: u32,
    pub object_name: String,
    /// What differs, in words.
    pub what: String,
}

/// What a link looked like once attached: a later look that differs means
/// someone detached or replaced it.
#[derive(Debug, Clone)]
pub struct LinkBaseline {
    /// Index of its probe in `Sensors::status`.
    pub probe: usize,
    pub id: u32,
    pub prog_id: u32,
    /// The cgroup a cgroup link is attached to (0 once detached).
    pub cgroup_id: Option<u64>,
    /// A change was already reported.
    pub broken: bool,
}

/// Loads either the fexit program for bpf(2) or its tracepoint pair; the
/// signal program either way.
fn load_tamper(self_tgid: u32, fexit: bool) -> libbpf_rs::Result<TamperSkel<'static>> {
    let mut open = TamperSkelBuilder::default().open(storage())?;
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.self_tgid = self_tgid;
    }
    let p = &mut open.progs;
    p.handle_bpf_enter.set_autoload(!fexit);
    p.handle_bpf_exit.set_autoload(!fexit);
    p.fexit_bpf.set_autoload(fexit);
    open.load()
}

/// `bpf_obj_get_info_by_fd` into a zeroed info struct of the kernel's ABI.
fn obj_info<T>(fd: BorrowedFd<'_>) -> Option<T> {
    // SAFETY: T is one of libbpf-sys's bpf_{map,prog,link}_info, plain C
    // structs for which all-zero is a valid value.
    let mut info: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as u32;
    // SAFETY: info is a live, writable T of `len` bytes; the kernel writes at
    // most `len` bytes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_obj_get_info_by_fd(
            fd.as_raw_fd(),
            (&mut info as *mut T).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info)
}

fn c_name(raw: &[std::os::raw::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) fn map_id(fd: BorrowedFd<'_>) -> u32 {
    obj_info::<libbpf_rs::libbpf_sys::bpf_map_info>(fd).map_or(0, |i| i.id)
}

impl Sensors {
    /// Loads and attaches the tamper family (always, whatever the selection),
    /// with fexit on the bpf syscall where the kernel allows it, like the
    /// other syscall families.
    pub(super) fn start_tamper(&mut self, self_tgid: u32, hooks: HookMode) {
        self.tamper = self.hook_family(
            hooks,
            Family::Tamper,
            |fexit| load_tamper(self_tgid, fexit).map(Loaded::all),
            FEXIT,
            TRACEPOINTS,
        );
    }

    /// Every map, program and link this process holds, found by its open
    /// file descriptors (so nothing libbpf made on the side is missed).
    /// Call once everything is loaded and attached, before any other thread
    /// starts (the fds are borrowed while being read).
    pub fn own_objects(&self) -> Vec<OwnObject> {
        let mut probe_of_link = std::collections::HashMap::new();
        for (at, l) in &self.links {
            if let Ok(info) = l.info() {
                probe_of_link.insert(info.id, *at);
            }
        }
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return out;
        };
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            // SAFETY: fd was listed open a moment ago and nothing closes fds
            // while this single thread reads them; the borrow ends here.
            let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
            use libbpf_rs::libbpf_sys as sys;
            let obj = match target.to_str() {
                Some("anon_inode:bpf-map") => {
                    obj_info::<sys::bpf_map_info>(bfd).map(|i| OwnObject {
                        kind: OBJ_MAP,
                        id: i.id,
                        name: c_name(&i.name),
                    })
                }
                Some("anon_inode:bpf-prog") => {
                    obj_info::<sys::bpf_prog_info>(bfd).map(|i| OwnObject {
                        kind: OBJ_PROG,
                        id: i.id,
                        name: c_name(&i.name),
                    })
                }
                Some("anon_inode:bpf_link" | "anon_inode:bpf-link") => {
                    obj_info::<sys::bpf_link_info>(bfd).map(|i| OwnObject {
                        kind: OBJ_LINK,
                        id: i.id,
                        name: probe_of_link
                            .get(&i.id)
                            .and_then(|at| self.status.get(*at))
                            .map(|s| format!("{} {}", s.family.as_str(), s.probe))
                            .unwrap_or_else(|| format!("link of program {}", i.prog_id)),
                    })
                }
                _ => None,
            };
            out.extend(obj.filter(|o| o.id != 0));
        }
        out.sort_by_key(|o| (o.kind, o.id));
        out.dedup_by_key(|o| (o.kind, o.id));
        out
    }

    /// Tells the tamper programs which objects are ours. Returns how many.
    pub fn register_own(&self, objects: &[OwnObject]) -> libbpf_rs::Result<usize> {
        let Some(skel) = &self.tamper else {
            return Ok(0);
        };
        for o in objects {
            let key = ObjKey {
                kind: o.kind,
                id: o.id,
            };
            skel.maps
                .own_objs
                .update(as_bytes(&key), &1u32.to_ne_bytes(), MapFlags::ANY)?;
        }
        Ok(objects.len())
    }

    /// Whether the tamper programs still know every object `register_own`
    /// told them about: deleting entries there would blind them.
    pub fn own_objs_drift(&self, objects: &[OwnObject]) -> Vec<Drift> {
        let Some(skel) = &self.tamper else {
            return Vec::new();
        };
        let map = &skel.maps.own_objs;
        let missing = objects
            .iter()
            .filter(|o| {
                let key = ObjKey {
                    kind: o.kind,
                    id: o.id,
                };
                !matches!(map.lookup(as_bytes(&key), MapFlags::ANY), Ok(Some(_)))
            })
            .count();
        if missing == 0 {
            return Vec::new();
        }
        vec![Drift {
            object_type: "map",
            object_id: map_id(map.as_fd()),
            object_name: "own_objs".into(),
            what: format!(
                "{missing} of the {} objects bee-trace guards were removed from it",
                objects.len()
            ),
        }]
    }

    /// Tells the signal program the watchdog's pid (0: none).
    pub fn set_watchdog(&mut self, pid: u32) {
        if let Some(bss) = self
            .tamper
            .as_mut()
            .and_then(|s| s.maps.bss_data.as_deref_mut())
        {
            // SAFETY: a volatile aligned u32 store into the program's mmapped
            // .bss, seen whole by the program.
            unsafe { std::ptr::write_volatile(&mut bss.watchdog_tgid, pid) };
        }
    }

    /// The watchdog's pid as the kernel program sees it now.
    pub fn watchdog_in_kernel(&self) -> Option<u32> {
        let bss = self.tamper.as_ref()?.maps.bss_data.as_deref()?;
        // SAFETY: a volatile aligned u32 load from the mmapped .bss.
        Some(unsafe { std::ptr::read_volatile(&bss.watchdog_tgid) })
    }

    /// The ring the watchdog reads (signal records only).
    pub fn watch_ring(&self) -> Option<MapHandle> {
        MapHandle::try_from(&self.tamper.as_ref()?.maps.watch_events).ok()
    }

    pub(super) fn tamper_ring(&self) -> Option<MapHandle> {
        MapHandle::try_from(&self.tamper.as_ref()?.maps.tamper_events).ok()
    }

    pub(super) fn tamper_lost(&self) -> Option<&dyn MapCore> {
        self.tamper
            .as_ref()
            .map(|s| &s.maps.tamper_lost as &dyn MapCore)
    }

    /// How every link looks now, to compare later looks against.
    pub fn link_baseline(&self) -> Vec<LinkBaseline> {
        self.links
            .iter()
            .filter_map(|(at, l)| {
                let info = l.info().ok()?;
                Some(LinkBaseline {
                    probe: *at,
                    id: info.id,
                    prog_id: info.prog_id,
                    cgroup_id: match info.info {
                        LinkTypeInfo::Cgroup(c) => Some(c.cgroup_id),
                        _ => None,
                    },
                    broken: false,
                })
            })
            .collect()
    }

    /// Compares every link with its baseline: a cgroup link whose cgroup is
    /// gone (`bpftool link detach`), a link running another program
    /// (`BPF_LINK_UPDATE`), a link the kernel no longer describes. A changed
    /// link's probe is marked not attached, with why, so the report says so.
    pub fn check_links(&mut self, baseline: &mut [LinkBaseline]) -> Vec<Drift> {
        let mut out = Vec::new();
        for b in baseline.iter_mut().filter(|b| !b.broken) {
            let Some((_, link)) = self.links.iter().find(|(at, _)| *at == b.probe) else {
                continue;
            };
            let what = match link.info() {
                Err(e) => Some(format!("the kernel no longer describes it ({e})")),
                Ok(now) => {
                    let cg = match now.info {
                        LinkTypeInfo::Cgroup(c) => Some(c.cgroup_id),
                        _ => None,
                    };
                    if b.cgroup_id.is_some_and(|c| c != 0) && cg == Some(0) {
                        Some("detached from its cgroup".to_string())
                    } else if now.prog_id != b.prog_id {
                        Some(format!(
                            "now runs program {} instead of bee-trace's {}",
                            now.prog_id, b.prog_id
                        ))
                    } else {
                        None
                    }
                }
            };
            let Some(what) = what else { continue };
            b.broken = true;
            let name = self
                .status
                .get(b.probe)
                .map(|s| format!("{} {}", s.family.as_str(), s.probe))
                .unwrap_or_default();
            if let Some(s) = self.status.get_mut(b.probe) {
                s.outcome = Err(ProbeError::Tampered(what.clone()));
            }
            out.push(Drift {
                object_type: "link",
                object_id: b.id,
                object_name: name,
                what,
            });
        }
        out
    }
}

/// A difference found in one of this instance's maps.
pub(super) fn map_drift(map: &dyn MapCore, name: &str, what: String) -> Drift {
    Drift {
        object_type: "map",
        object_id: map_id(map.as_fd()),
        object_name: name.to_string(),
        what,
    }
}
