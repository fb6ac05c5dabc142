//! Migrations: the one-off ECS task (RunTask) that runs a release's migration command with
//! its image beside the service, once per release and environment, and where it is.

use aws_sdk_ecs::operation::run_task::RunTaskOutput;
use aws_sdk_ecs::types::{
    Compatibility, ContainerOverride, DesiredStatus, LaunchType, NetworkMode, TaskDefinition,
    TaskOverride,
};

use super::adapter::AwsDeployer;
use super::naming::{client_token, started_by};
use super::revisions::Pick;
use super::{DeployError, DeployRequest, MigrationRun, sdk};
use crate::facts::{ContainerExit, TaskStopped};
use crate::pipeline::Migration;

impl AwsDeployer {
    /// Starts the release's migration task, or adopts the one an earlier attempt started
    /// ([`Deployer::run_migration`]).
    ///
    /// [`Deployer::run_migration`]: super::Deployer::run_migration
    pub(super) async fn start_migration(
        &self,
        req: DeployRequest<'_>,
    ) -> Result<MigrationRun, DeployError> {
        let Some(migration) = req.stage.migration.as_ref() else {
            return Err(DeployError::permanent(format!(
                "services.{}.environments.{} has no migration",
                req.service.name, req.stage.environment
            )));
        };
        let (cluster, service) = Self::migration_home(&req)?;
        let started_by = started_by(req.release, &req.stage.environment);
        // A task an earlier attempt started (running or stopped), and the family the task
        // runs, asked at once; a fresh release has no earlier attempt to ask about.
        let (earlier, family) = tokio::join!(
            self.earlier_task(cluster, &started_by, req.fresh),
            self.task_definition(&migration.family)
        );
        if let Some(arn) = earlier? {
            // Started by an earlier attempt: adopt it, with its exit if it stopped.
            return self.task(cluster, &arn).await;
        }

        // The family's latest is both the base and the revision to reuse if it is ours.
        let (base, tags) = family?;
        let latest = Some((base.clone(), tags));
        let (pick, container_name) = migration_container(&base, migration, &req)?;
        let task_definition = self.ensure_revision(&base, latest, pick, req).await?;
        let network = if base.network_mode == Some(NetworkMode::Awsvpc) {
            // The migration joins the service's network.
            self.ecs_service(cluster, service)
                .await?
                .network_configuration
        } else {
            None
        };
        let out = self
            .ecs
            .run_task()
            .cluster(cluster)
            .task_definition(&task_definition)
            .count(1)
            .started_by(&started_by)
            .client_token(client_token(req.release, &req.stage.environment))
            // A family made for Fargate runs there; otherwise the cluster's default applies.
            .set_launch_type(
                base.requires_compatibilities()
                    .contains(&Compatibility::Fargate)
                    .then_some(LaunchType::Fargate),
            )
            .set_network_configuration(network)
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name(container_name)
                            .set_command(Some(migration.command.clone()))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk("ECS RunTask", &e))?;
        started(&out)
    }

    /// The task an earlier attempt started for this release and environment, by its
    /// `startedBy`: a running one, else a stopped one. None is looked for when `fresh`.
    pub(super) async fn earlier_task(
        &self,
        cluster: &str,
        started_by: &str,
        fresh: bool,
    ) -> Result<Option<String>, DeployError> {
        if fresh {
            return Ok(None);
        }
        let list = |status: DesiredStatus| {
            self.ecs
                .list_tasks()
                .cluster(cluster)
                .started_by(started_by)
                .desired_status(status)
                .send()
        };
        let (running, stopped) =
            tokio::join!(list(DesiredStatus::Running), list(DesiredStatus::Stopped));
        for listed in [running, stopped] {
            let out = listed.map_err(|e| sdk("ECS ListTasks", &e))?;
            if let Some(arn) = out.task_arns.unwrap_or_default().into_iter().next() {
                return Ok(Some(arn));
            }
        }
        Ok(None)
    }

    /// The ECS service a migration runs beside (its cluster, and its network for awsvpc).
    pub(super) fn migration_home<'a>(
        req: &DeployRequest<'a>,
    ) -> Result<(&'a str, &'a str), DeployError> {
        req.stage.target.ecs_service().ok_or_else(|| {
            DeployError::permanent(format!(
                "services.{} is a task service; data jobs run no migration",
                req.service.name
            ))
        })
    }

    /// A task by ARN: running, or stopped with every container's exit.
    pub(super) async fn task(
        &self,
        cluster: &str,
        task_arn: &str,
    ) -> Result<MigrationRun, DeployError> {
        let out = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(task_arn)
            .send()
            .await
            .map_err(|e| sdk("ECS DescribeTasks", &e))?;
        Ok(out.tasks().first().map_or(MigrationRun::Missing, task_run))
    }
}

/// Which containers of the migration's family get the release's image (the migration's
/// container, else the stage's, else every one running the release's repository), and the
/// name of the one whose command is overridden.
fn migration_container<'a>(
    base: &TaskDefinition,
    migration: &'a Migration,
    req: &DeployRequest<'a>,
) -> Result<(Pick<'a>, String), DeployError> {
    let pick = match req.stage.migration_container() {
        Some(name) => Pick::Named(name),
        None => Pick::Repository(&req.release.repository),
    };
    let container_name = base
        .container_definitions()
        .iter()
        .find(|c| pick.matches(c.name.as_deref(), c.image.as_deref()))
        .and_then(|c| c.name.clone())
        .ok_or_else(|| {
            DeployError::permanent(format!(
                "migration family {} has no container for the release's image",
                migration.family
            ))
        })?;
    Ok((pick, container_name))
}

/// The task RunTask started, or an error naming why it started none.
fn started(out: &RunTaskOutput) -> Result<MigrationRun, DeployError> {
    if let Some(task) = out.tasks().first() {
        return Ok(task_run(task));
    }
    let reasons: Vec<String> = out
        .failures()
        .iter()
        .map(|f| format!("{}: {}", f.arn().unwrap_or("?"), f.reason().unwrap_or("?")))
        .collect();
    Err(DeployError {
        message: format!("ECS RunTask started no task: {}", reasons.join("; ")),
        retryable: true,
    })
}

/// Where a task described by ECS is.
fn task_run(task: &aws_sdk_ecs::types::Task) -> MigrationRun {
    let task_arn = task.task_arn().unwrap_or_default().to_string();
    if task.last_status() != Some("STOPPED") {
        return MigrationRun::Running { task_arn };
    }
    MigrationRun::Stopped(TaskStopped {
        task_arn,
        started_by: task.started_by().map(str::to_string),
        stopped_reason: task
            .stopped_reason()
            .unwrap_or("no reason given")
            .to_string(),
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerExit {
                name: c.name().unwrap_or("?").to_string(),
                exit_code: c.exit_code().map(i64::from),
                reason: c.reason().map(str::to_string),
            })
            .collect(),
    })
}
