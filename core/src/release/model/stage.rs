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

/// One release in one environment: the state it is in, with what only that state has
/// ([`Phase`]), and what it keeps across states (its deployment, its revision, its tries).
///
/// Stored flat ([`Stored`]), the shape items had before the phase was typed: reading an
/// older item moves what it kept in the wrong place (a migration's task ARN under
/// `deployment_id`) and drops what its state cannot have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct Stage {
    /// The state, with what only that state has.
    pub phase: Phase,
    pub since: Timestamp,
    /// The CodeDeploy deployment id, or the ECS deployment id of a rolling service, once
    /// one exists; kept after the stage ends, to know a late event of it.
    pub deployment_id: Option<String>,
    /// Who approved entry, when the environment asks for approval.
    pub approved_by: Option<String>,
    /// Why the stage ended the way it did (failure reason, alarm name, rejecting actor's note).
    pub reason: Option<String>,
    /// When it last succeeded here; the mark that makes it eligible as last known good.
    pub succeeded_at: Option<Timestamp>,
    /// This deployment restores the release after a newer one was rolled back.
    pub redeploy: bool,
    /// When this state is overdue: the reconciler asks AWS for the truth then, and ends
    /// the stage if AWS has none (every non-terminal state has one, but `queued`, which
    /// waits for a release that has one).
    pub deadline: Option<Timestamp>,
    /// Which attempt at this stage this is: 0, then one more for every `shiplane retry`.
    pub attempt: u32,
    /// The task-definition revision this attempt deployed here: a restore deploys it again
    /// instead of registering another.
    pub task_definition: Option<String>,
    /// How many deployments of this restore of the last known good failed (each is tried
    /// again, up to [`crate::release::RESTORE_TRIES`]).
    pub restore_failures: u32,
    /// How often this stage's action was taken over after its lease ran out: the
    /// invocation that ran it before may have left its effect (a deployment) unrecorded,
    /// so the next run looks for it first.
    pub resumed: u32,
    /// Deployments this stage ran that ended and were replaced by another try (a restore
    /// tried again, a deployment made again after a late one replaced it): a late hook or
    /// answer of one of them is not taken for the try that runs now.
    pub ended: Vec<String>,
    /// Counts up each time a late deployment of another release may have replaced the
    /// one this stage was still making (a rolling service: the newest UpdateService
    /// wins): the outcome of a deploy action issued before is refused, and the action is
    /// made again.
    pub fence: u32,
    /// When this stage's history was last written: a change decided later (by a decision
    /// that lost a race and decided again) is never recorded before it.
    pub noted: Option<Timestamp>,
}

/// The state a stage is in, with the data only that state has: a queued release's pause,
/// a migration's task, an action's lease, a bake's end, a success's owed promotion. What a
/// state cannot have, it cannot hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// See [`StageState::Queued`].
    Queued {
        /// Sent back by a busy deployment group: not tried again before this.
        not_before: Option<Timestamp>,
    },
    /// See [`StageState::AwaitingApproval`].
    AwaitingApproval,
    /// See [`StageState::Migrating`].
    Migrating {
        /// The migration task's ARN, once it is recorded.
        task: Option<String>,
        /// Until when the invocation that started the migration owns it
        /// ([`crate::release::LEASE`]); none (an item written before leases): expired.
        lease: Option<Timestamp>,
    },
    /// See [`StageState::Deploying`].
    Deploying {
        /// Until when the invocation that started the deployment owns it; none: expired.
        lease: Option<Timestamp>,
    },
    /// See [`StageState::Validating`].
    Validating,
    /// See [`StageState::Baking`].
    Baking {
        /// When the bake ends.
        until: Timestamp,
    },
    /// See [`StageState::Succeeded`].
    Succeeded {
        /// The environment this release is owed a promotion to, recorded with its success
        /// so that a promotion lost to a crash is still owed (and done once) afterwards.
        promote_to: Option<String>,
        /// The dependent services (`restarts`) this success still owes a restart, recorded
        /// with it for the same reason; each leaves the list once restarted.
        restarts: Vec<String>,
        /// Owes the clean-up of the environment's older revisions (`keep`), done by the
        /// reconciler's next pass.
        clean_up: bool,
        /// Why it goes no further though the service has a next environment: that
        /// environment does not accept its tags.
        not_promoted: Option<String>,
    },
    /// See [`StageState::Failed`].
    Failed,
    /// See [`StageState::RolledBack`].
    RolledBack,
    /// See [`StageState::Superseded`].
    Superseded,
    /// See [`StageState::Rejected`].
    Rejected,
    /// See [`StageState::Cancelled`].
    Cancelled,
}

