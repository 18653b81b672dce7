//! Tampering with bee-trace itself, for real: another root process uses
//! bpftool to switch this instance's egress map to audit mode and to detach
//! its cgroup connect link. The bpf(2) calls are critical tamper events that
//! name the operation and the object, the self-check finds both changes, the
//! report stops claiming the link is attached, and bee-trace still exits
//! cleanly. A second instance doing its own ordinary map writes alongside is
//! not tampering with the first.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SERVER: &str = r#"
import socket, sys
socks = []
for addr in ["198.51.100.2", "198.51.100.3"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 18081)); s.listen(8); socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;

const CLIENT: &str = r#"
import errno, json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.connect((sys.argv[1], 18081)); out = "ok"
except OSError as e:
    out = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(out))
"#;

const POLICY: &str = "network:\n  mode: block\n  blocked_ips:\n    - 198.51.100.3\n";

fn connect(addr: &str) -> String {
    python_json::<String>(CLIENT, &[addr]).1
}

/// The id of the map called `name` that `pid` holds (found by name AND by
/// holder, so another instance's map of the same name is never taken).
fn our_map(pid: u32, name: &str) -> u64 {
    let ours = held_ids(pid, "map_id");
    bpftool_json(&["map", "show"])
        .iter()
        .filter(|m| m["name"] == name)
        .filter_map(|m| m["id"].as_u64())
        .find(|id| ours.contains(id))
        .unwrap_or_else(|| panic!("no {name} map held by {pid}"))
}

/// The id of `pid`'s cgroup link of this attach type.
fn our_cgroup_link(pid: u32, attach_type: &str) -> u64 {
    let ours = held_ids(pid, "link_id");
    bpftool_json(&["link", "show"])
        .iter()
        .filter(|l| l["type"] == "cgroup" && l["attach_type"] == attach_type)
        .filter_map(|l| l["id"].as_u64())
        .find(|id| ours.contains(id))
        .unwrap_or_else(|| panic!("no {attach_type} cgroup link held by {pid}"))
}

/// Runs bpftool with these arguments; returns its pid.
fn bpftool(args: &[&str]) -> u32 {
    let mut c = Command::new("bpftool");
    c.args(args);
    let child = c
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn bpftool");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "bpftool {args:?} failed");
    pid
}

