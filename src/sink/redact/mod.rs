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

#[derive(Debug, Clone)]
pub struct Redactor {
    set: RegexSet,
    patterns: Vec<Regex>,
    flag_alone: Regex,
    cut: Vec<Regex>,
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
    pub fn event(&self, ev: &mut crate::output::Event) {
        use crate::output::Detail;
        ev.comm = self.comm(&ev.comm);
        ev.exe = self.text(&ev.exe);
        for a in &mut ev.ancestors {
            a.comm = self.comm(&a.comm);
        }
        match &mut ev.detail {
            Detail::Process {
                argv,
                argv_truncated,
                ..
            } => self.argv(argv, argv_truncated.unwrap_or(false)),
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
            Detail::Memory { target_comm, .. } => *target_comm = self.comm(target_comm),
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

    /// Built once: compiling the set is most of a test's time.
    fn r() -> &'static Redactor {
        static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
        R.get_or_init(|| Redactor::new(&[]).unwrap())
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
            ("x AIzaSyA0123456789abcdefghijklmnopqrstuv", "SyA0123456789abcdefghij"),
            ("https://a.blob.core.windows.net/c?sv=1&sig=abc%2Bdef", "abc%2Bdef"),
            ("https://b.s3.amazonaws.com/o?X-Amz-Signature=0a1b2c", "0a1b2c"),
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
        assert_eq!(
            r().text("https://x.example/p?sv=1&sig=abc&sp=r"),
            "https://x.example/p?sv=1&sig=[REDACTED]&sp=r"
        );
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for s in [
            "/usr/bin/git",
            "fetch --depth=1 origin main",
            "https://github.com/org/repo.git",
            "https://example.com/search?q=keys&page=2",
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
        r().argv(&mut argv, false);
        assert_eq!(argv, ["mysql", "--password", MASK, "-u", "root"]);
    }

    fn redacted(argv: &[&str], cut: bool) -> Vec<String> {
        let mut v: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        r().argv(&mut v, cut);
        v
    }

    #[test]
    fn auth_headers_and_secret_keys_hide_their_values() {
        let cases = [
            (
                "Authorization: Bearer S3cr.et-x",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "authorization:Basic dXNlcjpwYXNz",
                "authorization:Basic [REDACTED]",
            ),
            (
                "Proxy-Authorization: S3cr",
                "Proxy-Authorization: [REDACTED]",
            ),
            ("X-Api-Key: S3cr", "X-Api-Key: [REDACTED]"),
            ("PRIVATE-TOKEN: S3cr", "PRIVATE-TOKEN: [REDACTED]"),
            ("X-Vault-Token:S3cr", "X-Vault-Token:[REDACTED]"),
            ("Cookie: session=S3cr; x=1", "Cookie: [REDACTED]"),
            (
                "--header=X-Auth-Token: S3cr",
                "--header=X-Auth-Token: [REDACTED]",
            ),
            (
                "curl -H 'Authorization: Bearer S3cr' https://x",
                "curl -H 'Authorization: Bearer [REDACTED]' https://x",
            ),
            (
                r#"{"password":"S3cr","user":"me"}"#,
                r#"{"password":"[REDACTED]","user":"me"}"#,
            ),
            (r#"{"api_key": "S3cr"}"#, r#"{"api_key": "[REDACTED]"}"#),
            (
                r#"{'client_secret': 'S3cr'}"#,
                r#"{'client_secret': '[REDACTED]'}"#,
            ),
            (
                r#"-d {\"token\":\"S3cr\"}"#,
                r#"-d {\"token\":\"[REDACTED]"#,
            ),
            ("--github-token=S3cr", "--github-token=[REDACTED]"),
        ];
        for (input, want) in cases {
            assert_eq!(r().text(input), want, "{input}");
        }
    }

    #[test]
    fn program_flags_hide_their_values_in_argv_and_command_strings() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["mysql", "-uroot", "-pS3cr", "db"],
                &["mysql", "-uroot", "-p[REDACTED]", "db"],
            ),
            (
                &["curl", "-u", "me:S3cr", "x"],
                &["curl", "-u", "me:[REDACTED]", "x"],
            ),
            (
                &["curl", "--user", "me:S3cr"],
                &["curl", "--user", "me:[REDACTED]"],
            ),
            (
                &["docker", "login", "-p", "S3cr", "r"],
                &["docker", "login", "-p", MASK, "r"],
            ),
            (
                &["sshpass", "-p", "S3cr", "ssh", "h"],
                &["sshpass", "-p", MASK, "ssh", "h"],
            ),
            (
                &["sh", "-c", "mysql -pS3cr db && curl -u a:S3cr2 x"],
                &[
                    "sh",
                    "-c",
                    "mysql -p[REDACTED] db && curl -u a:[REDACTED] x",
                ],
            ),
            (
                &["gpg", "--passphrase", "S3cr"],
                &["gpg", "--passphrase", MASK],
            ),
            (
                &["curl", "--oauth2-bearer", "S3cr"],
                &["curl", "--oauth2-bearer", MASK],
            ),
        ];
        for (argv, want) in cases {
            assert_eq!(redacted(argv, false), *want, "{argv:?}");
        }
    }

