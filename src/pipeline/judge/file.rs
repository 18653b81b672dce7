//! The file family: opens of sensitive files, judged by path and, for a
//! hardlink (a name no rule matches), by inode; each sensitive inode seen
//! is handed to the kernel to watch (an effect).

use std::collections::{HashMap, HashSet};

use super::result_text;
use crate::abi::{self, InodeKey};
use crate::event::{Detail, Event, Severity};
use crate::policy::{Access, FileRule, Policy};

use super::{Cx, Effect};

pub(crate) const FMODE_WRITE: u32 = 0x2;
const O_ACCMODE: u32 = 0o3;
const O_TRUNC: u32 = 0o1000;

/// Sensitive files by inode, (dev, ino) -> (the rule, the path it was
/// seen under): a hardlink has a name no rule matches.
#[derive(Default)]
pub struct Files {
    known: HashMap<(u64, u64), (FileRule, String)>,
    /// Processes whose io_uring_setup was reported (one event each).
    rings: HashSet<u32>,
}

/// Processes remembered for folding io_uring_setup; past this the set starts
/// again (a process reported twice, never one missed).
const RINGS_MAX: usize = 4096;

/// How a file was reached when not by an open(2)-family syscall: the
/// event's `via` (bt_open_sys of abi.h).
fn via(syscall: u8) -> Option<&'static str> {
    Some(match syscall {
        abi::SYS_OPEN_BY_HANDLE_AT => "open_by_handle_at",
        abi::SYS_PIDFD_GETFD => "pidfd_getfd",
        abi::SYS_IO_URING_OPENAT => "io_uring",
        abi::SYS_COMPAT_OPEN => "int80",
        abi::SYS_IO_URING_SETUP => "io_uring_setup",
        abi::SYS_FANOTIFY_INIT => "fanotify_init",
        abi::SYS_FANOTIFY_MARK => "fanotify_mark",
        abi::SYS_CREAT => "creat",
        _ => return None,
    })
}

/// The enabling acts: calls reported whatever file they name, since the
/// opens they lead to are not seen (docs/events.md, blind spots). Their
/// category.
fn enabling_act(syscall: u8) -> Option<&'static str> {
    match syscall {
        abi::SYS_IO_URING_SETUP => Some("io_uring"),
        abi::SYS_FANOTIFY_INIT | abi::SYS_FANOTIFY_MARK => Some("fanotify"),
        _ => None,
    }
}

impl Files {
    /// Remembers an existing sensitive file by inode (see `Policy::seed_files`).
    pub fn know(&mut self, policy: &Policy, key: InodeKey, path: &str) {
        if let Some(rule) = policy.match_file(path, Access::Write) {
            self.known
                .insert((key.dev, key.ino), (rule.clone(), path.to_string()));
        }
    }

    /// Judges the files known by inode again under a new policy; those no
    /// rule names any more are forgotten.
    pub fn rejudge(&mut self, policy: &Policy) {
        let known = std::mem::take(&mut self.known);
        for (key, (_, path)) in known {
            if let Some(rule) = policy.match_file(&path, Access::Write) {
                self.known.insert(key, (rule.clone(), path));
            }
        }
    }

