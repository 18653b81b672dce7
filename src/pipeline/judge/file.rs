//! The file family: opens of sensitive files, judged by path and, for a
//! hardlink (a name no rule matches), by inode; links and renames of
//! watched names; each sensitive inode seen is handed to the kernel to
//! watch (an effect), and forgotten when its number turns out reused.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::result_text;
use crate::abi::{self, InodeKey};
use crate::event::{Detail, Event, Severity};
use crate::kernel::{identify, Ident};
use crate::policy::{Access, FileRule, Policy};

use super::{Cx, Effect};

pub(crate) const FMODE_READ: u32 = 0x1;
pub(crate) const FMODE_WRITE: u32 = 0x2;
const O_ACCMODE: u32 = 0o3;
const O_TRUNC: u32 = 0o1000;

/// Files known by inode at most: what the kernel's inode_filter holds
/// (bpf/file_filter.bpf.h). A job that makes ever more files under watched
/// names cannot grow the table without bound.
const KNOWN_MAX: usize = 65536;

/// RENAME_EXCHANGE (renameat2): the two names swap their files.
const RENAME_EXCHANGE: u32 = 2;

/// A sensitive file known by inode: the rule, the path it was seen under,
/// and what tells it from a later file given the same inode number.
#[derive(Clone)]
struct Known {
    rule: FileRule,
    path: String,
    ident: Ident,
}

/// Sensitive files by inode, (dev, ino): a hardlink has a name no rule
/// matches.
#[derive(Default)]
pub struct Files {
    known: HashMap<(u64, u64), Known>,
    /// The last report of each open the kernel folds repeats into
    /// (bpf/fold.bpf.h), for reporting those repeats (pipeline/flood.rs).
    pub(crate) folds: HashMap<abi::FoldKey, Fold>,
    /// Processes whose io_uring_setup was reported (one event each).
    rings: HashSet<u32>,
}

/// An open as last reported, and how many of its repeats were reported.
pub(crate) struct Fold {
    pub hdr: abi::Header,
    pub severity: Severity,
    pub detail: Detail,
    pub reported: u64,
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
    /// Keeps `ev`, made from `e`, as the report its kernel-folded repeats
    /// are told against. Bounded like the kernel's map: when full, an
    /// arbitrary entry makes room (its later repeats are told as unmatched).
    fn keep_for_repeats(&mut self, e: &abi::FileEvent, ev: &Event) {
        let key = abi::FoldKey {
            dev: e.dev,
            ino: e.ino,
            tgid: e.hdr.pid,
            access: e.fmode & (FMODE_READ | FMODE_WRITE),
        };
        if !self.folds.contains_key(&key) && self.folds.len() >= abi::FOLD_ENTRIES as usize {
            if let Some(k) = self.folds.keys().next().copied() {
                self.folds.remove(&k);
            }
        }
        let reported = self.folds.get(&key).map_or(0, |f| f.reported);
        self.folds.insert(
            key,
            Fold {
                hdr: e.hdr,
                severity: ev.severity,
                detail: ev.detail.clone(),
                reported,
            },
        );
    }
}

/// Where bee-trace finds `path` as the process `pid` named it: under its
/// root (`/proc/<pid>/root`, a container's own mount namespace or chroot),
/// else its parent's, which shares it and is usually still there when the
/// renaming program has exited, else as bee-trace sees it.
fn as_seen_by(pid: u32, ppid: u32, path: &str) -> PathBuf {
    for p in [pid, ppid].into_iter().filter(|p| *p > 1) {
        let root = PathBuf::from(format!("/proc/{p}/root"));
        if std::fs::read_link(&root).is_ok() {
            let mut at = root.into_os_string();
            at.push(path);
            return PathBuf::from(at);
        }
    }
    PathBuf::from(path)
}

/// `identify` of a name the job made, with its generation, given up when
/// the file system does not answer in time (a FUSE server of the job's
/// that never answers would stop the processing thread): the file is then
/// not learned by inode, said in a warning.
fn identify_bounded(at: PathBuf) -> Option<(InodeKey, Ident)> {
    use crate::fsafe::lookout;
    let what = format!(
        "looking up {} (its inode is not learned)",
        crate::escape::terminal(&crate::escape::decode_path(&at))
    );
    lookout::shared()
        .run(&what, lookout::WHILE_RUNNING, move || identify(&at, true))
        .ok()
        .flatten()
}

