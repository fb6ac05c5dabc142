//! What a lane still owes, whichever release it belongs to ([`owed`], [`pending_action`]):
//! the work a crash, a lost answer or a passing deadline left undone. Read after every
//! decision and by the reconciler, separate from the tables that decide.

use super::undo::runs_unwanted;
use super::{Action, Event, Policy};
use std::time::Duration;

use crate::release::model::{
    AlarmState, LaneView, Release, ReleaseId, Stage, StageState, Timestamp,
};

/// The action a stage still owes when the work that should follow its last commit never
/// ran (a crash, a timeout): taken over once its lease ran out ([`Event::ActionResumed`]).
/// Pure.
pub fn pending_action(release: &Release, environment: &str) -> Option<Action> {
    let stage = release.stages.get(environment)?;
    if stage.started().is_some() {
        return None;
    }
    match stage.state() {
        StageState::Deploying => Some(Action::Deploy {
            release: release.id.clone(),
            environment: environment.to_string(),
            redeploy: stage.redeploy,
        }),
        StageState::Migrating => Some(Action::RunMigration {
            release: release.id.clone(),
            environment: environment.to_string(),
        }),
        _ => None,
    }
}

/// Work a lane owes, whichever release it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// An action whose decision was committed but which never ran.
    Act(Action),
    /// An event that is due: a free lane's queued release to start, a bake that ended.
    Apply(ReleaseId, Event),
}

/// Everything a lane owes, looked at as a whole (not only one event's release): the
/// in-flight release's action that never ran, the queued release on a lane nothing holds,
/// a bake that ended, a promotion committed but never started. Pure; the engine runs it
/// after every event on the lane and the reconciler on every lane, and each is done once
/// because its effect is idempotent and its outcome a conditional commit.
pub fn owed(view: &LaneView, policy: &Policy, now: Timestamp) -> Vec<Owed> {
    let lane = &view.lane;
    let env = lane.environment.as_str();
    let mut out = Vec::new();
    owed_by_in_flight(view, now, &mut out);
    // A stop committed whose outcome was never recorded (its invocation died): owed again
    // (stopping a deployment that already ended is no error).
    if let Some(r) = lane.stopping.as_ref().and_then(|id| view.releases.get(id))
        && let Some(stage) = r.stages.get(env)
        && stage.state().is_terminal()
        && let Some(deployment_id) = &stage.deployment_id
    {
        out.push(Owed::Act(Action::StopDeployment {
            release: r.id.clone(),
            environment: env.to_string(),
            deployment_id: deployment_id.clone(),
            rollback: true,
        }));
    }
    // A service stopped for a migration whose release went no further is started again,
    // on the revision it ran, before anything else may start here.
    if let (Some(down), None) = (&lane.down, &lane.in_flight) {
        // Not while the stop may still be in flight: landing after the start, it would
        // leave the service at zero with nothing owed.
        if lane.unsettled.as_ref().is_some_and(|u| u.live(now)) {
            return out;
        }
        out.push(Owed::Act(Action::StartApp {
            release: down.release.clone(),
            environment: env.to_string(),
            desired: down.desired,
        }));
        return out;
    }
    // What runs must be good: a release that ended here but runs all the same (its
    // deployment finished after its stage ended) is replaced by the last known good.
    if lane.in_flight.is_none()
        && let (Some(current), Some(good)) = (&lane.current, &lane.last_known_good)
        && current != good
        && view
            .releases
            .get(current)
            .and_then(|r| r.state_in(env))
            .is_some_and(runs_unwanted)
        && view.releases.get(good).and_then(|r| r.state_in(env)) == Some(StageState::Succeeded)
        && !view.predates_schema(good)
    {
        out.push(Owed::Apply(good.clone(), Event::Restore));
    }
    let idle = lane.in_flight.is_none()
        && lane.paused.is_none()
        && !policy.frozen
        && policy.held_by.is_empty()
        && lane.firing_alarms().is_empty();
    if idle
        && let Some(r) = lane.queued.as_ref().and_then(|id| view.releases.get(id))
        && let Some(stage) = r.stages.get(env)
        && stage.state() == StageState::Queued
        && stage.not_before().is_none_or(|t| t <= now)
    {
        out.push(Owed::Apply(r.id.clone(), Event::Dequeue));
    }
    owed_by_successes(view, &mut out);
    if let Some((id, alarm)) = persisting_alarm(view, now) {
        out.push(Owed::Apply(id, Event::AlarmFired { alarm }));
    }
    out
}

/// How long an alarm may go on firing after the release it was about stopped serving
/// (CloudWatch evaluates over periods of minutes): one that still fires this long after
/// the last known good was put back is its own.
pub const ALARM_SETTLE: Duration = Duration::from_secs(10 * 60);

