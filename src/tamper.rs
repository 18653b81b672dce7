//! Tampering with bee-trace itself: turning the tamper family's records
//! (bpf(2) commands on our objects, SIGKILL/SIGSTOP sent to us) into events,
//! the periodic self-check that what bee-trace attached and wrote is still in
//! place, and the `integrity` section of the report.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::event::Severity;
use crate::event::{Detail, Event};
use crate::events::{self, Header, TamperEvent, OBJ_LINK, OBJ_MAP, OBJ_PROG};
use crate::pipeline::judge::result_text;
use crate::pipeline::Pipeline;

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

pub fn mode_name(mode: u32) -> &'static str {
    match mode {
        events::MODE_OFF => "off",
        events::MODE_AUDIT => "audit",
        events::MODE_BLOCK => "block",
        _ => "unknown",
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
            events::TAMPER_BPF => self.judge_bpf(e),
            events::TAMPER_SIGNAL => {
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
        };
        let ev = self.base(&hdr, "tamper", Severity::Critical, detail);
        self.finish(ev)
    }
}

/// How often the self-check runs.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One finding of the self-check, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub ts: String,
    #[serde(flatten)]
    pub drift: Drift,
}

/// The report's `integrity` section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    /// Something was found changed, or a bpf(2) change to bee-trace's
    /// objects or a SIGKILL/SIGSTOP to it was seen.
    pub tampered: bool,
    /// Self-check rounds run.
    pub checks: u64,
    /// What the self-check found changed, first time each.
    pub findings: Vec<Finding>,
    /// Critical tamper events seen (bpf(2) changes, signals, findings).
    pub tamper_events: u64,
    /// Objects of this instance the kernel watches for bpf(2) changes.
    pub objects_watched: usize,
}

/// The periodic self-check and what it found.
pub struct Guard {
    links: Vec<crate::kernel::LinkBaseline>,
    objects: Vec<OwnObject>,
    last: Instant,
    seen: HashSet<Drift>,
    /// Findings said on stderr, whose events wait for the bpf(2) record of
    /// the same change to come through the reorder delay (so they can name
    /// who made it).
    pending: Vec<(Drift, Instant)>,
    pub integrity: Integrity,
}

/// How long a finding's event waits for the record of its cause.
const SUSPECT_WAIT: Duration = Duration::from_millis(300);

impl Guard {
    pub fn new(links: Vec<crate::kernel::LinkBaseline>, objects: Vec<OwnObject>) -> Guard {
        let objects_watched = objects.len();
        Guard {
            links,
            objects,
            last: Instant::now(),
            seen: HashSet::new(),
            pending: Vec::new(),
            integrity: Integrity {
                objects_watched,
                ..Default::default()
            },
        }
    }

    pub fn due(&self) -> bool {
        self.last.elapsed() >= CHECK_EVERY
    }

    /// Findings whose event is due (all of them with `all`, at the end).
    pub fn ready(&mut self, all: bool) -> Vec<Drift> {
        let (due, wait) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, t)| all || t.elapsed() >= SUSPECT_WAIT);
        self.pending = wait;
        due.into_iter().map(|(d, _)| d).collect()
    }

    /// Runs one round; returns what is newly found (each difference once).
    pub fn check(
        &mut self,
        sensors: &mut crate::kernel::Sensors,
        plan: &crate::egress::Plan,
        filter: &crate::policy::KernelFilter,
        dog: Option<&mut crate::watchdog::Watchdog>,
    ) -> Vec<Drift> {
        self.last = Instant::now();
        self.integrity.checks += 1;
        let mut found = sensors.check_links(&mut self.links);
        found.extend(sensors.own_objs_drift(&self.objects));
        if let Some(d) = dog {
            let pid = d.pid;
            if let Some(why) = d.gone() {
                // Its pid may be reused: a signal to that is nobody's
                // tampering with bee-trace.
                sensors.set_watchdog(0);
                found.push(Drift {
                    object_type: "process",
                    object_id: pid,
                    object_name: "bee-trace's watchdog".into(),
                    what: why,
                });
            } else if d.running() && sensors.watchdog_in_kernel().is_some_and(|k| k != pid) {
                found.push(Drift {
                    object_type: "map",
                    object_id: 0,
                    object_name: "tamper .bss".into(),
                    what: format!("the signal program no longer watches the watchdog (pid {pid})"),
                });
            }
        }
        found.extend(sensors.egress_drift(plan));
        found.extend(sensors.file_filter_drift(filter));
        let found = fresh(&mut self.seen, found);
        let ts = crate::sys::rfc3339(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128),
        );
        for d in &found {
            self.pending.push((d.clone(), Instant::now()));
            self.integrity.tampered = true;
            if self.integrity.findings.len() < crate::report::MAX_REPORTED {
                self.integrity.findings.push(Finding {
                    ts: ts.clone(),
                    drift: d.clone(),
                });
            }
        }
        found
    }

    /// Counts a delivered event toward the section; a bpf(2) change or a
    /// signal is also said on stderr at once (a finding already was).
    pub fn saw(&mut self, ev: &Event) {
        if ev.kind != "tamper" || ev.severity != Severity::Critical {
            return;
        }
        self.integrity.tampered = true;
        self.integrity.tamper_events += 1;
        if let Detail::Tamper { source, .. } = &ev.detail {
            if *source != "self_check" {
                eprintln!(
                    "bee-trace: TAMPER: {} by {}[{}] uid={}",
                    crate::escape::terminal(&crate::sink::human::tamper_text(&ev.detail)),
                    crate::escape::terminal(&ev.comm),
                    ev.pid,
                    ev.uid
                );
            }
        }
    }
}

