//! Data-job stages: a new revision of every task-definition family the stage names, pinned
//! to the release's image, and every trigger pinned to a revision of one of them (an
//! EventBridge rule target, a Scheduler schedule, in the stage's cluster when it names one)
//! moved to it. Nothing runs, so there is nothing to wait for.
//!
//! All or none: when a family cannot be registered or a trigger cannot be moved, the
//! triggers this run moved are put back and the revisions it registered are deregistered
//! (unless a trigger still names one), so that a trigger naming its family unpinned runs
//! the revision it ran before, and the stage fails naming what refused and the fix.

use futures_util::future::join_all;
use tracing::{info, warn};

use super::adapter::AwsDeployer;
use super::revisions::Pick;
use super::triggers::{TriggerPort, move_triggers, plan, short};
use super::{DeployError, DeployOutcome, DeployRequest, sdk};

impl AwsDeployer {
    pub(super) async fn data_jobs(
        &self,
        req: DeployRequest<'_>,
        families: &[String],
        cluster: Option<&str>,
    ) -> Result<DeployOutcome, DeployError> {
        // Every family at once: each reads its latest, which is both the base and the
        // revision to reuse if it is ours, then registers.
        let registered = join_all(families.iter().map(|family| async move {
            let (base, tags) = self.task_definition(family).await?;
            let latest = Some((base.clone(), tags));
            let pick = Pick::Repository(&req.release.repository);
            self.ensure_revision(&base, latest, pick, req).await
        }))
        .await;
        let (task_definitions, failed): (Vec<_>, Vec<_>) =
            registered.into_iter().partition(Result::is_ok);
        let task_definitions: Vec<String> = task_definitions.into_iter().flatten().collect();
        if let Some(Err(e)) = failed.into_iter().next() {
            return Err(self.withdraw(&task_definitions, e).await);
        }
        let moved = match self.triggers.ecs_triggers().await {
            Ok(triggers) => {
                move_triggers(&self.triggers, plan(&triggers, &task_definitions, cluster)).await
            }
            Err(e) => Err(e),
        };
        match moved {
            Ok(triggers) => Ok(DeployOutcome::Registered {
                task_definitions,
                triggers,
            }),
            Err(e) => Err(self.withdraw(&task_definitions, e).await),
        }
    }

    /// Deregisters `revisions` after `e` stopped the stage, but for one a trigger still
    /// names (a trigger cannot run an INACTIVE revision): the error, saying what was done.
    async fn withdraw(&self, revisions: &[String], e: DeployError) -> DeployError {
        let named: Vec<String> = match self.triggers.ecs_triggers().await {
            Ok(triggers) => triggers.into_iter().map(|t| t.task_definition).collect(),
            Err(listing) => {
                warn!(error = %listing.message, "triggers not listed; the new revisions are kept");
                return DeployError {
                    message: format!(
                        "{}; the new revisions {} were kept (the triggers could not be listed again: {})",
                        e.message,
                        names(revisions),
                        listing.message
                    ),
                    ..e
                };
            }
        };
        let mut withdrawn = Vec::new();
        let mut kept = Vec::new();
        for arn in revisions {
            if named.iter().any(|n| n == arn) {
                kept.push(arn.clone());
                continue;
            }
            let out = self
                .ecs
                .deregister_task_definition()
                .task_definition(arn)
                .send()
                .await;
            match out.map_err(|err| sdk("ECS DeregisterTaskDefinition", &err)) {
                Ok(_) => withdrawn.push(arn.clone()),
                Err(err) => {
                    warn!(revision = %arn, error = %err.message, "new revision not deregistered");
                    kept.push(arn.clone());
                }
            }
        }
        info!(withdrawn = ?withdrawn, kept = ?kept, "data-job stage failed; its new revisions withdrawn");
        let mut message = e.message;
        if !withdrawn.is_empty() {
            message.push_str(&format!(
                "; deregistered the new revisions {} (a trigger naming its family unpinned runs the one before)",
                names(&withdrawn)
            ));
        }
        if !kept.is_empty() {
            message.push_str(&format!(
                "; kept {} (a trigger names it, or ECS refused)",
                names(&kept)
            ));
        }
        DeployError { message, ..e }
    }
}

fn names(revisions: &[String]) -> String {
    revisions
        .iter()
        .map(|r| short(r))
        .collect::<Vec<_>>()
        .join(", ")
}
