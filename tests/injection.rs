//! Terminal and report injection, for real: an unprivileged user names a
//! watched file and a program with escape sequences, line breaks, a forged
//! event line and HTML, then opens the file. The human output keeps one line
//! per event with no byte a terminal acts on, and the Markdown report has no
//! HTML, no line break and no heading or "Lost events" line of theirs.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;

/// What the forged lines start with: a timestamp no real event has.
const FORGED_TS: &str = "2001-01-01T00:00:00";

/// The file's name: a retitle, a screen clear, CR, LF and a whole forged
/// event line, raw HTML (no `</...>`: a name holds no slash), a CR-started heading,
/// a line separator and a byte that is not UTF-8.
fn file_name() -> Vec<u8> {
    let mut n = b"k\x1b]0;pwned\x07\x1b[2J\r\n".to_vec();
    n.extend_from_slice(FORGED_TS.as_bytes());
    n.extend_from_slice(b".000000Z INFO     file    read forged (x, ok) by sh[1] uid=0\n");
    n.extend_from_slice(b"<details open><img src=x onerror=alert(1)>|x|\r# Lost events: 0\r\n");
    n.extend_from_slice("Lost events: 0\u{2028}\u{85}\x7f".as_bytes());
    n.push(0xff);
    n
}

/// The program's name (what comm and argv[0] carry): a screen clear and a
/// line break within comm's 15 bytes, then a forged line.
fn program_name() -> Vec<u8> {
    let mut n = b"c\x1b[2J\r\n# x<b>\x1b]0;".to_vec();
    n.extend_from_slice(FORGED_TS.as_bytes());
    n.extend_from_slice(b" INFO forged\n");
    n
}

#[test]
fn watched_text_cannot_forge_lines_or_markup() {
    if !root_or_skip("watched_text_cannot_forge_lines_or_markup") {
        return;
    }
    let s = Scratch::new("inject");
    let watched = s.path("w");
    let bin = s.path("bin");
    for d in [&watched, &bin] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let cfg = write_policy(
        &s,
        &format!("files:\n  watch_read: [\"{}/*\"]\n", watched.display()),
    );
    let md = s.path("report.md");
    let mon = Monitor::start_as(
        &s.0,
        "",
        "human",
        &["--config", &cfg, "--report-md", md.to_str().unwrap()],
    );

    let file = watched.join(OsStr::from_bytes(&file_name()));
    let prog = bin.join(OsStr::from_bytes(&program_name()));
    // The attacker creates and reads the file, then reads it again through
    // a program of theirs whose name is the second payload.
    // /usr/bin/python3: root's PATH may name a python nobody cannot run.
    run(Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import os,sys; p=os.fsencode(sys.argv[1]); open(p,'w').write('x'); open(p).read(); os.symlink('/bin/cat', os.fsencode(sys.argv[2]))",
        ])
        .arg(&file)
        .arg(&prog)
        .uid(65534)
        .gid(65534));
    run(Command::new(&prog).arg(&file).uid(65534).gid(65534));
    let human_text = mon.stop_text();
    let report = std::fs::read_to_string(&md).unwrap();
    let stderr = std::fs::read_to_string(s.path("stderr.txt")).unwrap();

    // Every way the output went wrong, so one run shows them all.
    let mut wrong = terminal_problems("human output", &human_text);
    wrong.extend(terminal_problems("stderr", &stderr));
    wrong.extend(markdown_problems(&report));
    // python's exec, its write and read, the program's exec and read.
    let reported = human_text.lines().filter(|l| l.contains("pwned")).count();
    if reported != 5 {
        wrong.push(format!("{reported} lines name the file, not 5"));
    }
    // The invalid byte is shown as itself, not as U+FFFD.
    if !human_text.contains("\\x1b]0;pwned\\x07") || !human_text.contains("\\x7f\\xff") {
        wrong.push("the file's name is not shown escaped".into());
    }
    assert!(
        wrong.is_empty(),
        "{}\n--- human output:\n{human_text}\n--- report:\n{report}",
        wrong.join("\n")
    );
}

/// One event per line: nothing but printable text and the line ends, and
/// no line that the attacker started.
fn terminal_problems(what: &str, text: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    if text.contains('\r') {
        wrong.push(format!("{what} holds a CR"));
    }
    for (i, l) in text.lines().enumerate() {
        if let Some(c) = l
            .chars()
            .find(|c| c.is_control() || ('\u{2028}'..='\u{2029}').contains(c))
        {
            wrong.push(format!("{what} line {i} holds {c:?}: {l:?}"));
        }
        if l.starts_with(FORGED_TS) || l.starts_with("# x") {
            wrong.push(format!("{what} line {i} is forged: {l:?}"));
        }
    }
    wrong
}

/// The report names the file, and nothing of it is HTML, a line break, a
/// heading, a lost count or a table cell.
fn markdown_problems(report: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    if !report.contains("pwned") {
        wrong.push("the file is not among the report's notable events".into());
    }
    for bad in [
        "\r", "<img", "<details", "<b>", "\u{2028}", "\u{85}", "\x1b",
    ] {
        if report.contains(bad) {
            wrong.push(format!("{bad:?} in the report"));
        }
    }
    let ours = [
        "# bee-trace report",
        "## Signals",
        "## Events",
        "## Notable events",
    ];
    // A viewer ends a line at a lone CR too.
    for l in report.split(['\r', '\n']) {
        if l.starts_with('#') && !ours.contains(&l) {
            wrong.push(format!("a heading that is not ours: {l:?}"));
        }
        if l.starts_with("Lost events") && !l.starts_with("Lost events: **") {
            wrong.push(format!("a forged lost count: {l:?}"));
        }
        if l.contains("pwned") && l.matches("&#124;").count() < 2 {
            wrong.push(format!("the attacker's pipes are cells: {l:?}"));
        }
    }
    wrong
}
