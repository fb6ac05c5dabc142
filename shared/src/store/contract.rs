//! The behaviour every [`ReleaseStore`] must have. Run against the in-memory store in unit
//! tests and against DynamoDB in the local AWS emulator, so the fake never drifts.
// A test suite, compiled only for tests (here and in other crates): it may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::{
    Claim, ClaimRecord, Commit, DeploymentRef, LaneKey, LoadedLane, Reads, ReleaseStore, Settle,
    StoreError, StoredPipeline, Versioned,
};
use crate::pipeline::Approval;
use crate::release::{
    Digest, Event, LaneEvent, Policy, Release, ReleaseId, StageState, Timestamp, apply, apply_lane,
};

const T0: Timestamp = Timestamp(1_750_000_000_000);

fn release(service: &str, n: u64) -> Release {
    let id = ReleaseId::parse(&ulid::Ulid::from_parts(T0.0 + n, u128::from(n)).to_string())
        .unwrap_or_else(|e| panic!("test id: {e}"));
    let digest = Digest::parse(&format!("sha256:{n:064x}")).unwrap_or_else(|e| panic!("{e}"));
    Release::new(
        id,
        service,
        &format!("team/{service}"),
        digest,
        Some(&format!("v{n}")),
        Timestamp(T0.0 + n),
    )
}

fn policy(approval: Approval) -> Policy {
    Policy {
        approval,
        migration: false,
        stop_first: false,
        bake: Duration::from_secs(60),
        frozen: false,
        next_environment: None,
        next_tags: crate::pipeline::TagPolicy::Any,
        deadlines: crate::release::Deadlines::default(),
        held_by: Vec::new(),
        undo_by_redeploy: false,
        data_jobs: false,
        watch: std::time::Duration::ZERO,
        restarts: Vec::new(),
        keep: 5,
    }
}

/// Pushes a release into `env` of its service through the real loop: load, apply, commit.
async fn arrive<S: ReleaseStore>(
    store: &S,
    r: &Release,
    env: &str,
    approval: Approval,
    at: Timestamp,
) {
    let mut loaded = LoadedLane::load(store, &r.service, env, &[])
        .await
        .unwrap_or_else(|e| panic!("load: {e}"));
    loaded.add_new(r.clone());
    let d = apply(&loaded.view, &r.id, &Event::Arrived, &policy(approval), at)
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .commit(loaded.commit_for(&d))
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
}

/// Declares one `#[tokio::test]` per contract check, each against a fresh store from
/// `$make` (an async expression evaluated anew in every test).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@each $make;
            releases_round_trip_and_start_at_version_one,
            stale_versions_conflict_and_write_nothing,
            concurrent_conflicting_transitions_one_wins,
            claims_are_taken_once_until_they_expire,
            lanes_are_queried_per_service,
            history_is_queried_per_release_and_per_service,
            deployments_map_back_to_their_release,
            pipeline_versions_increase_one_at_a_time,
            releases_of_a_service_come_newest_first,
            a_decision_conflicts_when_an_item_it_read_but_left_unchanged_moved,
            a_decision_conflicts_when_a_gate_lane_it_read_moved,
            a_pipeline_larger_than_one_item_round_trips,
            one_read_returns_claim_pipeline_lanes_and_releases,
            a_settled_claim_records_each_tag_once_and_only_while_held,
            a_commit_settles_a_delivery_on_its_claim_or_leaves_a_gone_one_alone);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::store::contract::$name(&store).await;
            }
        )*
    };
}

