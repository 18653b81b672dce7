//! The policy's tests: loading, checking and compiling, through its public face.

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
    let slot = std::mem::size_of::<crate::abi::Raw>() + 8;
    assert!(EVENT_BUFFER_MAX * slot <= 256 << 20, "{slot}-byte slots");
}

#[test]
fn dns_resolvers_are_bare_unicast_addresses() {
    let pol =
        p("network:\n  dns_resolvers: [198.51.100.2, \"2001:db8::53\", \"::ffff:192.0.2.53\"]\n")
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

#[test]
fn a_syntax_error_names_the_file_once_and_says_error_nowhere() {
    let e = Policy::from_yaml("files:\n  bogus: 1\n", Path::new("/etc/bee/p.yml"))
        .unwrap_err()
        .to_string();
    assert_eq!(e.matches("/etc/bee/p.yml").count(), 1, "{e}");
    assert!(!e.contains("<input>") && !e.contains("error"), "{e}");
    assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
}

/// pattern, kind, severity, expected, write_only, action of each file rule.
type RuleFacts = Vec<(String, String, Severity, Vec<String>, bool, FileAction)>;

/// blocked_ips, blocked_domains, monitored_ports, blocked_ports, allowed_endpoints.
type NetworkFacts = (Vec<Cidr>, Vec<String>, Vec<u16>, Vec<u16>, Vec<Endpoint>);

/// What a compiled policy decides with, in a form that compares.
#[derive(Debug, PartialEq)]
struct Facts {
    rules: RuleFacts,
    canaries: Vec<Canary>,
    excludes: Vec<String>,
    secret_env: Vec<String>,
    network: NetworkFacts,
    resolvers: Vec<IpAddr>,
    scalars: (bool, EgressMode, bool, usize, u64),
    exclude_processes: Vec<String>,
}

fn facts(p: &Policy) -> Facts {
    Facts {
        rules: p
            .file_rules
            .iter()
            .map(|r| {
                (
                    r.pattern.clone(),
                    r.kind.clone(),
                    r.severity,
                    r.expected.clone(),
                    r.write_only,
                    r.action,
                )
            })
            .collect(),
        canaries: p.canaries.clone(),
        excludes: p.exclude_patterns().to_vec(),
        secret_env: p.secret_env_patterns().to_vec(),
        network: (
            p.blocked_ips.clone(),
            p.blocked_domains.clone(),
            p.monitored_ports.clone(),
            p.blocked_ports.clone(),
            p.allowed_endpoints.clone(),
        ),
        resolvers: p.dns_resolvers.clone(),
        scalars: (
            p.alert_on_any_connection,
            p.egress_mode,
            p.alert_on_memory_access,
            p.event_buffer_size,
            p.max_events_per_second,
        ),
        exclude_processes: p.exclude_processes.clone(),
    }
}

#[test]
fn a_file_merges_over_the_default_lists_after_rules_first_scalars_replaced() {
    let pol = p("files:\n  rules:\n    - path: /srv/a\n  watch_read: [/srv/r]\n  watch_write: [/srv/w]\n  exclude_paths: [/tmp/**]\nmemory:\n  secret_env_patterns: [MY_*]\n  alert_on_memory_access: false\n  exclude_processes: [gdb]\nnetwork:\n  mode: block\n  blocked_ips: [10.0.0.0/8]\nperformance:\n  event_buffer_size: 128\n  max_events_per_second: 9\n").unwrap();
    let mut want = facts(&Policy::default_policy());
    let rule = |p: &str, kind: &str, write_only| {
        (
            p.to_string(),
            kind.to_string(),
            Severity::High,
            Vec::new(),
            write_only,
            FileAction::Alert,
        )
    };
    want.rules.insert(0, rule("/srv/a", "watched_file", false));
    want.rules.push(rule("/srv/r", "watched_file", false));
    want.rules.push(rule("/srv/w", "protected_file", true));
    want.excludes.push("/tmp/**".into());
    want.secret_env.push("MY_*".into());
    want.network.0.push(Cidr::parse("10.0.0.0/8").unwrap());
    want.scalars = (false, EgressMode::Block, false, 128, 9);
    want.exclude_processes.push("gdb".into());
    assert_eq!(facts(&pol), want);
}

#[test]
fn a_bad_user_value_is_named_by_its_index_in_the_users_file() {
    let e = p("memory:\n  secret_env_patterns: [OK_*, \"A=B\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory.secret_env_patterns[1]"), "{e}");
}

#[test]
fn docs_policy_md_shows_the_embedded_default_verbatim() {
    let doc = include_str!("../../docs/policy.md");
    let section = doc
        .split_once("\n## The embedded default\n")
        .expect("docs/policy.md has a section on the embedded default")
        .1;
    let shown = section
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("\n```\n"))
        .map(|(yaml, _)| format!("{yaml}\n"))
        .expect("the section shows the default in a yaml block");
    assert!(
        shown == include_str!("default.yml"),
        "docs/policy.md's embedded default differs from src/policy/default.yml: copy the file into the block"
    );
}

#[test]
fn docs_policy_md_example_is_a_valid_policy() {
    let doc = include_str!("../../docs/policy.md");
    let example = doc
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("\n```\n"))
        .map(|(yaml, _)| yaml)
        .expect("docs/policy.md opens with an example in a yaml block");
    assert!(example.contains("canaries:"), "not the full example");
    if let Err(e) = Policy::from_yaml(example, Path::new("docs/policy.md")) {
        panic!("the example in docs/policy.md is refused: {e}");
    }
}

