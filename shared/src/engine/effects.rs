//! One effect per [`Action`]: each calls a port and always returns the outcome as domain
//! events, so nothing an action does is only logged.

use tracing::{error, info, warn};

use super::run::Work;
use super::{Engine, Ports, stage_of};
use crate::aws::{
    AppStop, CleanUp, DeployOutcome, DeployRequest, Deployer, DeploymentStatus, MigrationRun, Timer,
};
use crate::facts::BakeTimer;
use crate::facts::TaskStopped;
use crate::pipeline::{Pipeline, StageConfig, Target};
use crate::release::{Action, Event, LaneEvent, Release, ReleaseId, Restart, Timestamp};
use crate::store::DeploymentRef;

/// The event a stopped migration task means: only the migration container's exit code
/// decides (the stage's `migration.container`, else the service's container).
pub(super) fn migration_event(stopped: &TaskStopped, stage: &StageConfig) -> Event {
    match stopped.outcome(stage.migration_container()) {
        Ok(()) => Event::MigrationSucceeded,
        Err(why) => Event::MigrationFailed {
            reason: format!("migration task {}: {why}", stopped.task_arn),
        },
    }
}

/// Records which release and stage a deployment (or migration task) belongs to, so its
/// state-change events find their way back.
fn reference(release: &Release, environment: &str, id: &str) -> DeploymentRef {
    DeploymentRef {
        deployment_id: id.to_string(),
        release: release.id.clone(),
        service: release.service.clone(),
        environment: environment.to_string(),
        restore: release.stages.get(environment).is_some_and(|s| s.redeploy),
    }
}

/// The outcome of an action whose stage the pipeline no longer has.
fn no_stage(action: &Action, release: &Release, environment: &str) -> Vec<Work> {
    let reason = format!(
        "services.{}.environments.{environment} is no longer in the pipeline",
        release.service
    );
    let event = match action {
        // The stage that stopped the service is gone: a person starts it.
        Action::StartApp { .. } => Event::AppStarted {
            deployment_id: None,
            error: Some(reason),
        },
        _ => Event::ActionFailed { reason },
    };
    vec![Work::event(
        &release.service,
        environment,
        &release.id,
        event,
    )]
}

