//! The release data model: what is stored, what is shown, what the machine reasons about.
//!
//! Split by concept: the values it is keyed and timed by (`ids`), one release in one
//! environment (`stage`), the release itself (`release`), the lane (`lane`), and what a
//! change records (`history`).

/// Defines a closed set that is spelled one way everywhere: each variant's text is written
/// once, and both serde (history, stored items, notifications) and `as_str` (logs, the CLI)
/// read it, so the two spellings cannot part.
macro_rules! spelled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )*
        }

        impl $name {
            /// The spelling in history, logs, the CLI and notifications.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }
        }
    };
}

mod history;
mod ids;
mod lane;
mod release;
mod stage;

pub use history::{Alert, Cause, Transition};
#[cfg(any(test, feature = "testing"))]
pub use ids::seeded;
pub use ids::{Digest, InvalidInput, ReleaseId, Timestamp, escaped, validate_tag};
pub use lane::{
    AlarmSeen, AlarmState, Down, Lane, LaneView, Pause, Restart, Schema, Unsettled, Watch,
};
pub use release::{MAX_TAGS, Release, pushed_before};
pub use stage::{Phase, Stage, StageState};
