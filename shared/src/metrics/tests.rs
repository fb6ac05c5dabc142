use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;
use crate::release::{Digest, Lane, Phase, Release, Stage, Transition};

const S: u64 = 1000;

fn release(pushed: u64) -> Release {
    let mut r = Release::new(
        ReleaseId::new(Timestamp(pushed)),
        "api",
        "shiplane/api",
        Digest::parse(&format!("sha256:{}", "d".repeat(64))).unwrap(),
        Some("v1.0.0"),
        Timestamp(pushed),
    );
    r.pushed_at = Timestamp(pushed);
    r
}

fn view(releases: &[&Release]) -> LaneView {
    LaneView {
        lane: Lane::new("api", "prod"),
        releases: releases
            .iter()
            .map(|r| (r.id.clone(), (*r).clone()))
            .collect(),
    }
}

fn decision(after: LaneView, transitions: Vec<Transition>) -> Decision {
    Decision {
        view: after,
        changed: BTreeSet::new(),
        lane_changed: false,
        transitions,
        actions: Vec::new(),
    }
}

fn t(
    r: &Release,
    at: u64,
    from: StageState,
    to: StageState,
    cause: Cause,
    detail: Option<&str>,
) -> Transition {
    Transition {
        at: Timestamp(at),
        service: "api".into(),
        environment: "prod".into(),
        release: Some(r.id.clone()),
        from: Some(from),
        to: Some(to),
        cause,
        actor: None,
        detail: detail.map(str::to_string),
        alert: None,
    }
}

fn values(records: &[Record]) -> BTreeMap<&'static str, f64> {
    records
        .iter()
        .flat_map(|r| r.metrics.iter().map(|m| (m.name, m.value)))
        .collect()
}

#[test]
fn an_approval_measures_the_wait_and_starts_a_deployment() {
    let mut before = release(0);
    before.stages.insert(
        "prod".into(),
        Stage::new(StageState::AwaitingApproval, Timestamp(100 * S)),
    );
    let after = before.clone();
    let d = decision(
        view(&[&after]),
        vec![
            t(
                &before,
                400 * S,
                StageState::AwaitingApproval,
                StageState::Deploying,
                Cause::Approved,
                None,
            ),
            t(
                &before,
                400 * S,
                StageState::Deploying,
                StageState::Deploying,
                Cause::DeploymentCreated,
                None,
            ),
        ],
    );
    let records = of_decision(&view(&[&before]), &d);
    assert_eq!(records.len(), 1, "the deployment created measures nothing");
    assert_eq!(
        values(&records),
        BTreeMap::from([("ApprovalWait", 300.0), ("DeploymentsStarted", 1.0)])
    );
}

#[test]
fn a_completed_deployment_measures_lead_time_and_a_bake_its_length() {
    let mut before = release(10 * S);
    before.stages.insert(
        "prod".into(),
        Stage::new(StageState::Validating, Timestamp(500 * S)),
    );
    let d = decision(
        view(&[&before]),
        vec![t(
            &before,
            1010 * S,
            StageState::Validating,
            StageState::Baking,
            Cause::DeploymentSucceeded,
            None,
        )],
    );
    let records = of_decision(&view(&[&before]), &d);
    assert_eq!(values(&records), BTreeMap::from([("LeadTime", 1000.0)]));

    before.stages.get_mut("prod").unwrap().phase =
        Phase::fresh(StageState::Baking, Timestamp(1010 * S));
    before.stages.get_mut("prod").unwrap().since = Timestamp(1010 * S);
    let d = decision(
        view(&[&before]),
        vec![t(
            &before,
            4610 * S,
            StageState::Baking,
            StageState::Succeeded,
            Cause::BakeElapsed,
            None,
        )],
    );
    let records = of_decision(&view(&[&before]), &d);
    assert_eq!(
        values(&records),
        BTreeMap::from([("BakeTime", 3600.0), ("DeploymentsSucceeded", 1.0)])
    );

    // A restore of the last known good is no change: no lead time.
    let mut restore = before.clone();
    let stage = restore.stages.get_mut("prod").unwrap();
    stage.phase = Phase::fresh(StageState::Deploying, stage.since);
    stage.redeploy = true;
    let d = decision(
        view(&[&restore]),
        vec![t(
            &restore,
            9000 * S,
            StageState::Deploying,
            StageState::Succeeded,
            Cause::DeploymentSucceeded,
            None,
        )],
    );
    assert_eq!(
        values(&of_decision(&view(&[&restore]), &d)),
        BTreeMap::from([("DeploymentsSucceeded", 1.0)])
    );
}

#[test]
fn failures_rollbacks_and_checks_are_counted_and_timed() {
    let mut r = release(0);
    r.stages.insert(
        "prod".into(),
        Stage::new(StageState::Validating, Timestamp(S)),
    );
    let d = decision(
        view(&[&r]),
        vec![
            t(
                &r,
                2 * S,
                StageState::Validating,
                StageState::Validating,
                Cause::CheckPassed,
                Some("health: passed in 42 ms: 200 OK"),
            ),
            t(
                &r,
                2 * S,
                StageState::Validating,
                StageState::Validating,
                Cause::CheckFailed,
                Some("smoke: failed in 1500 ms: 503 from http://x: passed in 3 ms"),
            ),
            t(
                &r,
                2 * S,
                StageState::Validating,
                StageState::Failed,
                Cause::HookFailed,
                None,
            ),
        ],
    );
    let records = of_decision(&view(&[&r]), &d);
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].properties["check"], "health");
    assert_eq!(records[0].metrics[0].value, 42.0);
    assert_eq!(records[1].properties["check"], "smoke");
    assert_eq!(records[1].properties["passed"], false);
    assert_eq!(records[1].metrics[0].value, 1500.0);
    assert_eq!(records[2].metrics[0].name, "DeploymentsFailed");
}

#[test]
fn a_record_is_valid_emf_with_both_dimension_sets() {
    let mut r = release(0);
    r.stages
        .insert("prod".into(), Stage::new(StageState::Baking, Timestamp(S)));
    let d = decision(
        view(&[&r]),
        vec![t(
            &r,
            61 * S,
            StageState::Baking,
            StageState::RolledBack,
            Cause::AlarmFired,
            None,
        )],
    );
    let records = of_decision(&view(&[&r]), &d);
    let emf = records[0].to_emf(NAMESPACE);
    let aws = &emf["_aws"];
    assert_eq!(aws["Timestamp"], 61 * S);
    let directive = &aws["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Shiplane");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["Service", "Environment"], ["Environment"]])
    );
    // Every metric named in the directive has a number at the root, every dimension a
    // string: what CloudWatch requires to extract it.
    for m in directive["Metrics"].as_array().unwrap() {
        let name = m["Name"].as_str().unwrap();
        assert!(emf[name].is_number(), "{name}");
        assert!(["Count", "Seconds", "Milliseconds"].contains(&m["Unit"].as_str().unwrap()));
    }
    for set in directive["Dimensions"].as_array().unwrap() {
        for dim in set.as_array().unwrap() {
            assert!(emf[dim.as_str().unwrap()].is_string());
        }
    }
    assert_eq!(emf["DeploymentsRolledBack"], 1.0);
    assert_eq!(emf["BakeTime"], 60.0);
    assert_eq!(emf["Service"], "api");
    assert!(matches!(emf["release"], Value::String(_)));
    // One line: the log pipeline reads each line as one document.
    assert!(!emf.to_string().contains('\n'));
}
