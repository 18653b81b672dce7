//! The file family: opens as they return, judged in the kernel against the
//! policy's file filter (see `file_filter`), and the inodes it watches.

use std::os::fd::AsFd;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::file_filter::{add_inode, apply_file_filter, remove_inode};
use super::hooks::{quietly, HookMode, Loaded};
use super::mem::MemSkel;
use super::{storage, Family, Probe, Selection, Sensors};

use crate::abi::{InodeKey, INODE_WATCH};
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

/// A program of the file family beyond its opens: loaded where this kernel
/// has its tracepoint, and optional: one the kernel refuses is left out,
/// the family loads without it, and `bee-trace check` says what goes
/// unseen (an older verifier or a kernel built without the subsystem must
/// not cost every file event).
struct Extra {
    probe: Probe<FileSkel<'static>>,
    autoload: for<'a> fn(
        &'a mut file_skel::OpenFileProgs<'static>,
    ) -> &'a mut libbpf_rs::OpenProgramMut<'static>,
    /// Loaded with the fexit set too: do_filp_open, the fexit upgrade,
    /// does not see what it sees.
    fexit_too: bool,
    /// Only when files are watched (links, renames and frees serve no
    /// /proc view).
    files_only: bool,
    /// What goes unseen without it.
    unseen: &'static str,
}

/// Links and renames (bpf/link.bpf.h; link(2) and rename(2) are not on
/// arm64), watched inodes ext4 frees, then the opens that are not
/// open(2)-family syscalls and their enabling acts (bpf/opens.bpf.h).
const EXTRAS: &[Extra] = &[
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_link",
            prog: |s| &s.progs.handle_link_exit,
        },
        autoload: |p| &mut p.handle_link_exit,
        fexit_too: true,
        files_only: true,
        unseen: "hard links made with link(2)",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_linkat",
            prog: |s| &s.progs.handle_linkat_exit,
        },
        autoload: |p| &mut p.handle_linkat_exit,
        fexit_too: true,
        files_only: true,
        unseen: "hard links made with linkat(2)",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_rename",
            prog: |s| &s.progs.handle_rename_exit,
        },
        autoload: |p| &mut p.handle_rename_exit,
        fexit_too: true,
        files_only: true,
        unseen: "renames with rename(2)",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_renameat",
            prog: |s| &s.progs.handle_renameat_exit,
        },
        autoload: |p| &mut p.handle_renameat_exit,
        fexit_too: true,
        files_only: true,
        unseen: "renames with renameat(2)",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_renameat2",
            prog: |s| &s.progs.handle_renameat2_exit,
        },
        autoload: |p| &mut p.handle_renameat2_exit,
        fexit_too: true,
        files_only: true,
        unseen: "renames with renameat2(2)",
    },
    Extra {
        probe: Probe {
            name: "ext4/ext4_free_inode",
            prog: |s| &s.progs.handle_ext4_free_inode,
        },
        autoload: |p| &mut p.handle_ext4_free_inode,
        fexit_too: true,
        files_only: true,
        unseen: "ext4 freeing a learned inode (a reused number is told apart by type and generation only)",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_open_by_handle_at",
            prog: |s| &s.progs.handle_open_by_handle_at_exit,
        },
        autoload: |p| &mut p.handle_open_by_handle_at_exit,
        fexit_too: true,
        files_only: false,
        unseen: "opens by open_by_handle_at(2)",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_pidfd_getfd",
            prog: |s| &s.progs.handle_pidfd_getfd_exit,
        },
        autoload: |p| &mut p.handle_pidfd_getfd_exit,
        fexit_too: true,
        files_only: false,
        unseen: "descriptors taken from another process with pidfd_getfd(2)",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_io_uring_setup",
            prog: |s| &s.progs.handle_io_uring_setup_exit,
        },
        autoload: |p| &mut p.handle_io_uring_setup_exit,
        fexit_too: true,
        files_only: false,
        unseen: "io_uring set up by a job process",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_fanotify_init",
            prog: |s| &s.progs.handle_fanotify_init_exit,
        },
        autoload: |p| &mut p.handle_fanotify_init_exit,
        fexit_too: true,
        files_only: false,
        unseen: "fanotify listeners set up",
    },
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_fanotify_mark",
            prog: |s| &s.progs.handle_fanotify_mark_exit,
        },
        autoload: |p| &mut p.handle_fanotify_mark_exit,
        fexit_too: true,
        files_only: false,
        unseen: "fanotify marks on watched files",
    },
    // creat(2) (not on arm64) and io_uring's opens go through
    // do_filp_open: fexit sees them.
    Extra {
        probe: Probe {
            name: "syscalls/sys_exit_creat",
            prog: |s| &s.progs.handle_creat_exit,
        },
        autoload: |p| &mut p.handle_creat_exit,
        fexit_too: false,
        files_only: false,
        unseen: "files opened with creat(2)",
    },
    Extra {
        probe: Probe {
            name: "io_uring/io_uring_complete",
            prog: |s| &s.progs.handle_io_uring_complete,
        },
        autoload: |p| &mut p.handle_io_uring_complete,
        fexit_too: false,
        files_only: false,
        unseen: "files opened through io_uring",
    },
    // So do compat opens (compat_opens is off with fexit), but not compat
    // ptrace or process_vm_*. The program is x86_64's only.
    Extra {
        probe: Probe {
            name: "raw_syscalls/sys_exit",
            prog: |s| &s.progs.handle_compat_exit,
        },
        autoload: |p| &mut p.handle_compat_exit,
        fexit_too: true,
        files_only: false,
        unseen: "opens, ptrace and process_vm_* through int $0x80",
    },
];

