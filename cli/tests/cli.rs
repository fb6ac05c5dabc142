//! The `shiplane` binary against DynamoDB in the local AWS emulator.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use shiplane::release::{Digest, Event, Release, ReleaseId, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::{TempDir, fresh_store};

mod common;
use common::shiplane;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/pipeline.example.toml")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

const FIVE_MISTAKES: &str = include_str!("../../tests/fixtures/pipelines/five-mistakes.toml");

/// A file in a temporary directory that is removed when the returned guard drops.
fn temp_file(name: &str, content: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("shiplane-cli");
    let path = dir.file(name, content);
    (dir, path)
}

#[test]
fn validate_accepts_the_example_without_touching_aws() {
    let out = Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .args(["config", "validate"])
        .arg(example())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .starts_with("valid: 3 services (api, etl, tiles) through dev → staging → prod")
    );
}

#[tokio::test]
async fn five_mistakes_give_five_messages_exit_2_and_nothing_stored() {
    let store = fresh_store().await;
    let table = store.table().to_string();
    let (_dir, file) = temp_file("bad.toml", FIVE_MISTAKES);
    let path = file.to_str().unwrap();

    let out = shiplane(&table, &["config", "validate", path]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let messages: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("{path}:")) && l.contains(": services."))
        .collect();
    assert_eq!(messages.len(), 5, "{err}");
    assert!(err.contains(&format!("{path}: 5 problems")));
    assert!(err.contains(&format!(
        "{path}:21:8: services.api.environments.prod.bake: \"1 hour\" is not a duration; write \"1h\""
    )));

    let out = shiplane(&table, &["--json", "config", "validate", path]);
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 5);
    assert_eq!(
        v["problems"][0]["path"],
        "services.api.environments.dev.bakee"
    );

    let out = shiplane(&table, &["config", "apply", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nothing was stored"));
    assert_eq!(
        store.pipeline().await.unwrap(),
        None,
        "an invalid file stores nothing"
    );
    let out = shiplane(&table, &["config", "show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("shiplane config apply FILE"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn apply_stores_versions_and_show_returns_the_exact_file() {
    let store = fresh_store().await;
    let table = store.table().to_string();
    let example = example();
    let path = example.to_str().unwrap();

    let out = shiplane(&table, &["config", "apply", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().last(),
        Some("applied pipeline version 1 (3 services) as ana"),
        "after the diff"
    );
    let out = shiplane(&table, &["config", "apply", path]);
    assert!(
        stdout(&out).starts_with("unchanged: the file is pipeline version 1"),
        "{}",
        stdout(&out)
    );

    let source = std::fs::read_to_string(&example).unwrap();
    let (_changed_dir, changed) = temp_file(
        "p.toml",
        &source.replace("bake = \"10m\"", "bake = \"20m\""),
    );
    let out = shiplane(
        &table,
        &[
            "--json",
            "config",
            "apply",
            changed.to_str().unwrap(),
            "--actor",
            "ben",
        ],
    );
    let v = json(&out);
    assert_eq!(
        (v["version"].as_u64(), v["changed"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(v["applied_by"], "ben");

    let out = shiplane(&table, &["config", "show"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("bake = \"20m\""));
    assert!(stderr(&out).contains("# pipeline version 2"));
    let v = json(&shiplane(&table, &["--json", "config", "show"]));
    assert_eq!(v["version"], 2);
    assert_eq!(
        store.pipeline().await.unwrap().unwrap().source,
        v["source"].as_str().unwrap()
    );
}

fn release(n: u64) -> Release {
    let id =
        ReleaseId::parse(&ulid::Ulid::from_parts(1_750_000_000_000 + n, u128::from(n)).to_string())
            .unwrap();
    let digest = Digest::parse(&format!("sha256:{n:064x}")).unwrap();
    Release::new(
        id,
        "api",
        "shiplane/api",
        digest,
        Some(&format!("v1.0.{n}")),
        Timestamp(1_750_000_000_000 + n),
    )
}

async fn arrive(store: &DynamoStore, r: &Release, env: &str) {
    shiplane_e2e::arrive(store, r, env, Some("staging")).await;
}

#[tokio::test]
async fn status_and_history_show_what_the_store_holds() {
    let store = fresh_store().await;
    let table = store.table().to_string();
    let out = shiplane(&table, &["status"]);
    assert_eq!(out.status.code(), Some(1), "no pipeline yet");

    assert_eq!(
        shiplane(&table, &["config", "apply", example().to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let (r1, r2) = (release(1), release(2));
    arrive(&store, &r1, "dev").await;
    arrive(&store, &r2, "dev").await;

    let out = shiplane(&table, &["status", "api"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let dev = text
        .lines()
        .find(|l| l.contains(" dev "))
        .unwrap_or_else(|| panic!("{text}"));
    // Each release carries its own state: the queued one is never read as deploying.
    let short = |r: &Release| format!("({})", &r.id.as_str()[..10]);
    assert!(
        dev.contains(&format!("v1.0.1 {} deploying", short(&r1)))
            && dev.contains(&format!("v1.0.2 {} queued", short(&r2))),
        "{dev}"
    );
    assert!(
        text.lines().any(|l| l.contains(" prod ")),
        "every environment is listed: {text}"
    );

    let v = json(&shiplane(&table, &["--json", "status"]));
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3 + 2 + 2, "api, tiles and etl lanes");
    let dev = rows
        .iter()
        .find(|r| r["service"] == "api" && r["environment"] == "dev")
        .unwrap();
    assert_eq!(dev["state"], "deploying");
    assert_eq!(dev["in_flight"]["id"], r1.id.as_str());
    assert_eq!(dev["queued"]["id"], r2.id.as_str());
    assert_eq!(dev["queued"]["state"], "queued");
    assert_eq!(dev["last_known_good"], Value::Null);

    let out = shiplane(&table, &["history", "api"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.contains("arrived")).count(),
        2,
        "{text}"
    );
    let out = shiplane(&table, &["--json", "history", r2.id.as_str()]);
    let v = json(&out);
    assert_eq!(v["release"]["digest"], r2.digest.as_str());
    assert_eq!(v["history"][0]["to"], "queued");
    assert_eq!(v["history"][0]["detail"], format!("waiting for {}", r1.id));

    let out = shiplane(&table, &["status", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no service \"nope\""));
    let out = shiplane(&table, &["history", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = shiplane(&table, &["history", "tiles"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a known service without history is fine"
    );
    assert!(stdout(&out).contains("no history yet for tiles"));
}

#[tokio::test]
async fn table_create_makes_a_usable_table() {
    let table = shiplane_e2e::unique_table();
    shiplane_e2e::aws_config().await;
    let out = shiplane(&table, &["table", "create"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = shiplane(&table, &["config", "apply", example().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = shiplane(&table, &["table", "create"]);
    assert_eq!(out.status.code(), Some(1), "creating it twice fails");
    assert!(
        stderr(&out).contains("ResourceInUseException"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn an_operators_profile_with_a_credential_process_signs_the_calls() {
    // Operators sign in through profiles, not environment keys: here a profile whose
    // credential_process prints the keys, as SSO helpers and vaults do.
    let store = fresh_store().await;
    let table = store.table().to_string();
    let (_config_dir, config) = temp_file(
        "config",
        "[profile ops]\nregion = us-east-1\ncredential_process = printf '{\"Version\": 1, \"AccessKeyId\": \"from-process\", \"SecretAccessKey\": \"secret\"}'\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .args(["--table", &table, "config", "apply"])
        .arg(example())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", config.with_file_name("none"))
        .env("AWS_PROFILE", "ops")
        .env("SHIPLANE_ACTOR", "ana")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        store.pipeline().await.unwrap().is_some(),
        "the pipeline was stored with the profile's credentials"
    );
}

#[tokio::test]
async fn cancel_unblock_and_reconcile_act_on_aws_and_record_the_operator() {
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let push = shiplane_e2e::image_push(&format!("{p}/api"), "v1");
    let release = shiplane_e2e::release_from_push(&engine, &push).await;
    let deployment = shiplane_e2e::deployment_of(&store, &release, "dev").await;
    let table = store.table().to_string();
    let topic = account.topic_arn.as_str();

    let out = shiplane(
        &table,
        &[
            "cancel",
            release.as_str(),
            "dev",
            "--reason",
            "wrong build",
            "--topic",
            topic,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("cancelled"), "{}", stdout(&out));
    let stage = store.release(&release).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!(stage.state(), shiplane::release::StageState::Cancelled);
    assert_eq!(stage.reason.as_deref(), Some("wrong build"));
    let history = store.history_of_release(&release).await.unwrap();
    let cancelled = history
        .iter()
        .find(|t| t.cause.as_str() == "cancelled")
        .unwrap();
    assert_eq!(cancelled.actor.as_deref(), Some("ana"));
    let stops = shiplane_e2e::codedeploy_reports()["stops"].clone();
    assert!(
        stops
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["deploymentId"] == deployment.as_str() && s["autoRollbackEnabled"] == true),
        "the deployment was stopped with rollback: {stops}"
    );
    assert!(
        shiplane_e2e::notifications(&account.queue_url)
            .iter()
            .any(|n| n["MessageAttributes"]["kind"]["Value"] == "cancelled"),
        "the cancel is announced"
    );
    assert_eq!(store.lane("api", "dev").await.unwrap().item.in_flight, None);

    // Again: nothing to cancel. A free lane: nothing to unblock. Both refused (exit 3), nothing changed.
    let again = shiplane(
        &table,
        &["cancel", release.as_str(), "dev", "--reason", "x"],
    );
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("refused: cannot cancel v1")
            && stderr(&again).contains("its stage there is cancelled"),
        "{}",
        stderr(&again)
    );
    let unblock = shiplane(&table, &["unblock", "api", "dev", "--reason", "x"]);
    assert_eq!(unblock.status.code(), Some(3), "{}", stderr(&unblock));
    assert!(
        stderr(&unblock).contains("nothing to unblock"),
        "{}",
        stderr(&unblock)
    );
    for bad in [
        vec!["unblock", "nope", "dev", "--reason", "x"],
        vec!["unblock", "api", "qa", "--reason", "x"],
        vec!["cancel", "not-an-id", "dev", "--reason", "x"],
        vec!["reconcile", "nope"],
    ] {
        let out = shiplane(&table, &bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    let reconcile = shiplane(&table, &["reconcile"]);
    assert_eq!(reconcile.status.code(), Some(0), "{}", stderr(&reconcile));
    assert!(
        stdout(&reconcile).contains("nothing to do"),
        "{}",
        stdout(&reconcile)
    );
}

#[tokio::test]
async fn apply_stores_a_1000_service_pipeline_larger_than_one_dynamodb_item() {
    let store = fresh_store().await;
    let source = shiplane::pipeline::example_pipeline(1000);
    assert!(
        source.len() > 400 * 1024,
        "larger than DynamoDB's item limit"
    );
    let (_dir, file) = temp_file("large.toml", &source);
    let out = shiplane(store.table(), &["config", "apply", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = shiplane(store.table(), &["config", "show"]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert_eq!(stdout(&shown).trim_end(), source.trim_end());
}

/// CodeDeploy finishes the release's dev deployment in the emulator (AWS would by itself).
async fn finish_dev_deployment(store: &DynamoStore, id: &ReleaseId) {
    let deployment = shiplane_e2e::deployment_of(store, id, "dev").await;
    shiplane_e2e::set_deployment_status(&deployment, "Succeeded");
}

/// How many ApprovalWait values of api in prod CloudWatch holds from the last hour (the
/// emulator's metrics are shared by every test: compared before and after).
async fn approval_waits_measured() -> f64 {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&shiplane_e2e::aws_config().await);
    let now = Timestamp::now().0 as i64;
    let dimension = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    let got = cloudwatch
        .get_metric_statistics()
        .namespace("Shiplane")
        .metric_name("ApprovalWait")
        .dimensions(dimension("Service", "api"))
        .dimensions(dimension("Environment", "prod"))
        .start_time(DateTime::from_millis(now - 3_600_000))
        .end_time(DateTime::from_millis(now + 60_000))
        .period(7_200)
        .statistics(Statistic::SampleCount)
        .send()
        .await
        .unwrap();
    got.datapoints()
        .iter()
        .filter_map(aws_sdk_cloudwatch::types::Datapoint::sample_count)
        .sum()
}

#[tokio::test]
async fn approve_reject_pause_and_resume_move_releases_and_record_the_operator() {
    use shiplane::release::StageState;
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let pipeline = engine.pipeline().await.unwrap();
    // Two releases that succeeded in dev and wait for approval into prod, one after the other.
    let mut ids = Vec::new();
    for tag in ["v1", "v2"] {
        let release = shiplane_e2e::release_from_push(
            &engine,
            &shiplane_e2e::image_push(&format!("{p}/api"), tag),
        )
        .await;
        finish_dev_deployment(&store, &release).await;
        engine
            .on_event(
                &pipeline,
                "api",
                "dev",
                &release,
                Event::DeploymentSucceeded,
                Timestamp::now(),
            )
            .await
            .unwrap();
        ids.push(release);
    }
    let state = |id: ReleaseId, env: &'static str| {
        let store = &store;
        async move {
            store
                .release(&id)
                .await
                .unwrap()
                .unwrap()
                .item
                .state_in(env)
        }
    };
    let (v1, v2) = (ids[0].clone(), ids[1].clone());
    assert_eq!(
        state(v1.clone(), "prod").await,
        Some(StageState::Superseded),
        "v2 replaced it in the queue"
    );
    assert_eq!(
        state(v2.clone(), "prod").await,
        Some(StageState::AwaitingApproval)
    );
    let table = store.table().to_string();

    // Approving a stage that is not awaiting approval: refused in plain words (exit 3),
    // nothing changed; with --json, as JSON.
    let wrong = shiplane(&table, &["approve", v1.as_str(), "prod"]);
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));
    assert_eq!(
        stderr(&wrong).trim(),
        format!(
            "refused: cannot approve v1 ({v1}) in prod: its stage there is superseded; only a release awaiting approval there can be approved"
        )
    );
    let wrong_json = shiplane(&table, &["--json", "approve", v1.as_str(), "prod"]);
    assert_eq!(wrong_json.status.code(), Some(3));
    let v = json(&wrong_json);
    assert_eq!(v["error"]["kind"], "refused");
    assert_eq!(v["error"]["exit_code"], 3);
    let wrong_env = shiplane(&table, &["approve", v2.as_str(), "staging"]);
    assert_eq!(wrong_env.status.code(), Some(2), "{}", stderr(&wrong_env));

    // Pause prod, approve v2: it queues behind the pause; resume: it deploys.
    let pause = shiplane(
        &table,
        &["pause", "api", "prod", "--reason", "change freeze"],
    );
    assert_eq!(pause.status.code(), Some(0), "{}", stderr(&pause));
    let again = shiplane(&table, &["pause", "api", "prod", "--reason", "again"]);
    assert_eq!(again.status.code(), Some(3));
    assert!(
        stderr(&again).contains("already paused by ana"),
        "{}",
        stderr(&again)
    );
    let waits_before = approval_waits_measured().await;
    let approve = shiplane(&table, &["approve", v2.as_str(), "prod"]);
    assert_eq!(approve.status.code(), Some(0), "{}", stderr(&approve));
    assert_eq!(state(v2.clone(), "prod").await, Some(StageState::Queued));
    // The approval's wait is measured as the functions measure theirs, in CloudWatch.
    assert_eq!(approval_waits_measured().await, waits_before + 1.0);
    // No topic configured: the command says so, once, and how to fix it.
    assert_eq!(
        stderr(&approve)
            .matches("this change was not announced on SNS: no topic is configured; set SHIPLANE_TOPIC_ARN")
            .count(),
        1,
        "{}",
        stderr(&approve)
    );
    let resume = shiplane(&table, &["resume", "api", "prod"]);
    assert_eq!(resume.status.code(), Some(0), "{}", stderr(&resume));
    assert_eq!(state(v2.clone(), "prod").await, Some(StageState::Deploying));
    let history = store.history_of_release(&v2).await.unwrap();
    let approved = history
        .iter()
        .find(|t| t.cause.as_str() == "approved")
        .unwrap();
    assert_eq!(approved.actor.as_deref(), Some("ana"));
    let lane_history = store.history_of_service("api", 100).await.unwrap();
    assert!(lane_history.iter().any(|t| t.cause.as_str() == "paused"
        && t.detail.as_deref() == Some("change freeze")
        && t.actor.as_deref() == Some("ana")));

    // A third release reaches prod and is rejected with a reason.
    let v3 = shiplane_e2e::release_from_push(
        &engine,
        &shiplane_e2e::image_push(&format!("{p}/api"), "v3"),
    )
    .await;
    finish_dev_deployment(&store, &v3).await;
    engine
        .on_event(
            &pipeline,
            "api",
            "dev",
            &v3,
            Event::DeploymentSucceeded,
            Timestamp::now(),
        )
        .await
        .unwrap();
    let _ = shiplane_e2e::notifications(&account.queue_url);
    // With the topic configured, the CLI announces as the functions do.
    let reject = Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .args(["--table", &table, "reject", v3.as_str(), "prod"])
        .args(["--reason", "missing changelog"])
        .env("SHIPLANE_ACTOR", "ana")
        .env("SHIPLANE_TOPIC_ARN", &account.topic_arn)
        .output()
        .unwrap();
    assert_eq!(reject.status.code(), Some(0), "{}", stderr(&reject));
    assert!(
        !stderr(&reject).contains("not announced"),
        "{}",
        stderr(&reject)
    );
    let sent = shiplane_e2e::notifications(&account.queue_url);
    let body: Value = sent
        .iter()
        .map(|m| serde_json::from_str::<Value>(m["Message"].as_str().unwrap()).unwrap())
        .find(|b| b["kind"] == "rejected")
        .unwrap_or_else(|| panic!("no rejected notification in {sent:?}"));
    assert_eq!(body["why"], "rejected: missing changelog (by ana)");
    assert_eq!(body["what"], "api v3 was rejected for prod.");
    let r3 = store.release(&v3).await.unwrap().unwrap().item;
    assert_eq!(r3.state_in("prod"), Some(StageState::Rejected));
    assert_eq!(
        r3.stages["prod"].reason.as_deref(),
        Some("missing changelog")
    );
}

#[tokio::test]
async fn rollback_redeploys_the_release_before_and_promote_demands_skip_bake() {
    use shiplane::release::StageState;
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let pipeline = engine.pipeline().await.unwrap();
    let mut ids = Vec::new();
    for tag in ["v1", "v2"] {
        let release = shiplane_e2e::release_from_push(
            &engine,
            &shiplane_e2e::image_push(&format!("{p}/api"), tag),
        )
        .await;
        finish_dev_deployment(&store, &release).await;
        engine
            .on_event(
                &pipeline,
                "api",
                "dev",
                &release,
                Event::DeploymentSucceeded,
                Timestamp::now(),
            )
            .await
            .unwrap();
        ids.push(release);
    }
    let table = store.table().to_string();
    let out = shiplane(
        &table,
        &["rollback", "api", "dev", "--reason", "v2 corrupts carts"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v1 = store.release(&ids[0]).await.unwrap().unwrap().item;
    assert_eq!(v1.state_in("dev"), Some(StageState::Deploying));
    let redeploy = v1.stages["dev"]
        .deployment_id
        .clone()
        .expect("a new CodeDeploy deployment");
    assert!(!redeploy.is_empty());
    let v2 = store.release(&ids[1]).await.unwrap().unwrap().item;
    assert_eq!(v2.state_in("dev"), Some(StageState::RolledBack));
    assert_eq!(
        v2.stages["dev"].reason.as_deref(),
        Some(format!("replaced by {}: v2 corrupts carts", ids[0]).as_str())
    );
    // Again while v1 is being restored: refused, nothing changed.
    let again = shiplane(
        &table,
        &[
            "rollback",
            "api",
            "dev",
            "--reason",
            "x",
            "--to",
            ids[0].as_str(),
        ],
    );
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already being deployed"),
        "{}",
        stderr(&again)
    );
    // promote needs --skip-bake, and a baking release.
    let no_flag = shiplane(
        &table,
        &["promote", ids[0].as_str(), "dev", "--reason", "x"],
    );
    assert_eq!(no_flag.status.code(), Some(2));
    let not_baking = shiplane(
        &table,
        &[
            "promote",
            ids[0].as_str(),
            "dev",
            "--skip-bake",
            "--reason",
            "x",
        ],
    );
    assert_eq!(not_baking.status.code(), Some(3), "{}", stderr(&not_baking));
    assert!(
        stderr(&not_baking).contains("deploying"),
        "{}",
        stderr(&not_baking)
    );
}

#[tokio::test]
async fn retry_deploys_a_failed_stage_again_as_a_new_attempt() {
    use shiplane::release::StageState;
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let pipeline = engine.pipeline().await.unwrap();
    let release = shiplane_e2e::release_from_push(
        &engine,
        &shiplane_e2e::image_push(&format!("{p}/api"), "v1"),
    )
    .await;
    let first = shiplane_e2e::deployment_of(&store, &release, "dev").await;
    shiplane_e2e::set_deployment_status(&first, "Failed");
    let failed = Event::DeploymentFailed {
        reason: "the AfterAllowTestTraffic hook failed".into(),
    };
    engine
        .on_event(&pipeline, "api", "dev", &release, failed, Timestamp::now())
        .await
        .unwrap();
    let table = store.table().to_string();
    let out = shiplane(&table, &["retry", release.as_str(), "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stage = store.release(&release).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!((stage.state(), stage.attempt), (StageState::Deploying, 1));
    let second = stage.deployment_id.expect("a new deployment");
    assert_ne!(second, first);
    let again = shiplane(&table, &["retry", release.as_str(), "dev"]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(stderr(&again).contains("deploying"), "{}", stderr(&again));
}

#[tokio::test]
async fn status_shows_the_alarms_firing_and_what_they_hold() {
    use shiplane::facts::AlarmChange;
    use shiplane::release::AlarmState;
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let dev_alarm = format!("{p}-api-dev-5xx");
    shiplane_e2e::edit_pipeline(&store, |source| {
        let anchor = "codedeploy = { application = \"";
        let prod = format!("service = \"{p}-api-prod\"\n");
        source
            .replacen(anchor, &format!("alarms = [\"{dev_alarm}\"]\n{anchor}"), 1)
            .replacen(
                &prod,
                &format!("{prod}hold_while_alarms_in = [\"dev\"]\n"),
                1,
            )
    })
    .await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let change = AlarmChange {
        alarm: dev_alarm.clone(),
        state: AlarmState::Alarm,
        at: Timestamp::now(),
        reason: "Threshold Crossed".into(),
    };
    engine.on_alarm(&change, Timestamp::now()).await.unwrap();
    let table = store.table().to_string();
    let v = json(&shiplane(&table, &["--json", "status", "api"]));
    let rows = v.as_array().unwrap();
    let row = |env: &str| {
        rows.iter()
            .find(|r| r["environment"] == env)
            .unwrap()
            .clone()
    };
    assert_eq!(row("dev")["alarms_firing"], serde_json::json!([dev_alarm]));
    assert_eq!(
        row("prod")["held_by"],
        serde_json::json!([format!("{dev_alarm} (dev)")])
    );
    let text = stdout(&shiplane(&table, &["status", "api"]));
    assert!(
        text.contains("ALARMS") && text.contains(&format!("held: {dev_alarm} (dev) in ALARM")),
        "{text}"
    );
    // The alarm returns to OK in CloudWatch and its event is lost: a reconcile pass reads
    // the state from CloudWatch and the hold is gone.
    shiplane_e2e::provision(&["alarm", "--name", &dev_alarm, "--state", "OK"]);
    let out = shiplane(&table, &["reconcile", "api"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("alarm_cleared"), "{}", stdout(&out));
    let v = json(&shiplane(&table, &["--json", "status", "api"]));
    for row in v.as_array().unwrap() {
        assert_eq!(row["alarms_firing"], serde_json::json!([]), "{row}");
        assert_eq!(row["held_by"], serde_json::json!([]), "{row}");
    }
}

#[tokio::test]
async fn deploy_makes_a_release_of_a_digest_without_a_push_recorded_with_who_and_why() {
    use shiplane::engine::PushOutcome;
    use shiplane::release::StageState;
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let table = store.table().to_string();
    let digest = format!("sha256:{}", "ab".repeat(32));
    // No release yet to take the registry from: bad input naming the fix.
    let out = shiplane(
        &table,
        &[
            "deploy",
            "etl",
            "--digest",
            &digest,
            "--reason",
            "lost push",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--registry"), "{}", stderr(&out));
    // With one pushed, the registry comes from it.
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let pushed = engine
        .on_push(
            &shiplane_e2e::image_push(&format!("{p}/etl"), "v1"),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert!(matches!(pushed, PushOutcome::Created { .. }), "{pushed:?}");
    let out = shiplane(
        &table,
        &[
            "--json",
            "deploy",
            "etl",
            "--digest",
            &digest,
            "--reason",
            "lost push",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let id = ReleaseId::parse(v["release"].as_str().unwrap()).unwrap();
    let r = store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.digest.as_str(), digest);
    assert_eq!(r.tags, [format!("deploy-{}", &digest[7..19])]);
    assert_eq!(
        r.state_in("dev"),
        Some(StageState::Succeeded),
        "data jobs register at once"
    );
    let history = store.history_of_release(&id).await.unwrap();
    let first = &history[0];
    assert_eq!(
        (
            first.cause.as_str(),
            first.actor.as_deref(),
            first.detail.as_deref()
        ),
        ("deployed", Some("ana"), Some("lost push"))
    );
    // Again: that digest is a release already. A bad digest: bad input.
    let again = shiplane(
        &table,
        &["deploy", "etl", "--digest", &digest, "--reason", "x"],
    );
    assert_eq!(again.status.code(), Some(3));
    assert!(
        stderr(&again).contains("already release"),
        "{}",
        stderr(&again)
    );
    let bad = shiplane(
        &table,
        &["deploy", "etl", "--digest", "sha256:nope", "--reason", "x"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("not an image digest"),
        "{}",
        stderr(&bad)
    );
    // By tag: the push's event was lost; ECR knows the digest.
    let pushed = shiplane_e2e::push_event(&format!("{p}/etl"), "v2");
    let v2_digest = pushed["detail"]["image-digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = shiplane(
        &table,
        &[
            "--json",
            "deploy",
            "etl",
            "--tag",
            "v2",
            "--reason",
            "lost push",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = ReleaseId::parse(json(&out)["release"].as_str().unwrap()).unwrap();
    let r = store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.digest.as_str(), v2_digest);
    assert_eq!(r.tags, ["v2"]);
    assert_eq!(r.registry, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
    let missing = shiplane(&table, &["deploy", "etl", "--tag", "v404", "--reason", "x"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no image tagged v404"),
        "{}",
        stderr(&missing)
    );
    let neither = shiplane(&table, &["deploy", "etl", "--reason", "x"]);
    assert_eq!(neither.status.code(), Some(2), "{}", stderr(&neither));
}

#[tokio::test]
async fn without_actor_the_operator_is_recorded_by_their_aws_identity_or_told_to_name_themselves() {
    let store = fresh_store().await;
    let table = store.table().to_string();
    let run = |extra_env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shiplane"));
        cmd.arg("--table")
            .arg(&table)
            .args(["config", "apply"])
            .arg(example())
            .env_remove("SHIPLANE_ACTOR");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().expect("run shiplane")
    };
    // STS unreachable: nothing stored, and the error says how to name yourself.
    let unknown = run(&[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")]);
    assert_eq!(unknown.status.code(), Some(1), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("pass --actor NAME or set SHIPLANE_ACTOR"),
        "{}",
        stderr(&unknown)
    );
    assert!(store.pipeline().await.unwrap().is_none());
    // The local AWS's STS answers GetCallerIdentity as AWS does, with the caller's ARN.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let applied_by = store.pipeline().await.unwrap().unwrap().applied_by;
    assert!(
        applied_by.starts_with("arn:aws:") && applied_by.contains(":123456789012:"),
        "{applied_by}"
    );
}

/// A production history written straight to the table: two releases deployed to prod, the
/// second rolled back and the first restored; the built CLI computes the DORA figures.
#[tokio::test]
async fn metrics_computes_the_dora_figures_from_the_history_in_the_table() {
    use shiplane::release::{Cause, StageState as S, Transition};
    use shiplane::store::{Commit, Versioned};
    let store = fresh_store().await;
    let table = store.table().to_string();
    let out = shiplane(&table, &["config", "apply", example().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    const H: u64 = 3_600_000;
    let start = Timestamp::now().0 - 10 * 24 * H;
    let mut r1 = release(1);
    r1.pushed_at = Timestamp(start);
    let mut r2 = release(2);
    r2.pushed_at = Timestamp(start + 20 * H);
    let t = |r: &Release, h: u64, from: S, to: S, cause: Cause| Transition {
        at: Timestamp(start + h * H),
        service: "api".into(),
        environment: "prod".into(),
        release: Some(r.id.clone()),
        from: Some(from),
        to: Some(to),
        cause,
        actor: None,
        detail: None,
        alert: None,
    };
    let history = vec![
        t(&r1, 9, S::AwaitingApproval, S::Deploying, Cause::Approved),
        t(&r1, 10, S::Deploying, S::Baking, Cause::DeploymentSucceeded),
        t(&r1, 11, S::Baking, S::Succeeded, Cause::BakeElapsed),
        t(&r2, 23, S::AwaitingApproval, S::Deploying, Cause::Approved),
        t(&r2, 24, S::Deploying, S::Baking, Cause::DeploymentSucceeded),
        t(&r2, 25, S::Baking, S::RolledBack, Cause::AlarmFired),
        t(&r1, 25, S::Succeeded, S::Deploying, Cause::Rollback),
        t(
            &r1,
            27,
            S::Deploying,
            S::Succeeded,
            Cause::DeploymentSucceeded,
        ),
    ];
    store
        .commit(Commit {
            releases: vec![
                Versioned {
                    item: r1,
                    version: 0,
                },
                Versioned {
                    item: r2,
                    version: 0,
                },
            ],
            history,
            ..Commit::default()
        })
        .await
        .unwrap();

    let out = shiplane(&table, &["--json", "metrics", "api", "--since", "30d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let api = &v[0];
    assert_eq!(api["service"], "api");
    assert_eq!(api["environment"], "prod");
    assert_eq!(api["deployments"], 2, "{api}");
    assert_eq!(api["failed_deployments"], 1);
    assert_eq!(api["change_failure_rate"], 0.5);
    assert_eq!(
        api["lead_time_median_seconds"],
        7.0 * 3600.0,
        "median of 10 h and 4 h"
    );
    assert_eq!(api["time_to_restore_median_seconds"], 2.0 * 3600.0);
    assert_eq!(api["unrestored"], 0);
    assert!(
        api["since"].as_str().unwrap().ends_with('Z'),
        "RFC 3339: {api}"
    );

    let out = shiplane(&table, &["metrics"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("DORA figures over the last 30d"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("api"))
        .unwrap();
    for cell in ["prod", "2", "7h", "50%", "2h"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("etl")),
        "every service: {text}"
    );

    let out = shiplane(&table, &["metrics", "api", "--since", "a while"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("write one such as 30d"),
        "{}",
        stderr(&out)
    );
}

/// A release whose tag prod does not accept ends in dev: `status` shows it there with the
/// reason, `history` names the not_promoted transition, and prod has nothing waiting.
#[tokio::test]
async fn status_and_history_say_why_a_release_goes_no_further() {
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let prod = format!("service = \"{p}-api-prod\"\n");
    shiplane_e2e::edit_pipeline(&store, |source| {
        source.replacen(&prod, &format!("{prod}tags = {{ regex = \"^v\" }}\n"), 1)
    })
    .await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let push = shiplane_e2e::image_push(&format!("{p}/api"), "feature-x");
    let release = shiplane_e2e::release_from_push(&engine, &push).await;
    // dev has no bake here: CodeDeploy's success is the stage's.
    shiplane_e2e::deployment_succeeds(&engine, &release, "dev", Timestamp::now()).await;
    let why = "tag feature-x not accepted by prod (tags = { regex = \"^v\" })";

    let table = store.table().to_string();
    let text = stdout(&shiplane(&table, &["status", "api"]));
    let dev = text
        .lines()
        .find(|l| l.contains(" dev "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        dev.contains(&format!("succeeded, goes no further: {why}")),
        "{text}"
    );
    let v = json(&shiplane(&table, &["--json", "status", "api"]));
    let rows = v.as_array().unwrap();
    let row = |env: &str| rows.iter().find(|r| r["environment"] == env).unwrap();
    assert_eq!(row("dev")["current"]["not_promoted"], why);
    assert_eq!(row("prod")["queued"], Value::Null, "nothing waits in prod");

    let text = stdout(&shiplane(&table, &["history", release.as_str()]));
    let line = text
        .lines()
        .find(|l| l.contains("not_promoted"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("not accepted by prod"), "{text}");
}
