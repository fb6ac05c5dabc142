//! What holds or ends a stage from outside: alarms (during a deployment, a bake, a
//! migration, or before a start), an operator's pause, a freeze, and events for another
//! service.

use super::*;

#[test]
fn alarm_during_deployment_stops_it_with_rollback() {
    let p = policy();
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-7".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    let d = step(
        &d.view,
        1,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    assert_eq!(
        d.actions,
        vec![Action::StopDeployment {
            release: id(1),
            environment: ENV.into(),
            deployment_id: "d-7".into(),
            rollback: true
        }]
    );
    assert_eq!(d.view.lane.in_flight, None);
}

#[test]
fn alarm_during_bake_redeploys_last_known_good_which_then_skips_bake_and_promotion() {
    let p = policy();
    let view = view_in(Some(StageState::Baking));
    let d = step(
        &view,
        1,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    assert_eq!(state(&d, 0), Some(StageState::Deploying));
    assert_eq!(
        d.view.lane.in_flight,
        Some(id(0)),
        "the restore occupies the lane"
    );
    assert_eq!(
        d.actions,
        vec![
            Action::ClearTimer {
                release: id(1),
                environment: ENV.into(),
                attempt: 0,
            },
            Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true
            }
        ],
        "the bad release's timer goes with its bake"
    );
    let d = step(&d.view, 0, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&d, 0), Some(StageState::Succeeded));
    assert_eq!(d.view.lane.current, Some(id(0)));
    assert!(d.actions.is_empty(), "no bake, no promotion for a restore");
    assert!(!d.view.releases[&id(0)].stages[ENV].redeploy);
}

#[test]
fn alarm_during_bake_without_last_known_good_frees_the_lane() {
    let mut view = view_in(Some(StageState::Baking));
    view.lane.last_known_good = None;
    let d = step(&view, 1, Event::AlarmFired { alarm: "a".into() }, &policy());
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    assert!(
        d.actions
            .iter()
            .all(|a| matches!(a, Action::ClearTimer { .. })),
        "nothing deployed: {:?}",
        d.actions
    );
    assert_eq!(d.view.lane.in_flight, None);
}

#[test]
fn an_alarm_during_a_migration_ends_the_stage_leaves_the_task_and_deploys_nothing() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::MigrationStarted {
            task_arn: "arn:task/7".into(),
        },
        &p,
    );
    let fired = apply_lane(&d.view, &alarm_changed(AlarmState::Alarm, 10), &p, T0).unwrap();
    assert_eq!(state(&fired, 1), Some(StageState::Failed));
    let stage = &fired.view.releases[&id(1)].stages[ENV];
    let reason = stage.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("api-5xx: Threshold Crossed during the migration")
            && reason.contains("the migration task arn:task/7 is left to finish")
            && reason.contains("not deployed"),
        "{reason}"
    );
    assert!(
        fired.actions.is_empty(),
        "no stop, no deployment: {:?}",
        fired.actions
    );
    assert_eq!(fired.view.lane.in_flight, None);
    let t = fired.transitions.last().unwrap();
    assert_eq!(
        (t.cause, t.to),
        (Cause::AlarmFired, Some(StageState::Failed))
    );
    // The task's own end comes later and deploys nothing.
    assert!(matches!(
        apply(&fired.view, &id(1), &Event::MigrationSucceeded, &p, T0),
        Err(TransitionError::NotAllowed { .. })
    ));
    // The same through the release's own event.
    let d = step(
        &d.view,
        1,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::Failed));
    assert!(d.actions.is_empty());
}

