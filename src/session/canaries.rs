//! Planting the policy's canaries and settling what planting did into the policy.

use anyhow::Result;

use crate::canary;
use crate::fsafe;
use crate::policy::{self, Policy};

/// Plants the policy's canaries. A canary whose path is taken is left alone
/// and disarmed; one that cannot be planted is an error (after removing the
/// ones already planted).
pub(super) fn plant(policy: &mut Policy, state: fsafe::Dir) -> Result<canary::Canaries> {
    let list = policy.canaries.clone();
    let (planted, outcomes) = canary::Canaries::plant(&list, Some(state));
    settle(policy, &list, outcomes)?;
    Ok(planted)
}

/// Logs what planting `list` did and disarms the canaries whose path was
/// taken; an error names the first canary that could not be planted.
pub(super) fn settle(
    policy: &mut Policy,
    list: &[policy::Canary],
    outcomes: Vec<canary::Outcome>,
) -> Result<()> {
    for (c, o) in list.iter().zip(outcomes) {
        match o {
            canary::Outcome::Planted => log::info!("canary planted at {}", c.path.display()),
            canary::Outcome::Skipped(why) => {
                log::warn!("canary {} skipped: {why}", c.path.display());
                policy.disarm_canary(&c.path);
            }
            canary::Outcome::Exists => {
                log::warn!(
                    "canary {}: a file is already there; it is left untouched and not armed",
                    c.path.display()
                );
                policy.disarm_canary(&c.path);
            }
            canary::Outcome::Failed(why) => {
                anyhow::bail!("cannot plant the canary {}: {why}", c.path.display())
            }
        }
    }
    Ok(())
}
