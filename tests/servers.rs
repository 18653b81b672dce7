//! A server in the job is seen (issue 12, class 9): a listen, and a
//! connection accepted from another host, as a bind shell or
//! `python3 -m http.server` would; the job's loopback traffic to itself is
//! not reported as an inbound connection.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// Listens on 198.51.100.1:18090 (the host's side of the test veth) and on
/// 127.0.0.1:18091, prints "ready", accepts one connection on each, exits.
const SERVER: &str = r#"
import socket
out = socket.socket(); out.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
out.bind(("198.51.100.1", 18090)); out.listen(1)
lo = socket.socket(); lo.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lo.bind(("127.0.0.1", 18091)); lo.listen(1)
print("ready", flush=True)
c, _ = out.accept(); c.close()
c, _ = lo.accept(); c.close()
"#;

#[test]
fn a_listen_and_an_accept_from_another_host_are_seen() {
    if !root_or_skip("a_listen_and_an_accept_from_another_host_are_seen") {
        return;
    }
    let s = Scratch::new("servers");
    let ns = Netns::new();
    let mon = Monitor::start(&s.0, &[]);

    let mut server = Command::new("python3")
        .args(["-c", SERVER])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let spid = server.id();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    // From the other host, then from the job itself over loopback.
    run(Command::new("ip").args([
        "netns",
        "exec",
        &ns.name,
        "python3",
        "-c",
        "import socket; socket.create_connection(('198.51.100.1', 18090), 5).close()",
    ]));
    run(Command::new("python3").args([
        "-c",
        "import socket; socket.create_connection(('127.0.0.1', 18091), 5).close()",
    ]));
    assert!(server.wait().unwrap().success());
    let events = mon.stop();

    let net: Vec<&Value> = from_pid(&events, "network", spid);
    let by = |op: &str, port: u64| -> Vec<&Value> {
        net.iter()
            .copied()
            .filter(|e| e["op"] == op && e["lport"] == port)
            .collect()
    };
    let outside = by("listen", 18090);
    assert_eq!(outside.len(), 1, "{}", describe(&events));
    assert_eq!(outside[0]["laddr"], "198.51.100.1");
    assert_eq!(outside[0]["protocol"], "tcp");
    assert_eq!(outside[0]["severity"], "warning");
    let inner = by("listen", 18091);
    assert_eq!(inner.len(), 1, "{}", describe(&events));
    assert_eq!(inner[0]["severity"], "info");

    let accepted = by("accept", 18090);
    assert_eq!(accepted.len(), 1, "{}", describe(&events));
    assert_eq!(accepted[0]["daddr"], "198.51.100.2");
    assert_eq!(accepted[0]["severity"], "high");
    assert!(
        by("accept", 18091).is_empty(),
        "an accept from loopback is not an inbound connection"
    );
    let id = &accepted[0]["id"];
    assert!(
        events.iter().any(|g| g["type"] == "signal"
            && g["rule"] == "inbound-connection-accepted"
            && g["events"].as_array().is_some_and(|a| a.contains(id))),
        "{}",
        describe(&events)
    );
}
