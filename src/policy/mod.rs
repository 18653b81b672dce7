//! The policy: what is sensitive and how much it matters. An embedded default,
//! optionally merged with a YAML file, compiled into matchers for user space
//! and the cheap facts the kernel pre-filter needs.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::events::{AFFIX_LENS, AFFIX_MAX, KEY_LEN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::High,
        Severity::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Read(#[from] crate::input::InputError),
    #[error("invalid policy file {path}: it is not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("invalid policy file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid policy file {path}: {field}: {message}")]
    Value {
        path: PathBuf,
        field: String,
        message: String,
    },
}

// ---------------------------------------------------------------------------
// The YAML file, in the original tool's `.github/security.yml` shape.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub files: FilesSection,
    #[serde(default)]
    pub memory: MemorySection,
    #[serde(default)]
    pub performance: PerformanceSection,
    /// Decoy credential files bee-trace plants, watches and removes.
    #[serde(default)]
    pub canaries: Vec<CanaryEntry>,
    #[serde(default)]
    pub redaction: RedactionSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionSection {
    /// Regular expressions whose matches (or first capture group) are
    /// replaced in every event, added to the built-in set.
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// One entry of `canaries:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryEntry {
    pub path: String,
    /// What the decoy looks like; guessed from the file name when absent.
    #[serde(rename = "type")]
    pub kind: Option<CanaryKind>,
    /// kill (default): SIGKILL whoever opens it; alert: report only.
    pub action: Option<FileAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CanaryKind {
    Aws,
    Ssh,
    Npm,
    Netrc,
    Docker,
    Env,
    Generic,
}

impl CanaryKind {
    /// The decoy a file name suggests.
    pub fn guess(path: &Path) -> CanaryKind {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let parent = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        match (parent.as_str(), name.as_str()) {
            (".aws", _) => CanaryKind::Aws,
            (_, n) if n.starts_with("id_") || n.ends_with(".key") || parent == ".ssh" => {
                CanaryKind::Ssh
            }
            (_, ".npmrc") => CanaryKind::Npm,
            (_, ".netrc" | ".git-credentials") => CanaryKind::Netrc,
            (".docker", "config.json") => CanaryKind::Docker,
            (_, n) if n == ".env" || n.starts_with(".env.") => CanaryKind::Env,
            _ => CanaryKind::Generic,
        }
    }
}

/// What happens when a file rule matches an open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    /// Report the open.
    #[default]
    Alert,
    /// Report it, and SIGKILL the opener from the kernel before it returns
    /// to user space. Only files that exist when the policy is loaded are
    /// armed (by inode).
    Kill,
}

