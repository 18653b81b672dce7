//! Where judged events go: the event stream (human lines, NDJSON, signed by
//! `evidence`), the record (`record`), the rules engine, and the most severe
//! events and signals kept for the reports; `redact` cleans what any of them
//! sees, `ratelimit` bounds the stream. Nothing is dropped silently: a line that could not
//! be written is counted (and said at once on stderr), and what the reports
//! cannot hold is the least severe.

pub mod evidence;
pub mod human;
pub mod ratelimit;
pub mod record;
pub mod redact;

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::event::{Event, Severity};
use crate::{report, rules};
use ratelimit::RateLimit;

/// The form of the event stream: human lines, or NDJSON (the event types'
/// own serialisation; a signed stream is always NDJSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Under constant load the output is still flushed this often, so a reader
/// of --output never waits longer for an event.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Buffered bytes that make a flush happen before the next tick.
const BUFFER: usize = 64 * 1024;

/// A line-oriented writer that counts the lines it could not write. Write
/// errors are kept (the first), said once on stderr when they start, and
/// every line still unwritten when one happens is counted lost.
pub struct Lines {
    inner: Box<dyn Write>,
    buf: Vec<u8>,
    /// Lines that never reached the file.
    pub lost: u64,
    pub error: Option<io::Error>,
    what: String,
}

impl Lines {
    pub fn new(inner: Box<dyn Write>, what: impl Into<String>) -> Lines {
        Lines {
            inner,
            buf: Vec::with_capacity(BUFFER),
            lost: 0,
            error: None,
            what: what.into(),
        }
    }

    /// Queues one line (a newline is added).
    pub fn line(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(b'\n');
        if self.buf.len() >= BUFFER {
            self.flush();
        }
    }