pub async fn releases_round_trip_and_start_at_version_one<S: ReleaseStore>(store: &S) {
    let r = release("api", 1);
    assert_eq!(store.release(&r.id).await.unwrap(), None);
    store
        .commit(Commit {
            releases: vec![Versioned {
                item: r.clone(),
                version: 0,
            }],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.release(&r.id).await.unwrap(),
        Some(Versioned {
            item: r.clone(),
            version: 1
        })
    );
    let lane = store.lane("api", "dev").await.unwrap();
    assert_eq!(lane.version, 0, "a lane never written reads as version 0");
    assert_eq!(lane.item.in_flight, None);
}

pub async fn stale_versions_conflict_and_write_nothing<S: ReleaseStore>(store: &S) {
    let r = release("api", 1);
    arrive(store, &r, "dev", Approval::None, T0).await;
    let before_history = store.history_of_release(&r.id).await.unwrap();
    let before = store.release(&r.id).await.unwrap().unwrap();
    assert_eq!(before.item.state_in("dev"), Some(StageState::Deploying));

    // A commit built on version 0 of the release, with a new release beside it: neither lands.
    let other = release("api", 2);
    let mut stale = before.item.clone();
    stale.tags.push("stale".into());
    let err = store
        .commit(Commit {
            releases: vec![
                Versioned {
                    item: other.clone(),
                    version: 0,
                },
                Versioned {
                    item: stale,
                    version: 0,
                },
            ],
            history: before_history.clone(),
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        store.release(&other.id).await.unwrap(),
        None,
        "all or nothing"
    );
    assert_eq!(store.release(&r.id).await.unwrap().unwrap(), before);
    assert_eq!(
        store.history_of_release(&r.id).await.unwrap(),
        before_history
    );

    // The same for a lane read at an old version.
    let lane = store.lane("api", "dev").await.unwrap();
    let err = store
        .commit(Commit {
            lanes: vec![Versioned {
                item: lane.item.clone(),
                version: lane.version - 1,
            }],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

pub async fn concurrent_conflicting_transitions_one_wins<S: ReleaseStore>(store: &S) {
    let r = release("api", 1);
    arrive(store, &r, "prod", Approval::Manual, T0).await;

    // Two operators act on the same awaiting release at once: one approves, one rejects.
    let a = LoadedLane::load(store, "api", "prod", std::slice::from_ref(&r.id))
        .await
        .unwrap();
    let b = a.clone();
    let p = policy(Approval::Manual);
    let approve = apply(
        &a.view,
        &r.id,
        &Event::Approved {
            actor: "ana".into(),
        },
        &p,
        Timestamp(T0.0 + 5),
    )
    .unwrap();
    let reject = apply(
        &b.view,
        &r.id,
        &Event::Rejected {
            actor: "ben".into(),
            reason: "not today".into(),
        },
        &p,
        Timestamp(T0.0 + 5),
    )
    .unwrap();
    let (ra, rb) = tokio::join!(
        store.commit(a.commit_for(&approve)),
        store.commit(b.commit_for(&reject))
    );
    let outcomes = [&ra, &rb];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "exactly one wins: {outcomes:?}"
    );
    let loser = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(matches!(loser, StoreError::Conflict { .. }), "{loser:?}");

    let history = store.history_of_release(&r.id).await.unwrap();
    let causes: Vec<&str> = history.iter().map(|t| t.cause.as_str()).collect();
    assert_eq!(
        causes.len(),
        2,
        "arrival plus exactly one decision: {causes:?}"
    );
    assert_eq!(causes[0], "arrived");
    assert!(
        causes[1] == "approved" || causes[1] == "rejected",
        "{causes:?}"
    );
    let state = store
        .release(&r.id)
        .await
        .unwrap()
        .unwrap()
        .item
        .state_in("prod");
    let expected = if ra.is_ok() {
        StageState::Deploying
    } else {
        StageState::Rejected
    };
    assert_eq!(state, Some(expected));
}

pub async fn claims_are_taken_once_until_they_expire<S: ReleaseStore>(store: &S) {
    let claim = |value: &str, at: u64| Claim {
        key: "push#team/api#sha256:abc".into(),
        value: value.into(),
        at: Timestamp(T0.0 + at),
        expires: Timestamp(T0.0 + at + 1_000),
    };
    assert_eq!(
        store.claimed("push#team/api#sha256:abc", T0).await.unwrap(),
        None
    );
    store
        .commit(Commit {
            claim: Some(claim("r1", 0)),
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .claimed("push#team/api#sha256:abc", T0)
            .await
            .unwrap()
            .as_deref(),
        Some("r1")
    );

    // A second claim of the same key, with other writes beside it: refused, nothing written.
    let r = release("api", 9);
    let err = store
        .commit(Commit {
            claim: Some(claim("r2", 10)),
            releases: vec![Versioned {
                item: r.clone(),
                version: 0,
            }],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::AlreadyClaimed {
            key: "push#team/api#sha256:abc".into(),
            value: "r1".into()
        }
    );
    assert!(!err.is_retryable());
    assert_eq!(store.release(&r.id).await.unwrap(), None);

    // After it expires (TTL may not have deleted it yet) the key can be claimed again.
    assert_eq!(
        store
            .claimed("push#team/api#sha256:abc", Timestamp(T0.0 + 2_000))
            .await
            .unwrap(),
        None
    );
    store
        .commit(Commit {
            claim: Some(claim("r3", 2_000)),
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .claimed("push#team/api#sha256:abc", Timestamp(T0.0 + 2_000))
            .await
            .unwrap()
            .as_deref(),
        Some("r3")
    );
}

pub async fn lanes_are_queried_per_service<S: ReleaseStore>(store: &S) {
    arrive(store, &release("api", 1), "prod", Approval::None, T0).await;
    arrive(store, &release("api", 2), "dev", Approval::None, T0).await;
    arrive(store, &release("apiary", 3), "dev", Approval::None, T0).await;
    let lanes = store.lanes("api").await.unwrap();
    let envs: Vec<&str> = lanes.iter().map(|l| l.item.environment.as_str()).collect();
    assert_eq!(
        envs,
        ["dev", "prod"],
        "only api's lanes, sorted, not apiary's"
    );
    assert!(
        lanes
            .iter()
            .all(|l| l.version == 1 && l.item.in_flight.is_some())
    );
    assert!(store.lanes("web").await.unwrap().is_empty());
}

pub async fn history_is_queried_per_release_and_per_service<S: ReleaseStore>(store: &S) {
    let (r1, r2) = (release("api", 1), release("api", 2));
    arrive(store, &r1, "dev", Approval::None, Timestamp(T0.0 + 1)).await;
    arrive(store, &r2, "dev", Approval::None, Timestamp(T0.0 + 2)).await; // queued behind r1
    arrive(
        store,
        &release("web", 3),
        "dev",
        Approval::None,
        Timestamp(T0.0 + 3),
    )
    .await;
    // A lane event has no release but belongs to the service's history.
    let loaded = LoadedLane::load(store, "api", "dev", &[]).await.unwrap();
    let d = apply_lane(
        &loaded.view,
        &LaneEvent::Pause {
            actor: "ana".into(),
            reason: "incident 42".into(),
        },
        &policy(Approval::None),
        Timestamp(T0.0 + 4),
    )
    .unwrap();
    store.commit(loaded.commit_for(&d)).await.unwrap();

    let h1 = store.history_of_release(&r1.id).await.unwrap();
    assert_eq!(h1.len(), 1);
    assert_eq!(h1[0].to, Some(StageState::Deploying));
    let h2 = store.history_of_release(&r2.id).await.unwrap();
    assert_eq!(h2[0].to, Some(StageState::Queued));
    assert_eq!(
        h2[0].detail.as_deref(),
        Some(format!("waiting for {}", r1.id).as_str())
    );

    let all = store.history_of_service("api", 100).await.unwrap();
    let causes: Vec<(&str, u64)> = all
        .iter()
        .map(|t| (t.cause.as_str(), t.at.0 - T0.0))
        .collect();
    assert_eq!(
        causes,
        [("arrived", 1), ("arrived", 2), ("paused", 4)],
        "oldest first, web excluded"
    );
    assert_eq!(all[2].actor.as_deref(), Some("ana"));
    assert_eq!(all[2].release, None);
    let last_two = store.history_of_service("api", 2).await.unwrap();
    assert_eq!(last_two, all[1..].to_vec(), "the newest N");
}

pub async fn deployments_map_back_to_their_release<S: ReleaseStore>(store: &S) {
    let r = release("api", 1);
    let d = DeploymentRef {
        deployment_id: "d-ABC123".into(),
        release: r.id.clone(),
        service: "api".into(),
        environment: "dev".into(),
        restore: false,
    };
    assert_eq!(store.deployment("d-ABC123").await.unwrap(), None);
    store
        .commit(Commit {
            deployments: vec![d.clone()],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(store.deployment("d-ABC123").await.unwrap(), Some(d.clone()));
    // Recording the same reference again (a replay) is fine; pointing it elsewhere is not.
    store
        .commit(Commit {
            deployments: vec![d.clone()],
            ..Commit::default()
        })
        .await
        .unwrap();
    // A restore that adopted the deployment (it already ran the release) marks it so.
    let restoring = DeploymentRef {
        restore: true,
        ..d.clone()
    };
    store
        .commit(Commit {
            deployments: vec![restoring.clone()],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(store.deployment("d-ABC123").await.unwrap(), Some(restoring));
    let elsewhere = DeploymentRef {
        environment: "prod".into(),
        ..d
    };
    let err = store
        .commit(Commit {
            deployments: vec![elsewhere],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

pub async fn pipeline_versions_increase_one_at_a_time<S: ReleaseStore>(store: &S) {
    assert_eq!(store.pipeline().await.unwrap(), None);
    let p = |version: u64, source: &str| StoredPipeline {
        version,
        source: source.into(),
        applied_at: Timestamp(T0.0 + version),
        applied_by: "ana".into(),
    };
    store.put_pipeline(p(1, "first")).await.unwrap();
    let err = store.put_pipeline(p(1, "racing")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    store.put_pipeline(p(2, "second")).await.unwrap();
    assert_eq!(store.pipeline().await.unwrap(), Some(p(2, "second")));
}

pub async fn releases_of_a_service_come_newest_first<S: ReleaseStore>(store: &S) {
    for n in [3, 1, 2] {
        store
            .commit(Commit {
                releases: vec![Versioned {
                    item: release("api", n),
                    version: 0,
                }],
                ..Commit::default()
            })
            .await
            .unwrap();
    }
    store
        .commit(Commit {
            releases: vec![Versioned {
                item: release("web", 4),
                version: 0,
            }],
            ..Commit::default()
        })
        .await
        .unwrap();
    let got: Vec<String> = store
        .releases_of_service("api", 2)
        .await
        .unwrap()
        .iter()
        .map(shiplane_core::release::Release::label)
        .collect();
    assert_eq!(got, ["v3", "v2"]);
}

/// Write skew: an approval decided while the lane was busy writes the release but not the
/// lane; if the lane moved meanwhile (its in-flight release ended), the decision rested on
/// a stale read and must not land.
pub async fn a_decision_conflicts_when_an_item_it_read_but_left_unchanged_moved<S: ReleaseStore>(
    store: &S,
) {
    let busy = release("api", 1);
    arrive(store, &busy, "dev", Approval::None, Timestamp(1)).await;
    let waiting = release("api", 2);
    arrive(store, &waiting, "dev", Approval::Manual, Timestamp(2)).await;
    // The approval is decided against the busy lane: the release moves, the lane does not.
    let loaded = LoadedLane::load(store, "api", "dev", std::slice::from_ref(&waiting.id))
        .await
        .unwrap_or_else(|e| panic!("load: {e}"));
    let approve = Event::Approved {
        actor: "ana".into(),
    };
    let d = apply(
        &loaded.view,
        &waiting.id,
        &approve,
        &policy(Approval::Manual),
        Timestamp(3),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!d.lane_changed && d.changed.contains(&waiting.id));
    let commit = loaded.commit_for(&d);
    assert!(
        commit
            .checks
            .iter()
            .any(|c| matches!(c.item, crate::store::ItemKey::Lane(_))),
        "the unchanged lane is condition-checked"
    );
    // Meanwhile the in-flight release fails and frees the lane.
    let other = LoadedLane::load(store, "api", "dev", &[])
        .await
        .unwrap_or_else(|e| panic!("load: {e}"));
    let failed = Event::DeploymentFailed { reason: "x".into() };
    let d2 = apply(
        &other.view,
        &busy.id,
        &failed,
        &policy(Approval::Manual),
        Timestamp(4),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    store
        .commit(other.commit_for(&d2))
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
    match store.commit(commit).await {
        // The lane and the in-flight release both moved; either check stops the commit.
        Err(StoreError::Conflict { what }) => assert!(
            what.contains("lane api/dev") || what.contains(busy.id.as_str()),
            "{what}"
        ),
        other => panic!("expected a conflict on the lane, got {other:?}"),
    }
    let stored = store
        .release(&waiting.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        stored.and_then(|r| r.item.state_in("dev")),
        Some(StageState::AwaitingApproval),
        "nothing of the stale decision was written"
    );
}

/// Write skew on a gate: a decision about prod that read dev's lane (never written, then
/// written) lands only while dev's lane is still at the version read.
pub async fn a_decision_conflicts_when_a_gate_lane_it_read_moved<S: ReleaseStore>(store: &S) {
    let gate = vec![LaneKey::new("api", "dev")];
    let decide = |r: &Release, mut loaded: LoadedLane| {
        loaded.add_new(r.clone());
        let d = apply(
            &loaded.view,
            &r.id,
            &Event::Arrived,
            &policy(Approval::None),
            T0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        loaded.commit_for(&d)
    };
    let load_prod = || async {
        LoadedLane::load_from(
            store,
            "api",
            "prod",
            &[],
            &gate,
            &mut super::Snapshot::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("load: {e}"))
    };
    // Dev never written and still not: the check of its absence passes.
    let first = release("api", 1);
    let commit = decide(&first, load_prod().await);
    assert!(
        commit
            .checks
            .iter()
            .any(|c| c.version == 0
                && c.item == crate::store::ItemKey::Lane(LaneKey::new("api", "dev"))),
        "{:?}",
        commit.checks
    );
    store
        .commit(commit)
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
    // Dev is written between a decision's read and its commit: whether it was absent or
    // at a version when read, the decision conflicts and writes nothing.
    for n in [2, 3] {
        let r = release("api", n);
        let commit = decide(&r, load_prod().await);
        arrive(store, &release("api", 10 + n), "dev", Approval::None, T0).await;
        match store.commit(commit).await {
            Err(StoreError::Conflict { what }) => assert!(what.contains("lane api/dev"), "{what}"),
            other => panic!("expected a conflict on lane api/dev, got {other:?}"),
        }
        assert_eq!(
            store.release(&r.id).await.unwrap_or_else(|e| panic!("{e}")),
            None,
            "nothing of the stale decision was written"
        );
    }
}

/// DynamoDB refuses items over 400 KB; a 1,000-service pipeline is 570 KB of text.
pub async fn a_pipeline_larger_than_one_item_round_trips<S: ReleaseStore>(store: &S) {
    let small = crate::pipeline::example_pipeline(2);
    let large = format!(
        "# ünïcode on a cut: {}\n{}",
        "é".repeat(200_000),
        crate::pipeline::example_pipeline(1000)
    );
    assert!(large.len() > 900_000);
    for (version, source) in [(1, &small), (2, &large), (3, &small)] {
        let stored = StoredPipeline {
            version,
            source: source.clone(),
            applied_at: Timestamp(version),
            applied_by: "ana".into(),
        };
        store
            .put_pipeline(stored.clone())
            .await
            .unwrap_or_else(|e| panic!("version {version}: {e}"));
        let current = store.pipeline().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(current, Some(stored), "version {version} reads back whole");
    }
}

/// One read answers a claim, the current pipeline, lanes (one never written empty, at
/// version 0) and the releases that exist, each at its stored version.
pub async fn one_read_returns_claim_pipeline_lanes_and_releases<S: ReleaseStore>(store: &S) {
    let (r1, r2, missing) = (release("api", 1), release("api", 2), release("api", 3));
    arrive(store, &r1, "dev", Approval::None, T0).await;
    arrive(store, &r2, "dev", Approval::None, T0).await; // queued behind r1
    store
        .commit(Commit {
            claim: Some(Claim {
                key: "push#team/api#sha256:1".into(),
                value: r1.id.to_string(),
                at: T0,
                expires: Timestamp(T0.0 + 1_000),
            }),
            ..Commit::default()
        })
        .await
        .unwrap();
    let stored = StoredPipeline {
        version: 1,
        source: "[pipeline]\n".into(),
        applied_at: T0,
        applied_by: "ana".into(),
    };
    store.put_pipeline(stored.clone()).await.unwrap();

    let reads = Reads {
        claim: Some("push#team/api#sha256:1".into()),
        pipeline: true,
        lanes: vec![LaneKey::new("api", "dev"), LaneKey::new("api", "prod")],
        releases: vec![r1.id.clone(), r2.id.clone(), missing.id.clone()],
    };
    let got = store.read(&reads, T0).await.unwrap();
    assert_eq!(
        got.claim,
        Some(ClaimRecord {
            value: r1.id.to_string(),
            settled: Vec::new()
        })
    );
    assert_eq!(got.pipeline.as_deref(), Some(&stored));
    let dev = &got.lanes[&LaneKey::new("api", "dev")];
    let lane = store.lane("api", "dev").await.unwrap();
    assert_eq!(dev, &lane, "the lane as a single read returns it");
    assert_eq!(dev.item.in_flight.as_ref(), Some(&r1.id));
    assert_eq!(dev.item.queued.as_ref(), Some(&r2.id));
    let prod = &got.lanes[&LaneKey::new("api", "prod")];
    assert_eq!((prod.version, prod.item.in_flight.clone()), (0, None));
    assert_eq!(got.releases.len(), 2, "the release never written is absent");
    assert_eq!(
        got.releases[&r1.id],
        store.release(&r1.id).await.unwrap().unwrap()
    );
    assert_eq!(got.releases[&r2.id].version, 1);

    // A newer pipeline is what the next read returns; an expired claim is no claim.
    let newer = StoredPipeline {
        version: 2,
        source: "[pipeline]\n# v2\n".into(),
        ..stored
    };
    store.put_pipeline(newer.clone()).await.unwrap();
    let later = store.read(&reads, Timestamp(T0.0 + 2_000)).await.unwrap();
    assert_eq!(later.pipeline.as_deref(), Some(&newer));
    assert_eq!(later.claim, None);

    // Nothing asked, nothing returned.
    let none = store.read(&Reads::default(), T0).await.unwrap();
    assert!(none.claim.is_none() && none.pipeline.is_none() && none.lanes.is_empty());
}

/// Settling records a tag on a held claim once; a claim that is missing or expired is left
/// as it is, and a new claim of the key starts unsettled.
pub async fn a_settled_claim_records_each_tag_once_and_only_while_held<S: ReleaseStore>(store: &S) {
    let key = "push#team/api#sha256:2";
    let read = |at: u64| {
        let reads = Reads {
            claim: Some(key.into()),
            ..Reads::default()
        };
        async move {
            store
                .read(&reads, Timestamp(T0.0 + at))
                .await
                .unwrap()
                .claim
        }
    };
    store.settle_claim(key, "v1", T0).await.unwrap();
    assert_eq!(read(0).await, None, "settling no claim creates none");
    let claim = |at: u64| Claim {
        key: key.into(),
        value: "r1".into(),
        at: Timestamp(T0.0 + at),
        expires: Timestamp(T0.0 + at + 1_000),
    };
    store
        .commit(Commit {
            claim: Some(claim(0)),
            ..Commit::default()
        })
        .await
        .unwrap();
    for tag in ["v1", "v1", "stable"] {
        store.settle_claim(key, tag, T0).await.unwrap();
    }
    let mut settled = read(0).await.unwrap().settled;
    settled.sort();
    assert_eq!(settled, vec!["stable".to_string(), "v1".to_string()]);
    // Expired: settling changes nothing, and a new claim of the key starts afresh.
    store
        .settle_claim(key, "late", Timestamp(T0.0 + 5_000))
        .await
        .unwrap();
    store
        .commit(Commit {
            claim: Some(claim(5_000)),
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(
        read(5_000).await,
        Some(ClaimRecord {
            value: "r1".into(),
            settled: Vec::new()
        })
    );
}

/// A commit that settles a delivery does it in the same write: on the claim the commit
/// writes (written settled) or on one written before; a claim that is gone or expired is
/// left alone, and the rest of the commit is written all the same.
pub async fn a_commit_settles_a_delivery_on_its_claim_or_leaves_a_gone_one_alone<
    S: ReleaseStore,
>(
    store: &S,
) {
    let key = "push#team/api#sha256:3";
    let settle = |key: &str, tag: &str, at: u64| Settle {
        key: key.into(),
        tag: tag.into(),
        at: Timestamp(T0.0 + at),
    };
    let new = |n: u64| {
        vec![Versioned {
            item: release("api", n),
            version: 0,
        }]
    };
    // A new release `n`, written with `settle`.
    let settling = |n: u64, settle: Settle| async move {
        store
            .commit(Commit {
                releases: new(n),
                settle: Some(settle),
                ..Commit::default()
            })
            .await
            .unwrap();
    };
    let settled = |key: &'static str| async move {
        let reads = Reads {
            claim: Some(key.into()),
            ..Reads::default()
        };
        store.read(&reads, T0).await.unwrap().claim.map(|c| {
            let mut tags = c.settled;
            tags.sort();
            tags
        })
    };
    // Written with its claim: the claim is written settled.
    store
        .commit(Commit {
            releases: new(1),
            claim: Some(Claim {
                key: key.into(),
                value: "r1".into(),
                at: T0,
                expires: Timestamp(T0.0 + 1_000),
            }),
            settle: Some(settle(key, "v1", 0)),
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(settled(key).await, Some(vec!["v1".to_string()]));
    // A claim written before: settled with the commit.
    settling(2, settle(key, "stable", 0)).await;
    assert_eq!(
        settled(key).await,
        Some(vec!["stable".to_string(), "v1".to_string()])
    );
    // No claim, or an expired one: nothing settled, and the commit is written.
    let gone = "push#team/api#sha256:never";
    settling(3, settle(gone, "v3", 0)).await;
    settling(4, settle(key, "late", 5_000)).await;
    assert_eq!(settled(gone).await, None, "settling no claim creates none");
    assert_eq!(
        settled(key).await,
        Some(vec!["stable".to_string(), "v1".to_string()]),
        "an expired claim is not settled"
    );
    for n in 1..=4 {
        let id = release("api", n).id;
        assert!(
            store.release(&id).await.unwrap().is_some(),
            "release {n} written"
        );
    }
}
