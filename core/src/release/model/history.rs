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
    /// Why a person must act now, when one must: its notification is an alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
}

spelled! {
    /// Why a person must act after a change: what its notification alerts on, whatever
    /// else it announces. Shiplane has done all it can; what runs may be wrong until then.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Alert {
        /// A release ended here but still runs, and there is no last known good to put
        /// back over it.
        NothingToRestore = "nothing_to_restore",
        /// CodeDeploy's rollback deployment failed: what runs is unknown.
        RollbackFailed = "rollback_failed",
        /// AWS would not stop a deployment Shiplane ended.
        StopFailed = "stop_failed",
        /// A deployment or migration had no outcome by its deadline.
        PastDeadline = "past_deadline",
        /// An alarm fired while a released version was still watched after its bake: it
        /// was rolled back to the release before it. Why it failed is for a person.
        AlarmAfterRelease = "alarm_after_release",
        /// A service this release's success was to restart (`restarts`) could not be:
        /// it still runs tasks started before the release.
        RestartFailed = "restart_failed",
        /// A service stopped for a `stop-first` migration could not be started again: it
        /// serves nothing until a person scales it up.
        AppDown = "app_down",
        /// A release that ended here still runs, and is not replaced: its `stop-first`
        /// migration changed the schema the last known good was built for.
        SchemaMoved = "schema_moved",
        /// Written by a newer Shiplane; shown as it is.
        #[serde(other)]
        Other = "other",
    }
}

impl Alert {
    /// The alert a change with this cause raises by itself: a failed rollback or stop, a
    /// stage failed at its deadline (an approval nobody gave in time is cancelled, no one's
    /// emergency).
    pub fn of(cause: Cause, to: Option<StageState>) -> Option<Alert> {
        match cause {
            Cause::RollbackFailed => Some(Alert::RollbackFailed),
            Cause::StopFailed => Some(Alert::StopFailed),
            Cause::RestartFailed => Some(Alert::RestartFailed),
            Cause::AppStartFailed => Some(Alert::AppDown),
            Cause::TimedOut if to == Some(StageState::Failed) => Some(Alert::PastDeadline),
            _ => None,
        }
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

spelled! {
    /// Why a transition happened: the closed set of causes recorded in history and sent in
    /// notifications (spelled in snake_case there).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Cause {
        Arrived = "arrived",
        /// A queued release started because the lane became free.
        Dequeued = "dequeued",
        Approved = "approved",
        Rejected = "rejected",
        Cancelled = "cancelled",
        TagAdded = "tag_added",
        MigrationStarted = "migration_started",
        MigrationSucceeded = "migration_succeeded",
        MigrationFailed = "migration_failed",
        DeploymentCreated = "deployment_created",
        ValidationStarted = "validation_started",
        DeploymentBlocked = "deployment_blocked",
        DeploymentSucceeded = "deployment_succeeded",
        DeploymentFailed = "deployment_failed",
        BakeElapsed = "bake_elapsed",
        AlarmFired = "alarm_fired",
        /// A watched alarm returned to OK.
        AlarmCleared = "alarm_cleared",
        /// A watched alarm has too little data to say.
        AlarmNoData = "alarm_no_data",
        ActionFailed = "action_failed",
        /// The state's deadline passed and AWS had no outcome to report.
        TimedOut = "timed_out",
        /// A deployment was asked to stop (after a cancel, a timeout or an alarm).
        StopRequested = "stop_requested",
        /// Stopping a deployment failed; the reason says what to do by hand.
        StopFailed = "stop_failed",
        /// One lifecycle-hook check passed or failed (name, latency, excerpt in the detail).
        CheckPassed = "check_passed",
        CheckFailed = "check_failed",
        /// A lifecycle hook reported Succeeded or Failed to CodeDeploy.
        HookSucceeded = "hook_succeeded",
        HookFailed = "hook_failed",
        /// The bake timer (an EventBridge Scheduler schedule) was set, or cleared because the
        /// bake ended another way; or setting or clearing it failed (the reconciler ends the
        /// bake all the same).
        TimerSet = "timer_set",
        TimerCleared = "timer_cleared",
        TimerFailed = "timer_failed",
        /// CodeDeploy's automatic rollback deployment of the stage's deployment reported (a
        /// hook answered, or it succeeded), or failed: a person must act.
        CodeDeployRollback = "codedeploy_rollback",
        RollbackFailed = "rollback_failed",
        /// A newer release took its place in the queue, or it arrived after a newer one.
        Superseded = "superseded",
        /// The last known good release is deployed again after a rollback, or an operator
        /// rolled the environment back.
        Rollback = "rollback",
        /// It succeeded here and goes no further: the next environment does not accept its
        /// tags (the detail says which and why).
        NotPromoted = "not_promoted",
        /// An operator ended a bake early.
        PromotedEarly = "promoted_early",
        /// An operator tried a failed, rolled back or cancelled stage again.
        Retried = "retried",
        /// An invocation took over a deployment or migration that another left unfinished
        /// past its lease.
        ActionResumed = "action_resumed",
        /// Its deployment was replaced by another release's that landed late (on a rolling
        /// service the newest UpdateService wins), so it is deployed again.
        Redeployed = "redeployed",
        /// An operator deployed an image by digest, without a push.
        Deployed = "deployed",
        /// A service named in `restarts` was restarted (new tasks of the revision it runs)
        /// after this release succeeded: recorded in both services' histories.
        Restarted = "restarted",
        /// That restart failed for good: a person restarts the service.
        RestartFailed = "restart_failed",
        /// Older task-definition revisions of the environment were deregistered after a
        /// success (`keep`), or the clean-up stopped with the reason.
        CleanedUp = "cleaned_up",
        /// The service was scaled to zero for a `stop-first` migration: the outage begins.
        AppStopped = "app_stopped",
        /// The service stopped for a migration serves again (the new version deployed, or
        /// the revision it ran started again): the outage ended, its length in the detail.
        AppStarted = "app_started",
        /// Starting it again failed for good: a person scales it up.
        AppStartFailed = "app_start_failed",
        Paused = "paused",
        Resumed = "resumed",
        /// An operator freed the lane of whatever held it.
        Unblocked = "unblocked",
        /// Written by a newer Shiplane; shown as it is.
        #[serde(other)]
        Other = "other",
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
