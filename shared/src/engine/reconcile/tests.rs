//! The reconciler over a whole pipeline: alarms read as state before any bake ends, and
//! one lane's failure kept to that lane.

use std::time::Duration;

use super::super::{Engine, PushOutcome};
use crate::aws::fake::FakeAlarms;
use crate::engine::testing::{FakeDeps, FakePorts, deps_with_pipeline};
use crate::facts::AlarmChange;
use crate::release::AlarmState;
use crate::release::intake::ImagePush;
use crate::release::{Digest, Event, Lane, ReleaseId, StageState, Timestamp};
use crate::store::{Commit, LaneKey, ReleaseStore, Versioned};

/// `api`: dev bakes 10 minutes watching `api-dev-5xx` and every `api-dev-latency-*`;
/// prod is approved by a person and held while dev's alarms fire. `web`: one environment.
const PIPELINE: &str = r#"
[pipeline]
environments = ["dev", "prod"]
[services.api]
repository = "shiplane/api"
kind = "rolling"
container = "app"
[services.api.environments.dev]
cluster = "c"
service = "api-dev"
bake = "10m"
alarms = ["api-dev-5xx"]
alarm_prefixes = ["api-dev-latency-"]
[services.api.environments.prod]
cluster = "c"
service = "api-prod"
approval = "manual"
hold_while_alarms_in = ["dev"]
[services.web]
repository = "shiplane/web"
kind = "rolling"
container = "app"
[services.web.environments.dev]
cluster = "c"
service = "web-dev"
bake = "10m"
"#;

const T0: Timestamp = Timestamp(1_760_000_000_000);

fn at(minutes: u64) -> Timestamp {
    T0.after(Duration::from_secs(minutes * 60))
}

fn push(repository: &str, n: u8) -> ImagePush {
    ImagePush {
        registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
        repository: repository.into(),
        digest: Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32)))
            .unwrap_or_else(|e| panic!("{e}")),
        tag: format!("v1.0.{n}"),
        pushed_at: Timestamp(T0.0 + u64::from(n) * 1000),
    }
}

fn alarm(name: &str, state: AlarmState, at: Timestamp) -> AlarmChange {
    AlarmChange {
        alarm: name.into(),
        state,
        at,
        reason: "Threshold Crossed".into(),
    }
}

fn engine(d: &FakeDeps) -> Engine<'_, FakePorts> {
    d.engine()
}

async fn state(d: &FakeDeps, id: &ReleaseId, env: &str) -> Option<StageState> {
    d.store.release(id).await.unwrap()?.item.state_in(env)
}

/// A release of `repository` pushed at `now` whose dev deployment succeeded: it bakes
/// until ten minutes later.
async fn baking(d: &FakeDeps, repository: &str, n: u8, now: Timestamp) -> ReleaseId {
    let e = engine(d);
    let id = match e.on_push(&push(repository, n), now).await.unwrap() {
        PushOutcome::Created { release, .. } => release,
        other => panic!("expected a new release, got {other:?}"),
    };
    let pipeline = e.pipeline().await.unwrap();
    let service = repository.trim_start_matches("shiplane/");
    e.on_event(
        &pipeline,
        service,
        "dev",
        &id,
        Event::DeploymentSucceeded,
        now,
    )
    .await
    .unwrap();
    assert_eq!(state(d, &id, "dev").await, Some(StageState::Baking));
    id
}

fn deploys(d: &FakeDeps) -> Vec<String> {
    d.deployer.deploys()
}

