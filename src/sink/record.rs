//! `--record FILE`: every event after policy filtering (and redaction), as
//! NDJSON after a header that names the schema version, for replay through
//! the rules later. Signed like the event stream when a key is given.

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;

use super::evidence::Signer;

/// Version of the record format; bumped when a replay could misread an
/// older record.
pub const SCHEMA: u32 = 1;

pub struct Recorder {
    pub out: crate::sink::Lines,
    signer: Option<Signer>,
}

impl Recorder {
    /// Writes the header to `file` (opened by `outfile::open`).
    pub fn create(file: File, key: Option<Vec<u8>>, started: &str, path: &Path) -> Recorder {
        let mut r = Recorder {
            out: crate::sink::Lines::new(Box::new(file), format!("the record {}", path.display())),
            signer: key.map(Signer::new),
        };
        let header = serde_json::json!({
            "type": "record",
            "schema": SCHEMA,
            "tool": "bee-trace",
            "version": env!("CARGO_PKG_VERSION"),
            "started": started,
        });
        r.line(&header.to_string());
        r
    }

    /// Writes one record: `obj` is the event's JSON object.
    pub fn line(&mut self, obj: &str) {
        let line = super::evidence::line(&mut self.signer, obj);
        self.out.line(&line);
    }

    pub fn flush(&mut self) {
        self.out.flush()
    }

    /// Seals a signed record and flushes.
    pub fn finish(&mut self) {
        if let Some(s) = &mut self.signer {
            let seal = s.seal();
            self.out.line(&seal);
        }
        self.out.flush()
    }
}

/// Why a record cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: line 1 is not a bee-trace record header")]
    NoHeader(String),
    #[error("{0}: line 1 is an event, not a record header: this is an event stream (--output); replay reads what --record wrote, so run with --record FILE and replay that")]
    EventStream(String),
    #[error("{0}: record schema {1} is newer than this bee-trace reads ({SCHEMA}); use a newer bee-trace")]
    Schema(String, u64),
    #[error("{0}: line {1}: {2}")]
    Line(String, usize, String),
    #[error("{0}: line {1} is longer than {LINE_MAX} bytes: not a record bee-trace wrote")]
    LongLine(String, usize),
    #[error("{0} is larger than {max} bytes, the most bee-trace replays", max = crate::input::LOG_MAX)]
    TooLarge(String),
}

/// Longest record line read (an event is a few KiB at most).
pub const LINE_MAX: usize = 1 << 20;

/// Reads a record: its events in order (the header and any seal skipped;
/// `seq`/`mac` fields are left in place and ignored by the rules). The
/// file must be a regular file; it is read a bounded line at a time.
pub fn read(path: &Path) -> Result<Vec<serde_json::Value>, ReadError> {
    use crate::input::{open_regular, Trust, LOG_MAX};
    let name = path.display().to_string();
    let (file, meta) = open_regular(path, "record", Trust::Data)?;
    if meta.len() > LOG_MAX {
        return Err(ReadError::TooLarge(name));
    }
    read_from(file, &name)
}

