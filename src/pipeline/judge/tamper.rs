//! Judging tampering with bee-trace itself: the tamper family's records
//! (bpf(2) commands on our objects, SIGKILL/SIGSTOP sent to us) and the
//! self-check's findings (`session::self_check`), as events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::result_text;
use crate::abi::{self, Header, TamperEvent, OBJ_LINK, OBJ_MAP, OBJ_PROG};
use crate::event::{Detail, Event, Severity};
use crate::kernel::{Drift, OwnObject};
use crate::pipeline::Pipeline;

/// The bpf(2) commands the tamper programs report, by the kernel's names.
pub fn cmd_name(cmd: u32) -> &'static str {
    match cmd {
        2 => "map_update_elem",
        3 => "map_delete_elem",
        6 => "obj_pin",
        9 => "prog_detach",
        13 => "prog_get_fd_by_id",
        14 => "map_get_fd_by_id",
        21 => "map_lookup_and_delete_elem",
        22 => "map_freeze",
        25 => "map_lookup_and_delete_batch",
        26 => "map_update_batch",
        27 => "map_delete_batch",
        29 => "link_update",
        30 => "link_get_fd_by_id",
        34 => "link_detach",
        _ => "bpf",
    }
}

/// Opening an object by id changes nothing; it is what every change from
/// outside starts with (and what `bpftool ... show` does to every object).
fn is_open(cmd: u32) -> bool {
    matches!(cmd, 13 | 14 | 30)
}

pub fn object_type_name(kind: u32) -> &'static str {
    match kind {
        OBJ_MAP => "map",
        OBJ_PROG => "prog",
        OBJ_LINK => "link",
        _ => "object",
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        9 => "SIGKILL",
        19 => "SIGSTOP",
        _ => "signal",
    }
}

/// Opens by the same process within this long are folded into the first.
const OPEN_FOLD: Duration = Duration::from_secs(5);

/// Judges tamper records: names the object from this instance's own table,
/// folds repeated opens, and remembers who last changed each object so the
/// self-check can name a suspect.
#[derive(Debug, Default)]
pub struct Judge {
    names: HashMap<(u32, u32), String>,
    /// pid -> when its last open was reported.
    opens: HashMap<u32, Instant>,
    /// (type, id) -> the header of the last bpf(2) change to it.
    last_writer: HashMap<(u32, u32), Header>,
    /// Pids of bee-trace and its watchdog, for naming signal targets.
    watchdog: u32,
}

impl Judge {
    pub fn new(objects: &[OwnObject]) -> Judge {
        Judge {
            names: objects
                .iter()
                .map(|o| ((o.kind, o.id), o.name.clone()))
                .collect(),
            ..Default::default()
        }
    }

    pub fn set_watchdog(&mut self, pid: u32) {
        self.watchdog = pid;
    }

    /// The event's severity and fields, or None for a folded repeat.
    pub fn judge(&mut self, e: &TamperEvent) -> Option<(Severity, Detail)> {
        match e.kind {
            abi::TAMPER_BPF => self.judge_bpf(e),
            abi::TAMPER_SIGNAL => {
                let who = if self.watchdog != 0 && e.target_tgid == self.watchdog {
                    "bee-trace's watchdog"
                } else {
                    "bee-trace"
                };
                Some((
                    Severity::Critical,
                    Detail::Tamper {
                        op: "signal",
                        source: "signal",
                        object_type: None,
                        object_id: None,
                        object_name: Some(who.to_string()),
                        result: Some(
                            if e.sig_result == 0 {
                                "delivered"
                            } else {
                                "not_delivered"
                            }
                            .to_string(),
                        ),
                        signal: Some(signal_name(e.sig)),
                        target_pid: Some(e.target_tgid),
                        found: None,
                        suppressed: None,
                    },
                ))
            }
            _ => None,
        }
    }

    fn judge_bpf(&mut self, e: &TamperEvent) -> Option<(Severity, Detail)> {
        let key = (e.obj_type, e.obj_id);
        let severity = if is_open(e.cmd) {
            let now = Instant::now();
            if self.opens.len() > 1024 {
                self.opens.retain(|_, t| now.duration_since(*t) < OPEN_FOLD);
            }
            match self.opens.get(&e.hdr.pid) {
                Some(t) if now.duration_since(*t) < OPEN_FOLD => return None,
                _ => {
                    self.opens.insert(e.hdr.pid, now);
                }
            }
            Severity::Warning
        } else {
            if self.last_writer.len() < 4096 || self.last_writer.contains_key(&key) {
                self.last_writer.insert(key, e.hdr);
            }
            Severity::Critical
        };
        Some((
            severity,
            Detail::Tamper {
                op: cmd_name(e.cmd),
                source: "bpf",
                object_type: Some(object_type_name(e.obj_type)),
                object_id: Some(e.obj_id),
                object_name: Some(self.names.get(&key).cloned().unwrap_or_default()),
                result: Some(result_text(i64::from(e.ret))),
                signal: None,
                target_pid: None,
                found: None,
                suppressed: None,
            },
        ))
    }

