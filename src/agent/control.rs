//! The control socket: one request line (`status` or `stop`) per
//! connection, one JSON reply. Only root may ask (the peer's uid is
//! checked, beside the directory's 0700). A `stop` is answered once the run
//! has ended: its reports written and its record sealed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AgentError;
use crate::session::{Ended, Snapshot};

/// A request is one short word.
const REQUEST_MAX: u64 = 64;
/// The largest reply a client reads: the Markdown report is kept under
/// 1 MiB, the summary and annotations are small.
const REPLY_MAX: u64 = 8 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Status {
        pid: u32,
        snapshot: Snapshot,
    },
    Stopped {
        ended: Ended,
    },
    /// The run ended, but not cleanly (a report not written ...).
    Failed {
        message: String,
        ended: Option<Ended>,
    },
    Refused {
        message: String,
    },
}

/// What the server thread shares with the running loop.
#[derive(Default)]
pub struct Shared {
    pub snapshot: Mutex<Snapshot>,
    /// The connection that asked to stop, answered at the end.
    pub stopper: Mutex<Option<UnixStream>>,
}

/// Binds the socket (0600) at `path`; a dead agent's was removed first.
pub fn bind(path: &Path) -> Result<UnixListener, AgentError> {
    let io = |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let l = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io)?;
    Ok(l)
}

/// Answers requests on a thread of its own until the run is asked to
/// stop. Start it after the session has started (the watchdog is forked
/// while bee-trace has one thread).
pub fn serve(listener: UnixListener, shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("bee-trace-ctl".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if answer(conn, &shared) {
                    break;
                }
            }
        })
        .map(drop)
}

/// One connection; true when it asked to stop.
fn answer(mut conn: UnixStream, shared: &Shared) -> bool {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
    if peer_uid(&conn) != Some(0) {
        let _ = send(
            &mut conn,
            &Reply::Refused {
                message: "only root may control the agent".into(),
            },
        );
        return false;
    }
    let mut line = String::new();
    let _ = BufReader::new((&conn).take(REQUEST_MAX)).read_line(&mut line);
    match line.trim() {
        "status" => {
            let snapshot = shared
                .snapshot
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default();
            let _ = send(
                &mut conn,
                &Reply::Status {
                    pid: std::process::id(),
                    snapshot,
                },
            );
            false
        }
        "stop" => {
            log::warn!("agent: asked to stop");
            // Ending takes longer than the short timeouts above.
            let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
            if let Ok(mut s) = shared.stopper.lock() {
                *s = Some(conn);
            }
            crate::session::request_stop();
            true
        }
        other => {
            let _ = send(
                &mut conn,
                &Reply::Refused {
                    message: format!(
                        "unknown request {:?}: use status or stop",
                        crate::escape::terminal(other)
                    ),
                },
            );
            false
        }
    }
}

fn peer_uid(conn: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero ucred is a valid out-parameter of the right size.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt on an open socket with a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

pub fn send(conn: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let text = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    conn.write_all(text.as_bytes())?;
    conn.write_all(b"\n")?;
    conn.flush()
}

/// Asks the agent whose socket is at `path`; waits at most `wait` for the
/// reply.
pub fn ask(path: &Path, request: &str, wait: Duration) -> Result<Reply, AgentError> {
    let mut conn = UnixStream::connect(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT | libc::ECONNREFUSED) => {
            AgentError::NotRunning(path.parent().unwrap_or(path).to_path_buf())
        }
        _ => AgentError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    let proto = |what: String| AgentError::Protocol(what);
    conn.set_read_timeout(Some(wait))
        .map_err(|e| proto(e.to_string()))?;
    conn.write_all(format!("{request}\n").as_bytes())
        .map_err(|e| proto(format!("cannot send the request: {e}")))?;
    let mut text = Vec::new();
    (&conn)
        .take(REPLY_MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => proto(format!(
                "no reply in {} s (its log says what it is doing)",
                wait.as_secs()
            )),
            _ => proto(e.to_string()),
        })?;
    if text.len() as u64 > REPLY_MAX {
        return Err(proto(format!("a reply over {REPLY_MAX} bytes")));
    }
    if text.is_empty() {
        return Err(proto(
            "it closed the connection without a reply (it may have died: see its log)".into(),
        ));
    }
    serde_json::from_slice(&text).map_err(|e| proto(format!("an unreadable reply: {e}")))
}
