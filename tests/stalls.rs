//! The job cannot stop bee-trace by a file system that does not answer: a
//! FUSE server of the job's answers the job's own calls, then never answers
//! a look at the name it renamed a file onto (an id_rsa, which bee-trace
//! looks up to learn the file by inode). Every later event must still flow.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const FUSE_SERVER: &str = include_str!("stalls/fuse_never_answers.py");

/// The job: a private mount namespace holding the FUSE server and the
/// process that renamed a file in it (kept alive, so that bee-trace looks
/// at the name under its root). Killed at drop, which aborts the FUSE
/// connection and lets every call stuck on it return.
struct Job {
    child: Child,
    pid: u32,
}

impl Job {
    fn start(mnt: &std::path::Path) -> Job {
        let mut child = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "/usr/bin/python3",
                "-c",
                FUSE_SERVER,
            ])
            .arg(mnt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("unshare (util-linux) runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the FUSE job did not start (python3-fusepy is installed by make test)")
        });
        Job { child, pid }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the job's own process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn a_fuse_server_that_never_answers_does_not_stop_the_event_stream() {
    if !root_or_skip("a_fuse_server_that_never_answers_does_not_stop_the_event_stream") {
        return;
    }
    let s = Scratch::new("stall");
    let mnt = s.path("fuse");
    std::fs::create_dir_all(&mnt).unwrap();
    let mon = Monitor::start(&s.0, &[]);
    let job = Job::start(&mnt);

    // bee-trace is now (or soon) looking at fuse/h/.ssh/id_rsa, which never
    // answers. A credential read elsewhere, after that, must be reported.
    let key = s.path("plain/.aws/credentials");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "planted, not a secret\n").unwrap();
    let reader = run(Command::new("cat").arg(&key));
    let want_path = key.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = read_events(&mon.events_path);
        if from_pid(&events, "file", reader)
            .iter()
            .any(|e| e["path"] == want_path.as_str() && e["access"] == "read")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the credential read after the stalled look was not reported in 20 s: {}\n{}",
            mon.stderr(),
            describe(&events)
        );
        // Records are released as others arrive: prod the stream.
        run(Command::new("cat").arg("/nonexistent-bee-trace/.ssh/id_prod"));
        std::thread::sleep(Duration::from_millis(100));
    }

    // The rename itself is reported, and the look given up is said.
    let events = read_events(&mon.events_path);
    let renamed = from_pid(&events, "file", job.pid);
    assert!(
        renamed.iter().any(|e| e["access"] == "rename"
            && e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/fuse/h/.ssh/id_rsa"))
            && e["old_path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/fuse/h/.ssh/incoming"))),
        "{}",
        describe(&events)
    );
    let err = mon.stderr();
    assert!(
        err.contains("id_rsa") && err.contains("did not return in time"),
        "{err}"
    );
    drop(job);
    mon.stop();
}