    fn suspect(&self, d: &Drift) -> Option<Header> {
        let kind = match d.object_type {
            "map" => OBJ_MAP,
            "link" => OBJ_LINK,
            _ => OBJ_PROG,
        };
        self.last_writer.get(&(kind, d.object_id)).copied()
    }
}

impl Pipeline {
    /// A record of the tamper family, as an event.
    pub(crate) fn on_tamper(&mut self, e: &TamperEvent) -> Option<Event> {
        let (severity, detail) = self.tamper.judge(e)?;
        Some(self.base(&e.hdr, "tamper", severity, detail))
    }

    /// A self-check finding, as a critical event. Its process is the one
    /// last seen changing the object through bpf(2), when one was (pid 0
    /// when none was: a change made another way, such as through a mapping
    /// of the map).
    pub fn integrity_event(&mut self, d: &Drift) -> Option<Event> {
        let mut hdr = self.tamper.suspect(d).unwrap_or_default();
        hdr.ts_boot_ns = crate::sys::boot_now_ns();
        let detail = Detail::Tamper {
            op: "integrity",
            source: "self_check",
            object_type: Some(d.object_type),
            object_id: Some(d.object_id),
            object_name: Some(d.object_name.clone()),
            result: None,
            signal: None,
            target_pid: None,
            found: Some(d.what.clone()),
            suppressed: None,
        };
        let ev = self.base(&hdr, "tamper", Severity::Critical, detail);
        self.finish(ev)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rec(kind: u32, cmd: u32, obj_type: u32, obj_id: u32, pid: u32) -> TamperEvent {
        let mut e = TamperEvent {
            kind,
            cmd,
            obj_type,
            obj_id,
            ..Default::default()
        };
        e.hdr.pid = pid;
        e
    }

    #[test]
    fn changes_are_critical_and_named_from_our_table() {
        let mut j = Judge::new(&[OwnObject {
            kind: OBJ_MAP,
            id: 42,
            name: "egress_cfg".into(),
        }]);
        let (sev, d) = j.judge(&rec(abi::TAMPER_BPF, 2, OBJ_MAP, 42, 7)).unwrap();
        assert_eq!(sev, Severity::Critical);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["op"], "map_update_elem");
        assert_eq!(v["object_type"], "map");
        assert_eq!(v["object_id"], 42);
        assert_eq!(v["object_name"], "egress_cfg");
        assert_eq!(v["result"], "ok");
        assert_eq!(v["source"], "bpf");
        assert!(v.get("found").is_none(), "{v}");
        // The self-check names the writer it saw.
        let drift = Drift {
            object_type: "map",
            object_id: 42,
            object_name: "egress_cfg".into(),
            what: "x".into(),
        };
        assert_eq!(j.suspect(&drift).map(|h| h.pid), Some(7));
    }

    #[test]
    fn repeated_opens_by_one_process_fold() {
        let mut j = Judge::default();
        let open = rec(abi::TAMPER_BPF, 14, OBJ_MAP, 1, 9);
        let (sev, _) = j.judge(&open).unwrap();
        assert_eq!(sev, Severity::Warning);
        assert!(j.judge(&rec(abi::TAMPER_BPF, 30, OBJ_LINK, 2, 9)).is_none());
        assert!(j.judge(&rec(abi::TAMPER_BPF, 14, OBJ_MAP, 1, 10)).is_some());
        // A change is never folded.
        assert!(j.judge(&rec(abi::TAMPER_BPF, 34, OBJ_LINK, 2, 9)).is_some());
        assert!(j.judge(&rec(abi::TAMPER_BPF, 34, OBJ_LINK, 2, 9)).is_some());
    }

