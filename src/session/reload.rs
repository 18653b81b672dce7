//! SIGHUP: the --config file re-read and put in force without detaching.

use std::path::Path;

use anyhow::{Context, Result};

use super::{canaries, Running};
use crate::policy::network::Plan;
use crate::policy::{self, Policy};
use crate::{escape, kernel};

impl Running {
    /// Says on stderr what a SIGHUP did: nothing without --config, the new
    /// policy, or why it was refused and the previous one stays.
    pub(super) fn on_sighup(&mut self) {
        match self.parts.meta.config.clone() {
            None => eprintln!("bee-trace: SIGHUP: no --config file, nothing to reload"),
            Some(path) => match self.reload(&path) {
                Ok(()) => eprintln!("bee-trace: policy reloaded from {}", path.display()),
                Err(e) => eprintln!(
                    "bee-trace: reload of {} refused, the previous policy stays in force: {}",
                    path.display(),
                    crate::commands::error_text(&e)
                ),
            },
        }
    }

    /// Re-reads the policy at `path` and puts it in force. Everything that
    /// can be refused (the file, the network plan, a canary that cannot be
    /// planted) is checked before the kernel maps change.
    pub fn reload(&mut self, path: &Path) -> Result<()> {
        let p = &mut self.parts;
        let mut policy = Policy::load(path)?;
        let plan = Plan::new(&policy, &p.meta.nameservers).map_err(|m| anyhow::anyhow!("{m}"))?;
        let old = &p.flow.pipeline.policy;
        if (policy.event_buffer_size, policy.max_events_per_second)
            != (old.event_buffer_size, old.max_events_per_second)
        {
            log::warn!("performance.* changes take effect at the next start, not on reload");
        }
        if policy.fail_on != old.fail_on {
            log::warn!("verdict.fail_on changes take effect at the next start, not on reload: the verdict judges the whole run at one level");
        }

        // New canaries first; if one cannot be planted, undo and refuse.
        let planted = &mut p.decoys.canaries;
        let before: Vec<std::path::PathBuf> =
            planted.planted.iter().map(|c| c.path.clone()).collect();
        let fresh: Vec<policy::Canary> = policy
            .canaries
            .iter()
            .filter(|c| !planted.is_planted(&c.path))
            .cloned()
            .collect();
        let outcomes = planted.add(&fresh);
        if let Err(e) = canaries::settle(&mut policy, &fresh, outcomes) {
            planted.retain(&before);
            return Err(e);
        }

        let filter = policy.kernel_filter();
        let seeds = kernel::seed_inodes(&policy.seed_files(&super::homes::on_host()));
        let (inodes, disarm) = p.decoys.armed.arm(&policy, &seeds);
        p.kernel.sensors
            .update_file_filter(&p.kernel.filter, &filter, &inodes, &disarm)
            .map_err(|e| anyhow::anyhow!("{}", kernel::explain(&e)))
            .context("the kernel refused the new file filter; restart bee-trace to be sure which policy is in force")?;
        p.decoys.armed.release(&disarm);
        p.kernel.filter = filter;
        // Decoys the new policy no longer has go only now, once disarmed.
        let keep: Vec<std::path::PathBuf> =
            policy.canaries.iter().map(|c| c.path.clone()).collect();
        p.decoys.canaries.retain(&keep);

        let pipeline = &mut p.flow.pipeline;
        pipeline
            .set_policy(policy, plan, p.kernel.stop_workers.clone())
            .map_err(|e| anyhow::anyhow!("{}", kernel::explain(&e)))
            .context("the kernel refused the new egress maps; restart bee-trace to be sure which policy is in force")?;
        for (key, path) in &seeds {
            pipeline.know_file(*key, &escape::decode_path(path));
        }
        log::info!(
            "reloaded: {} file rules, {} files watched by inode, {} armed",
            pipeline.policy.file_rules.len(),
            seeds.len(),
            p.decoys.armed.count()
        );
        Ok(())
    }
}
