//! A `stop-first` migration's outage: recorded when the service is stopped, the
//! migration waiting while its tasks stop, ended by the deployment that brings the service
//! back up or, when the release goes no further, by starting it again on what it ran.

use super::*;
use crate::release::model::{Alert, Down};

fn stop_first() -> Policy {
    Policy {
        migration: true,
        stop_first: true,
        ..rolling()
    }
}

fn stopped(desired: Option<u32>, running: u32) -> Event {
    Event::AppStopped { desired, running }
}

fn start_app(n: u64) -> Action {
    Action::StartApp {
        release: id(n),
        environment: ENV.into(),
        desired: Some(3),
    }
}

/// Release 1 migrating, its service stopped from 3 tasks at T0.
fn down() -> Decision {
    step(
        &view_in(Some(StageState::Migrating)),
        1,
        stopped(Some(3), 0),
        &stop_first(),
    )
}

fn causes(d: &Decision) -> Vec<Cause> {
    d.transitions.iter().map(|t| t.cause).collect()
}

#[test]
fn stopping_the_service_begins_the_outage_once() {
    let d = down();
    assert_eq!(
        d.view.lane.down,
        Some(Down {
            release: id(1),
            since: T0,
            desired: Some(3)
        })
    );
    assert_eq!(causes(&d), [Cause::AppStopped]);
    let detail = d.transitions[0].detail.as_deref().unwrap_or_default();
    assert!(detail.contains("from 3 tasks to 0"), "{detail}");
    // The same stop reported again (a replay, a pass that looks again) records nothing.
    let again = apply(&d.view, &id(1), &stopped(Some(3), 0), &stop_first(), T0).unwrap();
    assert!(again.transitions.is_empty(), "{:?}", again.transitions);
    assert_eq!(again.view.lane.down, d.view.lane.down);
}

#[test]
fn the_migration_waits_while_the_service_still_runs_tasks() {
    let d = step(
        &view_in(Some(StageState::Migrating)),
        1,
        stopped(Some(3), 2),
        &stop_first(),
    );
    let stage = &d.view.releases[&id(1)].stages[ENV];
    // Looked at again soon, by the next pass: not after a whole lease.
    assert_eq!(
        stage.lease(),
        Some(T0.after(super::super::outage::DRAIN_POLL))
    );
    let later = T0.after(Duration::from_secs(31));
    assert!(
        owed(&d.view, &stop_first(), later).contains(&Owed::Apply(id(1), Event::ActionResumed))
    );
    // Taking it up again records no takeover: nothing died.
    let resumed = apply(&d.view, &id(1), &Event::ActionResumed, &stop_first(), later).unwrap();
    assert!(resumed.transitions.is_empty(), "{:?}", resumed.transitions);
    assert!(resumed.actions.contains(&Action::RunMigration {
        release: id(1),
        environment: ENV.into(),
    }));
    assert_eq!(resumed.view.releases[&id(1)].stages[ENV].resumed, 0);
}

/// Release 1 migrated, and its deployment (`ecs-svc/9`) brings the service back up.
fn bringing_up() -> Decision {
    let migrated = step(&down().view, 1, Event::MigrationSucceeded, &stop_first());
    step(
        &migrated.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "ecs-svc/9".into(),
            task_definition: None,
            fence: 0,
        },
        &stop_first(),
    )
}

#[test]
fn the_deployment_that_brings_the_service_back_up_ends_the_outage() {
    let created = bringing_up();
    assert!(created.view.lane.down.is_some(), "down until it serves");
    let later = T0.after(Duration::from_secs(252));
    let up = apply(
        &created.view,
        &id(1),
        &Event::DeploymentSucceeded,
        &stop_first(),
        later,
    )
    .unwrap();
    assert_eq!(up.view.lane.down, None);
    let ended = up
        .transitions
        .iter()
        .find(|t| t.cause == Cause::AppStarted)
        .and_then(|t| t.detail.as_deref())
        .unwrap_or_default();
    assert!(ended.contains("after 4m 12s stopped"), "{ended}");
}

