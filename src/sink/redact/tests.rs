//! Redaction's tests: each built-in pattern, the bounds and the programs' flags.

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
