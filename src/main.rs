//! bee-trace entry point: parse the command line, route the logs, run one command.

use std::process::ExitCode;

use bee_trace::cli::{Cli, Command};
use bee_trace::{commands, kernel};

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    let msg = msg.trim_end();
    kernel::libbpf_message(msg);
    let probing = kernel::PROBING.load(std::sync::atomic::Ordering::Relaxed);
    match level {
        libbpf_rs::PrintLevel::Warn if probing => log::debug!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Warn => log::warn!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Info => log::info!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Debug => log::debug!(target: "libbpf", "{msg}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_checked();
    let default_level = if cli.verbose { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp(None)
        .init();
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));

    let result = match &cli.command {
        Some(Command::Check) => commands::check::run(),
        Some(Command::Verify(args)) => commands::verify::run(args),
        Some(Command::Rules(args)) => commands::rules::run(args),
        Some(Command::Replay(args)) => commands::replay::run(args),
        Some(Command::Agent(cmd)) => commands::agent::run(cmd),
        None => commands::run::run(&cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bee-trace: error: {}", commands::error_text(&e));
            ExitCode::from(1)
        }
    }
}
