//! The run's verdict: what `--fail-on` makes of what was seen (findings at
//! or above a severity, connects blocked, events never seen), and the exit
//! code that carries it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::{Detail, Event, Severity};
use crate::rules::Signal;

/// Nothing at or above the fail level, nothing blocked, nothing unseen.
pub const EXIT_PASS: u8 = 0;
/// bee-trace itself failed (a bad flag, a probe that did not attach ...).
pub const EXIT_ERROR: u8 = 1;
/// A finding at or above the fail level, or a connect blocked.
pub const EXIT_FAIL: u8 = 2;
/// No finding, but events were lost before bee-trace could judge them:
/// the run cannot be said to be clean.
pub const EXIT_INCOMPLETE: u8 = 3;

/// The longest example the verdict line quotes.
const EXAMPLE_MAX: usize = 240;

/// What the verdict is made of, counted as events and signals are
/// delivered (before the rate limit: a finding held back from the stream
/// still counts).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    pub events: BTreeMap<Severity, u64>,
    pub signals: BTreeMap<Severity, u64>,
    /// Connects refused and packets dropped in the kernel (block mode).
    pub blocked: u64,
    /// Records a flooding process's share held back in the kernel (its
    /// `flood` events say how many): counted there, never judged here.
    pub held_back: u64,
    /// The first of the most severe events or signals, as a human line.
    #[serde(skip)]
    worst: Option<(Severity, String)>,
    /// The first blocked connect, as a human line.
    #[serde(skip)]
    first_blocked: Option<String>,
}

impl Tally {
    pub fn event(&mut self, e: &Event) {
        *self.events.entry(e.severity).or_default() += 1;
        match &e.detail {
            Detail::Network {
                action: Some("blocked"),
                ..
            } => {
                self.blocked += 1;
                if self.first_blocked.is_none() {
                    self.first_blocked = Some(example(&crate::sink::human::human(e)));
                }
            }
            Detail::Tamper {
                op: "flood",
                suppressed: Some(n),
                ..
            } => self.held_back += n,
            _ => {}
        }
        self.note(e.severity, || crate::sink::human::human(e));
    }

    pub fn signal(&mut self, g: &Signal) {
        *self.signals.entry(g.severity).or_default() += 1;
        self.note(g.severity, || format!("signal {}", super::signal_line(g)));
    }

    fn note(&mut self, sev: Severity, line: impl FnOnce() -> String) {
        if self.worst.as_ref().is_none_or(|(s, _)| sev > *s) {
            self.worst = Some((sev, example(&line())));
        }
    }

    fn at_or_above(m: &BTreeMap<Severity, u64>, level: Severity) -> u64 {
        m.range(level..).map(|(_, n)| n).sum()
    }
}

