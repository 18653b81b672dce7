//! `bee-trace agent start|stop|status`: a run detached in the background
//! for a CI job (start in the first step, stop in the last) or a service.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::agent::control::{self, Reply, Shared};
use crate::agent::state::State;
use crate::agent::AgentError;
use crate::cli::{AgentCommand, AgentDirArgs, AgentServeArgs, AgentStartArgs, AgentStopArgs};
use crate::session::Session;
use crate::{outfile, sys};

/// `start` hands the pipe to the agent as this descriptor.
const NOTIFY_FD: i32 = 3;
/// The longest line the agent sends on the pipe (an error's text).
const NOTIFY_MAX: u64 = 16 << 10;

pub fn run(cmd: &AgentCommand) -> Result<ExitCode> {
    match cmd {
        AgentCommand::Start(a) => start(a),
        AgentCommand::Stop(a) => stop(a),
        AgentCommand::Status(a) => status(a),
        AgentCommand::Serve(a) => serve(a),
    }
}

fn start(args: &AgentStartArgs) -> Result<ExitCode> {
    sys::check_privileges()?;
    let state = State::open(&args.dir.dir)?;
    state.check_free()?;
    let log = state.log()?;
    let (read_end, write_end) = pipe()?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.args(serve_argv(std::env::args_os().skip(1)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the agent's log")?)
        .stderr(log);
    let w = write_end.as_raw_fd();
    // SAFETY: setsid and dup2 are async-signal-safe; the closure touches
    // nothing else.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::dup2(w, NOTIFY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the agent")?;
    drop(write_end);
    let line = wait_line(read_end, Duration::from_secs(args.start_timeout));
    match line.as_deref() {
        Some(l) if l.starts_with("ready") => {
            println!(
                "bee-trace agent: running as pid {}, every probe attached (state {}, log {})",
                child.id(),
                state.path.display(),
                state.log_path().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        other => {
            // Not ready: it said why, died, or is still attaching.
            let reason = match other {
                Some(l) => l.strip_prefix("error: ").unwrap_or(l).to_string(),
                None => match child.try_wait() {
                    Ok(Some(st)) => format!("it exited ({st}) without saying why"),
                    _ => {
                        let _ = child.kill();
                        format!(
                            "its probes were not attached in {} s, so it was stopped",
                            args.start_timeout
                        )
                    }
                },
            };
            let _ = child.wait();
            bail!(
                "the agent did not start: {reason} (log: {})",
                state.log_path().display()
            )
        }
    }
}

/// The agent's own command line: `start`'s, with `serve` in its place and
/// the pipe's descriptor.
fn serve_argv(argv: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut seen_agent = false;
    let mut replaced = false;
    for a in argv {
        if !replaced && seen_agent && a == "start" {
            out.push("serve".into());
            out.push(format!("--notify-fd={NOTIFY_FD}").into());
            replaced = true;
            continue;
        }
        seen_agent |= a == "agent";
        out.push(a);
    }
    out
}

fn pipe() -> Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot make a pipe for the agent");
    }
    // SAFETY: both were just opened and are owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The first line on the pipe, waiting at most `wait`; None at end of file
/// or timeout.
fn wait_line(mut f: File, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match f.read(&mut buf) {
            Ok(0) | Err(_) => {
                return (!got.is_empty()).then(|| crate::escape::decode(&got));
            }
            Ok(k) => {
                got.extend_from_slice(&buf[..k]);
                if let Some(i) = got.iter().position(|b| *b == b'\n') {
                    got.truncate(i);
                    return Some(crate::escape::decode(&got));
                }
                if got.len() as u64 > NOTIFY_MAX {
                    return Some(crate::escape::decode(&got));
                }
            }
        }
    }
}

/// The agent: takes the lock, starts the session, tells `start`, answers
/// on its socket until asked to stop, then ends the run and answers the
/// stop with what it ended with.
fn serve(args: &AgentServeArgs) -> Result<ExitCode> {
    let mut notify = notify_pipe(args.notify_fd)?;
    let begun = begin(args);
    let (state, _lock, listener, mut running) = match begun {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(notify, "error: {}", super::error_text(&e));
            return Err(e);
        }
    };
    let shared = Arc::new(Shared::default());
    *shared.snapshot.lock().expect("a fresh mutex") = running.snapshot();
    if let Err(e) = control::serve(listener, shared.clone()) {
        let _ = writeln!(notify, "error: cannot start the control thread: {e}");
        state.clean_up();
        return Err(e).context("cannot start the control thread");
    }
    let _ = writeln!(notify, "ready {}", std::process::id());
    drop(notify);
    let mut published = Instant::now();
    running.run_until_stopped_with(|r| {
        if published.elapsed() >= Duration::from_millis(500) {
            published = Instant::now();
            if let Ok(mut s) = shared.snapshot.lock() {
                *s = r.snapshot();
            }
        }
    });
    let reported = running.detach().drain().seal().write_reports();
    let (reply, result) = match reported {
        Ok(rep) => {
            let ended = rep.ended().clone();
            match rep.finish() {
                Ok(ended) => (
                    Reply::Stopped {
                        ended: ended.clone(),
                    },
                    Ok(ended.exit_code),
                ),
                Err(e) => (
                    Reply::Failed {
                        message: super::error_text(&e),
                        ended: Some(ended),
                    },
                    Err(e),
                ),
            }
        }
        Err(e) => (
            Reply::Failed {
                message: super::error_text(&e),
                ended: None,
            },
            Err(e),
        ),
    };
    if let Some(mut conn) = shared.stopper.lock().ok().and_then(|mut s| s.take()) {
        if let Err(e) = control::send(&mut conn, &reply) {
            log::warn!("agent: the stop's answer could not be sent: {e}");
        }
    }
    state.clean_up();
    result.map(ExitCode::from)
}

type Begun = (
    State,
    crate::agent::state::Lock,
    std::os::unix::net::UnixListener,
    crate::session::Running,
);

fn begin(args: &AgentServeArgs) -> Result<Begun> {
    let state = State::open(&args.dir.dir)?;
    let lock = state.lock()?;
    state.clear_socket()?;
    let listener = control::bind(&state.socket_path())?;
    state.write_pid(std::process::id(), &sys::rfc3339(now_ns()))?;
    match Session::start(&args.run) {
        Ok(running) => Ok((state, lock, listener, running)),
        Err(e) => {
            state.clean_up();
            Err(e)
        }
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// The pipe `start` waits on: it must be one (a descriptor given by
/// someone else is not written to).
fn notify_pipe(fd: i32) -> Result<File> {
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat with a valid out-parameter; a bad fd fails.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        bail!("--notify-fd {fd} is not a pipe: `agent serve` is run by `agent start`");
    }
    // SAFETY: fd is open (fstat succeeded) and is ours from here on.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn stop(args: &AgentStopArgs) -> Result<ExitCode> {
    sys::check_privileges()?;
    let state = State::open(&args.dir.dir)?;
    // The summary file is opened before the agent is asked, so a path that
    // cannot be written is said while the agent still runs.
    let summary_path = args
        .summary
        .clone()
        .or_else(|| std::env::var_os("GITHUB_STEP_SUMMARY").map(Into::into));
    let summary = summary_path
        .as_deref()
        .map(|p| {
            outfile::open(p, false, outfile::Access::default())
                .with_context(|| format!("cannot open the summary file {}", p.display()))
        })
        .transpose()?;
    let reply = control::ask(
        &state.socket_path(),
        "stop",
        Duration::from_secs(args.timeout),
    )?;
    let (ended, failure) = match reply {
        Reply::Stopped { ended } => (Some(ended), None),
        Reply::Failed { message, ended } => (ended, Some(message)),
        Reply::Refused { message } => bail!("the agent refused: {message}"),
        Reply::Status { .. } => bail!(AgentError::Protocol("a status for a stop".into())),
    };
    if let Some(ended) = &ended {
        let github = std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true");
        let mut out = std::io::stdout().lock();
        if github {
            for a in &ended.annotations {
                let _ = writeln!(out, "{a}");
            }
        }
        let _ = write!(out, "{}", ended.summary);
        let _ = out.flush();
        if let (Some(mut f), Some(p)) = (summary, summary_path.as_ref()) {
            f.seek(std::io::SeekFrom::End(0))
                .and_then(|_| f.write_all(ended.markdown.as_bytes()))
                .and_then(|_| f.write_all(b"\n"))
                .with_context(|| format!("cannot append the summary to {}", p.display()))?;
        }
    }
    if let Some(m) = failure {
        bail!("the agent ended, but not cleanly: {m}");
    }
    Ok(ExitCode::from(ended.map_or(1, |e| e.exit_code)))
}

fn status(args: &AgentDirArgs) -> Result<ExitCode> {
    sys::check_privileges()?;
    let state = State::open(&args.dir)?;
    match control::ask(&state.socket_path(), "status", Duration::from_secs(10)) {
        Ok(Reply::Status { pid, snapshot: s }) => {
            let by: Vec<String> = crate::event::Severity::ALL
                .iter()
                .rev()
                .filter_map(|v| s.events.get(v.as_str()).map(|n| format!("{v}={n}")))
                .collect();
            println!(
                "bee-trace agent: running as pid {pid} since {} ({} s); events {} ({}), signals {}, blocked {}, lost {}",
                s.started,
                s.uptime_secs,
                s.events.values().sum::<u64>(),
                by.join(" "),
                s.signals,
                s.blocked,
                s.lost
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(other) => bail!(AgentError::Protocol(format!("unexpected reply {other:?}"))),
        Err(AgentError::NotRunning(d)) => {
            println!(
                "bee-trace agent: not running (state directory {})",
                d.display()
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_runs_with_starts_flags_and_the_pipe() {
        let argv = [
            "-v",
            "agent",
            "start",
            "--fail-on",
            "high",
            "--command",
            "start",
        ];
        let got = serve_argv(argv.iter().map(OsString::from));
        let want = [
            "-v",
            "agent",
            "serve",
            "--notify-fd=3",
            "--fail-on",
            "high",
            "--command",
            "start",
        ];
        assert_eq!(got, want.map(OsString::from));
    }
}