/// Reads a record from `r` (named `name` in errors), as `read` does.
pub fn read_from<R: Read>(r: R, name: &str) -> Result<Vec<serde_json::Value>, ReadError> {
    let name = name.to_string();
    let mut lines = BoundedLines::new(r.take(crate::input::LOG_MAX + 1));
    let header: serde_json::Value = lines
        .next_line()
        .map_err(|e| e.named(&name))?
        .and_then(|l| serde_json::from_slice(&l).ok())
        .ok_or_else(|| ReadError::NoHeader(name.clone()))?;
    if header["type"] != "record" {
        // A signed stream's first line is an event with seq and mac too.
        let event = header["type"].is_string() && header["id"].is_u64();
        return Err(if event {
            ReadError::EventStream(name)
        } else {
            ReadError::NoHeader(name)
        });
    }
    let schema = header["schema"].as_u64().unwrap_or(0);
    if schema > u64::from(SCHEMA) || schema == 0 {
        return Err(ReadError::Schema(name, schema));
    }
    let mut out = Vec::new();
    while let Some(l) = lines.next_line().map_err(|e| e.named(&name))? {
        let n = lines.number;
        if l.trim_ascii().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&l)
            .map_err(|e| ReadError::Line(name.clone(), n, e.to_string()))?;
        if v["type"] == "seal" {
            continue;
        }
        if !v["type"].is_string() || !v["id"].is_u64() || !v["ts"].is_string() {
            return Err(ReadError::Line(
                name,
                n,
                "not an event (type, id and ts are required)".into(),
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// Lines of a reader, each at most LINE_MAX bytes, the whole at most what
/// the reader's `take` allows.
struct BoundedLines<R> {
    inner: std::io::BufReader<std::io::Take<R>>,
    number: usize,
}

/// A line that could not be read, before the file is named.
enum LineError {
    Io(std::io::Error),
    Long(usize),
    TooLarge,
}

impl LineError {
    fn named(self, name: &str) -> ReadError {
        match self {
            LineError::Io(e) => ReadError::Io(name.into(), e),
            LineError::Long(n) => ReadError::LongLine(name.into(), n),
            LineError::TooLarge => ReadError::TooLarge(name.into()),
        }
    }
}

impl<R: Read> BoundedLines<R> {
    fn new(r: std::io::Take<R>) -> Self {
        BoundedLines {
            inner: std::io::BufReader::new(r),
            number: 0,
        }
    }

    fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineError> {
        let mut buf = Vec::new();
        let got = (&mut self.inner)
            .take(LINE_MAX as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(LineError::Io)?;
        if got == 0 {
            return Ok(None);
        }
        self.number += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > LINE_MAX {
            return Err(LineError::Long(self.number));
        }
        if self.inner.get_ref().limit() == 0 {
            return Err(LineError::TooLarge);
        }
        Ok(Some(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tag: &str, text: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("bee-trace-record-{tag}-{}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_events_a_bounded_line_at_a_time() {
        let head = "{\"type\":\"record\",\"schema\":1}\n";
        let ev = "{\"type\":\"file\",\"id\":1,\"ts\":\"2026-01-01T00:00:00Z\"}";
        let p = file("ok", format!("{head}{ev}\n\n{ev}").as_bytes());
        assert_eq!(read(&p).unwrap().len(), 2);
        std::fs::remove_file(&p).unwrap();

        let long = format!("{head}{}\n", "x".repeat(LINE_MAX + 1));
        let p = file("long", long.as_bytes());
        let e = read(&p).unwrap_err();
        assert!(matches!(e, ReadError::LongLine(_, 2)), "{e}");
        std::fs::remove_file(&p).unwrap();

        let e = read(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
    }

    #[test]
    fn an_event_stream_is_told_apart_from_a_record() {
        let ev = "{\"type\":\"file\",\"id\":1,\"ts\":\"2026-01-01T00:00:00Z\"}\n";
        let e = read_from(ev.as_bytes(), "events.ndjson").unwrap_err();
        assert!(matches!(e, ReadError::EventStream(_)), "{e}");
        assert!(e.to_string().contains("--record"), "{e}");
        let e = read_from(&b"hello\n"[..], "x").unwrap_err();
        assert!(matches!(e, ReadError::NoHeader(_)), "{e}");
    }

    const HEAD: &str = "{\"type\":\"record\",\"schema\":1}\n";

    fn err(text: &str) -> String {
        read_from(text.as_bytes(), "r.ndjson")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_record_from_another_version_or_nothing_at_all_is_refused() {
        assert_eq!(
            err("{\"type\":\"record\",\"schema\":2}\n"),
            "r.ndjson: record schema 2 is newer than this bee-trace reads (1); use a newer bee-trace"
        );
        assert_eq!(
            err("{\"type\":\"record\"}\n"),
            "r.ndjson: record schema 0 is newer than this bee-trace reads (1); use a newer bee-trace"
        );
        assert_eq!(err(""), "r.ndjson: line 1 is not a bee-trace record header");
        assert_eq!(
            err("[1]\n"),
            "r.ndjson: line 1 is not a bee-trace record header"
        );
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let ev = "{\"type\":\"file\",\"id\":1,\"ts\":\"2026-01-01T00:00:00Z\"}";
        assert_eq!(
            err(&format!(
                "{HEAD}{ev}\n\n{{\"type\":\"file\",\"ts\":\"t\"}}\n"
            )),
            "r.ndjson: line 4: not an event (type, id and ts are required)"
        );
        let e = err(&format!("{HEAD}{ev}\n{{oops\n"));
        assert!(
            e.starts_with("r.ndjson: line 3: key must be a string"),
            "{e}"
        );
    }

    #[test]
    fn the_seal_and_blank_lines_are_skipped_and_mac_fields_kept() {
        let signed = "{\"type\":\"file\",\"id\":1,\"ts\":\"t\",\"seq\":1,\"mac\":\"ab\"}";
        let text = format!("{HEAD}\n{signed}\n   \n{{\"type\":\"seal\",\"seq\":2}}\n");
        let events = read_from(text.as_bytes(), "r").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["id"], 1);
        assert_eq!(events[0]["mac"], "ab");
    }

    #[test]
    fn a_recorder_writes_its_header_then_each_line_then_a_seal_when_signed() {
        let dir = std::env::temp_dir().join(format!("bee-trace-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (key, lines) in [(None, 2), (Some(b"k".repeat(32)), 3)] {
            let path = dir.join(format!("rec-{lines}"));
            let f = File::create(&path).unwrap();
            let mut r = Recorder::create(f, key.clone(), "2026-01-01T00:00:00Z", &path);
            r.line("{\"type\":\"file\",\"id\":1,\"ts\":\"t\"}");
            r.flush();
            r.finish();
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count(), lines, "{text}");
            let head: serde_json::Value =
                serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(head["type"], "record");
            assert_eq!(head["schema"], SCHEMA);
            assert_eq!(head["started"], "2026-01-01T00:00:00Z");
            assert_eq!(read(&path).unwrap().len(), 1);
            if key.is_some() {
                assert!(text.lines().nth(1).unwrap().contains("\"mac\""), "{text}");
                assert!(text.lines().nth(2).unwrap().contains("\"seal\""), "{text}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