#[test]
fn each_bad_value_is_refused_naming_its_field_and_what_is_wrong() {
    for (yaml, want) in [
        ("network:\n  monitored_ports: [0]\n", "network.monitored_ports[0]: port 0 is not a destination port"),
        ("network:\n  blocked_ports: [22, 0]\n", "network.blocked_ports[1]: port 0 is not a destination port"),
        ("memory:\n  secret_env_patterns: [\"A=B\"]\n", "memory.secret_env_patterns[0]: `A=B` is not a variable-name pattern"),
        ("memory:\n  secret_env_patterns: [\"\"]\n", "memory.secret_env_patterns[0]: `` is not a variable-name pattern"),
        ("memory:\n  secret_env_patterns: [\"[\"]\n", "memory.secret_env_patterns[0]: error parsing glob '[': unclosed character class; missing ']'"),
        ("network:\n  allowed_endpoints: [\":443\"]\n", "network.allowed_endpoints[0]: `:443`: no host"),
        ("network:\n  allowed_endpoints: [\"[::1\"]\n", "network.allowed_endpoints[0]: `[::1`: missing `]`"),
        ("network:\n  allowed_endpoints: [\"a.example:99999\"]\n", "network.allowed_endpoints[0]: `a.example:99999`: `99999` is not a port (1..=65535)"),
        ("network:\n  allowed_endpoints: [\"a.example:x\"]\n", "network.allowed_endpoints[0]: `a.example:x`: `x` is not a port (1..=65535)"),
        ("network:\n  blocked_domains: [\"bad..example\"]\n", "network.blocked_domains[0]: `bad..example` is not a valid domain name"),
        ("network:\n  blocked_domains: [\"-x.example\"]\n", "network.blocked_domains[0]: `-x.example` is not a valid domain name"),
        ("network:\n  blocked_ips: [\"10.0.0.0/40\"]\n", "network.blocked_ips[0]: `10.0.0.0/40`: prefix length must be 0..=32"),
        ("network:\n  blocked_ips: [\"::/129\"]\n", "network.blocked_ips[0]: `::/129`: prefix length must be 0..=128"),
        ("files:\n  watch_read: [\"\"]\n", "files.watch_read[0]: empty pattern"),
        ("files:\n  watch_read: [\"/a/[\"]\n", "files.watch_read[0]: `/a/[`: error parsing glob '/a/[': unclosed character class; missing ']'"),
        ("files:\n  exclude_paths: [\"x\"]\n", "files.exclude_paths[0]: `x`: path patterns are absolute (`/etc/shadow`) or start with `**/` (`**/.ssh/id_*`)"),
        ("files:\n  rules:\n    - {path: /a, kind: \"bad kind\"}\n", "files.rules[0].kind: `bad kind`: use letters, digits and `_`"),
        ("canaries:\n  - path: relative\n", "canaries[0].path: `relative` is not an absolute path"),
        ("canaries:\n  - path: /home/*/x\n", "canaries[0].path: `/home/*/x`: a canary path is a plain path, not a pattern"),
        ("canaries:\n  - path: /home/../x\n", "canaries[0].path: `/home/../x`: write the path without `.`, `..` or a trailing `/`"),
        ("canaries:\n  - path: /x\n", "canaries[0].path: `/x`: a canary goes in a directory such as a home directory, not `/` or a pseudo filesystem"),
        ("canaries:\n  - path: /proc/x\n", "canaries[0].path: `/proc/x`: a canary goes in a directory such as a home directory, not `/` or a pseudo filesystem"),
        ("canaries:\n  - path: /home/a/x\n  - path: /home/a/x\n", "canaries[1].path: `/home/a/x` is listed twice"),
        ("performance:\n  event_buffer_size: 10\n", "performance.event_buffer_size: 10 is outside 64..=1048576: the queue is allocated whole at start"),
    ] {
        let e = p(yaml).unwrap_err().to_string();
        assert_eq!(e, format!("invalid policy file test.yml: {want}"), "{yaml}");
    }
    let e = p("redaction:\n  patterns: [\"(\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "invalid policy file test.yml: redaction.patterns[0]: not a valid regular expression: "
        ),
        "{e}"
    );
}

#[test]
fn an_ipv4_range_holds_its_ipv6_mapped_addresses_and_not_the_reverse() {
    let v4 = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(v4.contains("::ffff:10.1.2.3".parse().unwrap()));
    assert!(!v4.contains("::ffff:11.1.2.3".parse().unwrap()));
    assert!(!v4.contains("2001:db8::1".parse().unwrap()));
    let v6 = Cidr::parse("::ffff:0:0/96").unwrap();
    assert!(!v6.contains("10.1.2.3".parse().unwrap()));
    let bare = Cidr::parse("2001:db8::1").unwrap();
    assert!(bare.contains("2001:db8::1".parse().unwrap()));
    assert!(!bare.contains("2001:db8::2".parse().unwrap()));
}

#[test]
fn a_canary_kind_is_guessed_from_its_file_name_and_directory() {
    for (path, kind) in [
        ("/root/.aws/config", CanaryKind::Aws),
        ("/root/.ssh/id_ed25519", CanaryKind::Ssh),
        ("/srv/tls/server.key", CanaryKind::Ssh),
        ("/root/.ssh/deploy", CanaryKind::Ssh),
        ("/home/u/.npmrc", CanaryKind::Npm),
        ("/home/u/.netrc", CanaryKind::Netrc),
        ("/home/u/.git-credentials", CanaryKind::Netrc),
        ("/home/u/.docker/config.json", CanaryKind::Docker),
        ("/srv/app/config.json", CanaryKind::Generic),
        ("/srv/app/.env", CanaryKind::Env),
        ("/srv/app/.env.production", CanaryKind::Env),
        ("/srv/app/.envrc", CanaryKind::Generic),
        ("/", CanaryKind::Generic),
    ] {
        assert_eq!(CanaryKind::guess(Path::new(path)), kind, "{path}");
    }
}