impl Extra {
    /// Whether this program is asked for with the fexit set (true) or the
    /// tracepoint set, on this kernel and for this selection.
    fn wanted(&self, tracefs: &Path, sel: Selection, fexit: bool) -> bool {
        if (fexit && !self.fexit_too) || (self.files_only && !sel.file()) {
            return false;
        }
        if self.probe.name == "raw_syscalls/sys_exit" && !cfg!(target_arch = "x86_64") {
            return false;
        }
        let (category, name) = self.probe.name.split_once('/').unwrap_or(("", ""));
        crate::sys::has_tracepoint(tracefs, category, name)
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
        // Which of EXTRAS each set asks for, looked up in tracefs once.
        let wanted: [Vec<bool>; 2] = [false, true].map(|fexit| {
            EXTRAS
                .iter()
                .map(|x| x.wanted(tracefs, sel, fexit))
                .collect()
        });
        let set = |core: &[Probe<FileSkel<'static>>], fexit: bool| {
            let extras = EXTRAS
                .iter()
                .zip(&wanted[fexit as usize])
                .filter(|(_, w)| **w);
            core.iter()
                .copied()
                .chain(extras.map(|(x, _)| x.probe))
                .collect::<Vec<_>>()
        };
        let tracepoints = set(&TRACEPOINTS[..if has_open { 3 } else { 2 }], false);
        let fexit_set = set(FEXIT, true);
        let mem = self.mem.take();
        self.file = self.hook_family(
            hooks,
            family,
            |fexit| {
                let knobs = Knobs {
                    self_tgid,
                    sel,
                    open: has_open && !fexit,
                    fexit,
                };
                load_leaving_out(wanted[fexit as usize].clone(), |extras| {
                    Self::load_file(&knobs, extras, mem.as_ref(), filter, inodes)
                })
            },
            &fexit_set,
            &tracepoints,
        );
        self.mem = mem;
    }

