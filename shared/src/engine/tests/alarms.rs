//! Alarms: one during a deployment or a bake rolls back once, late or stale changes are
//! ignored, and a lane's own firing alarm blocks its start and its success.

use super::*;
use crate::facts::AlarmChange;
use crate::release::AlarmState;

/// A world whose api dev stage (a 10-minute bake) watches `api-dev-` alarms.
pub(super) async fn watched() -> World {
    let pipeline = PipelineFile::base().stage("api", "dev", |s| s.alarm_prefixes(&["api-dev-"]));
    World::with(pipeline).await
}

pub(super) fn alarm(state: AlarmState, second: u64) -> AlarmChange {
    AlarmChange {
        alarm: "api-dev-5xx".into(),
        state,
        at: Timestamp(T0.0 + second * 1000),
        reason: "Threshold Crossed".into(),
    }
}

fn stops(w: &World) -> usize {
    w.deployer
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Stop { rollback: true, .. }))
        .count()
}

#[tokio::test]
async fn an_alarm_during_deployment_stops_and_rolls_back_once_however_often_it_arrives() {
    let w = watched().await;
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    for _ in 0..3 {
        w.engine()
            .on_alarm(&alarm(AlarmState::Alarm, 10), T0)
            .await
            .unwrap();
    }
    assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
    assert_eq!(
        stops(&w),
        1,
        "exactly one StopDeployment(autoRollbackEnabled)"
    );
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.in_flight, None);
    assert_eq!(lane.alarms["api-dev-5xx"].state, AlarmState::Alarm);
}

#[tokio::test]
async fn an_alarm_during_bake_restores_the_last_known_good_once_and_the_bad_release_goes_no_further()
 {
    let w = watched().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let good = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.succeed_in_dev(&good).await;
    assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
    let bad = w.pushed("shiplane/api", 2, "v1.0.1").await;
    e.on_event(
        &pipeline,
        "api",
        "dev",
        &bad,
        Event::DeploymentSucceeded,
        T0,
    )
    .await
    .unwrap();
    assert_eq!(w.state(&bad, "dev").await, Some(StageState::Baking));
    let deploys_before = w.deploys().len();
    // The alarm fires, clears and fires again (flapping), and arrives twice.
    for (state, second) in [
        (AlarmState::Alarm, 10),
        (AlarmState::Alarm, 10),
        (AlarmState::Ok, 20),
        (AlarmState::Alarm, 30),
    ] {
        e.on_alarm(&alarm(state, second), T0).await.unwrap();
    }
    assert_eq!(w.state(&bad, "dev").await, Some(StageState::RolledBack));
    assert_eq!(
        w.deploys()[deploys_before..],
        [format!("{good}@dev")],
        "exactly one redeploy of the last known good release"
    );
    assert_eq!(w.state(&good, "dev").await, Some(StageState::Deploying));
    // Restored: the good release succeeds again; the bad one never reached prod.
    e.on_event(
        &pipeline,
        "api",
        "dev",
        &good,
        Event::DeploymentSucceeded,
        T0,
    )
    .await
    .unwrap();
    assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
    assert_eq!(w.state(&bad, "prod").await, None);
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(
        (lane.current, lane.last_known_good),
        (Some(good.clone()), Some(good))
    );
}

/// Simulation seed 19597: a bad release cancelled in its bake kept serving (only a
/// deployment in flight was undone), and its alarm then rolled back the good push
/// after it.
#[tokio::test]
async fn cancelling_a_baking_release_restores_the_last_known_good_before_the_queue_moves() {
    let w = watched().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let good = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.succeed_in_dev(&good).await;
    let bad = w.pushed("shiplane/api", 2, "v1.0.1").await;
    e.on_event(
        &pipeline,
        "api",
        "dev",
        &bad,
        Event::DeploymentSucceeded,
        T0,
    )
    .await
    .unwrap();
    let next = w.pushed("shiplane/api", 3, "v1.0.2").await;
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
    let deploys_before = w.deploys().len();
    let cancel = Event::Cancelled {
        actor: "ana".into(),
        reason: "errors in the logs".into(),
    };
    e.on_event(&pipeline, "api", "dev", &bad, cancel, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&bad, "dev").await, Some(StageState::Cancelled));
    assert_eq!(
        w.deploys()[deploys_before..],
        [format!("{good}@dev")],
        "the last known good is deployed again, and nothing else"
    );
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
    e.on_event(
        &pipeline,
        "api",
        "dev",
        &good,
        Event::DeploymentSucceeded,
        T0,
    )
    .await
    .unwrap();
    assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys().last(), Some(&format!("{next}@dev")));
}

