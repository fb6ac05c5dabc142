//! Putting the last known good back and keeping it there: a restore is retried, waits for
//! a busy group, is not cancelled, and follows the end of a release that already shipped.

use super::*;

/// Issue #22, defect 2: an alarm during a rolling service's deployment must put the last
/// known good back (ECS has no stop: a newer deployment replaces the one in progress),
/// not record `rolled_back` over a deployment that goes on.
#[test]
fn an_alarm_while_a_rolling_service_deploys_redeploys_the_last_known_good() {
    let p = Policy {
        undo_by_redeploy: true,
        ..policy()
    };
    for recorded in [true, false] {
        let mut v = view_in(Some(StageState::Deploying));
        if recorded {
            let stage = v
                .releases
                .get_mut(&id(1))
                .unwrap()
                .stages
                .get_mut(ENV)
                .unwrap();
            stage.deployment_id = Some("ecs-svc/1".into());
        }
        let d = apply(
            &v,
            &id(1),
            &Event::AlarmFired {
                alarm: "api-dev-5xx".into(),
            },
            &p,
            T0,
        )
        .unwrap();
        assert_eq!(
            d.view.releases[&id(1)].state_in(ENV),
            Some(StageState::RolledBack)
        );
        assert_eq!(
            d.view.releases[&id(0)].state_in(ENV),
            Some(StageState::Deploying)
        );
        assert_eq!(
            d.view.lane.in_flight,
            Some(id(0)),
            "the restore holds the lane"
        );
        assert_eq!(
            d.actions,
            vec![Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true,
            }],
            "no StopDeployment, which ECS cannot do (recorded: {recorded})"
        );
    }
}

/// A restore of the last known good that could not be started by its deadline (the store
/// unreachable pass after pass, in the simulation, seed 1440) is tried again, as a failed
/// try, instead of being failed for a person while the bad release runs; after the tries,
/// it is failed as any action past its deadline.
#[test]
fn a_restore_past_its_deadline_is_tried_again_before_it_is_given_up() {
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let mut view = apply(
        &view_in(Some(StageState::Baking)),
        &id(1),
        &alarm,
        &policy(),
        T0,
    )
    .unwrap()
    .view;
    let mut now = T0;
    for n in 1..=RESTORE_TRIES {
        now = view.releases[&id(0)].stages[ENV].deadline.unwrap();
        let d = apply(&view, &id(0), &Event::ActionResumed, &policy(), now).unwrap();
        let stage = &d.view.releases[&id(0)].stages[ENV];
        assert_eq!(stage.state(), StageState::Deploying, "try {n}");
        assert_eq!(stage.restore_failures, n);
        assert!(stage.deadline.unwrap() > now, "a new deadline");
        assert_eq!(
            d.actions,
            vec![Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true,
            }]
        );
        assert!(
            d.transitions
                .iter()
                .any(|t| t.cause == Cause::TimedOut && t.to == Some(StageState::Deploying)),
            "the missed deadline is in the history"
        );
        view = d.view;
    }
    now = view.releases[&id(0)].stages[ENV].deadline.unwrap().max(now);
    let d = apply(&view, &id(0), &Event::ActionResumed, &policy(), now).unwrap();
    assert_eq!(
        d.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Failed)
    );
    assert!(d.actions.is_empty());
}

/// Issue #22, defect 1 (the deploy's answer lost): a rolling service's deploy that failed
/// for good may still have landed; the last known good is deployed again (found by the
/// simulation: UpdateService served, its answer lost, the stage failed, the release ran).
#[test]
fn a_rolling_deploy_that_failed_for_good_puts_the_last_known_good_back() {
    let rolling = rolling();
    let failed = Event::ActionFailed {
        reason: "ECS UpdateService: timed out".into(),
    };
    let d = apply(
        &view_in(Some(StageState::Deploying)),
        &id(1),
        &failed,
        &rolling,
        T0,
    )
    .unwrap();
    assert_eq!(
        d.view.releases[&id(1)].state_in(ENV),
        Some(StageState::Failed)
    );
    assert_eq!(d.view.lane.in_flight, Some(id(0)));
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
}

