//! Bake timers: one per bake, set, fired and deleted once; the alarms read from CloudWatch
//! before any bake ends.

use super::alarms::{alarm, watched};
use super::history_causes as causes;
use super::*;
use crate::facts::BakeTimer;
use crate::inbound::alarm::AlarmState;
use crate::inbound::codedeploy::{DeploymentState, DeploymentStateChange};

const BAKE_END: Timestamp = Timestamp(T0.0 + 600_000);

/// Pushes a release and reports its deployment a success at T0: it bakes in dev.
async fn baking(w: &World) -> ReleaseId {
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    bake(w, &id).await;
    id
}

/// [`baking`] while the lane's own alarm fires: the push is held, and an operator's
/// unblock overrides the hold (the one way a release bakes under its firing alarm).
async fn baking_under_alarm(w: &World) -> ReleaseId {
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Queued), "held");
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let unblock = LaneEvent::Unblock {
        actor: "ana".into(),
        reason: "the alarm is unrelated".into(),
    };
    e.on_lane(&pipeline, "api", "dev", unblock, T0)
        .await
        .unwrap();
    bake(w, &id).await;
    id
}

async fn bake(w: &World, id: &ReleaseId) {
    let success = DeploymentStateChange {
        deployment_id: "d-1".into(),
        application: "api".into(),
        deployment_group: "api-dev".into(),
        state: DeploymentState::Success,
        at: T0,
    };
    w.engine().on_deployment_state(&success, T0).await.unwrap();
    assert_eq!(w.state(id, "dev").await, Some(StageState::Baking));
}

