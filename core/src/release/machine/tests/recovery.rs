//! Work a crash, an expired lease, a busy deployment group or a lost race left: taken up
//! again once, with its history in order.

use super::*;

#[test]
fn a_busy_deployment_group_queues_the_release_instead_of_failing() {
    let p = policy();
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentBlocked {
            reason: "group busy with d-HAND".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert_eq!(d.view.lane.in_flight, None);
    assert_eq!(d.view.lane.queued, Some(id(1)));
    assert!(
        d.actions.is_empty(),
        "nothing retries at once into the same busy group"
    );

    // With a newer release already waiting, the blocked one gives way to it.
    let d = arrive(&empty_view(), release(1), &p);
    let d = arrive(&d.view, release(2), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentBlocked {
            reason: "busy".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::Superseded));
    assert_eq!(d.view.lane.queued, Some(id(2)));

    // Once a deployment exists, a block cannot apply to it.
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert!(matches!(
        apply(
            &d.view,
            &id(1),
            &Event::DeploymentBlocked { reason: "x".into() },
            &p,
            T0
        ),
        Err(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn migration_task_is_recorded_then_cleared_for_the_deployment() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::MigrationStarted {
            task_arn: "arn:task/9".into(),
        },
        &p,
    );
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.started(), Some("arn:task/9"));
    assert!(
        matches!(&stage.phase, Phase::Migrating { task: Some(t), .. } if t == "arn:task/9"),
        "the task is the migration's own: {stage:?}"
    );
    assert_eq!(stage.deployment_id, None, "a task is not a deployment");
    assert!(
        step(
            &d.view,
            1,
            Event::MigrationStarted {
                task_arn: "arn:task/9".into()
            },
            &p
        )
        .is_noop()
    );
    let d = step(&d.view, 1, Event::MigrationSucceeded, &p);
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.state(), StageState::Deploying);
    assert_eq!(stage.started(), None, "the deployment records its own");
}

#[test]
fn pending_action_names_the_work_a_crash_interrupted() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let r = &d.view.releases[&id(1)];
    assert_eq!(
        pending_action(r, ENV),
        Some(Action::RunMigration {
            release: id(1),
            environment: ENV.into()
        })
    );
    let d = step(
        &d.view,
        1,
        Event::MigrationStarted {
            task_arn: "t".into(),
        },
        &p,
    );
    assert_eq!(
        pending_action(&d.view.releases[&id(1)], ENV),
        None,
        "the task runs; its stop event continues"
    );
    let d = step(&d.view, 1, Event::MigrationSucceeded, &p);
    assert_eq!(
        pending_action(&d.view.releases[&id(1)], ENV),
        Some(Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false
        })
    );
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert_eq!(pending_action(&d.view.releases[&id(1)], ENV), None);
    assert_eq!(
        pending_action(&d.view.releases[&id(1)], "prod"),
        None,
        "never reached prod"
    );
}

/// A deployment's revision is recorded with it, so that a restore deploys that revision
/// again; a retry starts afresh.
#[test]
fn the_deployed_revision_is_recorded_and_a_retry_forgets_it() {
    let d = apply(
        &view_in(Some(StageState::Deploying)),
        &id(1),
        &Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: Some("arn:td/api:7".into()),
            fence: 0,
        },
        &policy(),
        T0,
    )
    .unwrap();
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.task_definition.as_deref(), Some("arn:td/api:7"));
    let failed = apply(
        &d.view,
        &id(1),
        &Event::DeploymentFailed { reason: "x".into() },
        &policy(),
        T0,
    )
    .unwrap();
    let retried = apply(
        &failed.view,
        &id(1),
        &Event::Retry { actor: "me".into() },
        &policy(),
        T0,
    )
    .unwrap();
    assert_eq!(
        retried.view.releases[&id(1)].stages[ENV].task_definition,
        None
    );
}

