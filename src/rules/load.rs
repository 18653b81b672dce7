//! Rule files: reading them (the built-in pack, then a trusted directory),
//! their YAML form, global lists and macros, and compiling each rule. Every
//! error in a file names the file, line and column and what was expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::check::check_condition;
use super::parse::{parse_cond, parse_duration, Ast, CondError, Pos};
use super::set::{Rule, RuleSet};
use crate::event::Severity;
use crate::input::InputError;

/// A load-time error in a rule file, located (line 0: the file as a whole,
/// where no position in it is known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", located_text(self))]
pub struct RuleError {
    pub file: String,
    pub line: u64,
    pub col: u64,
    pub message: String,
}

fn located_text(e: &RuleError) -> String {
    if e.line == 0 {
        format!("{}: {}", e.file, e.message)
    } else {
        format!("{}:{}:{}: {}", e.file, e.line, e.col, e.message)
    }
}

/// Why the rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the rules directory {} does not exist; name a directory of *.yml rule files (--rules DIR)", path.display())]
    NoDir { path: PathBuf },
    /// The directory or one of its files cannot be trusted or read (the
    /// error names it).
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("cannot read the rules directory {}: {source}", path.display())]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the rule file {} is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error(transparent)]
    Rule(#[from] RuleError),
}

// ---------------------------------------------------------------------------
// The files.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    lists: BTreeMap<String, Vec<ListItem>>,
    #[serde(default)]
    macros: BTreeMap<String, serde_saphyr::Spanned<String>>,
    #[serde(default)]
    rules: Vec<RuleEntry>,
}

/// An item of a `lists:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum ListItem {
    Int(i64),
    Str(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    name: serde_saphyr::Spanned<String>,
    severity: Severity,
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    condition: serde_saphyr::Spanned<String>,
    /// How long a trace's events count, e.g. `5m` (default), `30s`, `1h`.
    window: Option<serde_saphyr::Spanned<String>>,
}

const DEFAULT_WINDOW_NS: u64 = 300_000_000_000;

// ---------------------------------------------------------------------------
// Loading.

/// One source: a name for errors and its text.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// The built-in pack, then every `*.yml`/`*.yaml` file of `dir` in name
/// order. Names of rules, lists and macros are global; a duplicate is an
/// error. The directory and its files must be ones only root can change
/// (see `input`); each file is opened through the directory's fd.
pub fn load(dir: Option<&Path>) -> Result<RuleSet, LoadError> {
    let mut sources = vec![Source {
        name: "built-in rules".into(),
        text: super::BUILTIN.to_string(),
    }];
    if let Some(d) = dir {
        sources.extend(read_dir_sources(d)?);
    }
    Ok(compile(&sources)?)
}

fn read_dir_sources(d: &Path) -> Result<Vec<Source>, LoadError> {
    use crate::input::{open_dir, open_in, read_bounded, Trust, RULES_MAX};
    let dir = open_dir(d, "rules directory").map_err(|e| match e {
        InputError::Open { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
            LoadError::NoDir { path: d.into() }
        }
        e => e.into(),
    })?;
    // Listed through the checked fd, not by name again.
    let listing = format!(
        "/proc/self/fd/{}",
        std::os::unix::io::AsRawFd::as_raw_fd(&dir)
    );
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(listing)
        .map_err(|source| LoadError::List {
            path: d.into(),
            source,
        })?
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| {
            let n = Path::new(n);
            n.extension().is_some_and(|x| x == "yml" || x == "yaml")
        })
        .collect();
    names.sort();
    let mut sources = Vec::new();
    for n in names {
        let f = d.join(&n);
        let (file, meta) = open_in(&dir, &n, &f, "rule file", Trust::Owner)?;
        let bytes = read_bounded(file, &meta, &f, RULES_MAX, "rule file")?;
        let text = String::from_utf8(bytes).map_err(|_| LoadError::NotText { path: f.clone() })?;
        sources.push(Source {
            name: f.display().to_string(),
            text,
        });
    }
    Ok(sources)
}

/// Compiles rule sources: each file's YAML, then the lists and macros of
/// all of them (any file may use any), then every rule.
pub fn compile(sources: &[Source]) -> Result<RuleSet, RuleError> {
    let files = sources
        .iter()
        .map(|s| Ok((s, parse_file(s)?)))
        .collect::<Result<Vec<_>, RuleError>>()?;
    let (lists, macros) = globals(&files)?;
    let mut set = RuleSet::default();
    for (s, f) in &files {
        for r in &f.rules {
            let name = rule_name(s, r)?;
            if set.rules.iter().any(|o: &Rule| o.name == name) {
                return Err(located(
                    s,
                    &r.name,
                    (1, 1),
                    format!("rule `{name}` is defined twice"),
                ));
            }
            set.rules.push(compile_rule(s, r, name, &lists, &macros)?);
        }
    }
    Ok(set)
}

