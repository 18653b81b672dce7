//! The file family: opens of sensitive files, judged by path and, for a
//! hardlink (a name no rule matches), by inode; each sensitive inode seen
//! is handed to the kernel to watch (an effect).

use std::collections::HashMap;

use super::result_text;
use crate::abi::{self, InodeKey};
use crate::event::{Detail, Event, Severity};
use crate::policy::{Access, FileRule, Policy};

use super::{Cx, Effect};

pub(crate) const FMODE_READ: u32 = 0x1;
pub(crate) const FMODE_WRITE: u32 = 0x2;
const O_ACCMODE: u32 = 0o3;
const O_TRUNC: u32 = 0o1000;

/// Sensitive files by inode, (dev, ino) -> (the rule, the path it was
/// seen under): a hardlink has a name no rule matches.
#[derive(Default)]
pub struct Files {
    known: HashMap<(u64, u64), (FileRule, String)>,
    /// The last report of each open the kernel folds repeats into
    /// (bpf/fold.bpf.h), for reporting those repeats (pipeline/flood.rs).
    pub(crate) folds: HashMap<abi::FoldKey, Fold>,
}

/// An open as last reported, and how many of its repeats were reported.
pub(crate) struct Fold {
    pub hdr: abi::Header,
    pub severity: Severity,
    pub detail: Detail,
    pub reported: u64,
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
                repeats: None,
            },
        );
        if !killed && cx.enrich.runs_program(e.hdr.pid, &expected) {
            ev.severity = Severity::Info;
        }
        if opened && !killed {
            self.keep_for_repeats(e, &ev);
        }
        Some(ev)
    }
}