/// Waits until bee-trace's stderr has a line containing all of `words`.
fn wait_stderr(mon: &Monitor, words: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let err = mon.stderr();
        if err.lines().any(|l| words.iter().all(|w| l.contains(w))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no stderr line with {words:?} in 20s:\n{err}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tamper_events(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "tamper").collect()
}

#[test]
fn bpftool_changes_to_our_egress_map_and_link_are_seen_and_reported() {
    if !root_or_skip("bpftool_changes_to_our_egress_map_and_link_are_seen_and_reported") {
        return;
    }
    let ns = Netns::new();
    let _server = NsServer::start(&ns, SERVER);
    let s = Scratch::new("tamper");
    let cfg = write_policy(&s, POLICY);
    let report = s.path("report.json");
    let mon = Monitor::start(
        &s.0,
        &[
            "--probe-type",
            "network_monitor",
            "--config",
            &cfg,
            "--report-json",
            report.to_str().unwrap(),
        ],
    );
    let pid = mon.child.id();
    assert_eq!(connect("198.51.100.3"), "EPERM", "the policy blocks .3");

    let map = our_map(pid, "egress_cfg");
    let link = our_cgroup_link(pid, "cgroup_inet4_connect");
    // Mode 1 (audit), allowlist 0, dns guard 0: blocked connects go through.
    let map_arg = map.to_string();
    let updater = bpftool(&[
        "map", "update", "id", &map_arg, "key", "0", "0", "0", "0", "value", "1", "0", "0", "0",
        "0", "0", "0", "0", "0", "0", "0", "0",
    ]);
    wait_stderr(&mon, &["TAMPERED", "egress_cfg", "mode audit"]);
    let link_arg = link.to_string();
    let detacher = bpftool(&["link", "detach", "id", &link_arg]);
    wait_stderr(&mon, &["TAMPERED", &format!("link {link}"), "detached"]);
    // And the blocked address's entry goes (prefix length 32, then .3).
    let block4 = our_map(pid, "block4").to_string();
    let deleter = bpftool(&[
        "map", "delete", "id", &block4, "key", "32", "0", "0", "0", "198", "51", "100", "3",
    ]);
    wait_stderr(&mon, &["TAMPERED", "no longer block 198.51.100.3/32"]);
    let events = mon.stop();
    let tampers = tamper_events(&events);

    let find = |op: &str, pid: u32| -> &Value {
        tampers
            .iter()
            .find(|e| e["op"] == op && e["pid"] == pid)
            .unwrap_or_else(|| panic!("no {op} tamper event by {pid}:\n{}", describe(&events)))
    };
    let update = find("map_update_elem", updater);
    assert_eq!(update["severity"], "critical", "{update}");
    assert_eq!(update["source"], "bpf", "{update}");
    assert_eq!(update["object_type"], "map", "{update}");
    assert_eq!(update["object_id"], map, "{update}");
    assert_eq!(update["object_name"], "egress_cfg", "{update}");
    assert_eq!(update["result"], "ok", "{update}");
    assert_eq!(update["comm"], "bpftool", "{update}");
    assert_eq!(update["exe"], "/usr/sbin/bpftool", "{update}");
    assert!(
        !update["ancestors"].as_array().unwrap().is_empty(),
        "{update}"
    );
    let detach = find("link_detach", detacher);
    assert_eq!(detach["severity"], "critical", "{detach}");
    assert_eq!(detach["object_type"], "link", "{detach}");
    assert_eq!(detach["object_id"], link, "{detach}");
    assert_eq!(detach["object_name"], "network cgroup/connect4", "{detach}");
    assert_eq!(detach["result"], "ok", "{detach}");
    let delete = find("map_delete_elem", deleter);
    assert_eq!(delete["object_name"], "block4", "{delete}");
    assert_eq!(delete["severity"], "critical", "{delete}");
    // Opening them by id first is seen too, as a warning.
    let open = find("map_get_fd_by_id", updater);
    assert_eq!(open["severity"], "warning", "{open}");

    // The self-check found both changes, and names who made them.
    let finding = |id: u64| -> &Value {
        tampers
            .iter()
            .find(|e| e["source"] == "self_check" && e["object_id"] == id)
            .unwrap_or_else(|| panic!("no self-check finding on {id}:\n{}", describe(&events)))
    };
    let cfg_finding = finding(map);
    assert_eq!(cfg_finding["severity"], "critical", "{cfg_finding}");
    assert_eq!(cfg_finding["op"], "integrity", "{cfg_finding}");
    assert!(
        cfg_finding["found"]
            .as_str()
            .unwrap()
            .contains("mode audit"),
        "{cfg_finding}"
    );
    assert_eq!(cfg_finding["pid"], updater, "{cfg_finding}");
    let link_finding = finding(link);
    assert_eq!(
        link_finding["found"], "detached from its cgroup",
        "{link_finding}"
    );
    assert_eq!(link_finding["pid"], detacher, "{link_finding}");

    // The report no longer claims the detached probe is attached.
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let probe = r["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == "cgroup/connect4")
        .expect("connect4 probe in the report");
    assert_eq!(probe["attached"], false, "{probe}");
    assert!(
        probe["error"].as_str().unwrap().contains("tampered"),
        "{probe}"
    );
    let integrity = &r["integrity"];
    assert_eq!(integrity["tampered"], true, "{integrity}");
    let findings = integrity["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["object_id"] == map)
            && findings.iter().any(|f| f["object_id"] == link),
        "{integrity}"
    );
    assert!(
        integrity["tamper_events"].as_u64().unwrap() >= 4,
        "{integrity}"
    );
    assert!(
        mon_summary_says_tampered(&s),
        "summary: {}",
        std::fs::read_to_string(s.path("stderr.txt")).unwrap_or_default()
    );
}

fn mon_summary_says_tampered(s: &Scratch) -> bool {
    std::fs::read_to_string(s.path("stderr.txt"))
        .unwrap_or_default()
        .contains("TAMPERED: bee-trace itself was interfered with")
}

#[test]
fn a_second_instance_writing_its_own_maps_is_not_tampering() {
    if !root_or_skip("a_second_instance_writing_its_own_maps_is_not_tampering") {
        return;
    }
    let s = Scratch::new("tamper-two");
    let cfg = write_policy(&s, POLICY);
    let report = s.path("a-report.json");
    let a = Monitor::start_as(
        &s.0,
        "a-",
        "json",
        &[
            "--probe-type",
            "network_monitor",
            "--config",
            &cfg,
            "--report-json",
            report.to_str().unwrap(),
        ],
    );
    // The second instance loads, fills its maps, and on SIGHUP writes them
    // again: all on objects of its own.
    let b = Monitor::start_as(
        &s.0,
        "b-",
        "json",
        &["--probe-type", "all", "--config", &cfg],
    );
    let b_pid = b.child.id();
    assert!(b.reload().contains("policy reloaded"));
    b.stop();
    // A control: writing A's own map (the value it already holds) is seen,
    // so A was watching all along.
    let map = our_map(a.child.id(), "egress_cfg").to_string();
    let control = bpftool(&[
        "map", "update", "id", &map, "key", "0", "0", "0", "0", "value", "2", "0", "0", "0", "0",
        "0", "0", "0", "0", "0", "0", "0",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.stderr().contains("TAMPER: map_update_elem") {
        assert!(
            Instant::now() < deadline,
            "control not seen: {}",
            a.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Stopping runs one last self-check round, after the control.
    let events = a.stop();
    let tampers = tamper_events(&events);
    assert!(
        tampers.iter().all(|e| e["pid"] != b_pid),
        "the second instance was taken for tampering: {tampers:?}"
    );
    let critical: Vec<_> = tampers
        .iter()
        .filter(|e| e["severity"] == "critical")
        .collect();
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert_eq!(critical[0]["pid"], control, "{critical:?}");
    assert_eq!(critical[0]["op"], "map_update_elem", "{critical:?}");
    // The value written was the one bee-trace had: nothing was found changed.
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let integrity = &r["integrity"];
    assert_eq!(
        integrity["findings"].as_array().unwrap().len(),
        0,
        "{integrity}"
    );
    assert!(integrity["checks"].as_u64().unwrap() >= 1, "{integrity}");
    assert!(
        integrity["objects_watched"].as_u64().unwrap() > 10,
        "{integrity}"
    );
    assert!(
        r["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["attached"] == true),
        "{}",
        r["probes"]
    );
}

/// The watchdog bee-trace `pid` forked at start.
fn watchdog_of(pid: u32) -> u32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|n| n.trim() == "bee-trace-watch")
        })
        .unwrap_or_else(|| panic!("bee-trace {pid} has no watchdog: {children:?}"))
}

/// Sends `sig` to `pid` with kill(1); returns the kill process's pid.
fn kill(sig: &str, pid: u32) -> u32 {
    run(Command::new("kill").args([sig, &pid.to_string()]))
}

/// Waits until `path` holds a line containing `word`.
fn wait_file(path: &std::path::Path, word: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(word) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {word} in {} in 20s:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sigkill_of_bee_trace_is_written_down_by_its_watchdog() {
    if !root_or_skip("a_sigkill_of_bee_trace_is_written_down_by_its_watchdog") {
        return;
    }
    let s = Scratch::new("tamper-kill");
    let cfg = write_policy(&s, POLICY);
    let mut mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let pid = mon.child.id();
    let dog = watchdog_of(pid);
    let links = held_ids(pid, "link_id");
    assert!(!links.is_empty());

    let killer = kill("-KILL", pid);
    let status = mon.child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
    wait_file(&mon.events_path, "SIGKILL");
    let events = read_events(&mon.events_path);
    let e = events
        .iter()
        .find(|e| e["type"] == "tamper" && e["signal"] == "SIGKILL")
        .unwrap_or_else(|| panic!("no SIGKILL event:\n{}", describe(&events)));
    assert_eq!(e["severity"], "critical", "{e}");
    assert_eq!(e["op"], "signal", "{e}");
    assert_eq!(e["pid"], killer, "{e}");
    assert_eq!(e["comm"], "kill", "{e}");
    assert_eq!(e["target_pid"], pid, "{e}");
    assert_eq!(e["object_name"], "bee-trace", "{e}");
    assert_eq!(e["id"], 0, "written by the watchdog: {e}");
    assert!(
        mon.stderr().contains("bee-trace watchdog:") && mon.stderr().contains("SIGKILL"),
        "{}",
        mon.stderr()
    );

    // The watchdog ends, and holds nothing that keeps bee-trace's programs:
    // every link it had goes away.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{dog}/stat"))
            .is_ok_and(|st| !st.contains(") Z "));
        let left: Vec<u64> = bpftool_json(&["link", "show"])
            .iter()
            .filter_map(|l| l["id"].as_u64())
            .filter(|id| links.contains(id))
            .collect();
        if !alive && left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "10s after the kill: watchdog alive {alive}, links left {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigstop_of_bee_trace_and_sigkill_of_its_watchdog_are_reported() {
    if !root_or_skip("sigstop_of_bee_trace_and_sigkill_of_its_watchdog_are_reported") {
        return;
    }
    let s = Scratch::new("tamper-dog");
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor"]);
    let pid = mon.child.id();
    let dog = watchdog_of(pid);

    let stopper = kill("-STOP", pid);
    // Said at once, by the watchdog, while bee-trace is frozen.
    wait_stderr(
        &mon,
        &["bee-trace watchdog", "SIGSTOP", &format!("[{stopper}]")],
    );
    kill("-CONT", pid);
    let killer = kill("-KILL", dog);
    wait_stderr(
        &mon,
        &["TAMPERED", &format!("process {dog}"), "killed by signal 9"],
    );
    let events = mon.stop();
    let signal = |sig: &str| -> &Value {
        events
            .iter()
            .find(|e| e["type"] == "tamper" && e["signal"] == sig)
            .unwrap_or_else(|| panic!("no {sig} event:\n{}", describe(&events)))
    };
    let stop = signal("SIGSTOP");
    assert_eq!(stop["pid"], stopper, "{stop}");
    assert_eq!(stop["target_pid"], pid, "{stop}");
    assert_eq!(stop["severity"], "critical", "{stop}");
    let k = signal("SIGKILL");
    assert_eq!(k["pid"], killer, "{k}");
    assert_eq!(k["target_pid"], dog, "{k}");
    assert_eq!(k["object_name"], "bee-trace's watchdog", "{k}");
    let gone = events
        .iter()
        .find(|e| e["source"] == "self_check" && e["object_id"] == dog)
        .unwrap_or_else(|| panic!("no finding on the watchdog:\n{}", describe(&events)));
    assert_eq!(gone["found"], "killed by signal 9", "{gone}");
}

/// The watchdog reads a ring, names a killer and writes to descriptors it
/// already holds: root's power to read and write any file (which a flaw in
/// it would hand over) and to change BPF objects are no part of that. It
/// keeps CAP_SYS_PTRACE alone, to name a killer's executable.
#[test]
fn the_watchdog_keeps_only_what_naming_a_killer_needs() {
    if !root_or_skip("the_watchdog_keeps_only_what_naming_a_killer_needs") {
        return;
    }
    let s = Scratch::new("tamper-dog-caps");
    let mon = Monitor::start(&s.0, &[]);
    let dog = watchdog_of(mon.child.id());
    let status = std::fs::read_to_string(format!("/proc/{dog}/status")).unwrap();
    mon.stop();
    let cap = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap()
    };
    let ptrace = 1u64 << 19;
    for field in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(cap(field), ptrace, "{field} of the watchdog:\n{status}");
    }
    assert_eq!(cap("NoNewPrivs:"), 1, "{status}");
}

/// A job with sudo names its bpftool so that its stderr line reads
/// backwards and breaks (U+202E, U+2028 in its comm): the TAMPER line shows
/// them as escapes, as every other line of watched-system text does.
#[test]
fn a_tamperers_name_cannot_reorder_or_break_the_stderr_line() {
    if !root_or_skip("a_tamperers_name_cannot_reorder_or_break_the_stderr_line") {
        return;
    }
    let s = Scratch::new("tamper-bidi");
    let mon = Monitor::start(&s.0, &[]);
    let link = our_cgroup_link(mon.child.id(), "cgroup_inet4_connect");
    let tool = s.path("\u{202e}\u{2028}bpf");
    std::fs::copy("/usr/sbin/bpftool", &tool).unwrap();
    let st = Command::new(&tool)
        .args(["link", "detach", "id", &link.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "bpftool link detach");
    wait_stderr(&mon, &["TAMPER:", "link_detach"]);
    let err = mon.stderr();
    mon.stop();
    let line = err
        .lines()
        .find(|l| l.contains("TAMPER:") && l.contains("link_detach"))
        .unwrap();
    assert!(
        !line.contains('\u{202e}') && !line.contains('\u{2028}'),
        "raw bidi or line separator on stderr: {line:?}"
    );
    assert!(line.contains("\\u{202e}\\u{2028}bpf"), "{line:?}");
}