// Issue #22, defect 3: an ALARM whose event was lost is read from CloudWatch before the
// bake it should have stopped can end.
#[tokio::test]
async fn an_alarm_whose_event_was_lost_rolls_the_baking_release_back_instead_of_promoting_it() {
    let d = deps_with_pipeline(PIPELINE).await;
    let e = engine(&d);
    let pipeline = e.pipeline().await.unwrap();
    let good = baking(&d, "shiplane/api", 1, T0).await;
    e.on_event(&pipeline, "api", "dev", &good, Event::BakeElapsed, at(10))
        .await
        .unwrap();
    assert_eq!(state(&d, &good, "dev").await, Some(StageState::Succeeded));
    let bad = baking(&d, "shiplane/api", 2, at(20)).await;
    // The alarm fires during the bad release's bake; EventBridge never delivers it.
    let cloudwatch = FakeAlarms::default();
    cloudwatch.set(vec![alarm("api-dev-5xx", AlarmState::Alarm, at(25))]);
    let before = deploys(&d).len();
    let _ = e
        .reconcile_with_alarms(&cloudwatch, &pipeline, None, at(31))
        .await;
    assert_eq!(
        state(&d, &bad, "dev").await,
        Some(StageState::RolledBack),
        "rolled back, as the alarm's event would have"
    );
    assert!(
        cloudwatch
            .asked()
            .iter()
            .any(|(names, _)| names.contains(&"api-dev-5xx".to_string())),
        "CloudWatch is asked about the baking lane's alarm: {:?}",
        cloudwatch.asked()
    );
    assert_eq!(state(&d, &bad, "prod").await, None, "never promoted");
    assert_eq!(
        deploys(&d)[before..],
        [format!("{good}@dev")],
        "the last known good release is deployed again, once"
    );
    let lane = d.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.last_known_good, Some(good));
    assert_eq!(lane.alarms["api-dev-5xx"].state, AlarmState::Alarm);
}

// Defect 8: one lane that cannot be reconciled does not stop the others.
#[tokio::test]
async fn a_corrupt_lane_in_one_service_does_not_stop_the_next_service_from_being_reconciled() {
    let d = deps_with_pipeline(PIPELINE).await;
    let e = engine(&d);
    let pipeline = e.pipeline().await.unwrap();
    // api/dev names a release that does not exist (edited by hand, or a bug).
    let mut lane = Lane::new("api", "dev");
    lane.in_flight = Some(ReleaseId::new(T0));
    d.store
        .commit(Commit {
            lanes: vec![Versioned {
                item: lane,
                version: 0,
            }],
            ..Commit::default()
        })
        .await
        .unwrap();
    // web (after api in the pass) bakes, and its bake is over.
    let web = baking(&d, "shiplane/web", 3, T0).await;
    let out = e
        .reconcile_with_alarms(&FakeAlarms::default(), &pipeline, None, at(11))
        .await
        .expect("a pass that reached some lanes answers");
    assert_eq!(state(&d, &web, "dev").await, Some(StageState::Succeeded));
    assert_eq!(
        out.report.state_of(&web, "dev"),
        Some(StageState::Succeeded)
    );
    let failed: Vec<_> = out
        .failed
        .iter()
        .map(|f| (f.service.as_str(), f.environment.as_deref()))
        .collect();
    assert_eq!(failed, [("api", Some("dev"))], "counted, named");
    let why = out.failed[0].error.to_string();
    assert!(
        why.contains("lane api/dev") && why.contains("does not exist"),
        "{why}"
    );
    // The plain pass (recorded alarm states) isolates it the same way.
    let again = e.reconcile(&pipeline, None, at(12)).await.unwrap();
    assert_eq!(again.failed.len(), 1);
}

