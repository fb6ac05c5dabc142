//! How a deployment ended, as CodeDeploy and ECS tell it: success, failure, stops,
//! CodeDeploy's own rollbacks, and deployments recorded late or never.

use super::*;
use crate::inbound::codedeploy::{DeploymentState, DeploymentStateChange};
use crate::inbound::ecs::ServiceDeploymentEnded;

/// Found by the simulation (seed 241, an operator cancelling while UpdateService was in
/// flight): the deployment landed after the stage ended, its record was lost with the
/// invocation, and its end event was taken for someone else's while it served. Its
/// revision's tags name the release: it is recorded on the stage and undone.
#[tokio::test]
async fn an_ecs_deployment_that_landed_after_its_stage_ended_is_found_by_its_revisions_tags() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/db", 1, "v1").await;
    commit_only(&w, "db", "dev", &id, Event::MigrationSucceeded).await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    let cancel = Event::Cancelled {
        actor: "ana".into(),
        reason: "second thoughts".into(),
    };
    e.on_event(&pipeline, "db", "dev", &id, cancel, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Cancelled));
    w.deployer.unrecorded_ecs.lock().unwrap().insert(
        "ecs-svc/LATE".into(),
        crate::aws::Tagged {
            release: id.clone(),
            environment: "dev".into(),
            task_definition: "db-dev:9".into(),
            created: Some(T0),
        },
    );
    let ended = ServiceDeploymentEnded {
        deployment_id: "ecs-svc/LATE".into(),
        service: Some(("shiplane-dev".into(), "db-dev".into())),
        outcome: Ok(()),
        at: T0,
    };
    // ECS cannot be asked now: the event fails, to be delivered again, and changes
    // nothing meanwhile (taken for another's, nothing would ever find it: seed 50993).
    *w.deployer.origin_failures.lock().unwrap() = 1;
    let err = e.on_service_deployment(&ended, T0).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("ecs-svc/LATE"), "{err}");
    let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!(stage.deployment_id, None);
    let out = e.on_service_deployment(&ended, T0).await.unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!(stage.deployment_id.as_deref(), Some("ecs-svc/LATE"));
    assert_eq!(stage.task_definition.as_deref(), Some("db-dev:9"));
    assert!(w.store.deployment("ecs-svc/LATE").await.unwrap().is_some());
    let history = w.store.history_of_release(&id).await.unwrap();
    assert!(
        history.iter().any(|t| t
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("created after the stage ended"))),
        "{history:?}"
    );
    // Without its service in the event, or of a revision Shiplane did not tag: as before.
    let foreign = ServiceDeploymentEnded {
        deployment_id: "ecs-svc/HAND".into(),
        ..ended
    };
    let out = e.on_service_deployment(&foreign, T0).await.unwrap();
    assert!(matches!(out, Inbound::Ignored(_)), "{out:?}");
}

/// Found by the simulation (seed 541 of the world with dependent restarts): a restart of
/// the revision a rolling service ran ended while that revision's release was being
/// restored, its own deployment not yet recorded. Made before the stage started
/// deploying, it is not the stage's: taking it ended the restore as succeeded while a
/// newer deployment went on to replace it.
#[tokio::test]
async fn an_ecs_deployment_of_the_revision_made_before_the_stage_started_deploying_is_not_its_own()
{
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/db", 1, "v1").await;
    commit_only(&w, "db", "dev", &id, Event::MigrationSucceeded).await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    let entered = w
        .store
        .history_of_release(&id)
        .await
        .unwrap()
        .iter()
        .rfind(|t| t.to == Some(StageState::Deploying))
        .unwrap()
        .at;
    for (deployment, created, own) in [
        ("ecs-svc/RESTART", Timestamp(entered.0 - 60_000), false),
        ("ecs-svc/OWN", entered, true),
    ] {
        w.deployer.unrecorded_ecs.lock().unwrap().insert(
            deployment.into(),
            crate::aws::Tagged {
                release: id.clone(),
                environment: "dev".into(),
                task_definition: "db-dev:9".into(),
                created: Some(created),
            },
        );
        let ended = ServiceDeploymentEnded {
            deployment_id: deployment.into(),
            service: Some(("shiplane-dev".into(), "db-dev".into())),
            outcome: Ok(()),
            at: T0,
        };
        let out = e.on_service_deployment(&ended, T0).await.unwrap();
        let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
        if own {
            assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
            assert_eq!(stage.deployment_id.as_deref(), Some(deployment));
        } else {
            let Inbound::Ignored(why) = out else {
                panic!("{out:?}")
            };
            assert!(why.contains("not its own"), "{why}");
            assert_eq!(stage.deployment_id, None);
            assert_eq!(stage.state(), StageState::Deploying);
        }
    }
}

