//! Secrets only a program's own flags mark (`mysql -pX`, `curl -u user:X`,
//! `sshpass -p X`, `docker login -p X`): the rules are keyed on the program's
//! name, so `mkdir -p dir`, `ssh -p 22` and `cp -p` stay as they are.

use std::ops::Range;

/// A flag whose value is a secret.
struct Flag {
    name: &'static str,
    /// `-p X`: the next word is the value. (`mysql -p` alone prompts.)
    next: bool,
    /// `-pX` for a short flag, `--user=X` for a long one.
    attached: bool,
    /// Only what follows this character is secret (`user:password`); a value
    /// without it has no secret in it (curl then prompts).
    after: Option<char>,
}

const fn flag(name: &'static str, next: bool, attached: bool, after: Option<char>) -> Flag {
    Flag {
        name,
        next,
        attached,
        after,
    }
}

struct Program {
    names: &'static [&'static str],
    /// A word that must come before the flag (`docker login -p`, not the
    /// port of `docker run -p`).
    sub: Option<&'static str>,
    flags: &'static [Flag],
}

const MYSQL: &[&str] = &[
    "mysql",
    "mariadb",
    "mysqldump",
    "mariadb-dump",
    "mysqladmin",
    "mariadb-admin",
    "mysqlcheck",
    "mysqlimport",
    "mysqlshow",
    "mysqlpump",
    "mysqlslap",
];
const MONGO: &[&str] = &[
    "mongo",
    "mongosh",
    "mongodump",
    "mongorestore",
    "mongoexport",
    "mongoimport",
];
const LDAP: &[&str] = &[
    "ldapsearch",
    "ldapadd",
    "ldapmodify",
    "ldapdelete",
    "ldapwhoami",
    "ldappasswd",
];
const CURL_USER: &[Flag] = &[
    flag("-u", true, true, Some(':')),
    flag("--user", true, true, Some(':')),
    flag("-U", true, true, Some(':')),
    flag("--proxy-user", true, true, Some(':')),
];

const PROGRAMS: &[Program] = &[
    Program {
        names: MYSQL,
        sub: None,
        flags: &[flag("-p", false, true, None)],
    },
    Program {
        names: &["sshpass"],
        sub: None,
        flags: &[flag("-p", true, true, None)],
    },
    Program {
        names: &["docker", "podman", "nerdctl", "buildah"],
        sub: Some("login"),
        flags: &[flag("-p", true, true, None)],
    },
    Program {
        names: &["curl"],
        sub: None,
        flags: CURL_USER,
    },
    Program {
        names: &["redis-cli", "valkey-cli"],
        sub: None,
        flags: &[flag("-a", true, true, None)],
    },
    Program {
        names: &["sqlcmd", "bcp"],
        sub: None,
        flags: &[flag("-P", true, true, None)],
    },
    Program {
        names: MONGO,
        sub: None,
        flags: &[flag("-p", true, true, None)],
    },
    Program {
        names: LDAP,
        sub: None,
        flags: &[flag("-w", true, true, None)],
    },
    Program {
        names: &["smbclient"],
        sub: None,
        flags: &[
            flag("-U", true, true, Some('%')),
            flag("--user", true, true, Some('%')),
        ],
    },
    Program {
        names: &["openssl"],
        sub: None,
        flags: &[
            flag("-passin", true, false, None),
            flag("-passout", true, false, None),
            flag("-k", true, false, None),
        ],
    },
];

fn program(word: &str) -> Option<&'static Program> {
    if word.starts_with('-') {
        return None;
    }
    let base = word.rsplit('/').next().unwrap_or(word);
    PROGRAMS.iter().find(|p| p.names.contains(&base))
}

/// The secret part of a flag's value, `value` starting at byte `at` of
/// its word.
fn value_range(f: &Flag, word: &str, at: usize) -> Option<Range<usize>> {
    let value = word.get(at..)?;
    let start = match f.after {
        Some(c) => at + value.find(c)? + c.len_utf8(),
        None => at,
    };
    (start < word.len()).then_some(start..word.len())
}

/// `word` as a flag of `p`: the secret range when its value is attached,
/// or the flag whose value is the next word.
fn as_flag(p: &Program, word: &str) -> (Option<Range<usize>>, Option<&'static Flag>) {
    for f in p.flags {
        if word == f.name {
            return (None, f.next.then_some(f));
        }
        let Some(rest) = word.strip_prefix(f.name) else {
            continue;
        };
        let long = f.name.starts_with("--");
        let at = if long && rest.starts_with('=') {
            f.name.len() + 1
        } else if !long && f.attached && !rest.is_empty() {
            f.name.len()
        } else {
            continue;
        };
        return (value_range(f, word, at), None);
    }
    (None, None)
}

