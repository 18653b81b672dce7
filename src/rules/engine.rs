//! Incremental matching. Each event is assigned to its trace (the process
//! tree under its job-step root, read from the event's own ancestry) and, for
//! each rule with a pattern it matches, the trace's state for that rule is
//! updated and the condition evaluated. State is bounded: events older than
//! the rule's window leave it, each pattern keeps at most PATTERN_CAP
//! events, and at most TRACES_MAX (rule, trace) states live at once.
//!
//! Only the event's JSON form is read, and only in arrival order, so live
//! evaluation and a replay of a record give the same signals.

use std::collections::{HashMap, VecDeque};

use globset::GlobMatcher;
use serde::Serialize;
use serde_json::Value;

use super::set::{EvPred, Op, Rhs, RuleSet, TracePred, Ty};
use crate::event::Severity;

const PATTERN_CAP: usize = 256;
const TRACES_MAX: usize = 16384;

/// Processes whose children start a trace: a CI runner's step launcher, a
/// service manager, a container shim, a login.
const TRACE_BOUNDARY: &[&str] = &[
    "systemd",
    "init",
    "Runner.Worker",
    "Runner.Listener",
    "gitlab-runner",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "sshd",
    "sshd-session",
    "process_api",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Root {
    pub pid: u64,
    pub comm: String,
}

/// A rule match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signal {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ts: String,
    pub rule: String,
    pub severity: Severity,
    pub description: String,
    pub tags: Vec<String>,
    /// The trace's root process.
    pub root: Root,
    /// Ids of the events that made it match, ascending.
    pub events: Vec<u64>,
}

#[derive(Debug, Default)]
struct TraceState {
    /// Per pattern: (ts ns, event id) of matching events, oldest first.
    hits: Vec<VecDeque<(u64, u64)>>,
    fired: bool,
    last_ts: u64,
}

pub struct Engine {
    rules: RuleSet,
    traces: HashMap<(usize, Root), TraceState>,
    pushed: u64,
}

impl Engine {
    pub fn new(rules: RuleSet) -> Engine {
        Engine {
            rules,
            traces: HashMap::new(),
            pushed: 0,
        }
    }

    /// How many (rule, trace) states are held.
    #[cfg(test)]
    pub fn states(&self) -> usize {
        self.traces.len()
    }

    /// Feeds one event (its NDJSON object); returns the signals it completes.
    pub fn push(&mut self, ev: &Value) -> Vec<Signal> {
        let (Some(kind), Some(id), Some(ts_text)) =
            (ev["type"].as_str(), ev["id"].as_u64(), ev["ts"].as_str())
        else {
            return Vec::new();
        };
        let Some(ts) = parse_ts(ts_text) else {
            return Vec::new();
        };
        self.pushed += 1;
        if self.pushed.is_multiple_of(4096) {
            self.sweep(ts);
        }
        let root = trace_root(ev);
        let mut out = Vec::new();
        for (ri, rule) in self.rules.rules.iter().enumerate() {
            let matched: Vec<usize> = rule
                .patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| p.kind == kind && p.pred.as_ref().is_none_or(|c| eval(c, ev)))
                .map(|(i, _)| i)
                .collect();
            if matched.is_empty() {
                continue;
            }
            let key = (ri, root.clone());
            if !self.traces.contains_key(&key) && self.traces.len() >= TRACES_MAX {
                evict_oldest(&mut self.traces);
            }
            let st = self.traces.entry(key).or_default();
            if st.hits.len() < rule.patterns.len() {
                st.hits.resize_with(rule.patterns.len(), VecDeque::new);
            }
            let horizon = ts.saturating_sub(rule.window_ns);
            for q in &mut st.hits {
                while q.front().is_some_and(|(t, _)| *t < horizon) {
                    q.pop_front();
                }
            }
            for i in matched {
                let q = &mut st.hits[i];
                if q.len() == PATTERN_CAP {
                    q.pop_front();
                }
                q.push_back((ts, id));
            }
            st.last_ts = ts;
            if st.fired {
                continue;
            }
            if let Some(mut ids) = holds(&rule.cond, &st.hits) {
                st.fired = true;
                ids.sort_unstable();
                ids.dedup();
                out.push(Signal {
                    kind: "signal",
                    ts: ts_text.to_string(),
                    rule: rule.name.clone(),
                    severity: rule.severity,
                    description: rule.description.clone(),
                    tags: rule.tags.clone(),
                    root: root.clone(),
                    events: ids,
                });
            }
        }
        out
    }

    /// Drops trace states idle for longer than their rule's window.
    fn sweep(&mut self, now: u64) {
        let rules = &self.rules.rules;
        self.traces
            .retain(|(ri, _), st| now.saturating_sub(st.last_ts) <= rules[*ri].window_ns);
    }
}