#[test]
fn a_stage_does_not_start_while_its_own_alarm_fires_and_the_ok_makes_the_lane_owe_the_start() {
    let p = policy();
    let mut view = empty_view();
    firing(&mut view, "api-5xx");
    let d = arrive(&view, release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert_eq!(
        d.transitions[0].detail.as_deref(),
        Some("held: api-5xx (dev) in ALARM")
    );
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(d.view.lane.in_flight, None);
    assert!(owed(&d.view, &p, T0).is_empty(), "nothing starts it");
    assert!(matches!(
        apply(&d.view, &id(1), &Event::Dequeue, &p, T0),
        Err(TransitionError::Busy { why, .. }) if why.contains("api-5xx (dev) in ALARM")
    ));
    // Approved or retried while it fires: queued all the same.
    let manual = Policy {
        approval: Approval::Manual,
        ..policy()
    };
    let waiting = arrive(&view, release(2), &manual);
    let approved = step(
        &waiting.view,
        2,
        Event::Approved {
            actor: "ana".into(),
        },
        &manual,
    );
    assert_eq!(state(&approved, 2), Some(StageState::Queued));
    let mut failed = view_in(Some(StageState::Failed));
    firing(&mut failed, "api-5xx");
    let retried = step(
        &failed,
        1,
        Event::Retry {
            actor: "ana".into(),
        },
        &p,
    );
    assert_eq!(state(&retried, 1), Some(StageState::Queued));
    // The release in flight ends while the alarm fires: the queued one waits.
    let mut busy = view_in(Some(StageState::Deploying));
    let r2 = with_stage(release(2), StageState::Queued);
    busy.lane.queued = Some(r2.id.clone());
    busy.releases.insert(r2.id.clone(), r2);
    firing(&mut busy, "api-5xx");
    let ended = step(&busy, 1, Event::DeploymentFailed { reason: "x".into() }, &p);
    assert_eq!(state(&ended, 2), Some(StageState::Queued));
    assert_eq!(ended.view.lane.in_flight, None);
    // OK: nothing is stranded, the lane owes the start.
    let ok = apply_lane(&d.view, &alarm_changed(AlarmState::Ok, 10), &p, T0).unwrap();
    assert_eq!(
        owed(&ok.view, &p, T0),
        vec![Owed::Apply(id(1), Event::Dequeue)]
    );
    let started = step(&ok.view, 1, Event::Dequeue, &p);
    assert_eq!(state(&started, 1), Some(StageState::Deploying));
}

#[test]
fn a_deployment_that_succeeds_while_its_own_alarm_fires_never_becomes_last_known_good() {
    let no_bake = Policy {
        bake: Duration::ZERO,
        ..policy()
    };
    let mut view = view_in(Some(StageState::Validating));
    firing(&mut view, "api-5xx");
    let d = step(&view, 1, Event::DeploymentSucceeded, &no_bake);
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    let reason = d.view.releases[&id(1)].stages[ENV].reason.clone().unwrap();
    assert!(reason.contains("api-5xx in ALARM"), "{reason}");
    assert_eq!(d.view.lane.last_known_good, Some(id(0)));
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::Promote { .. })),
        "{:?}",
        d.actions
    );
    // What runs is the bad release until the last known good is back.
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(state(&d, 0), Some(StageState::Deploying));
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true
        }]
    );
    // The restore succeeds although the alarm still fires: it is the remedy.
    let restored = step(&d.view, 0, Event::DeploymentSucceeded, &no_bake);
    assert_eq!(state(&restored, 0), Some(StageState::Succeeded));
    assert_eq!(restored.view.lane.current, Some(id(0)));
    // With nothing to restore, nothing deploys and a person is asked to act.
    view.lane.last_known_good = None;
    let alone = step(&view, 1, Event::DeploymentSucceeded, &no_bake);
    assert_eq!(state(&alone, 1), Some(StageState::RolledBack));
    assert!(alone.actions.is_empty(), "{:?}", alone.actions);
    assert_eq!(alone.view.lane.last_known_good, None);
    assert_eq!(alone.view.lane.in_flight, None);
    // With a bake, the release bakes and the bake's end waits for OK.
    let baking = step(&view, 1, Event::DeploymentSucceeded, &policy());
    assert_eq!(state(&baking, 1), Some(StageState::Baking));
}

#[test]
fn pause_holds_the_queue_and_resume_starts_it() {
    let p = policy();
    let paused = apply_lane(
        &empty_view(),
        &LaneEvent::Pause {
            actor: "ana".into(),
            reason: "incident".into(),
        },
        &p,
        T0,
    )
    .unwrap();
    assert_eq!(paused.transitions[0].cause, Cause::Paused);
    assert!(matches!(
        apply_lane(
            &paused.view,
            &LaneEvent::Pause {
                actor: "ben".into(),
                reason: "x".into()
            },
            &p,
            T0
        ),
        Err(TransitionError::AlreadyPaused { .. })
    ));
    let d = arrive(&paused.view, release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert_eq!(
        d.transitions[0].detail.as_deref(),
        Some("lane paused by ana")
    );
    let resumed = apply_lane(
        &d.view,
        &LaneEvent::Resume {
            actor: "ana".into(),
        },
        &p,
        T0,
    )
    .unwrap();
    assert_eq!(state(&resumed, 1), Some(StageState::Deploying));
    assert_eq!(resumed.actions.len(), 1);
    assert!(matches!(
        apply_lane(
            &resumed.view,
            &LaneEvent::Resume {
                actor: "ana".into()
            },
            &p,
            T0
        ),
        Err(TransitionError::NotPaused { .. })
    ));
}

#[test]
fn frozen_environment_queues_everything() {
    let p = Policy {
        frozen: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert!(d.actions.is_empty());
}

#[test]
fn events_for_another_service_or_unloaded_release_are_refused() {
    let mut other = release(5);
    other.service = "web".into();
    let mut v = empty_view();
    v.releases.insert(other.id.clone(), other);
    assert!(matches!(
        apply(&v, &id(5), &Event::Arrived, &policy(), T0),
        Err(TransitionError::WrongService { .. })
    ));
    assert!(matches!(
        apply(&empty_view(), &id(6), &Event::Arrived, &policy(), T0),
        Err(TransitionError::UnknownRelease { .. })
    ));
}
