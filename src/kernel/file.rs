//! The file family: opens as they return, judged in the kernel against the
//! policy's file filter (see `file_filter`), and the inodes it watches.

use std::os::fd::AsFd;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::file_filter::{add_inode, apply_file_filter, remove_inode};
use super::hooks::HookMode;
use super::mem::MemSkel;
use super::{storage, Family, Probe, Selection, Sensors};
use libbpf_rs::{MapCore, MapFlags};

use crate::abi::{FoldKey, FoldVal, InodeKey, ShareVal, INODE_WATCH};
use crate::policy::KernelFilter;

mod file_skel {
    include!(concat!(env!("OUT_DIR"), "/file.skel.rs"));
}
pub(super) use file_skel::FileSkel;
use file_skel::FileSkelBuilder;

const FEXIT: &[Probe<FileSkel>] = &[Probe {
    name: "fexit/do_filp_open",
    prog: |s| &s.progs.fexit_do_filp_open,
}];
/// The last is loaded only where the kernel has open(2) (not on arm64).
const TRACEPOINTS: &[Probe<FileSkel>] = &[
    Probe {
        name: "syscalls/sys_exit_openat",
        prog: |s| &s.progs.handle_openat_exit,
    },
    Probe {
        name: "syscalls/sys_exit_openat2",
        prog: |s| &s.progs.handle_openat2_exit,
    },
    Probe {
        name: "syscalls/sys_exit_open",
        prog: |s| &s.progs.handle_open_exit,
    },
];

/// Links and renames (bpf/link.bpf.h), hooked by tracepoint whatever
/// carries the opens: each is loaded only where the kernel has its
/// syscall (link and rename are not on arm64).
const LINKS: &[Probe<FileSkel>] = &[
    Probe {
        name: "syscalls/sys_exit_link",
        prog: |s| &s.progs.handle_link_exit,
    },
    Probe {
        name: "syscalls/sys_exit_linkat",
        prog: |s| &s.progs.handle_linkat_exit,
    },
    Probe {
        name: "syscalls/sys_exit_rename",
        prog: |s| &s.progs.handle_rename_exit,
    },
    Probe {
        name: "syscalls/sys_exit_renameat",
        prog: |s| &s.progs.handle_renameat_exit,
    },
    Probe {
        name: "syscalls/sys_exit_renameat2",
        prog: |s| &s.progs.handle_renameat2_exit,
    },
];

/// Watched inodes ext4 frees (bpf/link.bpf.h), where ext4's tracepoints
/// exist.
const FREES: &[Probe<FileSkel>] = &[Probe {
    name: "ext4/ext4_free_inode",
    prog: |s| &s.progs.handle_ext4_free_inode,
}];

/// Which of `LINKS` the kernel has a tracepoint for (none when files are
/// not watched).
fn links_present(tracefs: &Path, sel: Selection) -> [bool; 5] {
    let mut have = [false; 5];
    for (h, p) in have.iter_mut().zip(LINKS) {
        let name = p.name.trim_start_matches("syscalls/");
        *h = sel.file() && crate::sys::has_tracepoint(tracefs, "syscalls", name);
    }
    have
}

/// Opens that are not open(2)-family syscalls, and their enabling acts
/// (bpf/opens.bpf.h). `fexit_too`: do_filp_open, the fexit upgrade, does not
/// see it either, so it is loaded whichever way the opens are hooked. Each
/// is loaded only where this kernel has its tracepoint (no io_uring or
/// fanotify in a kernel built without them).
struct OtherOpen {
    probe: Probe<FileSkel<'static>>,
    autoload: for<'a> fn(
        &'a mut file_skel::OpenFileProgs<'static>,
    ) -> &'a mut libbpf_rs::OpenProgramMut<'static>,
    fexit_too: bool,
}