/// One entry of `files.rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRuleEntry {
    /// A path pattern, as in watch_read.
    pub path: String,
    #[serde(default)]
    pub action: FileAction,
    /// Default: high, critical with action kill.
    pub severity: Option<Severity>,
    /// read (default): reads and writes; write: writes only.
    pub access: Option<RuleAccess>,
    /// The `category` events carry. Default: watched_file.
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAccess {
    Read,
    Write,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    #[serde(default)]
    pub blocked_ips: Vec<String>,
    #[serde(default)]
    pub blocked_domains: Vec<String>,
    #[serde(default)]
    pub monitored_ports: Vec<u16>,
    pub alert_on_any_connection: Option<bool>,
    /// audit (default): report what would be refused; block: refuse it.
    pub mode: Option<EgressMode>,
    #[serde(default)]
    pub blocked_ports: Vec<u16>,
    /// When not empty, every other destination is refused (allowlist mode).
    #[serde(default)]
    pub allowed_endpoints: Vec<String>,
    /// Resolvers whose answers may be learned, besides /etc/resolv.conf's.
    #[serde(default)]
    pub dns_resolvers: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EgressMode {
    #[default]
    Audit,
    Block,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSection {
    #[serde(default)]
    pub watch_read: Vec<String>,
    #[serde(default)]
    pub watch_write: Vec<String>,
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    /// Rules with an action, severity or access of their own.
    #[serde(default)]
    pub rules: Vec<FileRuleEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    #[serde(default)]
    pub secret_env_patterns: Vec<String>,
    pub alert_on_memory_access: Option<bool>,
    #[serde(default)]
    pub exclude_processes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSection {
    /// Capacity of the queue between the ring-buffer workers and processing.
    pub event_buffer_size: Option<usize>,
    /// Only 1.0 is accepted: a security monitor does not sample.
    pub sampling_rate: Option<f64>,
    /// Output rate limit; events over it are counted as rate-limited. 0 = none.
    pub max_events_per_second: Option<u64>,
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

impl Endpoint {
    /// `host`, `host:port`, `[v6]:port`, `[v6/len]`, a bare IPv6 address or
    /// CIDR (no port), `a.b.c.d/len:port`, `*.domain:port`.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let t = s.trim();
        let bad_port = |p: &str| format!("`{s}`: `{p}` is not a port (1..=65535)");
        let port_of = |p: &str| -> Result<u16, String> {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| bad_port(p))
        };
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: missing `]`"))?;
            let port = match after {
                "" => None,
                a => Some(port_of(a.strip_prefix(':').ok_or_else(|| bad_port(a))?)?),
            };
            (h, port)
        } else if t.matches(':').count() > 1 {
            (t, None) // a bare IPv6 address or CIDR
        } else if let Some((h, p)) = t.rsplit_once(':') {
            (h, Some(port_of(p)?))
        } else {
            (t, None)
        };
        if host.is_empty() {
            return Err(format!("`{s}`: no host"));
        }
        let first = host.as_bytes()[0];
        let looks_ip = host.contains(':')
            || (first.is_ascii_digit()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'/'));
        let host = if looks_ip {
            EndpointHost::Net(Cidr::parse(host)?)
        } else {
            let (name, wildcard) = match host.strip_prefix("*.") {
                Some(n) => (n, true),
                None => (host, false),
            };
            validate_domain(name)?;
            EndpointHost::Domain {
                name: name.trim_end_matches('.').to_ascii_lowercase(),
                wildcard,
            }
        };
        Ok(Endpoint { host, port })
    }
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
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

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

/// One entry of network.dns_resolvers: a bare unicast address a DNS server
/// answers from (port 53).
fn parse_resolver(s: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = s.trim().parse().map_err(|_| {
        format!("{s:?} is not an IP address: write a bare address such as 192.0.2.53 or 2001:db8::53 (no port, prefix or zone)")
    })?;
    let ip = ip.to_canonical();
    let unusable =
        ip.is_unspecified() || ip.is_multicast() || matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    if unusable {
        return Err(format!(
            "{ip} is not the address of one DNS server (unspecified, multicast or broadcast)"
        ));
    }
    Ok(ip)
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub file_rules: Vec<FileRule>,
    pub canaries: Vec<Canary>,
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
    secret_env: GlobSet,
    pub exclude_processes: Vec<String>,
    pub event_buffer_size: usize,
    pub max_events_per_second: u64,
    pub redactor: crate::redact::Redactor,
}

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

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    Ok(build_glob(pattern)?.compile_matcher())
}

fn build_glob(pattern: &str) -> Result<Glob, String> {
    if pattern.is_empty() {
        return Err("empty pattern".into());
    }
    if !pattern.starts_with('/') && !pattern.starts_with("**/") {
        return Err(format!(
            "`{pattern}`: path patterns are absolute (`/etc/shadow`) or start with `**/` (`**/.ssh/id_*`)"
        ));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("`{pattern}`: {e}"))
}