impl Phase {
    /// `state` as just entered at `now`, with nothing of its own known yet (a bake that
    /// ends at once, no lease: its owner sets them).
    pub fn fresh(state: StageState, now: Timestamp) -> Phase {
        use StageState as S;
        match state {
            S::Queued => Phase::Queued { not_before: None },
            S::AwaitingApproval => Phase::AwaitingApproval,
            S::Migrating => Phase::Migrating {
                task: None,
                lease: None,
            },
            S::Deploying => Phase::Deploying { lease: None },
            S::Validating => Phase::Validating,
            S::Baking => Phase::Baking { until: now },
            S::Succeeded => Phase::Succeeded {
                promote_to: None,
                restarts: Vec::new(),
                clean_up: false,
                not_promoted: None,
            },
            S::Failed => Phase::Failed,
            S::RolledBack => Phase::RolledBack,
            S::Superseded => Phase::Superseded,
            S::Rejected => Phase::Rejected,
            S::Cancelled => Phase::Cancelled,
        }
    }

    /// Which state this is.
    pub fn state(&self) -> StageState {
        use StageState as S;
        match self {
            Phase::Queued { .. } => S::Queued,
            Phase::AwaitingApproval => S::AwaitingApproval,
            Phase::Migrating { .. } => S::Migrating,
            Phase::Deploying { .. } => S::Deploying,
            Phase::Validating => S::Validating,
            Phase::Baking { .. } => S::Baking,
            Phase::Succeeded { .. } => S::Succeeded,
            Phase::Failed => S::Failed,
            Phase::RolledBack => S::RolledBack,
            Phase::Superseded => S::Superseded,
            Phase::Rejected => S::Rejected,
            Phase::Cancelled => S::Cancelled,
        }
    }
}

impl Stage {
    /// A stage entered at `now`, with nothing else known yet.
    pub fn new(state: StageState, now: Timestamp) -> Stage {
        Stage::in_phase(Phase::fresh(state, now), now)
    }

    /// A stage entered at `now` in `phase`.
    pub fn in_phase(phase: Phase, now: Timestamp) -> Stage {
        Stage {
            phase,
            since: now,
            deployment_id: None,
            approved_by: None,
            reason: None,
            succeeded_at: None,
            redeploy: false,
            deadline: None,
            attempt: 0,
            task_definition: None,
            restore_failures: 0,
            resumed: 0,
            ended: Vec::new(),
            fence: 0,
            noted: None,
        }
    }

    /// The state it is in.
    pub fn state(&self) -> StageState {
        self.phase.state()
    }

    /// What the stage's action started and recorded: the migration task while migrating,
    /// else the deployment.
    pub fn started(&self) -> Option<&str> {
        match &self.phase {
            Phase::Migrating { task, .. } => task.as_deref(),
            _ => self.deployment_id.as_deref(),
        }
    }

    /// Records what the stage's action started: the migration task while migrating, else
    /// the deployment.
    pub fn set_started(&mut self, id: String) {
        match &mut self.phase {
            Phase::Migrating { task, .. } => *task = Some(id),
            _ => self.deployment_id = Some(id),
        }
    }

    /// Until when the invocation running the stage's action owns it; none when the state
    /// runs no action of its own, or the lease is unknown (expired).
    pub fn lease(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Migrating { lease, .. } | Phase::Deploying { lease } => lease,
            _ => None,
        }
    }

    /// Gives the invocation that runs the stage's action (migrating, deploying) its lease
    /// until `until`; a state with no action of its own has no lease to give.
    pub fn set_lease(&mut self, until: Timestamp) {
        if let Phase::Migrating { lease, .. } | Phase::Deploying { lease } = &mut self.phase {
            *lease = Some(until);
        }
    }

    /// When the bake ends, while baking.
    pub fn bake_until(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Baking { until } => Some(until),
            _ => None,
        }
    }

    /// Not tried again before this, while queued after a busy deployment group.
    pub fn not_before(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Queued { not_before } => not_before,
            _ => None,
        }
    }

    /// The environment a success here is owed a promotion to.
    pub fn promote_to(&self) -> Option<&str> {
        match &self.phase {
            Phase::Succeeded { promote_to, .. } => promote_to.as_deref(),
            _ => None,
        }
    }

    /// Why a success here goes no further, when the next environment refused its tags.
    pub fn not_promoted(&self) -> Option<&str> {
        match &self.phase {
            Phase::Succeeded { not_promoted, .. } => not_promoted.as_deref(),
            _ => None,
        }
    }

    /// `service` was restarted (or failed to be, for good): true when this success still
    /// owed it, which it no longer does.
    pub fn restarted(&mut self, service: &str) -> bool {
        match &mut self.phase {
            Phase::Succeeded { restarts, .. } => {
                let before = restarts.len();
                restarts.retain(|s| s != service);
                restarts.len() != before
            }
            _ => false,
        }
    }

    /// Whether a success here still owes the clean-up of older revisions.
    pub fn owes_clean_up(&self) -> bool {
        matches!(self.phase, Phase::Succeeded { clean_up: true, .. })
    }

    /// The clean-up was done (or failed for good): true when this success still owed it.
    pub fn cleaned_up(&mut self) -> bool {
        match &mut self.phase {
            Phase::Succeeded { clean_up, .. } => std::mem::replace(clean_up, false),
            _ => false,
        }
    }

    /// The dependent services a success here still owes a restart.
    pub fn restarts(&self) -> &[String] {
        match &self.phase {
            Phase::Succeeded { restarts, .. } => restarts,
            _ => &[],
        }
    }
}

