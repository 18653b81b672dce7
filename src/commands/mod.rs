//! One file per subcommand: each takes its parsed arguments and returns the exit code.

pub mod agent;
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

/// The error and its causes, joined with ": " as `{:#}` does, leaving out a
/// cause whose text already ends the message: many errors name their
/// source in their own text and also hand it on as `source()`.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the policy file /x: {0}")]
    struct Embeds(#[source] std::io::Error);

    fn missing() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENOENT)
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let e = anyhow::Error::new(Embeds(missing()));
        let text = error_text(&e);
        assert_eq!(
            text,
            "cannot open the policy file /x: No such file or directory (os error 2)"
        );
        // What `{:#}` printed before: the cause twice.
        assert_ne!(format!("{e:#}"), text);
    }

    #[test]
    fn context_and_other_causes_are_kept() {
        let e = anyhow::Error::new(missing()).context("cannot create the output file");
        assert_eq!(
            error_text(&e),
            "cannot create the output file: No such file or directory (os error 2)"
        );
    }
}
