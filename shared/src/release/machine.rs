//! The release state machine: one pure function per kind of event.

use std::collections::BTreeSet;
use std::time::Duration;

use super::model::{Lane, LaneView, Pause, Release, ReleaseId, StageState, Timestamp, Transition};
use crate::pipeline::{Approval, Service, ServiceKind, StageConfig};

/// What happened to one release in one environment, as the machine understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The release reached this environment: pushed (first stage) or promoted.
    Arrived,
    Approved {
        actor: String,
    },
    Rejected {
        actor: String,
        reason: String,
    },
    Cancelled {
        actor: String,
        reason: String,
    },
    /// The migration task was started (its outcome, recorded so its stop event finds the release).
    MigrationStarted {
        task_arn: String,
    },
    MigrationSucceeded,
    MigrationFailed {
        reason: String,
    },
    /// The deploy action created a deployment (its outcome, recorded before anything waits on it).
    DeploymentCreated {
        deployment_id: String,
    },
    /// A CodeDeploy lifecycle hook started checking the new version.
    ValidationStarted,
    /// The deployment group is busy with a deployment Shiplane did not start (someone
    /// deployed by hand): the release waits in the queue instead of failing.
    DeploymentBlocked {
        reason: String,
    },
    DeploymentSucceeded,
    DeploymentFailed {
        reason: String,
    },
    BakeElapsed,
    AlarmFired {
        alarm: String,
    },
    /// Executing an action failed for good (retries exhausted, or a permanent error).
    ActionFailed {
        reason: String,
    },
}

impl Event {
    /// The name recorded as a transition's cause.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Arrived => "arrived",
            Event::Approved { .. } => "approved",
            Event::Rejected { .. } => "rejected",
            Event::Cancelled { .. } => "cancelled",
            Event::MigrationStarted { .. } => "migration_started",
            Event::MigrationSucceeded => "migration_succeeded",
            Event::MigrationFailed { .. } => "migration_failed",
            Event::DeploymentCreated { .. } => "deployment_created",
            Event::ValidationStarted => "validation_started",
            Event::DeploymentBlocked { .. } => "deployment_blocked",
            Event::DeploymentSucceeded => "deployment_succeeded",
            Event::DeploymentFailed { .. } => "deployment_failed",
            Event::BakeElapsed => "bake_elapsed",
            Event::AlarmFired { .. } => "alarm_fired",
            Event::ActionFailed { .. } => "action_failed",
        }
    }

    fn actor(&self) -> Option<String> {
        match self {
            Event::Approved { actor }
            | Event::Rejected { actor, .. }
            | Event::Cancelled { actor, .. } => Some(actor.clone()),
            _ => None,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Event::Rejected { reason, .. }
            | Event::Cancelled { reason, .. }
            | Event::MigrationFailed { reason }
            | Event::DeploymentFailed { reason }
            | Event::DeploymentBlocked { reason }
            | Event::ActionFailed { reason } => Some(reason.clone()),
            Event::DeploymentCreated { deployment_id } => Some(deployment_id.clone()),
            Event::MigrationStarted { task_arn } => Some(task_arn.clone()),
            Event::AlarmFired { alarm } => Some(alarm.clone()),
            _ => None,
        }
    }
}

/// Operator events on a whole lane rather than one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneEvent {
    Pause { actor: String, reason: String },
    Resume { actor: String },
}

/// What a release needs to know about the environment's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub approval: Approval,
    pub migration: bool,
    pub bake: Duration,
    pub frozen: bool,
    pub next_environment: Option<String>,
}

impl Policy {
    /// The policy of one service's stage in the pipeline.
    pub fn for_stage(service: &Service, stage: &StageConfig) -> Policy {
        Policy {
            approval: stage.approval,
            migration: stage.migration.is_some(),
            // Data jobs run nothing on release, so there is nothing to watch.
            bake: if service.kind == ServiceKind::Task {
                Duration::ZERO
            } else {
                stage.bake
            },
            frozen: stage.freeze,
            next_environment: service
                .next_environment(&stage.environment)
                .map(str::to_string),
        }
    }
}

