//! The default policy as the Rust table it was before it became
//! `default.yml`, kept only to prove the YAML compiles to the same policy.

use super::{FileAction, Severity};

pub struct DefaultRule {
    pub patterns: &'static [&'static str],
    pub kind: &'static str,
    pub severity: Severity,
    pub expected: &'static [&'static str],
    pub write_only: bool,
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
pub const DEFAULT_RULES: &[DefaultRule] = &[
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
pub const DEFAULT_EXCLUDES: &[&str] = &[
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

pub const DEFAULT_SECRET_ENV: &[&str] = &[
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*API_KEY*",
    "*ACCESS_KEY*",
    "*PRIVATE_KEY*",
    "*CREDENTIAL*",
];

/// A compiled policy's rules, as (pattern, kind, severity, expected,
/// write_only, action).
pub type RuleFacts = Vec<(String, String, Severity, Vec<String>, bool, FileAction)>;

/// The old table's rules, in the order they were tried.
pub fn rules() -> RuleFacts {
    DEFAULT_RULES
        .iter()
        .flat_map(|d| {
            d.patterns.iter().map(|p| {
                (
                    p.to_string(),
                    d.kind.to_string(),
                    d.severity,
                    d.expected.iter().map(|s| s.to_string()).collect(),
                    d.write_only,
                    FileAction::Alert,
                )
            })
        })
        .collect()
}

pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