#[test]
fn a_failed_migration_starts_the_service_again_on_what_it_ran() {
    let failed = step(
        &down().view,
        1,
        Event::MigrationFailed {
            reason: "exit 1".into(),
        },
        &stop_first(),
    );
    assert_eq!(state(&failed, 1), Some(StageState::Failed));
    // Owed, with nothing else started here until it is done.
    assert_eq!(
        owed(&failed.view, &stop_first(), T0),
        [Owed::Act(start_app(1))]
    );
    assert!(LaneView::referenced(&failed.view.lane).contains(&id(1)));
    let started = step(
        &failed.view,
        1,
        Event::AppStarted {
            deployment_id: Some("ecs-svc/10".into()),
            error: None,
        },
        &stop_first(),
    );
    assert_eq!(started.view.lane.down, None);
    assert_eq!(causes(&started), [Cause::AppStarted]);
    assert!(owed(&started.view, &stop_first(), T0).is_empty());
    // Its replay changes nothing.
    let replay = step(
        &started.view,
        1,
        Event::AppStarted {
            deployment_id: Some("ecs-svc/10".into()),
            error: None,
        },
        &stop_first(),
    );
    assert!(replay.is_noop());
}

#[test]
fn a_queued_release_waits_until_the_service_is_started_again() {
    let mut v = down().view;
    let queued = with_stage(release(2), StageState::Queued);
    v.lane.queued = Some(id(2));
    v.releases.insert(id(2), queued);
    let failed = step(
        &v,
        1,
        Event::MigrationFailed {
            reason: "exit 1".into(),
        },
        &stop_first(),
    );
    assert_eq!(state(&failed, 2), Some(StageState::Queued));
    assert!(!owed(&failed.view, &stop_first(), T0).contains(&Owed::Apply(id(2), Event::Dequeue)));
    let started = step(
        &failed.view,
        1,
        Event::AppStarted {
            deployment_id: None,
            error: None,
        },
        &stop_first(),
    );
    assert!(owed(&started.view, &stop_first(), T0).contains(&Owed::Apply(id(2), Event::Dequeue)));
}

#[test]
fn a_service_that_cannot_be_started_again_is_an_alert() {
    let failed = step(
        &down().view,
        1,
        Event::Cancelled {
            actor: "ana".into(),
            reason: "wrong image".into(),
        },
        &stop_first(),
    );
    let refused = step(
        &failed.view,
        1,
        Event::AppStarted {
            deployment_id: None,
            error: Some("ECS: service not found".into()),
        },
        &stop_first(),
    );
    let t = &refused.transitions[0];
    assert_eq!(t.cause, Cause::AppStartFailed);
    assert_eq!(t.alert, Some(Alert::AppDown));
    assert!(
        t.detail
            .as_deref()
            .unwrap_or_default()
            .contains("--desired-count 3")
    );
}

#[test]
fn a_stop_whose_answer_was_lost_is_taken_as_a_stop() {
    let d = step(
        &view_in(Some(StageState::Migrating)),
        1,
        stopped(None, u32::MAX),
        &stop_first(),
    );
    assert!(d.view.lane.down.is_some());
    let failed = step(
        &d.view,
        1,
        Event::ActionFailed {
            reason: "stopping the service for its migration: throttled".into(),
        },
        &stop_first(),
    );
    assert_eq!(
        owed(&failed.view, &stop_first(), T0),
        [Owed::Act(Action::StartApp {
            release: id(1),
            environment: ENV.into(),
            desired: None,
        })]
    );
}

#[test]
fn the_outages_own_alarm_ends_nothing_while_the_service_is_stopped() {
    let d = step(
        &down().view,
        1,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        &stop_first(),
    );
    assert_eq!(state(&d, 1), Some(StageState::Migrating));
    assert!(d.view.lane.down.is_some());
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let detail = d.transitions[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("the outage's, not the new version's"),
        "{detail}"
    );
}

#[test]
fn a_rollback_or_unblock_waits_while_a_stop_first_migration_may_run() {
    let v = down().view;
    let rollback = LaneEvent::Rollback {
        actor: "ana".into(),
        reason: "bad".into(),
        to: None,
    };
    let refused = apply_lane(&v, &rollback, &stop_first(), T0);
    assert!(
        matches!(&refused, Err(TransitionError::Busy { why, .. }) if why.contains("shiplane cancel")),
        "{refused:?}"
    );
    // Ended (cancelled): nothing else starts until the service is started again.
    let cancelled = step(
        &v,
        1,
        Event::Cancelled {
            actor: "ana".into(),
            reason: "wrong image".into(),
        },
        &stop_first(),
    );
    let unblock = LaneEvent::Unblock {
        actor: "ana".into(),
        reason: "go".into(),
    };
    assert!(matches!(
        apply_lane(&cancelled.view, &unblock, &stop_first(), T0),
        Err(TransitionError::Busy { .. })
    ));
}

