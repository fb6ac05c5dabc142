//! The built `deploy-hook` binary, run as Lambda runs it (behind a local Runtime API) and
//! invoked as CodeDeploy invokes it (`{DeploymentId, LifecycleEventHookExecutionId}`,
//! through the function's alias for the hook), for a deployment `image-push`'s engine
//! created in the local AWS, with HTTP checks against a service on 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shiplane::release::StageState;
use shiplane::store::ReleaseStore;
use shiplane_e2e::check_server::CheckServer;
use shiplane_e2e::runtime_api::RuntimeApi;
use shiplane_e2e::{
    aws_adapters, deployed_world, hook_reports, image_push, notifications, provision,
};

const BINARY: &str = env!("CARGO_BIN_EXE_deploy-hook");

fn arn(hook: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:shiplane-deploy-hook:{hook}")
}

fn hook_event(deployment: &str, execution: &str) -> Value {
    json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": execution})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_hook_binary_runs_each_hooks_checks_and_always_answers() {
    let (p, account, store) = deployed_world().await;
    let server = CheckServer::start().await;
    let base = &server.base;
    let alarm = format!("{p}-api-dev-5xx");
    // The stored pipeline with dev's checks pointed at the local service, one per hook.
    let current = store.pipeline().await.unwrap().unwrap();
    let checks = format!(
        r#"alarms = ["{alarm}"]
[[services.api.environments.dev.checks]]
name = "health"
hook = "after_allow_test_traffic"
http = "{base}/health"
json_pointer = "/status"
json_equals = "ok"
[[services.api.environments.dev.checks]]
name = "no-alarms"
hook = "before_allow_traffic"
alarms = true
[[services.api.environments.dev.checks]]
name = "down"
hook = "after_allow_traffic"
http = "{base}/down"
retries = 1
interval = "100ms"
[[services.api.environments.dev.checks]]
name = "hangs"
hook = "after_install"
http = "{base}/hang"
latency = "60s"
"#
    );
    let old = "[[services.api.environments.dev.checks]]\nhook = \"before_allow_traffic\"\nhttp = \"http://127.0.0.1:9/health\"\n";
    assert!(current.source.contains(old), "the harness pipeline changed");
    shiplane_e2e::edit_pipeline(&store, |source| source.replace(old, &checks)).await;
    provision(&["alarm", "--name", &alarm, "--state", "OK"]);

    // image-push's engine makes the release and its CodeDeploy deployment.
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let push = image_push(&format!("{p}/api"), "v1");
    let release = shiplane_e2e::release_from_push(&engine, &push).await;
    let deployment = shiplane_e2e::deployment_of(&store, &release, "dev").await;
    notifications(&account.queue_url);

    let api = RuntimeApi::start().await;
    let function = api.spawn(
        Path::new(BINARY),
        "shiplane-deploy-hook",
        &account.function_env(&store),
    );
    let wait = Duration::from_secs(60);
    let mut answered = 0;
    let mut invoke = |event: Value, hook: &str, timeout: Duration| {
        api.invoke_as(event, &arn(hook), timeout);
        answered += 1;
        answered
    };

    // 1. Passing checks: Succeeded, once, recorded.
    let n = invoke(
        hook_event(&deployment, "e-health"),
        "AfterAllowTestTraffic",
        Duration::from_secs(30),
    );
    let out = api.wait_for(n, wait).await;
    let answer = out[n - 1].result.clone().unwrap();
    assert_eq!(answer["status"], "Succeeded", "{answer}");
    assert_eq!(answer["release"], release.as_str());
    assert_eq!(hook_reports("e-health"), ["Succeeded"]);
    // The same invocation again: one report, one history entry.
    let before = store.history_of_release(&release).await.unwrap().len();
    let n = invoke(
        hook_event(&deployment, "e-health"),
        "AfterAllowTestTraffic",
        Duration::from_secs(30),
    );
    let out = api.wait_for(n, wait).await;
    assert_eq!(out[n - 1].result.clone().unwrap()["status"], "Succeeded");
    assert_eq!(hook_reports("e-health"), ["Succeeded"], "reported once");
    assert_eq!(
        store.history_of_release(&release).await.unwrap().len(),
        before
    );
    assert_eq!(
        store
            .release(&release)
            .await
            .unwrap()
            .unwrap()
            .item
            .state_in("dev"),
        Some(StageState::Validating)
    );

    // 2. An alarm of the stage in ALARM: Failed.
    provision(&["alarm", "--name", &alarm, "--state", "ALARM"]);
    let n = invoke(
        hook_event(&deployment, "e-alarms"),
        "BeforeAllowTraffic",
        Duration::from_secs(30),
    );
    let out = api.wait_for(n, wait).await;
    let answer = out[n - 1].result.clone().unwrap();
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains(&alarm),
        "{answer}"
    );
    assert_eq!(hook_reports("e-alarms"), ["Failed"]);

    // 3. A failing HTTP check: Failed with the reason recorded and announced.
    let n = invoke(
        hook_event(&deployment, "e-down"),
        "AfterAllowTraffic",
        Duration::from_secs(30),
    );
    let out = api.wait_for(n, wait).await;
    let answer = out[n - 1].result.clone().unwrap();
    assert_eq!(answer["status"], "Failed");
    assert!(
        answer["reason"].as_str().unwrap().contains("status 503"),
        "{answer}"
    );
    let history = store.history_of_release(&release).await.unwrap();
    let failed = history
        .iter()
        .rev()
        .find(|t| t.cause.as_str() == "hook_failed")
        .unwrap();
    assert!(
        failed.detail.as_deref().unwrap().contains("down: failed"),
        "{failed:?}"
    );
    let sent = notifications(&account.queue_url);
    assert!(
        sent.iter()
            .any(|m| m["MessageAttributes"]["kind"]["Value"] == "hook_failed"
                && m["Message"].as_str().unwrap_or_default().contains("down")),
        "the failure is announced with its check"
    );

    // 4. A service that never answers, in an invocation with 6 s left: Failed in time.
    let started = Instant::now();
    let n = invoke(
        hook_event(&deployment, "e-hang"),
        "AfterInstall",
        Duration::from_secs(6),
    );
    let out = api.wait_for(n, wait).await;
    let answer = out[n - 1].result.clone().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered before the deadline"
    );
    assert_eq!(answer["status"], "Failed");
    assert!(
        answer["reason"].as_str().unwrap().contains("hangs"),
        "{answer}"
    );
    assert_eq!(hook_reports("e-hang"), ["Failed"]);

    // 5. A deployment Shiplane did not start: Failed, with an alert; nothing else changes.
    let before = store.history_of_release(&release).await.unwrap().len();
    let stranger = json!({"DeploymentId": "d-NOTOURS1", "LifecycleEventHookExecutionId": "e-x"});
    let n = invoke(stranger, "AfterAllowTestTraffic", Duration::from_secs(30));
    let out = api.wait_for(n, wait).await;
    let answer = out[n - 1].result.clone().unwrap();
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert!(
        notifications(&account.queue_url)
            .iter()
            .any(|m| m["MessageAttributes"]["kind"]["Value"] == "alert"),
        "an alert says a person should look"
    );
    // (CodeDeploy itself refuses a report for a deployment it does not know.)
    assert_eq!(answer["reported"], false);
    assert_eq!(
        store.history_of_release(&release).await.unwrap().len(),
        before
    );

    // A payload that is not a hook invocation: InvalidEvent.
    let n = invoke(
        json!({"hello": 1}),
        "AfterAllowTestTraffic",
        Duration::from_secs(30),
    );
    let out = api.wait_for(n, wait).await;
    let err = out[n - 1].result.clone().unwrap_err();
    assert_eq!(err["errorType"], "InvalidEvent");
    function.stop();
}

