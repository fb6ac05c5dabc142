//! A released version stays watched after its bake (`watch`): an alarm in that window
//! rolls it back to the release before it, and alerts a person.

use super::*;
use crate::release::model::Alert;

const WATCH: Duration = Duration::from_secs(24 * 3600);

fn watching() -> Policy {
    Policy {
        watch: WATCH,
        ..policy()
    }
}

/// Release 1 baked and succeeded at T0 over release 0, the good one before it.
fn released(p: &Policy) -> Decision {
    let mut v = view_in(Some(StageState::Baking));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .phase = Phase::Baking { until: T0 };
    let d = step(&v, 1, Event::BakeElapsed, p);
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    d
}

#[test]
fn a_success_is_watched_for_its_window() {
    let d = released(&watching());
    assert_eq!(
        d.view.lane.watch.as_ref().map(|w| w.until),
        Some(T0.after(WATCH))
    );
    assert_eq!(d.view.lane.previous_good, Some(id(0)));
    let watch = d.view.lane.watch.clone().unwrap();
    assert_eq!((watch.release, watch.from), (id(1), T0));
    assert_eq!(released(&policy()).view.lane.watch, None, "no watch set");
}

/// An alarm while a newer release is in flight is that one's first: it is rolled back to
/// the watched one, as always. If the alarm goes on firing once the watched one runs alone
/// again ([`ALARM_SETTLE`] after the last change), it was the watched one's own, and the
/// lane owes the watch's rollback to the release before it.
#[test]
fn an_alarm_in_the_watch_with_a_newer_release_in_flight_is_the_newer_ones_first() {
    use crate::release::machine::owed::ALARM_SETTLE;
    let p = watching();
    let mut v = released(&p).view;
    v.releases.insert(id(2), release(2));
    let next = apply(&v, &id(2), &Event::Arrived, &p, T0).unwrap();
    assert_eq!(next.view.lane.in_flight, Some(id(2)));
    let shipped = step(&next.view, 2, Event::DeploymentSucceeded, &p);
    let fired = apply_lane(&shipped.view, &alarm_changed(AlarmState::Alarm, 60), &p, T0).unwrap();
    assert_eq!(
        state(&fired, 2),
        Some(StageState::RolledBack),
        "the newer one"
    );
    assert_eq!(
        state(&fired, 1),
        Some(StageState::Deploying),
        "the watched one put back"
    );
    let back = step(&fired.view, 1, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&back, 1), Some(StageState::Succeeded));
    assert_eq!(alarm_owed(&back.view, &p, T0), [], "not settled yet");
    let later = T0.after(ALARM_SETTLE);
    let owes = alarm_owed(&back.view, &p, later);
    assert_eq!(owes.len(), 1, "{owes:?}");
    let Owed::Apply(r, event) = &owes[0] else {
        unreachable!()
    };
    let rolled = apply(&back.view, r, event, &p, later).unwrap();
    assert_eq!(state(&rolled, 1), Some(StageState::RolledBack));
    assert_eq!(state(&rolled, 0), Some(StageState::Deploying));
    let alerted: Vec<_> = rolled.transitions.iter().filter_map(|t| t.alert).collect();
    assert_eq!(alerted, [Alert::AlarmAfterRelease]);
}

/// The watched release restored after a newer one failed: an alarm during the restore is
/// left to it (a flapping alarm rolls back once); once back, it is watched again, and an
/// alarm of its own rolls it back in turn.
#[test]
fn the_watched_release_restored_while_its_alarm_fires_is_rolled_back() {
    let p = watching();
    let mut v = released(&p).view;
    // Release 2 failed and release 1, the watched one, is being restored.
    v.releases.insert(id(2), release(2));
    let next = apply(&v, &id(2), &Event::Arrived, &p, T0).unwrap();
    let failed = step(&next.view, 2, Event::DeploymentSucceeded, &p);
    let mut v = failed.view.clone();
    v.lane.in_flight = Some(id(1));
    let stage = v
        .releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap();
    stage.phase = Phase::fresh(StageState::Deploying, T0);
    stage.redeploy = true;
    v.releases
        .get_mut(&id(2))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .phase = Phase::RolledBack;
    // The alarm fires during the restore: left to finish.
    let fired = apply_lane(&v, &alarm_changed(AlarmState::Alarm, 60), &p, T0).unwrap();
    assert_eq!(state(&fired, 1), Some(StageState::Deploying));
    assert!(fired.actions.is_empty(), "{:?}", fired.actions);
    // Back, and watched again: its own alarm (one that fires after it is back) rolls it
    // back to the one before it.
    let back = step(&fired.view, 1, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&back, 1), Some(StageState::Succeeded));
    assert_eq!(
        back.view.lane.watch.as_ref().map(|w| w.until),
        Some(T0.after(WATCH))
    );
    let ok = apply_lane(&back.view, &alarm_changed(AlarmState::Ok, 90), &p, T0).unwrap();
    let again = apply_lane(&ok.view, &alarm_changed(AlarmState::Alarm, 120), &p, T0).unwrap();
    assert_eq!(state(&again, 1), Some(StageState::RolledBack));
    assert_eq!(state(&again, 0), Some(StageState::Deploying));
    let alerted: Vec<_> = again.transitions.iter().filter_map(|t| t.alert).collect();
    assert_eq!(alerted, [Alert::AlarmAfterRelease]);
}