/// The identity of the file a record opened.
fn opened_ident(e: &abi::FileEvent) -> Ident {
    Ident {
        ftype: e.ftype,
        gen: (e.ftype != 0).then_some(e.igen),
    }
}

impl Files {
    /// Remembers an existing sensitive file by inode (see `Policy::seed_files`),
    /// with its identity when the name still holds that inode.
    pub fn know(&mut self, policy: &Policy, key: InodeKey, path: &str) {
        if let Some(rule) = policy.match_file(path, Access::Write) {
            use crate::fsafe::lookout;
            let at = PathBuf::from(path);
            let what = format!(
                "looking at {} (its identity is not confirmed)",
                crate::escape::terminal(path)
            );
            let ident = lookout::shared()
                .run(&what, lookout::AT_START, move || identify(&at, false))
                .ok()
                .flatten()
                .filter(|(k, _)| *k == key)
                .map(|(_, i)| i)
                .unwrap_or_default();
            let _ = self.remember(key, rule.clone(), path.to_string(), ident);
        }
    }

    /// Records a sensitive file by inode; false when the table is full
    /// (as many as the kernel's inode filter holds) and the file is new.
    fn remember(&mut self, key: InodeKey, rule: FileRule, path: String, ident: Ident) -> bool {
        let k = (key.dev, key.ino);
        if self.known.len() >= KNOWN_MAX && !self.known.contains_key(&k) {
            return false;
        }
        self.known.insert(k, Known { rule, path, ident });
        true
    }

    /// Learns a file while running: remembered, and handed to the kernel
    /// to watch by inode.
    fn learn(&mut self, cx: &mut Cx, key: InodeKey, rule: FileRule, path: String, ident: Ident) {
        if self.remember(key, rule, path, ident) {
            cx.effects.push(Effect::WatchInode(key));
        }
    }

    /// The file known under `key`, when `ident` can be it. One that cannot
    /// is forgotten: its inode number went to another file (the old one
    /// lost its last link), whose opens are not the credential's.
    fn confirmed(&mut self, cx: &mut Cx, key: (u64, u64), ident: &Ident) -> Option<Known> {
        let k = self.known.get(&key)?;
        if k.ident.same_as(ident) {
            return Some(k.clone());
        }
        self.known.remove(&key);
        cx.effects.push(Effect::ForgetInode(InodeKey {
            dev: key.0,
            ino: key.1,
        }));
        None
    }

    /// Judges the files known by inode again under a new policy; those no
    /// rule names any more are forgotten.
    pub fn rejudge(&mut self, policy: &Policy) {
        let known = std::mem::take(&mut self.known);
        for (key, k) in known {
            if let Some(rule) = policy.match_file(&k.path, Access::Write) {
                self.known.insert(
                    key,
                    Known {
                        rule: rule.clone(),
                        ..k
                    },
                );
            }
        }
    }

