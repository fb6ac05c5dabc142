//! Migrations: a stage's task runs before its deployment; its exit code, its deadline and
//! the stop events that belong to it (and those that do not).

use super::*;

#[tokio::test]
async fn migration_exit_zero_deploys_and_anything_else_fails_before_deploying() {
    let w = World::new().await;
    let e = w.engine();
    let ok = w.pushed("shiplane/db", 1, "v1").await;
    assert_eq!(w.state(&ok, "dev").await, Some(StageState::Migrating));
    assert!(w.deploys().is_empty());
    let stop = stopped("arn:aws:ecs:task/1", None, Some(0));
    let Inbound::Accepted(_) = e.on_task_stopped(&stop, T0).await.unwrap() else {
        panic!()
    };
    assert_eq!(w.state(&ok, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{ok}@dev")]);
    assert_eq!(
        w.deployer.fresh(),
        [format!("{ok}@dev")],
        "the migration the push started was fresh; the deploy after it reuses its revision"
    );
    // The same stop event again is refused by the state machine and deploys nothing more.
    e.on_task_stopped(&stop, T0).await.unwrap();
    assert_eq!(w.deploys().len(), 1);

    let w = World::new().await;
    let e = w.engine();
    let bad = w.pushed("shiplane/db", 2, "v2").await;
    e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(1)), T0)
        .await
        .unwrap();
    let r = w.store.release(&bad).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("exited with code 1")
    );
    assert!(
        w.deploys().is_empty(),
        "nothing deployed after a failed migration"
    );
    let unknown = stopped("arn:other", None, Some(0));
    assert!(matches!(
        e.on_task_stopped(&unknown, T0).await.unwrap(),
        Inbound::Ignored(_)
    ));
}

// Defect 5: deadlines, and the operator's ways out.
#[tokio::test]
async fn an_overdue_migration_fails_and_frees_the_lane_for_the_queued_release() {
    let w = World::new().await;
    let e = w.engine();
    let stuck = w.pushed("shiplane/db", 1, "v1").await;
    let next = w.pushed("shiplane/db", 2, "v2").await;
    assert_eq!(w.state(&stuck, "dev").await, Some(StageState::Migrating));
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
    let pipeline = e.pipeline().await.unwrap();
    // Within the deadline a running task is left alone.
    e.reconcile(&pipeline, None, T0.after(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_eq!(w.state(&stuck, "dev").await, Some(StageState::Migrating));
    let late = T0.after(Duration::from_secs(2 * 3600));
    e.reconcile(&pipeline, None, late).await.unwrap();
    let r = w.store.release(&stuck).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("did not finish")
    );
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Migrating));
}

// Defect 2: migrations.
#[tokio::test]
async fn a_migration_whose_task_was_never_recorded_is_found_by_its_started_by() {
    let w = World::new().await;
    let e = w.engine();
    let p = push("shiplane/db", 1, "v1");
    // The arrival committed; RunTask ran but the function died before recording the task.
    commit_arrival(&w, &p).await;
    let id = release_of(&w, &p).await;
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    let stop = stopped(
        "arn:aws:ecs:task/never-recorded",
        Some(crate::aws::started_by(&r, "dev")),
        Some(0),
    );
    let out = e.on_task_stopped(&stop, T0).await.unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{id}@dev")]);
    assert!(
        w.deployer
            .calls()
            .iter()
            .all(|c| !matches!(c, Call::RunMigration { .. })),
        "no second migration"
    );
}

#[tokio::test]
async fn a_migration_that_already_stopped_is_adopted_with_its_exit_code() {
    let w = World::new().await;
    w.deployer
        .migration_answers
        .lock()
        .unwrap()
        .push(Ok(MigrationRun::Stopped(stopped(
            "arn:aws:ecs:task/7",
            None,
            Some(0),
        ))));
    let id = w.pushed("shiplane/db", 1, "v1").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    let history = w.store.history_of_release(&id).await.unwrap();
    assert_eq!(
        history_causes(&history),
        [
            "arrived",
            "migration_started",
            "migration_succeeded",
            "deployment_created"
        ]
    );
}

#[tokio::test]
async fn a_stop_event_of_another_task_for_the_same_release_is_ignored() {
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/db", 1, "v1").await; // task arn:aws:ecs:task/1 recorded
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    let stray = stopped(
        "arn:aws:ecs:task/other",
        Some(crate::aws::started_by(&r, "dev")),
        Some(1),
    );
    let out = e.on_task_stopped(&stray, T0).await.unwrap();
    assert!(
        matches!(out, Inbound::Ignored(ref why) if why.contains("not the migration")),
        "{out:?}"
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Migrating));
}

#[tokio::test]
async fn a_stop_first_migration_waits_for_the_service_to_stop_and_a_failed_one_starts_it_again() {
    let w = World::new().await;
    w.store_pipeline(
        2,
        PIPELINE.replace(
            "migration = { family = \"db-migrate\", command = [\"./migrate\"] }",
            "migration = { family = \"db-migrate\", command = [\"./migrate\"], mode = \"stop-first\" }",
        ),
    )
    .await;
    let e = w.engine();
    // Stopped from 3 tasks, 2 still draining: the migration waits.
    w.deployer
        .stop_answers
        .lock()
        .unwrap()
        .push(Ok(crate::aws::AppStop {
            desired: 3,
            running: 2,
        }));
    let id = w.pushed("shiplane/db", 1, "v1").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Migrating));
    let migrations = || {
        w.deployer
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::RunMigration { .. }))
            .count()
    };
    assert_eq!(
        migrations(),
        0,
        "nothing runs while the service still runs tasks"
    );
    let lane = w.store.lane("db", "dev").await.unwrap().item;
    assert_eq!(
        lane.down.map(|d| (d.release, d.desired)),
        Some((id.clone(), Some(3)))
    );
    // The next pass looks again: drained now, the migration runs.
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, None, T0.after(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(migrations(), 1);
    // It fails: the service is started again on what it ran, and the outage ends.
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    let task = r.stages["dev"].started().unwrap().to_string();
    e.on_task_stopped(&stopped(&task, None, Some(1)), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Failed));
    assert!(
        w.deployer
            .calls()
            .iter()
            .any(|c| matches!(c, Call::StartApp { .. })),
        "{:?}",
        w.deployer.calls()
    );
    assert!(w.deploys().is_empty(), "nothing deployed");
    assert_eq!(w.store.lane("db", "dev").await.unwrap().item.down, None);
}
