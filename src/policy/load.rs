//! Reading a policy file: the YAML shape it is written in, and the one parser
//! every policy goes through.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Policy, PolicyError};
use crate::event::Severity;
use crate::input::{read_regular, Trust, POLICY_MAX};

/// A policy file, in the original tool's `.github/security.yml` shape.
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
    #[serde(default)]
    pub verdict: VerdictSection,
}

/// `verdict:`, what makes a run fail (report/verdict.rs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictSection {
    /// The run exits non-zero when an event or signal at or above this
    /// severity occurred, or a connect was blocked (`--fail-on`).
    pub fail_on: Option<Severity>,
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
    /// Programs (comm or executable name) for which this access is
    /// routine: their events are info.
    #[serde(default)]
    pub expected: Vec<String>,
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
/// The embedded default policy, parsed by the same loader as a user's file.
const DEFAULT_YAML: &str = include_str!("default.yml");

/// Where errors in the embedded default say they are.
const DEFAULT_NAME: &str = "(embedded default policy)";

fn default_file() -> PolicyFile {
    parse(DEFAULT_YAML, Path::new(DEFAULT_NAME)).expect("the embedded default policy parses")
}

impl Policy {
    /// The embedded default policy.
    pub fn default_policy() -> Policy {
        Policy::build(&default_file(), &PolicyFile::default())
            .expect("the embedded default policy is valid")
    }

    /// Reads `path` and merges it over the default: lists extend the
    /// default's, scalars replace them. The file must be a regular file
    /// that only root can change (see `input`).
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = read_regular(path, POLICY_MAX, "policy file", Trust::Owner)?;
        let text =
            String::from_utf8(bytes).map_err(|_| PolicyError::NotText { path: path.into() })?;
        Policy::from_yaml(&text, path)
    }

    pub fn from_yaml(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        let file = parse(text, path)?;
        Policy::build(&default_file(), &file).map_err(|error| PolicyError::Value {
            path: path.into(),
            error,
        })
    }
}

/// The YAML text of a policy file, `path` naming it in errors.
pub fn parse(text: &str, path: &Path) -> Result<PolicyFile, PolicyError> {
    if text.trim().is_empty() {
        return Ok(PolicyFile::default());
    }
    serde_saphyr::from_str(text).map_err(|e| PolicyError::Syntax {
        path: path.into(),
        message: syntax_message(&e),
    })
}

/// The parser's message with its line and column, without its `error:`
/// title or its source snippet: the snippet names the text `<input>`, and
/// the file is already named once in front of the message.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    e.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    })
}