    #[test]
    fn signals_name_their_target() {
        let mut j = Judge::default();
        j.set_watchdog(77);
        let mut e = rec(abi::TAMPER_SIGNAL, 0, 0, 0, 5);
        e.sig = 9;
        e.target_tgid = 77;
        let (sev, d) = j.judge(&e).unwrap();
        assert_eq!(sev, Severity::Critical);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["signal"], "SIGKILL");
        assert_eq!(v["object_name"], "bee-trace's watchdog");
        assert_eq!(v["target_pid"], 77);
        assert_eq!(v["result"], "delivered");
        assert!(j.judge(&rec(99, 0, 0, 0, 5)).is_none());
    }

    #[test]
    fn a_signal_to_bee_trace_itself_that_failed_says_so() {
        let mut j = Judge::default();
        j.set_watchdog(77);
        let mut e = rec(abi::TAMPER_SIGNAL, 0, 0, 0, 5);
        e.sig = 19;
        e.target_tgid = 78;
        e.sig_result = -1;
        let (sev, d) = j.judge(&e).unwrap();
        assert_eq!(sev, Severity::Critical);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["signal"], "SIGSTOP");
        assert_eq!(v["object_name"], "bee-trace");
        assert_eq!(v["result"], "not_delivered");
    }

    #[test]
    fn the_writers_remembered_are_bounded_but_a_known_object_keeps_its_latest() {
        let drift = |id: u32| Drift {
            object_type: "map",
            object_id: id,
            object_name: String::new(),
            what: "x".into(),
        };
        let mut j = Judge::default();
        for id in 0..4096 {
            j.judge(&rec(abi::TAMPER_BPF, 2, OBJ_MAP, id, 1)).unwrap();
        }
        // Full: a new object's writer is not remembered ...
        let (sev, _) = j.judge(&rec(abi::TAMPER_BPF, 2, OBJ_MAP, 5000, 2)).unwrap();
        assert_eq!(sev, Severity::Critical, "the change is still reported");
        assert!(j.suspect(&drift(5000)).is_none());
        // ... a known object's latest writer is.
        j.judge(&rec(abi::TAMPER_BPF, 2, OBJ_MAP, 7, 3)).unwrap();
        assert_eq!(j.suspect(&drift(7)).map(|h| h.pid), Some(3));
    }

    #[test]
    fn many_openers_do_not_unfold_a_repeated_open() {
        let mut j = Judge::default();
        for pid in 0..1100 {
            assert!(j
                .judge(&rec(abi::TAMPER_BPF, 14, OBJ_MAP, 1, pid))
                .is_some());
        }
        // Past 1024 openers the old are swept, but only once OPEN_FOLD passed.
        assert!(j.judge(&rec(abi::TAMPER_BPF, 14, OBJ_MAP, 1, 0)).is_none());
        assert!(j
            .judge(&rec(abi::TAMPER_BPF, 14, OBJ_MAP, 1, 1099))
            .is_none());
    }

    pub(crate) fn event(detail: Detail) -> Event {
        Event {
            kind: "tamper",
            id: 3,
            ts: "2026-12-01T22:00:00.000000Z".into(),
            pid: 41,
            ppid: 1,
            uid: 0,
            comm: "bpf\x1b[2Jtool".into(),
            exe: "/usr/sbin/bpftool".into(),
            ancestors: Vec::new(),
            severity: Severity::Critical,
            detail,
        }
    }

    #[test]
    fn a_detach_reads_as_one_line() {
        let mut j = Judge::new(&[OwnObject {
            kind: OBJ_LINK,
            id: 5,
            name: "network cgroup/connect4".into(),
        }]);
        let (_, d) = j.judge(&rec(abi::TAMPER_BPF, 34, OBJ_LINK, 5, 41)).unwrap();
        let line = crate::sink::human::human(&event(d));
        assert!(
            line.contains("tamper  link_detach link 5 network cgroup/connect4 (ok) by"),
            "{line}"
        );
    }

    #[test]
    fn tamper_records_decode_and_short_ones_are_refused() {
        let mut e = rec(abi::TAMPER_BPF, 2, OBJ_MAP, 42, 7);
        e.hdr.kind = abi::EV_TAMPER;
        e.ret = -1;
        let bytes = abi::as_bytes(&e).to_vec();
        match abi::decode(&bytes).unwrap() {
            abi::Raw::Tamper(t) => {
                assert_eq!((t.cmd, t.obj_type, t.obj_id, t.ret), (2, OBJ_MAP, 42, -1));
                assert_eq!(t.hdr.pid, 7);
            }
            other => panic!("decoded as {other:?}"),
        }
        assert!(abi::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn every_reported_command_has_a_name() {
        for cmd in [2, 3, 6, 9, 13, 14, 21, 22, 25, 26, 27, 29, 30, 34] {
            assert_ne!(cmd_name(cmd), "bpf", "{cmd}");
        }
    }
}