/// Work the handler must do after committing a decision. Each is idempotent when executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the one-off migration task with the release's image.
    RunMigration {
        release: ReleaseId,
        environment: String,
    },
    /// Register the revision pinned to the digest and deploy it; `redeploy` restores a
    /// last known good release after a rollback.
    Deploy {
        release: ReleaseId,
        environment: String,
        redeploy: bool,
    },
    /// Stop a deployment in flight; with `rollback`, CodeDeploy routes traffic back.
    StopDeployment {
        release: ReleaseId,
        environment: String,
        deployment_id: String,
        rollback: bool,
    },
    /// Fire `BakeElapsed` for this release at `at` (a one-time schedule).
    ScheduleBake {
        release: ReleaseId,
        environment: String,
        at: Timestamp,
    },
    /// Deliver `Arrived` for this release in the next environment.
    Promote {
        release: ReleaseId,
        from: String,
        to: String,
    },
}

/// The machine's answer: the new view, what changed, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub view: LaneView,
    /// Releases whose stage changed, to be written back.
    pub changed: BTreeSet<ReleaseId>,
    pub lane_changed: bool,
    pub transitions: Vec<Transition>,
    pub actions: Vec<Action>,
}

impl Decision {
    /// True when the event was already reflected in the state (a replay) and nothing changes.
    pub fn is_noop(&self) -> bool {
        self.changed.is_empty() && !self.lane_changed && self.actions.is_empty()
    }
}

/// An event that does not apply to the state it met. Never a panic; handlers log it as
/// "ignored" (stale or duplicate delivery) or report it to the operator who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("release {release} has not reached {environment}; nothing to {event}")]
    NotArrived {
        release: ReleaseId,
        environment: String,
        event: &'static str,
    },
    #[error("release {release} already reached {environment} (it is {state})")]
    AlreadyArrived {
        release: ReleaseId,
        environment: String,
        state: StageState,
    },
    #[error("release {release} is {state} in {environment}; {event} does not apply")]
    NotAllowed {
        release: ReleaseId,
        environment: String,
        state: StageState,
        event: &'static str,
    },
    #[error("release {release} was not loaded with lane {service}/{environment}")]
    UnknownRelease {
        release: ReleaseId,
        service: String,
        environment: String,
    },
    #[error("release {release} belongs to service {release_service}, not {service}")]
    WrongService {
        release: ReleaseId,
        release_service: String,
        service: String,
    },
    #[error("release {release} in {environment} runs deployment {expected}, not {got}")]
    DeploymentMismatch {
        release: ReleaseId,
        environment: String,
        expected: String,
        got: String,
    },
    #[error("{service}/{environment} is already paused by {by}")]
    AlreadyPaused {
        service: String,
        environment: String,
        by: String,
    },
    #[error("{service}/{environment} is not paused")]
    NotPaused {
        service: String,
        environment: String,
    },
}

struct Work<'p> {
    view: LaneView,
    policy: &'p Policy,
    now: Timestamp,
    changed: BTreeSet<ReleaseId>,
    lane_changed: bool,
    transitions: Vec<Transition>,
    actions: Vec<Action>,
}

