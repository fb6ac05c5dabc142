//! The table of lane events ([`apply_lane`]): an operator's pause, resume, unblock or
//! rollback, and an alarm's change. Apart from [`apply`](fn@super::apply): its events are
//! the lane's, not one release's. Long arm bodies are named steps below it.

use super::event::bounded;
use super::undo::{roll_back, watch_rolls_back};
use super::work::Work;
use super::{Decision, LaneEvent, Policy, TransitionError};
use crate::release::model::{
    AlarmSeen, AlarmState, Cause, LaneView, Pause, ReleaseId, StageState, Timestamp, Transition,
};

/// Applies an operator's pause, resume or unblock to a lane.
pub fn apply_lane(
    view: &LaneView,
    event: &LaneEvent,
    policy: &Policy,
    now: Timestamp,
) -> Result<Decision, TransitionError> {
    let mut w = Work::new(view, policy, now);
    let (service, environment) = (w.view.lane.service.clone(), w.env());
    match event {
        LaneEvent::Pause { actor, reason } => {
            if let Some(p) = &w.view.lane.paused {
                return Err(TransitionError::AlreadyPaused {
                    service,
                    environment,
                    by: p.actor.clone(),
                });
            }
            w.lane().paused = Some(Pause {
                actor: actor.clone(),
                reason: reason.clone(),
                since: now,
            });
            w.transitions.push(lane_transition(
                &w,
                Cause::Paused,
                actor,
                Some(reason.to_string()),
            ));
        }
        LaneEvent::Resume { actor } => {
            if w.view.lane.paused.is_none() {
                return Err(TransitionError::NotPaused {
                    service,
                    environment,
                });
            }
            w.lane().paused = None;
            w.transitions
                .push(lane_transition(&w, Cause::Resumed, actor, None));
            if w.view.lane.in_flight.is_none() {
                w.finish()?;
            }
        }
        LaneEvent::Rollback { actor, reason, to } => {
            rollback(&mut w, actor, reason, to.as_ref())?;
        }
        LaneEvent::AlarmChanged {
            alarm,
            state,
            at,
            reason,
        } => alarm_changed(&mut w, alarm, state, at, reason)?,
        LaneEvent::Unblock { actor, reason } => unblock(&mut w, actor, reason)?,
        LaneEvent::Restarted(restart) => {
            // Recorded once: a replay finds it already there.
            if w.view.lane.restarted.as_ref() != Some(restart) {
                w.lane().restarted = Some(restart.clone());
                let mut t = lane_transition(
                    &w,
                    Cause::Restarted,
                    "shiplane",
                    Some(format!(
                        "for {} release {}: new tasks of the revision it runs ({})",
                        restart.by, restart.release, restart.deployment_id
                    )),
                );
                t.actor = None;
                w.transitions.push(t);
            }
        }
    }
    w.done()
}

/// A lane event's history item: no release, no state, at the decision's time.
fn lane_transition(w: &Work<'_>, cause: Cause, actor: &str, detail: Option<String>) -> Transition {
    Transition {
        at: w.now,
        service: w.view.lane.service.clone(),
        environment: w.view.lane.environment.clone(),
        release: None,
        from: None,
        to: None,
        cause,
        actor: Some(actor.to_string()),
        detail,
        alert: None,
    }
}

