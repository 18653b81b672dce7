//! Redaction: secret values that reach an event as free text (arguments,
//! paths, names) are replaced before any output, record or signature sees
//! them. Built-in patterns cover common token formats; the policy adds more
//! (`redaction.patterns`); `programs` knows the flags of programs that take
//! a secret as a short option.

mod programs;

use std::ops::Range;

use regex::{Regex, RegexSet};

/// What a redacted value is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Built-in patterns: (name, regex). When a pattern has a capture group, only
/// the first group is replaced (so `--password=` stays readable); otherwise
/// the whole match is.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "github_token",
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255})",
    ),
    ("github_pat", r"\b(github_pat_[A-Za-z0-9_]{20,255})"),
    ("gitlab_token", r"\b(glpat-[A-Za-z0-9_-]{20,})"),
    ("npm_token", r"\b(npm_[A-Za-z0-9]{30,})"),
    ("pypi_token", r"\b(pypi-[A-Za-z0-9_-]{40,})"),
    (
        "aws_access_key_id",
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b",
    ),
    (
        "aws_secret_access_key",
        r#"(?i)aws_secret_access_key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#,
    ),
    ("slack_token", r"\b(xox[abposr]-[A-Za-z0-9-]{10,})"),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/services/([A-Za-z0-9/_-]+)",
    ),
    (
        "jwt",
        r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
    ),
    (
        "private_key",
        r"(-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z ]*PRIVATE KEY-----|\z))",
    ),
    ("google_api_key", r"\b(AIza[0-9A-Za-z_-]{35})"),
    // A credential in a URL's query: an API key, a SAS or presigned URL's
    // signature (the URL is the credential; without it, it is not), a token.
    (
        "url_query_secret",
        r#"(?i)[?&](?:key|api[-_]?key|sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature|token|access[-_]?token|client[-_]?secret|password|passwd|secret)=([^&\s#'"]+)"#,
    ),
    (
        "url_credentials",
        r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@",
    ),
    (
        "secret_flag",
        r"(?i)(?:^|\s)--?(?:(?:[a-z0-9]+[-_])*(?:password|passwd|passphrase|token|secret|api[-_]?key|apikey|access[-_]?key)|pass|pwd|oauth2-bearer)[=:](\S+)",
    ),
    // `Authorization: Bearer X`, `Proxy-Authorization: Basic X`: the
    // credentials after the scheme, up to a quote or the line's end.
    (
        "auth_header",
        r#"(?i)\b(?:proxy-)?authorization\s*:\s*(?:(?:bearer|basic|token|bot|digest|negotiate|ntlm)\s+)?([^\s'"][^'"\r\n]*)"#,
    ),
    // `X-Api-Key: X`, `Private-Token: X`, `Cookie: X`, `password: X`: a
    // header or YAML key named for a secret, at the start of a word.
    (
        "secret_header",
        r#"(?i)(?:^|[\s'"=])(?:[a-z0-9]+[-_])*(?:api[-_]?key|apikey|token|secret|password|passwd|passphrase|access[-_]?key|private[-_]?key|session[-_]?id|credentials?|cookie|set-cookie)\s*:\s*([^\s'"][^'"\r\n]*)"#,
    ),
    // `"password": "X"` (JSON, or a Python dict with single quotes),
    // escaped quotes too (`{\"token\":\"X\"}` inside a shell string).
    (
        "secret_json",
        r#"(?i)["'][a-z0-9_.-]*(?:password|passwd|passphrase|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|credentials?|authorization|cookie)\\?["']\s*:\s*\\?["']((?:\\.|[^"'\\])+)"#,
    ),
    (
        "secret_assignment",
        r"(?i)\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)[A-Z0-9_]*=(\S+)",
    ),
];

/// An argument that is a flag whose value is the next argument
/// (`--password hunter2`): the next argument is replaced whole.
/// (`--no-password` and the like are switches: `argv` skips them.)
const SECRET_FLAG_ALONE: &str = r"(?i)^--?(?:(?:[a-z0-9]+[-_])*(?:password|passwd|passphrase|token|secret|api[-_]?key|apikey|access[-_]?key)|pass|pwd|oauth2-bearer)$";

/// A secret's known start at the very end of a value cut by a bound (the
/// argument area's 1023 bytes, comm's 15): too short for its full pattern
/// above, still a secret, so hidden from its prefix on.
pub const CUT: &[&str] = &[
    r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]*)\z",
    r"\b(github_pat_[A-Za-z0-9_]*)\z",
    r"\b(glpat-[A-Za-z0-9_-]*)\z",
    r"\b(npm_[A-Za-z0-9]*)\z",
    r"\b(pypi-[A-Za-z0-9_-]*)\z",
    r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]*)\z",
    r"\b(AIza[0-9A-Za-z_-]*)\z",
    r"\b(xox[abposr]-[A-Za-z0-9-]*)\z",
    r"\b(eyJ[A-Za-z0-9_.-]*)\z",
    r#"(?i)aws_secret_access_key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]*)\z"#,
    r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]*)\z",
];

/// comm's bound: the kernel keeps 15 bytes of a program's name.
const COMM_MAX: usize = 15;