impl Work<'_> {
    fn env(&self) -> String {
        self.view.lane.environment.clone()
    }

    fn release(&mut self, id: &ReleaseId) -> Result<&mut Release, TransitionError> {
        let lane = &self.view.lane;
        match self.view.releases.get_mut(id) {
            Some(r) => Ok(r),
            None => Err(TransitionError::UnknownRelease {
                release: id.clone(),
                service: lane.service.clone(),
                environment: lane.environment.clone(),
            }),
        }
    }

    fn state(&self, id: &ReleaseId) -> Option<StageState> {
        self.view
            .releases
            .get(id)
            .and_then(|r| r.state_in(&self.view.lane.environment))
    }

    /// Moves a release to `to`, recording the transition.
    fn move_to(
        &mut self,
        id: &ReleaseId,
        to: StageState,
        cause: &str,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        let now = self.now;
        let from = self.state(id);
        let release = self.release(id)?;
        let stage = release.set_stage(&env, to, now);
        if to.is_terminal() && to != StageState::Succeeded {
            stage.reason = detail.clone();
        }
        let service = release.service.clone();
        self.changed.insert(id.clone());
        self.transitions.push(Transition {
            at: now,
            service,
            environment: env,
            release: Some(id.clone()),
            from,
            to: Some(to),
            cause: cause.to_string(),
            actor,
            detail,
        });
        Ok(())
    }

    fn lane(&mut self) -> &mut Lane {
        self.lane_changed = true;
        &mut self.view.lane
    }

    fn busy(&self) -> bool {
        let lane = &self.view.lane;
        lane.in_flight.is_some() || lane.paused.is_some() || self.policy.frozen
    }

    /// Takes the lane's in-flight slot and begins the work: migration first when configured.
    fn start(
        &mut self,
        id: &ReleaseId,
        cause: &str,
        actor: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        let lane = self.lane();
        lane.in_flight = Some(id.clone());
        if lane.queued.as_ref() == Some(id) {
            lane.queued = None;
        }
        if self.policy.migration {
            self.move_to(id, StageState::Migrating, cause, actor, None)?;
            self.actions.push(Action::RunMigration {
                release: id.clone(),
                environment: env,
            });
        } else {
            self.move_to(id, StageState::Deploying, cause, actor, None)?;
            self.actions.push(Action::Deploy {
                release: id.clone(),
                environment: env,
                redeploy: false,
            });
        }
        Ok(())
    }

    /// Frees the in-flight slot and starts the queued release if nothing holds the lane.
    fn finish(&mut self) -> Result<(), TransitionError> {
        self.lane().in_flight = None;
        let Some(next) = self.view.lane.queued.clone() else {
            return Ok(());
        };
        if !self.busy() && self.state(&next) == Some(StageState::Queued) {
            self.start(&next, "dequeued", None)?;
        }
        Ok(())
    }

    fn succeed(&mut self, id: &ReleaseId, cause: &str) -> Result<(), TransitionError> {
        let now = self.now;
        let env = self.env();
        self.move_to(id, StageState::Succeeded, cause, None, None)?;
        let stage = self.release(id)?.stages.get_mut(&env);
        let redeploy = stage.as_ref().is_some_and(|s| s.redeploy);
        if let Some(stage) = stage {
            stage.succeeded_at = Some(now);
            stage.redeploy = false;
        }
        let lane = self.lane();
        lane.current = Some(id.clone());
        lane.last_known_good = Some(id.clone());
        // A restored release already went through the later environments.
        if let (Some(to), false) = (self.policy.next_environment.clone(), redeploy) {
            self.actions.push(Action::Promote {
                release: id.clone(),
                from: env,
                to,
            });
        }
        self.finish()
    }

    fn not_allowed(&self, id: &ReleaseId, state: StageState, event: &Event) -> TransitionError {
        TransitionError::NotAllowed {
            release: id.clone(),
            environment: self.view.lane.environment.clone(),
            state,
            event: event.name(),
        }
    }
}