#[tokio::test]
async fn an_older_alarm_change_arriving_late_is_ignored() {
    let w = watched().await;
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.engine()
        .on_alarm(&alarm(AlarmState::Ok, 20), T0)
        .await
        .unwrap();
    let out = w
        .engine()
        .on_alarm(&alarm(AlarmState::Alarm, 10), T0)
        .await
        .unwrap();
    let Inbound::Accepted(report) = out else {
        panic!()
    };
    assert!(
        report.refused[0].contains("before the change already recorded"),
        "{report:?}"
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(stops(&w), 0);
    // INSUFFICIENT_DATA is recorded, nothing more.
    w.engine()
        .on_alarm(&alarm(AlarmState::InsufficientData, 30), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    let history = w.store.history_of_service("api", 50).await.unwrap();
    let causes = history_causes(&history);
    assert!(
        causes.contains(&"alarm_cleared") && causes.contains(&"alarm_no_data"),
        "{causes:?}"
    );
}

#[tokio::test]
async fn without_a_last_known_good_nothing_is_deployed_and_the_reason_asks_for_a_person() {
    let w = watched().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
        .await
        .unwrap();
    e.on_alarm(&alarm(AlarmState::Alarm, 10), T0).await.unwrap();
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::RolledBack));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("manual action needed")
    );
    assert_eq!(w.deploys().len(), 1);
    // Announced as an alert, not only as a rollback: a person must act.
    let sent = w.notifier.sent.lock().unwrap().clone();
    let alerts: Vec<_> = sent.iter().filter(|n| n.kind.as_str() == "alert").collect();
    assert_eq!(alerts.len(), 1, "{:?}", w.notifier.kinds());
    let last = alerts[0];
    assert_eq!(last.state, Some(StageState::RolledBack));
    assert_eq!(last.body["alert"], "nothing_to_restore");
    assert!(
        last.subject.starts_with("shiplane ALERT: "),
        "{}",
        last.subject
    );
    let unwatched = AlarmChange {
        alarm: "billing".into(),
        ..alarm(AlarmState::Alarm, 40)
    };
    assert!(matches!(
        e.on_alarm(&unwatched, T0).await.unwrap(),
        Inbound::Ignored(_)
    ));
}

// DESIGN invariant 12: a lane's own firing alarm blocks its start and its success.

/// A world whose db dev stage (a migration first, no bake) watches `db-dev-` alarms.
async fn db_watched() -> World {
    let pipeline = PipelineFile::base().stage("db", "dev", |s| s.alarm_prefixes(&["db-dev-"]));
    World::with(pipeline).await
}

fn db_alarm(state: AlarmState, second: u64) -> AlarmChange {
    AlarmChange {
        alarm: "db-dev-errors".into(),
        state,
        at: Timestamp(T0.0 + second * 1000),
        reason: "Threshold Crossed".into(),
    }
}

fn migrations(w: &World) -> usize {
    w.deployer
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::RunMigration { .. }))
        .count()
}

