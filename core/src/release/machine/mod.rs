//! The release state machine: one pure function per kind of event.
//!
//! Split by concept: what happens (`event`, `lane_event`), what the environment's
//! configuration allows (`policy`), what the machine answers (`action`, `error`), the
//! tables that decide (`apply`, `apply_lane`) with the steps they share (`work`,
//! `arrive`, `undo`), and what a lane still owes (`owed`).

mod action;
mod apply;
mod apply_lane;
mod arrive;
mod error;
mod event;
mod lane_event;
mod outage;
mod outcome;
mod owed;
mod policy;
mod schema;
mod undo;
mod unsettled;
mod work;

pub use action::{Action, Decision};
pub use apply::apply;
pub use apply_lane::apply_lane;
pub use error::TransitionError;
pub use event::{Event, MAX_DETAIL};
pub use lane_event::LaneEvent;
pub use owed::{Owed, outlasting_outage, owed, owed_clean_up, pending_action, persisting_alarm};
pub use policy::{BLOCKED_RETRY, Deadlines, LEASE, Policy};

#[cfg(test)]
mod tests;
