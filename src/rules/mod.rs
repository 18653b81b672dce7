//! Behavioural rules: conditions over the events of a trace (a process tree
//! over a time window), compiled once at load and matched incrementally as
//! events arrive. The engine reads events in their NDJSON form, so a replay
//! of a record gives exactly the signals live evaluation gave.
//!
//! The language is in docs/rules.md; the grammar in grammar.pest. A rule
//! file goes load (YAML, lists, macros) -> parse (each condition) -> check
//! (names and types) -> set (what the engine runs).

mod check;
mod depth;
mod engine;
mod load;
mod parse;
mod set;

#[cfg(test)]
pub use engine::Root;
pub use engine::{parse_ts, Engine, Signal};
pub use load::{compile, load, LoadError, RuleError, Source};
pub use set::RuleSet;

/// The built-in rule pack.
pub const BUILTIN: &str = include_str!("builtin.yml");

#[cfg(test)]
mod builtin_tests;
