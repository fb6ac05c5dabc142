//! News that arrives after its stage ended or was replaced: late deployments, stops that
//! came too late, a failed CodeDeploy rollback, an old success.

use super::*;

/// Issue #22, defect 1: a deployment created after its stage ended (an alarm, an operator
/// or a deadline ended it while CreateDeployment was in flight) is recorded and undone,
/// not refused and left running unrecorded.
#[test]
fn a_deployment_created_after_its_stage_ended_is_recorded_and_undone() {
    let created = Event::DeploymentCreated {
        deployment_id: "d-late".into(),
        task_definition: Some("td:7".into()),
        fence: 0,
    };
    for ended in [
        StageState::RolledBack,
        StageState::Cancelled,
        StageState::Failed,
    ] {
        // CodeDeploy: the late deployment is stopped and rolled back.
        let d = apply(&view_in(Some(ended)), &id(1), &created, &policy(), T0).unwrap();
        let stage = &d.view.releases[&id(1)].stages[ENV];
        assert_eq!(stage.state(), ended);
        assert_eq!(stage.deployment_id.as_deref(), Some("d-late"));
        assert_eq!(
            d.actions,
            vec![Action::StopDeployment {
                release: id(1),
                environment: ENV.into(),
                deployment_id: "d-late".into(),
                rollback: true,
            }]
        );
        assert_eq!(d.transitions.len(), 1, "history says so");
        // A replay of the same outcome changes nothing more.
        assert!(apply(&d.view, &id(1), &created, &policy(), T0).is_err());

        // Rolling: what the lane records as running is deployed again.
        let rolling = Policy {
            undo_by_redeploy: true,
            ..policy()
        };
        let d = apply(&view_in(Some(ended)), &id(1), &created, &rolling, T0).unwrap();
        assert_eq!(
            d.actions,
            vec![Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true,
            }]
        );
    }
}

/// A rolling service's late deployment of a release that was rolled back replaced the
/// restore in flight (the newest UpdateService wins): the restore is deployed again, and
/// its history says why (found by the simulation, seed 1670, where the second deployment
/// went unexplained).
#[test]
fn a_late_rolling_deployment_makes_the_restore_in_flight_deploy_again_and_says_why() {
    let rolling = rolling();
    let v = restore_in_flight(StageState::RolledBack, StageState::Validating, |s| {
        s.deployment_id = Some("ecs-svc/67".into())
    });
    let late = Event::DeploymentCreated {
        deployment_id: "ecs-svc/68".into(),
        task_definition: None,
        fence: 0,
    };
    let d = apply(&v, &id(1), &late, &rolling, T0).unwrap();
    let stage = &d.view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.state(), StageState::Deploying);
    assert_eq!(stage.deployment_id, None);
    assert_eq!(stage.ended, ["ecs-svc/67"]);
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    let why = d
        .transitions
        .iter()
        .find(|t| t.release == Some(id(0)) && t.cause == Cause::Redeployed)
        .and_then(|t| t.detail.clone())
        .unwrap();
    assert!(
        why.contains("ecs-svc/67 was replaced by ecs-svc/68"),
        "{why}"
    );
}

/// A late deployment that lands while the restore in flight is still being made (its
/// UpdateService may have run before the late one): no second deploy races the first
/// (two would register two revisions, simulation seed 94187); the first one's answer is
/// refused, since the late one may have replaced it (seed 7614), and the action is made
/// again once its lease ends, whose answer counts.
#[test]
fn a_late_rolling_deployment_fences_off_the_answer_of_the_deploy_still_in_flight() {
    let rolling = rolling();
    let v = restore_in_flight(StageState::Cancelled, StageState::Deploying, |s| {
        s.set_lease(T0.after(LEASE))
    });
    let late = Event::DeploymentCreated {
        deployment_id: "ecs-svc/68".into(),
        task_definition: None,
        fence: 0,
    };
    let d = apply(&v, &id(1), &late, &rolling, T0).unwrap();
    assert!(
        d.actions.is_empty(),
        "no second deploy races the first: {:?}",
        d.actions
    );
    let stage = &d.view.releases[&id(0)].stages[ENV];
    assert_eq!((stage.state(), stage.fence), (StageState::Deploying, 1));
    assert!(
        d.transitions
            .iter()
            .any(|t| t.release == Some(id(0)) && t.cause == Cause::Redeployed),
        "{:?}",
        d.transitions
    );
    let answer = |fence| Event::DeploymentCreated {
        deployment_id: "ecs-svc/66".into(),
        task_definition: None,
        fence,
    };
    let soon = Timestamp(T0.0 + 1);
    assert!(matches!(
        apply(&d.view, &id(0), &answer(0), &rolling, soon),
        Err(TransitionError::FencedDeployment { .. })
    ));
    // Taken over when the lease ends: the deploy is made again, and its answer counts.
    let later = T0.after(LEASE);
    let resumed = apply(&d.view, &id(0), &Event::ActionResumed, &rolling, later).unwrap();
    assert!(matches!(resumed.actions[..], [Action::Deploy { .. }]));
    let taken = apply(&resumed.view, &id(0), &answer(1), &rolling, later).unwrap();
    let stage = &taken.view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.deployment_id.as_deref(), Some("ecs-svc/66"));
}