fn evict_oldest(traces: &mut HashMap<(usize, Root), TraceState>) {
    // Drop the oldest eighth at once, so eviction is rare.
    let mut ages: Vec<u64> = traces.values().map(|s| s.last_ts).collect();
    ages.sort_unstable();
    let cut = ages[ages.len() / 8];
    traces.retain(|_, s| s.last_ts > cut);
}

/// The root of the event's trace: the process just below the nearest
/// boundary ancestor (pid 1, a service manager, a CI runner's worker).
pub fn trace_root(ev: &Value) -> Root {
    let me = (
        ev["pid"].as_u64().unwrap_or(0),
        ev["comm"].as_str().unwrap_or(""),
    );
    let ancestors: &[Value] = ev["ancestors"].as_array().map_or(&[], Vec::as_slice);
    let at = |i: usize| -> (u64, &str) {
        if i == 0 {
            me
        } else {
            let a = &ancestors[i - 1];
            (
                a["pid"].as_u64().unwrap_or(0),
                a["comm"].as_str().unwrap_or(""),
            )
        }
    };
    let len = ancestors.len() + 1;
    let mut root = at(len - 1);
    for i in 0..len - 1 {
        let (ppid, pcomm) = at(i + 1);
        if ppid <= 1 || TRACE_BOUNDARY.contains(&pcomm) {
            root = at(i);
            break;
        }
    }
    Root {
        pid: root.0,
        comm: root.1.to_string(),
    }
}

/// Does the trace satisfy the condition? Some(ids that show it).
fn holds(t: &TracePred, hits: &[VecDeque<(u64, u64)>]) -> Option<Vec<u64>> {
    match t {
        TracePred::Has(p) => hits[*p].back().map(|(_, id)| vec![*id]),
        TracePred::Never(p) => hits[*p].is_empty().then(Vec::new),
        TracePred::Count(p, op, n) => {
            let c = hits[*p].len() as i64;
            let ok = match op {
                Op::Eq => c == *n,
                Op::Ne => c != *n,
                Op::Lt => c < *n,
                Op::Gt => c > *n,
                Op::Le => c <= *n,
                _ => c >= *n,
            };
            ok.then(|| hits[*p].iter().map(|(_, id)| *id).collect())
        }
        TracePred::And(v) => {
            let mut ids = Vec::new();
            for x in v {
                ids.extend(holds(x, hits)?);
            }
            Some(ids)
        }
        TracePred::Or(v) => v.iter().find_map(|x| holds(x, hits)),
        TracePred::Not(x) => holds(x, hits).is_none().then(Vec::new),
        TracePred::Seq(steps) => sequence(steps, hits),
    }
}

/// An ordered chain of events, one per step, each after the previous one
/// (by id) and within its bound. The latest such chain, by dynamic
/// programming over each step's hits.
fn sequence(steps: &[(usize, Option<u64>)], hits: &[VecDeque<(u64, u64)>]) -> Option<Vec<u64>> {
    // For each step: the feasible hits (ts, id, index of predecessor).
    let mut feasible: Vec<Vec<(u64, u64, usize)>> = Vec::with_capacity(steps.len());
    for (si, (p, within)) in steps.iter().enumerate() {
        let mut here = Vec::new();
        for &(ts, id) in &hits[*p] {
            if si == 0 {
                here.push((ts, id, 0));
                continue;
            }
            let prev = &feasible[si - 1];
            // Latest predecessor with a smaller id: the shortest gap.
            let k = prev.partition_point(|(_, pid, _)| *pid < id);
            if k == 0 {
                continue;
            }
            let (pts, _, _) = prev[k - 1];
            if within.is_none_or(|w| ts.saturating_sub(pts) <= w) {
                here.push((ts, id, k - 1));
            }
        }
        if here.is_empty() {
            return None;
        }
        feasible.push(here);
    }
    let mut ids = Vec::with_capacity(steps.len());
    let mut at = feasible.last()?.len() - 1;
    for si in (0..feasible.len()).rev() {
        let (_, id, pred) = feasible[si][at];
        ids.push(id);
        at = pred;
    }
    Some(ids)
}

