//! bee-trace as a library: every stage from the kernel's records to the
//! reports, so the pure parts (policy, rules, decoding, redaction, replay,
//! verify, reports) are tested and fuzzed without root. `main.rs` parses the
//! command line and runs one command.

pub mod abi;
pub mod agent;
pub mod canary;
pub mod cli;
pub mod commands;
pub mod decoy;
pub mod escape;
pub mod event;
pub mod fsafe;
pub mod input;
pub mod kernel;
pub mod outfile;
pub mod peers;
pub mod pipeline;
pub mod policy;
pub mod privs;
pub mod report;
pub mod rules;
pub mod session;
pub mod sink;
pub mod sys;
pub mod watchdog;
