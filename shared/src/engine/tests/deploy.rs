//! Deploying: what a deploy answers (busy, failed, registered), the lane's queue, the
//! stored pipeline, notifications that must not hold a release up, and the outcomes the
//! reconciler reads.

use super::*;

#[tokio::test]
async fn a_busy_deployment_group_queues_the_release() {
    let w = World::new().await;
    w.busy_group();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Queued));
    let lane = w.store.lane("api", "dev").await.unwrap().item;
    assert_eq!((lane.in_flight, lane.queued), (None, Some(id.clone())));
    let history = w.store.history_of_release(&id).await.unwrap();
    assert!(
        history
            .last()
            .unwrap()
            .detail
            .as_deref()
            .unwrap()
            .contains("d-MANUAL")
    );
}

#[tokio::test]
async fn a_failed_deploy_fails_the_stage_with_the_reason() {
    let w = World::new().await;
    w.deployer
        .deploy_answers
        .lock()
        .unwrap()
        .push(Err(DeployError {
            message: "ECS RegisterTaskDefinition: ClientException: too big".into(),
            retryable: false,
        }));
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("too big")
    );
    assert_eq!(
        w.store.lane("api", "dev").await.unwrap().item.in_flight,
        None
    );
    assert!(w.notifier.kinds().contains(&"failed".to_string()));
}

#[tokio::test]
async fn data_jobs_register_and_succeed_at_once_then_promote() {
    let w = World::new().await;
    w.deployer
        .deploy_answers
        .lock()
        .unwrap()
        .push(Ok(DeployOutcome::Registered {
            task_definitions: vec!["arn:aws:ecs:r:1:task-definition/etl-nightly:2".into()],
            triggers: crate::aws::TriggerMoves {
                moved: vec![crate::aws::Move {
                    trigger: crate::aws::TriggerId::Schedule {
                        group: "jobs".into(),
                        name: "nightly".into(),
                    },
                    from: "arn:aws:ecs:r:1:task-definition/etl-nightly:1".into(),
                    to: "arn:aws:ecs:r:1:task-definition/etl-nightly:2".into(),
                }],
                ..Default::default()
            },
        }));
    let id = w.pushed("shiplane/etl", 1, "20261116-abc1234").await;
    assert_eq!(
        w.state(&id, "dev").await,
        Some(StageState::Succeeded),
        "no bake for data jobs"
    );
    let history = w.store.history_of_release(&id).await.unwrap();
    let success = history
        .iter()
        .find(|t| t.to == Some(StageState::Succeeded))
        .unwrap();
    assert_eq!(
        success.detail.as_deref(),
        Some(
            "registered etl-nightly:2; schedule jobs/nightly moved from etl-nightly:1 to etl-nightly:2"
        ),
        "what moved is in the release's history"
    );
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval),
        "promoted; prod asks a person"
    );
    assert_eq!(
        w.store
            .lane("etl", "dev")
            .await
            .unwrap()
            .item
            .last_known_good,
        Some(id)
    );
}

#[tokio::test]
async fn a_notification_failure_never_blocks_the_release() {
    let mut w = World::new().await;
    w.notifier = RecordingNotifier {
        fail: true,
        ..RecordingNotifier::default()
    };
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys().len(), 1);
}

#[tokio::test]
async fn a_topic_that_never_answers_holds_no_release_up() {
    let mut w = World::new().await;
    w.notifier = RecordingNotifier {
        hang: true,
        ..RecordingNotifier::default()
    };
    let started = std::time::Instant::now();
    let pass = tokio::time::timeout(
        NOTIFY_BUDGET + Duration::from_secs(5),
        w.engine().on_push(&push("shiplane/api", 1, "v1.0.0"), T0),
    )
    .await
    .expect("the pass waited on SNS past its budget");
    let id = created(pass.unwrap());
    assert!(started.elapsed() < NOTIFY_BUDGET + Duration::from_secs(1));
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys().len(), 1);
}

