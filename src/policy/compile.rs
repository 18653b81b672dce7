//! Compiling a checked policy file into the policy bee-trace runs: the file
//! rules in the order they are tried, the matchers, and the cheap facts the
//! kernel's file filter decides on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};

use super::validate::{
    build_glob, env_name_glob, glob, is_literal, parse_resolver, validate_buffer_size,
    validate_canary_path, validate_domain, validate_kind, validate_port, validate_sampling,
    FieldError, InField, ValueError,
};
use super::{
    Canary, CanaryKind, Cidr, Endpoint, FileAction, FileRule, Policy, PolicyFile, RuleAccess,
    Severity,
};
use crate::events::{AFFIX_LENS, AFFIX_MAX, KEY_LEN};

/// The cheap facts the kernel pre-filter decides on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KernelFilter {
    pub names: BTreeSet<String>,
    pub parents: BTreeSet<String>,
    pub prefixes: BTreeSet<String>,
    pub suffixes: BTreeSet<String>,
    /// Patterns no cheap fact covers: every open is resolved while any exists.
    pub match_all: Vec<String>,
}

struct DefaultRule {
    patterns: &'static [&'static str],
    kind: &'static str,
    severity: Severity,
    expected: &'static [&'static str],
    write_only: bool,
}

const SSH_CLIENTS: &[&str] = &[
    "ssh",
    "sshd",
    "ssh-agent",
    "ssh-add",
    "ssh-keygen",
    "scp",
    "sftp",
    "sshd-session",
];

