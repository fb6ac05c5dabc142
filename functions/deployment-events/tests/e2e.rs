//! The built `deployment-events` binary behind a local Runtime API, fed CodeDeploy's
//! "Deployment State-change Notification" for deployments the engine created in the
//! local AWS.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use shiplane::release::StageState;
use shiplane::store::ReleaseStore;
use shiplane_e2e::runtime_api::RuntimeApi;
use shiplane_e2e::{aws_adapters, deployed_world, image_push, set_deployment_status};

const BINARY: &str = env!("CARGO_BIN_EXE_deployment-events");

/// The event CodeDeploy sends when a deployment of the harness's api in dev changes state.
fn state_change(p: &str, deployment: &str, state: &str) -> Value {
    shiplane_e2e::codedeploy_event(
        &format!("{p}-api"),
        &format!("{p}-api-dev"),
        deployment,
        state,
    )
}

#[tokio::test]
async fn codedeploy_outcomes_move_the_stage_that_runs_the_deployment() {
    let (p, account, store) = deployed_world().await;
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let mut pushed = Vec::new();
    for tag in ["v1", "v2"] {
        let release =
            shiplane_e2e::release_from_push(&engine, &image_push(&format!("{p}/api"), tag)).await;
        pushed.push(release);
    }
    let (first, second) = (&pushed[0], &pushed[1]);
    let d1 = shiplane_e2e::deployment_of(&store, first, "dev").await;

    let api = RuntimeApi::start().await;
    let function = api.spawn(
        Path::new(BINARY),
        "shiplane-deployment-events",
        &account.function_env(&store),
    );
    let wait = Duration::from_secs(60);
    // CodeDeploy fails the first deployment (a hook said Failed) and says so.
    set_deployment_status(&d1, "Failed");
    api.invoke(state_change(&p, &d1, "FAILURE"));
    let out = api.wait_for(1, wait).await;
    assert!(out[0].result.is_ok(), "{:?}", out[0].result);
    let r1 = store.release(first).await.unwrap().unwrap().item;
    assert_eq!(r1.state_in("dev"), Some(StageState::Failed));
    assert!(r1.stages["dev"].reason.as_deref().unwrap().contains(&d1));
    // The queued release deployed.
    assert_eq!(
        store
            .release(second)
            .await
            .unwrap()
            .unwrap()
            .item
            .state_in("dev"),
        Some(StageState::Deploying)
    );
    let d2 = shiplane_e2e::deployment_of(&store, second, "dev").await;
    assert_ne!(d1, d2);
    // The first deployment's FAILURE again, late: nothing changes.
    api.invoke(state_change(&p, &d1, "FAILURE"));
    // The second succeeds.
    set_deployment_status(&d2, "Succeeded");
    api.invoke(state_change(&p, &d2, "READY"));
    api.invoke(state_change(&p, &d2, "SUCCESS"));
    let out = api.wait_for(4, wait).await;
    assert!(out.iter().all(|o| o.result.is_ok()), "{out:?}");
    assert!(
        out[2].result.as_ref().unwrap()["ignored"].is_string(),
        "READY is only logged"
    );
    // dev has no bake in this pipeline: succeeded, and promoted to prod for approval.
    let r2 = store.release(second).await.unwrap().unwrap().item;
    assert_eq!(r2.state_in("dev"), Some(StageState::Succeeded));
    assert_eq!(r2.state_in("prod"), Some(StageState::AwaitingApproval));
    assert_eq!(
        store
            .release(first)
            .await
            .unwrap()
            .unwrap()
            .item
            .state_in("dev"),
        Some(StageState::Failed),
        "the late event left the first as it was"
    );
    function.stop();
}

/// Bytes that are not one JSON object, through the built binary: an `InvalidEvent`, one
/// log record each, and no AWS call.
#[tokio::test]
async fn a_payload_that_is_not_one_json_object_is_an_invalid_event_and_calls_no_aws() {
    shiplane_e2e::bad_input::bad_payloads_are_invalid_events(
        BINARY,
        "shiplane-deployment-events",
        shiplane_e2e::bad_input::event_fixture("codedeploy/success"),
    )
    .await;
}
