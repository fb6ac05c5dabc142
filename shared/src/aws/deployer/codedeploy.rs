//! Blue/green stages on CodeDeploy: creating a release's deployment (or finding the one an
//! earlier run created), its status, stopping it, and where a deployment Shiplane holds no
//! reference to came from.

use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentError;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentError;
use aws_sdk_codedeploy::types::{
    AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, RevisionLocation,
    RevisionLocationType, TimeRange,
};
use aws_sdk_dynamodb::error::SdkError;

use super::super::appspec;
use super::super::error::once;
use super::adapter::AwsDeployer;
use super::naming::{
    deployment_description, is_restore_description, parse_deployment_description, pinned_revision,
};
use super::revisions::Pick;
use super::{DeployError, DeployOutcome, DeployRequest, DeploymentStatus, Origin, sdk};
use crate::pipeline::{Check, CodeDeployTarget, LifecycleHook};

/// How far CodeDeploy's clock may be behind the function's when looking for a deployment
/// created since a stage began.
const CLOCK_SKEW_MS: u64 = 5_000;

/// A deployment as CodeDeploy's GetDeployment describes it; None when CodeDeploy does not
/// know it.
pub(in crate::aws) async fn deployment_info(
    codedeploy: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<Option<aws_sdk_codedeploy::types::DeploymentInfo>, DeployError> {
    use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentError;
    match codedeploy
        .get_deployment()
        .deployment_id(deployment_id)
        .send()
        .await
    {
        Ok(out) => Ok(out.deployment_info),
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                GetDeploymentError::DeploymentDoesNotExistException(_)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk("CodeDeploy GetDeployment", &e)),
    }
}

/// Where a deployment came from, as GetDeployment describes it ([`Origin`]); None for one
/// someone else made.
pub(in crate::aws) fn origin_of(info: aws_sdk_codedeploy::types::DeploymentInfo) -> Option<Origin> {
    use aws_sdk_codedeploy::types::DeploymentCreator;
    if info.creator == Some(DeploymentCreator::CodeDeployRollback) {
        return info
            .rollback_info
            .and_then(|r| r.rollback_triggering_deployment_id)
            .map(Origin::RollbackOf);
    }
    let description = info.description.as_deref()?;
    let (release, environment, attempt) = parse_deployment_description(description)?;
    let restore = is_restore_description(description);
    let task_definition = info
        .revision
        .and_then(|r| r.app_spec_content)
        .and_then(|a| a.content)
        .and_then(|c| appspec::task_definition_of(&c));
    Some(Origin::Release {
        release,
        environment,
        attempt,
        task_definition,
        restore,
    })
}

/// Every deployment rolls back on its own, whatever its group says: when it fails (a hook
/// answered Failed after traffic moved, a task that never became healthy), and when it is
/// stopped (an alarm's rollback, an operator's cancel). Without it a group with rollback
/// off leaves the failed version serving, and only the group's setting decides.
fn rolls_back() -> AutoRollbackConfiguration {
    AutoRollbackConfiguration::builder()
        .enabled(true)
        .events(AutoRollbackEvent::DeploymentFailure)
        .events(AutoRollbackEvent::DeploymentStopOnAlarm)
        .events(AutoRollbackEvent::DeploymentStopOnRequest)
        .build()
}

impl AwsDeployer {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn blue_green(
        &self,
        req: DeployRequest<'_>,
        cluster: &str,
        service: &str,
        container: &str,
        port: u16,
        target: &CodeDeployTarget,
        checks: &[Check],
    ) -> Result<DeployOutcome, DeployError> {
        let revisions = self.revisions_for(&req, cluster, service).await?;
        let task_definition = match pinned_revision(&req) {
            Some(pinned) => pinned.to_string(),
            None => {
                self.ensure_revision(
                    &revisions.base,
                    revisions.latest,
                    Pick::Named(container),
                    req,
                )
                .await?
            }
        };

        let hooks: Vec<LifecycleHook> = checks.iter().map(|c| c.hook).collect();
        let spec = appspec(
            &task_definition,
            container,
            port,
            &hooks,
            &self.hook_function,
        );
        let description = deployment_description(req.release, &req.stage.environment);
        if let Some(deployment_id) = self.earlier_deployment(&req, target, &description).await? {
            return Ok(DeployOutcome::Started {
                deployment_id,
                task_definition,
            });
        }
        self.create_deployment(target, &description, &spec, task_definition)
            .await
    }

