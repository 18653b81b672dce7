//! `bee-trace replay`: a record run through the rules, its signals printed as NDJSON.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::Value;

use crate::cli::ReplayArgs;
use crate::{input, record, rules};

/// How much of the first line is looked at to tell an event stream.
const FIRST_LINE_MAX: usize = 64 << 10;

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
    let events = read_record(file)?;
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

/// Reads the record at `path`, as `record::read` does; a file that is an
/// `--output` event stream instead is named as such, since both are NDJSON
/// and the one is easily taken for the other.
fn read_record(path: &Path) -> Result<Vec<Value>> {
    let name = path.display().to_string();
    let (file, meta) = input::open_regular(path, "record", input::Trust::Data)?;
    if meta.len() > input::LOG_MAX {
        return Err(record::ReadError::TooLarge(name).into());
    }
    // The same open file, read at offset 0: the name is not looked up twice.
    let first = file.try_clone()?;
    match record::read_from(file, &name) {
        Err(record::ReadError::NoHeader(_)) if starts_with_event(&first) => Err(anyhow::anyhow!(
            "{name} is an event stream (written with --output), not a record: replay reads \
                 the file written with --record FILE; run bee-trace with --record to keep one"
        )),
        r => Ok(r?),
    }
}

fn starts_with_event(f: &File) -> bool {
    let mut buf = vec![0u8; FIRST_LINE_MAX];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    let line = buf[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    is_event(line)
}

/// An event of the NDJSON stream: the fields every event starts with.
fn is_event(line: &[u8]) -> bool {
    serde_json::from_slice::<Value>(line)
        .is_ok_and(|v| v["type"].is_string() && v["id"].is_u64() && v["ts"].is_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str =
        r#"{"type":"file","id":1,"ts":"2026-11-22T10:00:00.000001Z","pid":7,"comm":"cat"}"#;

    fn scratch(tag: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("bt-replay-{tag}-{}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn an_output_stream_is_named_and_the_record_flag_suggested() {
        let p = scratch("stream", &format!("{EVENT}\n{EVENT}\n"));
        let e = read_record(&p).unwrap_err().to_string();
        std::fs::remove_file(&p).unwrap();
        assert!(
            e.contains("is an event stream (written with --output)"),
            "{e}"
        );
        assert!(e.contains("--record FILE"), "{e}");
    }

    #[test]
    fn other_files_without_a_header_keep_the_records_own_error() {
        let p = scratch("junk", "hello\n");
        let e = read_record(&p).unwrap_err().to_string();
        std::fs::remove_file(&p).unwrap();
        assert!(e.contains("line 1 is not a bee-trace record header"), "{e}");
        assert!(!is_event(
            br#"{"type":"record","schema":1,"tool":"bee-trace"}"#
        ));
        assert!(is_event(EVENT.as_bytes()));
    }

    #[test]
    fn a_record_still_reads() {
        let header = r#"{"type":"record","schema":1,"tool":"bee-trace"}"#;
        let p = scratch("record", &format!("{header}\n{EVENT}\n"));
        let events = read_record(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(events.len(), 1);
    }
}
