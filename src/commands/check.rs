//! `bee-trace check`: load and attach every probe for real, say how each went, detach.

use std::process::ExitCode;

use anyhow::Result;

use crate::kernel::{self, Selection, Sensors};
use crate::policy::Policy;

pub fn run() -> Result<ExitCode> {
    let tracefs = super::preflight()?;
    let policy = Policy::default_policy();
    let sensors = Sensors::start(
        Selection::All,
        kernel::HookMode::Auto,
        &tracefs,
        &policy.kernel_filter(),
        &[],
    );
    let mut failed = 0;
    for s in &sensors.status {
        match &s.outcome {
            Ok(()) => println!("attached  {:<8} {}", s.family.as_str(), s.probe),
            Err(why) => {
                failed += 1;
                println!("FAILED    {:<8} {}: {why}", s.family.as_str(), s.probe);
            }
        }
    }
    for (family, probe, why) in &sensors.skipped {
        println!(
            "skipped   {:<8} {probe}: {why} (optional: bee-trace runs without it)",
            family.as_str()
        );
    }
    for h in &sensors.hooks {
        match &h.refused {
            None => println!("hooks     {:<8} {}", h.family.as_str(), h.hook()),
            Some(why) => println!(
                "hooks     {:<8} {} (the optional fexit upgrade was refused: {why})",
                h.family.as_str(),
                h.hook()
            ),
        }
    }
    for (family, what) in sensors.blind_spots() {
        println!("blind     {family:<8} {what}");
    }
    drop(sensors);
    if failed > 0 {
        println!(
            "{failed} probe(s) failed: bee-trace would not see what they cover on this kernel"
        );
        return Ok(ExitCode::from(1));
    }
    println!("all probes attached");
    Ok(ExitCode::SUCCESS)
}
