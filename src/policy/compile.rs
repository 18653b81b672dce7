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
};
use crate::abi::{AFFIX_LENS, AFFIX_MAX, KEY_LEN};
use crate::event::Severity;

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

/// Every entry of one list in each of `layers`, with the field it is in,
/// indexed within its own file.
fn each<'a, T: 'a>(
    layers: &[&'a PolicyFile],
    name: &'a str,
    list: impl Fn(&'a PolicyFile) -> &'a [T] + 'a,
) -> impl Iterator<Item = (String, &'a T)> + 'a {
    let lists: Vec<&'a [T]> = layers.iter().map(|f| list(f)).collect();
    lists.into_iter().flat_map(move |l| {
        l.iter()
            .enumerate()
            .map(move |(i, v)| (format!("{name}[{i}]"), v))
    })
}

impl Policy {
    /// `user` merged over `default`: lists extend the default's (the user's
    /// file rules are tried first), scalars replace the default's.
    pub(super) fn build(default: &PolicyFile, user: &PolicyFile) -> Result<Policy, FieldError> {
        let both = [default, user];
        let (mut file_rules, canaries) = canaries(&both)?;
        file_rules.extend(explicit_rules(user)?);
        file_rules.extend(explicit_rules(default)?);
        file_rules.extend(watch_rules(&both)?);
        check_network(&both)?;
        let (exclude_patterns, excludes) =
            glob_set(&both, "files.exclude_paths", |f| &f.files.exclude_paths)?;
        let (secret_env_patterns, secret_env) =
            glob_set(&both, "memory.secret_env_patterns", |f| {
                &f.memory.secret_env_patterns
            })?;
        let scalar = |get: &dyn Fn(&PolicyFile) -> Option<bool>| get(user).or(get(default));
        Ok(Policy {
            redactor: redactor(&both)?,
            file_rules,
            canaries,
            exclude_patterns,
            excludes,
            blocked_ips: each(&both, "network.blocked_ips", |f| &f.network.blocked_ips)
                .map(|(field, s)| Cidr::parse(s).in_field(field))
                .collect::<Result<_, _>>()?,
            blocked_domains: each(&both, "", |f| &f.network.blocked_domains)
                .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            monitored_ports: each(&both, "", |f| &f.network.monitored_ports)
                .map(|(_, p)| *p)
                .collect(),
            alert_on_any_connection: scalar(&|f| f.network.alert_on_any_connection)
                .unwrap_or_default(),
            egress_mode: user
                .network
                .mode
                .or(default.network.mode)
                .unwrap_or_default(),
            blocked_ports: each(&both, "", |f| &f.network.blocked_ports)
                .map(|(_, p)| *p)
                .collect(),
            allowed_endpoints: each(&both, "network.allowed_endpoints", |f| {
                &f.network.allowed_endpoints
            })
            .map(|(field, s)| Endpoint::parse(s).in_field(field))
            .collect::<Result<_, _>>()?,
            dns_resolvers: each(&both, "network.dns_resolvers", |f| &f.network.dns_resolvers)
                .map(|(field, s)| parse_resolver(s).in_field(field))
                .collect::<Result<_, _>>()?,
            alert_on_memory_access: scalar(&|f| f.memory.alert_on_memory_access)
                .unwrap_or_default(),
            secret_env_patterns,
            secret_env,
            exclude_processes: each(&both, "", |f| &f.memory.exclude_processes)
                .map(|(_, p)| p.clone())
                .collect(),
            event_buffer_size: performance(default, user)?,
            max_events_per_second: user
                .performance
                .max_events_per_second
                .or(default.performance.max_events_per_second)
                .unwrap_or_default(),
            fail_on: user.verdict.fail_on.or(default.verdict.fail_on),
        })
    }
}

/// Canaries and their rules. Canaries and explicit rules come first: the
/// first matching rule names an event, and a tripwire must not read as a
/// routine default.
fn canaries(layers: &[&PolicyFile]) -> Result<(Vec<FileRule>, Vec<Canary>), FieldError> {
    let mut file_rules = Vec::new();
    let mut canaries: Vec<Canary> = Vec::new();
    for (i, c) in each(layers, "canaries", |f| &f.canaries) {
        let field = format!("{i}.path");
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

/// `files.rules`: rules with an action, severity, access, kind or expected
/// programs of their own.
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
            expected: r.expected.clone(),
            write_only: r.access == Some(RuleAccess::Write),
            action: r.action,
        });
    }
    Ok(file_rules)
}

/// `files.watch_read` and `files.watch_write`, tried after every other rule.
fn watch_rules(layers: &[&PolicyFile]) -> Result<Vec<FileRule>, FieldError> {
    let mut file_rules = Vec::new();
    for (field, p) in each(layers, "files.watch_read", |f| &f.files.watch_read) {
        file_rules.push(plain_rule(p, "watched_file", false).in_field(field)?);
    }
    for (field, p) in each(layers, "files.watch_write", |f| &f.files.watch_write) {
        file_rules.push(plain_rule(p, "protected_file", true).in_field(field)?);
    }
    Ok(file_rules)
}

/// The network values that are checked but kept as written.
fn check_network(layers: &[&PolicyFile]) -> Result<(), FieldError> {
    for (field, d) in each(layers, "network.blocked_domains", |f| {
        &f.network.blocked_domains
    }) {
        validate_domain(d).in_field(field)?;
    }
    let monitored = each(layers, "network.monitored_ports", |f| {
        &f.network.monitored_ports
    });
    let blocked = each(layers, "network.blocked_ports", |f| {
        &f.network.blocked_ports
    });
    for (field, p) in monitored.chain(blocked) {
        validate_port(*p).in_field(field)?;
    }
    Ok(())
}

/// A list of path globs (`files.exclude_paths`) or variable-name globs
/// (`memory.secret_env_patterns`), as written and as one matcher.
fn glob_set(
    layers: &[&PolicyFile],
    name: &'static str,
    list: impl Fn(&PolicyFile) -> &[String] + 'static,
) -> Result<(Vec<String>, GlobSet), FieldError> {
    let paths = name == "files.exclude_paths";
    let mut set = GlobSetBuilder::new();
    let mut patterns = Vec::new();
    for (field, p) in each(layers, name, list) {
        let g = if paths {
            build_glob(p)
        } else {
            env_name_glob(p)
        };
        set.add(g.in_field(field)?);
        patterns.push(p.clone());
    }
    let set = set
        .build()
        .map_err(|e| ValueError::Glob(e.to_string()))
        .in_field(name)?;
    Ok((patterns, set))
}

fn redactor(layers: &[&PolicyFile]) -> Result<crate::sink::redact::Redactor, FieldError> {
    let patterns: Vec<String> = layers
        .iter()
        .flat_map(|f| f.redaction.patterns.iter().cloned())
        .collect();
    crate::sink::redact::Redactor::new(&patterns).map_err(|e| FieldError {
        field: format!("redaction.patterns[{}]", e.index),
        error: ValueError::BadRegex(e.message),
    })
}

/// Checks `performance:` and returns the queue's size.
fn performance(default: &PolicyFile, user: &PolicyFile) -> Result<usize, FieldError> {
    if let Some(rate) = user.performance.sampling_rate {
        validate_sampling(rate).in_field("performance.sampling_rate")?;
    }
    let size = user
        .performance
        .event_buffer_size
        .or(default.performance.event_buffer_size)
        .unwrap_or_default();
    validate_buffer_size(size).in_field("performance.event_buffer_size")?;
    Ok(size)
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
    /// tried under each of `homes` (the session finds the host's). Their
    /// inodes let the kernel catch a hardlink under any name.
    pub fn seed_files(&self, homes: &[PathBuf]) -> Vec<PathBuf> {
        let mut out = BTreeSet::new();
        for r in &self.file_rules {
            let candidates: Vec<PathBuf> = match r.pattern.strip_prefix("**/") {
                Some(rest) => homes.iter().map(|h| h.join(rest)).collect(),
                None => vec![PathBuf::from(&r.pattern)],
            };
            for c in candidates {
                for p in expand_bounded(c) {
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

/// `expand_one_level` given up when the file system does not answer (a
/// home can hold a FUSE mount of its owner's that never answers).
fn expand_bounded(path: PathBuf) -> Vec<PathBuf> {
    use crate::fsafe::lookout;
    let what = format!(
        "looking in {} at start (files there are not watched by inode)",
        crate::escape::terminal(&crate::escape::decode_path(&path))
    );
    lookout::shared()
        .run(&what, lookout::AT_START, move || expand_one_level(&path))
        .unwrap_or_default()
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
