//! The deploy-hook's AWS side against the local AWS: reports reach CodeDeploy once, through
//! throttling; a completed hook execution counts as reported; a deployment is found by its
//! description; the HTTP checker against a service on 127.0.0.1.

use std::collections::BTreeMap;
use std::time::Duration;

use shiplane::aws::{CodeDeployHooks, HookReporter, HookStatus, Origin};
use shiplane::checks::{
    AwsChecker, CheckContext, CheckResult, Checker, HttpClient, ScriptedChecker,
};
use shiplane::engine::HookInvocation;
use shiplane::pipeline::{Check, HttpProbe, LifecycleHook, Pipeline, Probe};
use shiplane::release::Timestamp;
use shiplane::store::ReleaseStore;
use shiplane_e2e::check_server::CheckServer;
use shiplane_e2e::{aws_adapters, aws_config, deployed_world, hook_reports, image_push, provision};

#[tokio::test]
async fn a_hook_answer_throttled_twice_reaches_codedeploy_once() {
    let (p, account, store) = deployed_world().await;
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let release =
        shiplane_e2e::release_from_push(&engine, &image_push(&format!("{p}/api"), "v1")).await;
    let deployment = shiplane_e2e::deployment_of(&store, &release, "dev").await;
    let hooks = CodeDeployHooks::new(aws_sdk_codedeploy::Client::new(&aws_config().await));
    // GetDeployment describes it as the release's, with the revision its AppSpec deploys.
    let stage = shiplane_e2e::stage_of(&store, &release, "dev").await;
    assert_eq!(
        hooks.origin(&deployment).await.unwrap(),
        Some(Origin::Release {
            release: release.clone(),
            environment: "dev".to_string(),
            attempt: 0,
            task_definition: stage.task_definition.clone(),
            restore: false,
        })
    );
    assert!(stage.task_definition.is_some());
    assert_eq!(hooks.origin("d-NOSUCH12").await.unwrap(), None);

    let execution = format!("{p}-e1");
    provision(&[
        "faults",
        "--next",
        r#"{"codedeploy.PutLifecycleEventHookExecutionStatus": {"throttle": 2}}"#,
    ]);
    let invocation = HookInvocation {
        deployment_id: deployment.clone(),
        execution_id: execution.clone(),
        hook: Some(LifecycleHook::BeforeAllowTraffic),
    };
    let checker = ScriptedChecker::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answer = engine
        .on_hook(&checker, &hooks, &invocation, deadline, Timestamp::now())
        .await;
    let injected = provision(&["faults", "--rates", "{}"]);
    assert_eq!(
        injected["codedeploy.PutLifecycleEventHookExecutionStatus"]["throttle"], 2,
        "{injected}"
    );
    assert_eq!(
        (answer.status, answer.reported),
        (HookStatus::Succeeded, Ok(()))
    );
    assert_eq!(hook_reports(&execution), ["Succeeded"]);
    // Reporting a completed execution again (CodeDeploy says it already completed) is done.
    hooks
        .report(&deployment, &execution, HookStatus::Succeeded)
        .await
        .expect("already completed counts as reported");
    assert_eq!(hook_reports(&execution), ["Succeeded"]);
}