const OTHER_OPENS: &[OtherOpen] = &[
    OtherOpen {
        probe: Probe {
            name: "syscalls/sys_exit_open_by_handle_at",
            prog: |s| &s.progs.handle_open_by_handle_at_exit,
        },
        autoload: |p| &mut p.handle_open_by_handle_at_exit,
        fexit_too: true,
    },
    OtherOpen {
        probe: Probe {
            name: "syscalls/sys_exit_pidfd_getfd",
            prog: |s| &s.progs.handle_pidfd_getfd_exit,
        },
        autoload: |p| &mut p.handle_pidfd_getfd_exit,
        fexit_too: true,
    },
    OtherOpen {
        probe: Probe {
            name: "syscalls/sys_exit_io_uring_setup",
            prog: |s| &s.progs.handle_io_uring_setup_exit,
        },
        autoload: |p| &mut p.handle_io_uring_setup_exit,
        fexit_too: true,
    },
    OtherOpen {
        probe: Probe {
            name: "syscalls/sys_exit_fanotify_init",
            prog: |s| &s.progs.handle_fanotify_init_exit,
        },
        autoload: |p| &mut p.handle_fanotify_init_exit,
        fexit_too: true,
    },
    OtherOpen {
        probe: Probe {
            name: "syscalls/sys_exit_fanotify_mark",
            prog: |s| &s.progs.handle_fanotify_mark_exit,
        },
        autoload: |p| &mut p.handle_fanotify_mark_exit,
        fexit_too: true,
    },
    // creat(2) (not on arm64) and io_uring's opens go through
    // do_filp_open: fexit sees them.
    OtherOpen {
        probe: Probe {
            name: "syscalls/sys_exit_creat",
            prog: |s| &s.progs.handle_creat_exit,
        },
        autoload: |p| &mut p.handle_creat_exit,
        fexit_too: false,
    },
    OtherOpen {
        probe: Probe {
            name: "io_uring/io_uring_complete",
            prog: |s| &s.progs.handle_io_uring_complete,
        },
        autoload: |p| &mut p.handle_io_uring_complete,
        fexit_too: false,
    },
    // So do compat opens (compat_opens is off with fexit), but not compat
    // ptrace or process_vm_*. The program is x86_64's only.
    OtherOpen {
        probe: Probe {
            name: "raw_syscalls/sys_exit",
            prog: |s| &s.progs.handle_compat_exit,
        },
        autoload: |p| &mut p.handle_compat_exit,
        fexit_too: true,
    },
];

impl OtherOpen {
    /// Whether this program is loaded with the fexit set (true) or the
    /// tracepoint set on this kernel.
    fn wanted(&self, tracefs: &Path, fexit: bool) -> bool {
        if fexit && !self.fexit_too {
            return false;
        }
        if self.probe.name == "raw_syscalls/sys_exit" && !cfg!(target_arch = "x86_64") {
            return false;
        }
        let (category, name) = self.probe.name.split_once('/').unwrap_or(("", ""));
        crate::sys::has_tracepoint(tracefs, category, name)
    }

    fn probes(tracefs: &Path, fexit: bool) -> impl Iterator<Item = Probe<FileSkel<'static>>> + '_ {
        OTHER_OPENS
            .iter()
            .filter(move |o| o.wanted(tracefs, fexit))
            .map(|o| Probe {
                name: o.probe.name,
                prog: o.probe.prog,
            })
    }
}

/// What no hook of this kernel's shows, as (family, what), for `bee-trace
/// check` (docs/events.md says the same).
const BLIND_SPOTS: &[(&str, &str)] = &[
    (
        "file",
        "files the kernel opens for a fanotify listener (seen only by fanotify_init/fanotify_mark)",
    ),
    (
        "file",
        "failed opens through io_uring or open_by_handle_at; io_uring opens into fixed-file slots",
    ),
    (
        "file",
        "io_uring reads, writes, connects and sends (seen only by io_uring_setup)",
    ),
    (
        "network",
        "connects through int $0x80 (reported only when an egress rule acts on them)",
    ),
];

