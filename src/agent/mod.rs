//! Agent mode: a monitoring run detached in the background, found, asked
//! and stopped through its root-only state directory (`state`) and the
//! control socket in it (`control`). `commands/agent.rs` drives them.

pub mod control;
pub mod state;

use std::path::PathBuf;

/// Where an agent keeps its lock, pid file, log and control socket.
pub const DEFAULT_DIR: &str = "/run/bee-trace/agent";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent's state directory {0}: {1}")]
    Dir(PathBuf, String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "an agent already runs with the state directory {dir} (pid {pid}, since {since}); \
         `bee-trace agent stop` it first, or give another --dir"
    )]
    Running {
        dir: PathBuf,
        pid: String,
        since: String,
    },
    #[error("no agent runs with the state directory {0}; start one with `bee-trace agent start`")]
    NotRunning(PathBuf),
    #[error("the agent did not answer: {0}")]
    Protocol(String),
}
