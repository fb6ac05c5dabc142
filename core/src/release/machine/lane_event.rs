//! Events on a whole lane (an operator's pause, resume, unblock or rollback, an alarm's
//! change): the vocabulary of [`apply_lane`](fn@super::apply_lane), separate from one release's events.

use crate::release::model::{AlarmState, ReleaseId, Restart, Timestamp};

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
    /// This rolling service was restarted because another service's release succeeded
    /// here (that stage's `restarts`): recorded in its own history too.
    Restarted(Restart),
}