/// Applies one event for one release to a lane. Pure: the same inputs give the same decision.
pub fn apply(
    view: &LaneView,
    release: &ReleaseId,
    event: &Event,
    policy: &Policy,
    now: Timestamp,
) -> Result<Decision, TransitionError> {
    let mut w = Work {
        view: view.clone(),
        policy,
        now,
        changed: BTreeSet::new(),
        lane_changed: false,
        transitions: Vec::new(),
        actions: Vec::new(),
    };
    let id = release;
    let lane_service = w.view.lane.service.clone();
    let r = w.release(id)?;
    if r.service != lane_service {
        return Err(TransitionError::WrongService {
            release: id.clone(),
            release_service: r.service.clone(),
            service: lane_service,
        });
    }
    let cause = event.name();
    let actor = event.actor();
    let detail = event.detail();
    let env = w.env();

    let Some(state) = w.state(id) else {
        if *event != Event::Arrived {
            return Err(TransitionError::NotArrived {
                release: id.clone(),
                environment: env,
                event: cause,
            });
        }
        if let Some(older) = w.view.lane.queued.clone() {
            w.move_to(
                &older,
                StageState::Superseded,
                "superseded",
                None,
                Some(format!("superseded by {id}")),
            )?;
            w.lane().queued = None;
        }
        if policy.approval == Approval::Manual {
            w.move_to(id, StageState::AwaitingApproval, cause, None, None)?;
            w.lane().queued = Some(id.clone());
        } else if w.busy() {
            let why = match (&w.view.lane.in_flight, &w.view.lane.paused) {
                (Some(other), _) => format!("waiting for {other}"),
                (None, Some(p)) => format!("lane paused by {}", p.actor),
                (None, None) => "environment frozen".to_string(),
            };
            w.move_to(id, StageState::Queued, cause, None, Some(why))?;
            w.lane().queued = Some(id.clone());
        } else {
            w.start(id, cause, None)?;
        }
        return w.done();
    };

    use StageState as S;
    match (state, event) {
        (_, Event::Arrived) => {
            return Err(TransitionError::AlreadyArrived {
                release: id.clone(),
                environment: env,
                state,
            });
        }
        (S::AwaitingApproval, Event::Approved { actor }) => {
            w.release(id)?
                .stages
                .entry(env.clone())
                .and_modify(|s| s.approved_by = Some(actor.clone()));
            if w.busy() {
                w.move_to(id, S::Queued, cause, Some(actor.clone()), None)?;
            } else {
                w.start(id, cause, Some(actor.clone()))?;
            }
        }
        (S::AwaitingApproval | S::Queued, Event::Rejected { .. }) => {
            w.move_to(id, S::Rejected, cause, actor, detail)?;
            w.lane().queued = None;
        }
        (S::AwaitingApproval | S::Queued, Event::Cancelled { .. }) => {
            w.move_to(id, S::Cancelled, cause, actor, detail)?;
            w.lane().queued = None;
        }
        (S::Migrating, Event::MigrationSucceeded) => {
            w.move_to(id, S::Deploying, cause, None, None)?;
            // The recorded id was the migration task's; the deployment records its own.
            if let Some(s) = w.release(id)?.stages.get_mut(&env) {
                s.deployment_id = None;
            }
            w.actions.push(Action::Deploy {
                release: id.clone(),
                environment: env,
                redeploy: false,
            });
        }
        (S::Migrating, Event::MigrationFailed { .. })
        | (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::ActionFailed { .. })
        | (S::Deploying | S::Validating, Event::DeploymentFailed { .. }) => {
            w.move_to(id, S::Failed, cause, None, detail)?;
            w.finish()?;
        }
        (
            S::Deploying,
            Event::DeploymentCreated {
                deployment_id: recorded,
            },
        )
        | (S::Migrating, Event::MigrationStarted { task_arn: recorded }) => {
            let stage = w.release(id)?.stages.get_mut(&env);
            match stage.and_then(|s| s.deployment_id.clone()) {
                Some(known) if &known == recorded => {} // replay: already recorded
                Some(known) => {
                    return Err(TransitionError::DeploymentMismatch {
                        release: id.clone(),
                        environment: env,
                        expected: known,
                        got: recorded.clone(),
                    });
                }
                None => {
                    w.move_to(id, state, cause, None, detail)?;
                    if let Some(s) = w.release(id)?.stages.get_mut(&env) {
                        s.deployment_id = Some(recorded.clone());
                    }
                }
            }
        }
        (S::Deploying, Event::DeploymentBlocked { .. }) if !has_deployment(&w, id, &env) => {
            // Back to the queue; a newer release already waiting wins and this one is superseded.
            w.lane().in_flight = None;
            match w.view.lane.queued.clone() {
                Some(newer) => {
                    w.move_to(
                        id,
                        S::Superseded,
                        cause,
                        None,
                        Some(format!("superseded by {newer}")),
                    )?;
                }
                None => {
                    w.move_to(id, S::Queued, cause, None, detail)?;
                    w.lane().queued = Some(id.clone());
                }
            }
        }
        (S::Deploying, Event::ValidationStarted) => {
            w.move_to(id, S::Validating, cause, None, None)?;
        }
        (S::Validating, Event::ValidationStarted) => {} // each hook reports in; the first moved it
        (S::Deploying | S::Validating, Event::DeploymentSucceeded) => {
            let redeploy = w.release(id)?.stages.get(&env).is_some_and(|s| s.redeploy);
            w.lane().current = Some(id.clone());
            if redeploy || policy.bake.is_zero() {
                w.succeed(id, cause)?;
            } else {
                w.move_to(id, S::Baking, cause, None, None)?;
                w.actions.push(Action::ScheduleBake {
                    release: id.clone(),
                    environment: env,
                    at: now.after(policy.bake),
                });
            }
        }
        (S::Baking, Event::BakeElapsed) => {
            w.succeed(id, cause)?;
        }
        (S::Deploying | S::Validating, Event::AlarmFired { .. }) => {
            let deployment = w
                .release(id)?
                .stages
                .get(&env)
                .and_then(|s| s.deployment_id.clone());
            w.move_to(id, S::RolledBack, cause, None, detail)?;
            if let Some(deployment_id) = deployment {
                w.actions.push(Action::StopDeployment {
                    release: id.clone(),
                    environment: env,
                    deployment_id,
                    rollback: true,
                });
            }
            w.finish()?;
        }
        (S::Baking, Event::AlarmFired { .. }) => {
            w.move_to(id, S::RolledBack, cause, None, detail)?;
            match w.view.lane.last_known_good.clone() {
                Some(good) if &good != id => {
                    w.move_to(
                        &good,
                        S::Deploying,
                        "rollback",
                        None,
                        Some(format!("restoring after {id}")),
                    )?;
                    if let Some(s) = w.release(&good)?.stages.get_mut(&env) {
                        s.redeploy = true;
                        s.deployment_id = None;
                    }
                    w.lane().in_flight = Some(good.clone());
                    w.actions.push(Action::Deploy {
                        release: good,
                        environment: env,
                        redeploy: true,
                    });
                }
                _ => w.finish()?,
            }
        }
        (state, event) => return Err(w.not_allowed(id, state, event)),
    }
    w.done()
}

