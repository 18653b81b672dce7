//! `bee-trace replay`: a record run through the rules, its signals printed as NDJSON.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ReplayArgs;
use crate::rules;
use crate::sink::record;

pub fn run(args: &ReplayArgs) -> Result<ExitCode> {
    let (file, dir) = (args.file.as_path(), args.rules.as_deref());
    let (since, until) = (args.since.as_deref(), args.until.as_deref());
    let bound = |t: Option<&str>, what: &str| -> Result<Option<u64>> {
        t.map(|t| {
            rules::parse_ts(t).ok_or_else(|| {
                anyhow::anyhow!(
                    "--{what} {t}: expected an RFC 3339 UTC time (before 2554) such as 2026-11-22T10:00:00Z"
                )
            })
        })
        .transpose()
    };
    let (since, until) = (bound(since, "since")?, bound(until, "until")?);
    let mut engine = rules::Engine::new(rules::load(dir)?);
    // An --output event stream given by mistake is named as such by record::read.
    let events = record::read(file)?;
    let mut out = BufWriter::new(std::io::stdout());
    let (mut n, mut signals) = (0u64, 0u64);
    for ev in &events {
        let ts = ev["ts"].as_str().and_then(rules::parse_ts).unwrap_or(0);
        if since.is_some_and(|s| ts < s) || until.is_some_and(|u| ts >= u) {
            continue;
        }
        n += 1;
        for g in engine.push(ev) {
            signals += 1;
            writeln!(out, "{}", serde_json::to_string(&g)?)?;
        }
    }
    out.flush()?;
    eprintln!("bee-trace replay: {n} events, {signals} signals");
    Ok(ExitCode::SUCCESS)
}