/// An operator puts an earlier release back: `to`, or the last known good one (the one
/// before it when it runs). What is in flight is ended, what runs is rolled back, and
/// the target is deployed again.
fn rollback(
    w: &mut Work<'_>,
    actor: &str,
    reason: &str,
    to: Option<&ReleaseId>,
) -> Result<(), TransitionError> {
    refuse_while_migrating_stopped(w)?;
    let target = rollback_target(w, to)?;
    super::schema::refuse_default_past_schema(w, &target, to)?;
    // A person chose what runs: no watch rolls it back behind them. Named past a
    // stop-first migration, it runs on the schema they restored: the mark goes.
    w.lane().watch = None;
    if w.view.predates_schema(&target) {
        w.lane().schema = None;
    }
    let lane = w.view.lane.clone();
    w.transitions.push(lane_transition(
        w,
        Cause::Rollback,
        actor,
        Some(format!("{reason} (to {target})")),
    ));
    // What is in flight stops (the queued release set aside meanwhile: the rollback
    // comes first); what runs now is rolled back.
    let waiting = w.lane().queued.take();
    if let Some(flying) = lane.in_flight.clone()
        && let Some(st) = w.state(&flying)
    {
        let detail = Some(format!("rolled back by {actor}: {reason}"));
        let to = if st == StageState::Migrating {
            StageState::Cancelled
        } else {
            StageState::RolledBack
        };
        if st.is_in_flight() {
            w.end_in_flight(
                &flying,
                st,
                to,
                Cause::Rollback,
                Some(actor.to_string()),
                detail,
                false,
            )?;
        }
    }
    // The target itself may be the one waiting (a retried release that succeeded here
    // before, simulation seed 75198): deployed now, it waits no more.
    w.lane().queued = waiting.filter(|q| *q != target);
    if let Some(current) = lane.current.clone()
        && current != target
        && w.state(&current) == Some(StageState::Succeeded)
    {
        w.move_to(
            &current,
            StageState::RolledBack,
            Cause::Rollback,
            Some(actor.to_string()),
            Some(format!("replaced by {target}: {reason}")),
        )?;
    }
    w.redeploy(&target, Some(actor.to_string()), Some(reason.to_string()))?;
    Ok(())
}

/// Whether an alarm that fired at `at` (CloudWatch's time) fired while the last known good
/// was watched ([`Watch::covers`]).
fn watching(w: &Work<'_>, at: Timestamp) -> bool {
    let lane = &w.view.lane;
    lane.watch.as_ref().is_some_and(|watch| {
        Some(&watch.release) == lane.last_known_good.as_ref() && watch.covers(at)
    })
}

/// The release an operator's rollback puts back: `to`, or by default the last known good
/// (the one before it when it is what runs); it must have succeeded here, and not be the
/// release in flight.
pub(super) fn rollback_target(
    w: &Work<'_>,
    to: Option<&ReleaseId>,
) -> Result<ReleaseId, TransitionError> {
    let (service, environment) = (w.view.lane.service.clone(), w.env());
    let no = |why: String| TransitionError::NoRollbackTarget {
        service: service.clone(),
        environment: environment.clone(),
        why,
    };
    let lane = &w.view.lane;
    let default = if lane.last_known_good != lane.current {
        lane.last_known_good.clone()
    } else {
        lane.previous_good.clone()
    };
    let target = to
        .cloned()
        .or(default)
        .ok_or_else(|| no("no earlier release succeeded here".into()))?;
    let succeeded_here = w
        .view
        .releases
        .get(&target)
        .and_then(|r| r.stages.get(&environment))
        .is_some_and(|s| s.succeeded_at.is_some());
    if !succeeded_here {
        return Err(no(format!("{target} never succeeded here")));
    }
    if lane.in_flight.as_ref() == Some(&target) {
        return Err(no(format!("{target} is already being deployed here")));
    }
    Ok(target)
}

/// A watched alarm changed state: recorded unless an older change arrives late; an
/// alarm rolls back what is in flight here, except a restore of the last known good.
fn alarm_changed(
    w: &mut Work<'_>,
    alarm: &String,
    state: &AlarmState,
    at: &Timestamp,
    reason: &str,
) -> Result<(), TransitionError> {
    let environment = w.env();
    if let Some(seen) = w.view.lane.alarms.get(alarm)
        && seen.at >= *at
    {
        return Err(TransitionError::StaleAlarm {
            alarm: alarm.clone(),
            at: *at,
            seen: seen.at,
        });
    }
    w.lane().alarms.insert(
        alarm.clone(),
        AlarmSeen {
            state: *state,
            at: *at,
        },
    );
    let cause = match state {
        AlarmState::Alarm => Cause::AlarmFired,
        AlarmState::Ok => Cause::AlarmCleared,
        AlarmState::InsufficientData => Cause::AlarmNoData,
    };
    let detail = format!("{alarm}: {}", bounded(reason));
    w.transitions.push(Transition {
        actor: None,
        ..lane_transition(w, cause, "", Some(detail.clone()))
    });
    let in_flight = w.view.lane.in_flight.clone();
    if *state == AlarmState::Alarm && in_flight.is_none() && watching(w, *at) {
        return watch_rolls_back(w, &detail);
    }
    if let (AlarmState::Alarm, Some(id)) = (state, in_flight) {
        let held = w.state(&id);
        let restoring = w
            .view
            .releases
            .get(&id)
            .and_then(|r| r.stages.get(&environment))
            .is_some_and(|s| s.redeploy);
        // A release being restored after a rollback is not rolled back again: a
        // flapping alarm rolls back once.
        if let Some(
            st @ (StageState::Migrating
            | StageState::Deploying
            | StageState::Validating
            | StageState::Baking),
        ) = held
            && !restoring
        {
            roll_back(w, &id, st, Some(detail))?;
        }
    }
    Ok(())
}