    /// An open the kernel's filter let through, judged by the policy by path
    /// and, for a name no rule matches, by inode.
    pub fn judge(&mut self, cx: &mut Cx, e: &abi::FileEvent) -> Option<Event> {
        // A kill is always reported, whoever it hit.
        if e.action != abi::FILE_KILLED && cx.is_peer_activity(e.hdr.pid) {
            return None;
        }
        if let Some(category) = enabling_act(e.syscall) {
            return self.enabling(cx, e, category);
        }
        let path = abi::file_event_path(e);
        let write = if e.ret >= 0 {
            e.fmode & FMODE_WRITE != 0
        } else {
            e.flags & O_ACCMODE != 0 || e.flags & O_TRUNC != 0
        };
        let access = if write { Access::Write } else { Access::Read };
        let opened = e.ret >= 0 && e.layout == abi::PATH_RESOLVED;
        let killed = e.action == abi::FILE_KILLED;
        let by_inode = self.known.get(&(e.dev, e.ino)).filter(|_| opened);
        let (rule, same_inode_as) = if killed {
            // The kernel already acted: report it whatever the path says,
            // under the tripwire rule that armed this inode.
            match by_inode {
                Some((rule, original)) => {
                    (rule.clone(), Some(original.clone()).filter(|o| *o != path))
                }
                None => match cx.policy.match_file(&path, access) {
                    Some(rule) => (rule.clone(), None),
                    None => (Policy::unknown_tripwire(), None),
                },
            }
        } else {
            match cx.policy.match_file(&path, access) {
                Some(rule) => (rule.clone(), None),
                None => match by_inode {
                    Some((rule, original))
                        if (!rule.write_only || access == Access::Write) && *original != path =>
                    {
                        (rule.clone(), Some(original.clone()))
                    }
                    _ => {
                        cx.stats.filtered += 1;
                        return None;
                    }
                },
            }
        };
        if opened && same_inode_as.is_none() && !self.known.contains_key(&(e.dev, e.ino)) {
            cx.effects.push(Effect::WatchInode(InodeKey {
                dev: e.dev,
                ino: e.ino,
            }));
            self.known
                .insert((e.dev, e.ino), (rule.clone(), path.clone()));
        }
        let FileRule {
            kind: category,
            pattern,
            severity,
            expected,
            ..
        } = rule;
        let mut ev = cx.enrich.base(
            &e.hdr,
            severity,
            Detail::File {
                path,
                access: access.as_str(),
                result: result_text(e.ret as i64),
                category,
                rule: pattern,
                resolved: e.layout == abi::PATH_RESOLVED,
                same_inode_as,
                action: killed.then_some("killed"),
                via: via(e.syscall),
            },
        );
        if e.syscall == abi::SYS_PIDFD_GETFD {
            // Taking another process's descriptor of a watched file is
            // never how a program reads its own secrets.
            ev.severity = Severity::Critical;
        } else if !killed && cx.enrich.runs_program(e.hdr.pid, &expected) {
            ev.severity = Severity::Info;
        }
        Some(ev)
    }

    /// An enabling act (io_uring_setup, fanotify_init, fanotify_mark) by a
    /// process that is not bee-trace: a warning, io_uring_setup once per
    /// process.
    fn enabling(
        &mut self,
        cx: &mut Cx,
        e: &abi::FileEvent,
        category: &'static str,
    ) -> Option<Event> {
        if cx.is_peer_activity(e.hdr.pid) {
            return None;
        }
        if e.syscall == abi::SYS_IO_URING_SETUP {
            if self.rings.len() >= RINGS_MAX {
                self.rings.clear();
            }
            if !self.rings.insert(e.hdr.pid) {
                cx.stats.filtered += 1;
                return None;
            }
        }
        // A ring's or a group's file is an anonymous inode, whose walk ends
        // at once (its dentry is its own root): named as /proc/<pid>/fd does.
        let path = match e.syscall {
            abi::SYS_IO_URING_SETUP => "anon_inode:[io_uring]".to_string(),
            abi::SYS_FANOTIFY_INIT => "anon_inode:[fanotify]".to_string(),
            _ => abi::file_event_path(e),
        };
        let via = via(e.syscall);
        Some(cx.enrich.base(
            &e.hdr,
            Severity::Warning,
            Detail::File {
                path,
                access: "read",
                result: result_text(e.ret as i64),
                category: category.to_string(),
                rule: "enabling_act".to_string(),
                resolved: e.layout == abi::PATH_RESOLVED,
                same_inode_as: None,
                action: None,
                via,
            },
        ))
    }
}
