//! The release data model: what is stored, what is shown, what the machine reasons about.
//!
//! Split by concept: the values it is keyed and timed by (`ids`), one release in one
//! environment (`stage`), the release itself (`release`), the lane (`lane`), and what a
//! change records (`history`).

mod history;
mod ids;
mod lane;
mod release;
mod stage;

pub use history::{Cause, Transition};
#[cfg(any(test, feature = "testing"))]
pub use ids::seeded;
pub use ids::{Digest, InvalidInput, ReleaseId, Timestamp, escaped, validate_tag};
pub use lane::{AlarmSeen, AlarmState, Lane, LaneView, Pause};
pub use release::{MAX_TAGS, Release, pushed_before};
pub use stage::{Stage, StageState};
