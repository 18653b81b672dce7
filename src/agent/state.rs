//! The agent's state directory: root's, mode 0700, checked before use. In it
//! the lock a running agent holds (so a second one is refused), its pid
//! file, its log and its control socket. Everything in it is reached
//! through the directory's fd and never through a link.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::AgentError;
use crate::canary;
use crate::fsafe::Dir;

const LOCK: &[u8] = b"agent.lock";
const PID: &[u8] = b"agent.pid";
const LOG: &[u8] = b"agent.log";
const SOCKET: &str = "control.sock";
/// The pid file holds a pid and a time: a few dozen bytes.
const PID_MAX: u64 = 256;

pub struct State {
    pub path: PathBuf,
    dir: Dir,
}

/// The lock a running agent holds for its whole life.
pub struct Lock(#[allow(dead_code)] File);

impl State {
    /// Opens (creating it 0700) the directory and checks that root alone
    /// owns and can use it. The default's parent, /run/bee-trace, is made
    /// the same way.
    pub fn open(path: &Path) -> Result<State, AgentError> {
        let dir_err = |e: canary::CanaryError| AgentError::Dir(path.into(), e.to_string());
        if let Some(parent) = path.parent() {
            if parent == Path::new(canary::STATE_DIR) {
                canary::open_state_dir(parent).map_err(dir_err)?;
            }
        }
        let dir = canary::open_state_dir(path).map_err(dir_err)?;
        Ok(State {
            path: path.to_path_buf(),
            dir,
        })
    }

    fn io(&self, name: &[u8]) -> impl FnOnce(std::io::Error) -> AgentError {
        let path = self.path.join(String::from_utf8_lossy(name).as_ref());
        move |source| AgentError::Io { path, source }
    }

    /// A regular file of the directory, created 0600 when missing.
    fn file(&self, name: &[u8], flags: libc::c_int) -> Result<File, AgentError> {
        match self.dir.open_regular(name, flags) {
            Ok((f, _)) => Ok(f),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.dir.create_new(name, 0o600).map_err(self.io(name))
            }
            Err(e) => Err(self.io(name)(e)),
        }
    }

    /// Takes the lock, or says which agent holds it.
    pub fn lock(&self) -> Result<Lock, AgentError> {
        let f = self.file(LOCK, libc::O_RDWR)?;
        // SAFETY: flock on an open fd.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let (pid, since) = self.pid().unwrap_or_else(|| ("?".into(), "?".into()));
                return Err(AgentError::Running {
                    dir: self.path.clone(),
                    pid,
                    since,
                });
            }
            return Err(self.io(LOCK)(e));
        }
        Ok(Lock(f))
    }

    /// Whether an agent holds the lock now (the lock is let go at once).
    pub fn check_free(&self) -> Result<(), AgentError> {
        self.lock().map(drop)
    }

    /// The running agent's pid and start time, as its pid file says.
    pub fn pid(&self) -> Option<(String, String)> {
        let (f, _) = self.dir.open_regular(PID, libc::O_RDONLY).ok()?;
        let mut text = String::new();
        f.take(PID_MAX).read_to_string(&mut text).ok()?;
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse::<u32>().ok()?;
        let since = words.next().unwrap_or("?");
        Some((pid.to_string(), crate::escape::terminal(since).into_owned()))
    }

    pub fn write_pid(&self, pid: u32, started: &str) -> Result<(), AgentError> {
        self.dir
            .replace(PID, format!("{pid} {started}\n").as_bytes(), 0o600)
            .map_err(self.io(PID))
    }

    /// The log, for appending: the agent's standard output and error.
    pub fn log(&self) -> Result<File, AgentError> {
        let f = self.file(LOG, libc::O_WRONLY)?;
        // SAFETY: fcntl on an open fd with integer arguments.
        unsafe {
            let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_APPEND);
        }
        Ok(f)
    }

    pub fn log_path(&self) -> PathBuf {
        self.path.join(String::from_utf8_lossy(LOG).as_ref())
    }

    pub fn socket_path(&self) -> PathBuf {
        self.path.join(SOCKET)
    }

    /// Removes a socket a dead agent left (the lock is held, so no agent
    /// uses it).
    pub fn clear_socket(&self) -> Result<(), AgentError> {
        match self.dir.unlink(SOCKET.as_bytes()) {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(self.io(SOCKET.as_bytes())(e)),
            _ => Ok(()),
        }
    }

    /// The agent's end: its socket and pid file go (the lock goes with
    /// the process).
    pub fn clean_up(&self) {
        let _ = self.dir.unlink(SOCKET.as_bytes());
        let _ = self.dir.unlink(PID);
    }
}