impl Sensors {
    /// Acts these sensors cannot see, as (family, what).
    pub fn blind_spots(&self) -> &'static [(&'static str, &'static str)] {
        BLIND_SPOTS
    }

    /// The open programs serve both families: file opens for one,
    /// /proc/<pid>/{mem,environ,maps} opens for the other.
    pub(super) fn start_file(
        &mut self,
        self_tgid: u32,
        sel: Selection,
        hooks: HookMode,
        tracefs: &Path,
        filter: &KernelFilter,
        inodes: &[(InodeKey, u8)],
    ) {
        let family = if sel.file() {
            Family::File
        } else {
            Family::Memory
        };
        let has_open = crate::sys::has_tracepoint(tracefs, "syscalls", "sys_exit_open");
        let links = links_present(tracefs, sel);
        let frees = sel.file() && crate::sys::has_tracepoint(tracefs, "ext4", "ext4_free_inode");
        let with_links = |set: &[Probe<FileSkel>]| -> Vec<Probe<FileSkel>> {
            let present = LINKS.iter().zip(links).filter(|(_, h)| *h);
            let frees = FREES.iter().filter(|_| frees);
            set.iter()
                .chain(present.map(|(p, _)| p))
                .chain(frees)
                .map(|p| Probe {
                    name: p.name,
                    prog: p.prog,
                })
                .collect()
        };
        let mut tracepoints = with_links(&TRACEPOINTS[..if has_open { 3 } else { 2 }]);
        tracepoints.extend(OtherOpen::probes(tracefs, false));
        let mut fexit_set = with_links(FEXIT);
        fexit_set.extend(OtherOpen::probes(tracefs, true));
        let mem = self.mem.take();
        self.file = self.hook_family(
            hooks,
            family,
            |fexit| {
                let open = has_open && !fexit;
                let hooks = LoadHooks {
                    open,
                    links,
                    frees,
                    fexit,
                };
                let other = |o: &OtherOpen| o.wanted(tracefs, fexit);
                Self::load_file(self_tgid, sel, hooks, mem.as_ref(), filter, inodes, other)
            },
            &fexit_set,
            &tracepoints,
        );
        self.mem = mem;
    }

    #[allow(clippy::too_many_arguments)] // one per knob of the one skeleton
    fn load_file(
        self_tgid: u32,
        sel: Selection,
        hooks: LoadHooks,
        mem: Option<&MemSkel<'static>>,
        filter: &KernelFilter,
        inodes: &[(InodeKey, u8)],
        other: impl Fn(&OtherOpen) -> bool,
    ) -> libbpf_rs::Result<FileSkel<'static>> {
        let LoadHooks {
            open: has_open,
            links,
            frees,
            fexit,
        } = hooks;
        let mut open = FileSkelBuilder::default().open(storage())?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = self_tgid;
            ro.watch_files = sel.file();
            ro.watch_proc = sel.memory();
            // The int $0x80 entry exists on x86_64 only (bpf/opens.bpf.h).
            #[cfg(target_arch = "x86_64")]
            {
                ro.compat_opens = !fexit;
            }
        }
        let p = &mut open.progs;
        p.handle_openat_exit.set_autoload(!fexit);
        p.handle_openat2_exit.set_autoload(!fexit);
        p.handle_open_exit.set_autoload(!fexit && has_open);
        p.fexit_do_filp_open.set_autoload(fexit);
        p.handle_link_exit.set_autoload(links[0]);
        p.handle_linkat_exit.set_autoload(links[1]);
        p.handle_rename_exit.set_autoload(links[2]);
        p.handle_renameat_exit.set_autoload(links[3]);
        p.handle_renameat2_exit.set_autoload(links[4]);
        p.handle_ext4_free_inode.set_autoload(frees);
        for o in OTHER_OPENS {
            (o.autoload)(p).set_autoload(other(o));
        }
        if let Some(mem) = mem {
            open.maps.mem_events.reuse_fd(mem.maps.mem_events.as_fd())?;
            open.maps.mem_lost.reuse_fd(mem.maps.mem_lost.as_fd())?;
        }
        let mut skel = open.load()?;
        apply_file_filter(&mut skel, &KernelFilter::default(), filter, inodes, &[])?;
        Ok(skel)
    }

    /// policy), so a later hardlink to it is caught under any name.
    pub fn watch_inode(&self, key: InodeKey) {
        if let Some(s) = &self.file {
            if let Err(e) = add_inode(s, &key, INODE_WATCH) {
                log::debug!("inode filter full or refused: {e}");
            }
        }
    }

    /// Forgets an inode learned while running that turned out to be
    /// another file now (its number was reused).
    pub fn forget_inode(&self, key: InodeKey) {
        if let Some(s) = &self.file {
            if let Err(e) = remove_inode(s, &key) {
                log::debug!("inode filter refused a removal: {e}");
            }
        }
    }

    /// Puts a reloaded policy's file filter in place (see
    /// `apply_file_filter`).
    pub fn update_file_filter(
        &mut self,
        old: &KernelFilter,
        new: &KernelFilter,
        inodes: &[(InodeKey, u8)],
        disarm: &[InodeKey],
    ) -> libbpf_rs::Result<()> {
        match self.file.as_mut() {
            Some(skel) => apply_file_filter(skel, old, new, inodes, disarm),
            None => Ok(()),
        }
    }
}

