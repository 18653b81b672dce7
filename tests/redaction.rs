//! Redaction, for real: processes whose arguments and environment carry
//! planted secrets run under two monitors (terminal form and NDJSON, with
//! both reports and a record); no planted value appears in anything
//! bee-trace writes.

mod common;

use std::process::Command;

use common::*;

const SECRETS: &[&str] = &[
    "ghp_PLANTEDplantedPLANTEDplanted0123456789",
    "hunter2-planted-password",
    "AKIAPLANTEDPLANTED12",
    "s3cr3t-in-url-planted",
    "corp-771234",
    "envtoken-planted-value-0042",
    "bearer-planted-0001",
    "apikey-planted-0002",
    "curlpass-planted-0003",
    "mysqlpass-planted-0004",
    "dockerpass-planted-0005",
    "sshpass-planted-0006",
    "jsonpass-planted-0007",
    "shellpass-planted-0008",
    // URL query credentials: a Google API key, an Azure SAS signature, an
    // S3 presigned URL's signature.
    "PLANTEDplantedPLANTEDplanted01234",
    "sasPlantedSig0009",
    "amzsigplanted0010",
    // The half of a ghp_ token the 1023-byte argument bound leaves.
    "CutPlantedFirst",
];

/// A ghp_ token whose first 20 bytes end the 1023 bytes of the argument
/// area bee-trace reads: fewer than its full pattern needs.
const CUT_TOKEN: &str = "ghp_CutPlantedFirst0SecondHalf0123456789";

/// Runs, as the programs they are named for (links to /bin/true, so they
/// need no server), the commands whose own flags carry secrets; then one
/// whose argument area the bound cuts inside a token. Returns the pids.
fn run_secret_commands(s: &Scratch) -> Vec<u32> {
    let bin = s.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for p in ["curl", "mysql", "docker", "sshpass"] {
        std::os::unix::fs::symlink("/bin/true", bin.join(p)).unwrap();
    }
    let tool = |p: &str, args: &[&str]| run(Command::new(bin.join(p)).args(args));
    let mut pids = vec![
        tool(
            "curl",
            &[
                "-H",
                "Authorization: Bearer bearer-planted-0001",
                "-H",
                "X-Api-Key: apikey-planted-0002",
                "-u",
                "ci:curlpass-planted-0003",
                "-d",
                r#"{"user":"ci","password":"jsonpass-planted-0007"}"#,
                "https://example.invalid/",
            ],
        ),
        tool(
            "curl",
            &[
                "https://maps.googleapis.com/maps/api/geocode/json?address=x&key=AIzaSyPLANTEDplantedPLANTEDplanted01234",
                "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=sasPlantedSig0009",
                "https://b.s3.amazonaws.com/o?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=amzsigplanted0010",
            ],
        ),
        tool("mysql", &["-uroot", "-pmysqlpass-planted-0004", "db"]),
        tool(
            "docker",
            &[
                "login",
                "-u",
                "ci",
                "-p",
                "dockerpass-planted-0005",
                "r.invalid",
            ],
        ),
        tool(
            "sshpass",
            &["-p", "sshpass-planted-0006", "ssh", "host.invalid"],
        ),
        run(Command::new("sh").args(["-c", "true", "mysql -uroot -pshellpass-planted-0008 db"])),
    ];
    // "/bin/true\0" is 10 bytes, the padding and its NUL 993: the token
    // starts at byte 1003 and 20 of its bytes are read.
    let pad = "p".repeat(992);
    pids.push(run(
        Command::new("/bin/true").args([pad.as_str(), CUT_TOKEN])
    ));
    pids
}

