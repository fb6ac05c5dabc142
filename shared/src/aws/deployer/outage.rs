//! A `stop-first` migration's outage on AWS: the service scaled to zero (its desired
//! count remembered in a tag on the service first), its tasks counted until none runs, and
//! the service brought back to that count, by the deployment of the new version or, when
//! the release goes no further, on the revision it ran.

use aws_sdk_ecs::types::{DesiredStatus, Service, Tag};

use super::adapter::AwsDeployer;
use super::{AppStop, DeployError, DeployRequest, MigrationRun, sdk};

/// The tag a stopped service carries: the desired count it had. On the service, not only
/// in Shiplane's table, so that a crash between the stop and its record loses nothing and
/// a person looking at a service at zero sees why.
pub(super) const STOPPED_FROM: &str = "shiplane:stopped-from";

/// The desired count a service stopped for a migration is brought back to: the one its
/// tag remembers, while it is at zero (a person who scaled it up since decided already).
pub(super) fn stopped_from(service: &Service) -> Option<i32> {
    if service.desired_count != 0 {
        return None;
    }
    service
        .tags()
        .iter()
        .find(|t| t.key() == Some(STOPPED_FROM))
        .and_then(|t| t.value()?.parse::<i32>().ok())
        .filter(|n| *n > 0)
}

impl AwsDeployer {
    /// [`Deployer::stop_app`](super::Deployer::stop_app) on an ECS service.
    pub(super) async fn stop_service(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<AppStop, DeployError> {
        let service = self.ecs_service(cluster, name).await?;
        let desired = if service.desired_count > 0 {
            let arn = service.service_arn().unwrap_or(name);
            let tag = Tag::builder()
                .key(STOPPED_FROM)
                .value(service.desired_count.to_string())
                .build();
            // Remembered before it is stopped: a crash in between stops nothing.
            self.ecs
                .tag_resource()
                .resource_arn(arn)
                .tags(tag)
                .send()
                .await
                .map_err(|e| sdk("ECS TagResource", &e))?;
            self.ecs
                .update_service()
                .cluster(cluster)
                .service(name)
                .desired_count(0)
                .send()
                .await
                .map_err(|e| sdk("ECS UpdateService", &e))?;
            service.desired_count
        } else {
            // Stopped already (an earlier attempt), or by a person: nothing to bring back.
            stopped_from(&service).unwrap_or(0)
        };
        // Not known is not stopped: the migration waits, and the next pass counts again.
        let running = match self.tasks_not_stopped(cluster, name).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(service = %name, error = %e.message, "could not count the stopped service's tasks");
                u32::MAX
            }
        };
        Ok(AppStop {
            desired: u32::try_from(desired).unwrap_or(0),
            running,
        })
    }

    /// How many of the service's tasks still run: those ECS wants running, and those told
    /// to stop that have not stopped yet (draining their connections).
    async fn tasks_not_stopped(&self, cluster: &str, name: &str) -> Result<u32, DeployError> {
        let list = |status: DesiredStatus| {
            self.ecs
                .list_tasks()
                .cluster(cluster)
                .service_name(name)
                .desired_status(status)
                .send()
        };
        let (wanted, stopping) =
            tokio::join!(list(DesiredStatus::Running), list(DesiredStatus::Stopped));
        let wanted = wanted.map_err(|e| sdk("ECS ListTasks", &e))?;
        let stopping = stopping.map_err(|e| sdk("ECS ListTasks", &e))?;
        // More than a page (ECS lists stopped tasks for an hour): not known, so not stopped.
        if wanted.next_token().is_some()
            || stopping.next_token().is_some()
            || stopping.task_arns().len() > 100
        {
            return Ok(u32::MAX);
        }
        let mut running = wanted.task_arns().len();
        let told: Vec<String> = stopping.task_arns().to_vec();
        if !told.is_empty() {
            let out = self
                .ecs
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(told))
                .send()
                .await
                .map_err(|e| sdk("ECS DescribeTasks", &e))?;
            running += out
                .tasks()
                .iter()
                .filter(|t| t.last_status() != Some("STOPPED"))
                .count();
        }
        Ok(u32::try_from(running).unwrap_or(u32::MAX))
    }

    /// [`Deployer::start_app`](super::Deployer::start_app) on an ECS service: a new
    /// deployment of the revision it runs at the count it had.
    pub(super) async fn start_service(
        &self,
        cluster: &str,
        name: &str,
        recorded: Option<u32>,
    ) -> Result<Option<String>, DeployError> {
        let service = self.ecs_service(cluster, name).await?;
        // At zero with its tag gone (taken away by a deploy whose bring-up did not land),
        // the count the lane recorded brings it back.
        let from_lane = recorded
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n > 0 && service.desired_count == 0);
        // Found running: nothing to start, and its tag (a stale one) is left alone. Taken
        // away now, the untag could land after the next release's stop tagged the service,
        // and that release's bring-up would find no count (simulation seed 99305); the
        // next stop tags it again before it scales to zero.
        let Some(desired) = stopped_from(&service).or(from_lane) else {
            return Ok(None);
        };
        let out = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(name)
            .desired_count(desired)
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| sdk("ECS UpdateService", &e))?;
        self.forget_stop(&service).await;
        Ok(out.service.as_ref().and_then(super::rolling::primary))
    }

    /// Refuses to start the service again while the release's migration task runs
    /// (retryable: the next pass asks again), and once it completed (for good): the version
    /// the service ran may not run on what the migration changed. A task ECS no longer
    /// knows (stopped over an hour ago) refuses nothing.
    pub(super) async fn migration_left_schema(
        &self,
        req: DeployRequest<'_>,
    ) -> Result<(), DeployError> {
        let (cluster, _) = Self::migration_home(&req)?;
        let by = super::naming::started_by(req.release, &req.stage.environment);
        let Some(arn) = self.earlier_task(cluster, &by, false).await? else {
            return Ok(());
        };
        match self.task(cluster, &arn).await? {
            MigrationRun::Running { .. } => Err(DeployError {
                message: format!(
                    "the migration task {arn} still runs; the service is started again once it stopped"
                ),
                retryable: true,
            }),
            MigrationRun::Stopped(t) => match t.outcome(req.stage.migration_container()) {
                Ok(()) => Err(DeployError::permanent(format!(
                    "the migration completed (task {arn} exited 0): the revision the service ran may not run on what it changed, so it is not started again; deploy a release that runs on it (shiplane retry {} {}, or a fixed push)",
                    req.release.id, req.stage.environment
                ))),
                Err(_) => Ok(()),
            },
            MigrationRun::Missing => Ok(()),
        }
    }

    /// Takes the tag of a stop away once the service is up again. Best effort: a tag left
    /// behind is read only while the service is at zero.
    pub(super) async fn forget_stop(&self, service: &Service) {
        let tagged = service.tags().iter().any(|t| t.key() == Some(STOPPED_FROM));
        let Some(arn) = service.service_arn().filter(|_| tagged) else {
            return;
        };
        if let Err(e) = self
            .ecs
            .untag_resource()
            .resource_arn(arn)
            .tag_keys(STOPPED_FROM)
            .send()
            .await
        {
            tracing::warn!(service = %arn, error = %sdk("ECS UntagResource", &e).message, "the stop's tag was left on the service");
        }
    }
}