fn probe(url: String) -> HttpProbe {
    HttpProbe {
        method: "GET".into(),
        url,
        headers: BTreeMap::from([("x-check".to_string(), "1".to_string())]),
        expect_status: 200,
        body_contains: None,
        json_pointer: None,
        latency_budget: Duration::from_millis(500),
        retries: 0,
        interval: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn the_http_checker_judges_answers_and_bounds_every_attempt() {
    let server = CheckServer::start().await;
    let http = HttpClient::new();
    let ok = http
        .probe(&HttpProbe {
            json_pointer: Some(("/status".into(), serde_json::json!("ok"))),
            ..probe(format!("{}/health", server.base))
        })
        .await;
    assert!(ok.passed, "{ok:?}");
    assert!(
        ok.detail.contains(r#"{"status":"ok"}"#),
        "the excerpt is kept: {ok:?}"
    );
    let down = http
        .probe(&HttpProbe {
            retries: 2,
            ..probe(format!("{}/down", server.base))
        })
        .await;
    assert!(
        !down.passed && down.detail.contains("status 503"),
        "{down:?}"
    );
    let started = std::time::Instant::now();
    let hang: CheckResult = http.probe(&probe(format!("{}/hang", server.base))).await;
    assert!(
        !hang.passed && hang.detail.contains("no answer within 500 ms"),
        "{hang:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let refused = http.probe(&probe("http://127.0.0.1:9/health".into())).await;
    assert!(!refused.passed, "{refused:?}");
}

#[tokio::test]
async fn the_ecs_check_passes_only_when_the_replacement_task_set_is_steady_at_its_size() {
    let (p, _account, store) = deployed_world().await;
    let config = aws_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let (cluster, service) = (format!("{p}-dev"), format!("{p}-api-dev"));
    let task_set = ecs
        .create_task_set()
        .cluster(&cluster)
        .service(&service)
        .task_definition(&service)
        .external_id("d-REPLACEMENT")
        .send()
        .await
        .expect("create the replacement task set")
        .task_set
        .and_then(|t| t.task_set_arn)
        .unwrap();
    let pipeline = Pipeline::from_toml(&store.pipeline().await.unwrap().unwrap().source).unwrap();
    let api = &pipeline.services["api"];
    let ctx = CheckContext {
        pipeline: &pipeline,
        service: api,
        stage: api.stage("dev").unwrap(),
        deployment_id: "d-REPLACEMENT",
    };
    let check = Check {
        name: "steady".into(),
        hook: LifecycleHook::AfterInstall,
        probe: Probe::EcsSteady,
        timeout: Duration::from_secs(5),
    };
    let checker = AwsChecker::new(&config);
    provision(&[
        "task-set",
        "--arn",
        &task_set,
        "--running",
        "1",
        "--desired",
        "2",
    ]);
    let scaling = checker.run(&check, &ctx).await;
    assert!(!scaling.passed, "{scaling:?}");
    assert!(
        scaling.detail.contains("1 of 2 tasks running, STABILIZING"),
        "{scaling:?}"
    );
    provision(&[
        "task-set",
        "--arn",
        &task_set,
        "--running",
        "2",
        "--desired",
        "2",
    ]);
    let steady = checker.run(&check, &ctx).await;
    assert!(steady.passed, "{steady:?}");
}

#[tokio::test]
async fn the_lambda_check_passes_when_the_smoke_test_succeeds_and_fails_with_its_error() {
    let (p, _account, store) = deployed_world().await;
    let config = aws_config().await;
    let pipeline = Pipeline::from_toml(&store.pipeline().await.unwrap().unwrap().source).unwrap();
    let api = &pipeline.services["api"];
    let ctx = CheckContext {
        pipeline: &pipeline,
        service: api,
        stage: api.stage("dev").unwrap(),
        deployment_id: "d-1",
    };
    let function = format!("{p}-smoke");
    let check = Check {
        name: "smoke".into(),
        hook: LifecycleHook::AfterAllowTestTraffic,
        probe: Probe::Lambda {
            function: function.clone(),
        },
        timeout: Duration::from_secs(5),
    };
    let checker = AwsChecker::new(&config);
    provision(&[
        "lambda-answer",
        "--function",
        &function,
        "--payload",
        r#"{"passed": 12}"#,
    ]);
    let ok = checker.run(&check, &ctx).await;
    assert!(ok.passed, "{ok:?}");
    assert!(ok.detail.contains("passed"), "{ok:?}");
    provision(&[
        "lambda-answer",
        "--function",
        &function,
        "--payload",
        r#"{"errorMessage": "checkout returned 500"}"#,
        "--error",
        "Unhandled",
    ]);
    let failed = checker.run(&check, &ctx).await;
    assert!(!failed.passed, "{failed:?}");
    assert!(
        failed.detail.contains("failed (Unhandled)")
            && failed.detail.contains("checkout returned 500"),
        "{failed:?}"
    );
}