/// A rolling deployment a newer one replaced (another release's that landed unrecorded,
/// or a change by hand) is made again, once the reconciler sees it is no longer PRIMARY
/// (simulation seed 21288); on a blue/green service, or for a deployment the stage does
/// not run, the news changes nothing.
#[test]
fn a_replaced_rolling_deployment_is_made_again() {
    let rolling = rolling();
    let mut v = view_in(Some(StageState::Deploying));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("ecs-svc/66".into());
    let replaced = |d: &str| Event::DeploymentReplaced {
        deployment_id: d.into(),
    };
    let d = apply(&v, &id(1), &replaced("ecs-svc/66"), &rolling, T0).unwrap();
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.deployment_id, None);
    assert_eq!(stage.ended, ["ecs-svc/66"]);
    assert_eq!(stage.fence, 1);
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false,
        }]
    );
    assert!(
        d.transitions.iter().any(|t| t.cause == Cause::Redeployed
            && t.detail
                .as_deref()
                .is_some_and(|w| w.contains("ecs-svc/66 was replaced"))),
        "{:?}",
        d.transitions
    );
    assert!(matches!(
        apply(&v, &id(1), &replaced("ecs-svc/65"), &rolling, T0),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(matches!(
        apply(&v, &id(1), &replaced("ecs-svc/66"), &policy(), T0),
        Err(TransitionError::NotAllowed { .. })
    ));
}

/// What runs must be good: when a stop came too late (the deployment had succeeded), the
/// lane records what runs and owes the last known good's restore, once. A success older
/// than the current release's (it replaced it since) says nothing.
#[test]
fn what_runs_after_a_stop_too_late_is_replaced_by_the_last_known_good_once() {
    let mut v = view_in(Some(StageState::RolledBack));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    // A late SUCCESS of a CodeDeploy deployment says it runs; a rolling service's may
    // have been replaced since, so only the stop's own outcome says so there.
    let late = apply(&v, &id(1), &Event::DeploymentSucceeded, &policy(), T0).unwrap();
    assert_eq!(late.view.lane.current, Some(id(1)));
    let rolling = rolling();
    assert!(apply(&v, &id(1), &Event::DeploymentSucceeded, &rolling, T0).is_err());
    // The stop the lane owes says so too; a duplicate's late outcome (the lane no longer
    // owes it) does not.
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: true,
    };
    let duplicate = apply(&v, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(duplicate.view.lane.current, Some(id(0)));
    v.lane.stopping = Some(id(1));
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: true,
    };
    let d = apply(&v, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(1)), "the lane says what runs");
    assert_eq!(
        d.view.releases[&id(1)].state_in(ENV),
        Some(StageState::RolledBack)
    );
    let restored = apply(&d.view, &id(0), &Event::Restore, &policy(), T0).unwrap();
    assert_eq!(restored.view.lane.in_flight, Some(id(0)));
    assert_eq!(
        restored.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    assert!(owed(&restored.view, &policy(), T0).is_empty(), "once");
    // With the good release running, there is nothing to restore.
    assert!(apply(&view_in(None), &id(0), &Event::Restore, &policy(), T0).is_err());
}

