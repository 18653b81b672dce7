//! `bee-trace rules`: the rules in force, counted or listed.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::RulesArgs;
use crate::rules::{self, RuleSet};

pub fn run(args: &RulesArgs) -> Result<ExitCode> {
    let set = rules::load(args.rules.as_deref())?;
    let mut out = io::stdout().lock();
    match write_rules(&mut out, &set, args.list, args.rules.as_deref()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The reader has all it wanted (`rules --list | head`): a listing
        // cut short by its reader is not a failure of bee-trace, so it
        // stops quietly with success, as other filters do.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write the rule list to standard output"),
    }
}

/// The count, or with `list` every rule, written to `out` and flushed.
fn write_rules(
    out: &mut impl Write,
    set: &RuleSet,
    list: bool,
    dir: Option<&Path>,
) -> io::Result<()> {
    if !list {
        writeln!(
            out,
            "{} rules loaded (built-in pack{}); --list shows them",
            set.rules.len(),
            dir.map(|d| format!(" and {}", d.display()))
                .unwrap_or_default()
        )?;
        return out.flush();
    }
    for r in &set.rules {
        writeln!(
            out,
            "{:<40} {:<8} [{}] ({})\n    {}",
            r.name,
            r.severity.as_str(),
            r.tags.join(", "),
            r.source,
            r.description
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that takes `room` bytes, then closes its end.
    struct ClosesAfter {
        room: usize,
        took: Vec<u8>,
    }

    impl Write for ClosesAfter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let n = b.len().min(self.room);
            self.room -= n;
            self.took.extend_from_slice(&b[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn builtin() -> RuleSet {
        rules::load(None).unwrap()
    }

    #[test]
    fn the_list_is_every_rule_with_its_severity() {
        let mut out = Vec::new();
        write_rules(&mut out, &builtin(), true, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("credential-read-then-egress"), "{text}");
        assert!(text.contains(" critical "), "{text}");
        assert_eq!(text.lines().count(), 2 * builtin().rules.len());
    }

    #[test]
    fn a_reader_that_closes_early_is_a_broken_pipe_not_a_panic() {
        let mut out = ClosesAfter {
            room: 10,
            took: Vec::new(),
        };
        let e = write_rules(&mut out, &builtin(), true, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(out.took, b"credential");
    }

    #[test]
    fn the_count_names_the_directory() {
        let mut out = Vec::new();
        write_rules(&mut out, &builtin(), false, Some(Path::new("/etc/r"))).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("(built-in pack and /etc/r); --list shows them\n"),
            "{text}"
        );
    }
}
