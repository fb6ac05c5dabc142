//! Image pushes: a push becomes one release whose first stage deploys, replays and new
//! tags change nothing more, and order comes from the push, also within one second.

use super::*;
use crate::aws::{FakePushClock, PushClock};

#[tokio::test]
async fn a_push_becomes_a_release_whose_first_stage_deploys() {
    let w = World::new().await;
    let out = w
        .engine()
        .on_push(&push("shiplane/api", 1, "v1.0.0"), T0)
        .await
        .unwrap();
    let PushOutcome::Created {
        release,
        environment,
        state,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (environment.as_str(), state),
        ("dev", Some(StageState::Deploying))
    );
    let r = w.store.release(&release).await.unwrap().unwrap().item;
    assert_eq!(r.registry, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
    assert_eq!(r.stages["dev"].deployment_id.as_deref(), Some("d-1"));
    assert_eq!(w.deploys(), [format!("{release}@dev")]);
    assert_eq!(
        w.deployer.fresh(),
        [format!("{release}@dev")],
        "the first deploy of a release minted by the same pass looks for no earlier revision"
    );
    let dep = w.store.deployment("d-1").await.unwrap().unwrap();
    assert_eq!(
        (dep.release, dep.environment.as_str()),
        (release.clone(), "dev")
    );
    assert_eq!(
        w.notifier.kinds(),
        ["release_created", "stage_started", "deployment_created"]
    );
    let history = w.store.history_of_release(&release).await.unwrap();
    assert_eq!(
        history.iter().map(|t| t.cause.as_str()).collect::<Vec<_>>(),
        ["arrived", "deployment_created"]
    );
}

#[tokio::test]
async fn the_same_push_three_times_makes_one_release_and_one_deployment() {
    let w = World::new().await;
    let p = push("shiplane/api", 1, "v1.0.0");
    let id = created(w.engine().on_push(&p, T0).await.unwrap());
    for _ in 0..2 {
        let again = w.engine().on_push(&p, T0).await.unwrap();
        assert_eq!(
            again,
            PushOutcome::Replayed {
                release: id.clone(),
                tag_added: false
            }
        );
    }
    assert_eq!(w.deploys().len(), 1);
    assert_eq!(
        w.store.releases_of_service("api", 10).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn concurrent_deliveries_make_one_release_and_one_deployment() {
    let w = World::new().await;
    let p = push("shiplane/api", 1, "v1.0.0");
    let e = w.engine();
    let (a, b, c) = tokio::join!(e.on_push(&p, T0), e.on_push(&p, T0), e.on_push(&p, T0));
    let outcomes = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, PushOutcome::Created { .. }))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        w.store.releases_of_service("api", 10).await.unwrap().len(),
        1
    );
    assert_eq!(w.deploys().len(), 1);
}

#[tokio::test]
async fn the_same_digest_under_a_new_tag_adds_the_tag() {
    let w = World::new().await;
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    let out = w
        .engine()
        .on_push(&push("shiplane/api", 1, "v1.0.0-hotfix"), T0)
        .await
        .unwrap();
    assert!(
        matches!(out, PushOutcome::Ignored(_)),
        "pre-release tags are excluded by the policy"
    );
    let out = w
        .engine()
        .on_push(&push("shiplane/api", 1, "1.0.0"), T0)
        .await
        .unwrap();
    assert_eq!(
        out,
        PushOutcome::Replayed {
            release: id.clone(),
            tag_added: true
        }
    );
    assert_eq!(
        w.store.release(&id).await.unwrap().unwrap().item.tags,
        ["v1.0.0", "1.0.0"]
    );
    assert_eq!(w.deploys().len(), 1);
}

