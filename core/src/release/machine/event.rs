//! The events of one release in one environment, and what each records (its cause, actor
//! and bounded detail): the vocabulary [`apply`](fn@super::apply) decides on, kept apart from the
//! table so that it reads as a list.

use crate::release::model::{Cause, Timestamp};

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
    /// A data-job stage's deploy action registered its families' revisions and moved the
    /// triggers pinned to them: its success, recorded with what changed (`triggers`, one
    /// line per trigger, those left as they are too).
    JobsUpdated {
        task_definitions: Vec<String>,
        triggers: Vec<String>,
    },
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
    ///
    /// [`Action::StopDeployment`]: super::Action::StopDeployment
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
    ///
    /// [`Action::SetTimer`]: super::Action::SetTimer
    /// [`Action::ClearTimer`]: super::Action::ClearTimer
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
    /// The outcome of [`Action::Restart`]: the dependent service's ECS deployment that
    /// starts its new tasks, or `error` when ECS refused for good.
    ///
    /// [`Action::Restart`]: super::Action::Restart
    Restarted {
        service: String,
        deployment_id: Option<String>,
        error: Option<String>,
        /// The success it was for (its `succeeded_at`): one for an earlier success of the
        /// same release (restored since) leaves the newer success's restart owed.
        since: Timestamp,
    },
    /// The outcome of [`Action::CleanUp`]: the revisions deregistered, or why it stopped.
    ///
    /// [`Action::CleanUp`]: super::Action::CleanUp
    CleanedUp {
        deregistered: Vec<String>,
        error: Option<String>,
    },
    /// The service was scaled to zero for this release's `stop-first` migration (from
    /// `desired` tasks; None when ECS's answer was lost, so it may or may not have been);
    /// `running` of its tasks had not stopped yet.
    AppStopped {
        desired: Option<u32>,
        running: u32,
    },
    /// The outcome of [`Action::StartApp`]: the ECS deployment that starts the stopped
    /// service again on the revision it ran (none when it already ran), or `error`.
    ///
    /// [`Action::StartApp`]: super::Action::StartApp
    AppStarted {
        deployment_id: Option<String>,
        error: Option<String>,
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
            Event::DeploymentSucceeded | Event::JobsUpdated { .. } => Cause::DeploymentSucceeded,
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
            Event::Restarted { error: None, .. } => Cause::Restarted,
            Event::Restarted { error: Some(_), .. } => Cause::RestartFailed,
            Event::CleanedUp { .. } => Cause::CleanedUp,
            Event::AppStopped { .. } => Cause::AppStopped,
            Event::AppStarted { error: None, .. } => Cause::AppStarted,
            Event::AppStarted { error: Some(_), .. } => Cause::AppStartFailed,
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

    pub(super) fn actor(&self) -> Option<String> {
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

    pub(super) fn detail(&self) -> Option<String> {
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
            Event::JobsUpdated {
                task_definitions,
                triggers,
            } => Some(jobs_updated(task_definitions, triggers)),
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
            Event::Restarted { .. } | Event::CleanedUp { .. } => after_success(self),
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

/// What a success's own work (a dependent's restart, the clean-up) records.
fn after_success(event: &Event) -> Option<String> {
    match event {
        Event::Restarted {
            service,
            deployment_id,
            error: None,
            ..
        } => Some(format!(
            "{service}: new tasks of the revision it runs ({})",
            deployment_id.as_deref().unwrap_or("ECS deployment")
        )),
        Event::Restarted {
            service,
            error: Some(e),
            ..
        } => Some(format!(
            "{service} was not restarted: {e}; restart it by hand (aws ecs update-service --force-new-deployment)"
        )),
        Event::CleanedUp {
            deregistered,
            error,
        } => Some(match (deregistered.is_empty(), error) {
            (_, Some(e)) => format!(
                "deregistered {}, then stopped: {e}; the next success here cleans up again",
                if deregistered.is_empty() {
                    "none".to_string()
                } else {
                    deregistered.join(", ")
                }
            ),
            (true, None) => "nothing beyond what is kept".to_string(),
            (false, None) => format!("deregistered {}", deregistered.join(", ")),
        }),
        _ => None,
    }
}

/// What a data-job stage changed: its revisions (`family:N`), then each trigger.
fn jobs_updated(task_definitions: &[String], triggers: &[String]) -> String {
    let revisions: Vec<&str> = task_definitions
        .iter()
        .map(|td| td.rsplit('/').next().unwrap_or(td))
        .collect();
    let mut out = format!("registered {}", revisions.join(", "));
    if triggers.is_empty() {
        out.push_str("; no trigger is pinned to a revision of these families");
    }
    for t in triggers {
        out.push_str("; ");
        out.push_str(t);
    }
    out
}

/// How much free text (a failure reason, an AWS message) one history item keeps.
pub const MAX_DETAIL: usize = 1000;

pub(super) fn bounded(text: &str) -> String {
    if text.len() <= MAX_DETAIL {
        return text.to_string();
    }
    let mut end = MAX_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
