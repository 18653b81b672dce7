//! Redaction: secret values that reach an event as free text (arguments,
//! paths, names) are replaced before any output, record or signature sees
//! them. Built-in patterns cover common token formats; the policy adds more
//! (`redaction.patterns`).

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
    (
        "url_credentials",
        r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@",
    ),
    (
        "secret_flag",
        r"(?i)(?:^|\s)--?(?:password|passwd|pass|pwd|token|secret|api[-_]?key|access[-_]?key|auth[-_]?token|client[-_]?secret)[=:](\S+)",
    ),
    (
        "secret_assignment",
        r"(?i)\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)[A-Z0-9_]*=(\S+)",
    ),
];

/// An argument that is a flag whose value is the next argument
/// (`--password hunter2`): the next argument is replaced whole.
const SECRET_FLAG_ALONE: &str = r"(?i)^--?(?:password|passwd|pass|pwd|token|secret|api[-_]?key|access[-_]?key|auth[-_]?token|client[-_]?secret)$";

#[derive(Debug, Clone)]
pub struct Redactor {
    set: RegexSet,
    patterns: Vec<Regex>,
    flag_alone: Regex,
}

impl Redactor {
    /// The built-in patterns plus `extra` (already validated regexes).
    pub fn new(extra: &[String]) -> Result<Redactor, (usize, String)> {
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
                Regex::new(s).map_err(|e| (i.saturating_sub(BUILTIN.len()), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redactor {
            set: RegexSet::new(&sources).map_err(|e| (usize::MAX, e.to_string()))?,
            patterns,
            flag_alone: Regex::new(SECRET_FLAG_ALONE).expect("a valid built-in pattern"),
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

    /// Arguments with secret values replaced, including the value that
    /// follows a bare `--password`-style flag.
    pub fn argv(&self, argv: &mut [String]) {
        let mut next_is_secret = false;
        for a in argv.iter_mut() {
            if next_is_secret {
                *a = MASK.to_string();
                next_is_secret = false;
                continue;
            }
            next_is_secret = self.flag_alone.is_match(a);
            *a = self.text(a);
        }
    }
}

impl Redactor {
    /// Redacts every free-text field of an event in place.
    pub fn event(&self, ev: &mut crate::output::Event) {
        use crate::output::Detail;
        ev.comm = self.text(&ev.comm);
        ev.exe = self.text(&ev.exe);
        for a in &mut ev.ancestors {
            a.comm = self.text(&a.comm);
        }
        match &mut ev.detail {
            Detail::Process { argv, .. } => self.argv(argv),
            Detail::File {
                path,
                same_inode_as,
                ..
            } => {
                *path = self.text(path);
                if let Some(p) = same_inode_as {
                    *p = self.text(p);
                }
            }
            Detail::Network { dns_name, .. } => {
                if let Some(n) = dns_name {
                    *n = self.text(n);
                }
            }
            Detail::Memory { target_comm, .. } => *target_comm = self.text(target_comm),
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
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::new(&[]).unwrap()
    }

    #[test]
    fn each_builtin_hides_its_secret_and_keeps_the_context() {
        let cases = [
            ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "0123456789abcdefghij"),
            ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "abcdefghijklmnop"),
            ("glpat-abcdefghij0123456789", "abcdefghij0123456789"),
            ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnop"),
            ("AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "wJalrXUtnFEMI",
            ),
            ("xoxb-123456789012-abcdefghijkl", "abcdefghijkl"),
            (
                "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX",
                "XXXXXXXXXXXX",
            ),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "dozjgNryP4J3",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
                "b3BlbnNzaC1rZXk",
            ),
            ("https://ci:s3cr3tpass@git.example.com/repo.git", "s3cr3tpass"),
            ("--password=hunter2xyz", "hunter2xyz"),
            ("MY_API_TOKEN=abc123secretvalue", "abc123secretvalue"),
        ];
        for (input, secret) in cases {
            let out = r().text(input);
            assert!(!out.contains(secret), "{input} -> {out}");
            assert!(out.contains(MASK), "{input} -> {out}");
        }
        assert_eq!(
            r().text("https://ci:s3cr3tpass@git.example.com/x"),
            "https://ci:[REDACTED]@git.example.com/x"
        );
        assert_eq!(r().text("--password=abc"), "--password=[REDACTED]");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for s in [
            "/usr/bin/git",
            "fetch --depth=1 origin main",
            "https://github.com/org/repo.git",
            "/home/ci/.ssh/id_rsa",
            "TOKEN_FILE",
            "--token-file",
        ] {
            assert_eq!(r().text(s), s);
        }
    }

    #[test]
    fn a_bare_secret_flag_hides_the_next_argument() {
        let mut argv: Vec<String> = ["mysql", "--password", "hunter2", "-u", "root"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        r().argv(&mut argv);
        assert_eq!(argv, ["mysql", "--password", MASK, "-u", "root"]);
    }

    #[test]
    fn policy_patterns_add_to_the_builtins() {
        let red = Redactor::new(&["corp-[0-9]{6}".into(), r"key=(\w+)".into()]).unwrap();
        assert_eq!(red.text("id corp-123456 ok"), "id [REDACTED] ok");
        assert_eq!(red.text("key=abc"), "key=[REDACTED]");
        assert!(Redactor::new(&["(".into()]).is_err());
    }
}