#[test]
fn a_stop_first_start_counts_the_service_as_stopped_before_any_call() {
    let mut v = view_in(Some(StageState::Queued));
    v.lane.queued = Some(id(1));
    let d = step(&v, 1, Event::Dequeue, &stop_first());
    assert_eq!(state(&d, 1), Some(StageState::Migrating));
    let down = d.view.lane.down.clone().unwrap();
    assert_eq!((down.release, down.desired), (id(1), None));
    assert!(
        d.transitions.iter().all(|t| t.cause != Cause::AppStopped),
        "nothing recorded until ECS confirms the stop"
    );
    // Ended before any stop: the start finds the service running, and says nothing.
    let failed = step(
        &d.view,
        1,
        Event::ActionFailed {
            reason: "throttled".into(),
        },
        &stop_first(),
    );
    let up = step(
        &failed.view,
        1,
        Event::AppStarted {
            deployment_id: None,
            error: None,
        },
        &stop_first(),
    );
    assert_eq!(up.view.lane.down, None);
    assert!(up.transitions.is_empty(), "{:?}", up.transitions);
}

#[test]
fn the_deployment_that_brings_the_service_back_up_is_neither_cancelled_nor_given_up() {
    let deploying = step(&down().view, 1, Event::MigrationSucceeded, &stop_first());
    assert_eq!(state(&deploying, 1), Some(StageState::Deploying));
    let cancel = Event::Cancelled {
        actor: "ana".into(),
        reason: "oops".into(),
    };
    let refused = apply(&deploying.view, &id(1), &cancel, &stop_first(), T0);
    assert!(
        matches!(&refused, Err(TransitionError::Busy { why, .. }) if why.contains("let it finish")),
        "{refused:?}"
    );
    // AWS failed past its retries: tried again after a pause, the stage kept.
    let failed = step(
        &deploying.view,
        1,
        Event::ActionFailed {
            reason: "throttled".into(),
        },
        &stop_first(),
    );
    assert_eq!(state(&failed, 1), Some(StageState::Deploying));
    assert_eq!(
        failed.view.releases[&id(1)].stages[ENV].lease(),
        Some(T0.after(BLOCKED_RETRY))
    );
}

/// Release 1 migrated stop-first, brought the service back up and bakes: the schema moved
/// past release 0, the last known good.
fn serving_after_migration() -> Decision {
    let created = bringing_up();
    assert_eq!(
        created.view.lane.schema.as_ref().map(|s| &s.release),
        Some(&id(1))
    );
    let up = step(&created.view, 1, Event::DeploymentSucceeded, &stop_first());
    assert_eq!(state(&up, 1), Some(StageState::Baking));
    up
}

#[test]
fn only_a_completed_stop_first_migration_moves_the_schema() {
    assert_eq!(
        serving_after_migration()
            .view
            .lane
            .schema
            .map(|s| s.release),
        Some(id(1))
    );
    let online = Policy {
        migration: true,
        ..rolling()
    };
    let migrated = step(
        &view_in(Some(StageState::Migrating)),
        1,
        Event::MigrationSucceeded,
        &online,
    );
    assert_eq!(
        migrated.view.lane.schema.map(|s| s.release),
        None,
        "the old version runs beside it"
    );
}

