//! The release state machine: one pure function per kind of event.

use std::collections::BTreeSet;
use std::time::Duration;

use super::model::{
    AlarmSeen, AlarmState, Cause, Lane, LaneView, Pause, Release, ReleaseId, Stage, StageState,
    Timestamp, Transition, pushed_before,
};
use crate::pipeline::{Approval, Service, ServiceKind, StageConfig};

/// What happened to one release in one environment, as the machine understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The release reached this environment: pushed (first stage) or promoted.
    Arrived,
    /// The lane is free: start the queued release (recovery, the reconciler, an operator).
    Dequeue,
    Approved {
        actor: String,
    },
    Rejected {
        actor: String,
        reason: String,
    },
    /// An operator ended the stage, whatever its state; a deployment in flight is stopped
    /// and rolled back.
    Cancelled {
        actor: String,
        reason: String,
    },
    /// The same image was pushed under another tag.
    TagAdded {
        tag: String,
    },
    /// The migration task was started (its outcome, recorded so its stop event finds the release).
    MigrationStarted {
        task_arn: String,
    },
    MigrationSucceeded,
    MigrationFailed {
        reason: String,
    },
    /// The deploy action created a deployment (its outcome, recorded before anything waits on it),
    /// with the task-definition revision it deploys: a later restore of this release deploys
    /// that same revision instead of registering another.
    DeploymentCreated {
        deployment_id: String,
        task_definition: Option<String>,
        /// The stage's [`crate::release::Stage::fence`] when the action was issued.
        fence: u32,
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
    /// The state's deadline passed and AWS reported no outcome.
    TimedOut {
        reason: String,
    },
    /// A rolling service's deployment of this stage no longer runs: a newer one replaced
    /// it (another release's deployment that landed late and unrecorded, or a change by
    /// hand). The stage's release is deployed again.
    DeploymentReplaced {
        deployment_id: String,
    },
    /// The outcome of a [`Action::StopDeployment`]: `error` when AWS refused it;
    /// `succeeded` when the deployment had already succeeded (the stop came too late: it runs).
    StopRequested {
        deployment_id: String,
        error: Option<String>,
        succeeded: bool,
    },
    /// What runs here is a release that was rolled back, failed or was cancelled (its
    /// deployment finished after its stage ended): this release, the last known good, is
    /// deployed again.
    Restore,
    /// The deployment or migration a stage owes was left unfinished past its lease (the
    /// invocation that committed it died before its outcome was recorded): this invocation
    /// takes it over, once, and runs it again (it looks for its own earlier effect first).
    ActionResumed,
    /// An operator deploys an image by digest without a push (`shiplane deploy`): the
    /// release arrives in its first environment as a push would, recorded with who and why.
    Deployed {
        actor: String,
        reason: String,
    },
    /// An operator tries a stage that failed, was rolled back or cancelled again, with the
    /// same digest: a new attempt, deployed afresh.
    Retry {
        actor: String,
    },
    /// An operator ends the bake early (an emergency), recorded with who and why.
    PromotedEarly {
        actor: String,
        reason: String,
    },
    /// The outcome of [`Action::SetTimer`] (`set`) or [`Action::ClearTimer`]: the schedule's
    /// name, and `error` when Scheduler refused. Only a change is reported: a timer already
    /// set, or already gone, is no event.
    BakeTimer {
        schedule: String,
        set: bool,
        error: Option<String>,
    },
    /// CodeDeploy's automatic rollback of this stage's deployment (a deployment of its own,
    /// which Shiplane did not start) reported: a hook answered, it succeeded, or it failed
    /// (`failed`: the environment may run neither version wholly; the lane then records
    /// the release as running, and restores the last known good).
    RollbackReported {
        deployment_id: String,
        detail: String,
        failed: bool,
    },
    /// A CodeDeploy lifecycle hook ran its checks: each check's record (passed, "name:
    /// passed in 12 ms: excerpt"), and the verdict reported (`failure` when Failed).
    HookCompleted {
        /// The deployment the hook ran for: recorded on the stage if its own outcome
        /// never was (the function that created it died before recording it).
        deployment_id: String,
        /// The revision that deployment deploys, when the hook found it by its
        /// description (recorded with it, so a restore deploys it again).
        task_definition: Option<String>,
        hook: String,
        checks: Vec<(bool, String)>,
        failure: Option<String>,
    },
}

impl Event {
    /// The cause recorded for a transition this event makes.
    pub fn cause(&self) -> Cause {
        match self {
            Event::Arrived => Cause::Arrived,
            Event::Dequeue => Cause::Dequeued,
            Event::Approved { .. } => Cause::Approved,
            Event::Rejected { .. } => Cause::Rejected,
            Event::Cancelled { .. } => Cause::Cancelled,
            Event::TagAdded { .. } => Cause::TagAdded,
            Event::MigrationStarted { .. } => Cause::MigrationStarted,
            Event::MigrationSucceeded => Cause::MigrationSucceeded,
            Event::MigrationFailed { .. } => Cause::MigrationFailed,
            Event::DeploymentCreated { .. } => Cause::DeploymentCreated,
            Event::ValidationStarted => Cause::ValidationStarted,
            Event::DeploymentBlocked { .. } => Cause::DeploymentBlocked,
            Event::DeploymentSucceeded => Cause::DeploymentSucceeded,
            Event::DeploymentFailed { .. } => Cause::DeploymentFailed,
            Event::BakeElapsed => Cause::BakeElapsed,
            Event::AlarmFired { .. } => Cause::AlarmFired,
            Event::ActionFailed { .. } => Cause::ActionFailed,
            Event::TimedOut { .. } => Cause::TimedOut,
            Event::DeploymentReplaced { .. } => Cause::Redeployed,
            Event::StopRequested { error: None, .. } => Cause::StopRequested,
            Event::StopRequested { error: Some(_), .. } => Cause::StopFailed,
            Event::PromotedEarly { .. } => Cause::PromotedEarly,
            Event::Retry { .. } => Cause::Retried,
            Event::ActionResumed => Cause::ActionResumed,
            Event::Restore => Cause::Rollback,
            Event::Deployed { .. } => Cause::Deployed,
            Event::RollbackReported { failed: false, .. } => Cause::CodeDeployRollback,
            Event::RollbackReported { failed: true, .. } => Cause::RollbackFailed,
            Event::BakeTimer { error: Some(_), .. } => Cause::TimerFailed,
            Event::BakeTimer { set: true, .. } => Cause::TimerSet,
            Event::BakeTimer { set: false, .. } => Cause::TimerCleared,
            Event::HookCompleted { failure: None, .. } => Cause::HookSucceeded,
            Event::HookCompleted {
                failure: Some(_), ..
            } => Cause::HookFailed,
        }
    }

    /// The name used in logs and refusals.
    pub fn name(&self) -> &'static str {
        self.cause().as_str()
    }

    fn actor(&self) -> Option<String> {
        match self {
            Event::Approved { actor }
            | Event::Rejected { actor, .. }
            | Event::Cancelled { actor, .. }
            | Event::PromotedEarly { actor, .. }
            | Event::Retry { actor }
            | Event::Deployed { actor, .. } => Some(actor.clone()),
            _ => None,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Event::Rejected { reason, .. }
            | Event::Cancelled { reason, .. }
            | Event::PromotedEarly { reason, .. }
            | Event::Deployed { reason, .. }
            | Event::MigrationFailed { reason }
            | Event::DeploymentFailed { reason }
            | Event::DeploymentBlocked { reason }
            | Event::ActionFailed { reason }
            | Event::TimedOut { reason } => Some(reason.clone()),
            Event::DeploymentCreated { deployment_id, .. } => Some(deployment_id.clone()),
            Event::DeploymentReplaced { deployment_id } => Some(format!(
                "{deployment_id} was replaced by a newer deployment of the service; deploying again"
            )),
            Event::RollbackReported { detail, .. } => Some(detail.clone()),
            Event::MigrationStarted { task_arn } => Some(task_arn.clone()),
            Event::AlarmFired { alarm } => Some(alarm.clone()),
            Event::TagAdded { tag } => Some(tag.clone()),
            Event::StopRequested {
                deployment_id,
                error: None,
                succeeded: false,
            } => Some(deployment_id.clone()),
            Event::StopRequested {
                deployment_id,
                error: None,
                succeeded: true,
            } => Some(format!(
                "{deployment_id} had already succeeded: it runs, and the last known good is deployed again"
            )),
            Event::StopRequested {
                deployment_id,
                error: Some(e),
                ..
            } => Some(format!("{deployment_id}: {e}")),
            Event::BakeTimer {
                schedule,
                error: None,
                ..
            } => Some(schedule.clone()),
            Event::BakeTimer {
                schedule,
                set,
                error: Some(e),
            } => Some(format!(
                "{} {schedule}: {e}; the reconciler ends the bake when it is due",
                if *set { "setting" } else { "clearing" }
            )),
            Event::HookCompleted {
                hook,
                failure: None,
                ..
            } => Some(hook.clone()),
            Event::HookCompleted {
                hook,
                failure: Some(why),
                ..
            } => Some(format!("{hook}: {why}")),
            _ => None,
        }
        .map(|d| bounded(&d))
    }
}