#[test]
fn no_planted_secret_reaches_any_output() {
    if !root_or_skip("no_planted_secret_reaches_any_output") {
        return;
    }
    let s = Scratch::new("redact");
    let cfg = s.path("policy.yml");
    // A policy pattern on top of the built-in ones.
    std::fs::write(&cfg, "redaction:\n  patterns: [\"corp-[0-9]{6}\"]\n").unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let reports = |tag: &str| {
        vec![
            "--config".to_string(),
            cfg.clone(),
            "--report-json".into(),
            s.path(&format!("{tag}report.json"))
                .to_string_lossy()
                .into(),
            "--report-md".into(),
            s.path(&format!("{tag}report.md")).to_string_lossy().into(),
        ]
    };
    let mut json_args = reports("j-");
    json_args.push("--record".into());
    json_args.push(s.path("run.record").to_string_lossy().into());
    let human_args = reports("h-");
    let json = Monitor::start_as(
        &s.0,
        "j-",
        "json",
        &json_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let human = Monitor::start_as(
        &s.0,
        "h-",
        "human",
        &human_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // Secrets in arguments, several ways.
    let argv_pid = run(Command::new("sh").args([
        "-c",
        "true",
        "ghp_PLANTEDplantedPLANTEDplanted0123456789",
        "--password",
        "hunter2-planted-password",
        "AWS_KEY=AKIAPLANTEDPLANTED12",
        "https://ci:s3cr3t-in-url-planted@git.example.invalid/r.git",
        "id=corp-771234",
    ]));
    let tool_pids = run_secret_commands(&s);
    // A secret in the environment of a process whose environ another reads.
    let mut holder = Command::new("sleep")
        .arg("30")
        .env("DEPLOY_TOKEN", "envtoken-planted-value-0042")
        .spawn()
        .unwrap();
    run(Command::new("cat").arg(format!("/proc/{}/environ", holder.id())));

    // The target lives until the monitors are done: they read its
    // environment's variable names when they judge the event.
    let events = json.stop();
    let terminal = human.stop_text();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let exec = from_pid(&events, "process", argv_pid);
    assert!(
        exec.iter().any(|e| e["argv"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "[REDACTED]"))),
        "the exec is reported, redacted: {exec:?}"
    );
    let environ: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "proc_environ")
        .collect();
    assert!(
        environ
            .iter()
            .any(|e| e["target_secret_env"] == serde_json::json!(["DEPLOY_TOKEN"])),
        "the variable is named: {environ:?}"
    );
    assert!(terminal.contains("[REDACTED]"), "{terminal}");

    let leaks = leaks(&s, terminal);
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    for pid in tool_pids {
        assert!(
            from_pid(&events, "process", pid)
                .iter()
                .any(|e| e["argv"].to_string().contains("[REDACTED]")),
            "the exec of {pid} is reported, redacted: {:?}",
            from_pid(&events, "process", pid)
        );
    }
    let cut = events
        .iter()
        .find(|e| {
            e["argv_truncated"] == true
                && e["argv"][1].as_str().is_some_and(|a| a.starts_with("ppp"))
        })
        .expect("the cut argument area is reported");
    assert_eq!(cut["argv"][2], "[REDACTED]", "{cut}");
}

/// Each planted secret found in each thing the monitors wrote.
fn leaks(s: &Scratch, terminal: String) -> Vec<String> {
    let mut outputs = vec![
        ("terminal", terminal),
        (
            "ndjson",
            std::fs::read_to_string(s.path("j-events.ndjson")).unwrap(),
        ),
    ];
    for f in [
        "j-report.json",
        "j-report.md",
        "h-report.json",
        "h-report.md",
        "j-stderr.txt",
        "h-stderr.txt",
        "run.record",
    ] {
        outputs.push((f, std::fs::read_to_string(s.path(f)).unwrap()));
    }
    // Every leak, so one run names them all.
    let mut leaks = Vec::new();
    for (name, text) in &outputs {
        assert!(
            !text.is_empty() || name.ends_with("stderr.txt"),
            "{name} is empty"
        );
        for secret in SECRETS {
            if text.contains(secret) {
                leaks.push(format!("{secret} appears in {name}"));
            }
        }
    }
    leaks
}