/// The old version cannot run on the schema the new one's stop-first migration left: an
/// alarm during the new version's bake ends it, but nothing puts the old one back; the new
/// one keeps serving and a person is alerted, with the ways out.
#[test]
fn an_alarm_after_a_stop_first_migration_does_not_put_the_old_version_back() {
    let up = serving_after_migration();
    let alarm = Event::AlarmFired {
        alarm: "tiles-5xx".into(),
    };
    let d = step(&up.view, 1, alarm, &stop_first());
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::Deploy { .. })),
        "{:?}",
        d.actions
    );
    assert_eq!(d.view.lane.in_flight, None);
    assert_eq!(d.view.lane.current, Some(id(1)), "it still serves");
    let t = d.transitions.last().unwrap();
    assert_eq!(t.alert, Some(Alert::SchemaMoved));
    let why = t.detail.as_deref().unwrap_or_default();
    assert!(
        why.contains("stop-first migration here since replaced"),
        "{why}"
    );
    // Nor does the lane owe it later.
    assert!(
        !owed(&d.view, &stop_first(), T0.after(Duration::from_secs(3600)))
            .contains(&Owed::Apply(id(0), Event::Restore))
    );

    // An operator's plain rollback would do the same: refused, naming the way.
    let rollback = |to: Option<ReleaseId>| LaneEvent::Rollback {
        actor: "ana".into(),
        reason: "5xx".into(),
        to,
    };
    let refused = apply_lane(&d.view, &rollback(None), &stop_first(), T0);
    assert!(
        matches!(&refused, Err(TransitionError::NoRollbackTarget { why, .. }) if why.contains(&format!("--to {}", id(0)))),
        "{refused:?}"
    );
    // Named (the database restored first), it is done, and the mark goes with it.
    let named = apply_lane(&d.view, &rollback(Some(id(0))), &stop_first(), T0).unwrap();
    assert_eq!(
        named.actions,
        [Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    assert_eq!(named.view.lane.schema.as_ref().map(|s| &s.release), None);
}

/// A release after the migrated one restores the migrated one as any last known good.
#[test]
fn a_release_after_the_migrated_one_restores_it() {
    let mut v = serving_after_migration().view;
    let lane = &mut v.lane;
    lane.last_known_good = Some(id(1));
    lane.current = Some(id(1));
    lane.in_flight = Some(id(2));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .insert(ENV.into(), Stage::new(StageState::Succeeded, T0));
    let mut r2 = release(2);
    r2.stages
        .insert(ENV.into(), Stage::new(StageState::Deploying, T0));
    v.releases.insert(id(2), r2);
    let d = step(
        &v,
        2,
        Event::ActionFailed {
            reason: "denied".into(),
        },
        &stop_first(),
    );
    assert_eq!(
        d.actions,
        [Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
}

/// A stop-first stage cancelled while the invocation that owns it may still be stopping
/// the service: the start the lane owes waits until that invocation's lease ended, so a
/// stop landing late cannot leave the service at zero behind it (simulation seeds 231,
/// 15551: the start found the service running, then the stop landed).
#[test]
fn the_start_after_a_cancel_waits_for_a_stop_that_may_still_land() {
    let mut v = view_in(Some(StageState::Queued));
    v.lane.queued = Some(id(1));
    let d = step(&v, 1, Event::Dequeue, &stop_first());
    let until = d.view.releases[&id(1)].stages[ENV].lease().unwrap();
    let cancelled = apply(
        &d.view,
        &id(1),
        &Event::Cancelled {
            actor: "ana".into(),
            reason: "second thoughts".into(),
        },
        &stop_first(),
        T0.after(Duration::from_secs(1)),
    )
    .unwrap();
    assert_eq!(state(&cancelled, 1), Some(StageState::Cancelled));
    assert!(cancelled.view.lane.down.is_some());
    let before = Timestamp(until.0 - 1);
    assert!(
        !owed(&cancelled.view, &stop_first(), before)
            .iter()
            .any(|o| matches!(o, Owed::Act(Action::StartApp { .. }))),
        "nothing starts the service while the stop may still land"
    );
    assert_eq!(
        owed(&cancelled.view, &stop_first(), until),
        [Owed::Act(Action::StartApp {
            release: id(1),
            environment: ENV.into(),
            desired: None,
        })]
    );
}

/// A lane whose release 5 completed a stop-first migration (it runs) and whose release 1,
/// pushed before it, is in `state`.
fn past_schema(state: StageState) -> LaneView {
    let mut v = view_in(Some(state));
    let migrated = with_stage(release(5), StageState::Succeeded);
    v.lane.schema = Some(crate::release::Schema::of(&migrated));
    v.lane.current = Some(id(5));
    v.lane.last_known_good = Some(id(5));
    v.releases.insert(id(5), migrated);
    v
}

#[test]
fn a_retry_of_a_release_pushed_before_a_stop_first_migration_is_refused() {
    let v = past_schema(StageState::Failed);
    let retry = Event::Retry {
        actor: "ana".into(),
    };
    let refused = apply(&v, &id(1), &retry, &stop_first(), T0);
    assert!(
        matches!(&refused, Err(TransitionError::PastSchema { release, migrated, .. }) if *release == id(1) && *migrated == id(5)),
        "{refused:?}"
    );
    let why = refused.unwrap_err().to_string();
    assert!(why.contains(&format!("--to {}", id(1))), "{why}");
}

/// Retried while the migrating release was in flight, it waits in the queue; once the
/// migration completed, it is set aside instead of started, by a dequeue or by the lane
/// freeing.
#[test]
fn a_release_queued_from_before_a_stop_first_migration_is_set_aside_not_started() {
    let v = past_schema(StageState::Queued);
    let d = step(&v, 1, Event::Dequeue, &stop_first());
    assert_eq!(state(&d, 1), Some(StageState::Superseded));
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(d.view.lane.queued, None);

    let mut v = past_schema(StageState::Queued);
    let mut baking = release(6);
    let mut stage = Stage::new(StageState::Baking, T0);
    stage.phase = Phase::Baking { until: T0 };
    stage.deployment_id = Some("ecs-svc/6".into());
    baking.stages.insert(ENV.into(), stage);
    v.releases.insert(id(6), baking);
    v.lane.in_flight = Some(id(6));
    let done = step(&v, 6, Event::BakeElapsed, &stop_first());
    assert_eq!(state(&done, 6), Some(StageState::Succeeded));
    assert_eq!(state(&done, 1), Some(StageState::Superseded));
    assert!(
        !done.actions.iter().any(
            |a| matches!(a, Action::Deploy { release, .. } | Action::RunMigration { release, .. } if *release == id(1))
        ),
        "{:?}",
        done.actions
    );
}

/// A stop-first migration that completes after its stage ended still moves the schema;
/// with the service already started again on the release before it, a person is told.
#[test]
fn a_stop_first_migration_that_completes_after_its_stage_ended_moves_the_schema() {
    let v = view_in(Some(StageState::Cancelled));
    let d = step(&v, 1, Event::MigrationSucceeded, &stop_first());
    assert_eq!(
        d.view.lane.schema.as_ref().map(|s| &s.release),
        Some(&id(1))
    );
    let t = d.transitions.last().unwrap();
    assert_eq!(t.alert, Some(Alert::SchemaMoved));
    // Once: the same news again is refused.
    assert!(
        apply(
            &d.view,
            &id(1),
            &Event::MigrationSucceeded,
            &stop_first(),
            T0
        )
        .is_err()
    );
    // An online migration's late success changes nothing.
    let online = Policy {
        migration: true,
        ..rolling()
    };
    assert!(apply(&v, &id(1), &Event::MigrationSucceeded, &online, T0).is_err());
}

/// A deployment of a release pushed before the migration lands after its stage ended,
/// and the last known good too predates the migration (the migrated release failed):
/// nothing is put back, and a person is told that the late deployment runs.
#[test]
fn a_late_deployment_past_the_schema_with_nothing_to_restore_is_an_alert() {
    let mut v = past_schema(StageState::Cancelled);
    v.releases
        .get_mut(&id(5))
        .unwrap()
        .stages
        .insert(ENV.into(), Stage::new(StageState::RolledBack, T0));
    v.lane.last_known_good = Some(id(0));
    let late = Event::DeploymentCreated {
        deployment_id: "ecs-svc/late".into(),
        task_definition: None,
        fence: 0,
    };
    let d = step(&v, 1, late, &stop_first());
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::Deploy { .. })),
        "{:?}",
        d.actions
    );
    let t = d.transitions.last().unwrap();
    assert_eq!(t.alert, Some(Alert::SchemaMoved), "{t:?}");
    assert_eq!(
        d.view.lane.current,
        Some(id(1)),
        "what runs is recorded as running"
    );
}

