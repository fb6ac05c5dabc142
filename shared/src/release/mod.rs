//! Releases and the pure state machine that moves them through environments.
//!
//! `apply(view, event) → (new view, transitions, actions)`: no AWS types, no I/O, no clock.
//! Handlers load a [`LaneView`], call [`apply`], commit the result with a conditional write,
//! and only then execute the [`Action`]s.

mod machine;
mod model;

pub use machine::{
    Action, Decision, Event, LaneEvent, Policy, TransitionError, apply, apply_lane, pending_action,
};
pub use model::{
    Digest, InvalidInput, Lane, LaneView, Pause, Release, ReleaseId, Stage, StageState, Timestamp,
    Transition, validate_tag,
};