/// What the file family's flood control counted instead of sending
/// (bpf/fold.bpf.h): per open, the repeats folded so far; per process, the
/// records over its share so far. Both only grow while an entry lives.
#[derive(Debug, Default)]
pub struct FoldCounts {
    pub folded: Vec<(FoldKey, u64)>,
    pub suppressed: Vec<(u32, u64)>,
}

impl Sensors {
    /// Reads the flood-control maps (empty without the file family).
    pub fn fold_counts(&self) -> FoldCounts {
        let mut out = FoldCounts::default();
        let Some(s) = &self.file else {
            return out;
        };
        for k in s.maps.file_fold.keys() {
            let mut key = FoldKey::default();
            if plain::copy_from_bytes(&mut key, &k).is_err() {
                continue;
            }
            if let Ok(Some(b)) = s.maps.file_fold.lookup(&k, MapFlags::ANY) {
                let mut v = FoldVal::default();
                if plain::copy_from_bytes(&mut v, &b).is_ok() && v.folded > 0 {
                    out.folded.push((key, v.folded));
                }
            }
        }
        for k in s.maps.file_share.keys() {
            let Some(tgid) = k
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
            else {
                continue;
            };
            if let Ok(Some(b)) = s.maps.file_share.lookup(&k, MapFlags::ANY) {
                let mut v = ShareVal::default();
                if plain::copy_from_bytes(&mut v, &b).is_ok() && v.suppressed > 0 {
                    out.suppressed.push((tgid, v.suppressed));
                }
            }
        }
        out
    }
}

/// Which programs `load_file` loads: open(2)'s, each of `LINKS`, `FREES`,
/// and the fexit set (else the open tracepoints).
struct LoadHooks {
    open: bool,
    links: [bool; 5],
    frees: bool,
    fexit: bool,
}

/// The kernel's dev_t for a userspace st_dev (major << 20 | minor).
pub fn kernel_dev(st_dev: u64) -> u64 {
    let major = libc::major(st_dev) as u64;
    let minor = libc::minor(st_dev) as u64;
    (major << 20) | minor
}

/// Inode keys of existing files, for the hardlink check.
pub fn seed_inodes(paths: &[std::path::PathBuf]) -> Vec<(InodeKey, std::path::PathBuf)> {
    paths
        .iter()
        .filter_map(|p| {
            let (dev, ino) = seed_inode(p)?;
            Some((
                InodeKey {
                    dev: kernel_dev(dev),
                    ino,
                },
                p.clone(),
            ))
        })
        .collect()
}

