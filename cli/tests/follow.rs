//! Names (`SERVICE@TAG`), history with tags and durations, `watch` and `wait`: the built
//! `shiplane` against the local AWS emulator, releases moved by the real engine.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use shiplane::release::{Event, ReleaseId, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};

mod common;
use common::shiplane;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts `shiplane` on `table` without waiting for it (a `wait` or `watch` that polls).
fn start(table: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .arg("--table")
        .arg(table)
        .args(args)
        .env("SHIPLANE_ACTOR", "ana")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shiplane")
}

async fn state(store: &DynamoStore, id: &ReleaseId, env: &str) -> Option<StageState> {
    store.release(id).await.unwrap().unwrap().item.state_in(env)
}

/// The environment a release waits for approval in.
async fn awaiting_in(store: &DynamoStore, id: &ReleaseId) -> String {
    let r = store.release(id).await.unwrap().unwrap().item;
    r.stages
        .iter()
        .find(|(_, s)| s.state() == StageState::AwaitingApproval)
        .map(|(env, _)| env.clone())
        .unwrap_or_else(|| panic!("{r:?} awaits no approval"))
}

#[tokio::test]
async fn names_history_watch_and_wait_follow_releases_by_their_tags() {
    let (p, account, store) = shiplane_e2e::deployed_world().await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let pipeline = engine.pipeline().await.unwrap();
    let table = store.table().to_string();
    let v1 = shiplane_e2e::release_from_push(
        &engine,
        &shiplane_e2e::image_push(&format!("{p}/api"), "v1"),
    )
    .await;
    assert_eq!(state(&store, &v1, "dev").await, Some(StageState::Deploying));

    // A wait that runs out of time: exit 6, saying where the release is.
    let out = shiplane(
        &table,
        &[
            "wait",
            "api@v1",
            "--env",
            "dev",
            "--timeout",
            "1s",
            "--every",
            "200ms",
        ],
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out: api@v1 is deploying in dev after 1s"),
        "{}",
        stderr(&out)
    );

    // One frame of the release's way: each environment, its state and deployment.
    let out = shiplane(&table, &["watch", "api@v1", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let frame = stdout(&out);
    let deployment = shiplane_e2e::deployment_of(&store, &v1, "dev").await;
    let dev = frame
        .lines()
        .find(|l| l.trim_start().starts_with("dev "))
        .unwrap_or_else(|| panic!("{frame}"));
    assert!(
        dev.contains("v1 (") && dev.contains("deploying") && dev.contains(&deployment),
        "{frame}"
    );
    assert!(frame.contains("not reached"), "later environments: {frame}");
    let once: Value =
        serde_json::from_slice(&shiplane(&table, &["--json", "watch", "api", "--once"]).stdout)
            .unwrap();
    assert_eq!(once["rows"][0]["state"], "deploying");
    assert_eq!(once["rows"][0]["deployment_id"], deployment.as_str());
    assert!(once["at"].as_str().unwrap().ends_with('Z'), "RFC 3339");

    // A wait that is reached: CodeDeploy succeeds while it polls.
    let waiting = start(
        &table,
        &[
            "wait",
            "api@v1",
            "--env",
            "dev",
            "--until",
            "succeeded",
            "--timeout",
            "60s",
            "--every",
            "200ms",
        ],
    );
    shiplane_e2e::set_deployment_status(&deployment, "Succeeded");
    engine
        .on_event(
            &pipeline,
            "api",
            "dev",
            &v1,
            Event::DeploymentSucceeded,
            Timestamp::now(),
        )
        .await
        .unwrap();
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("api@v1 reached succeeded in dev"),
        "{}",
        stdout(&out)
    );

    // Approved by its tag.
    let next = awaiting_in(&store, &v1).await;
    let out = shiplane(&table, &["approve", "api@v1", &next]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(
        state(&store, &v1, &next).await,
        Some(StageState::AwaitingApproval)
    );
    let out = shiplane(&table, &["approve", "api@v9", &next]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no release of api is tagged v9 (its newest tags: v1)"),
        "{}",
        stderr(&out)
    );

    // History names it by its tags, with each step's duration and the total.
    let out = shiplane(&table, &["history", "api@v1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("release api@v1 ({v1}) of api: tags v1;")),
        "{text}"
    );
    assert!(
        text.lines().next().is_some_and(|l| l.contains("STEP"))
            || text.lines().nth(1).is_some_and(|l| l.contains("STEP")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" +") && l.contains("approved")),
        "{text}"
    );
    assert!(text.lines().last().unwrap().starts_with("total "), "{text}");
    let out = shiplane(&table, &["history", "api"]);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("v1 ({})", &v1.as_str()[..10]))),
        "the service's history names releases by tag: {text}"
    );
    let out = shiplane(&table, &["history", &v1.as_str()[..12]]);
    assert_eq!(out.status.code(), Some(0), "by a prefix: {}", stderr(&out));

    // A wait for prod that ends another way: v2 fails in dev (exit 5, the final state in JSON).
    let v2 = shiplane_e2e::release_from_push(
        &engine,
        &shiplane_e2e::image_push(&format!("{p}/api"), "v2"),
    )
    .await;
    let waiting = start(
        &table,
        &[
            "--json",
            "wait",
            "api@v2",
            "--timeout",
            "60s",
            "--every",
            "200ms",
        ],
    );
    let failed = shiplane_e2e::deployment_of(&store, &v2, "dev").await;
    shiplane_e2e::set_deployment_status(&failed, "Failed");
    engine
        .on_event(
            &pipeline,
            "api",
            "dev",
            &v2,
            Event::DeploymentFailed {
                reason: "the AfterAllowTestTraffic hook failed".into(),
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "ended");
    assert_eq!(v["exit_code"], 5);
    assert_eq!(v["name"], "api@v2");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("api@v2 will not reach "),
        "{v}"
    );

    // Watching a release that has ended: its lines, then how it ended, by itself.
    let out = shiplane(&table, &["watch", "api@v2", "--every", "200ms"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.contains(" api dev: v2 (") && l.contains("failed")),
        "{text}"
    );
    assert!(
        text.lines().last() == Some("api@v2 ended: failed in dev"),
        "{text}"
    );
}