#[tokio::test]
async fn unknown_repositories_and_rejected_tags_change_nothing() {
    let w = World::new().await;
    for p in [
        push("someone/else", 1, "v1.0.0"),
        push("shiplane/api", 1, "latest"),
        push("shiplane/api", 1, "v2.0.0-rc.1"),
    ] {
        let out = w.engine().on_push(&p, T0).await.unwrap();
        assert!(matches!(out, PushOutcome::Ignored(_)), "{out:?}");
    }
    assert!(
        w.store
            .releases_of_service("api", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(w.deployer.calls().is_empty());
    assert!(w.notifier.kinds().is_empty());
}

#[tokio::test]
async fn pushes_while_in_flight_queue_and_supersede_and_only_the_newest_deploys_next() {
    let w = World::new().await;
    let e = w.engine();
    let r1 = w.pushed("shiplane/api", 1, "v1.0.1").await;
    let r2 = w.pushed("shiplane/api", 2, "v1.0.2").await;
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Queued));
    let r3 = w.pushed("shiplane/api", 3, "v1.0.3").await;
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Superseded));
    assert_eq!(w.state(&r3, "dev").await, Some(StageState::Queued));
    assert_eq!(w.deploys(), [format!("{r1}@dev")]);

    let pipeline = e.pipeline().await.unwrap();
    e.on_event(
        &pipeline,
        "api",
        "dev",
        &r1,
        Event::DeploymentFailed {
            reason: "health".into(),
        },
        T0,
    )
    .await
    .unwrap();
    assert_eq!(w.state(&r3, "dev").await, Some(StageState::Deploying));
    assert_eq!(
        w.deploys(),
        [format!("{r1}@dev"), format!("{r3}@dev")],
        "the superseded release never deploys"
    );
    let kinds = w.notifier.kinds();
    for kind in ["queued", "superseded", "failed"] {
        assert!(kinds.contains(&kind.to_string()), "{kind} in {kinds:?}");
    }
}

// Defect 3: order comes from the push, not from processing.
#[tokio::test]
async fn an_older_push_delivered_late_is_superseded_on_arrival_and_never_deploys() {
    let w = World::new().await;
    let e = w.engine();
    let newer = w.pushed("shiplane/api", 2, "v1.0.2").await; // pushed at T0 + 2 s
    let r3 = w.pushed("shiplane/api", 3, "v1.0.3").await; // queued behind it
    // The push of v1.0.1 (T0 + 1 s) is retried a minute late.
    let older = created(
        e.on_push(
            &push("shiplane/api", 1, "v1.0.1"),
            T0.after(Duration::from_secs(60)),
        )
        .await
        .unwrap(),
    );
    assert_eq!(w.state(&older, "dev").await, Some(StageState::Superseded));
    assert_eq!(
        w.state(&r3, "dev").await,
        Some(StageState::Queued),
        "the newer queued release keeps its place"
    );
    let r = w.store.release(&older).await.unwrap().unwrap().item;
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("before a newer release")
    );
    assert!(
        older < newer,
        "ids sort by push time, whatever the processing order"
    );
    // Even once the lane is free, the older release does not deploy.
    let pipeline = e.pipeline().await.unwrap();
    let failed = Event::DeploymentFailed { reason: "x".into() };
    e.on_event(&pipeline, "api", "dev", &newer, failed, T0)
        .await
        .unwrap();
    assert_eq!(w.deploys(), [format!("{newer}@dev"), format!("{r3}@dev")]);
}

// Defect 9: a tag added on replay is a transition with its history item.
#[tokio::test]
async fn a_new_tag_for_a_known_digest_is_recorded_in_history_and_notified() {
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    e.on_push(&push("shiplane/api", 1, "1.0.0"), T0)
        .await
        .unwrap();
    e.on_push(&push("shiplane/api", 1, "1.0.0"), T0)
        .await
        .unwrap();
    let history = w.store.history_of_release(&id).await.unwrap();
    let tagged: Vec<&Transition> = history
        .iter()
        .filter(|t| t.cause == Cause::TagAdded)
        .collect();
    assert_eq!(tagged.len(), 1, "{:?}", history_causes(&history));
    assert_eq!(tagged[0].detail.as_deref(), Some("1.0.0"));
    assert!(w.notifier.kinds().contains(&"tag_added".to_string()));
}

#[tokio::test]
async fn tags_stay_bounded_however_often_a_digest_is_retagged() {
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    for n in 1..40 {
        e.on_push(&push("shiplane/api", 1, &format!("1.0.{n}")), T0)
            .await
            .unwrap();
    }
    let tags = w.store.release(&id).await.unwrap().unwrap().item.tags;
    assert_eq!(tags.len(), crate::release::MAX_TAGS);
    assert_eq!(tags[0], "v1.0.0", "the label stays");
    assert_eq!(tags.last().map(String::as_str), Some("1.0.39"));
}