#[tokio::test]
async fn without_a_pipeline_the_error_says_how_to_store_one() {
    let w = World::empty();
    let err = w
        .engine()
        .on_push(&push("shiplane/api", 1, "v1.0.0"), T0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("shiplane config apply"), "{err}");
    assert!(!err.is_retryable());
}

#[test]
fn the_same_pipeline_text_is_parsed_once_and_other_text_again() {
    let stored = |source: &str| {
        Arc::new(StoredPipeline {
            version: 1,
            source: source.to_string(),
            applied_at: T0,
            applied_by: "ana".into(),
        })
    };
    // A cache of its own: the process-wide one is shared by every test running at once.
    let cache = std::sync::Mutex::new(None);
    let a = parse_in(&cache, &stored(PIPELINE)).unwrap();
    let b = parse_in(&cache, &stored(PIPELINE)).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "warm invocations reuse the parse");
    let other = PipelineFile::base()
        .stage("api", "dev", |s| s.bake(Duration::from_secs(20 * 60)))
        .toml();
    let c = parse_in(&cache, &stored(&other)).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(
        c.services["api"].stage("dev").unwrap().bake,
        Duration::from_secs(1200)
    );
    assert!(parse_in(&cache, &stored("not toml [")).is_err());
}

// Defect 4: a queued release on an idle lane always starts.
#[tokio::test]
async fn a_release_sent_back_by_a_busy_group_starts_once_the_retry_time_passed() {
    let w = World::new().await;
    let e = w.engine();
    w.busy_group();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Queued));
    let pipeline = e.pipeline().await.unwrap();
    // Too early: the group is still busy, nothing is tried again yet.
    e.reconcile(&pipeline, None, T0.after(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(w.deploys().len(), 1);
    let report = e
        .reconcile(&pipeline, None, T0.after(BLOCKED_RETRY))
        .await
        .unwrap()
        .report;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys().len(), 2);
    assert!(
        report
            .transitions
            .iter()
            .any(|t| t.cause == Cause::Dequeued)
    );
}

#[tokio::test]
async fn a_release_queued_by_a_freeze_starts_when_a_pipeline_without_it_is_applied() {
    let w =
        World::with(PipelineFile::base().stage("api", "dev", super::pipeline::Stage::freeze)).await;
    let e = w.engine();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Queued));
    w.store_pipeline(3, PIPELINE).await;
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, Some("api"), T0).await.unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{id}@dev")]);
}

// The reconciler and the event path agree: a fact is applied once, whoever brings it.
#[tokio::test]
async fn the_reconciler_feeds_a_lost_outcome_and_the_late_event_changes_nothing() {
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, None, T0).await.unwrap();
    assert_eq!(
        w.state(&id, "dev").await,
        Some(StageState::Deploying),
        "still in progress"
    );
    w.deployer.set_status("d-1", DeploymentStatus::Succeeded);
    e.reconcile(&pipeline, None, T0).await.unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
    let before = w.store.history_of_release(&id).await.unwrap().len();
    let late = e
        .on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
        .await
        .unwrap();
    assert!(
        late.transitions.is_empty() && late.refused.len() == 1,
        "{late:?}"
    );
    assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
    // The bake (10 minutes) ends; the next pass succeeds the stage and promotes it.
    e.reconcile(&pipeline, None, T0.after(Duration::from_secs(11 * 60)))
        .await
        .unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
    assert_eq!(
        w.state(&id, "prod").await,
        Some(StageState::AwaitingApproval)
    );
}

#[tokio::test]
async fn a_failed_deployment_reported_by_aws_fails_the_stage_with_the_reason() {
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    w.deployer.set_status(
        "d-1",
        DeploymentStatus::Failed("CodeDeploy deployment d-1 failed: hook timed out".into()),
    );
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, Some("api"), T0).await.unwrap();
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("hook timed out")
    );
    assert_eq!(
        w.store.lane("api", "dev").await.unwrap().item.in_flight,
        None
    );
}