/// For each word of a command line, the byte range of it that is a secret
/// by the flags of a program it follows. Each program named is followed to
/// the end on its own, so a program's name given as a value
/// (`docker login -u mysql -p X`) cannot hide a secret from the one before.
pub fn secret_ranges(words: &[&str]) -> Vec<Option<Range<usize>>> {
    let mut out = vec![None; words.len()];
    for (i, w) in words.iter().enumerate() {
        if let Some(p) = program(w) {
            mark(p, &words[i + 1..], &mut out[i + 1..]);
        }
    }
    out
}

/// Marks the secrets of `p`'s flags among `words`, keeping the wider range
/// where one is already marked (every range runs to the word's end).
fn mark(p: &Program, words: &[&str], out: &mut [Option<Range<usize>>]) {
    let mut ready = p.sub.is_none();
    let mut pending: Option<&Flag> = None;
    for (w, o) in words.iter().zip(out.iter_mut()) {
        let range = if let Some(f) = pending.take() {
            value_range(f, w, 0)
        } else if !ready {
            ready = p.sub == Some(*w);
            None
        } else {
            let (range, next) = as_flag(p, w);
            pending = next;
            range
        };
        if let Some(r) = range {
            if o.as_ref().is_none_or(|old| r.start < old.start) {
                *o = Some(r);
            }
        }
    }
}

/// The words of a command string (`sh -c "mysql -pX db"`) with their byte
/// ranges.
pub fn words(s: &str) -> Vec<(usize, &str)> {
    s.split(|c: char| c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| (w.as_ptr() as usize - s.as_ptr() as usize, w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(line: &str) -> Vec<&str> {
        let words: Vec<&str> = line.split(' ').collect();
        secret_ranges(&words)
            .into_iter()
            .zip(&words)
            .filter_map(|(r, w)| r.map(|r| &w[r]))
            .collect()
    }

    #[test]
    fn each_program_flag_finds_its_value() {
        let cases: &[(&str, &[&str])] = &[
            ("mysql -u root -pS3cr db", &["S3cr"]),
            ("/usr/bin/mariadb -pS3cr", &["S3cr"]),
            ("sshpass -p S3cr ssh host", &["S3cr"]),
            ("sshpass -pS3cr ssh host", &["S3cr"]),
            ("docker login -u me -p S3cr ghcr.io", &["S3cr"]),
            ("podman --log-level=x login -pS3cr", &["S3cr"]),
            ("curl -u me:S3cr https://x", &["S3cr"]),
            ("curl --user me:S3cr https://x", &["S3cr"]),
            ("curl -ume:S3cr https://x", &["S3cr"]),
            ("curl -U proxy:S3cr https://x", &["S3cr"]),
            ("sudo -E redis-cli -a S3cr ping", &["S3cr"]),
            ("smbclient -U me%S3cr //h/s", &["S3cr"]),
            (
                "openssl enc -k S3cr -passin pass:S3cr2",
                &["S3cr", "pass:S3cr2"],
            ),
            ("sh -c x curl -u me:S3cr", &["S3cr"]),
            ("docker login -u mysql -p S3cr", &["S3cr"]),
        ];
        for (line, want) in cases {
            assert_eq!(&secrets(line), want, "{line}");
        }
    }

    #[test]
    fn the_same_flags_elsewhere_are_not_secrets() {
        for line in [
            "mkdir -p /a/b",
            "ssh -p 22 host",
            "cp -p a b",
            "mysql -p db",
            "docker run -p 8080:80 img",
            "curl -u me https://x",
            "redis-cli -p 6379",
            "tar -xpf a.tar",
            "mysql -P 3306 -h host",
        ] {
            assert!(secrets(line).is_empty(), "{line}: {:?}", secrets(line));
        }
    }

    #[test]
    fn words_carry_their_offsets() {
        assert_eq!(words(" a  bc\td"), vec![(1, "a"), (4, "bc"), (7, "d")]);
        assert!(words("").is_empty());
    }

    #[test]
    fn long_flags_take_their_value_after_an_equals_sign_only() {
        let cases: &[(&str, &[&str])] = &[
            ("curl --user=me:S3cr https://x", &["S3cr"]),
            ("curl --proxy-user=p:S3cr https://x", &["S3cr"]),
            ("smbclient --user=me%S3cr //h/s", &["S3cr"]),
            // A longer flag that starts with a known one is another flag.
            ("curl --username me:S3cr https://x", &[]),
            // openssl's flags take their value as the next word only.
            ("openssl enc -passinS3cr", &[]),
            // Nothing after the separator, or no separator: no secret.
            ("curl -u me: https://x", &[]),
            ("curl --user=me https://x", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(&secrets(line), want, "{line}");
        }
    }

    #[test]
    fn every_family_of_clients_is_known() {
        for line in [
            "sqlcmd -S h -P S3cr",
            "bcp t out f -PS3cr",
            "mongosh -u me -p S3cr",
            "mongodump -pS3cr",
            "ldapsearch -x -w S3cr",
            "ldappasswd -wS3cr",
            "valkey-cli -aS3cr",
            "nerdctl login -p S3cr",
            "mysqldump -pS3cr db",
        ] {
            assert_eq!(secrets(line), vec!["S3cr"], "{line}");
        }
    }
}