/// Alarms are state (DESIGN invariant 12): the bake timer's pass reads the stage's
/// alarms from CloudWatch first. An ALARM whose event was lost rolls the release back
/// instead of letting the timer promote it (found by the simulation, seed 1495: the
/// event lost, two reconciler passes dead, the timer promoted a bad release); with
/// CloudWatch unreachable the bake is left to the reconciler.
#[tokio::test]
async fn the_bake_timer_reads_the_alarms_first_and_a_lost_alarm_rolls_back() {
    use crate::aws::fake::FakeAlarms;
    use crate::facts::AlarmChange;
    let pipeline = PipelineFile::base().stage("api", "dev", |s| s.alarms(&["api-dev-5xx"]));
    let w = World::with(pipeline).await;
    let id = baking(&w).await;
    let timer = BakeTimer::new("api", "dev", &id, 0);
    let cloudwatch = FakeAlarms::default();
    cloudwatch.states.lock().unwrap().push(AlarmChange {
        alarm: "api-dev-5xx".into(),
        state: AlarmState::Alarm,
        at: Timestamp(BAKE_END.0 - 60_000),
        reason: "5xx above 1%".into(),
    });
    *cloudwatch.unreachable.lock().unwrap() = true;
    let e = w.engine();
    let unread = e
        .on_bake_timer_reading(&cloudwatch, &timer, BAKE_END)
        .await
        .unwrap();
    *cloudwatch.unreachable.lock().unwrap() = false;
    assert!(
        matches!(unread, Inbound::Ignored(ref why) if why.contains("reconciler")),
        "{unread:?}"
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    let out = e
        .on_bake_timer_reading(&cloudwatch, &timer, BAKE_END)
        .await
        .unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
    assert_eq!(w.state(&id, "prod").await, None, "never promoted");
    assert_eq!(cloudwatch.asked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_bake_sets_one_timer_whose_firing_promotes_and_which_is_then_deleted() {
    let w = World::new().await;
    let id = baking(&w).await;
    let timer = BakeTimer::new("api", "dev", &id, 0);
    assert_eq!(
        w.timer.pending(),
        [(timer.name(), timer.clone(), BAKE_END)],
        "one timer, at the end of the bake"
    );
    // Fired early (it cannot be, rounded up to the minute; a clock can be off): nothing.
    let early = w
        .engine()
        .on_bake_timer(&timer, Timestamp(BAKE_END.0 - 1))
        .await
        .unwrap();
    assert!(matches!(early, Inbound::Ignored(ref why) if why.contains("fired early")));
    let out = w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
    assert_eq!(
        w.timer.log(),
        [
            format!("set {}", timer.name()),
            format!("clear {}", timer.name())
        ]
    );
    let history = w.store.history_of_release(&id).await.unwrap();
    let dev: Vec<Transition> = history
        .into_iter()
        .filter(|t| t.environment == "dev")
        .collect();
    assert_eq!(
        causes(&dev),
        [
            "arrived",
            "deployment_created",
            "deployment_succeeded",
            "timer_set",
            "bake_elapsed",
            "timer_cleared"
        ]
    );
    // Scheduler delivers at least once: the same firing again changes nothing.
    let before = w.store.history_of_release(&id).await.unwrap().len();
    let again = w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
    match again {
        Inbound::Accepted(report) => {
            assert!(report.transitions.is_empty());
            assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
    // A timer of another attempt of the stage is not this bake's.
    let old = BakeTimer::new("api", "dev", &id, 7);
    assert!(matches!(
        w.engine().on_bake_timer(&old, BAKE_END).await.unwrap(),
        Inbound::Ignored(ref why) if why.contains("attempt 7")
    ));
}

#[tokio::test]
async fn a_timer_that_could_not_be_set_is_set_again_by_the_reconciler_which_also_ends_a_due_bake() {
    let w = World::new().await;
    *w.timer.fail_next.lock().unwrap() = 1;
    let id = baking(&w).await;
    assert!(w.timer.pending().is_empty());
    let history = w.store.history_of_release(&id).await.unwrap();
    let failed = history.last().unwrap();
    assert_eq!(failed.cause, Cause::TimerFailed);
    assert!(
        failed
            .detail
            .as_deref()
            .unwrap()
            .contains("AccessDeniedException"),
        "{failed:?}"
    );
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, None, Timestamp(T0.0 + 60_000))
        .await
        .unwrap();
    assert_eq!(w.timer.pending().len(), 1, "set again by the reconciler");
    // Passes while it is set change nothing and record nothing.
    let before = w.store.history_of_release(&id).await.unwrap().len();
    e.reconcile(&pipeline, None, Timestamp(T0.0 + 120_000))
        .await
        .unwrap();
    assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
    // The timer is lost again, and the bake ends: the reconciler ends it.
    w.timer.set.lock().unwrap().clear();
    e.reconcile(&pipeline, None, BAKE_END).await.unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
}

#[tokio::test]
async fn an_alarm_during_the_bake_deletes_the_timer_with_the_bake() {
    let w = watched().await;
    let id = baking(&w).await;
    assert_eq!(w.timer.pending().len(), 1);
    w.engine()
        .on_alarm(&alarm(AlarmState::Alarm, 30), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
    assert!(w.timer.pending().is_empty(), "{:?}", w.timer.log());
    // Its firing anyway (Scheduler was already invoking it) changes nothing.
    let timer = BakeTimer::new("api", "dev", &id, 0);
    w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
    assert_eq!(w.state(&id, "prod").await, None);
}

#[tokio::test]
async fn a_bake_ending_while_the_stages_alarm_fires_is_held_until_it_is_ok() {
    let w = watched().await;
    // The alarm fires while the lane is idle, before the release exists.
    w.engine()
        .on_alarm(&alarm(AlarmState::Alarm, 1), T0)
        .await
        .unwrap();
    let id = baking_under_alarm(&w).await;
    let timer = BakeTimer::new("api", "dev", &id, 0);
    let held = w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
    match held {
        Inbound::Accepted(report) => {
            assert!(report.transitions.is_empty());
            assert!(
                report.refused[0].contains("api-dev-5xx in ALARM"),
                "{:?}",
                report.refused
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, None, Timestamp(BAKE_END.0 + 60_000))
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    // OK: the gate opens; the bake ends at the reconciler's next pass, which reads
    // every alarm of the lane first (the OK of one alarm says nothing of the others,
    // whose ALARM may be lost or late: simulation seed 2318).
    e.on_alarm(&alarm(AlarmState::Ok, 700), Timestamp(BAKE_END.0 + 120_000))
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    e.reconcile(&pipeline, None, Timestamp(BAKE_END.0 + 180_000))
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
}

/// Found by the simulation (seed 2318): a bake over, its lane's ALARM late (still in
/// EventBridge), and a push arriving on the lane ended the bake from the states the
/// lane had recorded; the bad release became last known good. Only a pass that reads
/// the alarms from CloudWatch ends a bake.
#[tokio::test]
async fn an_event_passing_a_bake_that_is_over_leaves_it_to_a_pass_that_reads_the_alarms() {
    use crate::aws::fake::FakeAlarms;
    let w = watched().await;
    let id = baking(&w).await;
    let after = Timestamp(BAKE_END.0 + 1_000);
    let next = w
        .engine()
        .on_push(&push("shiplane/api", 2, "v1.0.1"), after)
        .await;
    assert!(next.is_ok(), "{next:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    // The reconciler reads CloudWatch: the ALARM whose event is late rolls it back.
    let cloudwatch = FakeAlarms::default();
    cloudwatch.set(vec![alarm(AlarmState::Alarm, 590)]);
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile_with_alarms(&cloudwatch, &pipeline, None, after)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
}

#[tokio::test]
async fn an_ok_whose_event_was_lost_is_read_from_cloudwatch_by_the_reconciler() {
    use crate::aws::fake::FakeAlarms;
    let w = watched().await;
    w.engine()
        .on_alarm(&alarm(AlarmState::Alarm, 1), T0)
        .await
        .unwrap();
    let id = baking_under_alarm(&w).await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    e.on_bake_timer(&BakeTimer::new("api", "dev", &id, 0), BAKE_END)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking), "held");
    let cloudwatch = FakeAlarms::default();
    // CloudWatch says it still fires (the change recorded), or reports an OK older than
    // the ALARM seen: nothing.
    for stale in [alarm(AlarmState::Alarm, 1), alarm(AlarmState::Ok, 0)] {
        cloudwatch.set(vec![stale]);
        let report = e
            .reconcile_with_alarms(&cloudwatch, &pipeline, None, BAKE_END)
            .await
            .unwrap()
            .report;
        assert!(report.transitions.is_empty(), "{report:?}");
    }
    assert_eq!(
        cloudwatch.asked()[0],
        (
            vec!["api-dev-5xx".to_string()],
            vec!["api-dev-".to_string()]
        ),
        "the alarms the baking lane watches: by name as recorded, and by prefix"
    );
    // The OK event never came; CloudWatch knows.
    cloudwatch.set(vec![alarm(AlarmState::Ok, 700)]);
    e.reconcile_with_alarms(&cloudwatch, &pipeline, None, Timestamp(BAKE_END.0 + 60_000))
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.alarms["api-dev-5xx"].state, AlarmState::Ok);
    // No lane has work that watches an alarm any more: CloudWatch is not asked again.
    let asked = cloudwatch.asked().len();
    e.reconcile_with_alarms(
        &cloudwatch,
        &pipeline,
        None,
        Timestamp(BAKE_END.0 + 120_000),
    )
    .await
    .unwrap();
    assert_eq!(cloudwatch.asked().len(), asked);
}
