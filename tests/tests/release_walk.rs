//! A release walks dev → staging → prod against the local AWS with the real adapters:
//! CodeDeploy deployments, a bake timer in EventBridge Scheduler fired as Scheduler would,
//! approvals, a prod gate held by a dev alarm and released by its OK, every transition in
//! history, and the notifications read back from the topic's queue in order. Time is
//! injected: nothing sleeps.

use std::collections::BTreeMap;

use serde_json::Value;
use shiplane::facts::AlarmChange;
use shiplane::facts::BakeTimer;
use shiplane::inbound::Inbound;
use shiplane::inbound::schedule::parse_timer;
use shiplane::release::AlarmState;
use shiplane::release::{Event, ReleaseId, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::{
    account, aws_adapters, deployment_succeeds, fire_schedules, fresh_store, image_push,
    notifications, schedules, three_environments, unique_prefix,
};

const MINUTE: u64 = 60_000;

fn at(base: Timestamp, minutes: u64) -> Timestamp {
    Timestamp(base.0 + minutes * MINUTE)
}

async fn state(store: &DynamoStore, release: &ReleaseId, env: &str) -> Option<StageState> {
    store.release(release).await.unwrap()?.item.state_in(env)
}

#[tokio::test]
async fn a_release_walks_dev_staging_prod_through_its_bake_timer_approvals_and_gate() {
    let p = unique_prefix();
    let source = three_environments(&p);
    let account = account(&source, &format!("{p}-releases"));
    let store = fresh_store().await;
    shiplane_e2e::apply_pipeline(&store, source).await;
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let pipeline = engine.pipeline().await.unwrap();
    notifications(&account.queue_url);

    // Pushed: dev deploys; CodeDeploy succeeds; the bake starts with its timer.
    let push = image_push(&format!("{p}/web"), "v1");
    let base = push.pushed_at;
    let release = shiplane_e2e::release_from_push(&engine, &push).await;
    deployment_succeeds(&engine, &release, "dev", at(base, 1)).await;
    assert_eq!(
        state(&store, &release, "dev").await,
        Some(StageState::Baking)
    );
    let timer = BakeTimer::new("web", "dev", &release, 0);
    let set = schedules();
    let ours: Vec<&Value> = set["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["group"] == account.schedule_group.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "one bake timer: {set}");
    assert_eq!(ours[0]["name"], timer.name().as_str());
    assert_eq!(
        ours[0]["expression"],
        BakeTimer::expression(at(base, 11)).as_str()
    );
    assert_eq!(ours[0]["target"], account.promote_function_arn.as_str());
    assert_eq!(ours[0]["actionAfterCompletion"], "DELETE");

    // Scheduler fires nothing before the bake ends, then the timer, once.
    assert!(fire_schedules(at(base, 5)).is_empty());
    let fired: Vec<Value> = fire_schedules(at(base, 12))
        .into_iter()
        .filter(|f| f["release"] == release.as_str())
        .collect();
    assert_eq!(fired.len(), 1);
    let Ok(Inbound::Accepted(fired_timer)) = parse_timer(&fired[0]) else {
        panic!("not a timer: {}", fired[0])
    };
    assert_eq!(fired_timer, timer);
    let out = engine
        .on_bake_timer(&fired_timer, at(base, 12))
        .await
        .unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(
        state(&store, &release, "dev").await,
        Some(StageState::Succeeded)
    );
    assert_eq!(
        state(&store, &release, "staging").await,
        Some(StageState::AwaitingApproval)
    );
    let log: Vec<(String, String)> = schedules()["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == timer.name().as_str())
        .map(|r| {
            (
                r["op"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ops: Vec<&str> = log.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(
        ops,
        ["created", "fired", "deleted"],
        "created once, deleted after it fired"
    );

    // Staging: approved, deployed, no bake: prod awaits its approval.
    let approve = |actor: &str| Event::Approved {
        actor: actor.into(),
    };
    engine
        .on_event(
            &pipeline,
            "web",
            "staging",
            &release,
            approve("ana"),
            at(base, 20),
        )
        .await
        .unwrap();
    deployment_succeeds(&engine, &release, "staging", at(base, 25)).await;
    assert_eq!(
        state(&store, &release, "prod").await,
        Some(StageState::AwaitingApproval)
    );

    // A dev alarm fires: prod's approval is held; the alarm's OK lets it go.
    let dev_alarm = |state, minutes| AlarmChange {
        alarm: format!("{p}-web-dev-5xx"),
        state,
        at: at(base, minutes),
        reason: "Threshold Crossed".into(),
    };
    engine
        .on_alarm(&dev_alarm(AlarmState::Alarm, 30), at(base, 30))
        .await
        .unwrap();
    engine
        .on_event(
            &pipeline,
            "web",
            "prod",
            &release,
            approve("bo"),
            at(base, 31),
        )
        .await
        .unwrap();
    assert_eq!(
        state(&store, &release, "prod").await,
        Some(StageState::Queued)
    );
    engine
        .on_alarm(&dev_alarm(AlarmState::Ok, 40), at(base, 40))
        .await
        .unwrap();
    assert_eq!(
        state(&store, &release, "prod").await,
        Some(StageState::Deploying)
    );
    deployment_succeeds(&engine, &release, "prod", at(base, 45)).await;
    assert_eq!(
        state(&store, &release, "prod").await,
        Some(StageState::Succeeded)
    );

    // Every transition, in order, per environment.
    let history = store.history_of_release(&release).await.unwrap();
    let mut by_env: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &history {
        by_env
            .entry(t.environment.as_str())
            .or_default()
            .push(t.cause.as_str());
    }
    assert_eq!(
        by_env["dev"],
        [
            "arrived",
            "deployment_created",
            "deployment_succeeded",
            "timer_set",
            "bake_elapsed"
        ]
    );
    assert_eq!(
        by_env["staging"],
        [
            "arrived",
            "approved",
            "deployment_created",
            "deployment_succeeded"
        ]
    );
    assert_eq!(
        by_env["prod"],
        [
            "arrived",
            "approved",
            "dequeued",
            "deployment_created",
            "deployment_succeeded"
        ]
    );
    let approvers: Vec<Option<&str>> = history
        .iter()
        .filter(|t| t.cause.as_str() == "approved")
        .map(|t| t.actor.as_deref())
        .collect();
    assert_eq!(approvers, [Some("ana"), Some("bo")]);

    // The topic said each step, in order, and how to approve (SNS delivers the body as
    // the envelope's Message).
    let notes: Vec<Value> = notifications(&account.queue_url)
        .iter()
        .map(|m| serde_json::from_str(m["Message"].as_str().unwrap_or("{}")).unwrap())
        .collect();
    let said: Vec<String> = notes
        .iter()
        .filter(|n| n["release"] == release.as_str() || n["kind"] == "release_created")
        .map(|n| {
            format!(
                "{} {}",
                n["environment"].as_str().unwrap_or("-"),
                n["kind"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            "- release_created",
            "dev stage_started",
            "dev deployment_created",
            "dev deployment_succeeded",
            "dev timer_set",
            "dev succeeded",
            "staging awaiting_approval",
            "staging stage_started",
            "staging deployment_created",
            "staging succeeded",
            "prod awaiting_approval",
            "prod queued",
            "prod stage_started",
            "prod deployment_created",
            "prod succeeded",
        ]
    );
    let approval = notes
        .iter()
        .find(|n| n["kind"] == "awaiting_approval" && n["environment"] == "prod")
        .unwrap();
    assert_eq!(
        approval["command"],
        format!(
            "shiplane approve {} prod",
            approval["release"].as_str().unwrap()
        ),
        "the command names the release by id: a tag may move to another release"
    );
}
