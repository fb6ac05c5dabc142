//! Gates: a promotion held while alarms fire in an earlier environment, write skew on a
//! gate, and the operator's override.

use super::doubles::Interleaved;
use super::*;
use crate::facts::AlarmChange;
use crate::release::AlarmState;
use std::sync::Mutex;

/// The base pipeline whose api dev stage watches `api-dev-` alarms and whose prod stage is
/// held while they fire.
fn gated() -> PipelineFile {
    PipelineFile::base()
        .stage("api", "dev", |s| s.alarm_prefixes(&["api-dev-"]))
        .stage("api", "prod", |s| s.hold_while_alarms_in(&["dev"]))
}

#[tokio::test]
async fn a_dev_alarm_holds_the_prod_promotion_and_its_return_to_ok_lets_it_go() {
    let w = World::with(gated()).await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.succeed_in_dev(&id).await;
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
    let change = |state, second: u64| AlarmChange {
        alarm: "api-dev-5xx".into(),
        state,
        at: Timestamp(T0.0 + second * 1000),
        reason: "r".into(),
    };
    e.on_alarm(&change(AlarmState::Alarm, 10), T0)
        .await
        .unwrap();
    // Approved while dev's alarm fires: held in the queue, with the reason.
    let approve = Event::Approved {
        actor: "ana".into(),
    };
    e.on_event(&pipeline, "api", "prod", &id, approve, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "prod").await, Some(StageState::Queued));
    let history = w.store.history_of_release(&id).await.unwrap();
    let queued = history
        .iter()
        .rev()
        .find(|t| t.environment == "prod")
        .unwrap();
    assert_eq!(queued.actor.as_deref(), Some("ana"));
    assert_eq!(
        queued.detail.as_deref(),
        Some("held: api-dev-5xx (dev) in ALARM")
    );
    assert!(w.deploys().iter().all(|d| !d.ends_with("@prod")));
    // Nothing starts it while the alarm fires (the reconciler looks too).
    e.reconcile(&pipeline, None, T0).await.unwrap();
    assert_eq!(w.state(&id, "prod").await, Some(StageState::Queued));
    // The alarm returns to OK: the promotion proceeds.
    e.on_alarm(&change(AlarmState::Ok, 20), T0).await.unwrap();
    assert_eq!(w.state(&id, "prod").await, Some(StageState::Deploying));
    assert_eq!(
        w.deploys().last().map(String::as_str),
        Some(format!("{id}@prod").as_str())
    );
}

// Write skew on a gate: every gate lane a decision read is a condition of its commit.

#[tokio::test]
async fn a_dev_alarm_committed_between_a_prod_decisions_read_and_its_commit_holds_prod() {
    let w = World::with(gated()).await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.succeed_in_dev(&id).await;
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
    // Another invocation's decision: dev's alarm fires (dev is idle, so only its lane
    // changes).
    let dev = LoadedLane::load(&w.store, "api", "dev", &[]).await.unwrap();
    let (service, stage) = stage_of(&pipeline, "api", "dev").unwrap();
    let fired = LaneEvent::AlarmChanged {
        alarm: "api-dev-5xx".into(),
        state: AlarmState::Alarm,
        at: Timestamp(T0.0 + 10_000),
        reason: "Threshold Crossed".into(),
    };
    let decision =
        crate::release::apply_lane(&dev.view, &fired, &Policy::for_stage(service, stage), T0)
            .unwrap();
    let skewed = Interleaved {
        inner: w.store,
        first: Mutex::new(Some(dev.commit_for(&decision))),
        unreadable: None,
    };
    let e = Engine::new(&skewed, &w.deployer, &w.notifier, &w.timer);
    // The approval is decided against dev without the alarm; dev's alarm lands before
    // its commit.
    let approve = Event::Approved {
        actor: "ana".into(),
    };
    e.on_event(&pipeline, "api", "prod", &id, approve, T0)
        .await
        .unwrap();
    assert!(skewed.first.lock().unwrap().is_none(), "the alarm landed");
    let dev_lane = skewed.inner.lane("api", "dev").await.unwrap().item;
    assert_eq!(dev_lane.alarms["api-dev-5xx"].state, AlarmState::Alarm);
    let r = skewed.inner.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("prod"), Some(StageState::Queued));
    assert!(
        !w.deployer
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Deploy { environment, .. } if environment == "prod")),
        "{:?}",
        w.deployer.calls()
    );
    let history = skewed.inner.history_of_release(&id).await.unwrap();
    let queued = history
        .iter()
        .rev()
        .find(|t| t.environment == "prod")
        .unwrap();
    assert_eq!(
        queued.detail.as_deref(),
        Some("held: api-dev-5xx (dev) in ALARM")
    );
}

#[tokio::test]
async fn an_operator_can_unblock_a_gate_whose_alarm_never_reports_ok() {
    let w = World::with(gated()).await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.succeed_in_dev(&id).await;
    let fired = AlarmChange {
        alarm: "api-dev-5xx".into(),
        state: AlarmState::Alarm,
        at: Timestamp(T0.0 + 10_000),
        reason: "r".into(),
    };
    e.on_alarm(&fired, T0).await.unwrap();
    let approve = Event::Approved {
        actor: "ana".into(),
    };
    e.on_event(&pipeline, "api", "prod", &id, approve, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&id, "prod").await, Some(StageState::Queued));
    // The OK event is lost; the operator decides.
    let unblock = LaneEvent::Unblock {
        actor: "ana".into(),
        reason: "the dev alarm is a false positive".into(),
    };
    let report = e
        .on_lane(&pipeline, "api", "prod", unblock, T0)
        .await
        .unwrap();
    assert!(report.refused.is_empty(), "{report:?}");
    assert_eq!(w.state(&id, "prod").await, Some(StageState::Deploying));
    let unblocked = report
        .transitions
        .iter()
        .find(|t| t.cause == Cause::Unblocked)
        .unwrap();
    assert!(
        unblocked
            .detail
            .as_deref()
            .unwrap()
            .contains("overriding the gate: api-dev-5xx (dev) in ALARM"),
        "{unblocked:?}"
    );
}
