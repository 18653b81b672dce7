//! The periodic self-check that what bee-trace attached and wrote in the
//! kernel is still in place: when it runs, what is new since the last round,
//! and the report's `integrity` section. The looking itself is the kernel
//! room's (`kernel::guard`, the egress and file-filter maps); this is the
//! run's, since it also watches the watchdog and paces findings against the
//! reorder delay.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::event::{Detail, Event, Severity};
use crate::kernel::{Drift, LinkBaseline, OwnObject, Sensors};
use crate::report::{Finding, Integrity};

/// How often the self-check runs.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The periodic self-check and what it found.
pub struct Guard {
    links: Vec<LinkBaseline>,
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
    pub fn new(links: Vec<LinkBaseline>, objects: Vec<OwnObject>) -> Guard {
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
        sensors: &mut Sensors,
        plan: &crate::policy::network::Plan,
        filter: &crate::policy::KernelFilter,
        dog: Option<&mut crate::watchdog::Watchdog>,
    ) -> Vec<Drift> {
        self.last = Instant::now();
        self.integrity.checks += 1;
        // Interfaces made since the last round get the device backstop.
        match sensors.cover_devices() {
            Ok(0) => {}
            Ok(n) => log::info!("the device backstop covers {n} new interface(s)"),
            Err(e) => log::warn!("the device backstop cannot cover a new interface: {e}"),
        }
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
    use crate::abi::{self, OBJ_LINK};
    use crate::pipeline::judge::tamper::tests::{event, rec};
    use crate::pipeline::judge::tamper::Judge;

    #[test]
    fn critical_tamper_events_count_toward_integrity() {
        let mut j = Judge::new(&[OwnObject {
            kind: OBJ_LINK,
            id: 5,
            name: "network cgroup/connect4".into(),
        }]);
        let (_, d) = j.judge(&rec(abi::TAMPER_BPF, 34, OBJ_LINK, 5, 41)).unwrap();
        let mut g = Guard::new(Vec::new(), Vec::new());
        g.saw(&event(d));
        assert!(g.integrity.tampered);
        assert_eq!(g.integrity.tamper_events, 1);
        // A folded-in warning (an open by id) does not make a run tampered.
        let (_, open) = j.judge(&rec(abi::TAMPER_BPF, 30, OBJ_LINK, 5, 42)).unwrap();
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
}
