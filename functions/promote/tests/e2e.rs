//! The built `promote` binary behind a local Runtime API, invoked with the payload of a
//! bake timer the engine set in the local AWS's Scheduler and the emulator fired.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use shiplane::facts::BakeTimer;
use shiplane::release::{Cause, StageState, Timestamp};
use shiplane::store::ReleaseStore;
use shiplane_e2e::runtime_api::RuntimeApi;
use shiplane_e2e::{aws_adapters, deployed_world, fire_schedules, image_push, schedules};

const BINARY: &str = env!("CARGO_BIN_EXE_promote");

#[tokio::test]
async fn a_fired_bake_timer_ends_the_bake_and_the_release_awaits_approval_in_prod() {
    let (p, account, store) = deployed_world().await;
    // dev bakes for a moment, so that the timer is due by the time it is delivered.
    let anchor = format!("service = \"{p}-api-dev\"\n");
    shiplane_e2e::edit_pipeline(&store, |source| {
        source.replace(&anchor, &format!("{anchor}bake = \"200ms\"\n"))
    })
    .await;
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let release =
        shiplane_e2e::release_from_push(&engine, &image_push(&format!("{p}/api"), "v1")).await;
    let now = Timestamp::now();
    shiplane_e2e::deployment_succeeds(&engine, &release, "dev", now).await;
    let r = store.release(&release).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Baking));
    // The binary reads the real clock: deliver the timer once the 200 ms bake has ended
    // (Scheduler fires at the minute after it, never before).
    let until = r.stages["dev"].bake_until().unwrap();
    let left = until.0.saturating_sub(Timestamp::now().0);
    tokio::time::sleep(Duration::from_millis(left + 50)).await;

    // Scheduler fires the timer at its minute; the function gets its input as the event.
    let timer = BakeTimer::new("api", "dev", &release, 0);
    let fired: Vec<Value> = fire_schedules(Timestamp(now.0 + 60_000))
        .into_iter()
        .filter(|f| f["release"] == release.as_str())
        .collect();
    assert_eq!(fired.len(), 1);
    let api = RuntimeApi::start().await;
    let function = api.spawn(
        Path::new(BINARY),
        "shiplane-promote",
        &account.function_env(&store),
    );
    let wait = Duration::from_secs(60);
    api.invoke(fired[0].clone());
    let out = api.wait_for(1, wait).await;
    let answer = out[0].result.as_ref().unwrap();
    assert_eq!(answer["refused"], json!([]), "{answer}");
    let r = store.release(&release).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Succeeded));
    assert_eq!(r.state_in("prod"), Some(StageState::AwaitingApproval));
    let ops: Vec<String> = schedules()["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == timer.name().as_str())
        .map(|e| e["op"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ops, ["created", "fired", "deleted"]);

    // Delivered again (Scheduler is at-least-once): nothing changes.
    let before = store.history_of_release(&release).await.unwrap().len();
    api.invoke(fired[0].clone());
    // Another producer's event: ignored.
    api.invoke(json!({"source": "aws.scheduler", "detail": {}}));
    let out = api.wait_for(3, wait).await;
    let again = out[1].result.as_ref().unwrap();
    assert!(
        again["refused"][0]
            .as_str()
            .unwrap_or_default()
            .contains("succeeded"),
        "{again}"
    );
    assert!(out[2].result.as_ref().unwrap()["ignored"].is_string());
    assert_eq!(
        store.history_of_release(&release).await.unwrap().len(),
        before
    );
    // The bake's end became metrics: one EMF record on stdout, by service and environment,
    // and none for the replay.
    let logs = function.stop();
    let emf: Vec<&Value> = logs
        .iter()
        .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Shiplane")
        .collect();
    assert_eq!(emf.len(), 1, "{emf:?}");
    let record = emf[0];
    assert_eq!(
        (record["Service"].as_str(), record["Environment"].as_str()),
        (Some("api"), Some("dev"))
    );
    assert_eq!(record["DeploymentsSucceeded"], 1.0);
    assert!(record["BakeTime"].as_f64().unwrap() >= 0.2, "{record}");
    assert_eq!(
        record["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Service", "Environment"], ["Environment"]])
    );
}

/// Bytes that are not one JSON object, through the built binary: an `InvalidEvent`, one
/// log record each, and no AWS call.
#[tokio::test]
async fn a_payload_that_is_not_one_json_object_is_an_invalid_event_and_calls_no_aws() {
    shiplane_e2e::bad_input::bad_payloads_are_invalid_events(BINARY, "shiplane-promote", json!({"source": "shiplane.bake-timer", "service": "api", "environment": "dev", "release": "01JD2B3C4D5E6F7G8H9J0KMNPQ", "attempt": 0})).await;
}

