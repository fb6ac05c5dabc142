//! Data-job stages: a new revision of every task-definition family the stage names, pinned
//! to the release's image, and every trigger pinned to a revision of one of them (an
//! EventBridge rule target, a Scheduler schedule, in the stage's cluster when it names one)
//! moved to it, all or none ([`settle`]). Nothing runs, so there is nothing to wait for.

use futures_util::future::join_all;

use super::adapter::AwsDeployer;
use super::revisions::Pick;
use super::triggers::settle;
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
        let mut failed = None;
        let mut task_definitions = Vec::new();
        for r in registered {
            match r {
                Ok(arn) => task_definitions.push(arn),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let deregister = |arn: String| async move {
            self.ecs
                .deregister_task_definition()
                .task_definition(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk("ECS DeregisterTaskDefinition", &e))
        };
        let restore = req
            .release
            .stages
            .get(&req.stage.environment)
            .is_some_and(|s| s.redeploy);
        let (task_definitions, triggers) = settle(
            &self.triggers,
            task_definitions,
            failed,
            cluster,
            restore,
            deregister,
        )
        .await?;
        Ok(DeployOutcome::Registered {
            task_definitions,
            triggers,
        })
    }
}