impl<P: Ports> Engine<'_, P> {
    /// Runs one action; its outcome comes back as events.
    pub(super) async fn execute(
        &self,
        pipeline: &Pipeline,
        action: Action,
        release: &Release,
        fresh: bool,
    ) -> Vec<Work> {
        let environment = match &action {
            Action::Deploy { environment, .. }
            | Action::RunMigration { environment, .. }
            | Action::StopDeployment { environment, .. }
            | Action::Restart { environment, .. }
            | Action::StartApp { environment, .. }
            | Action::CleanUp { environment, .. } => environment.clone(),
            Action::Promote { from, .. } => from.clone(),
            // A timer needs nothing from the pipeline: it is cleared even when the stage
            // is no longer configured.
            Action::SetTimer {
                environment,
                attempt,
                at,
                ..
            } => {
                return self
                    .set_timer(release, environment, *attempt, Some(*at))
                    .await;
            }
            Action::ClearTimer {
                environment,
                attempt,
                ..
            } => return self.set_timer(release, environment, *attempt, None).await,
        };
        let Some((service, stage)) = stage_of(pipeline, &release.service, &environment) else {
            return no_stage(&action, release, &environment);
        };
        let req = DeployRequest {
            release,
            service,
            stage,
            fresh,
        };
        match action {
            Action::Deploy { .. } => self.deploy(req).await,
            Action::RunMigration { .. } => self.run_migration(req).await,
            Action::StopDeployment {
                deployment_id,
                rollback,
                ..
            } => self.stop(req, &environment, deployment_id, rollback).await,
            Action::Restart {
                service: dependent, ..
            } => {
                self.restart(pipeline, release, &environment, dependent)
                    .await
            }
            Action::CleanUp { keep, protect, .. } => self.clean_up(req, keep, &protect).await,
            Action::StartApp { desired, .. } => self.start_app(req, desired).await,
            Action::Promote { to, .. } => {
                vec![Work::event(
                    &release.service,
                    &to,
                    &release.id,
                    Event::Arrived,
                )]
            }
            Action::SetTimer { .. } | Action::ClearTimer { .. } => Vec::new(), // above
        }
    }

    /// Stops a deployment (rolling traffic back when `rollback`), then asks whether it had
    /// already succeeded: a stop that came too late leaves it running, and the lane must
    /// know. A stop or a status AWS would not give is tried again next pass (no outcome).
    async fn stop(
        &self,
        req: DeployRequest<'_>,
        environment: &str,
        deployment_id: String,
        rollback: bool,
    ) -> Vec<Work> {
        let release = req.release;
        let error = match self
            .deployer
            .stop_deployment(req, &deployment_id, rollback)
            .await
        {
            Ok(()) => None,
            // Throttled or unreachable past the SDK's retries: the stop stays owed
            // and the next pass tries again; the deployment must not go on.
            Err(e) if e.retryable => {
                warn!(release = %release.id, environment = %environment, deployment = %deployment_id, error = ?e.message, "stop deployment failed; trying again next pass");
                return Vec::new();
            }
            Err(e) => Some(e.message),
        };
        if let Some(e) = &error {
            error!(release = %release.id, environment = %environment, deployment = %deployment_id, error = ?e, "stop deployment refused");
        }
        // A deployment that completed before the stop reached it is not stopped:
        // if it succeeded, it runs, and the lane must know.
        let status = match &error {
            None => Some(self.deployer.deployment_status(req, &deployment_id).await),
            Some(_) => None,
        };
        let succeeded = match status {
            Some(Ok(status)) => status == DeploymentStatus::Succeeded,
            Some(Err(e)) => {
                // Unknown whether the stop came too late: the stop stays owed, and
                // the next pass stops and asks again.
                warn!(release = %release.id, environment = %environment, deployment = %deployment_id, error = ?e.message, "could not read the deployment's status after the stop; asking again next pass");
                return Vec::new();
            }
            None => false,
        };
        if succeeded {
            error!(release = %release.id, environment = %environment, deployment = %deployment_id, "the deployment had already succeeded before the stop; restoring the last known good");
        }
        vec![Work::event(
            &release.service,
            environment,
            &release.id,
            Event::StopRequested {
                deployment_id,
                error,
                succeeded,
            },
        )]
    }

    /// Restarts `dependent`, a rolling service this release's success here owes a restart:
    /// recorded in the dependent's history, then on the release (owed no more). AWS
    /// throttled or unreachable: still owed, tried next pass; refused for good: recorded
    /// as failed, an alert.
    async fn restart(
        &self,
        pipeline: &Pipeline,
        release: &Release,
        environment: &str,
        dependent: String,
    ) -> Vec<Work> {
        let since = release
            .stages
            .get(environment)
            .map_or(Timestamp(0), |s| s.succeeded_at.unwrap_or(s.since));
        let target =
            stage_of(pipeline, &dependent, environment).and_then(|(_, s)| match &s.target {
                Target::Rolling {
                    cluster, service, ..
                } => Some((cluster.as_str(), service.as_str())),
                _ => None,
            });
        let outcome = match target {
            None => Err(format!(
                "services.{dependent}.environments.{environment} is no longer a rolling service in the pipeline"
            )),
            Some((cluster, service)) => {
                match self.deployer.restart(cluster, service, since).await {
                    Ok(id) => Ok(id),
                    Err(e) if e.retryable => {
                        warn!(release = %release.id, environment = %environment, dependent = %dependent, error = ?e.message, "restart failed; trying again next pass");
                        return Vec::new();
                    }
                    Err(e) => Err(e.message),
                }
            }
        };
        let done = |deployment_id: Option<String>, error: Option<String>| {
            Work::event(
                &release.service,
                environment,
                &release.id,
                Event::Restarted {
                    service: dependent.clone(),
                    deployment_id,
                    error,
                    since,
                },
            )
        };
        match outcome {
            Ok(deployment_id) => {
                info!(release = %release.id, environment = %environment, dependent = %dependent, deployment = %deployment_id, "dependent service restarted");
                let restart = Restart {
                    by: release.service.clone(),
                    release: release.id.clone(),
                    deployment_id: deployment_id.clone(),
                    at: since,
                };
                vec![
                    Work::lane(&dependent, environment, LaneEvent::Restarted(restart)),
                    done(Some(deployment_id), None),
                ]
            }
            Err(e) => {
                error!(release = %release.id, environment = %environment, dependent = %dependent, error = ?e, "dependent service not restarted");
                vec![done(None, Some(e))]
            }
        }
    }

    /// Deregisters the environment's older revisions after a success (`keep`). AWS
    /// throttled or unreachable: still owed, done next pass; refused: recorded with the
    /// reason, owed no more (the next success cleans up again).
    async fn clean_up(
        &self,
        req: DeployRequest<'_>,
        keep: u32,
        protect: &[ReleaseId],
    ) -> Vec<Work> {
        let (release, env) = (req.release, req.stage.environment.as_str());
        let CleanUp {
            deregistered,
            error,
        } = self.deployer.clean_up(req, keep, protect).await;
        let event = match error {
            None => {
                info!(release = %release.id, environment = %env, keep, deregistered = ?deregistered, "older revisions cleaned up");
                Event::CleanedUp {
                    deregistered,
                    error: None,
                }
            }
            // Nothing done yet: AWS throttled or unreachable leaves it owed to the next pass.
            Some(e) if e.retryable && deregistered.is_empty() => {
                warn!(release = %release.id, environment = %env, error = ?e.message, "clean-up failed; trying again next pass");
                return Vec::new();
            }
            // Stopped part-way, or refused: what it did is recorded, with why it stopped.
            Some(e) => {
                warn!(release = %release.id, environment = %env, deregistered = ?deregistered, error = ?e.message, "clean-up stopped");
                Event::CleanedUp {
                    deregistered,
                    error: Some(e.message),
                }
            }
        };
        vec![Work::event(&release.service, env, &release.id, event)]
    }

    /// Sets the stage's bake timer to fire `at`, or clears it (None). Only a change comes
    /// back as an event: a timer already set or already gone changed nothing.
    pub(super) async fn set_timer(
        &self,
        release: &Release,
        environment: &str,
        attempt: u32,
        at: Option<Timestamp>,
    ) -> Vec<Work> {
        let timer = BakeTimer::new(&release.service, environment, &release.id, attempt);
        let result = match at {
            Some(at) => self.timer.set(&timer, at).await,
            None => self.timer.clear(&timer).await,
        };
        let schedule = timer.name();
        let event = match result {
            Ok(false) => return Vec::new(),
            Ok(true) => {
                info!(release = %release.id, environment = %environment, schedule = %schedule, set = at.is_some(), "bake timer changed");
                Event::BakeTimer {
                    schedule,
                    set: at.is_some(),
                    error: None,
                }
            }
            Err(e) => {
                error!(release = %release.id, environment = %environment, schedule = %schedule, error = ?e.message, "bake timer not changed; the reconciler ends the bake when it is due");
                Event::BakeTimer {
                    schedule,
                    set: at.is_some(),
                    error: Some(e.message),
                }
            }
        };
        vec![Work::event(
            &release.service,
            environment,
            &release.id,
            event,
        )]
    }

    async fn deploy(&self, req: DeployRequest<'_>) -> Vec<Work> {
        let (release, env) = (req.release, req.stage.environment.as_str());
        let fence = release.stages.get(env).map_or(0, |s| s.fence);
        let (event, deployments) = match self.deployer.deploy(req).await {
            Ok(DeployOutcome::Started {
                deployment_id,
                task_definition,
            }) => {
                info!(release = %release.id, environment = %env, deployment = %deployment_id, task_definition = %task_definition, "deployment started");
                let r = reference(release, env, &deployment_id);
                let event = Event::DeploymentCreated {
                    deployment_id,
                    task_definition: Some(task_definition),
                    fence,
                };
                (event, vec![r])
            }
            Ok(DeployOutcome::Registered {
                task_definitions,
                triggers,
            }) => {
                let triggers = triggers.lines();
                info!(release = %release.id, environment = %env, task_definitions = ?task_definitions, triggers = ?triggers, "task definitions registered, triggers moved; nothing runs");
                let event = Event::JobsUpdated {
                    task_definitions,
                    triggers,
                };
                (event, Vec::new())
            }
            Ok(DeployOutcome::Blocked { by }) => (
                Event::DeploymentBlocked {
                    reason: format!(
                        "deployment group busy with {by}, which Shiplane did not start"
                    ),
                },
                Vec::new(),
            ),
            Err(e) => {
                error!(release = %release.id, environment = %env, error = ?e.message, retryable = e.retryable, "deploy failed");
                (Event::ActionFailed { reason: e.message }, Vec::new())
            }
        };
        vec![Work {
            deployments,
            ..Work::event(&release.service, env, &release.id, event)
        }]
    }

    /// A `stop-first` migration first stops the service: the outage's start, and
    /// whether the migration may run yet (none of the service's tasks still runs).
    async fn stop_first(&self, req: DeployRequest<'_>) -> Result<(Work, bool), Vec<Work>> {
        let (release, env) = (req.release, req.stage.environment.as_str());
        let event = |event| Work::event(&release.service, env, &release.id, event);
        match self.deployer.stop_app(req).await {
            Ok(AppStop { desired, running }) => {
                info!(release = %release.id, environment = %env, desired, running, "service stopped for the migration");
                let stopped = Event::AppStopped {
                    desired: Some(desired),
                    running,
                };
                Ok((event(stopped), running == 0))
            }
            Err(e) => {
                error!(release = %release.id, environment = %env, error = ?e.message, "service not stopped for the migration");
                // Its UpdateService may have landed with the answer lost: the lane takes
                // the service as stopped, so that it is started again if it was.
                let maybe = Event::AppStopped {
                    desired: None,
                    running: u32::MAX,
                };
                let failed = Event::ActionFailed {
                    reason: format!("stopping the service for its migration: {}", e.message),
                };
                Err(vec![event(maybe), event(failed)])
            }
        }
    }

    /// Starts the service a `stop-first` migration stopped again, on the revision it runs
    /// (the release went no further). AWS throttled or unreachable: still owed, tried
    /// again next pass; refused: recorded, with an alert.
    async fn start_app(&self, req: DeployRequest<'_>, desired: Option<u32>) -> Vec<Work> {
        let (release, env) = (req.release, req.stage.environment.as_str());
        let (deployment_id, error) = match self.deployer.start_app(req, desired).await {
            Ok(id) => {
                info!(release = %release.id, environment = %env, deployment = ?id, "service started again after the migration");
                (id, None)
            }
            Err(e) if e.retryable => {
                warn!(release = %release.id, environment = %env, error = ?e.message, "service not started again yet; trying again next pass");
                return Vec::new();
            }
            Err(e) => {
                error!(release = %release.id, environment = %env, error = ?e.message, "service not started again after the migration");
                (None, Some(e.message))
            }
        };
        let started = Event::AppStarted {
            deployment_id,
            error,
        };
        vec![Work::event(&release.service, env, &release.id, started)]
    }

    async fn run_migration(&self, req: DeployRequest<'_>) -> Vec<Work> {
        let mut out = Vec::new();
        if req.stage.stops_first() {
            match self.stop_first(req).await {
                Ok((stopped, true)) => out.push(stopped),
                // Its tasks still stop: the migration runs on a later pass.
                Ok((stopped, false)) => return vec![stopped],
                Err(failed) => return failed,
            }
        }
        out.extend(self.start_migration(req).await);
        out
    }

    async fn start_migration(&self, req: DeployRequest<'_>) -> Vec<Work> {
        let (release, env) = (req.release, req.stage.environment.as_str());
        let started = |task_arn: &str| Work {
            deployments: vec![reference(release, env, task_arn)],
            ..Work::event(
                &release.service,
                env,
                &release.id,
                Event::MigrationStarted {
                    task_arn: task_arn.to_string(),
                },
            )
        };
        match self.deployer.run_migration(req).await {
            Ok(MigrationRun::Running { task_arn }) => {
                info!(release = %release.id, environment = %env, task = %task_arn, "migration started");
                vec![started(&task_arn)]
            }
            Ok(MigrationRun::Stopped(stopped)) => {
                // Started by an earlier attempt and already done: adopt its exit code.
                info!(release = %release.id, environment = %env, task = %stopped.task_arn, "migration already stopped");
                let outcome = migration_event(&stopped, req.stage);
                vec![
                    started(&stopped.task_arn),
                    Work::event(&release.service, env, &release.id, outcome),
                ]
            }
            Ok(MigrationRun::Missing) => vec![Work::event(
                &release.service,
                env,
                &release.id,
                Event::ActionFailed {
                    reason: "ECS lost the migration task it started".into(),
                },
            )],
            Err(e) => {
                error!(release = %release.id, environment = %env, error = ?e.message, "migration could not start");
                vec![Work::event(
                    &release.service,
                    env,
                    &release.id,
                    Event::ActionFailed { reason: e.message },
                )]
            }
        }
    }
}
