//! What a change records (Transition) and why it happened (Cause): the history items and
//! notifications, with the spelling they are stored and sent in. Apart from the state
//! they describe: they record its changes, not the state itself.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ReleaseId, StageState, Timestamp};

/// One recorded change: a history item and a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Timestamp,
    pub service: String,
    pub environment: String,
    /// None for lane events (pause, resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<StageState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<StageState>,
    /// The event that caused it.
    pub cause: Cause,
    /// The person, for operator actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Free text: a failure reason, an alarm name, the superseding release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a transition happened: the closed set of causes recorded in history and sent in
/// notifications (spelled in snake_case there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Arrived,
    /// A queued release started because the lane became free.
    Dequeued,
    Approved,
    Rejected,
    Cancelled,
    TagAdded,
    MigrationStarted,
    MigrationSucceeded,
    MigrationFailed,
    DeploymentCreated,
    ValidationStarted,
    DeploymentBlocked,
    DeploymentSucceeded,
    DeploymentFailed,
    BakeElapsed,
    AlarmFired,
    /// A watched alarm returned to OK.
    AlarmCleared,
    /// A watched alarm has too little data to say.
    AlarmNoData,
    ActionFailed,
    /// The state's deadline passed and AWS had no outcome to report.
    TimedOut,
    /// A deployment was asked to stop (after a cancel, a timeout or an alarm).
    StopRequested,
    /// Stopping a deployment failed; the reason says what to do by hand.
    StopFailed,
    /// One lifecycle-hook check passed or failed (name, latency, excerpt in the detail).
    CheckPassed,
    CheckFailed,
    /// A lifecycle hook reported Succeeded or Failed to CodeDeploy.
    HookSucceeded,
    HookFailed,
    /// The bake timer (an EventBridge Scheduler schedule) was set, or cleared because the
    /// bake ended another way; or setting or clearing it failed (the reconciler ends the
    /// bake all the same).
    TimerSet,
    TimerCleared,
    TimerFailed,
    /// CodeDeploy's automatic rollback deployment of the stage's deployment reported (a
    /// hook answered, or it succeeded), or failed: a person must act.
    CodeDeployRollback,
    RollbackFailed,
    /// A newer release took its place in the queue, or it arrived after a newer one.
    Superseded,
    /// The last known good release is deployed again after a rollback, or an operator
    /// rolled the environment back.
    Rollback,
    /// An operator ended a bake early.
    PromotedEarly,
    /// An operator tried a failed, rolled back or cancelled stage again.
    Retried,
    /// An invocation took over a deployment or migration that another left unfinished
    /// past its lease.
    ActionResumed,
    /// Its deployment was replaced by another release's that landed late (on a rolling
    /// service the newest UpdateService wins), so it is deployed again.
    Redeployed,
    /// An operator deployed an image by digest, without a push.
    Deployed,
    Paused,
    Resumed,
    /// An operator freed the lane of whatever held it.
    Unblocked,
    /// Written by a newer Shiplane; shown as it is.
    #[serde(other)]
    Other,
}

impl Cause {
    /// The spelling in history, logs and notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Arrived => "arrived",
            Cause::Dequeued => "dequeued",
            Cause::Approved => "approved",
            Cause::Rejected => "rejected",
            Cause::Cancelled => "cancelled",
            Cause::TagAdded => "tag_added",
            Cause::MigrationStarted => "migration_started",
            Cause::MigrationSucceeded => "migration_succeeded",
            Cause::MigrationFailed => "migration_failed",
            Cause::DeploymentCreated => "deployment_created",
            Cause::ValidationStarted => "validation_started",
            Cause::DeploymentBlocked => "deployment_blocked",
            Cause::DeploymentSucceeded => "deployment_succeeded",
            Cause::DeploymentFailed => "deployment_failed",
            Cause::BakeElapsed => "bake_elapsed",
            Cause::AlarmFired => "alarm_fired",
            Cause::AlarmCleared => "alarm_cleared",
            Cause::AlarmNoData => "alarm_no_data",
            Cause::ActionFailed => "action_failed",
            Cause::TimedOut => "timed_out",
            Cause::StopRequested => "stop_requested",
            Cause::StopFailed => "stop_failed",
            Cause::CheckPassed => "check_passed",
            Cause::CheckFailed => "check_failed",
            Cause::HookSucceeded => "hook_succeeded",
            Cause::HookFailed => "hook_failed",
            Cause::TimerSet => "timer_set",
            Cause::TimerCleared => "timer_cleared",
            Cause::TimerFailed => "timer_failed",
            Cause::CodeDeployRollback => "codedeploy_rollback",
            Cause::RollbackFailed => "rollback_failed",
            Cause::Superseded => "superseded",
            Cause::Rollback => "rollback",
            Cause::PromotedEarly => "promoted_early",
            Cause::Retried => "retried",
            Cause::ActionResumed => "action_resumed",
            Cause::Redeployed => "redeployed",
            Cause::Deployed => "deployed",
            Cause::Paused => "paused",
            Cause::Resumed => "resumed",
            Cause::Unblocked => "unblocked",
            Cause::Other => "other",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
