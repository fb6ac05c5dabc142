//! Data-job stages: a new revision of every task-definition family the stage names, pinned
//! to the release's image; nothing runs, so there is nothing to wait for.

use futures_util::future::try_join_all;

use super::adapter::AwsDeployer;
use super::revisions::Pick;
use super::{DeployError, DeployOutcome, DeployRequest};

impl AwsDeployer {
    pub(super) async fn data_jobs(
        &self,
        req: DeployRequest<'_>,
        families: &[String],
    ) -> Result<DeployOutcome, DeployError> {
        // Every family at once: each reads its latest, which is both the base and the
        // revision to reuse if it is ours, then registers.
        let task_definitions = try_join_all(families.iter().map(|family| async move {
            let (base, tags) = self.task_definition(family).await?;
            let latest = Some((base.clone(), tags));
            let pick = Pick::Repository(&req.release.repository);
            self.ensure_revision(&base, latest, pick, req).await
        }))
        .await?;
        Ok(DeployOutcome::Registered { task_definitions })
    }
}