/// Bytes that are not one JSON object, through the built binary: an `InvalidEvent`, one
/// log record each, and no AWS call.
#[tokio::test]
async fn a_payload_that_is_not_one_json_object_is_an_invalid_event_and_calls_no_aws() {
    shiplane_e2e::bad_input::bad_payloads_are_invalid_events(
        BINARY,
        "shiplane-deploy-hook",
        json!({"DeploymentId": "d-PROBE0001", "LifecycleEventHookExecutionId": "e-probe"}),
    )
    .await;
}

/// The built binary in Lambda's default text log format, its AWS endpoint a probe that
/// refuses everything (so the hook fails and its answer is not delivered): ids with a line
/// break are logged escaped, and no line of the log is forged.
#[tokio::test]
async fn ids_with_a_line_break_forge_no_line_of_the_text_log() {
    let probe = shiplane_e2e::bad_input::AwsProbe::start().await;
    let api = RuntimeApi::start().await;
    let mut env = probe.function_env();
    env.push(("AWS_LAMBDA_LOG_FORMAT", "Text"));
    env.push(("RUST_LOG", "info"));
    let function = api.spawn(Path::new(BINARY), "shiplane-deploy-hook", &env);
    let forged = "\n2026-11-24T00:00:00Z  INFO shiplane: release approved by admin";
    api.invoke_as(
        hook_event(&format!("d-X{forged}"), &format!("e-X{forged}")),
        &arn("AfterInstall"),
        Duration::from_secs(30),
    );
    let out = api.wait_for(1, Duration::from_secs(60)).await;
    let answer = out[0].result.clone().unwrap();
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert_eq!(
        answer["reported"], false,
        "the probe refused the report: {answer}"
    );
    let log = function.stop_text();
    for line in ["hook failed", "hook answer not delivered"] {
        assert!(log.contains(line), "{line}: {log}");
    }
    assert!(log.contains("d-X\\n2026"), "escaped: {log}");
    assert!(
        log.lines().all(|l| !l.starts_with("2026-11-24T00:00:00Z")),
        "a forged line: {log}"
    );
}
