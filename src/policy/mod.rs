//! The policy: what is sensitive and how much it matters. An embedded default,
//! optionally merged with a YAML file (`load`), checked value by value
//! (`validate`) and compiled (`compile`) into matchers for user space and the
//! cheap facts the kernel pre-filter needs. The compiled types live here.

mod compile;
mod load;
pub mod network;
mod validate;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher, GlobSet};

pub use compile::KernelFilter;
pub use load::{
    parse, CanaryEntry, CanaryKind, EgressMode, FileAction, FileRuleEntry, FilesSection,
    MemorySection, NetworkSection, PerformanceSection, PolicyFile, RedactionSection, RuleAccess,
};
pub use validate::{FieldError, ValueError};

use crate::event::Severity;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Read(#[from] crate::input::InputError),
    #[error("invalid policy file {path}: it is not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("invalid policy file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid policy file {path}: {error}")]
    Value { path: PathBuf, error: FieldError },
}

// ---------------------------------------------------------------------------
// The compiled policy.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One entry of network.allowed_endpoints: an address or CIDR, or a domain
/// (`*.example.com` also covers every subdomain), with an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: EndpointHost,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointHost {
    Net(Cidr),
    /// Lower case, no trailing dot; `wildcard` when written `*.name`.
    Domain {
        name: String,
        wildcard: bool,
    },
}

#[derive(Debug, Clone)]
pub struct FileRule {
    pub pattern: String,
    matcher: GlobMatcher,
    /// What kind of secret or protected file this is (ssh_key, cloud_credential ...).
    pub kind: String,
    /// Severity when read (or written) by a program not in `expected`.
    pub severity: Severity,
    /// Programs (comm or executable name) for which this access is routine: info.
    pub expected: Vec<String>,
    /// Watch writes only (a file that must not change), not reads.
    pub write_only: bool,
    /// Kill rules (tripwires) are never excluded by files.exclude_paths.
    pub action: FileAction,
}

/// A decoy file the policy asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    pub path: PathBuf,
    pub kind: CanaryKind,
    pub action: FileAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network (the kernel's LPM trie decides at run
    /// time; this is the reference its tests compare against).
    #[cfg(test)]
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn bits(a: &[u8], b: &[u8], n: u8) -> bool {
            let full = (n / 8) as usize;
            if a[..full] != b[..full] {
                return false;
            }
            let rem = n % 8;
            rem == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rem)) == 0
        }
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => bits(&a.octets(), &b.octets(), self.prefix),
            (IpAddr::V6(a), IpAddr::V6(b)) => bits(&a.octets(), &b.octets(), self.prefix),
            (IpAddr::V4(a), IpAddr::V6(b)) => b
                .to_ipv4_mapped()
                .is_some_and(|b| bits(&a.octets(), &b.octets(), self.prefix)),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub file_rules: Vec<FileRule>,
    pub canaries: Vec<Canary>,
    /// files.exclude_paths as written, the default's first.
    exclude_patterns: Vec<String>,
    excludes: GlobSet,
    pub blocked_ips: Vec<Cidr>,
    pub blocked_domains: Vec<String>,
    pub monitored_ports: Vec<u16>,
    pub alert_on_any_connection: bool,
    pub egress_mode: EgressMode,
    pub blocked_ports: Vec<u16>,
    pub allowed_endpoints: Vec<Endpoint>,
    /// network.dns_resolvers, IPv4-mapped addresses as IPv4.
    pub dns_resolvers: Vec<IpAddr>,
    pub alert_on_memory_access: bool,
    /// memory.secret_env_patterns as written, the default's first.
    secret_env_patterns: Vec<String>,
    secret_env: GlobSet,
    pub exclude_processes: Vec<String>,
    pub event_buffer_size: usize,
    pub max_events_per_second: u64,
    pub redactor: crate::sink::redact::Redactor,
    /// verdict.fail_on: the run fails on a finding at or above it.
    pub fail_on: Option<Severity>,
}

/// Largest performance.event_buffer_size. The queue is allocated whole at
/// start, one slot per record (about 120 bytes): this bound keeps it near
/// 128 MiB (16 Mi slots were about 2 GB).
pub const EVENT_BUFFER_MAX: usize = 1 << 20;

impl Policy {
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excludes.is_match(path)
    }

    /// The rule a file access matches, if any. `names` are the program's comm
    /// and executable base name, for the expected-program check.
    pub fn match_file(&self, path: &str, access: Access) -> Option<&FileRule> {
        let excluded = self.is_excluded(path);
        self.file_rules.iter().find(|r| {
            (!excluded || r.action == FileAction::Kill)
                && (!r.write_only || access == Access::Write)
                && r.matcher.is_match(path)
        })
    }

    /// The rule a kill is reported under when no rule names its path (the
    /// kernel acted on an armed inode the front end has no name for).
    pub fn unknown_tripwire() -> FileRule {
        FileRule {
            pattern: "(armed inode)".into(),
            matcher: Glob::new("/").expect("a literal glob").compile_matcher(),
            kind: "tripwire".into(),
            severity: Severity::Critical,
            expected: Vec::new(),
            write_only: false,
            action: FileAction::Kill,
        }
    }

    /// Whether an open of `path` is a tripwire: some kill rule matches it.
    pub fn is_tripwire(&self, path: &Path) -> bool {
        self.file_rules
            .iter()
            .any(|r| r.action == FileAction::Kill && r.matcher.is_match(path))
    }

    /// Drops the rule of a canary that was not planted (a real file is at
    /// its path): a real file is neither a decoy nor a tripwire.
    pub fn disarm_canary(&mut self, path: &Path) {
        let pattern = path.to_string_lossy();
        self.file_rules
            .retain(|r| !(r.kind == "canary" && r.pattern == pattern));
        self.canaries.retain(|c| c.path != path);
    }

    /// files.exclude_paths as written, the default's first.
    pub fn exclude_patterns(&self) -> &[String] {
        &self.exclude_patterns
    }

    /// memory.secret_env_patterns as written, the default's first.
    pub fn secret_env_patterns(&self) -> &[String] {
        &self.secret_env_patterns
    }

    pub fn is_secret_env_name(&self, name: &str) -> bool {
        self.secret_env.is_match(name)
    }
}

#[cfg(test)]
mod filter_tests;
#[cfg(test)]
mod tests;