/// One line, terminal-safe, bounded.
fn example(line: &str) -> String {
    let line = crate::escape::terminal(line);
    if line.chars().count() <= EXAMPLE_MAX {
        return line.into_owned();
    }
    let cut: String = line.chars().take(EXAMPLE_MAX).collect();
    format!("{cut}...")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Incomplete,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub result: Outcome,
    pub fail_on: Severity,
    /// Events at or above `fail_on`.
    pub events: u64,
    /// Signals at or above `fail_on`.
    pub signals: u64,
    pub blocked: u64,
    /// Events bee-trace never saw: lost in the kernel or the queue,
    /// undecodable, or held back by a flood share.
    pub unseen: u64,
    /// The process's exit status.
    pub exit_code: u8,
    /// The first of the most severe findings, or the first block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

impl Verdict {
    /// `unseen` is what the report counts as lost before judging (the
    /// kernel's ring buffers, the queue, undecodable samples).
    pub fn judge(t: &Tally, fail_on: Severity, unseen: u64) -> Verdict {
        let events = Tally::at_or_above(&t.events, fail_on);
        let signals = Tally::at_or_above(&t.signals, fail_on);
        let unseen = unseen + t.held_back;
        let failed = events + signals + t.blocked > 0;
        let result = if failed {
            Outcome::Fail
        } else if unseen > 0 {
            Outcome::Incomplete
        } else {
            Outcome::Pass
        };
        let example = match (&t.worst, &t.first_blocked) {
            (Some((s, line)), _) if *s >= fail_on => Some(line.clone()),
            (_, Some(b)) => Some(b.clone()),
            _ => None,
        };
        Verdict {
            result,
            fail_on,
            events,
            signals,
            blocked: t.blocked,
            unseen,
            exit_code: match result {
                Outcome::Pass => EXIT_PASS,
                Outcome::Fail => EXIT_FAIL,
                Outcome::Incomplete => EXIT_INCOMPLETE,
            },
            example,
        }
    }

    /// What it found, e.g. "2 events and 1 signal at or above high, 1
    /// connect blocked".
    pub fn reasons(&self) -> String {
        let mut parts = Vec::new();
        let found = self.events + self.signals;
        if found > 0 {
            parts.push(format!(
                "{} at or above {}",
                [plural(self.events, "event"), plural(self.signals, "signal")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" and "),
                self.fail_on
            ));
        }
        if let Some(b) = plural(self.blocked, "connect") {
            parts.push(format!("{b} blocked"));
        }
        if let Some(u) = plural(self.unseen, "event") {
            parts.push(format!("{u} lost unseen, so the verdict is incomplete"));
        }
        if parts.is_empty() {
            parts.push(format!(
                "nothing at or above {}, nothing blocked",
                self.fail_on
            ));
        }
        parts.join(", ")
    }

    /// The summary's last line.
    pub fn line(&self) -> String {
        let word = match self.result {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Incomplete => "INCOMPLETE",
        };
        let mut s = format!(
            "bee-trace: verdict {word} (fail-on {}, exit {}): {}",
            self.fail_on,
            self.exit_code,
            self.reasons()
        );
        if let Some(e) = &self.example {
            s.push_str("; first: ");
            s.push_str(e);
        }
        s
    }
}

fn plural(n: u64, what: &str) -> Option<String> {
    match n {
        0 => None,
        1 => Some(format!("1 {what}")),
        n => Some(format!("{n} {what}s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::human::tests::sample;

    fn blocked() -> Event {
        let mut e = sample();
        e.kind = "network";
        e.severity = Severity::High;
        e.detail = Detail::Network {
            op: "connect",
            protocol: "tcp".into(),
            family: "ipv4",
            daddr: "198.51.100.3".into(),
            dport: 443,
            result: "EPERM".into(),
            policy: None,
            action: Some("blocked"),
            rule: Some("network.blocked_ips: 198.51.100.3".into()),
            dns_name: None,
            answer_cut: None,
        };
        e
    }

    #[test]
    fn a_finding_at_or_above_the_level_fails_and_below_passes() {
        let mut t = Tally::default();
        t.event(&sample()); // critical
        let v = Verdict::judge(&t, Severity::High, 0);
        assert_eq!((v.result, v.exit_code, v.events), (Outcome::Fail, 2, 1));
        assert!(
            v.line().contains("1 event at or above high"),
            "{}",
            v.line()
        );
        assert!(v.line().contains("/root/.ssh/id_rsa"), "{}", v.line());
        let mut info = sample();
        info.severity = Severity::Info;
        let mut t = Tally::default();
        t.event(&info);
        let v = Verdict::judge(&t, Severity::Warning, 0);
        assert_eq!((v.result, v.exit_code), (Outcome::Pass, 0));
        assert!(v.example.is_none());
    }

    #[test]
    fn a_blocked_connect_fails_whatever_the_level() {
        let mut t = Tally::default();
        t.event(&blocked());
        let v = Verdict::judge(&t, Severity::Critical, 0);
        assert_eq!((v.result, v.blocked, v.events), (Outcome::Fail, 1, 0));
        assert!(v.line().contains("1 connect blocked"), "{}", v.line());
        assert!(v.line().contains("198.51.100.3"), "{}", v.line());
    }

    #[test]
    fn lost_events_make_a_clean_run_incomplete_and_a_failed_one_says_so() {
        let t = Tally::default();
        let v = Verdict::judge(&t, Severity::High, 5);
        assert_eq!((v.result, v.exit_code), (Outcome::Incomplete, 3));
        assert!(v.line().contains("5 events lost unseen"), "{}", v.line());
        let mut t = Tally::default();
        t.event(&sample());
        let v = Verdict::judge(&t, Severity::High, 5);
        assert_eq!(v.result, Outcome::Fail);
        assert!(v.line().contains("incomplete"), "{}", v.line());
    }

    #[test]
    fn records_a_flood_held_back_count_as_unseen() {
        let mut e = sample();
        e.kind = "tamper";
        e.severity = Severity::High;
        e.detail = Detail::Tamper {
            op: "flood",
            source: "share",
            object_type: None,
            object_id: None,
            object_name: None,
            result: None,
            signal: None,
            target_pid: None,
            found: None,
            suppressed: Some(40),
        };
        let mut t = Tally::default();
        t.event(&e);
        let v = Verdict::judge(&t, Severity::Critical, 0);
        assert_eq!((v.result, v.unseen), (Outcome::Incomplete, 40));
    }

    #[test]
    fn the_example_is_one_escaped_bounded_line() {
        let mut e = sample();
        if let Detail::File { path, .. } = &mut e.detail {
            *path = format!("/x\n\u{1b}[2J{}", "a".repeat(1000));
        }
        let mut t = Tally::default();
        t.event(&e);
        let line = Verdict::judge(&t, Severity::High, 0).line();
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
        assert!(line.len() < 600, "{}", line.len());
    }
}