/// The embedded default: useful on a CI runner or a workstation as it is.
const DEFAULT_RULES: &[DefaultRule] = &[
    DefaultRule {
        patterns: &[
            "**/.ssh/id_*",
            "**/.ssh/*_rsa",
            "**/.ssh/*_ed25519",
            "**/.ssh/*_ecdsa",
        ],
        kind: "ssh_key",
        severity: Severity::Critical,
        expected: SSH_CLIENTS,
        write_only: false,
    },
    DefaultRule {
        patterns: &["/etc/ssh/ssh_host_*_key"],
        kind: "ssh_host_key",
        severity: Severity::Critical,
        expected: SSH_CLIENTS,
        write_only: false,
    },
    DefaultRule {
        patterns: &[
            "**/.aws/credentials",
            "**/.aws/config",
            "**/.aws/sso/cache/*.json",
        ],
        kind: "cloud_credential",
        severity: Severity::Critical,
        expected: &["aws", "aws_completer"],
        write_only: false,
    },
    DefaultRule {
        patterns: &[
            "**/.config/gcloud/credentials.db",
            "**/.config/gcloud/access_tokens.db",
            "**/.config/gcloud/application_default_credentials.json",
            "**/.config/gcloud/legacy_credentials/*/adc.json",
        ],
        kind: "cloud_credential",
        severity: Severity::Critical,
        expected: &["gcloud"],
        write_only: false,
    },
    DefaultRule {
        patterns: &[
            "**/.azure/accessTokens.json",
            "**/.azure/msal_token_cache.json",
            "**/.azure/msal_token_cache.bin",
            "**/.azure/service_principal_entries.json",
        ],
        kind: "cloud_credential",
        severity: Severity::Critical,
        expected: &["az"],
        write_only: false,
    },
    DefaultRule {
        patterns: &["**/.kube/config"],
        kind: "kube_config",
        severity: Severity::High,
        expected: &["kubectl", "helm", "k9s", "kubelet"],
        write_only: false,
    },
    DefaultRule {
        patterns: &["**/.docker/config.json"],
        kind: "registry_credential",
        severity: Severity::High,
        expected: &["docker", "dockerd", "podman", "buildah", "skopeo"],
        write_only: false,
    },
    DefaultRule {
        patterns: &["**/.npmrc"],
        kind: "registry_credential",
        severity: Severity::High,
        expected: &["npm", "npx", "node", "yarn", "pnpm"],
        write_only: false,
    },
    DefaultRule {
        patterns: &["**/.pypirc"],
        kind: "registry_credential",
        severity: Severity::High,
        expected: &["twine"],
        write_only: false,
    },
    DefaultRule {
        patterns: &[
            "**/.netrc",
            "**/.git-credentials",
            "**/.config/gh/hosts.yml",
        ],
        kind: "token",
        severity: Severity::High,
        expected: &[
            "git",
            "git-remote-http",
            "git-remote-https",
            "curl",
            "gh",
            "git-credential-store",
        ],
        write_only: false,
    },
    DefaultRule {
        patterns: &["**/.gnupg/private-keys-v1.d/*", "**/.gnupg/secring.gpg"],
        kind: "gpg_key",
        severity: Severity::High,
        expected: &["gpg", "gpg2", "gpg-agent", "gpgsm"],
        write_only: false,
    },
    DefaultRule {
        patterns: &["**/.env", "**/.env.*"],
        kind: "dotenv",
        severity: Severity::High,
        expected: &[],
        write_only: false,
    },
    DefaultRule {
        patterns: &["**/*.key"],
        kind: "private_key",
        severity: Severity::High,
        expected: &[],
        write_only: false,
    },
    // A .pem is as often a public certificate as a key: worth a look, no more.
    DefaultRule {
        patterns: &["**/*.pem"],
        kind: "pem_file",
        severity: Severity::Warning,
        expected: &[],
        write_only: false,
    },
    DefaultRule {
        patterns: &["/etc/shadow", "/etc/gshadow"],
        kind: "system_credential",
        severity: Severity::Critical,
        expected: &[
            "sudo",
            "su",
            "login",
            "passwd",
            "unix_chkpwd",
            "sshd",
            "chpasswd",
            "useradd",
            "usermod",
            "groupadd",
            "vipw",
            "pwck",
            "sshd-session",
        ],
        write_only: false,
    },
    DefaultRule {
        patterns: &["/etc/sudoers", "/etc/sudoers.d/*"],
        kind: "sudoers",
        severity: Severity::High,
        expected: &["sudo", "visudo"],
        write_only: false,
    },
    // CI runner credentials: GitHub Actions runner registration, GitLab runner config.
    DefaultRule {
        patterns: &[
            "**/.credentials",
            "**/.credentials_rsaparams",
            "**/.runner",
            "/etc/gitlab-runner/config.toml",
        ],
        kind: "ci_credential",
        severity: Severity::Critical,
        expected: &["Runner.Listener", "Runner.Worker", "gitlab-runner"],
        write_only: false,
    },
    // Files that must not change.
    DefaultRule {
        patterns: &[
            "/etc/passwd",
            "/etc/group",
            "/etc/ld.so.preload",
            "/etc/crontab",
            "/etc/cron.d/*",
            "/var/spool/cron/crontabs/*",
            "**/.ssh/authorized_keys",
        ],
        kind: "protected_file",
        severity: Severity::High,
        expected: &[
            "passwd", "useradd", "usermod", "userdel", "groupadd", "groupmod", "vipw", "chfn",
            "chsh", "crontab",
        ],
        write_only: true,
    },
];

/// Excluded by default: public certificates that happen to be `*.pem`, public keys.
const DEFAULT_EXCLUDES: &[&str] = &[
    "**/*.pub",
    // CA bundles shipped with language runtimes (certifi, node, ...).
    "**/cacert.pem",
    "**/ca-bundle.pem",
    "**/ca-certificates.pem",
    "**/certifi/*.pem",
    "/etc/ssl/certs/**",
    "/usr/share/ca-certificates/**",
    "/etc/ca-certificates/**",
    "/usr/lib/ssl/certs/**",
    "/etc/pki/ca-trust/**",
    "/usr/share/**",
    "/usr/lib/**",
    "/proc/**",
    "/sys/**",
];