/// A stage as stored and printed (`--json`): flat, every field under the name it has
/// always had, plus `migration_task`. Older items read through it too
/// ([`Stored::into_stage`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    state: StageState,
    since: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    migration_task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    succeeded_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    redeploy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bake_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promote_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    restarts: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    clean_up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_promoted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    restore_failures: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    resumed: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ended: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    fence: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    noted: Option<Timestamp>,
}

/// Whether `id` names an ECS task (`arn:aws:ecs:<region>:<account>:task/…`): what a
/// migration recorded under `deployment_id` before it had a field of its own.
fn is_task_arn(id: &str) -> bool {
    id.starts_with("arn:") && id.contains(":task/")
}

impl From<Stored> for Stage {
    /// Reads a stored stage, of this shape or an older one: a migration's task ARN kept
    /// under `deployment_id` moves to the migration (or, once the migration ended, is
    /// dropped: the stage's history names it); what the state cannot have is dropped; a
    /// bake with no end recorded ends at its deadline, or at once.
    fn from(s: Stored) -> Stage {
        use StageState as S;
        let (mut deployment_id, mut migration_task) = (s.deployment_id, s.migration_task);
        if deployment_id.as_deref().is_some_and(is_task_arn) {
            let task = deployment_id.take();
            migration_task = migration_task.or(task);
        }
        let phase = match s.state {
            S::Queued => Phase::Queued {
                not_before: s.not_before,
            },
            S::Migrating => Phase::Migrating {
                task: migration_task,
                lease: s.lease,
            },
            S::Deploying => Phase::Deploying { lease: s.lease },
            S::Baking => Phase::Baking {
                until: s.bake_until.or(s.deadline).unwrap_or(s.since),
            },
            S::Succeeded => Phase::Succeeded {
                promote_to: s.promote_to,
                restarts: s.restarts,
                clean_up: s.clean_up,
                not_promoted: s.not_promoted,
            },
            other => Phase::fresh(other, s.since),
        };
        Stage {
            phase,
            since: s.since,
            deployment_id,
            approved_by: s.approved_by,
            reason: s.reason,
            succeeded_at: s.succeeded_at,
            redeploy: s.redeploy,
            deadline: s.deadline,
            attempt: s.attempt,
            task_definition: s.task_definition,
            restore_failures: s.restore_failures,
            resumed: s.resumed,
            ended: s.ended,
            fence: s.fence,
            noted: s.noted,
        }
    }
}

impl From<Stage> for Stored {
    fn from(stage: Stage) -> Stored {
        let state = stage.state();
        let (bake_until, not_before, lease) =
            (stage.bake_until(), stage.not_before(), stage.lease());
        let promote_to = stage.promote_to().map(str::to_string);
        let restarts = stage.restarts().to_vec();
        let clean_up = stage.owes_clean_up();
        let not_promoted = stage.not_promoted().map(str::to_string);
        let migration_task = match stage.phase {
            Phase::Migrating { task, .. } => task,
            _ => None,
        };
        Stored {
            state,
            since: stage.since,
            deployment_id: stage.deployment_id,
            migration_task,
            approved_by: stage.approved_by,
            reason: stage.reason,
            succeeded_at: stage.succeeded_at,
            redeploy: stage.redeploy,
            deadline: stage.deadline,
            bake_until,
            not_before,
            attempt: stage.attempt,
            promote_to,
            restarts,
            clean_up,
            not_promoted,
            task_definition: stage.task_definition,
            lease,
            restore_failures: stage.restore_failures,
            resumed: stage.resumed,
            ended: stage.ended,
            fence: stage.fence,
            noted: stage.noted,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