/// Issue #22, defect 5: the action a stage owes belongs to the invocation that committed
/// it until its lease runs out; then exactly one taker wins it (the commit is conditional
/// on the release's version, and the taker renews the lease).
#[test]
fn a_dead_owners_action_is_taken_over_once_after_its_lease() {
    let d = apply(
        &view_in(Some(StageState::Queued)),
        &id(1),
        &Event::Dequeue,
        &policy(),
        T0,
    )
    .unwrap();
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.lease(), Some(T0.after(LEASE)));
    let within = Timestamp(T0.0 + 1000);
    assert!(
        owed(&d.view, &policy(), within).is_empty(),
        "the owner runs it"
    );
    assert!(apply(&d.view, &id(1), &Event::ActionResumed, &policy(), within).is_err());
    let after = T0.after(LEASE);
    assert_eq!(
        owed(&d.view, &policy(), after),
        vec![Owed::Apply(id(1), Event::ActionResumed)]
    );
    let taken = apply(&d.view, &id(1), &Event::ActionResumed, &policy(), after).unwrap();
    assert_eq!(
        taken.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false,
        }]
    );
    assert_eq!(taken.transitions[0].cause, Cause::ActionResumed);
    assert_eq!(
        taken.view.releases[&id(1)].stages[ENV].lease(),
        Some(after.after(LEASE))
    );
    assert!(
        apply(&taken.view, &id(1), &Event::ActionResumed, &policy(), after).is_err(),
        "a second taker finds it owned again"
    );
    assert_eq!(
        taken.view.releases[&id(1)].stages[ENV].resumed,
        1,
        "the taker's deployer looks for the dead owner's deployment first"
    );
}

/// A decision that lost a race decides again after a later one committed, with its own
/// (earlier) invocation time: its history item must not read as before the change it
/// follows (found by the simulation, seed 25: a release superseded "before" it arrived).
#[test]
fn history_never_goes_back_in_time_for_a_stage() {
    let mut v = view_in(Some(StageState::Queued));
    let later = Timestamp(T0.0 + 5_000);
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .since = later;
    let d = apply(&v, &id(1), &Event::Dequeue, &policy(), T0).unwrap();
    assert_eq!(d.transitions[0].at, later);
    assert_eq!(d.view.releases[&id(1)].stages[ENV].since, later);
}

/// The same for a fact recorded without a change of state: a bake timer's outcome recorded
/// at T+2s, then a rollback decided at T+1s that lost the race to it, is recorded after it
/// (found by the simulation, seed 58835: the history ended at `baking` under a rollback).
#[test]
fn history_never_goes_back_before_a_recorded_fact() {
    let recorded = Timestamp(T0.0 + 2_000);
    let timer = Event::BakeTimer {
        schedule: "s".into(),
        set: true,
        error: Some("throttled".into()),
    };
    let view = apply(
        &view_in(Some(StageState::Baking)),
        &id(1),
        &timer,
        &policy(),
        recorded,
    )
    .unwrap()
    .view;
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let d = apply(&view, &id(1), &alarm, &policy(), Timestamp(T0.0 + 1_000)).unwrap();
    let rolled_back = d
        .transitions
        .iter()
        .find(|t| t.release == Some(id(1)) && t.to == Some(StageState::RolledBack))
        .unwrap();
    assert_eq!(rolled_back.at, recorded);
}

/// An operator's retry of a release whose deployment is still owed a stop (the stop was
/// throttled) is refused until the stop is done: the new attempt would forget the old
/// deployment, which would go on to serve (simulation seed 17891).
#[test]
fn a_retry_waits_for_the_stop_its_old_deployment_is_owed() {
    let mut v = view_in(Some(StageState::Validating));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let d = apply(&v, &id(1), &alarm, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.stopping, Some(id(1)));
    let retry = Event::Retry {
        actor: "ana".into(),
    };
    let refused = apply(&d.view, &id(1), &retry, &policy(), T0).unwrap_err();
    assert!(
        refused.to_string().contains("d-1 is still being stopped"),
        "{refused}"
    );
    // Once the stop is recorded, the retry goes ahead.
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: false,
    };
    let d = apply(&d.view, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.stopping, None);
    assert!(apply(&d.view, &id(1), &retry, &policy(), T0).is_ok());
}

/// A stop committed whose invocation died before running it is still owed, until its
/// outcome is recorded (found by the simulation: the alarm's commit landed, its answer was
/// lost, the stop never ran and the bad release shipped).
#[test]
fn a_stop_whose_invocation_died_is_still_owed() {
    let v = view_in(Some(StageState::Validating));
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let d = apply(&v, &id(1), &alarm, &policy(), T0).unwrap();
    let stop = Action::StopDeployment {
        release: id(1),
        environment: ENV.into(),
        deployment_id: "d-1".into(),
        rollback: true,
    };
    assert!(d.actions.contains(&stop));
    assert_eq!(d.view.lane.stopping, Some(id(1)));
    assert!(owed(&d.view, &policy(), T0).contains(&Owed::Act(stop)));
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: false,
    };
    let done = apply(&d.view, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(done.view.lane.stopping, None);
    assert!(owed(&done.view, &policy(), T0).is_empty());
}