#[tokio::test]
async fn with_cloudwatch_unreachable_a_bake_that_is_over_stays_owed_until_the_alarms_are_read() {
    let d = deps_with_pipeline(PIPELINE).await;
    let e = engine(&d);
    let pipeline = e.pipeline().await.unwrap();
    let id = baking(&d, "shiplane/api", 1, T0).await;
    let cloudwatch = FakeAlarms::default();
    *cloudwatch.unreachable.lock().unwrap() = true;
    let out = e
        .reconcile_with_alarms(&cloudwatch, &pipeline, None, at(11))
        .await
        .unwrap();
    assert_eq!(state(&d, &id, "dev").await, Some(StageState::Baking));
    assert_eq!(out.bakes_left_owed, [LaneKey::new("api", "dev")]);
    assert!(
        out.alarms_unread
            .as_deref()
            .is_some_and(|why| why.contains("connection refused")),
        "{:?}",
        out.alarms_unread
    );
    assert!(out.failed.is_empty());
    // CloudWatch answers again, nothing fires: the next pass ends the bake.
    *cloudwatch.unreachable.lock().unwrap() = false;
    let out = e
        .reconcile_with_alarms(&cloudwatch, &pipeline, None, at(16))
        .await
        .unwrap();
    assert!(out.bakes_left_owed.is_empty() && out.alarms_unread.is_none());
    assert_eq!(state(&d, &id, "dev").await, Some(StageState::Succeeded));
    assert_eq!(
        state(&d, &id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
}

#[tokio::test]
async fn an_alarm_a_gate_watches_by_prefix_is_read_for_the_release_waiting_behind_it() {
    let d = deps_with_pipeline(PIPELINE).await;
    let e = engine(&d);
    let pipeline = e.pipeline().await.unwrap();
    let id = baking(&d, "shiplane/api", 1, T0).await;
    e.on_event(&pipeline, "api", "dev", &id, Event::BakeElapsed, at(10))
        .await
        .unwrap();
    assert_eq!(
        state(&d, &id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
    // dev is idle; the release waiting for prod is held while dev's alarms fire. One of
    // them (matched by prefix, never seen by any lane) fires; its event is lost.
    let cloudwatch = FakeAlarms::default();
    cloudwatch.set(vec![
        alarm("api-dev-latency-p99", AlarmState::Alarm, at(12)),
        alarm("api-dev-5xx", AlarmState::Ok, at(1)),
        alarm("api-prod-5xx", AlarmState::Alarm, at(12)),
    ]);
    e.reconcile_with_alarms(&cloudwatch, &pipeline, None, at(13))
        .await
        .unwrap();
    assert_eq!(
        cloudwatch.asked(),
        [(
            vec!["api-dev-5xx".to_string()],
            vec!["api-dev-latency-".to_string()]
        )],
        "one batch: the gate's alarms, by name and by prefix"
    );
    let dev = d.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(dev.firing_alarms(), ["api-dev-latency-p99"]);
    assert!(
        !dev.alarms.contains_key("api-dev-5xx"),
        "an OK never seen changes nothing and is not recorded"
    );
    // Approved now: held, not deployed.
    let approve = Event::Approved {
        actor: "ana".into(),
    };
    e.on_event(&pipeline, "api", "prod", &id, approve, at(14))
        .await
        .unwrap();
    assert_eq!(state(&d, &id, "prod").await, Some(StageState::Queued));
    assert!(deploys(&d).iter().all(|d| !d.ends_with("@prod")));
}

/// A success owes the clean-up of older revisions (`keep`): the bake's end does not do it
/// (it waits for nothing more), the reconciler's next pass does, once.
#[tokio::test]
async fn the_clean_up_a_success_owes_is_done_by_the_next_reconciler_pass_once() {
    use crate::aws::fake::Call;
    let d = deps_with_pipeline(PIPELINE).await;
    let e = engine(&d);
    let pipeline = e.pipeline().await.unwrap();
    let id = baking(&d, "shiplane/web", 1, T0).await;
    e.on_event(&pipeline, "web", "dev", &id, Event::BakeElapsed, at(10))
        .await
        .unwrap();
    let cleaned = |d: &FakeDeps| {
        d.deployer
            .calls()
            .into_iter()
            .filter(|c| matches!(c, Call::CleanUp { .. }))
            .collect::<Vec<_>>()
    };
    assert!(cleaned(&d).is_empty(), "not on the bake's end");
    let owes = async |d: &FakeDeps| {
        d.store.release(&id).await.unwrap().unwrap().item.stages["dev"].owes_clean_up()
    };
    assert!(owes(&d).await);
    let cloudwatch = FakeAlarms::default();
    for minute in [11, 12] {
        let _ = e
            .reconcile_with_alarms(&cloudwatch, &pipeline, None, at(minute))
            .await;
    }
    assert_eq!(
        cleaned(&d),
        [Call::CleanUp {
            release: id.to_string(),
            environment: "dev".into(),
            keep: crate::pipeline::DEFAULT_KEEP,
        }],
        "once, with the stage's keep"
    );
    assert!(!owes(&d).await);
}
