//! One release in one environment: the closed set of states (StageState) and the stored
//! stage with everything the machine keeps about it (Stage). Its own file: the stage is
//! what the machine changes, and its fields are most of the model.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Timestamp;

spelled! {
    /// The closed set of states a release can be in, in one environment.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum StageState {
        /// Waiting for the deployment in flight (or a pause, or a freeze) to end.
        Queued = "queued",
        /// Waiting for a person to approve entry into the environment.
        AwaitingApproval = "awaiting_approval",
        /// The one-off migration task runs with the new image.
        Migrating = "migrating",
        /// The deployment (or service update, or revision registration) is under way.
        Deploying = "deploying",
        /// CodeDeploy lifecycle hooks are checking the new version.
        Validating = "validating",
        /// Deployed; watched for alarms until the bake time ends.
        Baking = "baking",
        /// Released and baked: this release is the environment's last known good.
        Succeeded = "succeeded",
        /// Migration, deployment or a step failed; nothing of it is live.
        Failed = "failed",
        /// Stopped by an alarm and rolled back.
        RolledBack = "rolled_back",
        /// A newer release arrived while this one waited; it never deploys.
        Superseded = "superseded",
        /// A person rejected it at an approval.
        Rejected = "rejected",
        /// A person cancelled it before it deployed.
        Cancelled = "cancelled",
    }
}

impl StageState {
    /// Every state, for exhaustive tests and documentation.
    pub const ALL: [StageState; 12] = [
        StageState::Queued,
        StageState::AwaitingApproval,
        StageState::Migrating,
        StageState::Deploying,
        StageState::Validating,
        StageState::Baking,
        StageState::Succeeded,
        StageState::Failed,
        StageState::RolledBack,
        StageState::Superseded,
        StageState::Rejected,
        StageState::Cancelled,
    ];

    /// Occupies the environment: the lane's one slot for work in flight.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            StageState::Migrating
                | StageState::Deploying
                | StageState::Validating
                | StageState::Baking
        )
    }

    /// Waits in the lane's queue slot.
    pub fn is_waiting(self) -> bool {
        matches!(self, StageState::Queued | StageState::AwaitingApproval)
    }

    /// No event moves it any more.
    pub fn is_terminal(self) -> bool {
        !self.is_in_flight() && !self.is_waiting()
    }
}

impl fmt::Display for StageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One release in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub state: StageState,
    pub since: Timestamp,
    /// The CodeDeploy deployment id (or ECS deployment id) once one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Who approved entry, when the environment asks for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Why the stage ended the way it did (failure reason, alarm name, rejecting actor's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it last succeeded here; the mark that makes it eligible as last known good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<Timestamp>,
    /// This deployment restores the release after a newer one was rolled back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redeploy: bool,
    /// When this state is overdue: the reconciler asks AWS for the truth then, and ends
    /// the stage if AWS has none (every non-terminal state has one, but `queued`, which
    /// waits for a release that has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// When the bake ends (state `baking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_until: Option<Timestamp>,
    /// A queued release sent back by a busy deployment group is not retried before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    /// Which attempt at this stage this is: 0, then one more for every `shiplane retry`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The environment this release is owed a promotion to, recorded with its success so
    /// that a promotion lost to a crash is still owed (and done once) afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_to: Option<String>,
    /// The task-definition revision this attempt deployed here: a restore deploys it again
    /// instead of registering another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// Until when the invocation that moved the stage into deploying or migrating owns the
    /// action it runs ([`crate::release::LEASE`]); none (an item written before leases): expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Timestamp>,
    /// How many deployments of this restore of the last known good failed (each is tried
    /// again, up to [`crate::release::RESTORE_TRIES`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restore_failures: u32,
    /// How often this stage's action was taken over after its lease ran out: the
    /// invocation that ran it before may have left its effect (a deployment) unrecorded,
    /// so the next run looks for it first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resumed: u32,
    /// Deployments this stage ran that ended and were replaced by another try (a restore
    /// tried again, a deployment made again after a late one replaced it): a late hook or
    /// answer of one of them is not taken for the try that runs now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<String>,
    /// Counts up each time a late deployment of another release may have replaced the
    /// one this stage was still making (a rolling service: the newest UpdateService
    /// wins): the outcome of a deploy action issued before is refused, and the action is
    /// made again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fence: u32,
    /// When this stage's history was last written: a change decided later (by a decision
    /// that lost a race and decided again) is never recorded before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noted: Option<Timestamp>,
}

impl Stage {
    /// A stage entered at `now`, with nothing else known yet.
    pub fn new(state: StageState, now: Timestamp) -> Stage {
        Stage {
            state,
            since: now,
            deployment_id: None,
            approved_by: None,
            reason: None,
            succeeded_at: None,
            redeploy: false,
            deadline: None,
            bake_until: None,
            not_before: None,
            attempt: 0,
            promote_to: None,
            task_definition: None,
            lease: None,
            restore_failures: 0,
            resumed: 0,
            ended: Vec::new(),
            fence: 0,
            noted: None,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