fn is_literal(s: &str) -> bool {
    !s.contains(['*', '?', '[', ']', '{', '}', '\\'])
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

/// Largest performance.event_buffer_size. The queue is allocated whole at
/// start, one slot per record (about 120 bytes): this bound keeps it near
/// 128 MiB (16 Mi slots were about 2 GB).
pub const EVENT_BUFFER_MAX: usize = 1 << 20;

impl Policy {
    /// The embedded default policy.
    pub fn default_policy() -> Policy {
        Policy::build(&PolicyFile::default()).expect("the embedded default policy is valid")
    }

    /// Reads `path` and merges it over the default: lists extend the
    /// default's, scalars replace them. The file must be a regular file
    /// that only root can change (see `input`).
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        use crate::input::{read_regular, Trust, POLICY_MAX};
        let bytes = read_regular(path, POLICY_MAX, "policy file", Trust::Owner)?;
        let text =
            String::from_utf8(bytes).map_err(|_| PolicyError::NotText { path: path.into() })?;
        Policy::from_yaml(&text, path)
    }

    pub fn from_yaml(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        let file: PolicyFile = if text.trim().is_empty() {
            PolicyFile::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| PolicyError::Syntax {
                path: path.into(),
                message: e.to_string(),
            })?
        };
        Policy::build(&file).map_err(|(field, message)| PolicyError::Value {
            path: path.into(),
            field,
            message,
        })
    }

    fn build(f: &PolicyFile) -> Result<Policy, (String, String)> {
        // Canaries and explicit rules come first: the first matching rule
        // names an event, and a tripwire must not read as a routine default.
        let mut file_rules = Vec::new();
        let mut canaries: Vec<Canary> = Vec::new();
        for (i, c) in f.canaries.iter().enumerate() {
            let field = format!("canaries[{i}].path");
            let path = validate_canary_path(&c.path).map_err(|m| (field.clone(), m))?;
            if canaries.iter().any(|o| o.path == path) {
                return Err((field, format!("`{}` is listed twice", c.path)));
            }
            let action = c.action.unwrap_or(FileAction::Kill);
            let pattern = path.to_string_lossy().to_string();
            file_rules.push(FileRule {
                matcher: glob(&pattern).map_err(|m| (field.clone(), m))?,
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
        for (i, r) in f.files.rules.iter().enumerate() {
            let field = |k: &str| format!("files.rules[{i}].{k}");
            let kind = r.kind.clone().unwrap_or_else(|| "watched_file".into());
            if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err((
                    field("kind"),
                    format!("`{kind}`: use letters, digits and `_`"),
                ));
            }
            file_rules.push(FileRule {
                pattern: r.path.clone(),
                matcher: glob(&r.path).map_err(|m| (field("path"), m))?,
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
        for d in DEFAULT_RULES {
            for p in d.patterns {
                file_rules.push(FileRule {
                    pattern: (*p).into(),
                    matcher: glob(p).map_err(|m| ("default".to_string(), m))?,
                    kind: d.kind.into(),
                    severity: d.severity,
                    expected: d.expected.iter().map(|s| s.to_string()).collect(),
                    write_only: d.write_only,
                    action: FileAction::Alert,
                });
            }
        }
        for (i, p) in f.files.watch_read.iter().enumerate() {
            file_rules.push(FileRule {
                pattern: p.clone(),
                matcher: glob(p).map_err(|m| (format!("files.watch_read[{i}]"), m))?,
                kind: "watched_file".into(),
                severity: Severity::High,
                expected: Vec::new(),
                write_only: false,
                action: FileAction::Alert,
            });
        }
        for (i, p) in f.files.watch_write.iter().enumerate() {
            file_rules.push(FileRule {
                pattern: p.clone(),
                matcher: glob(p).map_err(|m| (format!("files.watch_write[{i}]"), m))?,
                kind: "protected_file".into(),
                severity: Severity::High,
                expected: Vec::new(),
                write_only: true,
                action: FileAction::Alert,
            });
        }
        let mut ex = GlobSetBuilder::new();
        for p in DEFAULT_EXCLUDES {
            ex.add(build_glob(p).map_err(|m| ("default".to_string(), m))?);
        }
        for (i, p) in f.files.exclude_paths.iter().enumerate() {
            ex.add(build_glob(p).map_err(|m| (format!("files.exclude_paths[{i}]"), m))?);
        }
        let excludes = ex
            .build()
            .map_err(|e| ("files.exclude_paths".to_string(), e.to_string()))?;

        let mut blocked_ips = Vec::new();
        for (i, s) in f.network.blocked_ips.iter().enumerate() {
            blocked_ips.push(Cidr::parse(s).map_err(|m| (format!("network.blocked_ips[{i}]"), m))?);
        }
        for (i, d) in f.network.blocked_domains.iter().enumerate() {
            validate_domain(d).map_err(|m| (format!("network.blocked_domains[{i}]"), m))?;
        }
        for (i, p) in f.network.monitored_ports.iter().enumerate() {
            if *p == 0 {
                return Err((
                    format!("network.monitored_ports[{i}]"),
                    "port 0 is not a destination port".into(),
                ));
            }
        }
        for (i, p) in f.network.blocked_ports.iter().enumerate() {
            if *p == 0 {
                return Err((
                    format!("network.blocked_ports[{i}]"),
                    "port 0 is not a destination port".into(),
                ));
            }
        }
        let mut allowed_endpoints = Vec::new();
        for (i, s) in f.network.allowed_endpoints.iter().enumerate() {
            allowed_endpoints.push(
                Endpoint::parse(s).map_err(|m| (format!("network.allowed_endpoints[{i}]"), m))?,
            );
        }
        let mut dns_resolvers = Vec::new();
        for (i, s) in f.network.dns_resolvers.iter().enumerate() {
            dns_resolvers
                .push(parse_resolver(s).map_err(|m| (format!("network.dns_resolvers[{i}]"), m))?);
        }

        let mut secret_env_patterns: Vec<String> =
            DEFAULT_SECRET_ENV.iter().map(|s| s.to_string()).collect();
        secret_env_patterns.extend(f.memory.secret_env_patterns.iter().cloned());
        let mut se = GlobSetBuilder::new();
        for (i, p) in secret_env_patterns.iter().enumerate() {
            if p.is_empty() || p.contains(['=', '\0']) {
                return Err((
                    format!("memory.secret_env_patterns[{i}]"),
                    format!("`{p}` is not a variable-name pattern"),
                ));
            }
            se.add(
                Glob::new(p)
                    .map_err(|e| (format!("memory.secret_env_patterns[{i}]"), e.to_string()))?,
            );
        }
        let secret_env = se
            .build()
            .map_err(|e| ("memory.secret_env_patterns".to_string(), e.to_string()))?;

        if let Some(rate) = f.performance.sampling_rate {
            if rate != 1.0 {
                return Err((
                    "performance.sampling_rate".into(),
                    format!("{rate} is not supported: bee-trace never samples security events; remove the key or set 1.0"),
                ));
            }
        }
        let event_buffer_size = f.performance.event_buffer_size.unwrap_or(65536);
        if !(64..=EVENT_BUFFER_MAX).contains(&event_buffer_size) {
            return Err((
                "performance.event_buffer_size".into(),
                format!("{event_buffer_size} is outside 64..={EVENT_BUFFER_MAX}: the queue is allocated whole at start"),
            ));
        }

        let redactor = crate::redact::Redactor::new(&f.redaction.patterns).map_err(|(i, m)| {
            (
                format!("redaction.patterns[{i}]"),
                format!("not a valid regular expression: {m}"),
            )
        })?;

        Ok(Policy {
            redactor,
            file_rules,
            canaries,
            excludes,
            blocked_ips,
            blocked_domains: f
                .network
                .blocked_domains
                .iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            monitored_ports: f.network.monitored_ports.clone(),
            alert_on_any_connection: f.network.alert_on_any_connection.unwrap_or(false),
            egress_mode: f.network.mode.unwrap_or_default(),
            blocked_ports: f.network.blocked_ports.clone(),
            allowed_endpoints,
            dns_resolvers,
            alert_on_memory_access: f.memory.alert_on_memory_access.unwrap_or(true),
            secret_env,
            exclude_processes: f.memory.exclude_processes.clone(),
            event_buffer_size,
            max_events_per_second: f.performance.max_events_per_second.unwrap_or(0),
        })
    }

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

    pub fn is_secret_env_name(&self, name: &str) -> bool {
        self.secret_env.is_match(name)
    }

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

/// A canary path: absolute, plain (no glob, no `.`/`..` component), and not
/// in a pseudo filesystem.
fn validate_canary_path(p: &str) -> Result<PathBuf, String> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(format!("`{p}` is not an absolute path"));
    }
    if !is_literal(p) || p.contains('\0') {
        return Err(format!(
            "`{p}`: a canary path is a plain path, not a pattern"
        ));
    }
    use std::path::Component;
    if path
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
        || p.ends_with('/')
    {
        return Err(format!(
            "`{p}`: write the path without `.`, `..` or a trailing `/`"
        ));
    }
    let first = path.components().nth(1);
    if path.components().count() < 3
        || matches!(first, Some(Component::Normal(d)) if ["proc", "sys", "dev"].contains(&d.to_str().unwrap_or("")))
    {
        return Err(format!(
            "`{p}`: a canary goes in a directory such as a home directory, not `/` or a pseudo filesystem"
        ));
    }
    Ok(path.to_path_buf())
}

fn validate_domain(d: &str) -> Result<(), String> {
    let d = d.trim_end_matches('.');
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{d}` is not a valid domain name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(yaml: &str) -> Result<Policy, PolicyError> {
        Policy::from_yaml(yaml, Path::new("test.yml"))
    }

    #[test]
    fn default_policy_matches_credentials_and_not_ordinary_files() {
        let pol = Policy::default_policy();
        let kind = |path: &str, a| pol.match_file(path, a).map(|r| r.kind.clone());
        assert_eq!(
            kind("/home/u/.ssh/id_ed25519", Access::Read).as_deref(),
            Some("ssh_key")
        );
        assert_eq!(kind("/home/u/.ssh/id_ed25519.pub", Access::Read), None);
        assert_eq!(
            kind("/root/.aws/credentials", Access::Read).as_deref(),
            Some("cloud_credential")
        );
        assert_eq!(
            kind("/srv/app/.env.production", Access::Read).as_deref(),
            Some("dotenv")
        );
        assert_eq!(
            kind("/etc/shadow", Access::Read).as_deref(),
            Some("system_credential")
        );
        assert_eq!(kind("/etc/ssl/certs/ca.pem", Access::Read), None);
        assert_eq!(kind("/etc/passwd", Access::Read), None);
        assert_eq!(
            kind("/etc/passwd", Access::Write).as_deref(),
            Some("protected_file")
        );
        assert_eq!(kind("/home/u/notes.txt", Access::Read), None);
    }

    #[test]
    fn kernel_filter_covers_every_default_rule_cheaply() {
        let k = Policy::default_policy().kernel_filter();
        assert!(k.match_all.is_empty(), "{:?}", k.match_all);
        assert!(k.names.contains("credentials"));
        assert!(k.names.contains("shadow"));
        assert!(k.prefixes.contains("id_"));
        assert!(k.prefixes.contains(".env."));
        assert!(k.suffixes.contains(".pem"));
        assert!(k.parents.contains("sudoers.d"));
        assert!(
            !k.parents.contains(".ssh"),
            "the id_ prefix is the more selective fact"
        );
    }

    #[test]
    fn kernel_filter_tries_at_most_affix_lens_distinct_lengths() {
        let mut yaml = String::from("files:\n  watch_read:\n");
        for n in 1..=10 {
            yaml.push_str(&format!("    - \"/srv/{}*\"\n", "p".repeat(n)));
        }
        let pol = Policy::from_yaml(&yaml, Path::new("t.yml")).unwrap();
        let k = pol.kernel_filter();
        let lens: BTreeSet<usize> = k.prefixes.iter().map(|p| p.len()).collect();
        assert!(lens.len() <= AFFIX_LENS, "{lens:?}");
        // The two that did not fit fall back to their parent, "srv".
        assert!(k.parents.contains("srv"));
        assert!(k.match_all.is_empty());
    }

    #[test]
    fn kernel_filter_admits_every_path_a_rule_matches() {
        // Property the kernel relies on: a path some rule matches always has
        // a name, parent, prefix or suffix in the filter.
        let pol = Policy::default_policy();
        let k = pol.kernel_filter();
        for path in [
            "/root/.ssh/id_rsa",
            "/home/a/.aws/credentials",
            "/x/.env",
            "/x/.env.local",
            "/x/server.key",
            "/etc/sudoers.d/ci",
            "/home/r/.gnupg/private-keys-v1.d/ABC.key",
            "/etc/ssh/ssh_host_ed25519_key",
            "/home/runner/.credentials",
            "/var/spool/cron/crontabs/root",
        ] {
            assert!(
                pol.match_file(path, Access::Write).is_some(),
                "{path} should match a rule"
            );
            let mut comps = path.rsplit('/');
            let name = comps.next().unwrap();
            let parent = comps.next().unwrap_or("");
            let admitted = k.names.contains(name)
                || k.parents.contains(parent)
                || k.prefixes.iter().any(|p| name.starts_with(p.as_str()))
                || k.suffixes.iter().any(|s| name.ends_with(s.as_str()));
            assert!(admitted, "{path} would be dropped in the kernel");
        }
    }

    #[test]
    fn merges_lists_and_overrides_scalars() {
        let pol = p("files:\n  watch_read: [\"/srv/secret/*.txt\"]\n  exclude_paths: [\"/tmp/**\"]\nnetwork:\n  blocked_ips: [\"10.0.0.0/8\", \"2001:db8::1\"]\n  alert_on_any_connection: true\n").unwrap();
        assert!(pol.match_file("/srv/secret/a.txt", Access::Read).is_some());
        assert!(
            pol.match_file("/root/.ssh/id_rsa", Access::Read).is_some(),
            "defaults kept"
        );
        assert!(
            pol.match_file("/tmp/.ssh/id_rsa", Access::Read).is_none(),
            "excluded"
        );
        assert!(pol.alert_on_any_connection);
        assert!(pol.blocked_ips[0].contains("10.1.2.3".parse().unwrap()));
        assert!(!pol.blocked_ips[0].contains("11.1.2.3".parse().unwrap()));
        assert!(pol.blocked_ips[1].contains("2001:db8::1".parse().unwrap()));
        assert!(pol.kernel_filter().suffixes.contains(".txt"));
    }

    #[test]
    fn rejects_bad_files_naming_line_and_field() {
        let e = p("files:\n  watch_read: [a]\n  bogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let e = p("network:\n  blocked_ips: [\"300.1.1.1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("network.blocked_ips[0]"), "{e}");
        let e = p("network:\n  monitored_ports: [70000]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = p("files:\n  watch_read: [\"relative/path\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("files.watch_read[0]"), "{e}");
        let e = p("performance:\n  sampling_rate: 0.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("never samples"), "{e}");
        let e = p("reporting:\n  x: 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
        assert!(p("").is_ok());
    }

    #[test]
    fn canaries_and_rules_with_actions() {
        let pol = p("canaries:\n  - path: /home/ci/.aws/credentials\n  - path: /home/ci/.npmrc\n    action: alert\n    type: generic\nfiles:\n  rules:\n    - path: /srv/honey/*.key\n      action: kill\n    - path: /etc/app.conf\n      access: write\n      severity: warning\n      kind: app_config\n").unwrap();
        assert_eq!(pol.canaries.len(), 2);
        assert_eq!(pol.canaries[0].kind, CanaryKind::Aws);
        assert_eq!(pol.canaries[0].action, FileAction::Kill);
        assert_eq!(pol.canaries[1].kind, CanaryKind::Generic);
        // A canary's rule comes before the default cloud-credential rule.
        let r = pol
            .match_file("/home/ci/.aws/credentials", Access::Read)
            .unwrap();
        assert_eq!(
            (r.kind.as_str(), r.severity),
            ("canary", Severity::Critical)
        );
        assert!(pol.is_tripwire(Path::new("/home/ci/.aws/credentials")));
        assert!(!pol.is_tripwire(Path::new("/home/ci/.npmrc")));
        assert!(pol.is_tripwire(Path::new("/srv/honey/a.key")));
        let r = pol.match_file("/srv/honey/a.key", Access::Read).unwrap();
        assert_eq!(
            (r.action, r.severity),
            (FileAction::Kill, Severity::Critical)
        );
        assert!(pol.match_file("/etc/app.conf", Access::Read).is_none());
        let r = pol.match_file("/etc/app.conf", Access::Write).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.severity),
            ("app_config", Severity::Warning)
        );

        let mut pol = pol;
        pol.disarm_canary(Path::new("/home/ci/.aws/credentials"));
        assert!(!pol.is_tripwire(Path::new("/home/ci/.aws/credentials")));
        assert_eq!(
            pol.match_file("/home/ci/.aws/credentials", Access::Read)
                .unwrap()
                .kind,
            "cloud_credential"
        );
    }

    #[test]
    fn bad_canaries_and_rules_are_refused_by_field() {
        for (yaml, field) in [
            ("canaries:\n  - path: relative/x\n", "canaries[0].path"),
            ("canaries:\n  - path: /home/*/x\n", "canaries[0].path"),
            ("canaries:\n  - path: /home/../etc/x\n", "canaries[0].path"),
            ("canaries:\n  - path: /proc/self/x\n", "canaries[0].path"),
            ("canaries:\n  - path: /x\n", "canaries[0].path"),
            (
                "canaries:\n  - path: /home/a/.env\n  - path: /home/a/.env\n",
                "canaries[1].path",
            ),
            ("files:\n  rules:\n    - path: x\n", "files.rules[0].path"),
            (
                "files:\n  rules:\n    - path: /x/y\n      kind: \"a b\"\n",
                "files.rules[0].kind",
            ),
        ] {
            let e = p(yaml).unwrap_err().to_string();
            assert!(e.contains(field), "{yaml}: {e}");
        }
        for yaml in [
            "canaries:\n  - path: /home/a/.env\n    action: explode\n",
            "canaries:\n  - path: /home/a/.env\n    type: gcp\n",
            "files:\n  rules:\n    - path: /x/y\n      when: now\n",
        ] {
            let e = p(yaml).unwrap_err().to_string();
            assert!(e.contains("line"), "{yaml}: {e}");
        }
    }

    #[test]
    fn the_event_queue_is_bounded_to_what_its_slots_make_sane() {
        assert!(p("performance:\n  event_buffer_size: 1048576\n").is_ok());
        for n in ["1048577", "16777216", "18446744073709551615", "63"] {
            let e = p(&format!("performance:\n  event_buffer_size: {n}\n")).unwrap_err();
            assert!(
                e.to_string().contains("performance.event_buffer_size"),
                "{e}"
            );
        }
        // A slot of the bounded channel holds one Raw and a stamp.
        let slot = std::mem::size_of::<crate::events::Raw>() + 8;
        assert!(EVENT_BUFFER_MAX * slot <= 256 << 20, "{slot}-byte slots");
    }

    #[test]
    fn dns_resolvers_are_bare_unicast_addresses() {
        let pol = p(
            "network:\n  dns_resolvers: [198.51.100.2, \"2001:db8::53\", \"::ffff:192.0.2.53\"]\n",
        )
        .unwrap();
        let want: Vec<IpAddr> = ["198.51.100.2", "2001:db8::53", "192.0.2.53"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(pol.dns_resolvers, want);
        for bad in [
            "198.51.100.0/24",
            "198.51.100.2:53",
            "fe80::1%eth0",
            "resolver.example",
            "0.0.0.0",
            "::",
            "224.0.0.251",
            "ff02::fb",
            "255.255.255.255",
        ] {
            let e = p(&format!("network:\n  dns_resolvers: [\"{bad}\"]\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("network.dns_resolvers[0]"), "{bad}: {e}");
        }
    }

    #[test]
    fn cidr_edges() {
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("::/0")
            .unwrap()
            .contains("::1".parse().unwrap()));
        assert!(Cidr::parse("192.168.1.0/23")
            .unwrap()
            .contains("192.168.0.9".parse().unwrap()));
        assert!(!Cidr::parse("192.168.1.0/24")
            .unwrap()
            .contains("192.168.0.9".parse().unwrap()));
    }
}
