//! One file per subcommand: each takes its parsed arguments and returns the exit code.

pub mod check;
pub mod replay;
pub mod rules;
pub mod run;
pub mod verify;

use std::path::PathBuf;

use crate::sys;

/// What every command that loads programs needs from the host first; the
/// path is where tracefs is mounted.
pub(crate) fn preflight() -> anyhow::Result<PathBuf> {
    sys::check_privileges()?;
    sys::check_btf()?;
    Ok(sys::ensure_tracefs()?)
}