    /// Loads the family with the opens `knobs` asks for and each of
    /// `EXTRAS` whose flag is set. On a refusal, also says which of
    /// `EXTRAS` the kernel refused, when it was one of them.
    fn load_file(
        knobs: &Knobs,
        extras: &[bool],
        mem: Option<&MemSkel<'static>>,
        filter: &KernelFilter,
        inodes: &[(InodeKey, u8)],
    ) -> Result<FileSkel<'static>, (libbpf_rs::Error, Option<usize>)> {
        let plain = |e| (e, None);
        let fexit = knobs.fexit;
        let mut open = FileSkelBuilder::default().open(storage()).map_err(plain)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = knobs.self_tgid;
            ro.watch_files = knobs.sel.file();
            ro.watch_proc = knobs.sel.memory();
            // The int $0x80 entry exists on x86_64 only (bpf/opens.bpf.h).
            #[cfg(target_arch = "x86_64")]
            {
                ro.compat_opens = !fexit;
            }
        }
        let p = &mut open.progs;
        p.handle_openat_exit.set_autoload(!fexit);
        p.handle_openat2_exit.set_autoload(!fexit);
        p.handle_open_exit.set_autoload(knobs.open);
        p.fexit_do_filp_open.set_autoload(fexit);
        let mut names = Vec::with_capacity(EXTRAS.len());
        for (x, on) in EXTRAS.iter().zip(extras) {
            let prog = (x.autoload)(p);
            prog.set_autoload(*on);
            names.push(prog.name().to_string_lossy().into_owned());
        }
        if let Some(mem) = mem {
            open.maps
                .mem_events
                .reuse_fd(mem.maps.mem_events.as_fd())
                .map_err(plain)?;
            open.maps
                .mem_lost
                .reuse_fd(mem.maps.mem_lost.as_fd())
                .map_err(plain)?;
        }
        // A refusal's name comes from libbpf's own message about it.
        let _ = super::hooks::take_refused_prog();
        let mut skel = match open.load() {
            Ok(s) => s,
            Err(e) => {
                let which = super::hooks::take_refused_prog()
                    .and_then(|n| names.iter().position(|m| *m == n));
                return Err((e, which));
            }
        };
        apply_file_filter(&mut skel, &KernelFilter::default(), filter, inodes, &[])
            .map_err(plain)?;
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

/// What `load_file` is asked for besides `EXTRAS`.
struct Knobs {
    self_tgid: u32,
    sel: Selection,
    /// open(2)'s tracepoint program.
    open: bool,
    /// The fexit set, else the open tracepoints.
    fexit: bool,
}

/// Loads with every wanted one of `EXTRAS`, leaving out each the kernel
/// refuses in turn (at most once each, so the loop ends), with the reason.
/// A refusal of anything else is the family's failure.
fn load_leaving_out(
    mut wanted: Vec<bool>,
    load: impl Fn(&[bool]) -> Result<FileSkel<'static>, (libbpf_rs::Error, Option<usize>)>,
) -> libbpf_rs::Result<Loaded<FileSkel<'static>>> {
    let mut left_out = Vec::new();
    loop {
        // A refusal is reported once, in bee-trace's words: libbpf's
        // verifier log goes to --verbose.
        let outcome = quietly(|| load(&wanted));
        match outcome {
            Ok(skel) => return Ok(Loaded { skel, left_out }),
            Err((e, Some(i))) if wanted.get(i) == Some(&true) => {
                wanted[i] = false;
                let x = &EXTRAS[i];
                left_out.push((
                    x.probe.name,
                    format!("{}; not seen without it: {}", super::explain(&e), x.unseen),
                ));
            }
            Err((e, _)) => return Err(e),
        }
    }
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
            use crate::fsafe::lookout;
            let at = p.clone();
            let what = format!(
                "looking at {} at start (not watched by inode)",
                crate::escape::terminal(&crate::escape::decode_path(p))
            );
            let (dev, ino) = lookout::shared()
                .run(&what, lookout::AT_START, move || seed_inode(&at))
                .ok()??;
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