/// A redaction pattern that does not compile: `index` in the policy's
/// list (`usize::MAX` when only the whole set failed, e.g. too large).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid regular expression: {message}")]
pub struct PatternError {
    pub index: usize,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Redactor {
    set: RegexSet,
    patterns: Vec<Regex>,
    flag_alone: Regex,
    cut: Vec<Regex>,
}

impl Redactor {
    /// The built-in patterns plus `extra` (the policy's redaction.patterns).
    pub fn new(extra: &[String]) -> Result<Redactor, PatternError> {
        let sources: Vec<&str> = BUILTIN
            .iter()
            .map(|(_, r)| *r)
            .chain(extra.iter().map(String::as_str))
            .collect();
        // Each pattern compiles once; an error names its index in `extra`.
        let patterns = sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Regex::new(s).map_err(|e| PatternError {
                    index: i.saturating_sub(BUILTIN.len()),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redactor {
            set: RegexSet::new(&sources).map_err(|e| PatternError {
                index: usize::MAX,
                message: e.to_string(),
            })?,
            patterns,
            flag_alone: Regex::new(SECRET_FLAG_ALONE).expect("a valid built-in pattern"),
            cut: CUT
                .iter()
                .map(|r| Regex::new(r).expect("a valid built-in pattern"))
                .collect(),
        })
    }

    /// `s` with every secret value replaced by MASK.
    pub fn text(&self, s: &str) -> String {
        let hits = self.set.matches(s);
        if !hits.matched_any() {
            return s.to_string();
        }
        let mut out = s.to_string();
        for i in hits.iter() {
            out = mask(&self.patterns[i], &out);
        }
        out
    }

    /// Arguments with secret values replaced: the patterns, the value that
    /// follows a bare `--password`-style flag, the values of the flags of
    /// programs named in them (`programs`), also inside a command string
    /// (`sh -c "mysql -pX"`), and, when the kernel's bound cut the last
    /// argument (`cut`), a secret's prefix at its end.
    pub fn argv(&self, argv: &mut [String], cut: bool) {
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        let ranges = programs::secret_ranges(&words);
        for (a, r) in argv.iter_mut().zip(ranges) {
            if let Some(r) = r {
                *a = masked(a, &[r]);
            }
        }
        let mut next_is_secret = false;
        for a in argv.iter_mut() {
            if next_is_secret {
                *a = MASK.to_string();
                next_is_secret = false;
                continue;
            }
            next_is_secret = self.flag_alone.is_match(a) && !a.starts_with("--no-");
            *a = self.text(&command_string(a));
        }
        if let Some(last) = argv.last_mut().filter(|_| cut) {
            *last = self.cut_value(last);
        }
    }

    /// `s`, the end of which a bound cut: a secret's prefix there is hidden.
    fn cut_value(&self, s: &str) -> String {
        self.cut
            .iter()
            .fold(s.to_string(), |out, re| mask(re, &out))
    }

    /// A program's name (comm), which the kernel cuts at 15 bytes.
    fn comm(&self, s: &str) -> String {
        let out = self.text(s);
        if s.len() >= COMM_MAX {
            self.cut_value(&out)
        } else {
            out
        }
    }
}

/// A command string with the secrets of program flags in it hidden.
fn command_string(s: &str) -> String {
    if !s.contains(|c: char| c.is_ascii_whitespace()) {
        return s.to_string();
    }
    let words = programs::words(s);
    let texts: Vec<&str> = words.iter().map(|(_, w)| *w).collect();
    let hide: Vec<Range<usize>> = programs::secret_ranges(&texts)
        .into_iter()
        .zip(&words)
        .filter_map(|(r, (at, _))| r.map(|r| r.start + at..r.end + at))
        .collect();
    masked(s, &hide)
}

/// `s` with each of `hide` (ascending, apart) replaced by MASK; a range
/// that is not on character boundaries is left (it cannot come from the
/// ASCII flag rules, and slicing must not panic).
fn masked(s: &str, hide: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for r in hide {
        let (Some(before), Some(_)) = (s.get(last..r.start), s.get(r.clone())) else {
            continue;
        };
        out.push_str(before);
        out.push_str(MASK);
        last = r.end;
    }
    out.push_str(s.get(last..).unwrap_or(""));
    out
}

impl Redactor {
    /// Redacts every free-text field of an event in place.
    pub fn event(&self, ev: &mut crate::event::Event) {
        use crate::event::Detail;
        ev.comm = self.comm(&ev.comm);
        ev.exe = self.text(&ev.exe);
        for a in &mut ev.ancestors {
            a.comm = self.comm(&a.comm);
        }
        match &mut ev.detail {
            Detail::Process {
                argv,
                argv_truncated,
                loader_env,
                script,
                ..
            } => {
                self.argv(argv, argv_truncated.unwrap_or(false));
                if let Some(s) = script {
                    *s = self.text(s);
                }
                for v in loader_env.iter_mut() {
                    *v = self.text(v);
                }
            }
            Detail::File {
                path,
                same_inode_as,
                old_path,
                ..
            } => {
                *path = self.text(path);
                for p in [same_inode_as, old_path].into_iter().flatten() {
                    *p = self.text(p);
                }
            }
            Detail::Network { dns_name, .. } => {
                if let Some(n) = dns_name {
                    *n = self.text(n);
                }
            }
            Detail::Memory { target_comm, .. } => *target_comm = self.comm(target_comm),
            // Numbers and names bee-trace chose: nothing the job wrote.
            Detail::Socket { .. } | Detail::Serve { .. } => {}
            Detail::Tamper {
                object_name, found, ..
            } => {
                for t in [object_name, found].into_iter().flatten() {
                    *t = self.text(t);
                }
            }
        }
    }
}

fn mask(re: &Regex, s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for c in re.captures_iter(s) {
        let m = c
            .get(1)
            .unwrap_or_else(|| c.get(0).expect("group 0 always exists"));
        if m.start() < last {
            continue;
        }
        out.push_str(&s[last..m.start()]);
        out.push_str(MASK);
        last = m.end();
    }
    out.push_str(&s[last..]);
    out
}

#[cfg(test)]
mod tests;
