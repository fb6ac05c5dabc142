//! A release's way through a lane: arrival, the queue and superseding, approval,
//! migration, the bake and its timer, success and promotion.

use super::*;

#[test]
fn arrival_on_a_free_lane_deploys_and_takes_the_slot() {
    let d = arrive(&empty_view(), release(1), &policy());
    assert_eq!(state(&d, 1), Some(StageState::Deploying));
    assert_eq!(d.view.lane.in_flight, Some(id(1)));
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false
        }]
    );
}

#[test]
fn push_while_in_flight_queues_and_a_later_push_supersedes() {
    let p = policy();
    let d1 = arrive(&empty_view(), release(1), &p);
    let d2 = arrive(&d1.view, release(2), &p);
    assert_eq!(state(&d2, 2), Some(StageState::Queued));
    assert_eq!(d2.view.lane.queued, Some(id(2)));
    assert!(d2.actions.is_empty(), "a queued release deploys nothing");
    let d3 = arrive(&d2.view, release(3), &p);
    assert_eq!(state(&d3, 2), Some(StageState::Superseded));
    assert_eq!(state(&d3, 3), Some(StageState::Queued));
    assert_eq!(d3.view.lane.queued, Some(id(3)));
    assert_eq!(d3.transitions.len(), 2);
    assert_eq!(d3.transitions[0].cause, Cause::Superseded);

    // When the in-flight release ends, only the newest deploys.
    let d4 = step(
        &d3.view,
        1,
        Event::DeploymentFailed { reason: "x".into() },
        &p,
    );
    assert_eq!(state(&d4, 1), Some(StageState::Failed));
    assert_eq!(state(&d4, 3), Some(StageState::Deploying));
    assert_eq!(d4.view.lane.in_flight, Some(id(3)));
    assert_eq!(d4.view.lane.queued, None);
    assert_eq!(
        d4.actions,
        vec![Action::Deploy {
            release: id(3),
            environment: ENV.into(),
            redeploy: false
        }]
    );
}

#[test]
fn pushes_at_the_same_instant_end_the_same_whichever_arrives_first() {
    let p = policy();
    // Releases 2 and 3 share their push time (every test release is pushed at T0); 3 has
    // the greater digest.
    assert_eq!(release(2).pushed_at, release(3).pushed_at);
    assert!(release(2).digest < release(3).digest);
    let busy = arrive(&empty_view(), release(1), &p);
    for order in [[2, 3], [3, 2]] {
        let first = arrive(&busy.view, release(order[0]), &p);
        let second = arrive(&first.view, release(order[1]), &p);
        assert_eq!(state(&second, 3), Some(StageState::Queued), "{order:?}");
        assert_eq!(state(&second, 2), Some(StageState::Superseded), "{order:?}");
        assert_eq!(second.view.lane.queued, Some(id(3)));
        assert_eq!(
            second.view.lane.newest_digest,
            Some(release(3).digest),
            "{order:?}"
        );
    }
    // Arriving second, the lesser digest is superseded on arrival, and says why.
    let first = arrive(&busy.view, release(3), &p);
    let second = arrive(&first.view, release(2), &p);
    let why = second.transitions[0].detail.clone().unwrap();
    assert!(
        why.contains("the same instant as") && why.contains(release(3).digest.short()),
        "{why}"
    );
    // A push a millisecond later is newer whatever its digest.
    let mut later = release(2);
    later.pushed_at = T0.after(Duration::from_millis(1));
    let after = arrive(&first.view, later, &p);
    assert_eq!(state(&after, 2), Some(StageState::Queued));
    assert_eq!(state(&after, 3), Some(StageState::Superseded));
}

#[test]
fn full_happy_path_bakes_then_succeeds_and_promotes() {
    let p = policy();
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-9".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert_eq!(
        d.view.releases[&id(1)].stages[ENV].deployment_id.as_deref(),
        Some("d-9")
    );
    // The same outcome delivered again changes nothing.
    let again = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-9".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert!(again.is_noop());
    assert!(matches!(
        apply(
            &d.view,
            &id(1),
            &Event::DeploymentCreated {
                deployment_id: "d-other".into(),
                task_definition: None,
                fence: 0,
            },
            &p,
            T0
        ),
        Err(TransitionError::DeploymentMismatch { .. })
    ));
    let d = step(&d.view, 1, Event::ValidationStarted, &p);
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&d, 1), Some(StageState::Baking));
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(
        d.view.releases[&id(1)].stages[ENV].bake_until(),
        Some(T0.after(p.bake))
    );
    assert_eq!(
        d.actions,
        vec![Action::SetTimer {
            release: id(1),
            environment: ENV.into(),
            attempt: 0,
            at: T0.after(p.bake),
        }],
        "the bake ends by its timer"
    );
    let d = step(&d.view, 1, Event::BakeElapsed, &p);
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert_eq!(d.view.lane.last_known_good, Some(id(1)));
    assert_eq!(d.view.lane.in_flight, None);
    assert_eq!(
        d.actions,
        vec![
            Action::ClearTimer {
                release: id(1),
                environment: ENV.into(),
                attempt: 0,
            },
            Action::Promote {
                release: id(1),
                from: ENV.into(),
                to: "staging".into()
            }
        ]
    );
}

