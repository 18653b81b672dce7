//! The host's test network: a namespace joined by a veth, a server in it,
//! and the lock that lets one test run at a time use them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Does the `--config` among `extra` put egress control in block mode?
pub(super) fn enforces(extra: &[&str]) -> bool {
    extra
        .iter()
        .position(|a| *a == "--config")
        .and_then(|i| extra.get(i + 1))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .is_some_and(|text| text.contains("mode: block"))
}

/// The host's one test network. Every test run uses the same addresses
/// (198.51.100.0/24 on its veth, the same listeners), and a monitor in block
/// mode refuses connections of every process on the host: two test runs on
/// one host (developers run several bee-trace trees side by side) would
/// route into each other's namespace or be refused by each other's policy.
/// A `Netns` and an enforcing `Monitor` each hold this lock, an flock on a
/// root-only file, so those parts of two runs take turns. Taken again in
/// the same process it only counts (a test holds both), so it cannot
/// deadlock on itself.
pub struct NetLock(());

const NET_LOCK: &str = "/run/bee-trace-tests-net.lock";

/// This process's hold on the lock: how many `NetLock`s, and the file
/// whose flock is the hold.
static NET_HOLD: std::sync::Mutex<(usize, Option<std::fs::File>)> =
    std::sync::Mutex::new((0, None));

impl NetLock {
    pub fn take() -> NetLock {
        use std::os::fd::AsRawFd;
        let mut hold = NET_HOLD.lock().unwrap_or_else(|e| e.into_inner());
        if hold.0 == 0 {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(NET_LOCK)
                .unwrap_or_else(|e| panic!("cannot open {NET_LOCK}: {e}"));
            let lock = |how| {
                // SAFETY: flock on an fd this function owns.
                unsafe { libc::flock(f.as_raw_fd(), how) == 0 }
            };
            if !lock(libc::LOCK_EX | libc::LOCK_NB) {
                eprintln!("waiting for the test network, held by another test run ({NET_LOCK})");
                let deadline = Instant::now() + Duration::from_secs(600);
                while !lock(libc::LOCK_EX | libc::LOCK_NB) {
                    assert!(
                        Instant::now() < deadline,
                        "the test network ({NET_LOCK}) stayed held for 10 minutes"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            hold.1 = Some(f);
        }
        hold.0 += 1;
        NetLock(())
    }
}

impl Drop for NetLock {
    fn drop(&mut self) {
        let mut hold = NET_HOLD.lock().unwrap_or_else(|e| e.into_inner());
        hold.0 -= 1;
        if hold.0 == 0 {
            // Closing the file releases the flock.
            hold.1 = None;
        }
    }
}

/// A network namespace joined to the host by a veth pair: the host side has
/// 198.51.100.1/24 and 2001:db8:b7::1/64; the namespace side .2, .3 and .10
/// (and ::2, ::3, ::10). Documentation ranges: nothing leaves the machine.
pub struct Netns {
    pub name: String,
    pub veth: String,
    /// Dropped last, once the veth and the namespace are gone.
    _net: NetLock,
}

pub fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("iproute2 is installed by make");
    assert!(st.success(), "ip {args:?} failed");
}

impl Netns {
    pub fn new() -> Netns {
        let net = NetLock::take();
        let id = std::process::id() % 100_000;
        let n = Netns {
            name: format!("bt-test-{id}"),
            veth: format!("btv{id}"),
            _net: net,
        };
        let peer = format!("btp{id}");
        let _ = Command::new("ip")
            .args(["netns", "del", &n.name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &n.name]);
        ip(&[
            "link", "add", &n.veth, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &n.name]);
        ip(&["addr", "add", "198.51.100.1/24", "dev", &n.veth]);
        ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:b7::1/64",
            "dev",
            &n.veth,
            "nodad",
        ]);
        ip(&["link", "set", &n.veth, "up"]);
        ip(&[
            "-n",
            &n.name,
            "addr",
            "add",
            "198.51.100.2/24",
            "dev",
            &peer,
        ]);
        ip(&[
            "-n",
            &n.name,
            "-6",
            "addr",
            "add",
            "2001:db8:b7::2/64",
            "dev",
            &peer,
            "nodad",
        ]);
        for extra in ["198.51.100.3/24", "198.51.100.10/24"] {
            ip(&["-n", &n.name, "addr", "add", extra, "dev", &peer]);
        }
        for extra in ["2001:db8:b7::3/64", "2001:db8:b7::10/64"] {
            ip(&[
                "-n", &n.name, "-6", "addr", "add", extra, "dev", &peer, "nodad",
            ]);
        }
        ip(&["-n", &n.name, "link", "set", &peer, "up"]);
        ip(&["-n", &n.name, "link", "set", "lo", "up"]);
        n
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A Python script run inside a namespace, started once it printed "ready";
/// stopped (stdin closed, then killed) at drop.
pub struct NsServer(Child);

impl NsServer {
    pub fn start(ns: &Netns, script: &str) -> NsServer {
        use std::io::BufRead;
        let mut c = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        NsServer(c)
    }
}

impl Drop for NsServer {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
