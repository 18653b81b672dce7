//! `bee-trace verify`: check a signed event stream against its key.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::VerifyArgs;
use crate::input;
use crate::sink::evidence;

pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let (file, key) = (args.file.as_path(), args.key.as_path());
    let key = evidence::read_key(key)?;
    let bytes = input::read_regular(file, input::LOG_MAX, "signed log", input::Trust::Data)?;
    let text = String::from_utf8(bytes).with_context(|| {
        format!(
            "{} is not UTF-8 text: not a log bee-trace wrote",
            file.display()
        )
    })?;
    match evidence::verify(&text, &key) {
        Ok(n) => {
            println!("OK: {} records, sealed, signatures valid", n);
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            println!("FAILED: {f}");
            Ok(ExitCode::from(1))
        }
    }
}