/// A restore of the last known good whose deployment failed (its hook failed closed while
/// the store was unreachable, in the simulation) is tried again, a few times, before it
/// is failed for a person.
#[test]
fn a_failed_restore_is_tried_again_before_a_person_is_asked() {
    let mut v = view_in(Some(StageState::Baking));
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
    let mut view = apply(&v, &id(1), &alarm, &policy(), T0).unwrap().view;
    let failed = Event::DeploymentFailed {
        reason: "BeforeAllowTraffic hook answered Failed".into(),
    };
    let mut now = T0;
    for n in 0..RESTORE_TRIES {
        let created = Event::DeploymentCreated {
            deployment_id: format!("d-r{n}"),
            task_definition: None,
            fence: 0,
        };
        view = apply(&view, &id(0), &created, &policy(), now).unwrap().view;
        let d = apply(&view, &id(0), &failed, &policy(), now).unwrap();
        assert_eq!(
            d.view.releases[&id(0)].state_in(ENV),
            Some(StageState::Deploying)
        );
        now = now.after(BLOCKED_RETRY);
        assert_eq!(
            owed(&d.view, &policy(), now),
            vec![Owed::Apply(id(0), Event::ActionResumed)],
            "try {n}"
        );
        view = apply(&d.view, &id(0), &Event::ActionResumed, &policy(), now)
            .unwrap()
            .view;
    }
    let created = Event::DeploymentCreated {
        deployment_id: "d-last".into(),
        task_definition: None,
        fence: 0,
    };
    view = apply(&view, &id(0), &created, &policy(), now).unwrap().view;
    let d = apply(&view, &id(0), &failed, &policy(), now).unwrap();
    assert_eq!(
        d.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Failed)
    );
}

/// A rolling service's deploy that could not be confirmed by its deadline (its
/// UpdateService may have landed, its record lost, the reconciler failing pass after
/// pass: simulation seed 188) puts the last known good back; on CodeDeploy, where an
/// unrecorded deployment is found by its description when it ends, it only fails.
#[test]
fn a_deploy_past_its_deadline_on_a_rolling_service_restores_the_last_known_good() {
    for (undo_by_redeploy, restored) in [(true, true), (false, false)] {
        let p = Policy {
            undo_by_redeploy,
            ..policy()
        };
        let d = apply(
            &view_in(Some(StageState::Queued)),
            &id(1),
            &Event::Dequeue,
            &p,
            T0,
        )
        .unwrap();
        let deadline = d.view.releases[&id(1)].stages[ENV].deadline.unwrap();
        let d = apply(&d.view, &id(1), &Event::ActionResumed, &p, deadline).unwrap();
        assert_eq!(
            d.view.releases[&id(1)].state_in(ENV),
            Some(StageState::Failed)
        );
        let redeploy = Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        };
        assert_eq!(
            d.actions.contains(&redeploy),
            restored,
            "rolling: {undo_by_redeploy}"
        );
    }
}