fn has_deployment(w: &Work<'_>, id: &ReleaseId, env: &str) -> bool {
    w.view
        .releases
        .get(id)
        .and_then(|r| r.stages.get(env))
        .is_some_and(|s| s.deployment_id.is_some())
}

/// The action a stage still owes when the work that should follow its last commit never
/// ran (a crash, a timeout): a replay of the inbound event executes it. Pure.
pub fn pending_action(release: &Release, environment: &str) -> Option<Action> {
    let stage = release.stages.get(environment)?;
    if stage.deployment_id.is_some() {
        return None;
    }
    match stage.state {
        StageState::Deploying => Some(Action::Deploy {
            release: release.id.clone(),
            environment: environment.to_string(),
            redeploy: stage.redeploy,
        }),
        StageState::Migrating => Some(Action::RunMigration {
            release: release.id.clone(),
            environment: environment.to_string(),
        }),
        _ => None,
    }
}

/// Applies an operator's pause or resume to a lane.
pub fn apply_lane(
    view: &LaneView,
    event: &LaneEvent,
    policy: &Policy,
    now: Timestamp,
) -> Result<Decision, TransitionError> {
    let mut w = Work {
        view: view.clone(),
        policy,
        now,
        changed: BTreeSet::new(),
        lane_changed: false,
        transitions: Vec::new(),
        actions: Vec::new(),
    };
    let (service, environment) = (w.view.lane.service.clone(), w.env());
    let transition = |cause: &str, actor: &str, detail: Option<String>| Transition {
        at: now,
        service: service.clone(),
        environment: environment.clone(),
        release: None,
        from: None,
        to: None,
        cause: cause.to_string(),
        actor: Some(actor.to_string()),
        detail,
    };
    match event {
        LaneEvent::Pause { actor, reason } => {
            if let Some(p) = &w.view.lane.paused {
                return Err(TransitionError::AlreadyPaused {
                    service,
                    environment,
                    by: p.actor.clone(),
                });
            }
            w.lane().paused = Some(Pause {
                actor: actor.clone(),
                reason: reason.clone(),
                since: now,
            });
            w.transitions
                .push(transition("paused", actor, Some(reason.clone())));
        }
        LaneEvent::Resume { actor } => {
            if w.view.lane.paused.is_none() {
                return Err(TransitionError::NotPaused {
                    service,
                    environment,
                });
            }
            w.lane().paused = None;
            w.transitions.push(transition("resumed", actor, None));
            if w.view.lane.in_flight.is_none() {
                w.finish()?;
            }
        }
    }
    w.done()
}

impl Work<'_> {
    fn done(self) -> Result<Decision, TransitionError> {
        Ok(Decision {
            view: self.view,
            changed: self.changed,
            lane_changed: self.lane_changed,
            transitions: self.transitions,
            actions: self.actions,
        })
    }
}

#[cfg(test)]
mod tests;