    /// Writes what is queued. A line cut by an error counts as lost.
    pub fn flush(&mut self) {
        let mut done = 0;
        let mut failed = None;
        while done < self.buf.len() {
            match self.inner.write(&self.buf[done..]) {
                Ok(0) => {
                    failed = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let failed = failed.or_else(|| self.inner.flush().err());
        if let Some(e) = failed {
            let unwritten = self.buf[done..].iter().filter(|b| **b == b'\n').count() as u64;
            self.lost += unwritten;
            if self.error.is_none() {
                eprintln!(
                    "bee-trace: cannot write {}: {e}; events are being lost (each is counted in the summary and reports)",
                    self.what
                );
                self.error = Some(e);
            }
        }
        self.buf.clear();
    }
}

/// At most `cap` items, the most severe kept: once full, a new item
/// replaces the least severe (the latest of those) if it is more severe.
/// Read back in the order they came.
#[derive(Debug)]
pub struct MostSevere<T> {
    cap: usize,
    items: Vec<(Severity, u64, T)>,
    seq: u64,
    /// Items not kept (left out, or pushed out by a more severe one).
    pub left_out: u64,
}

impl<T> MostSevere<T> {
    pub fn new(cap: usize) -> MostSevere<T> {
        MostSevere {
            cap,
            items: Vec::new(),
            seq: 0,
            left_out: 0,
        }
    }

    pub fn push(&mut self, sev: Severity, item: T) {
        self.seq += 1;
        if self.items.len() < self.cap {
            self.items.push((sev, self.seq, item));
            return;
        }
        self.left_out += 1;
        // The least severe, and of those the latest, goes first.
        let weakest = self
            .items
            .iter()
            .enumerate()
            .min_by_key(|(_, (s, q, _))| (*s, std::cmp::Reverse(*q)))
            .map(|(i, (s, _, _))| (i, *s));
        if let Some((i, s)) = weakest {
            if sev > s {
                self.items[i] = (sev, self.seq, item);
            }
        }
    }

    pub fn truncated(&self) -> bool {
        self.left_out > 0
    }

    /// The kept items, in the order they were pushed.
    pub fn take(&mut self) -> Vec<T> {
        let mut v = std::mem::take(&mut self.items);
        v.sort_by_key(|(_, q, _)| *q);
        v.into_iter().map(|(_, _, t)| t).collect()
    }
}

pub struct Sink {
    pub out: Lines,
    pub format: Format,
    pub flush_each: bool,
    pub notable: MostSevere<Event>,
    pub rate: RateLimit,
    /// A serialisation failure (never expected), reported at the end.
    pub encode_error: Option<serde_json::Error>,
    pub last_flush: Instant,
    pub signer: Option<evidence::Signer>,
    pub recorder: Option<record::Recorder>,
    pub engine: rules::Engine,
    pub signals: MostSevere<rules::Signal>,
    /// What the verdict is made of: every event and signal, shown or not.
    pub tally: report::verdict::Tally,
    /// What the event stream shows.
    pub view: View,
}

/// What of the judged events the event stream shows, and how.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Events and signals below it are not written to the stream.
    pub min_severity: Severity,
    /// INFO exec and exit lines are left out (a CI log's default).
    pub hide_info_process: bool,
    /// Human lines get their severity coloured (a terminal without NO_COLOR).
    pub colour: bool,
}

impl Default for View {
    fn default() -> View {
        View {
            min_severity: Severity::Info,
            hide_info_process: false,
            colour: false,
        }
    }
}

impl View {
    fn shows(&self, sev: Severity, kind: &str) -> bool {
        sev >= self.min_severity
            && !(self.hide_info_process && kind == "process" && sev == Severity::Info)
    }
}

impl Sink {
    pub fn new(
        out: Lines,
        format: Format,
        flush_each: bool,
        max_rate: u64,
        signer: Option<evidence::Signer>,
        recorder: Option<record::Recorder>,
        engine: rules::Engine,
    ) -> Sink {
        Sink {
            out,
            format,
            flush_each,
            notable: MostSevere::new(report::MAX_REPORTED),
            rate: RateLimit::new(max_rate),
            encode_error: None,
            last_flush: Instant::now(),
            signer,
            recorder,
            engine,
            signals: MostSevere::new(report::MAX_REPORTED),
            tally: report::verdict::Tally::default(),
            view: View::default(),
        }
    }

    pub fn deliver(&mut self, ev: Event) {
        // One serialisation serves the record, the NDJSON stream and its
        // signature.
        let obj = match serde_json::to_string(&ev) {
            Ok(o) => o,
            Err(e) => {
                self.out.lost += 1;
                self.encode_error.get_or_insert(e);
                return;
            }
        };
        // The record and the rules see everything, even what the rate limit
        // holds back, and see it as the record stores it.
        if let Some(r) = &mut self.recorder {
            r.line(&obj);
        }
        let signals = match serde_json::to_value(&ev) {
            Ok(v) => self.engine.push(&v),
            Err(_) => Vec::new(),
        };
        self.tally.event(&ev);
        if self.view.shows(ev.severity, ev.kind) && self.rate.admit() {
            let colour = self.view.colour.then_some(ev.severity);
            self.write(&obj, || human::coloured(human::human(&ev), colour));
            if self.flush_each
                || ev.severity >= Severity::High
                || self.last_flush.elapsed() >= FLUSH_EVERY
            {
                self.flush();
            }
        }
        if ev.severity >= Severity::Warning {
            self.notable.push(ev.severity, ev);
        }
        for g in signals {
            self.signal(g);
        }
    }

    /// A rule matched: written at once (never rate-limited), kept for the
    /// summary and reports.
    pub fn signal(&mut self, g: rules::Signal) {
        self.tally.signal(&g);
        if self.view.shows(g.severity, "signal") {
            let colour = self.view.colour.then_some(g.severity);
            match serde_json::to_string(&g) {
                Ok(obj) => self.write(&obj, || human::coloured(human::signal_human(&g), colour)),
                Err(e) => {
                    self.out.lost += 1;
                    self.encode_error.get_or_insert(e);
                }
            }
            self.flush();
        }
        self.signals.push(g.severity, g);
    }

    /// Writes one record of the event stream: signed, NDJSON, or the human
    /// line. `obj` is its JSON object.
    fn write(&mut self, obj: &str, human: impl FnOnce() -> String) {
        if self.signer.is_none() && self.format == Format::Human {
            self.out.line(&human());
        } else {
            let line = evidence::line(&mut self.signer, obj);
            self.out.line(&line);
        }
    }

    /// Ends a signed stream with its seal, and the record.
    pub fn seal(&mut self) {
        if let Some(s) = &mut self.signer {
            let line = s.seal();
            self.out.line(&line);
        }
        if let Some(r) = &mut self.recorder {
            r.finish();
        }
        self.flush();
    }

    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        self.out.flush();
        if let Some(r) = &mut self.recorder {
            r.flush();
        }
    }

    /// Lines of the record that were not written.
    pub fn record_lost(&self) -> u64 {
        self.recorder.as_ref().map_or(0, |r| r.out.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes `room` bytes, then fails like a full disk.
    struct Full {
        room: usize,
        got: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = b.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_a_full_disk_refuses_is_counted() {
        let mut l = Lines::new(
            Box::new(Full {
                room: 25,
                got: vec![],
            }),
            "test",
        );
        for i in 0..10 {
            l.line(&format!("line {i:04}")); // 10 bytes with the newline
        }
        l.flush();
        // Two whole lines fit; the third is cut, so it is lost too.
        assert_eq!(l.lost, 8);
        assert!(l.error.is_some());
        l.line("more");
        l.flush();
        assert_eq!(l.lost, 9);
    }

    #[test]
    fn the_most_severe_are_kept_in_their_order() {
        let mut m = MostSevere::new(3);
        m.push(Severity::Warning, 1);
        m.push(Severity::Warning, 2);
        m.push(Severity::High, 3);
        m.push(Severity::Warning, 4); // not more severe than any kept: left out
        m.push(Severity::Critical, 5); // replaces warning 2, the latest warning
        assert!(m.truncated());
        assert_eq!(m.left_out, 2);
        assert_eq!(m.take(), vec![1, 3, 5]);
    }

    /// The NDJSON form is the event's own serialisation.
    #[test]
    fn json_has_the_documented_fields() {
        let v: serde_json::Value = serde_json::to_value(human::tests::sample()).unwrap();
        for k in [
            "type",
            "ts",
            "pid",
            "ppid",
            "uid",
            "comm",
            "exe",
            "ancestors",
            "severity",
            "path",
            "access",
            "result",
        ] {
            assert!(v.get(k).is_some(), "missing {k} in {v}");
        }
        assert_eq!(v["type"], "file");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["ancestors"][0]["comm"], "sh");
    }

    /// A writer that returns `script` in turn, then takes everything.
    struct Scripted {
        script: Vec<io::Result<usize>>,
        got: Vec<u8>,
    }

    impl Write for Scripted {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.script.is_empty() {
                self.got.extend_from_slice(b);
                return Ok(b.len());
            }
            let r = self.script.remove(0);
            if let Ok(n) = r {
                self.got.extend_from_slice(&b[..n]);
            }
            r
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_interrupted_write_is_retried_and_loses_nothing() {
        let w = Scripted {
            script: vec![Err(io::ErrorKind::Interrupted.into()), Ok(3)],
            got: Vec::new(),
        };
        let mut l = Lines::new(Box::new(w), "test");
        l.line("abcdef");
        l.flush();
        assert_eq!((l.lost, l.error.is_none()), (0, true));
    }

    #[test]
    fn a_writer_that_takes_nothing_loses_the_lines_as_a_write_error() {
        let w = Scripted {
            script: vec![Ok(4), Ok(0)],
            got: Vec::new(),
        };
        let mut l = Lines::new(Box::new(w), "test");
        l.line("one");
        l.line("two");
        l.line("three");
        l.flush();
        // "one\n" went; the other two did not.
        assert_eq!(l.lost, 2);
        assert_eq!(
            l.error.as_ref().map(io::Error::kind),
            Some(io::ErrorKind::WriteZero)
        );
    }

    #[test]
    fn a_long_burst_is_written_before_the_flush_tick() {
        let mut l = Lines::new(
            Box::new(Full {
                room: usize::MAX,
                got: vec![],
            }),
            "test",
        );
        let line = "x".repeat(1023);
        for _ in 0..64 {
            l.line(&line);
        }
        assert!(l.buf.is_empty(), "64 KiB queued is written at once");
        l.line("y");
        assert_eq!(l.buf, b"y\n");
    }
}
