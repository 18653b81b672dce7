//! How deep a rule condition may nest, and the check that runs before the
//! parser sees it. The parser and the tree built from it recurse once
//! (several frames, ~25 KiB of stack in a debug build) per level, so an
//! unbounded depth (`not(not(...` ten thousand times) would overflow the
//! stack and abort bee-trace instead of refusing the rule.

use super::parse::Pos;

/// Deepest nesting of brackets and `not`s a condition may have.
pub const MAX_NESTING: usize = 32;

/// The position where `text` nests deeper than MAX_NESTING, found without
/// recursing, before the parser sees it: `(` and `[` open a level, and each
/// `not` in a row before a level opens adds one (`not not x` nests too).
pub fn too_deep(text: &str) -> Option<Pos> {
    let (mut line, mut col) = (1usize, 0usize);
    let mut levels: Vec<usize> = Vec::new();
    let (mut nots, mut word) = (0usize, String::new());
    let (mut in_string, mut escaped, mut comment) = (false, false, false);
    for ch in text.chars() {
        col += 1;
        if ch == '\n' {
            (line, col, comment) = (line + 1, 0, false);
        }
        if comment {
            continue;
        }
        if in_string {
            (in_string, escaped) = (escaped || ch != '"', !escaped && ch == '\\');
            continue;
        }
        if ch.is_ascii_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            nots = if word == "not" { nots + 1 } else { 0 };
            word.clear();
        }
        let depth = levels.last().copied().unwrap_or(0);
        match ch {
            '(' | '[' => {
                levels.push(depth + nots + 1);
                nots = 0;
            }
            ')' | ']' => {
                levels.pop();
                nots = 0;
            }
            '"' => in_string = true,
            '#' => comment = true,
            c if c.is_whitespace() => {}
            _ => nots = 0,
        }
        if levels.last().copied().unwrap_or(0) + nots > MAX_NESTING {
            return Some((line, col));
        }
    }
    None
}

/// Deepest tree a condition may compile to once its macros are expanded:
/// each macro is bounded by MAX_NESTING, but a chain of macros using
/// macros would otherwise multiply that.
pub const MAX_TREE_DEPTH: usize = 4 * MAX_NESTING;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_and_nots_not_words_strings_or_comments() {
        assert_eq!(too_deep("nothing and note and not_x"), None);
        let ok = format!("{}x{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(too_deep(&ok), None);
        let over = format!("{}x", "(".repeat(MAX_NESTING + 1));
        assert_eq!(too_deep(&over), Some((1, MAX_NESTING + 1)));
        assert_eq!(
            too_deep(&"not ".repeat(MAX_NESTING + 1)),
            Some((1, 4 * MAX_NESTING + 4))
        );
        let quoted = format!("a == \"{}\" # {}", "(".repeat(100), "[".repeat(100));
        assert_eq!(too_deep(&quoted), None);
        assert_eq!(too_deep(&format!("\"\\\"{}\"", "(".repeat(100))), None);
    }
}