const DEFAULT_SECRET_ENV: &[&str] = &[
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*API_KEY*",
    "*ACCESS_KEY*",
    "*PRIVATE_KEY*",
    "*CREDENTIAL*",
];

/// A file rule with no action, expected programs or kind of its own.
fn plain_rule(pattern: &str, kind: &str, write_only: bool) -> Result<FileRule, ValueError> {
    Ok(FileRule {
        pattern: pattern.into(),
        matcher: glob(pattern)?,
        kind: kind.into(),
        severity: Severity::High,
        expected: Vec::new(),
        write_only,
        action: FileAction::Alert,
    })
}

impl Policy {
    pub(super) fn build(f: &PolicyFile) -> Result<Policy, FieldError> {
        let (mut file_rules, canaries) = canaries(f)?;
        file_rules.extend(explicit_rules(f)?);
        file_rules.extend(default_rules()?);
        file_rules.extend(watch_rules(f)?);
        let net = &f.network;
        let blocked_ips = net
            .blocked_ips
            .iter()
            .enumerate()
            .map(|(i, s)| Cidr::parse(s).in_field(format!("network.blocked_ips[{i}]")))
            .collect::<Result<_, _>>()?;
        check_network(f)?;
        let allowed_endpoints = net
            .allowed_endpoints
            .iter()
            .enumerate()
            .map(|(i, s)| Endpoint::parse(s).in_field(format!("network.allowed_endpoints[{i}]")))
            .collect::<Result<_, _>>()?;
        let dns_resolvers = net
            .dns_resolvers
            .iter()
            .enumerate()
            .map(|(i, s)| parse_resolver(s).in_field(format!("network.dns_resolvers[{i}]")))
            .collect::<Result<_, _>>()?;
        let secret_env = secret_env(f)?;
        let event_buffer_size = performance(f)?;
        let redactor =
            crate::redact::Redactor::new(&f.redaction.patterns).map_err(|(i, m)| FieldError {
                field: format!("redaction.patterns[{i}]"),
                error: ValueError::BadRegex(m),
            })?;
        Ok(Policy {
            redactor,
            file_rules,
            canaries,
            excludes: excludes(f)?,
            blocked_ips,
            blocked_domains: net
                .blocked_domains
                .iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            monitored_ports: net.monitored_ports.clone(),
            alert_on_any_connection: net.alert_on_any_connection.unwrap_or(false),
            egress_mode: net.mode.unwrap_or_default(),
            blocked_ports: net.blocked_ports.clone(),
            allowed_endpoints,
            dns_resolvers,
            alert_on_memory_access: f.memory.alert_on_memory_access.unwrap_or(true),
            secret_env,
            exclude_processes: f.memory.exclude_processes.clone(),
            event_buffer_size,
            max_events_per_second: f.performance.max_events_per_second.unwrap_or(0),
        })
    }
}

/// Canaries and their rules. Canaries and explicit rules come first: the
/// first matching rule names an event, and a tripwire must not read as a
/// routine default.
fn canaries(f: &PolicyFile) -> Result<(Vec<FileRule>, Vec<Canary>), FieldError> {
    let mut file_rules = Vec::new();
    let mut canaries: Vec<Canary> = Vec::new();
    for (i, c) in f.canaries.iter().enumerate() {
        let field = format!("canaries[{i}].path");
        let path = validate_canary_path(&c.path).in_field(&field)?;
        if canaries.iter().any(|o| o.path == path) {
            return Err(ValueError::Twice(c.path.clone())).in_field(field);
        }
        let action = c.action.unwrap_or(FileAction::Kill);
        let pattern = path.to_string_lossy().to_string();
        file_rules.push(FileRule {
            matcher: glob(&pattern).in_field(&field)?,
            pattern,
            kind: "canary".into(),
            severity: Severity::Critical,
            expected: Vec::new(),
            write_only: false,
            action,
        });
        canaries.push(Canary {
            kind: c.kind.unwrap_or_else(|| CanaryKind::guess(&path)),
            path,
            action,
        });
    }
    Ok((file_rules, canaries))
}