#[tokio::test]
async fn an_alarm_during_a_migration_ends_the_stage_deploys_nothing_and_holds_the_next_release_until_ok()
 {
    let w = db_watched().await;
    let e = w.engine();
    let first = w.pushed("shiplane/db", 1, "v1").await;
    assert_eq!(w.state(&first, "dev").await, Some(StageState::Migrating));
    e.on_alarm(&db_alarm(AlarmState::Alarm, 10), T0)
        .await
        .unwrap();
    let r = w.store.release(&first).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    let reason = r.stages["dev"].reason.clone().unwrap();
    assert!(
        reason.contains("db-dev-errors") && reason.contains("left to finish"),
        "{reason}"
    );
    // The task is left to finish, and its end deploys nothing.
    assert!(
        !w.deployer
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Stop { .. })),
        "{:?}",
        w.deployer.calls()
    );
    e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&first, "dev").await, Some(StageState::Failed));
    assert!(w.deploys().is_empty(), "{:?}", w.deploys());
    // A push while the alarm fires waits, whoever looks at the lane.
    let next = w.pushed("shiplane/db", 2, "v2").await;
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, None, T0).await.unwrap();
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
    assert_eq!(migrations(&w), 1);
    // OK: the held release starts, nothing stranded.
    e.on_alarm(&db_alarm(AlarmState::Ok, 20), T0).await.unwrap();
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Migrating));
    assert_eq!(migrations(&w), 2);
}

#[tokio::test]
async fn a_deployment_that_succeeds_while_its_lanes_alarm_fires_is_replaced_not_made_last_known_good()
 {
    let w = db_watched().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let good = w.pushed("shiplane/db", 1, "v1").await;
    e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
        .await
        .unwrap();
    e.on_event(
        &pipeline,
        "db",
        "dev",
        &good,
        Event::DeploymentSucceeded,
        T0,
    )
    .await
    .unwrap();
    assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
    e.on_alarm(&db_alarm(AlarmState::Alarm, 10), T0)
        .await
        .unwrap();
    let bad = w.pushed("shiplane/db", 2, "v2").await;
    assert_eq!(w.state(&bad, "dev").await, Some(StageState::Queued));
    // An operator overrides the hold; the new version deploys and succeeds while the
    // alarm still fires.
    let unblock = LaneEvent::Unblock {
        actor: "ana".into(),
        reason: "hotfix".into(),
    };
    e.on_lane(&pipeline, "db", "dev", unblock, T0)
        .await
        .unwrap();
    let history = w.store.history_of_service("db", 50).await.unwrap();
    let unblocked = history
        .iter()
        .find(|t| t.cause == Cause::Unblocked)
        .unwrap();
    assert_eq!(
        unblocked.detail.as_deref(),
        Some("hotfix (overriding the gate: db-dev-errors (dev) in ALARM)")
    );
    let task = format!("arn:aws:ecs:task/{}", w.deployer.calls().len());
    e.on_task_stopped(&stopped(&task, None, Some(0)), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&bad, "dev").await, Some(StageState::Deploying));
    e.on_event(&pipeline, "db", "dev", &bad, Event::DeploymentSucceeded, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&bad, "dev").await, Some(StageState::RolledBack));
    let lane = w.store.lane("db", "dev").await.unwrap().item;
    assert_eq!(lane.last_known_good, Some(good.clone()));
    assert_eq!(lane.in_flight, Some(good.clone()), "the restore runs");
    assert_eq!(
        w.deploys().last().map(String::as_str),
        Some(format!("{good}@dev").as_str())
    );
}

/// How long [`watched_a_day`] watches a release after its bake.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// [`watched`], with dev's releases watched for a [`DAY`] after their bake.
async fn watched_a_day() -> World {
    World::with(
        PipelineFile::base().stage("api", "dev", |s| s.alarm_prefixes(&["api-dev-"]).watch(DAY)),
    )
    .await
}