/// An operator frees the lane: what holds it in flight is cancelled, a slot naming a
/// release not in flight is freed, or, with nothing in flight, the queued release starts
/// over the gate of an alarm.
/// A rollback while the service is stopped for a stop-first migration that may be running
/// would start the version it replaces beside it: refused, with the way out (cancel the
/// release: the service is started again once its migration stopped, if it did not
/// complete).
fn refuse_while_migrating_stopped(w: &Work<'_>) -> Result<(), TransitionError> {
    let lane = &w.view.lane;
    let Some(down) = lane.down.as_ref() else {
        return Ok(());
    };
    let migrating = lane.in_flight.as_ref() == Some(&down.release)
        && w.state(&down.release) == Some(StageState::Migrating);
    if !migrating {
        return Ok(());
    }
    Err(TransitionError::Busy {
        release: down.release.clone(),
        service: lane.service.clone(),
        environment: lane.environment.clone(),
        why: format!(
            "the service is stopped for its stop-first migration, which may be running: a rollback now would start the version it replaces beside it; `shiplane cancel {} {}` instead (the service is started again once the migration stopped, unless it completed)",
            down.release, lane.environment
        ),
    })
}

fn unblock(w: &mut Work<'_>, actor: &str, reason: &String) -> Result<(), TransitionError> {
    let (service, environment) = (w.view.lane.service.clone(), w.env());
    let holder = w.view.lane.in_flight.clone();
    let held = holder.as_ref().and_then(|id| w.state(id));
    match (holder, held) {
        (Some(id), Some(state)) if state.is_in_flight() => {
            w.transitions.push(lane_transition(
                w,
                Cause::Unblocked,
                actor,
                Some(format!("{reason} (ends {id})")),
            ));
            w.end_in_flight(
                &id,
                state,
                StageState::Cancelled,
                Cause::Cancelled,
                Some(actor.to_string()),
                Some(reason.to_string()),
                true,
            )?;
        }
        (Some(id), _) => {
            // The slot names a release that is not in flight here (an edit by hand,
            // a bug): free it.
            w.transitions.push(lane_transition(
                w,
                Cause::Unblocked,
                actor,
                Some(format!("{reason} (slot held by {id}, not in flight)")),
            ));
            w.finish()?;
        }
        (None, _) => {
            // The service a stop-first migration stopped is being started again: nothing
            // else may start until it is (or Shiplane says it could not be).
            if let Some(down) = w.view.lane.down.clone() {
                return Err(TransitionError::Busy {
                    release: down.release,
                    service,
                    environment,
                    why: "the service it stopped for its stop-first migration is being started again; see `shiplane status`".into(),
                });
            }
            // A gate is overridden by an operator's unblock (the alarm's OK may
            // never arrive); a pause or a freeze is lifted by its own command.
            let lane = &w.view.lane;
            let queued = lane.queued.clone();
            let startable = queued.as_ref().is_some_and(|q| {
                w.state(q) == Some(StageState::Queued) && lane.paused.is_none() && !w.policy.frozen
            });
            let Some(q) = queued.filter(|_| startable) else {
                return Err(TransitionError::NothingToUnblock {
                    service,
                    environment,
                });
            };
            let holding = w.alarms_holding();
            let detail = if holding.is_empty() {
                reason.clone()
            } else {
                format!(
                    "{reason} (overriding the gate: {} in ALARM)",
                    holding.join(", ")
                )
            };
            w.transitions
                .push(lane_transition(w, Cause::Unblocked, actor, Some(detail)));
            w.start(&q, Cause::Dequeued, Some(actor.to_string()))?;
        }
    }
    Ok(())
}
