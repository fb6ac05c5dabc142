//! The built `image-push` binary, run as Lambda runs it (behind a local Runtime API), fed
//! real-shaped ECR events, against the local AWS emulator.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use shiplane::release::{ReleaseId, StageState};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::runtime_api::{Function, RuntimeApi};
use shiplane_e2e::{Account, aws_config, deployed_world, notifications, push_event};

const BINARY: &str = env!("CARGO_BIN_EXE_image-push");
const WAIT: Duration = Duration::from_secs(60);

struct World {
    p: String,
    account: Account,
    store: DynamoStore,
    api: RuntimeApi,
    ecs: aws_sdk_ecs::Client,
    codedeploy: aws_sdk_codedeploy::Client,
}

impl World {
    async fn new() -> World {
        let (p, account, store) = deployed_world().await;
        let config = aws_config().await;
        World {
            p,
            account,
            store,
            api: RuntimeApi::start().await,
            ecs: aws_sdk_ecs::Client::new(&config),
            codedeploy: aws_sdk_codedeploy::Client::new(&config),
        }
    }

    fn function(&self) -> Function {
        self.api.spawn(
            Path::new(BINARY),
            "shiplane-image-push",
            &self.account.function_env(&self.store),
        )
    }

    async fn deployments(&self) -> Vec<String> {
        self.codedeploy
            .list_deployments()
            .application_name(format!("{}-api", self.p))
            .deployment_group_name(format!("{}-api-dev", self.p))
            .send()
            .await
            .unwrap()
            .deployments()
            .to_vec()
    }

    async fn revisions(&self) -> usize {
        self.ecs
            .list_task_definitions()
            .family_prefix(format!("{}-api-dev", self.p))
            .send()
            .await
            .unwrap()
            .task_definition_arns()
            .len()
    }
}

#[tokio::test]
async fn a_push_becomes_a_release_a_pinned_revision_a_deployment_and_notifications() {
    let w = World::new().await;
    let f = w.function();
    let event = push_event(&format!("{}/api", w.p), "v1.0.0");
    let digest = event["detail"]["image-digest"]
        .as_str()
        .unwrap()
        .to_string();

    w.api.invoke(event.clone());
    let out = w.api.wait_for(1, WAIT).await;
    let answer = out[0]
        .result
        .clone()
        .unwrap_or_else(|e| panic!("function failed: {e}"));
    assert_eq!(answer["state"], "deploying", "{answer}");
    assert_eq!(answer["environment"], "dev");
    let id = ReleaseId::parse(answer["release"].as_str().unwrap()).unwrap();

    // The release and its history, in DynamoDB.
    let release = w.store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(release.digest.as_str(), digest);
    assert_eq!(release.tags, ["v1.0.0"]);
    let stage = &release.stages["dev"];
    assert_eq!(stage.state(), StageState::Deploying);
    let deployment_id = stage.deployment_id.clone().unwrap();
    let causes: Vec<String> = w
        .store
        .history_of_release(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.cause.to_string())
        .collect();
    assert_eq!(causes, ["arrived", "deployment_created"]);
    assert_eq!(
        w.store
            .deployment(&deployment_id)
            .await
            .unwrap()
            .unwrap()
            .release,
        id
    );

    // The deployment in CodeDeploy, whose AppSpec names a revision pinned to the digest.
    assert_eq!(w.deployments().await, std::slice::from_ref(&deployment_id));
    let info = w
        .codedeploy
        .get_deployment()
        .deployment_id(&deployment_id)
        .send()
        .await
        .unwrap()
        .deployment_info
        .unwrap();
    let spec: Value = serde_json::from_str(
        info.revision()
            .unwrap()
            .app_spec_content()
            .unwrap()
            .content()
            .unwrap(),
    )
    .unwrap();
    let td_arn = spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
        .as_str()
        .unwrap();
    // Only the hook with checks (dev's before_allow_traffic), through the function's alias.
    assert_eq!(
        spec["Hooks"],
        serde_json::json!([{"BeforeAllowTraffic": "shiplane-deploy-hook:BeforeAllowTraffic"}])
    );
    let td = w
        .ecs
        .describe_task_definition()
        .task_definition(td_arn)
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    let image = td.container_definitions()[0].image().unwrap();
    assert_eq!(
        image,
        format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/{}/api@{digest}",
            w.p
        )
    );

    // The notifications, read back through the SQS subscription.
    let sent = notifications(&w.account.queue_url);
    let kinds: Vec<&str> = sent
        .iter()
        .map(|m| m["MessageAttributes"]["kind"]["Value"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["release_created", "stage_started", "deployment_created"]
    );
    let started = &sent[1];
    assert_eq!(started["MessageAttributes"]["service"]["Value"], "api");
    assert_eq!(started["MessageAttributes"]["environment"]["Value"], "dev");
    assert_eq!(started["MessageAttributes"]["state"]["Value"], "deploying");
    assert_eq!(started["Subject"], "shiplane: api v1.0.0 in dev: deploying");
    let body: Value = serde_json::from_str(started["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        (body["release"].as_str(), body["digest"].as_str()),
        (Some(id.as_str()), Some(digest.as_str()))
    );

    // The same event twice more: one release, one revision, one deployment.
    w.api.invoke(event.clone());
    w.api.invoke(event);
    let out = w.api.wait_for(3, WAIT).await;
    for o in &out[1..] {
        assert_eq!(o.result.as_ref().unwrap()["replayed"], true);
    }
    assert_eq!(
        w.store.releases_of_service("api", 10).await.unwrap().len(),
        1
    );
    assert_eq!(
        w.revisions().await,
        2,
        "the base revision and the release's"
    );
    assert_eq!(w.deployments().await.len(), 1);

    // Logs are structured JSON with the release as a field.
    let logs = f.stop();
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "release created"
                && l["fields"]["release"] == id.as_str()),
        "no structured 'release created' line in {logs:?}"
    );
    // The deployment it started is a metric: an EMF line on stdout.
    assert!(
        logs.iter().any(|l| l["DeploymentsStarted"] == 1.0
            && l["Service"] == "api"
            && l["Environment"] == "dev"
            && l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "DeploymentsStarted"),
        "no EMF record of the deployment started in {logs:?}"
    );
}

