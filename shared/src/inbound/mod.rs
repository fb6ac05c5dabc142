//! Inbound AWS payloads turned into domain inputs, or into an explicit "ignored: why".
//!
//! Parsing never touches state: a payload is accepted, ignored (logged at info), or rejected
//! with an error that names the field. An event's own time is checked against the
//! function's clock, which the parsers of timed events are given.

pub mod alarm;
pub mod codedeploy;
pub mod ecr;
pub mod ecs;
pub mod schedule;

use std::time::Duration;

use crate::release::{InvalidInput, Timestamp};

/// How far ahead of the function's clock an event's own time may be. AWS stamps its events
/// with clocks kept to real time, so a time further ahead is broken or forged, and it would
/// wedge a lane for good: events are ordered by their own times, so an alarm change stamped
/// in year 9999 outranks every real change after it (the alarm fires forever), and a push
/// stamped there supersedes every later push. Five minutes is the skew AWS itself allows a
/// signed request (SigV4), far above how far apart AWS's clocks and Lambda's are.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// `at`, an event's own time read from `field`, unless it is more than [`MAX_CLOCK_SKEW`]
/// ahead of `now` (the function's clock): then an error naming the field, and the event
/// changes nothing.
pub fn not_ahead(
    field: &'static str,
    at: Timestamp,
    now: Timestamp,
) -> Result<Timestamp, InvalidInput> {
    if at <= now.after(MAX_CLOCK_SKEW) {
        return Ok(at);
    }
    Err(InvalidInput {
        field,
        message: format!(
            "more than {} ahead of this function's clock ({now}), so the event would be \
             ordered after every real one to come; send the time the change happened",
            humantime::format_duration(MAX_CLOCK_SKEW)
        ),
    })
}

/// What parsing made of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<T> {
    Accepted(T),
    /// Not for Shiplane, or not a release; the reason is logged and nothing changes.
    Ignored(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_time_may_be_ahead_of_the_clock_by_the_skew_and_no_more() {
        let now = Timestamp(1_794_794_074_000);
        let skew = u64::try_from(MAX_CLOCK_SKEW.as_millis()).unwrap();
        for at in [Timestamp(0), now, Timestamp(now.0 + skew)] {
            assert_eq!(not_ahead("time", at, now), Ok(at));
        }
        for at in [Timestamp(now.0 + skew + 1), Timestamp(u64::MAX)] {
            let err = not_ahead("time", at, now).unwrap_err();
            assert_eq!(err.field, "time");
            assert!(err.message.contains("5m ahead"), "{err}");
            assert!(err.message.contains("2026-11-16T01:54:34Z"), "{err}");
        }
    }
}