/// The watched last known good, running here alone, whose alarm (fired within its watch)
/// still fires [`ALARM_SETTLE`] after what runs here last changed: the alarm was taken for
/// a release in flight (rolled back to this one), or this one was put back under it; no
/// change of it arrives while it goes on firing, so the lane owes the watch's rollback
/// ([`Event::AlarmFired`] on it). The alarm's name.
pub fn persisting_alarm(view: &LaneView, now: Timestamp) -> Option<(ReleaseId, String)> {
    let lane = &view.lane;
    let watch = lane.watch.as_ref()?;
    let id = lane
        .last_known_good
        .as_ref()
        .filter(|g| **g == watch.release)?;
    if lane.in_flight.is_some() || lane.current.as_ref() != Some(id) {
        return None;
    }
    let env = lane.environment.as_str();
    let last_change = view
        .releases
        .values()
        .filter_map(|r| r.stages.get(env))
        // A release waiting in the queue changes nothing that runs.
        .filter(|s| !s.state().is_waiting())
        .map(|s| s.since.max(s.noted.unwrap_or_default()))
        .max()?;
    let stage = view.releases.get(id)?.stages.get(env)?;
    if stage.state() != StageState::Succeeded || last_change.after(ALARM_SETTLE) > now {
        return None;
    }
    let alarm = lane
        .alarms
        .iter()
        .find(|(_, seen)| seen.state == AlarmState::Alarm && watch.covers(seen.at))?;
    Some((id.clone(), alarm.0.clone()))
}

/// What the release in flight owes: its action, left unfinished past its lease, and the
/// end of a bake that is due while none of the lane's own alarms fires.
fn owed_by_in_flight(view: &LaneView, now: Timestamp, out: &mut Vec<Owed>) {
    let lane = &view.lane;
    let env = lane.environment.as_str();
    if let Some(r) = lane.in_flight.as_ref().and_then(|id| view.releases.get(id)) {
        if pending_action(r, env).is_some()
            && r.stages
                .get(env)
                .is_none_or(|s| s.lease().is_none_or(|until| until <= now))
        {
            out.push(Owed::Apply(r.id.clone(), Event::ActionResumed));
        }
        if let Some(stage) = r.stages.get(env)
            && stage.state() == StageState::Baking
            && stage.bake_until().is_some_and(|t| t <= now)
            && lane.firing_alarms().is_empty()
        {
            out.push(Owed::Apply(r.id.clone(), Event::BakeElapsed));
        }
    }
}

/// The lane's own alarm that fired while its service was stopped for a `stop-first`
/// migration (recorded as the outage's, acting on nothing) and still fires
/// [`ALARM_SETTLE`] into the bake of the release that brought the service back up: no
/// change of it arrives, so without this it would hold the bake for ever (simulation seed
/// 99305); it is that release's own, and the lane owes its rollback
/// ([`Event::AlarmFired`] on it). Like [`persisting_alarm`], only a pass that read the
/// alarms acts on it (the lane's record may miss a lost OK). The release and the alarm.
pub fn outlasting_outage(
    view: &LaneView,
    policy: &Policy,
    now: Timestamp,
) -> Option<(ReleaseId, String)> {
    let lane = &view.lane;
    if !policy.stop_first || lane.down.is_some() {
        return None;
    }
    let id = lane.in_flight.as_ref()?;
    let stage = view
        .releases
        .get(id)?
        .stages
        .get(lane.environment.as_str())?;
    if stage.state() != StageState::Baking || stage.since.after(ALARM_SETTLE) > now {
        return None;
    }
    let (alarm, _) = lane
        .alarms
        .iter()
        .find(|(_, seen)| seen.state == AlarmState::Alarm && seen.at < stage.since)?;
    Some((id.clone(), alarm.clone()))
}

/// The clean-up of older revisions a success here owes (the current release's or the last
/// known good's), with what it must never deregister: the revisions of the releases the
/// lane runs, last knew good, may roll back to, is deploying or holds queued. Only the
/// reconciler does it, off every release's way (a bake's end does not wait for it). Pure.
pub fn owed_clean_up(view: &LaneView, policy: &Policy) -> Option<Action> {
    let lane = &view.lane;
    let env = lane.environment.as_str();
    let owing = [&lane.current, &lane.last_known_good]
        .into_iter()
        .flatten()
        .find(|id| {
            view.releases
                .get(*id)
                .and_then(|r| r.stages.get(env))
                .is_some_and(Stage::owes_clean_up)
        })?;
    let mut protect: Vec<ReleaseId> = [
        &lane.current,
        &lane.last_known_good,
        &lane.previous_good,
        &lane.in_flight,
        &lane.queued,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    protect.sort();
    protect.dedup();
    Some(Action::CleanUp {
        release: owing.clone(),
        environment: env.to_string(),
        keep: policy.keep,
        protect,
    })
}

/// What a success here (the last known good's, the current release's) committed but never
/// did: a promotion never started (the next environment has no stage of the release), a
/// dependent service's restart never recorded.
fn owed_by_successes(view: &LaneView, out: &mut Vec<Owed>) {
    let lane = &view.lane;
    let env = lane.environment.as_str();
    let mut succeeded: Vec<&ReleaseId> = [&lane.last_known_good, &lane.current]
        .into_iter()
        .flatten()
        .collect();
    succeeded.dedup();
    for id in succeeded {
        let Some(r) = view.releases.get(id) else {
            continue;
        };
        let Some(stage) = r.stages.get(env) else {
            continue;
        };
        for service in stage.restarts() {
            out.push(Owed::Act(Action::Restart {
                release: id.clone(),
                environment: env.to_string(),
                service: service.clone(),
            }));
        }
        if stage.state() == StageState::Succeeded
            && let Some(to) = stage.promote_to()
            && !r.stages.contains_key(to)
        {
            out.push(Owed::Act(Action::Promote {
                release: id.clone(),
                from: env.to_string(),
                to: to.to_string(),
            }));
        }
    }
}