#[tokio::test]
async fn concurrent_deliveries_to_three_instances_make_one_release_and_one_deployment() {
    let w = World::new().await;
    let functions: Vec<Function> = (0..3).map(|_| w.function()).collect();
    let event = push_event(&format!("{}/api", w.p), "v2.0.0");
    for _ in 0..3 {
        w.api.invoke(event.clone());
    }
    let out = w.api.wait_for(3, WAIT).await;
    assert!(out.iter().all(|o| o.result.is_ok()), "{out:?}");
    assert_eq!(
        out.iter()
            .filter(|o| o.result.as_ref().unwrap()["state"] == "deploying")
            .count(),
        1,
        "{out:?}"
    );
    assert_eq!(
        w.store.releases_of_service("api", 10).await.unwrap().len(),
        1
    );
    assert_eq!(w.revisions().await, 2);
    assert_eq!(w.deployments().await.len(), 1);
    drop(functions);
}

/// Which pushes go where, at the entry: dev takes only release tags, so a feature branch's
/// push is ignored, with the reason in the answer and one `ignored` log line, and makes no
/// release, revision or deployment; a release tag's push deploys.
#[tokio::test]
async fn a_push_whose_tag_the_first_environment_does_not_accept_is_ignored_with_why() {
    let w = World::new().await;
    let dev = format!("service = \"{}-api-dev\"\n", w.p);
    shiplane_e2e::edit_pipeline(&w.store, |source| {
        source.replace(&dev, &format!("{dev}tags = {{ regex = \"^v\" }}\n"))
    })
    .await;
    let f = w.function();
    let revisions = w.revisions().await;
    w.api
        .invoke(push_event(&format!("{}/api", w.p), "feature-x"));
    let out = w.api.wait_for(1, WAIT).await;
    let why = "tag feature-x is not accepted by dev (tags = { regex = \"^v\" }), the first environment of services.api";
    assert_eq!(out[0].result.as_ref().unwrap()["ignored"], why, "{out:?}");
    assert!(
        w.store
            .releases_of_service("api", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.revisions().await, revisions);
    assert!(w.deployments().await.is_empty());

    w.api.invoke(push_event(&format!("{}/api", w.p), "v4.0.0"));
    let out = w.api.wait_for(2, WAIT).await;
    assert_eq!(
        out[1].result.as_ref().unwrap()["state"],
        "deploying",
        "{out:?}"
    );
    let logs = f.stop();
    assert!(
        logs.iter().any(|l| l["fields"]["message"] == "ignored"
            && l["fields"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("tag feature-x is not accepted by dev"))),
        "no 'ignored' line with the reason in {logs:?}"
    );
}

/// Two images pushed one after the other, their events stamped with one second (as
/// EventBridge stamps them), the older delivered last: ECR's own push times, read by the
/// binary, keep the newer one and supersede the older.
#[tokio::test]
async fn of_two_pushes_in_one_second_the_older_delivered_last_is_superseded() {
    let w = World::new().await;
    let f = w.function();
    let repository = format!("{}/api", w.p);
    let older = push_event(&repository, "v3.0.0");
    let mut newer = push_event(&repository, "v3.0.1");
    newer["time"] = older["time"].clone();
    w.api.invoke(newer);
    w.api.invoke(older);
    let out = w.api.wait_for(2, WAIT).await;
    let states: Vec<Value> = out
        .iter()
        .map(|o| {
            o.result
                .clone()
                .unwrap_or_else(|e| panic!("function failed: {e}"))["state"]
                .clone()
        })
        .collect();
    assert_eq!(states, ["deploying", "superseded"], "{out:?}");
    assert_eq!(w.deployments().await.len(), 1);
    drop(f);
}

#[tokio::test]
async fn bad_and_ignored_events_change_nothing() {
    let w = World::new().await;
    let _f = w.function();
    let fixtures = shiplane_e2e::workspace().join("tests/fixtures/events/ecr");
    let load = |name: &str| -> Value {
        let mut v: Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        // Point the fixture at this test's repository where it names one.
        if v["detail"]["repository-name"] == "shiplane/api" {
            v["detail"]["repository-name"] = Value::String(format!("{}/api", w.p));
        }
        v
    };
    let cases = [
        ("untagged-child", Ok("untagged")),
        ("attestation", Ok("not a runnable image")),
        ("delete", Ok("not a push")),
        ("failed-push", Ok("not SUCCESS")),
        ("unknown-repository", Ok("not tracked")),
        ("rejected-tag", Ok("")),
        ("bad-digest", Err("image-digest")),
        ("bad-tag", Err("image-tag")),
        ("long-tag", Err("image-tag")),
        ("missing-fields", Err("image-digest")),
    ];
    for (name, _) in &cases {
        w.api.invoke(load(name));
    }
    w.api.invoke(serde_json::json!({"not": "an event"}));
    let out = w.api.wait_for(cases.len() + 1, WAIT).await;
    for ((name, expect), got) in cases.iter().zip(&out) {
        match (expect, &got.result) {
            (Ok(why), Ok(v)) => {
                // No policy for this test's api service: a pre-release tag is still a tag, so
                // `rejected-tag` makes a release; every other case is ignored with its reason.
                if *name == "rejected-tag" {
                    assert_eq!(v["state"], "deploying", "{name}: {v}");
                } else {
                    assert!(v["ignored"].as_str().unwrap().contains(why), "{name}: {v}");
                }
            }
            (Err(field), Err(e)) => {
                assert!(
                    e["errorMessage"].as_str().unwrap().contains(field),
                    "{name}: {e}"
                );
                assert_eq!(
                    e["errorType"], "InvalidEvent",
                    "{name}: a stable error type"
                );
            }
            _ => panic!("{name}: expected {expect:?}, got {:?}", got.result),
        }
    }
    let malformed = out.last().unwrap().result.clone().unwrap_err();
    assert!(
        malformed["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("malformed ECR image action event")
    );
    assert_eq!(malformed["errorType"], "InvalidEvent");
    assert_eq!(
        w.store.releases_of_service("api", 10).await.unwrap().len(),
        1,
        "only rejected-tag's push"
    );
    assert_eq!(w.deployments().await.len(), 1);
}

/// A push stamped in year 9999, through the built binary: an `InvalidEvent` naming `time`,
/// no release and no deployment; the real push after it deploys, not superseded.
#[tokio::test]
async fn a_push_stamped_far_ahead_is_refused_and_the_real_push_after_it_deploys() {
    let w = World::new().await;
    let _f = w.function();
    let real = push_event(&format!("{}/api", w.p), "v1.0.0");
    let mut far = real.clone();
    far["time"] = Value::String("9999-12-31T23:59:59Z".into());
    w.api.invoke(far);
    w.api.invoke(real);
    let out = w.api.wait_for(2, WAIT).await;
    let refused = out[0].result.clone().unwrap_err();
    assert_eq!(refused["errorType"], "InvalidEvent", "{refused}");
    let message = refused["errorMessage"].as_str().unwrap();
    assert!(message.contains("time: more than 5m ahead"), "{message}");
    let answer = out[1].result.clone().unwrap();
    assert_eq!(answer["state"], "deploying", "{answer}");
    assert_eq!(
        w.store.releases_of_service("api", 10).await.unwrap().len(),
        1,
        "only the real push's"
    );
    assert_eq!(w.deployments().await.len(), 1);
}

#[test]
fn a_missing_setting_fails_init_naming_it() {
    let out = std::process::Command::new(BINARY)
        .env_remove("SHIPLANE_TABLE")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SHIPLANE_TABLE: not set"), "{stderr}");
}

/// Bytes that are not one JSON object, through the built binary: an `InvalidEvent`, one
/// log record each, and no AWS call.
#[tokio::test]
async fn a_payload_that_is_not_one_json_object_is_an_invalid_event_and_calls_no_aws() {
    shiplane_e2e::bad_input::bad_payloads_are_invalid_events(
        BINARY,
        "shiplane-image-push",
        shiplane_e2e::bad_input::event_fixture("ecr/tagged-push"),
    )
    .await;
}
