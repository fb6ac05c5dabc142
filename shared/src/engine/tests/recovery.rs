//! Recovery: work a crash interrupted is finished once by the next event, a replay or
//! the reconciler; one executor per action; stops whose outcome is unknown stay owed.

use super::doubles::{AtDeploy, Meanwhile};
use super::*;
use tokio::sync::Notify;

#[tokio::test]
async fn a_replay_finishes_work_a_crash_interrupted() {
    let w = World::new().await;
    // Simulate a crash after the arrival was committed but before the deploy ran: the same
    // decision committed by hand, with the claim, and no action executed.
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let p = push("shiplane/api", 1, "v1.0.0");
    let mut r = Release::new(
        ReleaseId::new(T0),
        "api",
        &p.repository,
        p.digest.clone(),
        Some(&p.tag),
        T0,
    );
    r.registry = p.registry.clone();
    let mut loaded = LoadedLane::load(&w.store, "api", "dev", &[]).await.unwrap();
    loaded.add_new(r.clone());
    let (svc, stage) = stage_of(&pipeline, "api", "dev").unwrap();
    let d = apply(
        &loaded.view,
        &r.id,
        &Event::Arrived,
        &Policy::for_stage(svc, stage),
        T0,
    )
    .unwrap();
    let mut commit = loaded.commit_for(&d);
    commit.claim = Some(Claim {
        key: format!("push#{}#{}", p.repository, p.digest),
        value: r.id.to_string(),
        at: T0,
        expires: T0.after(PUSH_CLAIM_TTL),
    });
    w.store.commit(commit).await.unwrap();
    assert!(w.deploys().is_empty());

    // Lambda delivers the push again once the dead invocation's lease on the deployment
    // has run out (before, the deployment is its own: see `one_executor_per_action`).
    let out = e.on_push(&p, T0.after(LEASE)).await.unwrap();
    assert_eq!(
        out,
        PushOutcome::Replayed {
            release: r.id.clone(),
            tag_added: false
        }
    );
    assert_eq!(w.deploys(), [format!("{}@dev", r.id)]);
    assert!(
        w.deployer.fresh().is_empty(),
        "a deploy a replay finishes may follow an earlier attempt's revision"
    );
    let stored = w.store.release(&r.id).await.unwrap().unwrap().item;
    assert_eq!(stored.stages["dev"].deployment_id.as_deref(), Some("d-1"));
    // And once finished, another replay does nothing more.
    e.on_push(&p, T0).await.unwrap();
    assert_eq!(w.deploys().len(), 1);
}

// Defect 1: recovery looks at the whole lane, not only the event's own release.
#[tokio::test]
async fn a_queued_release_whose_deploy_died_with_the_function_is_started_by_the_next_event() {
    let w = World::new().await;
    let e = w.engine();
    let r1 = w.pushed("shiplane/api", 1, "v1.0.1").await;
    let r2 = w.pushed("shiplane/api", 2, "v1.0.2").await;
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Queued));
    // r1's deployment fails; the commit dequeues r2, and the function dies before deploying it.
    let failed = Event::DeploymentFailed {
        reason: "health".into(),
    };
    commit_only(&w, "api", "dev", &r1, failed.clone()).await;
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{r1}@dev")]);
    // EventBridge delivers r1's failure again (after the dead invocation's lease): r1 has
    // nothing left to do, but the lane does.
    let pipeline = e.pipeline().await.unwrap();
    let later = T0.after(LEASE);
    let report = e
        .on_event(&pipeline, "api", "dev", &r1, failed.clone(), later)
        .await
        .unwrap();
    assert_eq!(report.refused.len(), 1, "r1's failure is already recorded");
    assert_eq!(w.deploys(), [format!("{r1}@dev"), format!("{r2}@dev")]);
    let stage = w.store.release(&r2).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!(stage.deployment_id.as_deref(), Some("d-2"));
    // Exactly once: more deliveries deploy nothing more.
    e.on_event(&pipeline, "api", "dev", &r1, failed, later)
        .await
        .unwrap();
    e.recover(&pipeline, "api", "dev", T0).await.unwrap();
    assert_eq!(w.deploys().len(), 2);
}

#[tokio::test]
async fn a_promotion_committed_but_never_started_is_finished_once() {
    let w = World::new().await;
    let e = w.engine();
    // A data-job release: registered in dev, whose outcome's commit succeeds the stage and
    // owes the promotion to prod; the function dies before promoting.
    let p = push("shiplane/etl", 1, "20261116-abc1234");
    commit_arrival(&w, &p).await;
    let id = release_of(&w, &p).await;
    commit_only(&w, "etl", "dev", &id, Event::DeploymentSucceeded).await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
    assert_eq!(w.state(&id, "prod").await, None, "the promotion never ran");
    // Any later event on the dev lane (here a replay of the push) finishes it.
    e.on_push(&p, T0).await.unwrap();
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
    e.on_push(&p, T0).await.unwrap();
    let history = w.store.history_of_release(&id).await.unwrap();
    assert_eq!(
        history.iter().filter(|t| t.environment == "prod").count(),
        1,
        "promoted once: {:?}",
        history_causes(&history)
    );
}

// Issue #22, defect 5: one executor per action. While the invocation that committed a
// deployment is still inside `deploy`, a reconciler pass and a duplicate delivery find
// the action owned (its lease) and run nothing (the take-over after the lease is the
// machine's `a_dead_owners_action_is_taken_over_once_after_its_lease`).

