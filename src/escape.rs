//! Text from the watched system, made safe for where it is written: one
//! function per medium (`terminal` for the terminal and human files,
//! `markdown` for the Markdown report) and `decode` for kernel bytes that are
//! not valid UTF-8. NDJSON needs none of these: serde_json escapes it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters a terminal or a viewer would act on rather than show: C0, DEL
/// and C1 controls (U+0085 included), line and paragraph separators, and the
/// bidirectional marks, embeddings, overrides and isolates that reorder what
/// is shown (a path can be made to read backwards).
fn acts(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// How an acting character is shown: `\xNN` for ASCII, `\u{N}` otherwise,
/// so `\x80`..`\xff` always means an invalid byte (see `decode`).
fn push_shown(out: &mut String, c: char) {
    let n = u32::from(c);
    let _ = if n < 0x80 {
        write!(out, "\\x{n:02x}")
    } else {
        write!(out, "\\u{{{n:x}}}")
    };
}

/// `s` for a terminal or a human-readable file: every character that is
/// not shown as itself (see `acts`) is written as an escape, so nothing can
/// move the cursor, retitle the window, clear the screen or start a line.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if acts(c) {
            push_shown(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` for one cell or line of the Markdown report: no line break of any
/// kind (so no row, heading or paragraph can be started), and HTML and the
/// Markdown that could open a tag, an entity, a code span, a link or a new
/// table cell written as entities.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '|' => out.push_str("&#124;"),
            '`' => out.push_str("&#96;"),
            '\\' => out.push_str("&#92;"),
            '[' => out.push_str("&#91;"),
            ']' => out.push_str("&#93;"),
            c if acts(c) => push_shown(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Text of bytes the kernel copied (names, paths, arguments): valid UTF-8 as
/// it is, each invalid byte as `\xNN`. Two different names never become the
/// same text the way a lossy conversion's U+FFFD makes them.
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A path from the filesystem (a glob's match, a link target) as `decode`
/// shows it.
pub fn decode_path(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    decode(p.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_shows_every_control_and_reordering_character() {
        assert_eq!(
            terminal("a\x1b]0;pwned\x07b\x1b[2J\r\n\t\x7f"),
            "a\\x1b]0;pwned\\x07b\\x1b[2J\\x0d\\x0a\\x09\\x7f"
        );
        assert_eq!(terminal("x\u{85}y\u{9b}"), "x\\u{85}y\\u{9b}");
        assert_eq!(
            terminal("\u{2028}\u{2029}\u{202e}\u{2066}\u{2069}\u{200f}"),
            "\\u{2028}\\u{2029}\\u{202e}\\u{2066}\\u{2069}\\u{200f}"
        );
    }

    #[test]
    fn terminal_leaves_ordinary_text_alone_and_borrowed() {
        for s in ["/usr/bin/cat", "résumé ü 日本", "a b 'c' \\x41", ""] {
            assert!(matches!(terminal(s), Cow::Borrowed(t) if t == s), "{s}");
        }
    }

    #[test]
    fn markdown_cannot_open_html_rows_or_lines() {
        let out = markdown("x</details><img src=x onerror=alert(1)>|`a`\r\n# Lost events: 0");
        assert_eq!(
            out,
            "x&lt;/details&gt;&lt;img src=x onerror=alert(1)&gt;&#124;&#96;a&#96;\\x0d\\x0a# Lost events: 0"
        );
        assert_eq!(markdown("a\u{2028}b\u{85}c"), "a\\u{2028}b\\u{85}c");
        assert_eq!(
            markdown("[x](javascript:y) \\ \"q\" 'r' &amp;"),
            "&#91;x&#93;(javascript:y) &#92; &quot;q&quot; &#39;r&#39; &amp;amp;"
        );
        assert_eq!(markdown("/home/ci/.ssh/id_rsa"), "/home/ci/.ssh/id_rsa");
    }

    #[test]
    fn decode_keeps_invalid_bytes_apart() {
        assert_eq!(decode(b"ok/\xff\xfe.txt"), "ok/\\xff\\xfe.txt");
        assert_ne!(decode(b"a\xff"), decode(b"a\xfe"));
        assert_eq!(decode("é".as_bytes()), "é");
        // A multi-byte character cut by a bound: its bytes are shown.
        assert_eq!(decode(&"é".as_bytes()[..1]), "\\xc3");
        assert_eq!(decode(b""), "");
    }
}
