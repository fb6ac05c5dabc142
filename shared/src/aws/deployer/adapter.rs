//! The production [`Deployer`], [`AwsDeployer`]: its clients and wiring, and the port's
//! operations dispatched to the module that does each kind of work.

use std::sync::{Arc, Mutex};

use super::prefetch::Revisions;
use super::{
    DeployError, DeployOutcome, DeployRequest, Deployer, DeploymentStatus, MigrationRun, Origin,
    Tagged, deployment_info, origin_of, sdk,
};
use crate::pipeline::{ServiceKind, Target};
use crate::release::Timestamp;

/// An ECS service as it is now (an inactive one of the same name does not count).
pub(crate) async fn ecs_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<aws_sdk_ecs::types::Service, DeployError> {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        // The tag a `stop-first` migration leaves on a service it stopped.
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .map_err(|e| sdk("ECS DescribeServices", &e))?;
    out.services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() != Some("INACTIVE"))
        .ok_or_else(|| {
            DeployError::permanent(format!(
                "ECS service {service} not found in cluster {cluster}; check the pipeline's cluster and service"
            ))
        })
}

/// The production [`Deployer`]: ECS and CodeDeploy through the AWS SDK.
#[derive(Clone, Debug)]
pub struct AwsDeployer {
    pub(super) ecs: crate::sdk::OnFirstUse<aws_sdk_ecs::Client>,
    pub(super) codedeploy: crate::sdk::OnFirstUse<aws_sdk_codedeploy::Client>,
    pub(super) hook_function: String,
    pub(super) triggers: super::AwsTriggers,
    pub(super) prefetched: Arc<Mutex<Vec<(String, std::time::Instant, Revisions)>>>,
}

impl AwsDeployer {
    /// `hook_function` is the deploy-hook Lambda named in every AppSpec; `triggers` finds
    /// and moves the triggers of data jobs.
    pub fn new(
        ecs: impl Into<crate::sdk::OnFirstUse<aws_sdk_ecs::Client>>,
        codedeploy: impl Into<crate::sdk::OnFirstUse<aws_sdk_codedeploy::Client>>,
        hook_function: impl Into<String>,
        triggers: super::AwsTriggers,
    ) -> AwsDeployer {
        AwsDeployer {
            ecs: ecs.into(),
            codedeploy: codedeploy.into(),
            hook_function: hook_function.into(),
            triggers,
            prefetched: Arc::default(),
        }
    }

    pub(super) async fn ecs_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<aws_sdk_ecs::types::Service, DeployError> {
        ecs_service(&self.ecs, cluster, service).await
    }
}

impl Deployer for AwsDeployer {
    async fn prefetch(&self, req: DeployRequest<'_>) {
        self.read_ahead(req).await
    }

    async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
        match &req.stage.target {
            Target::BlueGreen {
                cluster,
                service,
                container,
                port,
                codedeploy,
                checks,
            } => {
                self.blue_green(req, cluster, service, container, *port, codedeploy, checks)
                    .await
            }
            Target::Rolling {
                cluster,
                service,
                container,
            } => self.rolling(req, cluster, service, container).await,
            Target::Task { families, cluster } => {
                self.data_jobs(req, families, cluster.as_deref()).await
            }
        }
    }

    async fn run_migration(&self, req: DeployRequest<'_>) -> Result<MigrationRun, DeployError> {
        self.start_migration(req).await
    }

    async fn migration_status(
        &self,
        req: DeployRequest<'_>,
        task_arn: &str,
    ) -> Result<MigrationRun, DeployError> {
        let (cluster, _) = Self::migration_home(&req)?;
        self.task(cluster, task_arn).await
    }

    async fn deployment_status(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
    ) -> Result<DeploymentStatus, DeployError> {
        match &req.stage.target {
            Target::BlueGreen { .. } => self.codedeploy_status(deployment_id).await,
            Target::Rolling {
                cluster, service, ..
            } => self.rolling_status(cluster, service, deployment_id).await,
            Target::Task { .. } => Ok(DeploymentStatus::Succeeded),
        }
    }

    async fn restart(
        &self,
        cluster: &str,
        service: &str,
        since: Timestamp,
    ) -> Result<String, DeployError> {
        self.restart_service(cluster, service, since).await
    }

    async fn stop_app(&self, req: DeployRequest<'_>) -> Result<super::AppStop, DeployError> {
        let (cluster, service) = Self::migration_home(&req)?;
        self.stop_service(cluster, service).await
    }

    async fn start_app(
        &self,
        req: DeployRequest<'_>,
        desired: Option<u32>,
    ) -> Result<Option<String>, DeployError> {
        let (cluster, service) = Self::migration_home(&req)?;
        self.migration_left_schema(req).await?;
        self.start_service(cluster, service, desired).await
    }

    async fn clean_up(
        &self,
        req: DeployRequest<'_>,
        keep: u32,
        protect: &[crate::release::ReleaseId],
    ) -> super::CleanUp {
        self.clean_up_revisions(req, keep, protect).await
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, DeployError> {
        Ok(deployment_info(&self.codedeploy, deployment_id)
            .await?
            .and_then(origin_of))
    }

    async fn ecs_origin(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> Result<Option<Tagged>, DeployError> {
        self.tagged_revision(cluster, service, deployment_id).await
    }

    async fn stop_deployment(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
        rollback: bool,
    ) -> Result<(), DeployError> {
        if req.service.kind != ServiceKind::BlueGreen {
            return Err(DeployError::permanent(format!(
                "ECS deployment {deployment_id} of a {} service is not stopped by Shiplane; its circuit breaker rolls a failure back, or update the service by hand",
                req.service.kind.as_str()
            )));
        }
        self.stop_codedeploy(deployment_id, rollback).await
    }
}
