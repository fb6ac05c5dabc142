//! The operator's levers: cancel, unblock, promote early, roll back and retry.

use super::*;

#[tokio::test]
async fn cancel_ends_an_in_flight_stage_stops_its_deployment_and_frees_the_lane() {
    let w = World::new().await;
    let e = w.engine();
    let r1 = w.pushed("shiplane/api", 1, "v1.0.1").await;
    let r2 = w.pushed("shiplane/api", 2, "v1.0.2").await;
    let pipeline = e.pipeline().await.unwrap();
    let cancel = Event::Cancelled {
        actor: "ana".into(),
        reason: "wrong build".into(),
    };
    e.on_event(&pipeline, "api", "dev", &r1, cancel, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&r1, "dev").await, Some(StageState::Cancelled));
    assert!(w.deployer.calls().contains(&Call::Stop {
        deployment_id: "d-1".into(),
        rollback: true
    }));
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Deploying));
    let history = w.store.history_of_release(&r1).await.unwrap();
    let cancelled = history
        .iter()
        .find(|t| t.cause == Cause::Cancelled)
        .unwrap();
    assert_eq!(cancelled.actor.as_deref(), Some("ana"));
    assert_eq!(cancelled.detail.as_deref(), Some("wrong build"));
    assert!(
        history.iter().any(|t| t.cause == Cause::StopRequested),
        "the stop's outcome is recorded: {:?}",
        history_causes(&history)
    );
}

#[tokio::test]
async fn unblock_frees_a_lane_whatever_holds_it() {
    let w = World::new().await;
    let e = w.engine();
    let r1 = w.pushed("shiplane/db", 1, "v1").await;
    let r2 = w.pushed("shiplane/db", 2, "v2").await;
    let pipeline = e.pipeline().await.unwrap();
    let unblock = || LaneEvent::Unblock {
        actor: "ana".into(),
        reason: "migration hangs".into(),
    };
    e.on_lane(&pipeline, "db", "dev", unblock(), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&r1, "dev").await, Some(StageState::Cancelled));
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Migrating));
    let lane = w.store.lane("db", "dev").await.unwrap().item;
    assert_eq!(lane.in_flight, Some(r2.clone()));
    let history = w.store.history_of_service("db", 50).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.cause == Cause::Unblocked && t.actor.as_deref() == Some("ana"))
    );
    // A free lane with nothing queued has nothing to unblock: refused, nothing written.
    let w = World::new().await;
    let report = w
        .engine()
        .on_lane(&pipeline, "db", "dev", unblock(), T0)
        .await
        .unwrap();
    assert!(
        report.refused[0].contains("nothing to unblock"),
        "{report:?}"
    );
}

/// `n` releases of api that each succeeded in dev, oldest first.
async fn succeeded(w: &World, n: u8) -> Vec<ReleaseId> {
    let mut ids = Vec::new();
    for i in 1..=n {
        let id = w.pushed("shiplane/api", i, &format!("v1.0.{i}")).await;
        w.succeed_in_dev(&id).await;
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn promote_skip_bake_ends_the_bake_now_recorded_with_who_and_why() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    let early = Event::PromotedEarly {
        actor: "ana".into(),
        reason: "security fix, CVE-2026-1234".into(),
    };
    e.on_event(&pipeline, "api", "dev", &id, early.clone(), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
    let history = w.store.history_of_release(&id).await.unwrap();
    let t = history
        .iter()
        .find(|t| t.cause == Cause::PromotedEarly)
        .unwrap();
    assert_eq!(
        (t.actor.as_deref(), t.detail.as_deref()),
        (Some("ana"), Some("security fix, CVE-2026-1234"))
    );
    // Not baking any more: refused.
    let again = e
        .on_event(&pipeline, "api", "dev", &id, early, T0)
        .await
        .unwrap();
    assert!(again.transitions.is_empty() && !again.refused.is_empty());
}

#[tokio::test]
async fn rollback_puts_the_previous_good_release_back_and_stops_what_is_in_flight() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let ids = succeeded(&w, 2).await;
    let (v1, v2) = (&ids[0], &ids[1]);
    let v3 = w.pushed("shiplane/api", 3, "v1.0.3").await; // deploying
    let d3 = w.store.release(&v3).await.unwrap().unwrap().item.stages["dev"]
        .deployment_id
        .clone()
        .unwrap();
    let rollback = LaneEvent::Rollback {
        actor: "ana".into(),
        reason: "v1.0.2 corrupts carts".into(),
        to: None,
    };
    e.on_lane(&pipeline, "api", "dev", rollback, T0)
        .await
        .unwrap();
    // v2 ran and was the last known good: the rollback goes to v1, the one before.
    assert_eq!(w.state(v1, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.state(v2, "dev").await, Some(StageState::RolledBack));
    assert_eq!(w.state(&v3, "dev").await, Some(StageState::RolledBack));
    assert!(w.deployer.calls().contains(&Call::Stop {
        deployment_id: d3,
        rollback: true
    }));
    assert_eq!(
        w.deploys().last().map(String::as_str),
        Some(format!("{v1}@dev").as_str())
    );
    e.on_event(&pipeline, "api", "dev", v1, Event::DeploymentSucceeded, T0)
        .await
        .unwrap();
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(
        (lane.current.as_ref(), lane.in_flight.as_ref()),
        (Some(v1), None)
    );
    assert_eq!(
        w.state(v1, "prod").await,
        Some(StageState::Superseded),
        "a restore is not promoted again"
    );
    let history = w.store.history_of_service("api", 100).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.cause == Cause::Rollback && t.actor.as_deref() == Some("ana"))
    );
}

