//! Compiled rules, what the engine runs: conditions on one event and on a
//! trace, with patterns referred to by index.

use globset::GlobMatcher;

use crate::event::Severity;

/// How a rule sees a field (the event module's one field table).
pub use crate::event::FieldType as Ty;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    NotIn,
    Matches,
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone)]
pub enum Rhs {
    Str(String),
    Int(i64),
    Strs(Vec<String>),
    Ints(Vec<i64>),
    Field(String, Ty),
    Glob(Box<GlobMatcher>),
}

/// A condition on one event.
#[derive(Debug, Clone)]
pub enum EvPred {
    And(Vec<EvPred>),
    Or(Vec<EvPred>),
    Not(Box<EvPred>),
    Cmp {
        field: String,
        ty: Ty,
        op: Op,
        rhs: Rhs,
    },
}

/// One `has(kind).where(...)`: which events a trace keeps for a rule.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub kind: &'static str,
    pub pred: Option<EvPred>,
}

/// A condition on a trace; atoms refer to patterns by index.
#[derive(Debug, Clone)]
pub enum TracePred {
    And(Vec<TracePred>),
    Or(Vec<TracePred>),
    Not(Box<TracePred>),
    Has(usize),
    Never(usize),
    Count(usize, Op, i64),
    /// Patterns in order; each step after the first may bound its distance
    /// from the previous one (ns).
    Seq(Vec<(usize, Option<u64>)>),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    pub description: String,
    pub tags: Vec<String>,
    pub window_ns: u64,
    pub patterns: Vec<Pattern>,
    pub cond: TracePred,
    /// Which file it came from (for `rules --list`).
    pub source: String,
}

#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}