/// What this round found that the last one did not: a difference still
/// there is reported once, one that was put right and comes back again.
fn fresh(seen: &mut HashSet<Drift>, found: Vec<Drift>) -> Vec<Drift> {
    let now: HashSet<Drift> = found.iter().cloned().collect();
    let new = found.into_iter().filter(|d| !seen.contains(d)).collect();
    *seen = now;
    new
}

/// The one stderr line a finding gets at once.
pub fn drift_line(d: &Drift) -> String {
    crate::escape::terminal(&format!(
        "bee-trace: TAMPERED: {} {} ({}): {}",
        d.object_type, d.object_id, d.object_name, d.what
    ))
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: u32, cmd: u32, obj_type: u32, obj_id: u32, pid: u32) -> TamperEvent {
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
        let (sev, d) = j
            .judge(&rec(events::TAMPER_BPF, 2, OBJ_MAP, 42, 7))
            .unwrap();
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
        let open = rec(events::TAMPER_BPF, 14, OBJ_MAP, 1, 9);
        let (sev, _) = j.judge(&open).unwrap();
        assert_eq!(sev, Severity::Warning);
        assert!(j
            .judge(&rec(events::TAMPER_BPF, 30, OBJ_LINK, 2, 9))
            .is_none());
        assert!(j
            .judge(&rec(events::TAMPER_BPF, 14, OBJ_MAP, 1, 10))
            .is_some());
        // A change is never folded.
        assert!(j
            .judge(&rec(events::TAMPER_BPF, 34, OBJ_LINK, 2, 9))
            .is_some());
        assert!(j
            .judge(&rec(events::TAMPER_BPF, 34, OBJ_LINK, 2, 9))
            .is_some());
    }

    #[test]
    fn signals_name_their_target() {
        let mut j = Judge::default();
        j.set_watchdog(77);
        let mut e = rec(events::TAMPER_SIGNAL, 0, 0, 0, 5);
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

    fn event(detail: Detail) -> Event {
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
    fn tamper_events_read_as_one_line_and_count_toward_integrity() {
        let mut j = Judge::new(&[OwnObject {
            kind: OBJ_LINK,
            id: 5,
            name: "network cgroup/connect4".into(),
        }]);
        let (_, d) = j
            .judge(&rec(events::TAMPER_BPF, 34, OBJ_LINK, 5, 41))
            .unwrap();
        let ev = event(d);
        let line = crate::sink::human::human(&ev);
        assert!(
            line.contains("tamper  link_detach link 5 network cgroup/connect4 (ok) by"),
            "{line}"
        );
        let mut g = Guard::new(Vec::new(), Vec::new());
        g.saw(&ev);
        assert!(g.integrity.tampered);
        assert_eq!(g.integrity.tamper_events, 1);
        // A folded-in warning (an open by id) does not make a run tampered.
        let (_, open) = j
            .judge(&rec(events::TAMPER_BPF, 30, OBJ_LINK, 5, 42))
            .unwrap();
        let mut warn = event(open);
        warn.severity = Severity::Warning;
        let mut g = Guard::new(Vec::new(), Vec::new());
        g.saw(&warn);
        assert!(!g.integrity.tampered);
    }

    #[test]
    fn a_lasting_difference_is_reported_once_and_again_when_it_returns() {
        let d = Drift {
            object_type: "map",
            object_id: 1,
            object_name: "egress_cfg".into(),
            what: "holds mode off".into(),
        };
        let mut seen = HashSet::new();
        assert_eq!(fresh(&mut seen, vec![d.clone()]), vec![d.clone()]);
        assert!(fresh(&mut seen, vec![d.clone()]).is_empty());
        // Put right (a reload rewrote it), then changed again.
        assert!(fresh(&mut seen, Vec::new()).is_empty());
        assert_eq!(fresh(&mut seen, vec![d.clone()]), vec![d]);
    }

    #[test]
    fn findings_escape_control_bytes_for_the_terminal() {
        let d = Drift {
            object_type: "map",
            object_id: 9,
            object_name: "evil\x1b]0;x\x07".into(),
            what: "changed".into(),
        };
        let line = drift_line(&d);
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert!(line.contains("map 9"), "{line}");
        assert_eq!(crate::escape::terminal("a\nb"), "a\\x0ab");
    }

    #[test]
    fn tamper_records_decode_and_short_ones_are_refused() {
        let mut e = rec(events::TAMPER_BPF, 2, OBJ_MAP, 42, 7);
        e.hdr.kind = events::EV_TAMPER;
        e.ret = -1;
        let bytes = events::as_bytes(&e).to_vec();
        match events::decode(&bytes).unwrap() {
            events::Raw::Tamper(t) => {
                assert_eq!((t.cmd, t.obj_type, t.obj_id, t.ret), (2, OBJ_MAP, 42, -1));
                assert_eq!(t.hdr.pid, 7);
            }
            other => panic!("decoded as {other:?}"),
        }
        assert!(events::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn every_reported_command_has_a_name() {
        for cmd in [2, 3, 6, 9, 13, 14, 21, 22, 25, 26, 27, 29, 30, 34] {
            assert_ne!(cmd_name(cmd), "bpf", "{cmd}");
        }
        assert_eq!(mode_name(0), "off");
        assert_eq!(mode_name(2), "block");
    }
}