/// At the first deploy: tells the test it is inside `deploy`, and waits for its signal.
#[derive(Default)]
struct Held {
    entered: Notify,
    gate: Notify,
    first: std::sync::atomic::AtomicBool,
}

impl AtDeploy for Held {
    async fn at_deploy(&self, _: &World) {
        if !self.first.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.gate.notified().await;
        }
    }
}

#[tokio::test]
async fn a_reconciler_pass_or_a_duplicate_delivery_meanwhile_runs_nothing() {
    let w = World::new().await;
    let held = Meanwhile::new(&w, Held::default());
    let e = held.engine();
    let p = push("shiplane/api", 1, "v1.0.0");
    let soon = T0.after(Duration::from_secs(10));
    let meanwhile = async {
        held.at.entered.notified().await;
        let pipeline = e.pipeline().await.unwrap();
        e.recover(&pipeline, "api", "dev", soon).await.unwrap();
        e.on_push(&p, soon).await.unwrap();
        assert_eq!(held.deploys(), 0, "only the owner is inside deploy");
        held.at.gate.notify_one();
    };
    let (out, ()) = tokio::join!(e.on_push(&p, T0), meanwhile);
    let PushOutcome::Created { release, .. } = out.unwrap() else {
        panic!("the first delivery makes the release");
    };
    assert_eq!(held.deploys(), 1);
    let stage = w
        .store
        .release(&release)
        .await
        .unwrap()
        .unwrap()
        .item
        .stages["dev"]
        .clone();
    assert!(stage.deployment_id.is_some());
}

/// A stop whose deployment's status cannot be read afterwards (was it too late?) records
/// nothing: the stop stays owed and the next pass stops and asks again; a stop that came
/// too late restores the last known good (found by the simulation, seed 671).
#[tokio::test]
async fn a_stop_whose_outcome_is_unknown_stays_owed_and_a_stop_too_late_restores() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let (v1, v2, d2) = w.good_then_deploying().await;
    // The deployment succeeded, but its event is lost; the alarm comes first.
    w.deployer.set_status(&d2, DeploymentStatus::Succeeded);
    *w.deployer.status_failures.lock().unwrap() = 1;
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    e.on_event(&pipeline, "api", "dev", &v2, alarm, T0)
        .await
        .unwrap();
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.stopping, Some(v2.clone()), "the stop is still owed");
    assert_eq!(lane.current, Some(v1.clone()));
    // The next pass stops again, learns it came too late, and restores v1.
    e.recover(&pipeline, "api", "dev", T0).await.unwrap();
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.stopping, None);
    assert_eq!(lane.in_flight, Some(v1.clone()), "v1 is being restored");
    assert_eq!(w.state(&v1, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys().len(), 3, "v1, v2, then v1 again");
}

/// A stop that AWS throttled past its retries is tried again by the next pass, not
/// recorded as failed while the deployment goes on to serve (found by the simulation,
/// seed 1152 of the long campaign).
#[tokio::test]
async fn a_throttled_stop_is_tried_again_by_the_next_pass() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let v1 = w.pushed("shiplane/api", 1, "v1.0.0").await;
    *w.deployer.stop_failures.lock().unwrap() = 1;
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    e.on_event(&pipeline, "api", "dev", &v1, alarm, T0)
        .await
        .unwrap();
    let stops = || {
        w.deployer
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Stop { .. }))
            .count()
    };
    assert_eq!(stops(), 1);
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.stopping, Some(v1.clone()), "still owed");
    let history = w.store.history_of_release(&v1).await.unwrap();
    assert!(
        !history_causes(&history).contains(&"stop_failed"),
        "{history:?}"
    );
    e.recover(&pipeline, "api", "dev", T0).await.unwrap();
    assert_eq!(stops(), 2);
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.stopping, None, "recorded");
}

/// A release this pass minted but did not start (it queued behind one whose invocation
/// died) and that a later decision of the same pass starts is not fresh: between the two
/// decisions another invocation may have run its action (simulation seed 2440: a second
/// revision registered for it), so its deploy looks for what an earlier run registered.
#[tokio::test]
async fn a_release_minted_then_started_by_a_later_decision_of_the_pass_is_not_fresh() {
    let w = World::new().await;
    let first = push("shiplane/etl", 1, "20261116-abc1234");
    commit_arrival(&w, &first).await;
    let a = release_of(&w, &first).await;
    // The dead invocation's action is taken over by the next push's pass, and succeeds
    // at once (data jobs): the lane is free, and the new release starts.
    w.deployer
        .deploy_answers
        .lock()
        .unwrap()
        .push(Ok(DeployOutcome::Registered {
            task_definitions: vec!["arn:aws:ecs:r:1:task-definition/etl-nightly:2".into()],
            triggers: crate::aws::TriggerMoves::default(),
        }));
    let second = push("shiplane/etl", 2, "20261116-abc1235");
    let b = created(w.engine().on_push(&second, T0.after(LEASE)).await.unwrap());
    assert_eq!(w.state(&a, "dev").await, Some(StageState::Succeeded));
    assert_eq!(w.deploys(), [format!("{a}@dev"), format!("{b}@dev")]);
    assert!(
        w.deployer.fresh().is_empty(),
        "{:?}: started by a decision after the one that minted it",
        w.deployer.fresh()
    );
}
