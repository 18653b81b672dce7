//! Behavioural rules: conditions over the events of a trace (a process tree
//! over a time window), compiled once at load and matched incrementally as
//! events arrive. The engine reads events in their NDJSON form, so a replay
//! of a record gives exactly the signals live evaluation gave.
//!
//! The language is in docs/rules.md; the grammar in grammar.pest.

mod depth;
mod engine;
mod lang;

#[cfg(test)]
pub use engine::Root;
pub use engine::{parse_ts, Engine, Signal};
pub use lang::{compile, load, RuleError, Source};

/// The built-in rule pack.
pub const BUILTIN: &str = include_str!("builtin.yml");