// DESIGN invariant 8: order comes from the source, also within one second.
/// Two pushes EventBridge stamps with the same second, T0 + 5 s: `older` pushed at .200
/// and `newer` at .700 by ECR's clock. Their digests order the other way round, so the
/// digest alone would pick the older.
fn same_second() -> (ImagePush, ImagePush, FakePushClock) {
    let second = Timestamp(T0.0 + 5_000);
    let older = ImagePush {
        pushed_at: second,
        ..push("shiplane/api", 9, "v1.0.1")
    };
    let newer = ImagePush {
        pushed_at: second,
        ..push("shiplane/api", 2, "v1.0.2")
    };
    assert!(older.digest > newer.digest);
    let clock = FakePushClock::with([
        (older.digest.clone(), Timestamp(second.0 + 200)),
        (newer.digest.clone(), Timestamp(second.0 + 700)),
    ]);
    (older, newer, clock)
}

async fn push_with(w: &World, p: &ImagePush, clock: &impl PushClock) -> ReleaseId {
    created(w.engine().on_push_with(p, clock, T0).await.unwrap())
}

#[tokio::test]
async fn the_newer_of_two_pushes_in_one_second_deploys_though_the_older_is_processed_last() {
    let w = World::new().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    let busy = w.pushed("shiplane/api", 1, "v1.0.0").await;
    let (older, newer, clock) = same_second();
    let newer_id = push_with(&w, &newer, &clock).await;
    assert_eq!(w.state(&newer_id, "dev").await, Some(StageState::Queued));
    assert!(
        clock.asked().is_empty(),
        "a push alone in its second asks ECR nothing"
    );
    let older_id = push_with(&w, &older, &clock).await;
    let r = w.store.release(&older_id).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Superseded));
    assert_eq!(r.pushed_at, Timestamp(T0.0 + 5_200), "placed by ECR's time");
    assert_eq!(
        clock.asked(),
        [vec![older.digest.clone(), newer.digest.clone()]],
        "one call, for both images of the second"
    );
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.queued, Some(newer_id.clone()));
    assert_eq!(lane.newest_digest, Some(newer.digest.clone()));
    // The lane frees: the newer deploys, the older never does.
    let failed = Event::DeploymentFailed { reason: "x".into() };
    e.on_event(&pipeline, "api", "dev", &busy, failed, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&newer_id, "dev").await, Some(StageState::Deploying));
    assert_eq!(
        w.deploys(),
        [format!("{busy}@dev"), format!("{newer_id}@dev")]
    );
}

/// ECR refusing for good (no permission): pushes in one second are ordered by digest,
/// the same whichever is processed first.
#[tokio::test]
async fn without_ecrs_times_pushes_in_one_second_end_the_same_whichever_is_processed_first() {
    let mut winners = Vec::new();
    for older_first in [true, false] {
        let w = World::new().await;
        w.pushed("shiplane/api", 1, "v1.0.0").await;
        let (older, newer, clock) = same_second();
        *clock.failure.lock().unwrap() = Some(DeployError {
            message: "ECR DescribeImages: AccessDeniedException".into(),
            retryable: false,
        });
        let (a, b) = if older_first {
            (&older, &newer)
        } else {
            (&newer, &older)
        };
        push_with(&w, a, &clock).await;
        push_with(&w, b, &clock).await;
        let lane = w.store.lane("api", "dev").await.unwrap().item;
        let queued = w.store.release(&lane.queued.unwrap()).await.unwrap();
        winners.push(queued.unwrap().item.digest);
    }
    assert_eq!(
        winners[0], winners[1],
        "the same release waits whichever push was processed first"
    );
}

/// ECR throttled past the SDK's retries: the push fails, retryable, and commits
/// nothing; delivered again once ECR answers, it is placed by ECR's times (found by
/// the simulation, seed 229: the older push, placed by digest, superseded the newer).
#[tokio::test]
async fn a_push_whose_ecr_times_cannot_be_read_is_tried_again_not_placed_by_digest() {
    let w = World::new().await;
    w.pushed("shiplane/api", 1, "v1.0.0").await;
    let (older, newer, clock) = same_second();
    let newer_id = push_with(&w, &newer, &clock).await;
    *clock.failure.lock().unwrap() = Some(DeployError {
        message: "ECR DescribeImages: ThrottlingException".into(),
        retryable: true,
    });
    let err = w
        .engine()
        .on_push_with(&older, &clock, T0)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.queued, Some(newer_id.clone()), "nothing committed");
    *clock.failure.lock().unwrap() = None;
    let older_id = push_with(&w, &older, &clock).await;
    assert_eq!(
        w.state(&older_id, "dev").await,
        Some(StageState::Superseded)
    );
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!(lane.queued, Some(newer_id));
}