/// A late hook of a restore's deployment that already failed (its retried invocation,
/// in the simulation, seed 423) is not taken for the next try: it would have put the
/// failed deployment back on the stage, burnt a try, and cleared the pinned revision.
#[test]
fn a_late_hook_or_answer_of_a_failed_restore_try_changes_nothing() {
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let mut view = apply(
        &view_in(Some(StageState::Baking)),
        &id(1),
        &alarm,
        &policy(),
        T0,
    )
    .unwrap()
    .view;
    let created = Event::DeploymentCreated {
        deployment_id: "d-r1".into(),
        task_definition: Some("td:7".into()),
        fence: 0,
    };
    view = apply(&view, &id(0), &created, &policy(), T0).unwrap().view;
    let failed = Event::DeploymentFailed {
        reason: "BeforeAllowTraffic hook answered Failed".into(),
    };
    view = apply(&view, &id(0), &failed, &policy(), T0).unwrap().view;
    let stage = &view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.ended, ["d-r1"]);
    assert_eq!(stage.task_definition.as_deref(), Some("td:7"));
    let late_hook = Event::HookCompleted {
        deployment_id: "d-r1".into(),
        task_definition: None,
        hook: "AfterAllowTestTraffic".into(),
        checks: vec![],
        failure: None,
    };
    for late in [late_hook, created] {
        assert!(
            matches!(
                apply(&view, &id(0), &late, &policy(), T0),
                Err(TransitionError::EndedDeployment { .. })
            ),
            "{late:?}"
        );
    }
    // The next try's hook is taken, and keeps the pinned revision.
    let next_hook = Event::HookCompleted {
        deployment_id: "d-r2".into(),
        task_definition: None,
        hook: "AfterAllowTestTraffic".into(),
        checks: vec![],
        failure: None,
    };
    let d = apply(&view, &id(0), &next_hook, &policy(), T0).unwrap();
    let stage = &d.view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.deployment_id.as_deref(), Some("d-r2"));
    assert_eq!(stage.task_definition.as_deref(), Some("td:7"));
}

/// A restore that meets a busy deployment group (the bad release's deployment still runs)
/// holds the lane and is tried again; it is never superseded by the queue (found by the
/// simulation: the restore superseded, the bad release kept running).
#[test]
fn a_restore_blocked_by_a_busy_group_waits_and_tries_again() {
    let mut v = view_in(Some(StageState::Baking));
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
    let mut view = apply(&v, &id(1), &alarm, &policy(), T0).unwrap().view;
    let mut queued = with_stage(release(2), StageState::Queued);
    queued.pushed_at = Timestamp(T0.0 + 1);
    view.lane.queued = Some(queued.id.clone());
    view.releases.insert(queued.id.clone(), queued);
    let blocked = Event::DeploymentBlocked {
        reason: "deployment group busy with d-1".into(),
    };
    let d = apply(&view, &id(0), &blocked, &policy(), T0).unwrap();
    assert_eq!(
        d.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Deploying)
    );
    assert_eq!(d.view.lane.in_flight, Some(id(0)));
    assert_eq!(
        d.view.releases[&id(2)].state_in(ENV),
        Some(StageState::Queued)
    );
    assert_eq!(
        owed(&d.view, &policy(), T0.after(BLOCKED_RETRY)),
        vec![Owed::Apply(id(0), Event::ActionResumed)]
    );
    // Found busy again past its first deadline, it is not given up: waiting for the group
    // is not failing to start, and the deadline counts from then.
    let late = T0.after(Deadlines::default().deployment_start + Duration::from_secs(60));
    let again = apply(&d.view, &id(0), &blocked, &policy(), late).unwrap();
    let stage = &again.view.releases[&id(0)].stages[ENV];
    assert_eq!(
        stage.deadline,
        Some(late.after(Deadlines::default().deployment_start))
    );
    let resumed = apply(
        &again.view,
        &id(0),
        &Event::ActionResumed,
        &policy(),
        late.after(BLOCKED_RETRY),
    )
    .unwrap();
    assert_eq!(
        resumed.view.releases[&id(0)].stages[ENV].restore_failures,
        0,
        "no try counted as failed"
    );
}

