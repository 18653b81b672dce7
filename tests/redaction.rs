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
];

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
    ] {
        outputs.push((f, std::fs::read_to_string(s.path(f)).unwrap()));
    }
    for (name, text) in &outputs {
        assert!(
            !text.is_empty() || name.ends_with("stderr.txt"),
            "{name} is empty"
        );
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} appears in {name}");
        }
    }
}