/// How much free text (a failure reason, an AWS message) one history item keeps.
pub const MAX_DETAIL: usize = 1000;

fn bounded(text: &str) -> String {
    if text.len() <= MAX_DETAIL {
        return text.to_string();
    }
    let mut end = MAX_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Events on a whole lane rather than one release: an operator's, or an alarm's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneEvent {
    Pause {
        actor: String,
        reason: String,
    },
    Resume {
        actor: String,
    },
    /// End whatever holds the lane (cancelled, its deployment stopped) and start the
    /// queued release: the way out when a stage is stuck.
    Unblock {
        actor: String,
        reason: String,
    },
    /// A CloudWatch alarm the stage watches changed state at `at` (CloudWatch's clock).
    AlarmChanged {
        alarm: String,
        state: AlarmState,
        at: Timestamp,
        reason: String,
    },
    /// An operator puts an earlier release back: `to`, or the last known good one. What is
    /// in flight is stopped and rolled back; the release deploys again from its pinned
    /// revision.
    Rollback {
        actor: String,
        reason: String,
        to: Option<ReleaseId>,
    },
}

/// How long each waiting state may last before the reconciler asks AWS and, with no
/// answer there, ends it ([`Event::TimedOut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// A migration task, from the decision to run it to its exit.
    pub migration: Duration,
    /// From the decision to deploy until a deployment exists.
    pub deployment_start: Duration,
    /// A deployment, from its creation to its success or failure. CodeDeploy waits up to
    /// an hour per lifecycle hook, and canary and linear configurations take their time.
    pub deployment: Duration,
    /// A person's approval.
    pub approval: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            migration: Duration::from_secs(3600),
            deployment_start: Duration::from_secs(15 * 60),
            deployment: Duration::from_secs(6 * 3600),
            approval: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// How long a release sent back to the queue by a busy deployment group waits before it
/// is tried again.
pub const BLOCKED_RETRY: Duration = Duration::from_secs(60);

/// How many times a failed restore of the last known good is tried again before it is
/// failed for a person to act on.
pub const RESTORE_TRIES: u32 = 3;

/// How long the invocation that commits a stage's entry into deploying or migrating owns
/// the action it then runs: longer than any one run of it takes (the SDK's attempts are
/// bounded; an event function ends at 30 s). Until it expires, no replay, duplicate
/// delivery or reconciler pass runs the action again (DESIGN invariant 11); after it, one
/// of them takes it over by a conditional commit ([`Event::ActionResumed`]).
pub const LEASE: Duration = Duration::from_secs(5 * 60);

/// What a release needs to know about the environment's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub approval: Approval,
    pub migration: bool,
    pub bake: Duration,
    pub frozen: bool,
    pub next_environment: Option<String>,
    pub deadlines: Deadlines,
    /// Alarms in ALARM in the environments this one's gate watches
    /// (`hold_while_alarms_in`): while any fires, nothing starts here.
    pub held_by: Vec<String>,
    /// A deployment in flight is undone by deploying the last known good again (an ECS
    /// rolling service: ECS has no stop, a newer deployment replaces the one in progress),
    /// not by stopping it (CodeDeploy, which routes traffic back itself).
    pub undo_by_redeploy: bool,
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
            deadlines: Deadlines::default(),
            held_by: Vec::new(),
            undo_by_redeploy: service.kind == ServiceKind::Rolling,
        }
    }
}

/// Work the handler must do after committing a decision. Each is idempotent when executed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// Deliver `Arrived` for this release in the next environment.
    Promote {
        release: ReleaseId,
        from: String,
        to: String,
    },
    /// Set the bake timer that fires the promote function at `at`, the end of the bake.
    SetTimer {
        release: ReleaseId,
        environment: String,
        attempt: u32,
        at: Timestamp,
    },
    /// Delete the bake timer: the bake ended another way (an alarm, an operator), or the
    /// timer fired and the reconciler got there first.
    ClearTimer {
        release: ReleaseId,
        environment: String,
        attempt: u32,
    },
}