/// A release watched after its bake (`watch`): an ALARM whose event was lost is read from
/// CloudWatch by the reconciler though the lane is idle, and rolls it back to the release
/// before it, announced as an alert; once the watch (and the hour after) is over,
/// CloudWatch is not asked for that lane any more.
#[tokio::test]
async fn a_lost_alarm_in_the_watch_after_the_bake_is_read_by_the_reconciler_and_rolls_back() {
    use crate::aws::fake::FakeAlarms;
    let w = watched_a_day().await;
    let (v1, v2, _) = w.good_then_deploying().await;
    w.succeed_in_dev(&v2).await;
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.watch.as_ref().map(|w| w.until), Some(T0.after(DAY)));
    assert_eq!(
        lane.in_flight, None,
        "idle: only its watch makes the pass read alarms"
    );

    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let cloudwatch = FakeAlarms::default();
    cloudwatch.set(vec![alarm(AlarmState::Alarm, 3600)]);
    let later = Timestamp(T0.0 + 3_700_000);
    e.reconcile_with_alarms(&cloudwatch, &pipeline, None, later)
        .await
        .unwrap();
    assert_eq!(w.state(&v2, "dev").await, Some(StageState::RolledBack));
    assert_eq!(w.state(&v1, "dev").await, Some(StageState::Deploying));
    let sent = w.notifier.sent.lock().unwrap().clone();
    let alert = sent.iter().find(|n| n.kind.as_str() == "alert").unwrap();
    assert_eq!(alert.body["alert"], "alarm_after_release");
    assert!(
        alert
            .subject
            .starts_with("shiplane ALERT: api v1.0.1 in dev"),
        "{}",
        alert.subject
    );

    // A lane whose watch ended over an hour ago, idle: its alarms are not read.
    let quiet = watched_a_day().await;
    let v = quiet.pushed("shiplane/api", 1, "v1.0.0").await;
    quiet.succeed_in_dev(&v).await;
    let e = quiet.engine();
    let pipeline = e.pipeline().await.unwrap();
    let cloudwatch = FakeAlarms::default();
    let long_after = Timestamp(T0.0 + (DAY.as_secs() + 2 * 3600) * 1000);
    e.reconcile_with_alarms(&cloudwatch, &pipeline, None, long_after)
        .await
        .unwrap();
    assert!(cloudwatch.asked().is_empty(), "{:?}", cloudwatch.asked());
}

/// The watched release put back under its own alarm (taken for a newer release's first):
/// an event passing the lane does not act on the alarm the lane recorded (its OK may be
/// lost), only a reconciler pass that read CloudWatch does, once the alarm has gone on
/// firing ten minutes after the lane last changed.
#[tokio::test]
async fn an_alarm_still_firing_under_the_restored_watched_release_is_acted_on_by_a_pass_that_read_it()
 {
    use crate::aws::fake::FakeAlarms;
    let w = watched_a_day().await;
    let (v1, v2, _) = w.good_then_deploying().await;
    w.succeed_in_dev(&v2).await;
    let v3 = w.pushed("shiplane/api", 3, "v1.0.2").await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    e.on_alarm(&alarm(AlarmState::Alarm, 60), T0).await.unwrap();
    assert_eq!(w.state(&v3, "dev").await, Some(StageState::RolledBack));
    e.on_event(&pipeline, "api", "dev", &v2, Event::DeploymentSucceeded, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&v2, "dev").await, Some(StageState::Succeeded));
    // Twenty minutes on, a push passes the lane: held by the alarm, and nothing else.
    let later = Timestamp(T0.0 + 20 * 60_000);
    e.on_push(&push("shiplane/api", 4, "v1.0.3"), later)
        .await
        .unwrap();
    assert_eq!(w.state(&v2, "dev").await, Some(StageState::Succeeded));
    // The reconciler reads CloudWatch: the alarm still fires; the watch rolls v2 back.
    let cloudwatch = FakeAlarms::default();
    cloudwatch.set(vec![alarm(AlarmState::Alarm, 60)]);
    e.reconcile_with_alarms(&cloudwatch, &pipeline, None, later)
        .await
        .unwrap();
    assert_eq!(w.state(&v2, "dev").await, Some(StageState::RolledBack));
    assert_eq!(w.state(&v1, "dev").await, Some(StageState::Deploying));
}