#[tokio::test]
async fn rollback_to_a_named_release_and_refusals() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let ids = succeeded(&w, 3).await;
    let to_first = LaneEvent::Rollback {
        actor: "ana".into(),
        reason: "back to the known state".into(),
        to: Some(ids[0].clone()),
    };
    e.on_lane(&pipeline, "api", "dev", to_first, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&ids[0], "dev").await, Some(StageState::Deploying));
    assert_eq!(w.state(&ids[2], "dev").await, Some(StageState::RolledBack));
    // A release that never succeeded in prod cannot be rolled back to there.
    let never = LaneEvent::Rollback {
        actor: "ana".into(),
        reason: "x".into(),
        to: Some(ids[1].clone()),
    };
    let report = e
        .on_lane(&pipeline, "api", "prod", never, T0)
        .await
        .unwrap();
    assert!(
        report.refused[0].contains("never succeeded here"),
        "{report:?}"
    );
    // Nothing ever succeeded in an environment: nothing to roll back to.
    let fresh = World::new().await;
    let nothing = LaneEvent::Rollback {
        actor: "ana".into(),
        reason: "x".into(),
        to: None,
    };
    let report = fresh
        .engine()
        .on_lane(&pipeline, "api", "dev", nothing, T0)
        .await
        .unwrap();
    assert!(
        report.refused[0].contains("no earlier release"),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_failed_migration_retried_runs_a_new_task_and_the_old_tasks_late_stop_changes_nothing() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/db", 1, "v1").await;
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    let first_task = r.stages["dev"].started().unwrap().to_string();
    let first_by = crate::aws::started_by(&r, "dev");
    e.on_task_stopped(&stopped(&first_task, Some(first_by.clone()), Some(1)), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Failed));

    let report = e
        .on_event(
            &pipeline,
            "db",
            "dev",
            &id,
            Event::Retry {
                actor: "ana".into(),
            },
            T0,
        )
        .await
        .unwrap();
    assert!(report.refused.is_empty(), "{report:?}");
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Migrating));
    assert_eq!(r.stages["dev"].attempt, 1);
    let second_task = r.stages["dev"].started().unwrap().to_string();
    assert_ne!(
        second_task, first_task,
        "a new migration task, not the failed one adopted"
    );
    let migrations = w
        .deployer
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::RunMigration { .. }))
        .count();
    assert_eq!(migrations, 2);
    // The first attempt's stop event, delivered again late: ignored.
    let late = e
        .on_task_stopped(
            &stopped("arn:aws:ecs:task/late", Some(first_by), Some(1)),
            T0,
        )
        .await
        .unwrap();
    assert!(
        matches!(late, Inbound::Ignored(ref why) if why.contains("attempt 0")),
        "{late:?}"
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Migrating));
    let retried = w.store.history_of_release(&id).await.unwrap();
    assert!(
        retried
            .iter()
            .any(|t| t.cause == Cause::Retried && t.actor.as_deref() == Some("ana"))
    );
    // Only a stage that ended can be retried.
    let again = e
        .on_event(
            &pipeline,
            "db",
            "dev",
            &id,
            Event::Retry {
                actor: "ana".into(),
            },
            T0,
        )
        .await
        .unwrap();
    assert!(again.transitions.is_empty() && !again.refused.is_empty());
}