fn parse_file(s: &Source) -> Result<RuleFile, RuleError> {
    if s.text.trim().is_empty() {
        return Ok(RuleFile::default());
    }
    serde_saphyr::from_str(&s.text).map_err(|e| {
        // Without its `error:` title and its snippet, which names the text
        // `<input>`: the file is named in front of the message.
        let msg = e.render_with_options(serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
        });
        let (line, col) = yaml_pos(&msg);
        RuleError {
            file: s.name.clone(),
            line,
            col,
            message: msg,
        }
    })
}

type Lists = BTreeMap<String, Vec<ListItem>>;
type Macros = BTreeMap<String, Ast>;

/// Every file's lists and parsed macros; a name defined twice is an error.
fn globals(files: &[(&Source, RuleFile)]) -> Result<(Lists, Macros), RuleError> {
    let mut lists = Lists::new();
    let mut list_src: BTreeMap<String, String> = BTreeMap::new();
    let mut macro_src: BTreeMap<String, (&Source, serde_saphyr::Spanned<String>)> = BTreeMap::new();
    for (s, f) in files {
        for (k, v) in &f.lists {
            if let Some(first) = list_src.insert(k.clone(), s.name.clone()) {
                return Err(RuleError {
                    file: s.name.clone(),
                    line: 0,
                    col: 0,
                    message: format!("list `{k}` is defined twice (first in {first})"),
                });
            }
            lists.insert(k.clone(), v.clone());
        }
        for (k, v) in &f.macros {
            if macro_src.insert(k.clone(), (s, v.clone())).is_some() {
                return Err(located(
                    s,
                    v,
                    (1, 1),
                    format!("macro `{k}` is defined twice"),
                ));
            }
        }
    }
    let mut macros = Macros::new();
    for (k, (s, v)) in &macro_src {
        let ast = parse_cond(&v.value).map_err(|e| located(s, v, e.at, e.message))?;
        macros.insert(k.clone(), ast);
    }
    Ok((lists, macros))
}

fn rule_name(s: &Source, r: &RuleEntry) -> Result<String, RuleError> {
    let name = r.name.value.trim().to_string();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(located(
            s,
            &r.name,
            (1, 1),
            "a rule name uses letters, digits, `-` and `_`".into(),
        ));
    }
    Ok(name)
}

fn compile_rule(
    s: &Source,
    r: &RuleEntry,
    name: String,
    lists: &Lists,
    macros: &Macros,
) -> Result<Rule, RuleError> {
    let window_ns = match &r.window {
        Some(w) => parse_duration(w.value.trim())
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                located(
                    s,
                    w,
                    (1, 1),
                    "expected a duration such as 30s, 5m or 1h".into(),
                )
            })?,
        None => DEFAULT_WINDOW_NS,
    };
    let at_cond = |e: CondError| located(s, &r.condition, e.at, e.message);
    let ast = parse_cond(&r.condition.value).map_err(at_cond)?;
    let (patterns, cond) = check_condition(&ast, lists, macros).map_err(at_cond)?;
    Ok(Rule {
        name,
        severity: r.severity,
        description: r.description.trim().to_string(),
        tags: r.tags.clone(),
        window_ns,
        patterns,
        cond,
        source: s.name.clone(),
    })
}

/// A position inside a YAML scalar, as a position in the file.
fn located(s: &Source, v: &serde_saphyr::Spanned<String>, p: Pos, message: String) -> RuleError {
    let line = v.referenced.line();
    let col = v.referenced.column();
    let raw_line = s
        .text
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .unwrap_or("");
    let at = raw_line
        .chars()
        .skip(col.saturating_sub(1) as usize)
        .collect::<String>();
    let (l, c) = (p.0 as u64, p.1 as u64);
    let (fl, fc) = if at.starts_with('|') || at.starts_with('>') {
        // A block scalar: its text starts on the next line, indented.
        let fl = line + l;
        (fl, indent_of(s, fl) + c)
    } else {
        let quote = u64::from(at.starts_with('"') || at.starts_with('\''));
        if l == 1 {
            (line, col + quote + c - 1)
        } else {
            // A later line of a block scalar: the YAML reader points at its
            // first line, whose indentation is the block's, taken off every
            // line of the text the condition parser saw.
            (line + l - 1, indent_of(s, line) + c)
        }
    };
    RuleError {
        file: s.name.clone(),
        line: fl,
        col: fc,
        message,
    }
}

/// The indentation of line `n` (from 1) of the source.
fn indent_of(s: &Source, n: u64) -> u64 {
    s.text
        .lines()
        .nth(n.saturating_sub(1) as usize)
        .map_or(0, |t| t.len() - t.trim_start().len()) as u64
}

/// "line N column M" out of a YAML error message.
fn yaml_pos(msg: &str) -> (u64, u64) {
    let num_after = |key: &str| -> u64 {
        msg.find(key)
            .map(|i| {
                msg[i + key.len()..]
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    (num_after("line"), num_after("column"))
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