/// The file `path` names, for watching by inode. A name that is a link is
/// followed only to a file of the link's owner (or any, for root's link):
/// whoever owns the directory can point a link at any file of the host's,
/// and every reader of that file would then be reported reading the
/// watched one. The name is looked at once, in its directory's fd: a file
/// found there is taken as it is, never through a link swapped in after.
fn seed_inode(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (parent, name) = crate::fsafe::split(path).ok()?;
    let dir = crate::fsafe::Dir::open(&parent).ok()?;
    let st = dir.stat_at(&name).ok()??;
    if !st.is_symlink() {
        return Some((st.dev, st.ino));
    }
    let m = std::fs::metadata(path).ok()?;
    (st.uid == 0 || m.uid() == st.uid).then(|| (m.dev(), m.ino()))
}

/// What tells a file from a later one that got its inode number: the type
/// (`i_mode >> 12`, 0 unknown) and the generation (`i_generation`, where the
/// file system tells it), as the kernel's file records carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ident {
    pub ftype: u8,
    pub gen: Option<u32>,
}

impl Ident {
    /// Whether a file seen as `other` can be the one recorded as `self`:
    /// what either side does not know does not count against it.
    pub fn same_as(&self, other: &Ident) -> bool {
        let ftype = self.ftype == 0 || other.ftype == 0 || self.ftype == other.ftype;
        let gen = match (self.gen, other.gen) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        ftype && gen
    }
}

/// The inode a name holds now, with its identity, for watching by inode.
/// A name that is a symbolic link is not followed: the names come from the
/// job (a rename or link it made, looked at under its own root), and an
/// absolute target would be resolved against bee-trace's root, not the
/// job's, so a link put on a watched name could make any host file (libc)
/// watched as a credential. The link's own opens are still seen by name.
///
/// `with_gen` also reads the inode's generation, which needs the file open
/// for reading. Not at start: the files found then include other monitors'
/// armed tripwires and canaries, whose kernel programs kill any reader that
/// is not that monitor (a second bee-trace was killed so). A file found at
/// start is confirmed by its type, and by its generation once an open of it
/// is seen; a deleted one is dropped when ext4 frees it.
pub fn identify(path: &Path, with_gen: bool) -> Option<(InodeKey, Ident)> {
    let (parent, name) = crate::fsafe::split(path).ok()?;
    let dir = crate::fsafe::Dir::open(&parent).ok()?;
    let (fd, st) = dir.path_fd(&name).ok()?;
    let key = |dev, ino| InodeKey {
        dev: kernel_dev(dev),
        ino,
    };
    if st.is_symlink() {
        return None;
    }
    let ident = Ident {
        ftype: ((st.mode >> 12) & 0xf) as u8,
        gen: (with_gen && st.is_file())
            .then(|| generation(&fd))
            .flatten(),
    };
    Some((key(st.dev, st.ino), ident))
}

/// FS_IOC_GETVERSION, _IOR('v', 1, long): the inode's generation.
const FS_IOC_GETVERSION: libc::c_ulong = 0x8008_7601;

/// The generation of the regular file behind the O_PATH descriptor `fd`,
/// where its file system tells it (ext4, btrfs; not tmpfs). The ioctl needs
/// a descriptor open for reading: the O_PATH one is reopened through
/// /proc/self/fd, which reaches the same inode, never a name swapped in.
fn generation(fd: &std::os::fd::OwnedFd) -> Option<u32> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()?;
    let (a, b) = (crate::fsafe::fstat(&f).ok()?, crate::fsafe::fstat(fd).ok()?);
    if !a.is_file() || (a.dev, a.ino) != (b.dev, b.ino) {
        return None;
    }
    let mut gen: libc::c_long = 0;
    // SAFETY: FS_IOC_GETVERSION writes at most a long through the pointer,
    // which points at one.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_GETVERSION as _, &mut gen) };
    (r == 0).then_some(gen as u32)
}