/// Cancelling the restore of the last known good would leave the release it replaces
/// running for good: refused, naming the ways out (found by the simulation: an operator's
/// cancel kept a release whose alarm fired in service).
#[test]
fn a_restore_of_the_last_known_good_cannot_be_cancelled() {
    let mut v = view_in(Some(StageState::Baking));
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
    let restoring = apply(&v, &id(1), &alarm, &policy(), T0).unwrap().view;
    let cancel = Event::Cancelled {
        actor: "oncall".into(),
        reason: "oops".into(),
    };
    let err = apply(&restoring, &id(0), &cancel, &policy(), T0).unwrap_err();
    assert!(
        matches!(err, TransitionError::RestoreNotCancelled { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("shiplane rollback api dev --to"),
        "{err}"
    );
}

/// Cancelling or unblocking a release during its bake, on either kind of service: it
/// already serves, so the last known good is put back, and the release queued behind it
/// waits for that restore (simulation seed 19597, where the cancelled bad release kept
/// serving and its alarm then rolled back the good push after it).
#[test]
fn ending_a_baking_release_puts_the_last_known_good_back() {
    let ends = [
        Err(Event::Cancelled {
            actor: "oncall".into(),
            reason: "bad".into(),
        }),
        Ok(LaneEvent::Unblock {
            actor: "oncall".into(),
            reason: "stuck".into(),
        }),
    ];
    for p in [policy(), rolling()] {
        for end in &ends {
            let mut v = view_in(Some(StageState::Baking));
            v.releases
                .insert(id(2), with_stage(release(2), StageState::Queued));
            v.lane.queued = Some(id(2));
            let d = match end {
                Err(event) => apply(&v, &id(1), event, &p, T0).unwrap(),
                Ok(lane) => apply_lane(&v, lane, &p, T0).unwrap(),
            };
            assert_eq!(state(&d, 1), Some(StageState::Cancelled), "{end:?}");
            assert_eq!(state(&d, 0), Some(StageState::Deploying), "{end:?}");
            assert_eq!(d.view.lane.in_flight, Some(id(0)), "{end:?}");
            assert_eq!(d.view.lane.queued, Some(id(2)), "waits for the restore");
            assert_eq!(state(&d, 2), Some(StageState::Queued));
            assert!(
                d.actions.contains(&Action::Deploy {
                    release: id(0),
                    environment: ENV.into(),
                    redeploy: true,
                }),
                "{end:?}: {:?}",
                d.actions
            );
        }
    }
}

/// With no last known good, a cancelled baking release frees the lane and its reason
/// says it still runs, for a person to act.
#[test]
fn ending_a_baking_release_with_nothing_to_restore_says_it_keeps_running() {
    let mut v = view_in(Some(StageState::Baking));
    v.lane.last_known_good = None;
    let cancel = Event::Cancelled {
        actor: "oncall".into(),
        reason: "bad".into(),
    };
    let d = apply(&v, &id(1), &cancel, &policy(), T0).unwrap();
    assert_eq!(state(&d, 1), Some(StageState::Cancelled));
    assert_eq!(d.view.lane.in_flight, None);
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::Deploy { .. })),
        "{:?}",
        d.actions
    );
    let why = d.transitions.last().unwrap().detail.clone().unwrap();
    assert!(
        why.starts_with("bad; ") && why.contains("keeps running"),
        "{why}"
    );
}

/// Found by the simulation (seed 75198): an operator's rollback whose target is the
/// release waiting in the queue (it succeeded here before, was rolled back, and was retried)
/// deploys it, and it waits no more; left queued, the lane held a release that had already
/// succeeded, and nothing ever dequeued it.
#[test]
fn a_rollback_to_the_release_waiting_in_the_queue_takes_it_out_of_the_queue() {
    // 0 succeeded here and was retried: it waits; 1 runs and is the last known good.
    let mut v = view_in(Some(StageState::Succeeded));
    v.lane.current = Some(id(1));
    v.lane.last_known_good = Some(id(1));
    v.lane.previous_good = Some(id(0));
    v.lane.queued = Some(id(0));
    let stage = v
        .releases
        .get_mut(&id(0))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap();
    stage.phase = Phase::fresh(StageState::Queued, T0);
    stage.succeeded_at = Some(T0);
    let rollback = LaneEvent::Rollback {
        actor: "oncall".into(),
        reason: "back".into(),
        to: None,
    };
    let d = apply_lane(&v, &rollback, &policy(), T0).unwrap();
    assert_eq!(state(&d, 0), Some(StageState::Deploying));
    assert_eq!(d.view.lane.in_flight, Some(id(0)));
    assert_eq!(d.view.lane.queued, None, "{:?}", d.view.lane);
}