/// A rolling deployment that ECS no longer runs (a newer one of the service replaced
/// it, here a late one no event told of) is deployed again by the reconciler's pass,
/// and the replaced one's late news changes nothing (simulation seed 21288).
#[tokio::test]
async fn the_reconciler_deploys_again_a_rolling_deployment_that_was_replaced() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/db", 1, "v1").await;
    e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
        .await
        .unwrap();
    let deployment = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"]
        .deployment_id
        .clone()
        .unwrap();
    let before = w.deploys().len();
    // Still in progress: the pass changes nothing.
    e.reconcile(&pipeline, Some("db"), T0).await.unwrap();
    assert_eq!(w.deploys().len(), before);
    w.deployer
        .statuses
        .lock()
        .unwrap()
        .insert(deployment.clone(), DeploymentStatus::Replaced);
    e.reconcile(&pipeline, Some("db"), T0).await.unwrap();
    assert_eq!(w.deploys().len(), before + 1, "deployed again");
    let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!(stage.state(), StageState::Deploying);
    assert_eq!(stage.ended, std::slice::from_ref(&deployment));
    assert_ne!(stage.deployment_id.as_deref(), Some(deployment.as_str()));
    let history = w.store.history_of_release(&id).await.unwrap();
    assert!(
        history.iter().any(|t| t.cause == Cause::Redeployed),
        "{history:?}"
    );
    // The replaced one's success, arriving late, is not taken for the new one's.
    let late = ServiceDeploymentEnded {
        service: None,
        deployment_id: deployment.clone(),
        outcome: Ok(()),
        at: T0,
    };
    let _ = e.on_service_deployment(&late, T0).await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
}

#[tokio::test]
async fn a_rolling_services_ecs_deployment_ending_moves_the_stage_that_runs_it() {
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/db", 1, "v1").await;
    e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
        .await
        .unwrap();
    let deployment = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"]
        .deployment_id
        .clone()
        .unwrap();
    let ended = |outcome| ServiceDeploymentEnded {
        service: None,
        deployment_id: deployment.clone(),
        outcome,
        at: T0,
    };
    // Another deployment of the service (a circuit breaker's rollback): nothing.
    let other = ServiceDeploymentEnded {
        service: None,
        deployment_id: "ecs-svc/999".into(),
        ..ended(Ok(()))
    };
    assert!(matches!(
        e.on_service_deployment(&other, T0).await.unwrap(),
        Inbound::Ignored(why) if why.contains("not started by Shiplane")
    ));
    let failed = ended(Err(
        "ECS deployment circuit breaker: task failed to start.".into()
    ));
    e.on_service_deployment(&failed, T0).await.unwrap();
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("circuit breaker"),
        "{:?}",
        r.stages["dev"]
    );
    // The late COMPLETED of the same deployment cannot revive it.
    let out = e.on_service_deployment(&ended(Ok(())), T0).await.unwrap();
    assert_eq!(
        w.state(&id, "dev").await,
        Some(StageState::Failed),
        "{out:?}"
    );

    // A second release's deployment completes: it succeeds (db has no bake in dev).
    let next = w.pushed("shiplane/db", 2, "v2").await;
    let task = w.store.release(&next).await.unwrap().unwrap().item.stages["dev"]
        .started()
        .unwrap()
        .to_string();
    e.on_task_stopped(&stopped(&task, None, Some(0)), T0)
        .await
        .unwrap();
    let deployment = w.store.release(&next).await.unwrap().unwrap().item.stages["dev"]
        .deployment_id
        .clone()
        .unwrap();
    let done = ServiceDeploymentEnded {
        service: None,
        deployment_id: deployment,
        outcome: Ok(()),
        at: T0,
    };
    e.on_service_deployment(&done, T0).await.unwrap();
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Succeeded));
}

