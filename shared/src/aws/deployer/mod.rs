//! Starting stages on AWS: task-definition revisions pinned to a digest, CodeDeploy
//! blue/green deployments, ECS rolling updates, and one-off migration tasks.
//!
//! Every operation first looks for its own earlier effect (a revision tagged with the
//! release, an active deployment described as the release's, a task started by it; after
//! a lease ran out, any deployment described as the release's try), so a replay after a
//! crash reuses what exists instead of doing it twice.
//!
//! This module is the port ([`Deployer`] and what it takes and answers); the adapter,
//! [`AwsDeployer`], is wired in `adapter` and does each kind of work in a module of its own:
//! `revisions` (task-definition revisions pinned to a digest), `codedeploy` (blue/green),
//! `rolling`, `data_jobs`, `migrations`, `outage` (a `stop-first` migration's stop and
//! start of the service), with `naming` (how its effects are named and
//! tagged, so it finds them again) and `prefetch` (the reads a deploy starts with, made
//! ahead).

mod adapter;
mod clean_up;
mod codedeploy;
mod data_jobs;
mod migrations;
mod naming;
mod outage;
mod prefetch;
mod revisions;
mod rolling;
mod triggers;

use std::future::Future;

use super::error::DeployError;
use super::error::sdk;
use crate::facts::TaskStopped;
use crate::pipeline::{Service, StageConfig};
use crate::release::{Release, ReleaseId, Timestamp};

pub use adapter::AwsDeployer;
#[cfg(feature = "hooks")]
pub(crate) use adapter::ecs_service;
pub(super) use codedeploy::{deployment_info, origin_of};
pub use naming::{
    client_token, deployment_description, is_restore_description, parse_deployment_description,
    parse_started_by, pinned_revision, started_by,
};
pub use triggers::{
    AwsTriggers, Move, Plan, Trigger, TriggerId, TriggerMoves, TriggerPort, move_triggers, plan,
    settle,
};

/// One release into one stage.
#[derive(Debug, Clone, Copy)]
pub struct DeployRequest<'a> {
    pub release: &'a Release,
    pub service: &'a Service,
    pub stage: &'a StageConfig,
    /// The first effect of a release minted moments ago by the same pass: nothing can have
    /// registered a revision or started a task for it yet, so none is looked for (one
    /// `DescribeTaskDefinition`, or two `ListTasks`, fewer).
    pub fresh: bool,
}

/// What starting a stage produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployOutcome {
    /// A CodeDeploy deployment (blue-green) or an ECS service deployment (rolling) runs.
    Started {
        deployment_id: String,
        task_definition: String,
    },
    /// Revisions registered for data jobs, and what moved to them; nothing runs, nothing
    /// to wait for.
    Registered {
        task_definitions: Vec<String>,
        triggers: TriggerMoves,
    },
    /// The deployment group is busy with a deployment Shiplane did not start.
    Blocked { by: String },
}

/// Where a migration task is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationRun {
    /// Started (now or by an earlier attempt) and not stopped yet.
    Running { task_arn: String },
    /// Already stopped: how it ended.
    Stopped(TaskStopped),
    /// ECS no longer knows the task (stopped tasks are forgotten after about an hour).
    Missing,
}

/// Where a deployment is, as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentStatus {
    InProgress,
    Succeeded,
    /// Failed, stopped or rolled back, with why.
    Failed(String),
    /// AWS does not know it.
    Unknown,
    /// A rolling service's newer deployment replaced it (or ECS no longer lists it): what
    /// it deployed no longer runs, whatever its rollout reached.
    Replaced,
}

/// The port the engine starts, stops and inspects stages through.
pub trait Deployer: Send + Sync {
    /// Registers the revision pinned to the release's digest and starts the stage's
    /// deployment (by service kind). Idempotent per release and environment.
    fn deploy(
        &self,
        req: DeployRequest<'_>,
    ) -> impl Future<Output = Result<DeployOutcome, DeployError>> + Send;

    /// Reads ahead, changing nothing, what `deploy(req)` reads before it acts (the ECS
    /// service, its task definition and the family's latest revision), so that the engine
    /// overlaps those reads with the commit that decides to deploy. The next `deploy` of the
    /// same release, environment and attempt uses them, once. Best effort: a failed read is
    /// simply made again by `deploy`.
    fn prefetch(&self, req: DeployRequest<'_>) -> impl Future<Output = ()> + Send {
        let _ = req;
        std::future::ready(())
    }

    /// Starts the one-off migration task with the release's image, once per release and
    /// environment: a task already started for them (running or stopped) is returned, and
    /// RunTask's client token makes two concurrent attempts start one task.
    fn run_migration(
        &self,
        req: DeployRequest<'_>,
    ) -> impl Future<Output = Result<MigrationRun, DeployError>> + Send;