/// `files.rules`: rules with an action, severity, access or kind of their own.
fn explicit_rules(f: &PolicyFile) -> Result<Vec<FileRule>, FieldError> {
    let mut file_rules = Vec::new();
    for (i, r) in f.files.rules.iter().enumerate() {
        let field = |k: &str| format!("files.rules[{i}].{k}");
        let kind = r.kind.clone().unwrap_or_else(|| "watched_file".into());
        validate_kind(&kind).in_field(field("kind"))?;
        file_rules.push(FileRule {
            pattern: r.path.clone(),
            matcher: glob(&r.path).in_field(field("path"))?,
            kind,
            severity: r.severity.unwrap_or(match r.action {
                FileAction::Kill => Severity::Critical,
                FileAction::Alert => Severity::High,
            }),
            expected: Vec::new(),
            write_only: r.access == Some(RuleAccess::Write),
            action: r.action,
        });
    }
    Ok(file_rules)
}

fn default_rules() -> Result<Vec<FileRule>, FieldError> {
    let mut file_rules = Vec::new();
    for d in DEFAULT_RULES {
        for p in d.patterns {
            file_rules.push(FileRule {
                pattern: (*p).into(),
                matcher: glob(p).in_field("default")?,
                kind: d.kind.into(),
                severity: d.severity,
                expected: d.expected.iter().map(|s| s.to_string()).collect(),
                write_only: d.write_only,
                action: FileAction::Alert,
            });
        }
    }
    Ok(file_rules)
}

/// `files.watch_read` and `files.watch_write`, tried after every other rule.
fn watch_rules(f: &PolicyFile) -> Result<Vec<FileRule>, FieldError> {
    let mut file_rules = Vec::new();
    for (i, p) in f.files.watch_read.iter().enumerate() {
        file_rules
            .push(plain_rule(p, "watched_file", false).in_field(format!("files.watch_read[{i}]"))?);
    }
    for (i, p) in f.files.watch_write.iter().enumerate() {
        file_rules.push(
            plain_rule(p, "protected_file", true).in_field(format!("files.watch_write[{i}]"))?,
        );
    }
    Ok(file_rules)
}

fn excludes(f: &PolicyFile) -> Result<GlobSet, FieldError> {
    let mut ex = GlobSetBuilder::new();
    for p in DEFAULT_EXCLUDES {
        ex.add(build_glob(p).in_field("default")?);
    }
    for (i, p) in f.files.exclude_paths.iter().enumerate() {
        ex.add(build_glob(p).in_field(format!("files.exclude_paths[{i}]"))?);
    }
    ex.build()
        .map_err(|e| ValueError::Glob(e.to_string()))
        .in_field("files.exclude_paths")
}

/// The network values that are checked but kept as written.
fn check_network(f: &PolicyFile) -> Result<(), FieldError> {
    let net = &f.network;
    for (i, d) in net.blocked_domains.iter().enumerate() {
        validate_domain(d).in_field(format!("network.blocked_domains[{i}]"))?;
    }
    for (i, p) in net.monitored_ports.iter().enumerate() {
        validate_port(*p).in_field(format!("network.monitored_ports[{i}]"))?;
    }
    for (i, p) in net.blocked_ports.iter().enumerate() {
        validate_port(*p).in_field(format!("network.blocked_ports[{i}]"))?;
    }
    Ok(())
}

fn secret_env(f: &PolicyFile) -> Result<GlobSet, FieldError> {
    let mut se = GlobSetBuilder::new();
    let patterns = DEFAULT_SECRET_ENV
        .iter()
        .map(|s| s.to_string())
        .chain(f.memory.secret_env_patterns.iter().cloned());
    for (i, p) in patterns.enumerate() {
        se.add(env_name_glob(&p).in_field(format!("memory.secret_env_patterns[{i}]"))?);
    }
    se.build()
        .map_err(|e| ValueError::Glob(e.to_string()))
        .in_field("memory.secret_env_patterns")
}

