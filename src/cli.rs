//! Command-line interface.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::event::Severity;
use crate::kernel::{HookMode, Selection};
use crate::sink::Format;

/// bee-trace: an eBPF runtime security monitor for CI runners and small hosts.
///
/// Watches, from the kernel, reads of secrets and writes to protected files,
/// outbound connections, one process reading another's memory or
/// environment, and every exec with its lineage. Run as root. With no
/// arguments it monitors everything with the embedded default policy until
/// Ctrl-C, then prints a summary. SIGHUP re-reads the --config file and puts
/// it in force without detaching; a policy that does not load is refused and
/// the previous one stays.
// The run's flags sit at the top level (the run is the command without a
// name); `Cli::try_parse_checked` refuses them beside a subcommand, which
// would ignore them. Flags every command uses are global.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Log what bee-trace does, including libbpf's messages.
    #[arg(long, short, global = true)]
    pub verbose: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// Parses the process's arguments; on an error, says it and exits as
    /// clap does.
    pub fn parse_checked() -> Cli {
        Cli::try_parse_checked(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// `try_parse_from`, and a run flag given with a subcommand is refused
    /// (clap's own `args_conflicts_with_subcommands` would refuse the
    /// global flags too).
    pub fn try_parse_checked<I, T>(argv: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cmd = Cli::command();
        let matches = cmd.try_get_matches_from_mut(argv)?;
        if let Some((sub, _)) = matches.subcommand() {
            let run = <RunArgs as clap::Args>::augment_args(clap::Command::new("run"));
            // The subcommand's own flags, for a flag both have (`--rules`).
            let own: Vec<String> = cmd
                .find_subcommand(sub)
                .map(|c| {
                    c.get_arguments()
                        .filter_map(|a| a.get_long().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for arg in run.get_arguments() {
                if matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
                    let flag = arg.get_long().unwrap_or(arg.get_id().as_str());
                    let hint = if own.iter().any(|f| f == flag) {
                        format!("; `bee-trace {sub}` has its own --{flag}: give it after `{sub}`")
                    } else {
                        format!("; `bee-trace {sub}` does not use it")
                    };
                    return Err(cmd.error(
                        ErrorKind::ArgumentConflict,
                        format!(
                            "--{flag} is a flag of the monitoring run (bee-trace without a \
                             subcommand){hint}"
                        ),
                    ));
                }
            }
        }
        Cli::from_arg_matches(&matches)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and attach every probe for real, print one line per probe
    /// (attached, or failed with the kernel's reason), then detach. Exits
    /// non-zero when any probe fails.
    Check,
    /// Show the rules in force: the built-in pack plus --rules DIR.
    Rules(RulesArgs),
    /// Run a record (written with --record) through the rules and print the
    /// signals, as NDJSON: the same signals live evaluation gave for the
    /// same events, every time.
    Replay(ReplayArgs),
    /// Check a signed event stream (written with --sign-key): prints OK and
    /// the record count, or the first record that fails and why (edited,
    /// deleted, inserted, moved, duplicated, or the stream cut short).
    /// Exits 0 when it verifies, 1 when it does not.
    Verify(VerifyArgs),
    /// Run the monitor in the background for a CI job or a service:
    /// `agent start [run flags]` returns once every probe is attached,
    /// `agent stop` ends it and prints the summary, exiting with the
    /// verdict, `agent status` says how it stands.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Start the monitor detached (its own session, standard output and
    /// error to agent.log in the state directory) with the flags of a
    /// monitoring run (`bee-trace --help`), and return once every probe is
    /// attached, or exit non-zero with the reason. Output and report files
    /// are opened now, so a path that cannot be written is refused now,
    /// not at the end. Refused while another agent runs with the same
    /// state directory.
    Start(AgentStartArgs),
    /// Ask the agent to finish, wait until its reports are written and its
    /// record sealed, print the summary (and, under GitHub Actions, the
    /// findings as annotations), append the Markdown report to --summary
    /// (default: $GITHUB_STEP_SUMMARY when set), and exit with the
    /// verdict's status (see --fail-on).
    Stop(AgentStopArgs),
    /// Say whether an agent runs, since when, and its counts so far.
    /// Exits 0 when one runs, 1 when none does.
    Status(AgentDirArgs),
    /// The detached agent itself, as `start` runs it.
    #[command(hide = true)]
    Serve(AgentServeArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct AgentDirArgs {
    /// The agent's state directory (made 0700; it must be root's and
    /// closed to everyone else).
    #[arg(long, value_name = "DIR", default_value = crate::agent::DEFAULT_DIR)]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct AgentStartArgs {
    #[command(flatten)]
    pub dir: AgentDirArgs,
    /// How long to wait for every probe to attach, in seconds.
    #[arg(long, default_value = "180", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub start_timeout: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Args)]
pub struct AgentStopArgs {
    #[command(flatten)]
    pub dir: AgentDirArgs,
    /// Append the Markdown report to FILE (default: $GITHUB_STEP_SUMMARY
    /// when it is set).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// How long to wait for the agent to finish, in seconds.
    #[arg(long, default_value = "120", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct AgentServeArgs {
    #[command(flatten)]
    pub dir: AgentDirArgs,
    /// The pipe `start` waits on.
    #[arg(long)]
    pub notify_fd: i32,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// List every rule with its severity, tags and description.
    #[arg(long)]
    pub list: bool,
    /// Directory of rule files (*.yml) added to the built-in pack; it
    /// and its files must be root's and not group/world-writable.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The record file.
    pub file: PathBuf,
    /// Directory of rule files (*.yml) added to the built-in pack.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-22T10:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The signed NDJSON file.
    pub file: PathBuf,
    /// The key file it was signed with (mode 0600, yours or root's).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Which sensors to run. Processes are always traced for lineage; their
    /// exec/exit events are printed only with `all`.
    #[arg(long, value_enum, default_value = "all")]
    pub probe_type: Selection,

    /// Stop after this many seconds (1..=31536000) instead of at Ctrl-C.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub duration: Option<u64>,

    /// Only report events of processes whose name (comm) contains this.
    #[arg(long, value_name = "SUBSTR")]
    pub command: Option<String>,

    /// YAML policy merged over the embedded default (see docs/policy.md);
    /// re-read on SIGHUP. It must be a regular file that only root can
    /// change: owned by root, not group/world-writable, nor its directories.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How the file, memory and network sensors hook their syscalls.
    /// `auto` uses fexit on each syscall's kernel function where the kernel
    /// allows it (cheaper: no syscall tracepoint puts every task on the slow
    /// syscall path) and falls back to the syscall tracepoints, which every
    /// supported kernel has; `bee-trace check` shows the choice.
    /// `tracepoints` never tries fexit; `fexit` fails when it is refused.
    #[arg(long, value_enum, default_value = "auto")]
    pub hooks: HookMode,

    /// Event format: human lines, or NDJSON (docs/events.md). Default: human
    /// on a terminal, json otherwise.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write events to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// At the end, write a JSON report (counts, lost events, notable events).
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,

    /// At the end, write a Markdown report (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub report_md: Option<PathBuf>,

    /// Sign the event stream with the HMAC key in FILE (at least 16 bytes):
    /// every record gets `seq` and a `mac` chained to the previous one, and
    /// the stream ends with a seal record. Needs --format json. Check with
    /// `bee-trace verify`. The file must be root's, mode 0600 or stricter.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Directory of rule files (*.yml) added to the built-in rule pack
    /// (docs/rules.md). Rule matches are written as signals. The directory
    /// and its files must be root's and not group/world-writable.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// Record every event (after policy filtering and redaction) to FILE as
    /// NDJSON with a schema header, for `bee-trace replay`. Signed too when
    /// --sign-key is given.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Create FILE once every probe is attached (for scripts and tests).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,

    /// Let members of GROUP (a name or a number) read the files bee-trace
    /// writes (--output, --record, the reports): they are created 0640 with
    /// that group instead of 0600. An existing file keeps its owner; its mode
    /// is narrowed the same way. bee-trace never writes through a symbolic
    /// link, and refuses a target that is not a regular file.
    #[arg(long, value_name = "GROUP", value_parser = crate::outfile::group_id)]
    pub output_group: Option<u32>,

    /// Give a verdict as the exit status: 2 (FAIL) when an event or signal
    /// at or above SEVERITY (info, warning, high, critical) occurred or a
    /// connect was blocked; 3 (INCOMPLETE) when none did but events were
    /// lost before bee-trace could see them; 0 (PASS) otherwise. The
    /// summary's last line says which and why. Overrides the policy's
    /// `verdict.fail_on`; without either, a run that ends normally exits 0.
    #[arg(long, value_name = "SEVERITY", value_parser = severity)]
    pub fail_on: Option<Severity>,

    /// Write only events and signals at or above SEVERITY to the event
    /// stream; the record, the rules, the reports and the verdict still
    /// see every event. Default: everything, except that on a CI runner
    /// (CI=true) with the stream going to the log, INFO exec/exit lines
    /// are left out unless this flag is given.
    #[arg(long, value_name = "SEVERITY", value_parser = severity)]
    pub min_severity: Option<Severity>,
}

/// A severity's name, as events and the policy spell it.
pub fn severity(s: &str) -> Result<Severity, String> {
    Severity::ALL
        .into_iter()
        .find(|v| v.as_str() == s.to_ascii_lowercase())
        .ok_or_else(|| format!("`{s}` is not a severity: use info, warning, high or critical"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_original_flags() {
        let c = Cli::try_parse_from([
            "bee-trace",
            "--probe-type",
            "file_monitor",
            "--duration",
            "5",
            "--command",
            "cat",
        ])
        .unwrap();
        assert_eq!(c.run.probe_type, Selection::FileMonitor);
        assert_eq!(c.run.duration, Some(5));
        assert!(Cli::try_parse_from(["bee-trace", "--duration", "0"]).is_err());
        assert!(Cli::try_parse_from(["bee-trace", "--probe-type", "bogus"]).is_err());
    }

    #[test]
    fn verbose_is_taken_before_or_after_any_subcommand() {
        for argv in [
            &["bee-trace", "check", "--verbose"][..],
            &["bee-trace", "--verbose", "check"],
            &["bee-trace", "-v", "rules", "--list"],
            &["bee-trace", "replay", "rec.ndjson", "-v"],
            &["bee-trace", "verify", "s.ndjson", "--key", "k", "--verbose"],
            &["bee-trace", "--verbose", "--duration", "5"],
        ] {
            let c = Cli::try_parse_checked(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert!(c.verbose, "{argv:?}");
        }
        assert!(
            !Cli::try_parse_checked(["bee-trace", "check"])
                .unwrap()
                .verbose
        );
    }

    #[test]
    fn a_run_flag_beside_a_subcommand_is_refused() {
        for argv in [
            &["bee-trace", "--duration", "5", "check"][..],
            &["bee-trace", "--config", "p.yml", "check"],
            &["bee-trace", "--format", "json", "rules", "--list"],
            &["bee-trace", "--output", "o", "verify", "s", "--key", "k"],
            &["bee-trace", "--probe-type", "file_monitor", "replay", "r"],
        ] {
            let e = Cli::try_parse_checked(argv).expect_err(argv[1]);
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{argv:?}"
            );
            assert!(e.to_string().contains(argv[1]), "{argv:?}: {e}");
        }
        // After the subcommand they are not its flags at all.
        assert!(Cli::try_parse_checked(["bee-trace", "check", "--duration", "5"]).is_err());
        // A flag the subcommand also has is pointed after the subcommand.
        let e = Cli::try_parse_checked(["bee-trace", "--rules", "/r", "rules"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("`bee-trace rules` has its own --rules: give it after `rules`"),
            "{e}"
        );
        // The rules subcommand's own --rules is its own.
        let c = Cli::try_parse_checked(["bee-trace", "rules", "--rules", "/r"]).unwrap();
        assert!(matches!(c.command, Some(Command::Rules(ref a)) if a.rules.is_some()));
    }
}