    /// Where a migration task started for this release and environment is now.
    fn migration_status(
        &self,
        req: DeployRequest<'_>,
        task_arn: &str,
    ) -> impl Future<Output = Result<MigrationRun, DeployError>> + Send;

    /// Where a deployment of this stage is now.
    fn deployment_status(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
    ) -> impl Future<Output = Result<DeploymentStatus, DeployError>> + Send;

    /// Stops a deployment; with `rollback`, CodeDeploy routes traffic back. Stopping one
    /// that already completed is not an error.
    fn stop_deployment(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
        rollback: bool,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;

    /// Scales the stage's service to zero for a `stop-first` migration, first remembering
    /// on the service (a tag) the desired count it had, so that whichever deployment brings
    /// it back up restores that count, after a crash too. Idempotent: a service already
    /// stopped answers the count it had and its tasks still stopping.
    fn stop_app(
        &self,
        req: DeployRequest<'_>,
    ) -> impl Future<Output = Result<AppStop, DeployError>> + Send;

    /// Starts a service stopped for a migration again, on the revision it runs, at the
    /// desired count its tag (else `desired`, the lane's record) says: the ECS
    /// deployment, or None when it was not stopped. Refused while the release's migration
    /// task still runs (retryable), and for good once it completed: the schema it changed
    /// may not carry the version the service ran.
    fn start_app(
        &self,
        req: DeployRequest<'_>,
        desired: Option<u32>,
    ) -> impl Future<Output = Result<Option<String>, DeployError>> + Send;

    /// Restarts a rolling service another's release asked for (its stage's `restarts`): a
    /// new ECS deployment of the revision the service runs, unless one was created at or
    /// after `since` (an earlier run of this restart, or a deployment that started new
    /// tasks anyway). The deployment's id.
    fn restart(
        &self,
        cluster: &str,
        service: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<String, DeployError>> + Send;

    /// Deregisters the task-definition revisions Shiplane registered for the stage's
    /// environment beyond the newest `keep`, never one of a release in `protect`: the
    /// names of those it deregistered.
    fn clean_up(
        &self,
        req: DeployRequest<'_>,
        keep: u32,
        protect: &[ReleaseId],
    ) -> impl Future<Output = CleanUp> + Send;

    /// Who made a deployment Shiplane holds no reference to, from CodeDeploy's
    /// GetDeployment; None for one someone else made, and for one CodeDeploy does not know.
    fn origin(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<Origin>, DeployError>> + Send;

    /// The release an ECS service deployment Shiplane holds no reference to deploys, by
    /// the tags of its task-definition revision (DescribeServices, DescribeTaskDefinition);
    /// None for a revision Shiplane did not register, or a deployment ECS no longer lists.
    fn ecs_origin(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<Tagged>, DeployError>> + Send;
}

/// A service scaled to zero for a `stop-first` migration ([`Deployer::stop_app`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppStop {
    /// The desired count it had, which bringing it back up restores.
    pub desired: u32,
    /// Its tasks that have not stopped yet: the migration waits until none runs.
    pub running: u32,
}

/// What a clean-up did ([`Deployer::clean_up`]): the revisions it deregistered, and the
/// error that stopped it part-way, if one did.
#[derive(Debug, Default)]
pub struct CleanUp {
    pub deregistered: Vec<String>,
    pub error: Option<DeployError>,
}

/// A task-definition revision Shiplane registered, by its tags ([`Deployer::ecs_origin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub release: ReleaseId,
    pub environment: String,
    pub task_definition: String,
    /// When ECS created the deployment: one created before the stage last entered
    /// deploying is not its own (a restart of the revision, a change by hand).
    pub created: Option<Timestamp>,
}

/// Where a deployment Shiplane holds no reference to came from ([`Deployer::origin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// CodeDeploy's automatic rollback of the deployment named (`creator` is
    /// `codeDeployRollback`, and `rollbackInfo.rollbackTriggeringDeploymentId` names it).
    /// CodeDeploy's state-change events carry no rollback flag: a rollback is a new
    /// deployment, told only by this.
    RollbackOf(String),
    /// Shiplane made it for this release, environment and attempt (its description
    /// says so), deploying this revision (its AppSpec's), and the invocation that made it
    /// died before recording it.
    Release {
        release: ReleaseId,
        environment: String,
        attempt: u32,
        task_definition: Option<String>,
        /// It restores the last known good (its description names a restore try): a
        /// hook answers it Succeeded even when the store cannot be read.
        restore: bool,
    },
}
