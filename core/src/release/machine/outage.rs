//! A `stop-first` migration's outage: the service scaled to zero before the migration
//! runs ([`Event::AppStopped`]), and brought back up by the deployment that follows, or,
//! when the release goes no further, started again on the revision it ran
//! ([`Event::AppStarted`], the [`Action::StartApp`] the lane owes). Recorded at both
//! ends, so that the outage's length is in the release's history and notifications.
//!
//! [`Action::StartApp`]: super::Action::StartApp

use std::time::Duration;

use super::work::Work;
use super::{Event, TransitionError};
use crate::release::model::{Cause, Down, ReleaseId, StageState};

/// How long a migration waits for the stopped service's tasks before it looks again (the
/// next pass of the reconciler after it takes the migration over).
pub(super) const DRAIN_POLL: Duration = Duration::from_secs(30);

/// The service was stopped for `id`'s migration: the outage begins (recorded once, by the
/// release that stopped it). While its tasks still stop, the migration's lease ends soon,
/// so that the next pass runs it again.
pub(super) fn app_stopped(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    desired: Option<u32>,
    running: u32,
) -> Result<(), TransitionError> {
    let now = w.now;
    let down = w.view.lane.down.clone();
    let ours = down.as_ref().is_none_or(|d| &d.release == id);
    // Recorded once, when ECS first confirms the stop; a stop whose answer was lost is
    // already counted (the lane took the service as stopped when the migration was owed).
    if let (Some(n), true, true) = (
        desired,
        ours,
        down.as_ref().is_none_or(|d| d.desired.is_none()),
    ) {
        w.lane().down = Some(Down {
            release: id.clone(),
            since: now,
            desired: Some(n),
        });
        let detail = format!(
            "scaled from {} to 0 for a migration the running version cannot run beside: the outage begins",
            tasks(n)
        );
        w.record(id, Cause::AppStopped, Some(detail))?;
    } else if down.is_none() {
        w.lane().down = Some(Down {
            release: id.clone(),
            since: now,
            desired: None,
        });
        w.changed.insert(id.clone());
    }
    let waits = state == StageState::Migrating
        && w.view.lane.in_flight.as_ref() == Some(id)
        && w.stage(id)?.started().is_none();
    if running > 0 && waits {
        w.stage(id)?.set_lease(now.after(DRAIN_POLL));
        w.changed.insert(id.clone());
    }
    Ok(())
}

/// The outcome of starting the service again after `id`'s migration: the outage ends
/// (with an alert when it could not be started). A replay, or one for an outage another
/// deployment already ended, changes nothing.
pub(super) fn app_started(
    w: &mut Work<'_>,
    id: &ReleaseId,
    event: &Event,
) -> Result<(), TransitionError> {
    let Event::AppStarted {
        deployment_id,
        error,
    } = event
    else {
        return Ok(());
    };
    let Some(down) = w.view.lane.down.clone().filter(|d| &d.release == id) else {
        return Ok(());
    };
    w.lane().down = None;
    // Not started again, the migration may have completed (the adapter refuses the old
    // version then): taken as having moved the schema, so that nothing older is put back
    // by default either (a person who knows better names the release).
    if error.is_some() {
        w.mark_schema(id)?;
    }
    let Some(desired) = down.desired else {
        // ECS never confirmed a stop, and the service runs: no outage to record.
        if error.is_none() && deployment_id.is_none() {
            w.changed.insert(id.clone());
            return Ok(());
        }
        let detail = match error {
            Some(e) => format!("the stop for its migration may have landed, and the service was not started again: {e}; scale it up by hand (aws ecs update-service --desired-count N, N from its tag shiplane:stopped-from)"),
            None => "the stop for its migration had landed unrecorded: started again on the revision it ran".into(),
        };
        let cause = if error.is_some() {
            Cause::AppStartFailed
        } else {
            Cause::AppStarted
        };
        return w.record(id, cause, Some(detail));
    };
    let stopped = length(w.now.0.saturating_sub(down.since.0));
    let (cause, detail) = match (error, deployment_id) {
        (Some(e), _) => (
            Cause::AppStartFailed,
            format!(
                "stopped {stopped} ago for the migration, and not started again: {e}; it serves nothing until a release brings it up or it is scaled up by hand (aws ecs update-service --desired-count {desired})"
            ),
        ),
        (None, Some(d)) => (
            Cause::AppStarted,
            format!(
                "started again on the revision it ran ({d}, {}) after {stopped} stopped",
                tasks(desired)
            ),
        ),
        (None, None) => (
            Cause::AppStarted,
            format!("already running again after {stopped} stopped"),
        ),
    };
    w.record(id, cause, Some(detail))
}

/// A deployment on the stopped service succeeded (the new version, or a restore): it
/// serves again, and the outage is recorded as ended on the release it serves.
pub(super) fn ended_by_deployment(w: &mut Work<'_>, id: &ReleaseId) -> Result<(), TransitionError> {
    let Some(down) = w.view.lane.down.clone() else {
        return Ok(());
    };
    w.lane().down = None;
    if down.desired.is_none() {
        w.changed.insert(id.clone());
        return Ok(()); // no stop was confirmed: nothing was out
    }
    let stopped = length(w.now.0.saturating_sub(down.since.0));
    let detail = if &down.release == id {
        format!("serves again, on this release, after {stopped} stopped for its migration")
    } else {
        format!(
            "serves again, on this release, after {stopped} stopped for {}'s migration",
            down.release
        )
    };
    w.record(id, Cause::AppStarted, Some(detail))
}

/// A count of tasks: `1 task`, `3 tasks`.
fn tasks(n: u32) -> String {
    if n == 1 {
        "1 task".into()
    } else {
        format!("{n} tasks")
    }
}

/// An alarm of the lane while `id` holds the service stopped for its migration (migrating,
/// or deploying the new version, not yet serving): the outage's own, since nothing of the
/// new version serves yet. Recorded, and nothing ended: ending the stage would start the
/// version it replaces on a schema the migration may be changing. True when it was.
pub(super) fn outage_alarm(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    alarm: Option<String>,
) -> Result<bool, TransitionError> {
    let stopped_by_it = w.view.lane.down.as_ref().is_some_and(|d| &d.release == id);
    let before_serving = matches!(
        state,
        StageState::Migrating | StageState::Deploying | StageState::Validating
    );
    if !(stopped_by_it && before_serving) {
        return Ok(false);
    }
    let detail = format!(
        "{} while the service is stopped for the migration: the outage's, not the new version's; nothing is rolled back",
        alarm.unwrap_or_else(|| "an alarm fired".into())
    );
    w.record(id, Cause::AlarmFired, Some(detail))?;
    Ok(true)
}

/// A length of time as a person reads it: `42s`, `4m 12s`, `2h 5m`.
fn length(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec}s"),
        (h, min, _) => format!("{h}h {min}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::length;

    #[test]
    fn lengths_read_as_a_person_writes_them() {
        assert_eq!(length(999), "0s");
        assert_eq!(length(42_000), "42s");
        assert_eq!(length(252_000), "4m 12s");
        assert_eq!(length(7_500_000), "2h 5m");
    }
}