/// A stop that reached a deployment that had already succeeded stopped nothing: the
/// release runs, the lane says so, and the last known good is owed (found by the
/// simulation, with the deployment's own SUCCESS event lost).
#[test]
fn a_stop_too_late_records_what_runs_and_owes_the_restore() {
    let mut v = view_in(Some(StageState::RolledBack));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    v.lane.stopping = Some(id(1));
    let stopped = |succeeded| Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded,
    };
    let d = apply(&v, &id(1), &stopped(false), &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(0)));
    assert!(owed(&d.view, &policy(), T0).is_empty());
    let d = apply(&v, &id(1), &stopped(true), &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(
        owed(&d.view, &policy(), T0),
        vec![Owed::Apply(id(0), Event::Restore)]
    );
}

/// CodeDeploy's rollback of a release's deployment failed after the release had moved on
/// (an operator retried it, and a newer push superseded it: simulation seed 58387, where
/// the bad version kept part of production traffic and its alarm held the queue): the
/// lane records it as what may run, and owes the last known good's restore.
#[test]
fn a_failed_codedeploy_rollback_of_a_release_that_moved_on_restores_the_last_known_good() {
    let v = view_in(Some(StageState::Superseded));
    let failed = Event::RollbackReported {
        deployment_id: "d-rb".into(),
        detail: "CodeDeploy's rollback deployment d-rb (of d-1) failed".into(),
        failed: true,
    };
    let d = apply(&v, &id(1), &failed, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(
        owed(&d.view, &policy(), T0),
        vec![Owed::Apply(id(0), Event::Restore)]
    );
    let restored = apply(&d.view, &id(0), &Event::Restore, &policy(), T0).unwrap();
    assert_eq!(
        restored.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Deploying)
    );
    // A release deploying again moves all traffic itself: nothing is owed for it.
    let again = view_in(Some(StageState::Deploying));
    let d = apply(&again, &id(1), &failed, &policy(), T0).unwrap();
    assert_ne!(d.view.lane.current, Some(id(1)));
}

/// A late SUCCESS that is older than what the lane deployed since (a restore succeeded
/// after the stage ended) does not say it runs (found in review: a duplicate flipped the
/// lane back to the rolled-back release).
#[test]
fn a_late_success_older_than_the_current_release_changes_nothing() {
    let mut v = view_in(Some(StageState::RolledBack));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    v.releases
        .get_mut(&id(0))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .succeeded_at = Some(Timestamp(T0.0 + 60_000));
    assert!(apply(&v, &id(1), &Event::DeploymentSucceeded, &policy(), T0).is_err());
}

/// A data-job action that finished after its stage was cancelled moved the triggers to the
/// cancelled release: the lane records it as running and owes the last known good's
/// restore (which moves them back); the same outcome again changes nothing.
#[test]
fn a_data_job_action_that_finished_after_its_stage_ended_makes_the_lane_restore_the_last_known_good()
 {
    let v = view_in(Some(StageState::Cancelled));
    let jobs = Policy {
        bake: std::time::Duration::ZERO,
        ..rolling()
    };
    let late = Event::JobsUpdated {
        task_definitions: vec!["etl:5".into()],
        triggers: vec!["schedule jobs/nightly moved from etl:4 to etl:5".into()],
    };
    let d = apply(&v, &id(1), &late, &jobs, T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(1)));
    let why = d.transitions.last().and_then(|t| t.detail.clone()).unwrap();
    assert!(
        why.contains("finished after the stage ended: the last known good is deployed again"),
        "{why}"
    );
    assert_eq!(
        crate::release::owed(&d.view, &jobs, T0),
        [crate::release::Owed::Apply(id(0), Event::Restore)]
    );
    assert!(apply(&d.view, &id(1), &late, &jobs, T0).is_err(), "once");
}

/// A data-job lane: release 1 deploying, its action owned by an invocation until `lease`.
fn jobs_deploying(lease: Timestamp) -> (LaneView, Policy) {
    let mut v = view_in(Some(StageState::Deploying));
    stage_mut(&mut v, 1).set_lease(lease);
    let jobs = Policy {
        bake: std::time::Duration::ZERO,
        data_jobs: true,
        ..rolling()
    };
    (v, jobs)
}

fn cancel() -> Event {
    Event::Cancelled {
        actor: "ana".into(),
        reason: "second thoughts".into(),
    }
}

