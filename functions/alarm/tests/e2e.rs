//! The built `alarm` binary behind a local Runtime API, fed both shapes of an alarm state
//! change, against a deployment the engine created in the local AWS.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use shiplane::release::StageState;
use shiplane::store::ReleaseStore;
use shiplane_e2e::runtime_api::RuntimeApi;
use shiplane_e2e::{aws_adapters, codedeploy_reports, deployed_world, image_push, workspace};

const BINARY: &str = env!("CARGO_BIN_EXE_alarm");

/// A fixture of tests/fixtures/events/cloudwatch, for alarm `name`.
fn fixture(file: &str, name: &str) -> Value {
    let path = workspace().join(format!("tests/fixtures/events/cloudwatch/{file}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("api-dev-5xx", name);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn an_alarm_in_either_shape_stops_and_rolls_back_the_deployment_once() {
    let (p, account, store) = deployed_world().await;
    let alarm = format!("{p}-api-dev-5xx");
    shiplane_e2e::edit_pipeline(&store, |source| {
        let anchor = "codedeploy = { application = \"";
        source.replacen(anchor, &format!("alarms = [\"{alarm}\"]\n{anchor}"), 1)
    })
    .await;
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let release =
        shiplane_e2e::release_from_push(&engine, &image_push(&format!("{p}/api"), "v1")).await;
    let deployment = shiplane_e2e::deployment_of(&store, &release, "dev").await;

    let api = RuntimeApi::start().await;
    let function = api.spawn(
        Path::new(BINARY),
        "shiplane-alarm",
        &account.function_env(&store),
    );
    // The same ALARM through EventBridge twice and once from the alarm's Lambda action.
    api.invoke(fixture("eventbridge-alarm", &alarm));
    api.invoke(fixture("eventbridge-alarm", &alarm));
    api.invoke(fixture("lambda-action-alarm", &alarm));
    let out = api.wait_for(3, Duration::from_secs(60)).await;
    assert!(out.iter().all(|o| o.result.is_ok()), "{out:?}");
    let r = store.release(&release).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::RolledBack));
    let stops: Vec<Value> = codedeploy_reports()["stops"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["deploymentId"] == deployment.as_str())
        .collect();
    assert_eq!(stops.len(), 1, "one StopDeployment: {stops:?}");
    assert_eq!(stops[0]["autoRollbackEnabled"], true);
    // An alarm no stage watches is ignored.
    api.invoke(fixture("eventbridge-alarm", "billing-total"));
    let out = api.wait_for(4, Duration::from_secs(60)).await;
    assert!(out[3].result.as_ref().unwrap()["ignored"].is_string());
    function.stop();
}

/// Through the built binary: an ALARM of the watched alarm from another source, and one in
/// the alarm action's shape that says it is another event, are ignored; an OK stamped in
/// year 9999 is an `InvalidEvent` naming `state.timestamp`; none is recorded, and the real
/// ALARM after them stops and rolls back the deployment (had the OK been recorded, the
/// ALARM would be refused as older).
#[tokio::test]
async fn alarm_changes_from_elsewhere_or_far_ahead_change_nothing_and_the_real_alarm_acts() {
    let (p, account, store) = deployed_world().await;
    let alarm = format!("{p}-api-dev-5xx");
    shiplane_e2e::edit_pipeline(&store, |source| {
        let anchor = "codedeploy = { application = \"";
        source.replacen(anchor, &format!("alarms = [\"{alarm}\"]\n{anchor}"), 1)
    })
    .await;
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let release =
        shiplane_e2e::release_from_push(&engine, &image_push(&format!("{p}/api"), "v1")).await;

    let api = RuntimeApi::start().await;
    let function = api.spawn(
        Path::new(BINARY),
        "shiplane-alarm",
        &account.function_env(&store),
    );
    let mut elsewhere = fixture("eventbridge-alarm", &alarm);
    elsewhere["source"] = "my.app".into();
    let mut other_kind = fixture("lambda-action-alarm", &alarm);
    other_kind["detail-type"] = "ECS Task State Change".into();
    let mut far = fixture("eventbridge-ok", &alarm);
    far["detail"]["state"]["timestamp"] = "9999-12-31T23:59:59.000+0000".into();
    for payload in [elsewhere, other_kind, far] {
        api.invoke(payload);
    }
    let out = api.wait_for(3, Duration::from_secs(60)).await;
    for ignored in &out[..2] {
        let answer = ignored.result.clone().unwrap();
        assert!(answer["ignored"].is_string(), "{answer}");
    }
    let r = store.release(&release).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Deploying));
    api.invoke(fixture("eventbridge-alarm", &alarm));
    let out = api.wait_for(4, Duration::from_secs(60)).await;
    let refused = out[2].result.clone().unwrap_err();
    assert_eq!(refused["errorType"], "InvalidEvent", "{refused}");
    let message = refused["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("state.timestamp: more than 5m ahead"),
        "{message}"
    );
    let acted = out[3].result.clone().unwrap();
    assert_eq!(acted["refused"], serde_json::json!([]), "{acted}");
    let r = store.release(&release).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::RolledBack));
    function.stop();
}

/// Bytes that are not one JSON object, through the built binary: an `InvalidEvent`, one
/// log record each, and no AWS call.
#[tokio::test]
async fn a_payload_that_is_not_one_json_object_is_an_invalid_event_and_calls_no_aws() {
    shiplane_e2e::bad_input::bad_payloads_are_invalid_events(
        BINARY,
        "shiplane-alarm",
        shiplane_e2e::bad_input::event_fixture("cloudwatch/eventbridge-alarm"),
    )
    .await;
}
