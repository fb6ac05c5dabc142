//! Releases and the pure state machine that moves them through environments.
//!
//! `apply(view, event) → (new view, transitions, actions)`: no AWS types, no I/O, no clock.
//! Handlers load a [`LaneView`], call [`apply`], commit the result with a conditional write,
//! and only then execute the [`Action`]s. [`intake`] decides what a push becomes, and
//! [`owed`] what a lane still owes whichever release it belongs to.

pub mod intake;
mod machine;
mod model;

pub use machine::{
    Action, BLOCKED_RETRY, Deadlines, Decision, Event, LEASE, LaneEvent, MAX_DETAIL, Owed, Policy,
    TransitionError, apply, apply_lane, outlasting_outage, owed, owed_clean_up, pending_action,
    persisting_alarm,
};
#[cfg(any(test, feature = "testing"))]
pub use model::seeded;
pub use model::{
    AlarmSeen, AlarmState, Alert, Cause, Digest, Down, InvalidInput, Lane, LaneView, MAX_TAGS,
    Pause, Phase, Release, ReleaseId, Restart, Schema, Stage, StageState, Timestamp, Transition,
    Unsettled, Watch, escaped, pushed_before, validate_tag,
};