/// A data-job stage cancelled while its action may still be moving triggers (its lease is
/// live): the last known good's restore is decided, but its action waits until the lease
/// ends, so the cancelled release's moves can never land after it (simulation seeds 2214,
/// 2231, 2689). After the lease, the reconciler's pass takes it over, saying why it waited.
#[test]
fn a_cancelled_data_job_stage_whose_action_may_still_run_defers_the_restore_until_its_lease_ends() {
    let until = T0.after(LEASE);
    let (v, jobs) = jobs_deploying(until);
    let d = apply(&v, &id(1), &cancel(), &jobs, T0).unwrap();
    assert_eq!(
        d.view.releases[&id(1)].state_in(ENV),
        Some(StageState::Cancelled)
    );
    assert_eq!(d.view.lane.in_flight, Some(id(0)), "the restore is decided");
    assert!(d.actions.is_empty(), "but not run: {:?}", d.actions);
    let unsettled = d.view.lane.unsettled.clone().unwrap();
    assert_eq!((unsettled.release, unsettled.until), (id(1), until));
    let restore = &d.view.releases[&id(0)].stages[ENV];
    assert_eq!(restore.lease(), Some(until));

    // Nothing is owed while the lease runs; once it ended, the restore is taken over.
    let before = Timestamp(until.0 - 1);
    assert!(crate::release::owed(&d.view, &jobs, before).is_empty());
    assert_eq!(
        crate::release::owed(&d.view, &jobs, until),
        [crate::release::Owed::Apply(id(0), Event::ActionResumed)]
    );
    let r = apply(&d.view, &id(0), &Event::ActionResumed, &jobs, until).unwrap();
    assert_eq!(
        r.actions,
        [Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    assert_eq!(r.view.lane.unsettled, None);
    let why = r.transitions.last().and_then(|t| t.detail.clone()).unwrap();
    assert!(why.contains("waited until"), "{why}");
}

/// The cancelled release's action reports back (it moved the triggers) before its lease
/// ended: the lane is settled at once, and the deferred restore runs now.
#[test]
fn the_late_outcome_of_an_unsettled_data_job_action_lets_the_deferred_restore_run_at_once() {
    let until = T0.after(LEASE);
    let (v, jobs) = jobs_deploying(until);
    let d = apply(&v, &id(1), &cancel(), &jobs, T0).unwrap();
    let late = Event::JobsUpdated {
        task_definitions: vec!["etl:5".into()],
        triggers: vec!["schedule jobs/nightly moved from etl:4 to etl:5".into()],
    };
    let now = T0.after(std::time::Duration::from_secs(3));
    let r = apply(&d.view, &id(1), &late, &jobs, now).unwrap();
    assert_eq!(
        r.view.lane.current,
        Some(id(1)),
        "it runs until the restore"
    );
    assert_eq!(r.view.lane.unsettled, None);
    assert_eq!(
        r.actions,
        [Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    assert_eq!(
        r.view.releases[&id(0)].stages[ENV].lease(),
        Some(until.after(LEASE)),
        "the invocation that runs it owns it, a whole lease past the deferred end"
    );
}

/// Not deferred: a data-job stage whose lease already ran out (its invocation is gone), a
/// failure its own action reported, and a service that is not data jobs.
#[test]
fn a_restore_runs_at_once_when_no_data_job_action_can_still_run() {
    let restore = [Action::Deploy {
        release: id(0),
        environment: ENV.into(),
        redeploy: true,
    }];
    let (v, jobs) = jobs_deploying(T0);
    let d = apply(&v, &id(1), &cancel(), &jobs, T0).unwrap();
    assert_eq!(
        (d.actions.as_slice(), d.view.lane.unsettled),
        (&restore[..], None)
    );

    let (v, jobs) = jobs_deploying(T0.after(LEASE));
    let failed = Event::ActionFailed {
        reason: "ECS RegisterTaskDefinition: denied".into(),
    };
    let d = apply(&v, &id(1), &failed, &jobs, T0).unwrap();
    assert_eq!(
        (d.actions.as_slice(), d.view.lane.unsettled),
        (&restore[..], None)
    );

    let (v, _) = jobs_deploying(T0.after(LEASE));
    let d = apply(&v, &id(1), &cancel(), &rolling(), T0).unwrap();
    assert_eq!(
        (d.actions.as_slice(), d.view.lane.unsettled),
        (&restore[..], None)
    );
}
