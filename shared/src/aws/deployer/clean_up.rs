//! The clean-up after a success (`keep`): the task-definition revisions Shiplane
//! registered for one environment, beyond the newest `keep`, deregistered; never one of a
//! release the lane keeps. Revisions registered by anyone else are not touched.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::adapter::AwsDeployer;
use super::naming::{TAG_ENVIRONMENT, TAG_RELEASE};
use super::revisions::{family_of, tag};
use super::{CleanUp, DeployError, DeployRequest, sdk};
use crate::pipeline::Target;
use crate::release::ReleaseId;

/// How many of a family's newest revisions one clean-up looks through.
const LOOKED_AT: i32 = 100;

/// The families a stage registers revisions in: its service's (the family of the revision
/// the release deployed), its data jobs', its migration's.
pub(super) fn families(req: &DeployRequest<'_>) -> BTreeSet<String> {
    let env = req.stage.environment.as_str();
    let mut out = BTreeSet::new();
    match &req.stage.target {
        Target::Task { families, .. } => out.extend(families.iter().cloned()),
        Target::BlueGreen { .. } | Target::Rolling { .. } => {
            let deployed = req
                .release
                .stages
                .get(env)
                .and_then(|s| s.task_definition.as_deref());
            out.extend(deployed.and_then(family_of).map(str::to_string));
        }
    }
    out.extend(req.stage.migration.as_ref().map(|m| m.family.clone()));
    out
}

impl AwsDeployer {
    /// [`Deployer::clean_up`](super::Deployer::clean_up).
    pub(super) async fn clean_up_revisions(
        &self,
        req: DeployRequest<'_>,
        keep: u32,
        protect: &[ReleaseId],
    ) -> CleanUp {
        let mut deregistered = Vec::new();
        let error = self
            .clean_up_into(&req, keep, protect, &mut deregistered)
            .await
            .err();
        CleanUp {
            deregistered,
            error,
        }
    }

    /// [`AwsDeployer::clean_up_revisions`], each revision's name pushed to `deregistered`
    /// as it goes, so that one that stops part-way still says what it did.
    async fn clean_up_into(
        &self,
        req: &DeployRequest<'_>,
        keep: u32,
        protect: &[ReleaseId],
        deregistered: &mut Vec<String>,
    ) -> Result<(), DeployError> {
        let env = req.stage.environment.as_str();
        for family in families(req) {
            let listed = self
                .ecs
                .list_task_definitions()
                .family_prefix(&family)
                .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                .sort(aws_sdk_ecs::types::SortOrder::Desc)
                .max_results(LOOKED_AT)
                .send()
                .await
                .map_err(|e| sdk("ECS ListTaskDefinitions", &e))?;
            let arns: Vec<String> = listed
                .task_definition_arns
                .unwrap_or_default()
                .into_iter()
                .filter(|arn| family_of(arn) == Some(family.as_str()))
                .collect();
            let described = join_all(arns.iter().map(|arn| self.task_definition(arn))).await;
            let mut kept = 0;
            for (arn, read) in arns.iter().zip(described) {
                let (_, tags) = read?;
                let Some(release) =
                    tag(&tags, TAG_RELEASE).filter(|_| tag(&tags, TAG_ENVIRONMENT) == Some(env))
                else {
                    continue; // another environment's, or not Shiplane's
                };
                if kept < keep {
                    kept += 1;
                    continue;
                }
                if protect.iter().any(|p| p.as_str() == release) {
                    continue;
                }
                self.ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(|e| sdk("ECS DeregisterTaskDefinition", &e))?;
                deregistered.push(arn.rsplit('/').next().unwrap_or(arn).to_string());
            }
        }
        Ok(())
    }
}