/// Checks `performance:` and returns the queue's size.
fn performance(f: &PolicyFile) -> Result<usize, FieldError> {
    if let Some(rate) = f.performance.sampling_rate {
        validate_sampling(rate).in_field("performance.sampling_rate")?;
    }
    let event_buffer_size = f.performance.event_buffer_size.unwrap_or(65536);
    validate_buffer_size(event_buffer_size).in_field("performance.event_buffer_size")?;
    Ok(event_buffer_size)
}

impl Policy {
    /// Cheap facts for the kernel: every path a rule can match has its own
    /// name, its parent's name, a prefix or a suffix in these sets.
    pub fn kernel_filter(&self) -> KernelFilter {
        let mut k = KernelFilter::default();
        // The kernel tries at most AFFIX_LENS distinct prefix (suffix)
        // lengths; a pattern needing another one falls through to a weaker
        // fact, or to match_all.
        let room = |set: &BTreeSet<String>, s: &str| {
            let lens: BTreeSet<usize> = set.iter().map(|x| x.len()).collect();
            lens.contains(&s.len()) || lens.len() < AFFIX_LENS
        };
        for r in &self.file_rules {
            let comps: Vec<&str> = r.pattern.split('/').filter(|c| !c.is_empty()).collect();
            let last = comps.last().copied().unwrap_or("");
            let parent = if comps.len() >= 2 {
                comps[comps.len() - 2]
            } else {
                ""
            };
            let fits = |s: &str| !s.is_empty() && s.len() < KEY_LEN;
            let affix = |s: &str| is_literal(s) && !s.is_empty() && s.len() <= AFFIX_MAX;
            if is_literal(last) && fits(last) {
                k.names.insert(last.into());
            } else if let Some(prefix) = last
                .strip_suffix('*')
                .filter(|p| affix(p) && room(&k.prefixes, p))
            {
                k.prefixes.insert(prefix.into());
            } else if let Some(suffix) = last
                .strip_prefix('*')
                .filter(|s| affix(s) && room(&k.suffixes, s))
            {
                k.suffixes.insert(suffix.into());
            } else if is_literal(parent) && parent != "**" && fits(parent) {
                k.parents.insert(parent.into());
            } else {
                k.match_all.push(r.pattern.clone());
            }
        }
        k
    }

    /// Existing files the rules name, found without a filesystem crawl: literal
    /// paths, one glob level under a literal directory, and `**/` patterns
    /// tried under every home directory. Their inodes let the kernel catch a
    /// hardlink under any name.
    pub fn seed_files(&self) -> Vec<PathBuf> {
        let mut homes = vec![PathBuf::from("/root")];
        if let Ok(rd) = std::fs::read_dir("/home") {
            homes.extend(rd.flatten().map(|e| e.path()));
        }
        let mut out = BTreeSet::new();
        for r in &self.file_rules {
            let candidates: Vec<PathBuf> = match r.pattern.strip_prefix("**/") {
                Some(rest) => homes.iter().map(|h| h.join(rest)).collect(),
                None => vec![PathBuf::from(&r.pattern)],
            };
            for c in candidates {
                for p in expand_one_level(&c) {
                    if r.matcher.is_match(&p)
                        && (r.action == FileAction::Kill || !self.is_excluded(&p.to_string_lossy()))
                    {
                        out.insert(p);
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

/// `path` itself when it has no glob characters; otherwise the entries of its
/// literal parent directory (only the last component may be a glob).
fn expand_one_level(path: &Path) -> Vec<PathBuf> {
    let s = path.to_string_lossy();
    if is_literal(&s) {
        return if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let Some(parent) = path.parent() else {
        return Vec::new();
    };
    if !is_literal(&parent.to_string_lossy()) {
        return Vec::new();
    }
    match std::fs::read_dir(parent) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .take(4096)
            .collect(),
        Err(_) => Vec::new(),
    }
}