#[tokio::test]
async fn codedeploys_own_rollback_deployment_is_reported_on_the_release_it_rolled_back() {
    let w = World::new().await;
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.engine()
        .on_deployment_state(&change("d-1", DeploymentState::Failure), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Failed));
    // CodeDeploy rolls d-1 back with a deployment of its own, which ends.
    async fn rollback_ends(
        w: &World,
        id: &ReleaseId,
        rollback: &str,
        state: DeploymentState,
    ) -> Vec<Transition> {
        w.deployer
            .rollbacks
            .lock()
            .unwrap()
            .insert(rollback.into(), "d-1".into());
        w.engine()
            .on_deployment_state(&change(rollback, state), T0)
            .await
            .unwrap();
        w.store.history_of_release(id).await.unwrap()
    }
    let history = rollback_ends(&w, &id, "d-rb", DeploymentState::Success).await;
    let last = history.last().unwrap();
    assert_eq!(last.cause, Cause::CodeDeployRollback);
    assert!(
        last.detail
            .as_deref()
            .unwrap()
            .contains("rollback deployment d-rb (of d-1) succeeded"),
        "{last:?}"
    );
    assert_eq!(last.to, Some(StageState::Failed), "a fact; the stage stays");
    // Had it failed, a person is told, by an alert, and the lane records the release
    // as what may run (here there is no last known good to put back).
    let history = rollback_ends(&w, &id, "d-rb2", DeploymentState::Failure).await;
    let last = history.last().unwrap();
    assert_eq!(last.cause, Cause::RollbackFailed);
    assert!(
        last.detail
            .as_deref()
            .unwrap()
            .contains("may run neither version wholly"),
        "{last:?}"
    );
    assert_eq!(w.notifier.kinds().last().map(String::as_str), Some("alert"));
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.current, Some(id.clone()));
    // A deployment that is neither Shiplane's nor a rollback of one: ignored.
    let out = w
        .engine()
        .on_deployment_state(&change("d-someone", DeploymentState::Success), T0)
        .await
        .unwrap();
    assert!(matches!(out, Inbound::Ignored(_)), "{out:?}");
}

/// CodeDeploy's own rollback of a stopped deployment failed (simulation, once the world
/// made rollbacks: 10 % of production traffic stayed on the bad version): the lane
/// records that release as what may run, and restores the last known good itself.
#[tokio::test]
async fn a_failed_codedeploy_rollback_makes_the_lane_restore_the_last_known_good() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let (v1, v2, d2) = w.good_then_deploying().await;
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    e.on_event(&pipeline, "api", "dev", &v2, alarm, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&v2, "dev").await, Some(StageState::RolledBack));
    e.on_deployment_state(&change(&d2, DeploymentState::Stop), T0)
        .await
        .unwrap();
    let deploys = w.deploys().len();
    w.deployer
        .rollbacks
        .lock()
        .unwrap()
        .insert("d-rb".into(), d2.clone());
    e.on_deployment_state(&change("d-rb", DeploymentState::Failure), T0)
        .await
        .unwrap();
    let history = w.store.history_of_release(&v2).await.unwrap();
    assert!(
        history.iter().any(|t| t.cause == Cause::RollbackFailed
            && t.detail
                .as_deref()
                .is_some_and(|d| d.contains("the last known good is deployed again"))),
        "{history:?}"
    );
    assert_eq!(w.state(&v1, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys().len(), deploys + 1, "the restore's deployment");
}

