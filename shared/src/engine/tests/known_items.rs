//! Fewer round trips, the same guarantees: what a pass knows it reuses only while the
//! store agrees, and a push run to its end is answered again from its claim.

use super::doubles::{AtDeploy, Meanwhile};
use super::*;
use crate::release::LaneEvent;
use crate::store::{LaneKey, Reads, Snapshot};

fn claim_read(p: &ImagePush) -> Reads {
    Reads {
        claim: Some(claim_key(p)),
        ..Reads::default()
    }
}

#[tokio::test]
async fn a_push_run_to_its_end_settles_its_claim_and_its_replay_changes_nothing() {
    let w = World::new().await;
    let p = push("shiplane/api", 1, "v1.0.0");
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    let claim = w.store.read(&claim_read(&p), T0).await.unwrap().claim;
    assert_eq!(claim.map(|c| c.settled), Some(vec!["v1.0.0".to_string()]));
    let sent = w.notifier.kinds().len();
    let history = w.store.history_of_release(&id).await.unwrap().len();

    let again = w.engine().on_push(&p, T0).await.unwrap();
    assert_eq!(
        again,
        PushOutcome::Replayed {
            release: id.clone(),
            tag_added: false
        }
    );
    assert_eq!(w.deploys().len(), 1);
    assert_eq!(w.notifier.kinds().len(), sent, "nothing announced again");
    assert_eq!(
        w.store.history_of_release(&id).await.unwrap().len(),
        history
    );

    // A new tag of the same digest is not settled yet: it is added, then settled too.
    let retag = push("shiplane/api", 1, "1.0.0");
    let out = w.engine().on_push(&retag, T0).await.unwrap();
    assert_eq!(
        out,
        PushOutcome::Replayed {
            release: id,
            tag_added: true
        }
    );
    let mut settled = w
        .store
        .read(&claim_read(&p), T0)
        .await
        .unwrap()
        .claim
        .unwrap()
        .settled;
    settled.sort();
    assert_eq!(settled, ["1.0.0", "v1.0.0"]);
}

/// What happens, committed straight to the store, while [`Meanwhile`] deploys.
enum Happens {
    /// An operator pauses the lane: the pass's own copy of the lane is stale when the
    /// deployment's outcome is decided.
    Paused,
    /// The deployment's id is recorded for another release: the outcome's commit can
    /// never land.
    IdTaken,
}

impl AtDeploy for Happens {
    async fn at_deploy(&self, world: &World) {
        let store = &world.store;
        if let Happens::IdTaken = self {
            let taken = crate::store::Commit {
                deployments: vec![crate::store::DeploymentRef {
                    deployment_id: "d-1".into(),
                    release: ReleaseId::new(T0),
                    service: "api".into(),
                    environment: "dev".into(),
                    restore: false,
                }],
                ..crate::store::Commit::default()
            };
            store.commit(taken).await.unwrap();
            return;
        }
        let pipeline = world.engine().pipeline().await.unwrap();
        let (svc, stage) = stage_of(&pipeline, "api", "dev").unwrap();
        let loaded = LoadedLane::load(store, "api", "dev", &[]).await.unwrap();
        let pause = LaneEvent::Pause {
            actor: "ana".into(),
            reason: "incident".into(),
        };
        let policy = Policy::for_stage(svc, stage);
        let d = crate::release::apply_lane(&loaded.view, &pause, &policy, T0).unwrap();
        store.commit(loaded.commit_for(&d)).await.unwrap();
    }
}

#[tokio::test]
async fn an_item_another_writer_changed_after_the_pass_wrote_it_is_read_again() {
    let w = World::new().await;
    let deployer = Meanwhile::new(&w, Happens::Paused);
    let e = deployer.engine();
    let out = e
        .on_push(&push("shiplane/api", 1, "v1.0.0"), T0)
        .await
        .expect("the outcome is decided again on the lane as it now is");
    let id = created(out);
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.stages["dev"].deployment_id.as_deref(), Some("d-1"));
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert!(lane.paused.is_some(), "the operator's pause is kept");
    assert_eq!(lane.in_flight, Some(id));
}

#[tokio::test]
async fn what_a_pass_committed_is_announced_even_when_a_later_step_fails() {
    let w = World::new().await;
    let deployer = Meanwhile::new(&w, Happens::IdTaken);
    let e = deployer.engine();
    let p = push("shiplane/api", 1, "v1.0.0");
    let err = e.on_push(&p, T0).await.unwrap_err();
    assert!(err.to_string().contains("deployment d-1"), "{err}");
    assert_eq!(
        w.notifier.kinds(),
        ["release_created", "stage_started"],
        "the arrival was committed, so it is announced; the deployment was not"
    );
    let claim = w.store.read(&claim_read(&p), T0).await.unwrap().claim;
    assert_eq!(
        claim.map(|c| c.settled),
        Some(Vec::new()),
        "unfinished: a replay must finish it"
    );
}

#[tokio::test]
async fn work_owed_by_a_stale_copy_of_the_lane_is_decided_again_from_fresh_reads() {
    let w = World::new().await;
    let e = w.engine();
    let r1 = w.pushed("shiplane/api", 1, "v1.0.1").await;
    let r2 = w.pushed("shiplane/api", 2, "v1.0.2").await;
    // r1 fails and r2 is dequeued, but the function dies before deploying r2.
    let failed = Event::DeploymentFailed {
        reason: "health".into(),
    };
    commit_only(&w, "api", "dev", &r1, failed).await;
    let lanes = vec![LaneKey::new("api", "dev")];
    let reads = Reads {
        lanes,
        releases: vec![r1.clone(), r2.clone()],
        ..Reads::default()
    };
    let stale: Snapshot = w.store.read(&reads, T0).await.unwrap();
    // The lane is finished (r2 deploys, once the dead invocation's lease ran out) ...
    let pipeline = e.pipeline().await.unwrap();
    let later = T0.after(LEASE);
    e.recover(&pipeline, "api", "dev", later).await.unwrap();
    assert_eq!(w.deploys().len(), 2);
    // ... and a pass holding the copy from before must not deploy r2 a second time.
    let jobs = vec![run::Job::Apply(run::Work::recover("api", "dev"))];
    e.drain_from(&pipeline, jobs, later, stale, None)
        .await
        .unwrap();
    assert_eq!(w.deploys(), [format!("{r1}@dev"), format!("{r2}@dev")]);
}