    #[test]
    fn a_secret_cut_by_the_bound_is_hidden_from_its_prefix() {
        for (tail, want) in [
            ("ghp_0123456789abc", "x=1 [REDACTED]"),
            ("github_pat_11AB", "x=1 [REDACTED]"),
            ("glpat-abc", "x=1 [REDACTED]"),
            ("npm_abc", "x=1 [REDACTED]"),
            ("xoxb-1234", "x=1 [REDACTED]"),
            ("AKIAIOSF", "x=1 [REDACTED]"),
            ("eyJhbGciOi", "x=1 [REDACTED]"),
            ("https://ci:s3cr", "x=1 https://ci:[REDACTED]"),
        ] {
            let last = format!("x=1 {tail}");
            let out = redacted(&["sh", "-c", &last], true);
            assert_eq!(out[2], want, "{tail}");
            // Not cut: too short to be one of the full patterns, kept.
            assert_eq!(redacted(&["sh", "-c", &last], false)[2], last);
        }
        // Only the last, cut argument is checked against prefixes.
        assert_eq!(
            redacted(&["echo", "npm_x", "y"], true),
            ["echo", "npm_x", "y"]
        );
    }

    #[test]
    fn a_comm_at_the_kernel_bound_is_checked_for_a_cut_prefix() {
        let red = r();
        assert_eq!(red.comm("run-ghp_ABCDEFG"), "run-[REDACTED]");
        assert_eq!(red.comm("ghp_abc"), "ghp_abc");
        assert_eq!(red.comm("kworker/u8:1-ev"), "kworker/u8:1-ev");
    }

    #[test]
    fn ordinary_arguments_are_untouched() {
        for argv in [
            &["mkdir", "-p", "/a/b"][..],
            &["ssh", "-p", "22", "host"],
            &["cp", "-p", "a", "b"],
            &["docker", "run", "-p", "8080:80", "img"],
            &["mysql", "-p", "db"],
            &[
                "curl",
                "-u",
                "me",
                "-H",
                "Accept: application/json",
                "https://x",
            ],
            &["curl", "-H", "Content-Type: text/plain", "https://x"],
            &["python3", "-c", r#"print({"user": "me", "path": "/a"})"#],
            &["sh", "-c", "mkdir -p out && tar -xpf a.tar"],
            &["docker", "pull", "registry.example/token:1.0"],
            &["git", "log", "--author=me"],
            &["psql", "--no-password", "-h", "db"],
            &["tmux", "send-keys", "-t", "session:0", "ls"],
            &["gh", "auth", "status", "--show-token-scopes"],
        ] {
            assert_eq!(redacted(argv, false), argv, "{argv:?}");
            assert_eq!(redacted(argv, true), argv, "{argv:?}");
        }
    }

    #[test]
    fn policy_patterns_add_to_the_builtins() {
        let red = Redactor::new(&["corp-[0-9]{6}".into(), r"key=(\w+)".into()]).unwrap();
        assert_eq!(red.text("id corp-123456 ok"), "id [REDACTED] ok");
        assert_eq!(red.text("key=abc"), "key=[REDACTED]");
        assert!(Redactor::new(&["(".into()]).is_err());
    }
}