/// The outage's alarm fired while the service was stopped (the outage's, acting on
/// nothing) and still fires well into the bake of the release that brought the service
/// back up: no change of it arrives, so it would hold the bake for ever (simulation seed
/// 99305). Once settled, it is that release's own; before, or on an online lane, not.
#[test]
fn the_outages_alarm_still_firing_into_the_bake_is_the_new_releases_own() {
    use crate::release::machine::owed::{ALARM_SETTLE, outlasting_outage};
    let mut v = serving_after_migration().view;
    firing(&mut v, "tiles-5xx");
    let bake_start = v.releases[&id(1)].stages[ENV].since;
    v.lane.alarms.get_mut("tiles-5xx").unwrap().at = Timestamp(bake_start.0 - 1);
    assert_eq!(
        outlasting_outage(&v, &stop_first(), bake_start),
        None,
        "not settled"
    );
    let later = bake_start.after(ALARM_SETTLE);
    assert_eq!(
        outlasting_outage(&v, &stop_first(), later),
        Some((id(1), "tiles-5xx".to_string()))
    );
    assert_eq!(
        outlasting_outage(&v, &rolling(), later),
        None,
        "online: its own edge"
    );
    // An alarm that fired during the bake itself is its edge's (applied as it came).
    v.lane.alarms.get_mut("tiles-5xx").unwrap().at = bake_start;
    assert_eq!(outlasting_outage(&v, &stop_first(), later), None);
}