impl Action {
    /// The release the action is for.
    pub fn release(&self) -> &ReleaseId {
        match self {
            Action::RunMigration { release, .. }
            | Action::Deploy { release, .. }
            | Action::StopDeployment { release, .. }
            | Action::Promote { release, .. }
            | Action::SetTimer { release, .. }
            | Action::ClearTimer { release, .. } => release,
        }
    }
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
    #[error(
        "deployment {deployment} of release {release} in {environment} ended and was tried again; its late news changes nothing"
    )]
    EndedDeployment {
        release: ReleaseId,
        environment: String,
        deployment: String,
    },
    #[error(
        "deployment {deployment} of release {release} in {environment} was made before a late deployment may have replaced it; the deploy is made again when its lease ends"
    )]
    FencedDeployment {
        release: ReleaseId,
        environment: String,
        deployment: String,
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
    #[error("{service}/{environment} is busy ({why}); release {release} stays queued")]
    Busy {
        release: ReleaseId,
        service: String,
        environment: String,
        why: String,
    },
    #[error("alarm {alarm} changed at {at}, before the change already recorded ({seen}); ignored")]
    StaleAlarm {
        alarm: String,
        at: Timestamp,
        seen: Timestamp,
    },
    #[error("{service}/{environment} has no release to roll back to: {why}")]
    NoRollbackTarget {
        service: String,
        environment: String,
        why: String,
    },
    #[error(
        "release {release} stays baking in {environment}: {why}; it promotes when the alarm returns to OK (or: shiplane promote --skip-bake)"
    )]
    Held {
        release: ReleaseId,
        environment: String,
        why: String,
    },
    #[error("{service}/{environment} holds nothing to unblock")]
    NothingToUnblock {
        service: String,
        environment: String,
    },
    #[error(
        "release {release} is being restored in {service}/{environment} after a rollback; cancelling it would leave what it replaces running. Put another release back with `shiplane rollback {service} {environment} --to RELEASE --reason WHY`"
    )]
    RestoreNotCancelled {
        release: ReleaseId,
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

impl<'p> Work<'p> {
    fn new(view: &LaneView, policy: &'p Policy, now: Timestamp) -> Work<'p> {
        Work {
            view: view.clone(),
            policy,
            now,
            changed: BTreeSet::new(),
            lane_changed: false,
            transitions: Vec::new(),
            actions: Vec::new(),
        }
    }

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

    fn stage(&mut self, id: &ReleaseId) -> Result<&mut Stage, TransitionError> {
        let env = self.env();
        let release = self.release(id)?;
        let rid = release.id.clone();
        release
            .stages
            .get_mut(&env)
            .ok_or(TransitionError::NotArrived {
                release: rid,
                environment: env,
                event: "change",
            })
    }

    fn state(&self, id: &ReleaseId) -> Option<StageState> {
        self.view
            .releases
            .get(id)
            .and_then(|r| r.state_in(&self.view.lane.environment))
    }

    /// The time a change of `id`'s stage here is recorded at: the decision's, but never
    /// before the stage's last change or the last entry of its history. A decision's time
    /// is its invocation's start, and a decision that lost a race decides again after a
    /// later one committed: its history must still read in the order things happened.
    fn stage_time(&self, id: &ReleaseId) -> Timestamp {
        self.view
            .releases
            .get(id)
            .and_then(|r| r.stages.get(&self.view.lane.environment))
            .map_or(self.now, |s| {
                s.since.max(s.noted.unwrap_or_default()).max(self.now)
            })
    }

    /// Marks `id`'s stage here as written at `at` ([`Stage::noted`]).
    fn noted(&mut self, id: &ReleaseId, at: Timestamp) {
        let env = &self.view.lane.environment;
        if let Some(stage) = self
            .view
            .releases
            .get_mut(id)
            .and_then(|r| r.stages.get_mut(env))
        {
            stage.noted = Some(at);
        }
    }

    /// Moves a release to `to`, recording the transition; entering a state sets its deadline.
    fn move_to(
        &mut self,
        id: &ReleaseId,
        to: StageState,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        let now = self.stage_time(id);
        let from = self.state(id);
        let deadlines = self.policy.deadlines;
        let release = self.release(id)?;
        let stage = release.set_stage(&env, to, now);
        if to.is_terminal() && to != StageState::Succeeded {
            stage.reason = detail.clone();
        }
        let attempt = stage.attempt;
        let bake_until = stage.bake_until;
        if from != Some(to) {
            stage.lease = matches!(to, StageState::Deploying | StageState::Migrating)
                .then(|| now.after(LEASE));
            stage.resumed = 0;
            stage.deadline = match to {
                StageState::Migrating => Some(now.after(deadlines.migration)),
                StageState::Deploying => Some(now.after(deadlines.deployment_start)),
                StageState::AwaitingApproval => Some(now.after(deadlines.approval)),
                StageState::Validating => stage.deadline,
                StageState::Baking => stage.bake_until,
                _ => None,
            };
            if to != StageState::Queued {
                stage.not_before = None;
            }
        }
        let service = release.service.clone();
        // The bake timer lives exactly as long as the bake.
        match (from, to) {
            (Some(StageState::Baking), StageState::Baking) => {}
            (_, StageState::Baking) => {
                if let Some(at) = bake_until {
                    self.actions.push(Action::SetTimer {
                        release: id.clone(),
                        environment: env.clone(),
                        attempt,
                        at,
                    });
                }
            }
            (Some(StageState::Baking), _) => self.actions.push(Action::ClearTimer {
                release: id.clone(),
                environment: env.clone(),
                attempt,
            }),
            _ => {}
        }
        self.changed.insert(id.clone());
        self.transitions.push(Transition {
            at: now,
            service,
            environment: env,
            release: Some(id.clone()),
            from,
            to: Some(to),
            cause,
            actor,
            detail,
        });
        Ok(())
    }

    /// A transition that records a fact without changing the state (a new tag, a stop).
    fn record(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let state = self.state(id);
        let env = self.env();
        let at = self.stage_time(id);
        let service = self.release(id)?.service.clone();
        self.changed.insert(id.clone());
        self.noted(id, at);
        self.transitions.push(Transition {
            at,
            service,
            environment: env,
            release: Some(id.clone()),
            from: state,
            to: state,
            cause,
            actor: None,
            detail,
        });
        Ok(())
    }

    fn lane(&mut self) -> &mut Lane {
        self.lane_changed = true;
        &mut self.view.lane
    }

    /// Why the lane cannot start a release now, if it cannot.
    fn busy_because(&self) -> Option<String> {
        let lane = &self.view.lane;
        match (&lane.in_flight, &lane.paused, self.policy.frozen) {
            (Some(other), _, _) => Some(format!("waiting for {other}")),
            (None, Some(p), _) => Some(format!("lane paused by {}", p.actor)),
            (None, None, true) => Some("environment frozen".to_string()),
            (None, None, false) => {
                let holding = self.alarms_holding();
                (!holding.is_empty()).then(|| format!("held: {} in ALARM", holding.join(", ")))
            }
        }
    }

    /// The alarms that keep a stage from starting here: the lane's own firing alarms
    /// (DESIGN invariant 12) and those of the environments its gate watches, each with
    /// its environment.
    fn alarms_holding(&self) -> Vec<String> {
        let lane = &self.view.lane;
        lane.firing_alarms()
            .into_iter()
            .map(|name| format!("{name} ({})", lane.environment))
            .chain(self.policy.held_by.iter().cloned())
            .collect()
    }

    fn busy(&self) -> bool {
        self.busy_because().is_some()
    }

    /// Takes the lane's in-flight slot and begins the work: migration first when configured.
    fn start(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        actor: Option<String>,
    ) -> Result<(), TransitionError> {
        self.start_with(id, cause, actor, None)
    }

    /// [`Work::start`], with the transition's detail.
    fn start_with(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        let lane = self.lane();
        lane.in_flight = Some(id.clone());
        if lane.queued.as_ref() == Some(id) {
            lane.queued = None;
        }
        if self.policy.migration {
            self.move_to(id, StageState::Migrating, cause, actor, detail)?;
            self.actions.push(Action::RunMigration {
                release: id.clone(),
                environment: env,
            });
        } else {
            self.move_to(id, StageState::Deploying, cause, actor, detail)?;
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
            self.start(&next, Cause::Dequeued, None)?;
        }
        Ok(())
    }

    fn succeed(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let now = self.now;
        let env = self.env();
        self.move_to(id, StageState::Succeeded, cause, actor, detail)?;
        let next = self.policy.next_environment.clone();
        let stage = self.stage(id)?;
        let redeploy = stage.redeploy;
        stage.succeeded_at = Some(now);
        stage.redeploy = false;
        stage.bake_until = None;
        // A restored release already went through the later environments.
        let promote = next.filter(|_| !redeploy);
        stage.promote_to = promote.clone();
        let lane = self.lane();
        lane.current = Some(id.clone());
        if lane.last_known_good.as_ref() != Some(id) {
            lane.previous_good = lane.last_known_good.replace(id.clone());
        }
        if let Some(to) = promote {
            self.actions.push(Action::Promote {
                release: id.clone(),
                from: env,
                to,
            });
        }
        self.finish()
    }

    /// Ends an in-flight stage as `to` and undoes what it may have started: a CodeDeploy
    /// deployment still running is stopped and rolled back; a rolling service's deployment
    /// (recorded or still being created), or a baking release on either kind, is replaced
    /// by the last known good one, when `restore` (an operator's rollback deploys its own
    /// target instead).
    #[allow(clippy::too_many_arguments)]
    fn end_in_flight(
        &mut self,
        id: &ReleaseId,
        state: StageState,
        to: StageState,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
        restore: bool,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        let deployment = self.stage(id)?.deployment_id.clone();
        let good = self.view.lane.last_known_good.clone();
        let holds = self.view.lane.in_flight.as_ref() == Some(id);
        let good = good.filter(|g| g != id && holds && restore);
        let shipped = state == StageState::Baking && restore;
        let detail = match (shipped, &good) {
            (true, None) => {
                let why = "no last known good release to restore here: it keeps running, manual action needed";
                Some(detail.map_or_else(|| why.to_string(), |d| format!("{d}; {why}")))
            }
            _ => detail,
        };
        self.move_to(id, to, cause, actor, detail)?;
        // A baking release already serves: ending it puts the last known good back, on
        // either kind of service (simulation seed 19597).
        if let (true, Some(good)) = (shipped, &good) {
            return self.redeploy(good, None, Some(format!("restoring after {id}")));
        }
        let deploying = matches!(state, StageState::Deploying | StageState::Validating);
        if deploying && self.policy.undo_by_redeploy {
            if let Some(good) = good {
                return self.redeploy(&good, None, Some(format!("restoring after {id}")));
            }
        } else if let (Some(deployment_id), true) = (deployment, deploying) {
            self.lane().stopping = Some(id.clone());
            self.actions.push(Action::StopDeployment {
                release: id.clone(),
                environment: env,
                deployment_id,
                rollback: true,
            });
        }
        if self.view.lane.in_flight.as_ref() == Some(id) {
            self.finish()?;
        }
        Ok(())
    }

    /// Deploys a release that already succeeded here again, from its pinned revision,
    /// taking the lane's in-flight slot: a rollback's restore.
    fn redeploy(
        &mut self,
        id: &ReleaseId,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        self.move_to(id, StageState::Deploying, Cause::Rollback, actor, detail)?;
        let stage = self.stage(id)?;
        stage.redeploy = true;
        stage.deployment_id = None;
        stage.restore_failures = 0;
        self.lane().in_flight = Some(id.clone());
        self.actions.push(Action::Deploy {
            release: id.clone(),
            environment: env,
            redeploy: true,
        });
        Ok(())
    }

    /// Deploys in-flight `id` again on a rolling service, whose deployment `replaced` no
    /// longer runs: that one is ended (its late news is refused) and a new one is made.
    fn deploy_again(
        &mut self,
        id: &ReleaseId,
        replaced: String,
        why: String,
    ) -> Result<(), TransitionError> {
        let (now, env) = (self.now, self.env());
        let stage = self.stage(id)?;
        stage.deployment_id = None;
        stage.ended.push(replaced);
        stage.lease = Some(now.after(LEASE));
        let redeploy = stage.redeploy;
        if self.state(id) == Some(StageState::Validating) {
            // Deploying again: a taker finds the action owed if this invocation dies.
            self.move_to(
                id,
                StageState::Deploying,
                Cause::Redeployed,
                None,
                Some(why),
            )?;
        } else {
            self.record(id, Cause::Redeployed, Some(why))?;
        }
        self.actions.push(Action::Deploy {
            release: id.clone(),
            environment: env,
            redeploy,
        });
        Ok(())
    }

    /// The refusal of a late hook or answer of a deployment this stage already replaced.
    fn ended_deployment(&self, id: &ReleaseId, deployment: &str) -> TransitionError {
        TransitionError::EndedDeployment {
            release: id.clone(),
            environment: self.env(),
            deployment: deployment.to_string(),
        }
    }

    fn not_allowed(&self, id: &ReleaseId, state: StageState, event: &Event) -> TransitionError {
        TransitionError::NotAllowed {
            release: id.clone(),
            environment: self.view.lane.environment.clone(),
            state,
            event: event.name(),
        }
    }

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

/// A release arrives in an environment: superseded on arrival when a newer push of the
/// service already arrived here, else it supersedes the queued one and starts, queues, or
/// waits for approval.
fn arrive(
    w: &mut Work<'_>,
    id: &ReleaseId,
    cause: Cause,
    actor: Option<String>,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    let (pushed, digest) = {
        let r = w.release(id)?;
        (r.pushed_at, r.digest.clone())
    };
    if let Some(newest) = w.view.lane.newest_pushed_at {
        let newest_digest = w.view.lane.newest_digest.as_ref();
        // Lanes written before digests were recorded order equal times by arrival.
        let before = match newest_digest {
            Some(d) => pushed_before((pushed, &digest), (newest, d)),
            None => pushed < newest,
        };
        if before {
            let why = match newest_digest.filter(|_| pushed == newest) {
                Some(d) => format!(
                    "pushed at {pushed}, the same instant as {}, which already arrived here; at equal push times the greater digest is taken as the newer",
                    d.short()
                ),
                None => format!(
                    "pushed at {pushed}, before a newer release that already arrived here (pushed at {newest})"
                ),
            };
            return w.move_to(
                id,
                StageState::Superseded,
                Cause::Superseded,
                None,
                Some(why),
            );
        }
    }
    w.lane().newest_pushed_at = Some(pushed);
    w.lane().newest_digest = Some(digest);
    if let Some(older) = w.view.lane.queued.clone() {
        w.move_to(
            &older,
            StageState::Superseded,
            Cause::Superseded,
            None,
            Some(format!("superseded by {id}")),
        )?;
        w.lane().queued = None;
    }
    if w.policy.approval == Approval::Manual {
        w.move_to(id, StageState::AwaitingApproval, cause, actor, detail)?;
        w.lane().queued = Some(id.clone());
    } else if let Some(why) = w.busy_because() {
        let why = match detail {
            Some(d) => format!("{d}; {why}"),
            None => why,
        };
        w.move_to(id, StageState::Queued, cause, actor, Some(why))?;
        w.lane().queued = Some(id.clone());
    } else {
        w.start_with(id, cause, actor, detail)?;
    }
    Ok(())
}

/// An alarm fired while `id` was in flight here: a migration ends the stage (see
/// [`migration_left_to_finish`]); a deployment is stopped and rolled back; a release that
/// already shipped (baking) is replaced by the last known good one.
fn roll_back(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    match state {
        S::Migrating => {
            let task = w.stage(id)?.deployment_id.clone();
            let detail = format!(
                "{} during the migration; {}",
                detail.unwrap_or_else(|| "an alarm fired".into()),
                migration_left_to_finish(task.as_deref())
            );
            w.end_in_flight(
                id,
                state,
                S::Failed,
                Cause::AlarmFired,
                None,
                Some(detail),
                true,
            )
        }
        S::Baking => replace_shipped(w, id, detail),
        _ => w.end_in_flight(
            id,
            state,
            S::RolledBack,
            Cause::AlarmFired,
            None,
            detail,
            true,
        ),
    }
}

/// What an alarm during a migration does, as the stage's reason says it. The task is not
/// stopped: stopping a schema migration halfway can leave the database half-migrated and
/// locked, which is worse than a finished migration the running version was written to
/// live with (it runs before the new version comes up). The stage ends as failed, not
/// rolled back, because nothing was reverted.
fn migration_left_to_finish(task_arn: Option<&str>) -> String {
    let task = match task_arn {
        Some(arn) => format!("the migration task {arn}"),
        None => "the migration task, if it started,".to_string(),
    };
    format!(
        "{task} is left to finish (stopping it halfway could leave the schema half-applied) and the new version is not deployed; check it, then `shiplane retry` once the alarm is OK"
    )
}

/// `id`, which already runs here, is replaced by the last known good release; with none,
/// nothing is deployed and the reason says a person must act.
fn replace_shipped(
    w: &mut Work<'_>,
    id: &ReleaseId,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    match w.view.lane.last_known_good.clone() {
        Some(good) if &good != id => {
            w.move_to(id, S::RolledBack, Cause::AlarmFired, None, detail)?;
            w.redeploy(&good, None, Some(format!("restoring after {id}")))?;
        }
        _ => {
            let detail = Some(format!(
                "{}; no last known good release to restore here: manual action needed",
                detail.unwrap_or_default()
            ));
            w.move_to(id, S::RolledBack, Cause::AlarmFired, None, detail)?;
            w.finish()?;
        }
    }
    Ok(())
}

/// Undoes deployment `late` of `id`, created after its stage ended: CodeDeploy stops it
/// and routes traffic back; on a rolling service (no stop: the newest UpdateService wins)
/// the lane's own deployment in flight is made again, or, with none, the last known good
/// is restored.
fn undo_late(w: &mut Work<'_>, id: &ReleaseId, late: &str) -> Result<(), TransitionError> {
    let env = w.env();
    if !w.policy.undo_by_redeploy {
        w.lane().stopping = Some(id.clone());
        w.actions.push(Action::StopDeployment {
            release: id.clone(),
            environment: env,
            deployment_id: late.to_string(),
            rollback: true,
        });
        return Ok(());
    }
    let lane = w.view.lane.clone();
    let deploying = lane.in_flight.as_ref().filter(|r| {
        *r != id
            && matches!(
                w.state(r),
                Some(StageState::Deploying | StageState::Validating)
            )
    });
    if let Some(r) = deploying.cloned() {
        let stage = w.stage(&r)?;
        // Its deployment may have been replaced by the late one: what an action issued
        // before this says is refused from now on, and the deployment is made again.
        stage.fence += 1;
        let Some(replaced) = stage.deployment_id.clone() else {
            // Its deploy action may still be running: no second one races it (two would
            // register two revisions). The action is taken over when its lease ends,
            // after which it can no longer answer.
            w.record(
                &r,
                Cause::Redeployed,
                Some(format!(
                    "{late} of release {id} landed late and may have replaced the deployment still being made; it is made again when its action's lease ends"
                )),
            )?;
            return Ok(());
        };
        let why = format!(
            "{replaced} was replaced by {late} of release {id}, which landed late; deploying again"
        );
        w.deploy_again(&r, replaced, why)?;
    } else if lane.in_flight.is_none()
        && let Some(good) = lane
            .last_known_good
            .filter(|g| g != id && w.state(g) == Some(StageState::Succeeded))
    {
        // Nothing in flight: the last known good is deployed again, holding the lane.
        w.redeploy(
            &good,
            None,
            Some(format!(
                "{id}'s deployment landed after its stage ended; restoring"
            )),
        )?;
    }
    Ok(())
}

/// Whether a lane whose current release is in `state` runs what it does not want: the
/// release ended here (rolled back, failed, cancelled, or superseded after a retry) or
/// waits to deploy again, yet its version runs (a deployment that finished after its stage
/// ended, a CodeDeploy rollback that failed). The last known good is then restored.
fn runs_unwanted(state: StageState) -> bool {
    !state.is_in_flight() && state != StageState::Succeeded
}

/// Whether the lane's current release succeeded here after `id`'s stage ended: a late
/// success of `id`'s deployment is then older than what runs.
fn replaced_since(w: &Work<'_>, id: &ReleaseId) -> bool {
    let env = &w.view.lane.environment;
    let ended = w
        .view
        .releases
        .get(id)
        .and_then(|r| r.stages.get(env))
        .map(|s| s.since);
    let current = w
        .view
        .lane
        .current
        .as_ref()
        .and_then(|c| w.view.releases.get(c))
        .and_then(|r| r.stages.get(env))
        .and_then(|s| s.succeeded_at);
    matches!((ended, current), (Some(ended), Some(succeeded)) if succeeded > ended)
}

/// Applies one event for one release to a lane. Pure: the same inputs give the same decision.
pub fn apply(
    view: &LaneView,
    release: &ReleaseId,
    event: &Event,
    policy: &Policy,
    now: Timestamp,
) -> Result<Decision, TransitionError> {
    let mut w = Work::new(view, policy, now);
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
    let cause = event.cause();
    let actor = event.actor();
    let detail = event.detail();
    let env = w.env();

    let Some(state) = w.state(id) else {
        return match event {
            Event::Arrived | Event::Deployed { .. } => {
                arrive(&mut w, id, cause, actor, detail)?;
                w.done()
            }
            Event::TagAdded { tag } => {
                // A new tag is a fact of the release, wherever it is.
                if w.release(id)?.add_tag(tag) {
                    w.record(id, cause, detail)?;
                }
                w.done()
            }
            _ => Err(TransitionError::NotArrived {
                release: id.clone(),
                environment: env,
                event: event.name(),
            }),
        };
    };

    use StageState as S;
    match (state, event) {
        (_, Event::Arrived | Event::Deployed { .. }) => {
            return Err(TransitionError::AlreadyArrived {
                release: id.clone(),
                environment: env,
                state,
            });
        }
        (_, Event::TagAdded { tag }) => {
            if w.release(id)?.add_tag(tag) {
                w.record(id, cause, detail)?;
            }
        }
        (S::Queued, Event::Dequeue) => {
            if w.view.lane.queued.as_ref() != Some(id) {
                return Err(w.not_allowed(id, state, event));
            }
            if let Some(why) = w.busy_because() {
                return Err(TransitionError::Busy {
                    release: id.clone(),
                    service: w.view.lane.service.clone(),
                    environment: env,
                    why,
                });
            }
            w.start(id, cause, None)?;
        }
        (S::AwaitingApproval, Event::Approved { actor }) => {
            w.stage(id)?.approved_by = Some(actor.clone());
            if let Some(why) = w.busy_because() {
                w.move_to(id, S::Queued, cause, Some(actor.clone()), Some(why))?;
            } else {
                w.start(id, cause, Some(actor.clone()))?;
            }
        }
        (S::AwaitingApproval | S::Queued, Event::Rejected { .. } | Event::Cancelled { .. }) => {
            let to = if matches!(event, Event::Rejected { .. }) {
                S::Rejected
            } else {
                S::Cancelled
            };
            w.move_to(id, to, cause, actor, detail)?;
            if w.view.lane.queued.as_ref() == Some(id) {
                w.lane().queued = None;
            }
        }
        (S::AwaitingApproval, Event::TimedOut { .. }) => {
            w.move_to(id, S::Cancelled, cause, None, detail)?;
            if w.view.lane.queued.as_ref() == Some(id) {
                w.lane().queued = None;
            }
        }
        // Cancelling the restore of the last known good would leave what it replaces
        // running, for good: refused, with the way to put another release back instead.
        (S::Deploying | S::Validating, Event::Cancelled { .. }) if w.stage(id)?.redeploy => {
            return Err(TransitionError::RestoreNotCancelled {
                release: id.clone(),
                service: w.view.lane.service.clone(),
                environment: env,
            });
        }
        (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::Cancelled { .. }) => {
            w.end_in_flight(id, state, S::Cancelled, cause, actor, detail, true)?;
        }
        (S::Migrating | S::Deploying | S::Validating, Event::TimedOut { .. }) => {
            w.end_in_flight(id, state, S::Failed, cause, None, detail, true)?;
        }
        (S::Deploying | S::Validating, Event::DeploymentReplaced { deployment_id })
            if policy.undo_by_redeploy
                && w.stage(id)?.deployment_id.as_ref() == Some(deployment_id) =>
        {
            w.stage(id)?.fence += 1;
            w.deploy_again(id, deployment_id.clone(), detail.unwrap_or_default())?;
        }
        (S::Migrating, Event::MigrationSucceeded) => {
            w.move_to(id, S::Deploying, cause, None, None)?;
            // The recorded id was the migration task's; the deployment records its own.
            w.stage(id)?.deployment_id = None;
            w.actions.push(Action::Deploy {
                release: id.clone(),
                environment: env,
                redeploy: false,
            });
        }
        // A restore of the last known good that could not be started (AWS failed past its
        // retries) is not given up: what runs is worse. It is tried again by the next pass
        // after a pause, until its deadline.
        (S::Deploying, Event::ActionFailed { .. })
            if w.stage(id)?.redeploy && w.stage(id)?.deployment_id.is_none() =>
        {
            w.record(id, cause, detail)?;
            w.stage(id)?.lease = Some(now.after(BLOCKED_RETRY));
        }
        // A restore of the last known good whose deployment failed is tried again, a few
        // times, before a person is asked to act: what it was to replace still runs.
        (S::Deploying | S::Validating, Event::DeploymentFailed { .. })
            if w.stage(id)?.redeploy && w.stage(id)?.restore_failures < RESTORE_TRIES =>
        {
            w.record(id, cause, detail)?;
            if state == S::Validating {
                let again = Some("restoring again".to_string());
                w.move_to(id, S::Deploying, Cause::Rollback, None, again)?;
            }
            let deadlines = policy.deadlines;
            let stage = w.stage(id)?;
            stage.restore_failures += 1;
            stage.ended.extend(stage.deployment_id.take());
            stage.lease = Some(now.after(BLOCKED_RETRY));
            stage.deadline = Some(now.after(deadlines.deployment_start));
        }
        // The deploy action failed for good, but its UpdateService may have landed with
        // its answer lost: a rolling service is put back on the last known good.
        (S::Deploying | S::Validating, Event::ActionFailed { .. }) if policy.undo_by_redeploy => {
            w.end_in_flight(id, state, S::Failed, cause, None, detail, true)?;
        }
        (S::Migrating, Event::MigrationFailed { .. })
        | (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::ActionFailed { .. })
        | (S::Deploying | S::Validating, Event::DeploymentFailed { .. }) => {
            w.move_to(id, S::Failed, cause, None, detail)?;
            if w.view.lane.in_flight.as_ref() == Some(id) {
                w.finish()?;
            }
        }
        // A hook can report in before the deployment's own outcome commits (CodeDeploy
        // calls the first hook right after CreateDeployment): validating takes it too.
        // A CodeDeploy deployment that finished after its stage ended (its stop came too
        // late, or never ran): the release runs. The lane records it as running, and what
        // it owes then restores the last known good (see `owed`). CodeDeploy runs one
        // deployment per group at a time, so the deployment succeeded before any that the
        // lane's current release succeeded with after this stage ended: then it no longer
        // runs (`replaced_since`). A rolling service's deployment is replaced while it
        // runs, and cannot be ordered this way: not there.
        (S::RolledBack | S::Cancelled | S::Failed, Event::DeploymentSucceeded)
            if !policy.undo_by_redeploy
                && w.stage(id)?.deployment_id.is_some()
                && w.view.lane.current.as_ref() != Some(id)
                && !replaced_since(&w, id) =>
        {
            w.record(
                id,
                cause,
                Some("its deployment finished after the stage ended: it runs now, and the last known good is deployed again".into()),
            )?;
            w.lane().current = Some(id.clone());
        }
        (S::Succeeded, Event::Restore) => {
            let lane = &w.view.lane;
            let runs_bad = lane
                .current
                .as_ref()
                .filter(|c| *c != id)
                .is_some_and(|c| w.state(c).is_some_and(runs_unwanted));
            if lane.in_flight.is_some() || lane.last_known_good.as_ref() != Some(id) || !runs_bad {
                return Err(w.not_allowed(id, state, event));
            }
            let bad = lane.current.clone().unwrap_or_else(|| id.clone());
            w.redeploy(
                id,
                None,
                Some(format!("{bad} runs, but it ended here; restoring")),
            )?;
        }
        (S::Deploying | S::Migrating, Event::ActionResumed) => {
            let expired = w.stage(id)?.lease.is_none_or(|until| until <= now);
            let Some(action) = pending_action(w.release(id)?, &env).filter(|_| expired) else {
                return Err(w.not_allowed(id, state, event));
            };
            let deadlines = policy.deadlines;
            let stage = w.stage(id)?;
            let overdue = stage.deadline.is_some_and(|d| d <= now);
            if overdue && stage.redeploy && stage.restore_failures < RESTORE_TRIES {
                // A restore of the last known good is not given up at its first deadline:
                // what runs is worse. It counts as a failed try, and is tried again.
                stage.restore_failures += 1;
                stage.deadline = Some(now.after(deadlines.deployment_start));
                let tries = stage.restore_failures;
                w.record(
                    id,
                    Cause::TimedOut,
                    Some(format!(
                        "the restore could not be started by its deadline; trying again ({tries} of {RESTORE_TRIES} tries failed)"
                    )),
                )?;
            } else if overdue {
                // Not started by its deadline: given up, for a person to look at.
                let why = format!(
                    "{} could not be started by its deadline; see its history, then `shiplane retry`",
                    action_name(&action)
                );
                // An UpdateService may have landed with its answer lost: a rolling
                // service is put back on the last known good (simulation seed 188).
                let restore = matches!(action, Action::Deploy { .. });
                w.end_in_flight(
                    id,
                    state,
                    S::Failed,
                    Cause::TimedOut,
                    None,
                    Some(why),
                    restore,
                )?;
                return w.done();
            }
            let stage = w.stage(id)?;
            stage.lease = Some(now.after(LEASE));
            stage.resumed += 1;
            w.record(
                id,
                cause,
                Some(format!(
                    "{} left unfinished past its lease",
                    action_name(&action)
                )),
            )?;
            w.actions.push(action);
        }
        // The deployment was created after its stage ended (an alarm, an operator or a
        // deadline ended it while CreateDeployment or UpdateService was still in flight):
        // it is recorded, so that what runs stays accounted for, and undone.
        (
            S::Cancelled | S::Failed | S::RolledBack,
            Event::DeploymentCreated {
                deployment_id: late,
                task_definition,
                ..
            },
        ) if w.stage(id)?.deployment_id.is_none() => {
            let stage = w.stage(id)?;
            stage.deployment_id = Some(late.clone());
            stage.task_definition.clone_from(task_definition);
            w.record(
                id,
                cause,
                Some(format!("{late}, created after the stage ended; undoing it")),
            )?;
            undo_late(&mut w, id, late)?;
        }
        (
            S::Deploying | S::Validating,
            Event::DeploymentCreated {
                deployment_id: recorded,
                ..
            },
        )
        | (S::Migrating, Event::MigrationStarted { task_arn: recorded }) => {
            match w.stage(id)?.deployment_id.clone() {
                Some(known) if &known == recorded => {
                    // Recorded by a hook first: the revision is recorded now.
                    if let Event::DeploymentCreated {
                        task_definition: Some(td),
                        ..
                    } = event
                        && w.stage(id)?.task_definition.is_none()
                    {
                        w.stage(id)?.task_definition = Some(td.clone());
                        w.changed.insert(id.clone());
                    }
                }
                Some(known) => {
                    return Err(TransitionError::DeploymentMismatch {
                        release: id.clone(),
                        environment: env,
                        expected: known,
                        got: recorded.clone(),
                    });
                }
                None if w.stage(id)?.ended.contains(recorded) => {
                    return Err(w.ended_deployment(id, recorded));
                }
                None if matches!(event, Event::DeploymentCreated { fence, .. } if *fence < w.stage(id)?.fence) =>
                {
                    return Err(TransitionError::FencedDeployment {
                        release: id.clone(),
                        environment: env,
                        deployment: recorded.clone(),
                    });
                }
                None => {
                    let deadline = w.stage(id)?.deadline;
                    w.move_to(id, state, cause, None, detail)?;
                    let stage = w.stage(id)?;
                    stage.deployment_id = Some(recorded.clone());
                    if let Event::DeploymentCreated {
                        task_definition: Some(td),
                        ..
                    } = event
                    {
                        stage.task_definition = Some(td.clone());
                    }
                    // A deployment has its own, longer deadline; a migration keeps its own.
                    stage.deadline = if state == S::Migrating {
                        deadline
                    } else {
                        Some(now.after(policy.deadlines.deployment))
                    };
                }
            }
        }
        // A restore of the last known good waits for the group, holding the lane: it is
        // tried again after a pause, never superseded or sent back to the queue.
        (S::Deploying, Event::DeploymentBlocked { .. })
            if w.stage(id)?.deployment_id.is_none() && w.stage(id)?.redeploy =>
        {
            w.record(id, cause, detail)?;
            w.stage(id)?.lease = Some(now.after(BLOCKED_RETRY));
        }
        (S::Deploying, Event::DeploymentBlocked { .. }) if w.stage(id)?.deployment_id.is_none() => {
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
                    w.stage(id)?.not_before = Some(now.after(BLOCKED_RETRY));
                    w.lane().queued = Some(id.clone());
                }
            }
        }
        (S::Deploying, Event::ValidationStarted) => {
            w.move_to(id, S::Validating, cause, None, None)?;
        }
        (S::Validating, Event::ValidationStarted) => {} // each hook reports in; the first moved it
        (
            S::Deploying | S::Validating,
            Event::HookCompleted {
                deployment_id,
                task_definition,
                checks,
                ..
            },
        ) => {
            match w.stage(id)?.deployment_id.clone() {
                Some(known) if &known != deployment_id => {
                    return Err(TransitionError::DeploymentMismatch {
                        release: id.clone(),
                        environment: env,
                        expected: known,
                        got: deployment_id.clone(),
                    });
                }
                Some(_) => {}
                None if w.stage(id)?.ended.contains(deployment_id) => {
                    return Err(w.ended_deployment(id, deployment_id));
                }
                None => {
                    let stage = w.stage(id)?;
                    stage.deployment_id = Some(deployment_id.clone());
                    if task_definition.is_some() {
                        stage.task_definition.clone_from(task_definition);
                    }
                    stage.deadline = Some(now.after(policy.deadlines.deployment));
                }
            }
            if state == S::Deploying {
                w.move_to(id, S::Validating, Cause::ValidationStarted, None, None)?;
            }
            for (passed, record) in checks {
                let cause = if *passed {
                    Cause::CheckPassed
                } else {
                    Cause::CheckFailed
                };
                w.record(id, cause, Some(bounded(record)))?;
            }
            w.record(id, cause, detail)?;
        }
        (S::Deploying | S::Validating, Event::DeploymentSucceeded) => {
            let redeploy = w.stage(id)?.redeploy;
            w.lane().current = Some(id.clone());
            let firing = w.view.lane.firing_alarms();
            if !redeploy && policy.bake.is_zero() && !firing.is_empty() {
                // The lane's own alarm blocks its success (DESIGN invariant 12): with no
                // bake to hold, the release that now runs is replaced, as an alarm during
                // its bake would. A bake holds its end until the alarm is OK instead.
                let why = format!(
                    "the deployment succeeded while {} in ALARM here",
                    firing.join(", ")
                );
                replace_shipped(&mut w, id, Some(why))?;
            } else if redeploy || policy.bake.is_zero() {
                w.succeed(id, cause, None, None)?;
            } else {
                w.stage(id)?.bake_until = Some(now.after(policy.bake));
                w.move_to(id, S::Baking, cause, None, None)?;
            }
        }
        (S::Failed | S::RolledBack | S::Cancelled, Event::Retry { .. }) => {
            if let Some(other) = w.view.lane.queued.clone().filter(|q| q != id) {
                return Err(TransitionError::Busy {
                    release: id.clone(),
                    service: w.view.lane.service.clone(),
                    environment: env,
                    why: format!("release {other} waits in the queue; cancel it first"),
                });
            }
            if w.view.lane.stopping.as_ref() == Some(id) {
                // Its deployment is still owed a stop: a new attempt would forget it, and
                // it would go on to serve (simulation seed 17891).
                let deployment = w.stage(id)?.deployment_id.clone().unwrap_or_default();
                return Err(TransitionError::Busy {
                    release: id.clone(),
                    service: w.view.lane.service.clone(),
                    environment: env,
                    why: format!(
                        "its deployment {deployment} is still being stopped; retry in a few minutes, once the reconciler has stopped it"
                    ),
                });
            }
            let stage = w.stage(id)?;
            stage.attempt += 1;
            stage.deployment_id = None;
            stage.task_definition = None;
            stage.redeploy = false;
            stage.promote_to = None;
            let attempt = stage.attempt;
            if let Some(why) = w.busy_because() {
                w.move_to(
                    id,
                    S::Queued,
                    cause,
                    actor,
                    Some(format!("attempt {attempt}; {why}")),
                )?;
                w.lane().queued = Some(id.clone());
            } else {
                w.start(id, cause, actor)?;
            }
        }
        (S::Baking, Event::PromotedEarly { .. }) => {
            w.succeed(id, cause, actor, detail)?;
        }
        (S::Baking, Event::BakeElapsed) => {
            // The gate at the end of the bake: none of the lane's own alarms fires. While
            // one does the release stays baking; its OK makes the lane owe the bake again.
            let firing = w.view.lane.firing_alarms();
            if !firing.is_empty() {
                return Err(TransitionError::Held {
                    release: id.clone(),
                    environment: env,
                    why: format!("{} in ALARM", firing.join(", ")),
                });
            }
            w.succeed(id, cause, None, None)?;
        }
        (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::AlarmFired { .. }) => {
            roll_back(&mut w, id, state, detail)?;
        }
        // CodeDeploy's rollback of this ended stage's deployment failed: the version it was
        // to remove may still take production traffic. The lane records it as running, so
        // that what the lane owes restores the last known good (a deployment of its own,
        // which moves all the traffic), unless a newer release succeeded here since.
        (_, Event::RollbackReported { failed: true, .. })
            if runs_unwanted(state)
                && !policy.undo_by_redeploy
                && w.view.lane.current.as_ref() != Some(id)
                && !replaced_since(&w, id) =>
        {
            let detail = detail.map(|d| {
                format!("{d}; it may still take production traffic: the last known good is deployed again")
            });
            w.record(id, cause, detail)?;
            w.lane().current = Some(id.clone());
        }
        // Facts about the stage's timer or CodeDeploy's rollback of its deployment, true
        // whatever the stage became since.
        (_, Event::BakeTimer { .. } | Event::RollbackReported { .. }) => {
            w.record(id, cause, detail)?;
        }
        (
            S::Cancelled | S::Failed | S::RolledBack,
            Event::StopRequested {
                deployment_id,
                succeeded,
                ..
            },
        ) if w.stage(id)?.deployment_id.as_ref() == Some(deployment_id) => {
            w.record(id, cause, detail)?;
            // Too late to stop: it runs (and the lane owes the last known good's restore);
            // only the stop the lane still owes says so, not a duplicate's late outcome.
            if w.view.lane.stopping.as_ref() == Some(id) {
                w.lane().stopping = None;
                if *succeeded && !replaced_since(&w, id) {
                    w.lane().current = Some(id.clone());
                }
            }
        }
        (state, event) => return Err(w.not_allowed(id, state, event)),
    }
    w.done()
}

/// The action a stage still owes when the work that should follow its last commit never
/// ran (a crash, a timeout): taken over once its lease ran out ([`Event::ActionResumed`]).
/// Pure.
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

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::RunMigration { .. } => "the migration",
        _ => "the deployment",
    }
}

