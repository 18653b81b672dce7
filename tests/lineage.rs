//! Process lineage and the monitor's own life cycle: reports on SIGTERM,
//! nothing left loaded after SIGKILL.

mod common;

use std::process::Command;

use common::*;

#[test]
fn exec_chain_names_its_ancestors_and_sigterm_writes_reports() {
    if !root_or_skip("exec_chain_names_its_ancestors_and_sigterm_writes_reports") {
        return;
    }
    let s = Scratch::new("lineage");
    std::fs::create_dir_all(s.path(".aws")).unwrap();
    let cred = s.path(".aws/credentials");
    std::fs::write(&cred, "[default]\naws_secret_access_key = planted\n").unwrap();
    let json = s.path("report.json");
    let md = s.path("report.md");
    let mon = Monitor::start(
        &s.0,
        &[
            "--report-json",
            json.to_str().unwrap(),
            "--report-md",
            md.to_str().unwrap(),
        ],
    );
    let outer = run(Command::new("sh")
        .arg("-c")
        .arg(format!("sh -c \"cat {}\"", cred.display())));
    let events = mon.stop();

    let reads: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "file" && e["path"] == cred.to_str().unwrap())
        .collect();
    assert_eq!(reads.len(), 1, "{}", describe(&events));
    let e = reads[0];
    assert_eq!(e["comm"], "cat");
    assert_eq!(e["category"], "cloud_credential");
    let anc = e["ancestors"].as_array().unwrap();
    assert!(anc.len() >= 2, "{e}");
    assert_eq!(anc[0]["comm"], "sh", "{e}");
    assert_eq!(anc[1]["comm"], "sh", "{e}");
    assert_eq!(anc[1]["pid"], outer, "the outer sh is the grandparent: {e}");
    assert_eq!(e["ppid"], anc[0]["pid"]);

    // The exec of cat itself is an event, with its argv.
    let execs: Vec<_> = events
        .iter()
        .filter(|x| x["type"] == "process" && x["kind"] == "exec" && x["pid"] == e["pid"])
        .collect();
    assert_eq!(execs.len(), 1, "exec of cat: {}", describe(&events));
    assert_eq!(execs[0]["argv"][1], cred.to_str().unwrap());

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(
        report["counts"]["file"]["critical"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(report["lost"]["kernel"].is_object(), "{report}");
    assert!(report["notable_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["path"] == cred.to_str().unwrap()));
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.contains("# bee-trace report") && md.contains(cred.to_str().unwrap()),
        "{md}"
    );
}

#[test]
fn sigkill_leaves_no_program_or_link_behind() {
    if !root_or_skip("sigkill_leaves_no_program_or_link_behind") {
        return;
    }
    let s = Scratch::new("kill");
    let before = our_programs();
    let mut mon = Monitor::start(&s.0, &[]);
    let during = our_programs();
    assert!(
        during.iter().filter(|n| n.starts_with("egress_")).count() >= 4,
        "the egress hooks are loaded while it runs: {during:?}"
    );
    assert!(
        during.len() >= before.len() + 12,
        "bee-trace's programs are loaded while it runs: {during:?}"
    );
    mon.child.kill().unwrap();
    mon.child.wait().unwrap();
    assert_programs_unloaded(before.len(), "SIGKILL");
    let links = Command::new("bpftool")
        .args(["-j", "link", "show"])
        .output()
        .unwrap();
    let links: serde_json::Value =
        serde_json::from_slice(&links.stdout).unwrap_or(serde_json::Value::Null);
    let left = links.as_array().map(|a| {
        a.iter()
            .filter(|l| l["prog_name"].as_str().is_some_and(ours))
            .count()
    });
    assert_eq!(left.unwrap_or(0), 0, "links left: {links}");
}

fn status_field(path: &std::path::Path, field: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {field} in {}", path.display()))
}

#[test]
fn after_attach_every_thread_holds_only_the_kept_capabilities() {
    if !root_or_skip("after_attach_every_thread_holds_only_the_kept_capabilities") {
        return;
    }
    let s = Scratch::new("caps");
    let mon = Monitor::start(&s.0, &[]);
    // cap_dac_override(1), cap_dac_read_search(2), cap_sys_ptrace(19), cap_bpf(39)
    let kept: u64 = (1 << 1) | (1 << 2) | (1 << 19) | (1 << 39);
    // A lookout worker (made at start, before the drop): search, read and
    // ptrace-read only.
    let look: u64 = (1 << 2) | (1 << 19);
    let pid = mon.child.id();
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("status"))
        .collect();
    assert!(tasks.len() >= 3, "workers are running: {tasks:?}");
    for t in &tasks {
        let name = status_field(t, "Name:");
        let want = if name.starts_with("bee-trace-look") {
            look
        } else {
            kept
        };
        for field in ["CapEff:", "CapPrm:", "CapBnd:"] {
            let v = u64::from_str_radix(&status_field(t, field), 16).unwrap();
            // A worker made after the drop cannot narrow its bounding set
            // below the process's kept one (no CAP_SETPCAP left).
            if field == "CapBnd:" && want == look {
                assert_eq!(v & !kept, 0, "{} ({name}) {field} {v:#x}", t.display());
                continue;
            }
            assert_eq!(v, want, "{} ({name}) {field} {v:#x}", t.display());
        }
        assert_eq!(status_field(t, "CapInh:"), "0000000000000000");
        assert_eq!(status_field(t, "CapAmb:"), "0000000000000000");
        assert_eq!(status_field(t, "NoNewPrivs:"), "1", "{}", t.display());
    }
    // Still fully working after the drop: a key read is reported.
    let key = s.path("home/.ssh/id_caps");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "planted").unwrap();
    let pid = run(Command::new("cat").arg(&key));
    let events = mon.stop();
    assert!(
        events
            .iter()
            .any(|e| e["pid"] == pid && e["path"] == key.to_str().unwrap()),
        "{}",
        describe(&events)
    );
}