fn eval(p: &EvPred, ev: &Value) -> bool {
    match p {
        EvPred::And(v) => v.iter().all(|x| eval(x, ev)),
        EvPred::Or(v) => v.iter().any(|x| eval(x, ev)),
        EvPred::Not(x) => !eval(x, ev),
        EvPred::Cmp { field, ty, op, rhs } => cmp(&ev[field.as_str()], *ty, *op, rhs, ev),
    }
}

fn text_of(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Bool(true) => Some("true"),
        Value::Bool(false) => Some("false"),
        _ => None,
    }
}

fn cmp(v: &Value, ty: Ty, op: Op, rhs: &Rhs, ev: &Value) -> bool {
    if v.is_null() {
        // An absent field equals nothing and is in nothing.
        return matches!(op, Op::Ne | Op::NotIn);
    }
    match ty {
        Ty::Int => {
            let Some(a) = v.as_i64() else { return false };
            let b = match rhs {
                Rhs::Int(b) => *b,
                Rhs::Field(f, _) => match ev[f.as_str()].as_i64() {
                    Some(b) => b,
                    None => return matches!(op, Op::Ne),
                },
                Rhs::Ints(l) => {
                    return (op == Op::In) == l.contains(&a);
                }
                _ => return false,
            };
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Lt => a < b,
                Op::Gt => a > b,
                Op::Le => a <= b,
                Op::Ge => a >= b,
                _ => false,
            }
        }
        Ty::List => v
            .as_array()
            .is_some_and(|a| a.iter().filter_map(text_of).any(|s| str_op(s, op, rhs, ev))),
        Ty::Str | Ty::Bool => match text_of(v) {
            Some(s) => str_op(s, op, rhs, ev),
            None => false,
        },
    }
}

fn str_op(s: &str, op: Op, rhs: &Rhs, ev: &Value) -> bool {
    fn other<'a>(rhs: &'a Rhs, ev: &'a Value) -> Option<&'a str> {
        match rhs {
            Rhs::Str(x) => Some(x.as_str()),
            Rhs::Field(f, _) => text_of(&ev[f.as_str()]),
            _ => None,
        }
    }
    match (op, rhs) {
        (Op::In, Rhs::Strs(l)) => l.iter().any(|x| x == s),
        (Op::NotIn, Rhs::Strs(l)) => !l.iter().any(|x| x == s),
        (Op::Matches, Rhs::Glob(g)) => glob_match(g, s),
        (Op::StartsWith, r) => other(r, ev).is_some_and(|x| s.starts_with(x)),
        (Op::EndsWith, r) => other(r, ev).is_some_and(|x| s.ends_with(x)),
        (Op::Contains, r) => other(r, ev).is_some_and(|x| s.contains(x)),
        (Op::Eq, r) => other(r, ev).is_some_and(|x| x == s),
        (Op::Ne, r) => other(r, ev).is_none_or(|x| x != s),
        _ => false,
    }
}

fn glob_match(g: &GlobMatcher, s: &str) -> bool {
    g.is_match(s)
}

/// RFC 3339 UTC (`2026-11-22T01:03:00.036109Z`) in ns since the epoch.
pub fn parse_ts(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = &s[19..s.len() - 1];
    let ns = match frac.strip_prefix('.') {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<u64>().ok()? * 10u64.pow(9 - f.len() as u32)
        }
        None if frac.is_empty() => 0,
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(ns)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