    /// Creates the release's deployment of `spec`. When the group is busy, the deployment it
    /// is busy with is taken as this one if it deploys this attempt of the release here
    /// (an earlier try made it), else the stage is blocked by it.
    async fn create_deployment(
        &self,
        target: &CodeDeployTarget,
        description: &str,
        spec: &serde_json::Value,
        task_definition: String,
    ) -> Result<DeployOutcome, DeployError> {
        let result = self
            .codedeploy
            .create_deployment()
            .application_name(&target.application)
            .deployment_group_name(&target.deployment_group)
            .deployment_config_name(&target.deployment_config)
            .auto_rollback_configuration(rolls_back())
            .description(description)
            .revision(
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::AppSpecContent)
                    .app_spec_content(AppSpecContent::builder().content(spec.to_string()).build())
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(out) => Ok(DeployOutcome::Started {
                deployment_id: out.deployment_id.ok_or_else(|| {
                    DeployError::permanent("CreateDeployment returned no deployment id")
                })?,
                task_definition,
            }),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    CreateDeploymentError::DeploymentLimitExceededException(_)
                ) =>
            {
                let message = e.err().to_string();
                // "The Deployment Group 'g' already has an active Deployment 'd-XXXX'"
                let active = message.rsplit('\'').nth(1).unwrap_or_default().to_string();
                let theirs = self
                    .codedeploy
                    .get_deployment()
                    .deployment_id(&active)
                    .send()
                    .await
                    .map_err(|e| sdk("CodeDeploy GetDeployment", &e))?;
                // Ours if it deploys this attempt of the release here, whichever try at a
                // restore made it: every try deploys the same pinned revision.
                let ours = theirs
                    .deployment_info
                    .and_then(|d| d.description)
                    .and_then(|d| parse_deployment_description(&d))
                    == parse_deployment_description(description);
                if ours {
                    Ok(DeployOutcome::Started {
                        deployment_id: active,
                        task_definition,
                    })
                } else {
                    Ok(DeployOutcome::Blocked { by: active })
                }
            }
            Err(e) => Err(sdk("CodeDeploy CreateDeployment", &e)),
        }
    }

    /// The deployment an earlier run of this stage's action created, found by its
    /// description among those created in the group since the stage began: only when the
    /// action was taken over after its lease ran out ([`Stage::resumed`]), since only then
    /// can one exist unrecorded (it may have ended already, so CreateDeployment would not
    /// refuse a second).
    ///
    /// [`Stage::resumed`]: crate::release::Stage::resumed
    pub(super) async fn earlier_deployment(
        &self,
        req: &DeployRequest<'_>,
        target: &CodeDeployTarget,
        description: &str,
    ) -> Result<Option<String>, DeployError> {
        let Some(stage) = req
            .release
            .stages
            .get(&req.stage.environment)
            .filter(|s| s.resumed > 0)
        else {
            return Ok(None);
        };
        // CodeDeploy's clock and the function's may differ by a little.
        let since = aws_sdk_codedeploy::primitives::DateTime::from_millis(
            stage.since.0.saturating_sub(CLOCK_SKEW_MS) as i64,
        );
        let mut pages = self
            .codedeploy
            .list_deployments()
            .application_name(&target.application)
            .deployment_group_name(&target.deployment_group)
            .create_time_range(TimeRange::builder().start(since).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let ids = page
                .map_err(|e| sdk("CodeDeploy ListDeployments", &e))?
                .deployments
                .unwrap_or_default();
            for chunk in ids.chunks(25) {
                let out = self
                    .codedeploy
                    .batch_get_deployments()
                    .set_deployment_ids(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| sdk("CodeDeploy BatchGetDeployments", &e))?;
                let ours = out
                    .deployments_info
                    .unwrap_or_default()
                    .into_iter()
                    .find(|d| d.description.as_deref() == Some(description));
                if let Some(id) = ours.and_then(|d| d.deployment_id) {
                    tracing::info!(deployment = %id, release = %req.release.id, environment = %req.stage.environment, "found the deployment an earlier run of this stage created");
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }

    /// Where a CodeDeploy deployment is ([`Deployer::deployment_status`] of a blue/green
    /// stage).
    ///
    /// [`Deployer::deployment_status`]: super::Deployer::deployment_status
    pub(super) async fn codedeploy_status(
        &self,
        deployment_id: &str,
    ) -> Result<DeploymentStatus, DeployError> {
        let out = self
            .codedeploy
            .get_deployment()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(|e| sdk("CodeDeploy GetDeployment", &e))?;
        let Some(info) = out.deployment_info else {
            return Ok(DeploymentStatus::Unknown);
        };
        // CodeDeploy's reason when it gives one; never a sentence ending in a colon.
        let why = info
            .error_information
            .as_ref()
            .and_then(|e| e.message.as_deref())
            .filter(|m| !m.trim().is_empty())
            .map_or_else(|| " (no reason given)".to_string(), |m| format!(": {m}"));
        use aws_sdk_codedeploy::types::DeploymentStatus as S;
        Ok(match info.status {
            Some(S::Succeeded) => DeploymentStatus::Succeeded,
            Some(S::Failed) => DeploymentStatus::Failed(format!(
                "CodeDeploy deployment {deployment_id} failed{why}"
            )),
            Some(S::Stopped) => DeploymentStatus::Failed(format!(
                "CodeDeploy deployment {deployment_id} was stopped{why}"
            )),
            Some(_) => DeploymentStatus::InProgress,
            None => DeploymentStatus::Unknown,
        })
    }

    /// Stops a CodeDeploy deployment, with CodeDeploy's rollback if `rollback`; one that
    /// already completed is not an error ([`Deployer::stop_deployment`]).
    ///
    /// [`Deployer::stop_deployment`]: super::Deployer::stop_deployment
    pub(super) async fn stop_codedeploy(
        &self,
        deployment_id: &str,
        rollback: bool,
    ) -> Result<(), DeployError> {
        let stopped = self
            .codedeploy
            .stop_deployment()
            .deployment_id(deployment_id)
            .auto_rollback_enabled(rollback)
            .send()
            .await;
        let ended = |e: &StopDeploymentError| {
            matches!(
                e,
                StopDeploymentError::DeploymentAlreadyCompletedException(_)
            )
        };
        once(stopped, ended, "CodeDeploy StopDeployment").map(|_| ())
    }
}