/// Work a lane owes, whichever release it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// An action whose decision was committed but which never ran.
    Act(Action),
    /// An event that is due: a free lane's queued release to start, a bake that ended.
    Apply(ReleaseId, Event),
}

/// Everything a lane owes, looked at as a whole (not only one event's release): the
/// in-flight release's action that never ran, the queued release on a lane nothing holds,
/// a bake that ended, a promotion committed but never started. Pure; the engine runs it
/// after every event on the lane and the reconciler on every lane, and each is done once
/// because its effect is idempotent and its outcome a conditional commit.
pub fn owed(view: &LaneView, policy: &Policy, now: Timestamp) -> Vec<Owed> {
    let lane = &view.lane;
    let env = lane.environment.as_str();
    let mut out = Vec::new();
    if let Some(r) = lane.in_flight.as_ref().and_then(|id| view.releases.get(id)) {
        if pending_action(r, env).is_some()
            && r.stages
                .get(env)
                .is_none_or(|s| s.lease.is_none_or(|until| until <= now))
        {
            out.push(Owed::Apply(r.id.clone(), Event::ActionResumed));
        }
        if let Some(stage) = r.stages.get(env)
            && stage.state == StageState::Baking
            && stage.bake_until.is_some_and(|t| t <= now)
            && lane.firing_alarms().is_empty()
        {
            out.push(Owed::Apply(r.id.clone(), Event::BakeElapsed));
        }
    }
    // A stop committed whose outcome was never recorded (its invocation died): owed again
    // (stopping a deployment that already ended is no error).
    if let Some(r) = lane.stopping.as_ref().and_then(|id| view.releases.get(id))
        && let Some(stage) = r.stages.get(env)
        && stage.state.is_terminal()
        && let Some(deployment_id) = &stage.deployment_id
    {
        out.push(Owed::Act(Action::StopDeployment {
            release: r.id.clone(),
            environment: env.to_string(),
            deployment_id: deployment_id.clone(),
            rollback: true,
        }));
    }
    // What runs must be good: a release that ended here but runs all the same (its
    // deployment finished after its stage ended) is replaced by the last known good.
    if lane.in_flight.is_none()
        && let (Some(current), Some(good)) = (&lane.current, &lane.last_known_good)
        && current != good
        && view
            .releases
            .get(current)
            .and_then(|r| r.state_in(env))
            .is_some_and(runs_unwanted)
        && view.releases.get(good).and_then(|r| r.state_in(env)) == Some(StageState::Succeeded)
    {
        out.push(Owed::Apply(good.clone(), Event::Restore));
    }
    let idle = lane.in_flight.is_none()
        && lane.paused.is_none()
        && !policy.frozen
        && policy.held_by.is_empty()
        && lane.firing_alarms().is_empty();
    if idle
        && let Some(r) = lane.queued.as_ref().and_then(|id| view.releases.get(id))
        && let Some(stage) = r.stages.get(env)
        && stage.state == StageState::Queued
        && stage.not_before.is_none_or(|t| t <= now)
    {
        out.push(Owed::Apply(r.id.clone(), Event::Dequeue));
    }
    let mut succeeded: Vec<&ReleaseId> = [&lane.last_known_good, &lane.current]
        .into_iter()
        .flatten()
        .collect();
    succeeded.dedup();
    for id in succeeded {
        let Some(r) = view.releases.get(id) else {
            continue;
        };
        if let Some(stage) = r.stages.get(env)
            && stage.state == StageState::Succeeded
            && let Some(to) = &stage.promote_to
            && !r.stages.contains_key(to)
        {
            out.push(Owed::Act(Action::Promote {
                release: id.clone(),
                from: env.to_string(),
                to: to.clone(),
            }));
        }
    }
    out
}