    /// An open the kernel's filter let through, judged by the policy by path
    /// and, for a name no rule matches, by inode.
    pub fn judge(&mut self, cx: &mut Cx, e: &abi::FileEvent) -> Option<Event> {
        if e.layout == abi::PATH_MOVED {
            return self.judge_moved(cx, e);
        }
        if e.action == abi::FILE_FREED {
            // The kernel already dropped it from its filter.
            self.known.remove(&(e.dev, e.ino));
            return None;
        }
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
        let ident = opened_ident(e);
        let by_inode = if opened {
            self.confirmed(cx, (e.dev, e.ino), &ident)
        } else {
            None
        };
        let (rule, same_inode_as) = if killed {
            // The kernel already acted: report it whatever the path says,
            // under the tripwire rule that armed this inode.
            match by_inode {
                Some(Known {
                    rule,
                    path: original,
                    ..
                }) => (rule, Some(original).filter(|o| *o != path)),
                None => match cx.policy.match_file(&path, access) {
                    Some(rule) => (rule.clone(), None),
                    None => (Policy::unknown_tripwire(), None),
                },
            }
        } else {
            match cx.policy.match_file(&path, access) {
                Some(rule) => (rule.clone(), None),
                None => match by_inode {
                    Some(Known {
                        rule,
                        path: original,
                        ..
                    }) if (!rule.write_only || access == Access::Write) && original != path => {
                        (rule, Some(original))
                    }
                    _ => {
                        cx.stats.filtered += 1;
                        return None;
                    }
                },
            }
        };
        if opened && same_inode_as.is_none() {
            let key = InodeKey {
                dev: e.dev,
                ino: e.ino,
            };
            match self.known.get_mut(&(e.dev, e.ino)) {
                // Seen under its own name: the kernel's word on its
                // generation, where user space could not learn it.
                Some(k) if k.path == path && k.ident.gen.is_none() => k.ident = ident,
                Some(_) => {}
                None => {
                    self.learn(cx, key, rule.clone(), path.clone(), ident);
                }
            }
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
                repeats: None,
                old_path: None,
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
        if opened && !killed {
            self.keep_for_repeats(e, &ev);
        }
        Some(ev)
    }

    /// A link or rename of which one name is watched (the kernel's
    /// pre-filter). The file under the new name is looked up here: it is
    /// learned by inode, so its opens under any name are caught.
    ///
    /// - The old name is watched, or the file is a known one: a credential
    ///   given another name, an evasion (at least high).
    /// - Only the new name is: a file put in place as the credential (a
    ///   write of it, judged as one), how credentials are written.
    fn judge_moved(&mut self, cx: &mut Cx, e: &abi::FileEvent) -> Option<Event> {
        if cx.is_peer_activity(e.hdr.pid) {
            return None;
        }
        let path = abi::file_event_path(e);
        let old = abi::file_event_old_path(e).unwrap_or_default();
        let op = match e.syscall {
            abi::SYS_LINK | abi::SYS_LINKAT => "link",
            _ => "rename",
        };
        let now = identify_bounded(as_seen_by(e.hdr.pid, e.hdr.ppid, &path));
        let known = now.and_then(|(k, i)| self.confirmed(cx, (k.dev, k.ino), &i));
        let dest = cx.policy.match_file(&path, Access::Write).cloned();
        let source = cx
            .policy
            .match_file(&old, Access::Write)
            .cloned()
            .or_else(|| known.as_ref().map(|k| k.rule.clone()));
        let (rule, severity) = match (source, &dest) {
            (Some(r), _) => {
                let s = r.severity.max(Severity::High);
                (r, s)
            }
            (None, Some(r)) => (r.clone(), r.severity),
            (None, None) => {
                cx.stats.filtered += 1;
                return None;
            }
        };
        let same_inode_as = known
            .as_ref()
            .map(|k| k.path.clone())
            .filter(|o| *o != path && *o != old);
        // The name the credential is known by: the watched one.
        let name = match (&dest, &known) {
            (Some(_), _) => path.clone(),
            (None, Some(k)) => k.path.clone(),
            (None, None) => old.clone(),
        };
        if let Some((key, ident)) = now {
            if known.is_none() {
                self.learn(cx, key, rule.clone(), name, ident);
            }
        }
        // An exchange put the new name's former file under the old name: it
        // is the credential of whichever of the two names is watched.
        if e.syscall == abi::SYS_RENAMEAT2 && e.flags & RENAME_EXCHANGE != 0 {
            let by_old = cx.policy.match_file(&old, Access::Write).cloned();
            let (swapped_rule, swapped_name) = match (by_old, &dest) {
                (Some(r), _) => (Some(r), old.clone()),
                (None, Some(r)) => (Some(r.clone()), path.clone()),
                (None, None) => (None, String::new()),
            };
            let swapped = identify_bounded(as_seen_by(e.hdr.pid, e.hdr.ppid, &old));
            if let (Some(r), Some((key, ident))) = (swapped_rule, swapped) {
                if !self.known.contains_key(&(key.dev, key.ino)) {
                    self.learn(cx, key, r, swapped_name, ident);
                }
            }
        }
        let mut ev = cx.enrich.base(
            &e.hdr,
            severity,
            Detail::File {
                path,
                access: op,
                result: result_text(e.ret as i64),
                category: rule.kind,
                rule: rule.pattern,
                resolved: false,
                same_inode_as,
                action: None,
                repeats: None,
                old_path: Some(old),
                via: None,
            },
        );
        if cx.enrich.runs_program(e.hdr.pid, &rule.expected) {
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
                repeats: None,
                old_path: None,
                via,
            },
        ))
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
