//! What the machine answers: the [`Action`]s a handler executes after committing, and the
//! [`Decision`] that carries them with the new view. Separate from the tables that make them.

use std::collections::BTreeSet;

use crate::release::model::{LaneView, ReleaseId, Timestamp, Transition};

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
    /// Restart `service` (a rolling service named in this stage's `restarts`): new tasks of
    /// the revision it runs, unless tasks started since the release succeeded here.
    Restart {
        release: ReleaseId,
        environment: String,
        service: String,
    },
    /// Start the service this release's `stop-first` migration stopped again, on the
    /// revision it runs, at the desired count it had: the release goes no further here.
    StartApp {
        release: ReleaseId,
        environment: String,
        /// The desired count the lane recorded, for a service at zero whose tag is gone.
        desired: Option<u32>,
    },
    /// Deregister the task-definition revisions Shiplane registered for this environment
    /// beyond the newest `keep`, never one of a release in `protect` (what the lane runs,
    /// last knew good, may roll back to, is deploying or holds queued).
    CleanUp {
        release: ReleaseId,
        environment: String,
        keep: u32,
        protect: Vec<ReleaseId>,
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
            | Action::Restart { release, .. }
            | Action::StartApp { release, .. }
            | Action::CleanUp { release, .. }
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

pub(super) fn action_name(action: &Action) -> &'static str {
    match action {
        Action::RunMigration { .. } => "the migration",
        _ => "the deployment",
    }
}
