//! Rolling stages: an ECS service updated in place to the release's revision, with the
//! deployment circuit breaker rolling a failure back (not when it brings a service stopped
//! for a `stop-first` migration back up: back is the old version, on the new schema), and
//! where such a deployment is.

use aws_sdk_ecs::types::{DeploymentCircuitBreaker, DeploymentConfiguration};

use super::adapter::AwsDeployer;
use super::naming::pinned_revision;
use super::prefetch::Revisions;
use super::revisions::Pick;
use super::{DeployError, DeployOutcome, DeployRequest, DeploymentStatus, sdk};
use crate::release::Timestamp;

/// The id of the service's PRIMARY deployment: the newest, the one ECS brings in.
pub(super) fn primary(service: &aws_sdk_ecs::types::Service) -> Option<String> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.id().map(str::to_string))
}

impl AwsDeployer {
    pub(super) async fn rolling(
        &self,
        req: DeployRequest<'_>,
        cluster: &str,
        service: &str,
        container: &str,
    ) -> Result<DeployOutcome, DeployError> {
        let Revisions {
            service: current,
            base,
            latest,
        } = self.revisions_for(&req, cluster, service).await?;
        let task_definition = match pinned_revision(&req) {
            Some(pinned) => pinned.to_string(),
            None => {
                self.ensure_revision(&base, latest, Pick::Named(container), req)
                    .await?
            }
        };
        let ended = req
            .release
            .stages
            .get(&req.stage.environment)
            .map_or(&[][..], |s| s.ended.as_slice());
        // Stopped for a `stop-first` migration: brought back to the count it had, on the
        // new revision only (one UpdateService, so the old one never starts again).
        let bring_up = super::outage::stopped_from(&current);
        let mut force = bring_up.is_some();
        if current.task_definition.as_deref() == Some(task_definition.as_str()) && !force {
            let adopted = primary(&current).unwrap_or_else(|| task_definition.clone());
            if !ended.contains(&adopted) {
                // Already updated by an earlier attempt: adopt its deployment.
                self.forget_stop(&current).await;
                return Ok(DeployOutcome::Started {
                    deployment_id: adopted,
                    task_definition,
                });
            }
            // The stage gave that deployment up (a late one was recorded after it, and
            // may have replaced it): a new one is made, whose outcome is news.
            force = true;
        }
        let out = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(&task_definition)
            .set_desired_count(bring_up)
            .force_new_deployment(force)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(true)
                            // Bringing the service up after its migration, a failed
                            // deployment stays failed: the lane owes the start, which
                            // refuses the old version once the migration completed, and
                            // alerts (`app_down`). The next deployment sets it back.
                            .rollback(bring_up.is_none())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk("ECS UpdateService", &e))?;
        self.forget_stop(&current).await;
        let deployment_id = out
            .service
            .as_ref()
            .and_then(primary)
            .unwrap_or_else(|| task_definition.clone());
        Ok(DeployOutcome::Started {
            deployment_id,
            task_definition,
        })
    }

    /// A rolling service restarted for another's release ([`Deployer::restart`]): the
    /// newest deployment created at or after `since`, or a forced new one of the revision
    /// it runs (UpdateService with no revision keeps it).
    ///
    /// [`Deployer::restart`]: super::Deployer::restart
    pub(super) async fn restart_service(
        &self,
        cluster: &str,
        service: &str,
        since: Timestamp,
    ) -> Result<String, DeployError> {
        let current = self.ecs_service(cluster, service).await?;
        // To the second: a restart made in the second its release succeeded is found
        // again, whatever precision ECS answers its creation time with.
        let since_ms = i64::try_from(since.0 / 1000 * 1000).unwrap_or(i64::MAX);
        // The newest such: ECS's PRIMARY, else the latest created.
        let newer = current
            .deployments()
            .iter()
            .filter(|d| {
                d.created_at()
                    .and_then(|t| t.to_millis().ok())
                    .is_some_and(|ms| ms >= since_ms)
            })
            .max_by_key(|d| {
                let created = d.created_at().and_then(|t| t.to_millis().ok());
                (d.status() == Some("PRIMARY"), created)
            })
            .and_then(|d| d.id());
        if let Some(id) = newer {
            return Ok(id.to_string());
        }
        let out = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| sdk("ECS UpdateService", &e))?;
        out.service.as_ref().and_then(primary).ok_or_else(|| {
            DeployError::permanent(format!(
                "ECS UpdateService of {service} in {cluster} answered with no PRIMARY deployment"
            ))
        })
    }

    /// Where an ECS service deployment of a rolling stage is
    /// ([`Deployer::deployment_status`]).
    ///
    /// [`Deployer::deployment_status`]: super::Deployer::deployment_status
    pub(super) async fn rolling_status(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> Result<DeploymentStatus, DeployError> {
        let current = self.ecs_service(cluster, service).await?;
        let Some(d) = current
            .deployments()
            .iter()
            .find(|d| d.id() == Some(deployment_id))
        else {
            // ECS lists the PRIMARY deployment and those it drains; one it
            // dropped was replaced long ago.
            return Ok(DeploymentStatus::Replaced);
        };
        use aws_sdk_ecs::types::DeploymentRolloutState as R;
        Ok(match d.rollout_state() {
            Some(R::Failed) => DeploymentStatus::Failed(format!(
                "ECS deployment {deployment_id} failed: {}",
                d.rollout_state_reason().unwrap_or_default()
            )),
            // A completed deployment that is no longer PRIMARY was replaced.
            _ if d.status() != Some("PRIMARY") => DeploymentStatus::Replaced,
            Some(R::Completed) => DeploymentStatus::Succeeded,
            _ => DeploymentStatus::InProgress,
        })
    }
}