/// Found by the simulation (seed 118): CreateDeployment served, the function died
/// before recording it, and the deployment ended; its event was taken for someone
/// else's, and the reconciler later made a second deployment for the same try.
#[tokio::test]
async fn a_deployment_that_ended_unrecorded_is_recorded_from_its_description_then_ends_its_stage() {
    let w = World::new().await;
    let p = push("shiplane/api", 1, "v1.0.0");
    commit_arrival(&w, &p).await;
    let id = release_of(&w, &p).await;
    let made = |attempt| crate::aws::Origin::Release {
        release: id.clone(),
        environment: "dev".into(),
        attempt,
        task_definition: Some("td:LOST".into()),
        restore: false,
    };
    // An earlier attempt's deployment changes nothing.
    w.deployer
        .unrecorded
        .lock()
        .unwrap()
        .insert("d-OLD".into(), made(3));
    let out = w
        .engine()
        .on_deployment_state(&change("d-OLD", DeploymentState::Success), T0)
        .await
        .unwrap();
    assert!(matches!(out, Inbound::Ignored(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));

    w.deployer
        .unrecorded
        .lock()
        .unwrap()
        .insert("d-LOST".into(), made(0));
    // CodeDeploy cannot say now who made it: delivered again, nothing changed.
    *w.deployer.origin_failures.lock().unwrap() = 1;
    let err = w
        .engine()
        .on_deployment_state(&change("d-LOST", DeploymentState::Success), T0)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    let out = w
        .engine()
        .on_deployment_state(&change("d-LOST", DeploymentState::Success), T0)
        .await
        .unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!(stage.deployment_id.as_deref(), Some("d-LOST"));
    assert_eq!(stage.task_definition.as_deref(), Some("td:LOST"));
    let reference = w.store.deployment("d-LOST").await.unwrap().unwrap();
    assert_eq!(reference.release, id);
    assert!(w.deploys().is_empty(), "no second deployment");
}

fn change(deployment: &str, state: DeploymentState) -> DeploymentStateChange {
    DeploymentStateChange {
        deployment_id: deployment.into(),
        application: "api".into(),
        deployment_group: "api-dev".into(),
        state,
        at: T0,
    }
}

#[tokio::test]
async fn success_bakes_the_stage_and_the_same_event_again_changes_nothing() {
    let w = World::new().await;
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    let e = w.engine();
    let out = e
        .on_deployment_state(&change("d-1", DeploymentState::Success), T0)
        .await
        .unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    let before = w.store.history_of_release(&id).await.unwrap().len();
    e.on_deployment_state(&change("d-1", DeploymentState::Success), T0)
        .await
        .unwrap();
    assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
    for state in [DeploymentState::Start, DeploymentState::Ready] {
        let out = e
            .on_deployment_state(&change("d-1", state), T0)
            .await
            .unwrap();
        assert!(matches!(out, Inbound::Ignored(_)), "{state:?}");
    }
}

#[tokio::test]
async fn failure_fails_the_stage_with_codedeploys_reason_and_the_queued_release_deploys() {
    let w = World::new().await;
    let r1 = w.pushed("shiplane/api", 1, "v1.0.1").await;
    let r2 = w.pushed("shiplane/api", 2, "v1.0.2").await;
    w.deployer.set_status(
        "d-1",
        DeploymentStatus::Failed(
            "CodeDeploy deployment d-1 failed: the AfterAllowTestTraffic hook failed".into(),
        ),
    );
    w.engine()
        .on_deployment_state(&change("d-1", DeploymentState::Failure), T0)
        .await
        .unwrap();
    let r = w.store.release(&r1).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("hook failed")
    );
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{r1}@dev"), format!("{r2}@dev")]);
    // A stop of the next one, said as CodeDeploy says it.
    w.engine()
        .on_deployment_state(&change("d-2", DeploymentState::Stop), T0)
        .await
        .unwrap();
    let r = w.store.release(&r2).await.unwrap().unwrap().item;
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("was stopped"),
        "{:?}",
        r.stages["dev"]
    );
}

#[tokio::test]
async fn a_late_event_of_an_older_deployment_never_finishes_a_newer_one() {
    let w = World::new().await;
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await; // runs d-1
    // An older deployment of the same release and environment (one that was replaced)
    // is still known by reference.
    w.store
        .commit(crate::store::Commit {
            deployments: vec![crate::store::DeploymentRef {
                deployment_id: "d-OLD".into(),
                release: id.clone(),
                service: "api".into(),
                environment: "dev".into(),
                restore: false,
            }],
            ..crate::store::Commit::default()
        })
        .await
        .unwrap();
    let out = w
        .engine()
        .on_deployment_state(&change("d-OLD", DeploymentState::Success), T0)
        .await
        .unwrap();
    assert!(
        matches!(out, Inbound::Ignored(ref why) if why.contains("late event")),
        "{out:?}"
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
}

#[tokio::test]
async fn the_end_of_a_deployment_shiplane_did_not_start_frees_the_lane_it_blocked() {
    let w = World::new().await;
    w.busy_group();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Queued));
    let e = w.engine();
    let out = e
        .on_deployment_state(&change("d-MANUAL", DeploymentState::Success), T0)
        .await
        .unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys().len(), 2);
    // A foreign deployment in a group no release waits for changes nothing.
    let other = DeploymentStateChange {
        deployment_group: "elsewhere".into(),
        ..change("d-X", DeploymentState::Failure)
    };
    assert!(matches!(
        e.on_deployment_state(&other, T0).await.unwrap(),
        Inbound::Ignored(_)
    ));
}
