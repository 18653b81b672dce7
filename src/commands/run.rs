//! `bee-trace` with no subcommand: monitor until stopped, then report.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RunArgs;
use crate::session::Session;

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let mut running = Session::start(args)?;
    running.run_until_stopped();
    running.shutdown()
}
