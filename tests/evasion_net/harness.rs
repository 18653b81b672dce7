//! The network evasion tests' harness: the acting user (uid 65534, with
//! only the capabilities an act needs), a C client built at test time, a
//! datagram counter inside the namespace, VXLAN devices, the ping group,
//! and the tcx links bee-trace holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::common::*;
use super::scripts::*;

pub const NOBODY: &str = "65534";

/// Compiles `src` with the host's C compiler into `dir`; the binary is
/// readable and runnable by uid 65534.
pub fn compile(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).unwrap();
    let st = Command::new("cc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
        .expect("a C compiler (cc) is installed");
    assert!(st.success(), "cc {name}.c failed");
    bin
}

/// Runs `argv` as uid/gid 65534 with no groups (and the capabilities in
/// `caps`, e.g. "+net_raw", kept across the uid change); returns its pid
/// and its standard output.
pub fn as_nobody(caps: &str, argv: &[&str]) -> (u32, String) {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"]);
    if !caps.is_empty() {
        c.args(["--inh-caps", caps, "--ambient-caps", caps]);
    }
    let child = c
        .args(argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("setpriv (util-linux) is installed");
    // setpriv execs the program in place: the child's pid is the actor's.
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{argv:?} failed: {:?}", out.status);
    (pid, String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The network events of `pid` to `daddr`:`dport`.
pub fn to<'a>(events: &'a [Value], pid: u32, daddr: &str, dport: u16) -> Vec<&'a Value> {
    from_pid(events, "network", pid)
        .into_iter()
        .filter(|e| e["daddr"] == daddr && e["dport"] == dport)
        .collect()
}

/// Lets uid 65534 make ICMP ping sockets for as long as it lives
/// (net.ipv4.ping_group_range), then puts the old range back.
pub struct PingGroup(String);

impl PingGroup {
    const PATH: &'static str = "/proc/sys/net/ipv4/ping_group_range";
    pub fn allow_nobody() -> PingGroup {
        let old = std::fs::read_to_string(Self::PATH).unwrap();
        std::fs::write(Self::PATH, "65534 65534").unwrap();
        PingGroup(old.trim().replace('\t', " "))
    }
}

impl Drop for PingGroup {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

pub fn below_the_hooks(mode: &str) -> (u32, Value, Vec<Value>) {
    let ns = Netns::new();
    let s = Scratch::new(&format!("evasion-net-below-{mode}"));
    let cfg = write_policy(
        &s,
        &format!("network:\n  mode: {mode}\n  blocked_ips:\n    - 198.51.100.3\n"),
    );
    let _ping = PingGroup::allow_nobody();
    let mon = Monitor::start(&s.0, &["--probe-type", "network_monitor", "--config", &cfg]);
    let (pid, out) = as_nobody(
        "+net_raw",
        &[
            "/usr/bin/python3",
            "-c",
            BELOW,
            "198.51.100.2",
            "198.51.100.3",
        ],
    );
    let events = mon.stop();
    drop(ns);
    (pid, serde_json::from_str(&out).unwrap(), events)
}

/// The verdicts of `pid` for 198.51.100.3 by op: exactly one each.
pub fn verdicts_on_blocked<'a>(events: &'a [Value], pid: u32, op: &str) -> Vec<&'a Value> {
    from_pid(events, "network", pid)
        .into_iter()
        .filter(|e| e["daddr"] == "198.51.100.3" && e["op"] == op)
        .collect()
}

/// The counting server in `ns`; `finish` closes its stdin and returns its
/// counts.
pub struct Counter(std::process::Child);

impl Counter {
    pub fn start(ns: &Netns, specs: &[&str]) -> Counter {
        use std::io::BufRead;
        let mut c = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", COUNTER])
            .args(specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Counter(c)
    }

    pub fn finish(mut self) -> Value {
        // Datagrams in flight on the veth have arrived well within this.
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(self.0.stdin.take());
        let out = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The MAC address of the namespace's end of the veth.
pub fn peer_mac(ns: &Netns) -> String {
    let peer = ns.veth.replace("btv", "btp");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "cat"])
        .arg(format!("/sys/class/net/{peer}/address"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn blocked_policy(s: &Scratch, mode: &str) -> String {
    write_policy(
        s,
        &format!("network:\n  mode: {mode}\n  blocked_ips:\n    - 198.51.100.3\n"),
    )
}

/// A VXLAN device on the host whose remote is `remote`, over the veth,
/// with a static neighbour 10.213.N.2 on it; deleted at drop.
pub struct Vxlan(pub String);

impl Vxlan {
    pub fn new(ns: &Netns, n: u8, remote: &str) -> Vxlan {
        let name = format!("btx{n}{}", std::process::id() % 10_000);
        let _ = Command::new("ip")
            .args(["link", "del", &name])
            .stderr(Stdio::null())
            .status();
        let vni = (4200 + u32::from(n)).to_string();
        ip(&[
            "link", "add", &name, "type", "vxlan", "id", &vni, "remote", remote, "dstport", "4789",
            "dev", &ns.veth,
        ]);
        ip(&["addr", "add", &format!("10.213.{n}.1/24"), "dev", &name]);
        ip(&["link", "set", &name, "up"]);
        ip(&[
            "neigh",
            "add",
            &format!("10.213.{n}.2"),
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            &name,
        ]);
        Vxlan(name)
    }
}

impl Drop for Vxlan {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// The tcx links bee-trace (pid) holds, as (link id, interface index),
/// from its fdinfo (bpftool 7.1 does not name tcx links).
pub fn tcx_links(pid: u32) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return out;
    };
    for e in dir.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        if field("link_type:").as_deref() == Some("tcx") {
            let n = |k| field(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            out.push((n("link_id:"), n("ifindex:")));
        }
    }
    out
}

pub fn ifindex(dev: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .map(|t| t.trim().parse().unwrap_or(0))
        .unwrap_or(0)
}

/// Whether bee-trace (pid) holds a tcx link on interface `dev`.
pub fn covered(pid: u32, dev: &str) -> bool {
    let i = ifindex(dev);
    tcx_links(pid).iter().any(|(_, x)| *x == i)
}
