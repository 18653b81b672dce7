//! `--record FILE`: every event after policy filtering (and redaction), as
//! NDJSON after a header that names the schema version, for replay through
//! the rules later. Signed like the event stream when a key is given.

use std::fs::File;
use std::path::Path;

use crate::evidence::Signer;

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
        let line = crate::evidence::line(&mut self.signer, obj);
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
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: line 1 is not a bee-trace record header")]
    NoHeader(String),
    #[error("{0}: record schema {1} is newer than this bee-trace reads ({SCHEMA}); use a newer bee-trace")]
    Schema(String, u64),
    #[error("{0}: line {1}: {2}")]
    Line(String, usize, String),
}

/// Reads a record: its events in order (the header and any seal skipped;
/// `seq`/`mac` fields are left in place and ignored by the rules).
pub fn read(path: &Path) -> Result<Vec<serde_json::Value>, ReadError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ReadError::Io(name.clone(), e))?;
    let mut lines = text.lines().enumerate();
    let header: serde_json::Value = lines
        .next()
        .and_then(|(_, l)| serde_json::from_str(l).ok())
        .ok_or_else(|| ReadError::NoHeader(name.clone()))?;
    if header["type"] != "record" {
        return Err(ReadError::NoHeader(name));
    }
    let schema = header["schema"].as_u64().unwrap_or(0);
    if schema > u64::from(SCHEMA) || schema == 0 {
        return Err(ReadError::Schema(name, schema));
    }
    let mut out = Vec::new();
    for (i, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(l)
            .map_err(|e| ReadError::Line(name.clone(), i + 1, e.to_string()))?;
        if v["type"] == "seal" {
            continue;
        }
        if !v["type"].is_string() || !v["id"].is_u64() || !v["ts"].is_string() {
            return Err(ReadError::Line(
                name,
                i + 1,
                "not an event (type, id and ts are required)".into(),
            ));
        }
        out.push(v);
    }
    Ok(out)
}
