//! `bee-trace rules`: the rules in force, counted or listed.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RulesArgs;
use crate::rules;

pub fn run(args: &RulesArgs) -> Result<ExitCode> {
    let (list, dir) = (args.list, args.rules.as_deref());
    let set = rules::load(dir)?;
    if !list {
        println!(
            "{} rules loaded (built-in pack{}); --list shows them",
            set.rules.len(),
            dir.map(|d| format!(" and {}", d.display()))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for r in &set.rules {
        println!(
            "{:<40} {:<8} [{}] ({})\n    {}",
            r.name,
            r.severity.as_str(),
            r.tags.join(", "),
            r.source,
            r.description
        );
    }
    Ok(ExitCode::SUCCESS)
}