#[test]
fn an_operators_rollback_ends_the_watch() {
    let p = watching();
    let d = released(&p);
    let rollback = LaneEvent::Rollback {
        actor: "oncall".into(),
        reason: "slow".into(),
        to: None,
    };
    let rolled = apply_lane(&d.view, &rollback, &p, T0).unwrap();
    assert_eq!(rolled.view.lane.watch, None);
}

#[test]
fn an_alarm_in_the_watch_rolls_the_release_back_to_the_one_before_and_alerts() {
    let p = watching();
    let d = released(&p);
    let an_hour_later = 3600;
    let fired = apply_lane(
        &d.view,
        &alarm_changed(AlarmState::Alarm, an_hour_later),
        &p,
        T0,
    )
    .unwrap();
    assert_eq!(state(&fired, 1), Some(StageState::RolledBack));
    assert_eq!(state(&fired, 0), Some(StageState::Deploying));
    assert_eq!(
        fired.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    let lane = &fired.view.lane;
    assert_eq!(
        lane.last_known_good,
        Some(id(0)),
        "the bad one is good no more"
    );
    assert_eq!(lane.in_flight, Some(id(0)));
    assert_eq!(lane.current, Some(id(1)), "it runs until the restore lands");
    assert_eq!(lane.watch, None);
    let rolled = fired
        .transitions
        .iter()
        .find(|t| t.release == Some(id(1)))
        .unwrap();
    assert_eq!(rolled.alert, Some(Alert::AlarmAfterRelease));
    assert!(
        rolled.detail.as_deref().unwrap().contains("api-5xx"),
        "{rolled:?}"
    );
    // The restore succeeds: what runs is the good one again, watched in its turn (an
    // alarm of the release it replaced, still firing from before, is not its own).
    let back = step(&fired.view, 0, Event::DeploymentSucceeded, &p);
    assert_eq!(back.view.lane.current, Some(id(0)));
    assert_eq!(
        back.view.lane.watch.as_ref().map(|w| w.until),
        Some(T0.after(WATCH))
    );
    let mut stale = alarm_changed(AlarmState::Alarm, 0);
    if let LaneEvent::AlarmChanged { at, .. } = &mut stale {
        *at = Timestamp(T0.0 - 1);
    }
    let mut v = back.view.clone();
    v.lane.alarms.clear();
    let before = apply_lane(&v, &stale, &p, T0).unwrap();
    assert_eq!(
        state(&before, 0),
        Some(StageState::Succeeded),
        "fired before it ran"
    );
}

#[test]
fn an_alarm_after_the_watch_or_without_one_is_only_recorded() {
    let p = watching();
    let d = released(&p);
    let after = WATCH.as_secs() + 1;
    let late = apply_lane(&d.view, &alarm_changed(AlarmState::Alarm, after), &p, T0).unwrap();
    assert_eq!(state(&late, 1), Some(StageState::Succeeded));
    assert!(late.actions.is_empty(), "{:?}", late.actions);
    let unwatched = released(&policy());
    let fired = apply_lane(
        &unwatched.view,
        &alarm_changed(AlarmState::Alarm, 60),
        &policy(),
        T0,
    )
    .unwrap();
    assert_eq!(state(&fired, 1), Some(StageState::Succeeded));
    assert!(fired.actions.is_empty());
}

#[test]
fn with_no_release_before_it_the_watched_release_keeps_running_and_a_person_is_alerted() {
    let p = watching();
    let mut d = released(&p);
    d.view.lane.previous_good = None;
    let fired = apply_lane(&d.view, &alarm_changed(AlarmState::Alarm, 60), &p, T0).unwrap();
    assert_eq!(state(&fired, 1), Some(StageState::Succeeded));
    assert!(fired.actions.is_empty(), "{:?}", fired.actions);
    let noted = fired.transitions.last().unwrap();
    assert_eq!(noted.alert, Some(Alert::NothingToRestore));
    assert!(noted.detail.as_deref().unwrap().contains("keeps running"));
    assert_eq!(fired.view.lane.watch, None, "alerted once");
}

/// The watched release put back over a newer one its alarm rolled back (no release
/// before it to go to then): the alarm goes on firing, and no change of it arrives. Once
/// it has fired [`ALARM_SETTLE`] past the restore, the lane owes the watch's rollback.
#[test]
fn an_alarm_still_firing_long_after_the_watched_release_was_put_back_is_its_own() {
    use crate::release::machine::owed::ALARM_SETTLE;
    let p = watching();
    let d = released(&p);
    let mut v = d.view.clone();
    firing(&mut v, "api-5xx");
    v.lane.alarms.get_mut("api-5xx").unwrap().at = T0.after(Duration::from_secs(60));
    assert_eq!(alarm_owed(&v, &p, T0.after(Duration::from_secs(120))), []);
    let later = T0.after(ALARM_SETTLE);
    let owes = alarm_owed(&v, &p, later);
    assert_eq!(
        owes,
        [Owed::Apply(
            id(1),
            Event::AlarmFired {
                alarm: "api-5xx".into()
            }
        )]
    );
    let Owed::Apply(_, event) = &owes[0] else {
        unreachable!()
    };
    let rolled = apply(&v, &id(1), event, &p, later).unwrap();
    assert_eq!(state(&rolled, 1), Some(StageState::RolledBack));
    assert_eq!(state(&rolled, 0), Some(StageState::Deploying));
    assert_eq!(rolled.view.lane.watch, None);
    assert_eq!(alarm_owed(&rolled.view, &p, later), [], "once");
    // With nothing before it: a person is alerted, once.
    v.lane.previous_good = None;
    let alone = apply(&v, &id(1), event, &p, later).unwrap();
    assert_eq!(state(&alone, 1), Some(StageState::Succeeded));
    let alerted: Vec<_> = alone.transitions.iter().filter_map(|t| t.alert).collect();
    assert_eq!(alerted, [Alert::NothingToRestore]);
    assert_eq!(alarm_owed(&alone.view, &p, later), []);
    // An alarm that fired before it first ran is not its own.
    v.lane.alarms.get_mut("api-5xx").unwrap().at = Timestamp(T0.0 - 1);
    assert_eq!(alarm_owed(&v, &p, later), []);
}

/// What the lane owes on an alarm, without the promotions it also owes.
fn alarm_owed(v: &LaneView, p: &Policy, now: Timestamp) -> Vec<Owed> {
    owed(v, p, now)
        .into_iter()
        .filter(|o| matches!(o, Owed::Apply(_, Event::AlarmFired { .. })))
        .collect()
}

/// A release an operator put back (no watch left) whose alarm fired while its deployment
/// ran, before it succeeded: once it succeeds it is watched from when its deployment
/// began, so the alarm still firing after it settled is its own, and the watch rolls it
/// back; before, the alarm held the lane and nothing owned it (simulation seed 25379).
#[test]
fn an_alarm_fired_while_a_put_back_release_deployed_is_its_own_once_it_settled() {
    use crate::release::machine::owed::ALARM_SETTLE;
    let p = Policy {
        undo_by_redeploy: true,
        ..watching()
    };
    let mut v = released(&p).view;
    v.lane.watch = None;
    v.lane.in_flight = Some(id(1));
    let stage = stage_mut(&mut v, 1);
    *stage = Stage::new(StageState::Deploying, T0);
    stage.redeploy = true;
    stage.deployment_id = Some("ecs-svc/1".into());
    firing(&mut v, "api-5xx");
    v.lane.alarms.get_mut("api-5xx").unwrap().at = T0.after(Duration::from_secs(30));
    let done = T0.after(Duration::from_secs(60));
    let back = apply(&v, &id(1), &Event::DeploymentSucceeded, &p, done).unwrap();
    assert_eq!(state(&back, 1), Some(StageState::Succeeded));
    assert_eq!(back.view.lane.watch.as_ref().map(|w| w.from), Some(T0));
    let later = done.after(ALARM_SETTLE);
    assert_eq!(
        alarm_owed(&back.view, &p, later),
        [Owed::Apply(
            id(1),
            Event::AlarmFired {
                alarm: "api-5xx".into()
            }
        )]
    );
}
