//! Findings at or above the fail level as GitHub workflow commands
//! (`::error title=...::...`), so a CI run shows them as annotations.
//! The text is the watched system's: it is escaped for the terminal first,
//! then for the workflow command, so it cannot end the command, start a
//! new one or set a property of its own.

use super::Report;
use crate::event::Severity;

/// GitHub shows at most 10 error annotations per step; what is past them is
/// said in one notice.
pub const MAX_ANNOTATIONS: usize = 10;

/// The workflow command lines for the report's signals and notable events
/// at or above `fail_on` (signals first: they are what a reader acts on),
/// at most `MAX_ANNOTATIONS` of them, then a notice of how many more.
pub fn workflow_commands(r: &Report, fail_on: Severity) -> Vec<String> {
    let mut findings: Vec<(String, String)> = Vec::new();
    for g in r.signals.iter().filter(|g| g.severity >= fail_on) {
        findings.push((
            format!(
                "bee-trace {} signal {}",
                g.severity.as_str().to_uppercase(),
                g.rule
            ),
            super::signal_line(g),
        ));
    }
    for e in r.notable_events.iter().filter(|e| e.severity >= fail_on) {
        let line = crate::sink::human::human(e);
        // The line without its time, severity and type: the title says them.
        let sev = e.severity.as_str().to_uppercase();
        let rest = line
            .strip_prefix(e.ts.as_str())
            .unwrap_or(&line)
            .trim_start();
        let rest = rest.strip_prefix(sev.as_str()).unwrap_or(rest).trim_start();
        let text = rest
            .strip_prefix(e.kind)
            .unwrap_or(rest)
            .trim_start()
            .to_string();
        findings.push((
            format!(
                "bee-trace {} {}",
                e.severity.as_str().to_uppercase(),
                e.kind
            ),
            text,
        ));
    }
    let mut out: Vec<String> = findings
        .iter()
        .take(MAX_ANNOTATIONS)
        .map(|(title, text)| format!("::error title={}::{}", property(title), data(text)))
        .collect();
    if findings.len() > MAX_ANNOTATIONS {
        out.push(format!(
            "::notice title=bee-trace::{}",
            data(&format!(
                "{} more findings at or above {fail_on}: see the job summary and the report",
                findings.len() - MAX_ANNOTATIONS
            ))
        ));
    }
    out
}

/// A workflow command's message: `%`, CR and LF are what end or split it.
fn data(s: &str) -> String {
    let shown = crate::escape::terminal(s);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A property value: also `:` (which ends the properties) and `,` (which
/// starts another).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;
    use crate::sink::human::tests::sample;

    #[test]
    fn a_finding_becomes_one_error_command_and_cannot_forge_another() {
        let mut e = sample();
        if let Detail::File { path, .. } = &mut e.detail {
            *path = "/x%0A::warning::forged,title=y:z\n::error::two\r".into();
        }
        let r = super::super::tests::report(vec![e]);
        let lines = workflow_commands(&r, Severity::High);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let l = &lines[0];
        assert!(
            l.starts_with("::error title=bee-trace CRITICAL file::read /x%250A"),
            "{l}"
        );
        assert!(!l.contains('\n') && !l.contains('\r'), "{l}");
    }

    #[test]
    fn below_the_level_nothing_and_past_ten_a_notice() {
        let r = super::super::tests::report(vec![sample(); 12]);
        assert!(workflow_commands(&r, Severity::Critical).len() == 11);
        let lines = workflow_commands(&r, Severity::Critical);
        assert!(
            lines[10].starts_with("::notice title=bee-trace::2 more findings"),
            "{lines:?}"
        );
        let mut info = sample();
        info.severity = Severity::Warning;
        let r = super::super::tests::report(vec![info]);
        assert!(workflow_commands(&r, Severity::High).is_empty());
    }

    #[test]
    fn property_values_escape_their_separators() {
        assert_eq!(property("a:b,c%d\ne"), "a%3Ab%2Cc%25d\\x0ae");
    }
}
