//! The stored shape of a stage: every phase reads back as written, under the names items
//! always had, and items written before the phase was typed are migrated on read.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

const TASK: &str = "arn:aws:ecs:eu-west-1:123456789012:task/prod/0a1b2c3d4e5f";

fn read(v: Value) -> Stage {
    serde_json::from_value(v).unwrap()
}

fn written(stage: &Stage) -> Value {
    serde_json::to_value(stage).unwrap()
}

/// One stage in each state, with the state's own data and the kept fields set.
fn every_phase() -> Vec<Stage> {
    let t = Timestamp(1_000);
    StageState::ALL
        .into_iter()
        .map(|state| {
            let phase = match Phase::fresh(state, t) {
                Phase::Queued { .. } => Phase::Queued {
                    not_before: Some(Timestamp(2_000)),
                },
                Phase::Migrating { .. } => Phase::Migrating {
                    task: Some(TASK.into()),
                    lease: Some(Timestamp(3_000)),
                },
                Phase::Deploying { .. } => Phase::Deploying {
                    lease: Some(Timestamp(3_000)),
                },
                Phase::Baking { .. } => Phase::Baking {
                    until: Timestamp(4_000),
                },
                Phase::Succeeded { .. } => Phase::Succeeded {
                    promote_to: Some("prod".into()),
                    restarts: vec!["tiles".into()],
                    clean_up: true,
                    not_promoted: None,
                },
                other => other,
            };
            let mut stage = Stage::in_phase(phase, t);
            if !matches!(state, StageState::Migrating | StageState::Queued) {
                stage.deployment_id = Some("d-ABC123".into());
            }
            stage.attempt = 2;
            stage.ended = vec!["d-OLD".into()];
            stage
        })
        .collect()
}

#[test]
fn every_phase_reads_back_as_it_was_written() {
    for stage in every_phase() {
        assert_eq!(read(written(&stage)), stage, "{stage:?}");
        assert_eq!(stage.phase.state(), stage.state());
        assert_eq!(written(&stage)["state"], json!(stage.state().as_str()));
    }
}

#[test]
fn the_state_s_own_data_keeps_the_names_it_was_stored_and_printed_under() {
    let by_state: BTreeMap<_, _> = every_phase()
        .into_iter()
        .map(|s| (s.state(), written(&s)))
        .collect();
    assert_eq!(by_state[&StageState::Queued]["not_before"], json!(2_000));
    assert_eq!(
        by_state[&StageState::Migrating]["migration_task"],
        json!(TASK)
    );
    assert_eq!(by_state[&StageState::Migrating]["lease"], json!(3_000));
    assert_eq!(by_state[&StageState::Deploying]["lease"], json!(3_000));
    assert_eq!(by_state[&StageState::Baking]["bake_until"], json!(4_000));
    assert_eq!(
        by_state[&StageState::Succeeded]["promote_to"],
        json!("prod")
    );
    assert_eq!(
        by_state[&StageState::Succeeded]["restarts"],
        json!(["tiles"])
    );
    assert_eq!(by_state[&StageState::Succeeded]["clean_up"], json!(true));
    for (state, v) in &by_state {
        assert_eq!(v["attempt"], json!(2), "{state}");
        let own = [
            "not_before",
            "migration_task",
            "lease",
            "bake_until",
            "promote_to",
            "restarts",
            "clean_up",
        ];
        let held: Vec<_> = own.iter().filter(|k| v.get(**k).is_some()).collect();
        assert!(held.len() <= 3, "{state} holds only its own data: {v}");
    }
}

#[test]
fn an_older_migrating_item_s_task_arn_moves_from_deployment_id_to_the_migration() {
    let stage = read(json!({
        "state": "migrating", "since": 5, "deployment_id": TASK, "lease": 9, "deadline": 10
    }));
    assert_eq!(
        stage.phase,
        Phase::Migrating {
            task: Some(TASK.into()),
            lease: Some(Timestamp(9)),
        }
    );
    assert_eq!(stage.deployment_id, None);
    assert_eq!(stage.started(), Some(TASK));
    assert_eq!(stage.deadline, Some(Timestamp(10)));
    let again = written(&stage);
    assert_eq!(again["migration_task"], json!(TASK));
    assert!(again.get("deployment_id").is_none(), "{again}");
}

#[test]
fn an_older_ended_migration_s_task_arn_is_dropped_not_taken_for_a_deployment() {
    let stage = read(json!({
        "state": "failed", "since": 5, "deployment_id": TASK, "reason": "exit 1"
    }));
    assert_eq!(stage.phase, Phase::Failed);
    assert_eq!(stage.deployment_id, None);
    assert_eq!(stage.started(), None);
    assert_eq!(stage.reason.as_deref(), Some("exit 1"));
}

#[test]
fn a_deployment_id_that_is_no_task_arn_stays_the_deployment() {
    for id in ["d-ABC123", "ecs-svc/1234567890123456789"] {
        let stage = read(json!({"state": "validating", "since": 5, "deployment_id": id}));
        assert_eq!(stage.deployment_id.as_deref(), Some(id));
    }
}

#[test]
fn what_a_state_cannot_have_is_dropped_on_read() {
    let stage = read(json!({
        "state": "validating", "since": 5, "deployment_id": "d-1",
        "lease": 9, "bake_until": 20, "not_before": 7, "promote_to": "prod",
        "restarts": ["tiles"], "clean_up": true
    }));
    assert_eq!(stage.phase, Phase::Validating);
    assert_eq!(
        (stage.lease(), stage.bake_until(), stage.not_before()),
        (None, None, None)
    );
    assert_eq!(stage.promote_to(), None);
    let again = written(&stage);
    assert!(stage.restarts().is_empty() && !stage.owes_clean_up());
    for gone in [
        "lease",
        "bake_until",
        "not_before",
        "promote_to",
        "restarts",
        "clean_up",
    ] {
        assert!(again.get(gone).is_none(), "{gone} in {again}");
    }
    assert_eq!(
        read(json!({"state": "rolled_back", "since": 5, "bake_until": 20})).bake_until(),
        None
    );
}

#[test]
fn an_older_bake_with_no_end_recorded_ends_at_its_deadline_or_at_once() {
    let with_deadline = read(json!({"state": "baking", "since": 5, "deadline": 50}));
    assert_eq!(with_deadline.bake_until(), Some(Timestamp(50)));
    let bare = read(json!({"state": "baking", "since": 5}));
    assert_eq!(bare.bake_until(), Some(Timestamp(5)));
}

#[test]
fn a_lease_belongs_only_to_a_state_that_runs_an_action() {
    let mut validating = Stage::new(StageState::Validating, Timestamp(1));
    validating.set_lease(Timestamp(9));
    assert_eq!(validating.lease(), None);
    for state in [StageState::Migrating, StageState::Deploying] {
        let mut stage = Stage::new(state, Timestamp(1));
        assert_eq!(stage.lease(), None, "{state}: no lease until given one");
        stage.set_lease(Timestamp(9));
        assert_eq!(stage.lease(), Some(Timestamp(9)), "{state}");
    }
}