/// Which pushes go where, through the built binary: prod takes only release tags, so a
/// feature branch's release ends in dev when its bake ends there (no approval asked, none
/// left waiting), with the reason in its stage, its history and its notification; a
/// release tag pushed after it goes on to prod's approval.
#[tokio::test]
async fn a_feature_branch_release_ends_in_dev_with_its_reason_and_a_release_tag_goes_on() {
    let (p, account, store) = deployed_world().await;
    let (dev, prod) = (
        format!("service = \"{p}-api-dev\"\n"),
        format!("service = \"{p}-api-prod\"\n"),
    );
    shiplane_e2e::edit_pipeline(&store, |source| {
        source
            .replace(&dev, &format!("{dev}bake = \"200ms\"\n"))
            .replace(
                &prod,
                &format!("{prod}tags = {{ regex = \"^(v|release-)\" }}\n"),
            )
    })
    .await;
    let aws = aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let api = RuntimeApi::start().await;
    let _function = api.spawn(
        Path::new(BINARY),
        "shiplane-promote",
        &account.function_env(&store),
    );
    shiplane_e2e::notifications(&account.queue_url);

    // Each push deploys in dev, bakes, and its bake timer's payload goes to the function.
    let mut answers = 0;
    let mut bake_in_dev = |tag: &'static str| {
        answers += 1;
        let (engine, store, api, p) = (&engine, &store, &api, &p);
        let n = answers;
        async move {
            let release =
                shiplane_e2e::release_from_push(engine, &image_push(&format!("{p}/api"), tag))
                    .await;
            let now = Timestamp::now();
            shiplane_e2e::deployment_succeeds(engine, &release, "dev", now).await;
            let r = store.release(&release).await.unwrap().unwrap().item;
            let until = r.stages["dev"].bake_until().unwrap();
            tokio::time::sleep(Duration::from_millis(
                until.0.saturating_sub(Timestamp::now().0) + 50,
            ))
            .await;
            // The payload the timer's schedule hands the function (the test above fires
            // one through Scheduler; tests running at once share the emulator's Scheduler,
            // so this one delivers it itself).
            let timer = BakeTimer::new("api", "dev", &release, 0);
            api.invoke(serde_json::to_value(&timer).unwrap());
            let out = api.wait_for(n, Duration::from_secs(60)).await;
            assert_eq!(out[n - 1].result.as_ref().unwrap()["refused"], json!([]));
            store.release(&release).await.unwrap().unwrap().item
        }
    };

    let why = "tag feature-x not accepted by prod (tags = { regex = \"^(v|release-)\" })";
    let feature = bake_in_dev("feature-x").await;
    assert_eq!(feature.state_in("dev"), Some(StageState::Succeeded));
    assert_eq!(feature.state_in("prod"), None, "no approval asked in prod");
    assert_eq!(feature.stages["dev"].not_promoted(), Some(why));
    assert_eq!(
        feature.stages["dev"].promote_to(),
        None,
        "no promotion owed"
    );
    let history = store.history_of_release(&feature.id).await.unwrap();
    let told: Vec<_> = history
        .iter()
        .filter(|t| t.cause == Cause::NotPromoted)
        .map(|t| (t.environment.as_str(), t.detail.as_deref()))
        .collect();
    assert_eq!(told, [("dev", Some(why))]);
    let lane = store.lane("api", "prod").await.unwrap().item;
    assert_eq!((lane.in_flight, lane.queued), (None, None));

    let release = bake_in_dev("v2.0.0").await;
    assert_eq!(release.state_in("dev"), Some(StageState::Succeeded));
    assert_eq!(release.state_in("prod"), Some(StageState::AwaitingApproval));
    assert_eq!(release.stages["dev"].not_promoted(), None);

    // Announced: the feature branch's end with its reason and what to type; the release
    // tag's approval in prod.
    let notes: Vec<Value> = shiplane_e2e::notifications(&account.queue_url)
        .iter()
        .map(|m| serde_json::from_str(m["Message"].as_str().unwrap_or("{}")).unwrap())
        .collect();
    let ended: Vec<&Value> = notes
        .iter()
        .filter(|n| n["kind"] == "not_promoted")
        .collect();
    assert_eq!(ended.len(), 1, "{notes:#?}");
    assert_eq!(ended[0]["release"], feature.id.as_str());
    assert_eq!(ended[0]["environment"], "dev");
    assert_eq!(ended[0]["why"], format!("not promoted: {why}"));
    assert!(
        ended[0]["what"]
            .as_str()
            .unwrap()
            .contains("succeeded in dev and goes no further"),
        "{}",
        ended[0]
    );
    assert!(notes.iter().any(|n| n["kind"] == "awaiting_approval"
        && n["release"] == release.id.as_str()
        && n["environment"] == "prod"));
}