#[test]
fn a_bake_ends_held_while_one_of_the_lanes_own_alarms_fires_and_ends_when_it_is_ok() {
    let p = policy();
    let mut view = view_in(Some(StageState::Baking));
    let until = T0.after(p.bake);
    view.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .phase = Phase::Baking { until };
    view.lane.alarms.insert(
        "api-5xx".into(),
        AlarmSeen {
            state: AlarmState::Alarm,
            at: T0,
        },
    );
    let held = apply(&view, &id(1), &Event::BakeElapsed, &p, until).unwrap_err();
    assert!(
        matches!(&held, TransitionError::Held { why, .. } if why.contains("api-5xx in ALARM")),
        "{held}"
    );
    assert!(
        held.to_string().contains("shiplane promote --skip-bake"),
        "{held}"
    );
    assert!(
        owed(&view, &p, until).is_empty(),
        "a held bake is not owed again until the alarm is OK"
    );
    // An operator's emergency promotion is not held.
    let early = step(
        &view,
        1,
        Event::PromotedEarly {
            actor: "ana".into(),
            reason: "hotfix".into(),
        },
        &p,
    );
    assert_eq!(state(&early, 1), Some(StageState::Succeeded));
    view.lane.alarms.get_mut("api-5xx").unwrap().state = AlarmState::Ok;
    assert_eq!(
        owed(&view, &p, until),
        vec![Owed::Apply(id(1), Event::BakeElapsed)]
    );
    let d = apply(&view, &id(1), &Event::BakeElapsed, &p, until).unwrap();
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
}

#[test]
fn a_timer_outcome_is_recorded_in_any_state_and_a_retried_stage_bakes_under_a_new_timer() {
    let p = policy();
    let view = view_in(Some(StageState::Failed));
    let d = step(
        &view,
        1,
        Event::BakeTimer {
            schedule: "bake-1-0-dev".into(),
            set: false,
            error: Some("AccessDenied".into()),
        },
        &p,
    );
    assert_eq!(d.transitions[0].cause, Cause::TimerFailed);
    assert!(
        d.transitions[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("clearing bake-1-0-dev: AccessDenied; the reconciler ends the bake"),
        "{:?}",
        d.transitions[0].detail
    );
    let d = step(
        &d.view,
        1,
        Event::Retry {
            actor: "ana".into(),
        },
        &p,
    );
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    assert!(
        matches!(d.actions.as_slice(), [Action::SetTimer { attempt: 1, .. }]),
        "{:?}",
        d.actions
    );
}

#[test]
fn zero_bake_and_last_environment_succeed_without_promotion() {
    let p = Policy {
        bake: Duration::ZERO,
        next_environment: None,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert!(d.actions.is_empty());
}

#[test]
fn migration_runs_first_and_its_failure_deploys_nothing() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Migrating));
    assert_eq!(
        d.actions,
        vec![Action::RunMigration {
            release: id(1),
            environment: ENV.into()
        }]
    );
    let ok = step(&d.view, 1, Event::MigrationSucceeded, &p);
    assert_eq!(
        ok.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false
        }]
    );
    let bad = step(
        &d.view,
        1,
        Event::MigrationFailed {
            reason: "exit code 1".into(),
        },
        &p,
    );
    assert_eq!(state(&bad, 1), Some(StageState::Failed));
    assert_eq!(
        bad.view.releases[&id(1)].stages[ENV].reason.as_deref(),
        Some("exit code 1")
    );
    assert!(bad.actions.is_empty());
    assert_eq!(bad.view.lane.in_flight, None);
}

#[test]
fn manual_approval_waits_and_approval_while_busy_queues() {
    let p = Policy {
        approval: Approval::Manual,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::AwaitingApproval));
    assert!(d.actions.is_empty());
    let approved = step(
        &d.view,
        1,
        Event::Approved {
            actor: "ana".into(),
        },
        &p,
    );
    assert_eq!(state(&approved, 1), Some(StageState::Deploying));
    assert_eq!(approved.transitions[0].actor.as_deref(), Some("ana"));

    // Release 2 awaits approval while 1 is in flight; approving it queues it, and it
    // deploys when 1 ends without asking again.
    let d2 = arrive(&approved.view, release(2), &p);
    let d2 = step(
        &d2.view,
        2,
        Event::Approved {
            actor: "ben".into(),
        },
        &p,
    );
    assert_eq!(state(&d2, 2), Some(StageState::Queued));
    assert_eq!(
        d2.view.releases[&id(2)].stages[ENV].approved_by.as_deref(),
        Some("ben")
    );
    let d3 = step(
        &d2.view,
        1,
        Event::DeploymentFailed { reason: "x".into() },
        &p,
    );
    assert_eq!(state(&d3, 2), Some(StageState::Deploying));

    // A release still awaiting approval does not start when the lane frees up.
    let d4 = arrive(&approved.view, release(3), &p);
    let d5 = step(
        &d4.view,
        1,
        Event::DeploymentFailed { reason: "x".into() },
        &p,
    );
    assert_eq!(state(&d5, 3), Some(StageState::AwaitingApproval));
    assert_eq!(d5.view.lane.in_flight, None);
}