/// Applies an operator's pause, resume or unblock to a lane.
pub fn apply_lane(
    view: &LaneView,
    event: &LaneEvent,
    policy: &Policy,
    now: Timestamp,
) -> Result<Decision, TransitionError> {
    let mut w = Work::new(view, policy, now);
    let (service, environment) = (w.view.lane.service.clone(), w.env());
    let transition = |cause: Cause, actor: &str, detail: Option<String>| Transition {
        at: now,
        service: service.clone(),
        environment: environment.clone(),
        release: None,
        from: None,
        to: None,
        cause,
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
                .push(transition(Cause::Paused, actor, Some(reason.clone())));
        }
        LaneEvent::Resume { actor } => {
            if w.view.lane.paused.is_none() {
                return Err(TransitionError::NotPaused {
                    service,
                    environment,
                });
            }
            w.lane().paused = None;
            w.transitions.push(transition(Cause::Resumed, actor, None));
            if w.view.lane.in_flight.is_none() {
                w.finish()?;
            }
        }
        LaneEvent::Rollback { actor, reason, to } => {
            let no = |why: String| TransitionError::NoRollbackTarget {
                service: service.clone(),
                environment: environment.clone(),
                why,
            };
            let lane = w.view.lane.clone();
            let default = if lane.last_known_good != lane.current {
                lane.last_known_good.clone()
            } else {
                lane.previous_good.clone()
            };
            let target = to
                .clone()
                .or(default)
                .ok_or_else(|| no("no earlier release succeeded here".into()))?;
            let succeeded_here = w
                .view
                .releases
                .get(&target)
                .and_then(|r| r.stages.get(&environment))
                .is_some_and(|s| s.succeeded_at.is_some());
            if !succeeded_here {
                return Err(no(format!("{target} never succeeded here")));
            }
            if lane.in_flight.as_ref() == Some(&target) {
                return Err(no(format!("{target} is already being deployed here")));
            }
            w.transitions.push(transition(
                Cause::Rollback,
                actor,
                Some(format!("{reason} (to {target})")),
            ));
            // What is in flight stops (the queued release set aside meanwhile: the rollback
            // comes first); what runs now is rolled back.
            let waiting = w.lane().queued.take();
            if let Some(flying) = lane.in_flight.clone()
                && let Some(st) = w.state(&flying)
            {
                let detail = Some(format!("rolled back by {actor}: {reason}"));
                let to = if st == StageState::Migrating {
                    StageState::Cancelled
                } else {
                    StageState::RolledBack
                };
                if st.is_in_flight() {
                    w.end_in_flight(
                        &flying,
                        st,
                        to,
                        Cause::Rollback,
                        Some(actor.clone()),
                        detail,
                        false,
                    )?;
                }
            }
            w.lane().queued = waiting;
            if let Some(current) = lane.current.clone()
                && current != target
                && w.state(&current) == Some(StageState::Succeeded)
            {
                w.move_to(
                    &current,
                    StageState::RolledBack,
                    Cause::Rollback,
                    Some(actor.clone()),
                    Some(format!("replaced by {target}: {reason}")),
                )?;
            }
            w.redeploy(&target, Some(actor.clone()), Some(reason.clone()))?;
        }
        LaneEvent::AlarmChanged {
            alarm,
            state,
            at,
            reason,
        } => {
            if let Some(seen) = w.view.lane.alarms.get(alarm)
                && seen.at >= *at
            {
                return Err(TransitionError::StaleAlarm {
                    alarm: alarm.clone(),
                    at: *at,
                    seen: seen.at,
                });
            }
            w.lane().alarms.insert(
                alarm.clone(),
                AlarmSeen {
                    state: *state,
                    at: *at,
                },
            );
            let cause = match state {
                AlarmState::Alarm => Cause::AlarmFired,
                AlarmState::Ok => Cause::AlarmCleared,
                AlarmState::InsufficientData => Cause::AlarmNoData,
            };
            let detail = format!("{alarm}: {}", bounded(reason));
            w.transitions.push(Transition {
                actor: None,
                ..transition(cause, "", Some(detail.clone()))
            });
            let in_flight = w.view.lane.in_flight.clone();
            if let (AlarmState::Alarm, Some(id)) = (state, in_flight) {
                let held = w.state(&id);
                let restoring = w
                    .view
                    .releases
                    .get(&id)
                    .and_then(|r| r.stages.get(&environment))
                    .is_some_and(|s| s.redeploy);
                // A release being restored after a rollback is not rolled back again: a
                // flapping alarm rolls back once.
                if let Some(
                    st @ (StageState::Migrating
                    | StageState::Deploying
                    | StageState::Validating
                    | StageState::Baking),
                ) = held
                    && !restoring
                {
                    roll_back(&mut w, &id, st, Some(detail))?;
                }
            }
        }
        LaneEvent::Unblock { actor, reason } => {
            let holder = w.view.lane.in_flight.clone();
            let held = holder.as_ref().and_then(|id| w.state(id));
            match (holder, held) {
                (Some(id), Some(state)) if state.is_in_flight() => {
                    w.transitions.push(transition(
                        Cause::Unblocked,
                        actor,
                        Some(format!("{reason} (ends {id})")),
                    ));
                    w.end_in_flight(
                        &id,
                        state,
                        StageState::Cancelled,
                        Cause::Cancelled,
                        Some(actor.clone()),
                        Some(reason.clone()),
                        true,
                    )?;
                }
                (Some(id), _) => {
                    // The slot names a release that is not in flight here (an edit by hand,
                    // a bug): free it.
                    w.transitions.push(transition(
                        Cause::Unblocked,
                        actor,
                        Some(format!("{reason} (slot held by {id}, not in flight)")),
                    ));
                    w.finish()?;
                }
                (None, _) => {
                    // A gate is overridden by an operator's unblock (the alarm's OK may
                    // never arrive); a pause or a freeze is lifted by its own command.
                    let lane = &w.view.lane;
                    let queued = lane.queued.clone();
                    let startable = queued.as_ref().is_some_and(|q| {
                        w.state(q) == Some(StageState::Queued)
                            && lane.paused.is_none()
                            && !w.policy.frozen
                    });
                    let Some(q) = queued.filter(|_| startable) else {
                        return Err(TransitionError::NothingToUnblock {
                            service,
                            environment,
                        });
                    };
                    let holding = w.alarms_holding();
                    let detail = if holding.is_empty() {
                        reason.clone()
                    } else {
                        format!(
                            "{reason} (overriding the gate: {} in ALARM)",
                            holding.join(", ")
                        )
                    };
                    w.transitions
                        .push(transition(Cause::Unblocked, actor, Some(detail)));
                    w.start(&q, Cause::Dequeued, Some(actor.clone()))?;
                }
            }
        }
    }
    w.done()
}

#[cfg(test)]
mod tests;
