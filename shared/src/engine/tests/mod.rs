use super::*;
use crate::aws::fake::{Call, FakeDeployer, RecordingNotifier};
use crate::aws::{DeployError, DeployOutcome};
use crate::release::Digest;
use crate::store::{MemoryStore, StoredPipeline};

const PIPELINE: &str = r#"
[pipeline]
environments = ["dev", "prod"]

[services.api]
repository = "shiplane/api"
kind = "blue-green"
container = "app"
port = 8080
tags = { semver = ">=1.0.0" }
[services.api.environments.dev]
cluster = "dev"
service = "api-dev"
codedeploy = { application = "api", deployment_group = "api-dev" }
bake = "10m"
[services.api.environments.prod]
cluster = "prod"
service = "api-prod"
codedeploy = { application = "api", deployment_group = "api-prod" }
approval = "manual"

[services.db]
repository = "shiplane/db"
kind = "rolling"
container = "app"
[services.db.environments.dev]
cluster = "dev"
service = "db-dev"
migration = { family = "db-migrate", command = ["./migrate"] }

[services.etl]
repository = "shiplane/etl"
kind = "task"
[services.etl.environments.dev]
task_families = ["etl-nightly"]
bake = "1h"
[services.etl.environments.prod]
task_families = ["etl-nightly"]
approval = "manual"
"#;

const T0: Timestamp = Timestamp(1_760_000_000_000);

struct World {
    store: MemoryStore,
    deployer: FakeDeployer,
    notifier: RecordingNotifier,
}

impl World {
    async fn new() -> World {
        let store = MemoryStore::new();
        store
            .put_pipeline(StoredPipeline {
                version: 1,
                source: PIPELINE.into(),
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        World {
            store,
            deployer: FakeDeployer::default(),
            notifier: RecordingNotifier::default(),
        }
    }

    fn engine(&self) -> Engine<'_, MemoryStore, FakeDeployer, RecordingNotifier> {
        Engine {
            store: &self.store,
            deployer: &self.deployer,
            notifier: &self.notifier,
        }
    }

    async fn state(&self, id: &ReleaseId, env: &str) -> Option<StageState> {
        self.store.release(id).await.unwrap()?.item.state_in(env)
    }

    /// Pushes `repo` (digest `n`, `tag`) at T0; the release it must create.
    async fn pushed(&self, repo: &str, n: u8, tag: &str) -> ReleaseId {
        created(
            self.engine()
                .on_push(&push(repo, n, tag), T0)
                .await
                .unwrap(),
        )
    }

    fn deploys(&self) -> Vec<String> {
        self.deployer
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Deploy {
                    release,
                    environment,
                } => Some(format!("{release}@{environment}")),
                _ => None,
            })
            .collect()
    }
}

fn push(repo: &str, n: u8, tag: &str) -> ImagePush {
    ImagePush {
        registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
        repository: repo.into(),
        digest: Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap(),
        tag: tag.into(),
    }
}

fn created(outcome: PushOutcome) -> ReleaseId {
    match outcome {
        PushOutcome::Created { release, .. } => release,
        other => panic!("expected a new release, got {other:?}"),
    }
}

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

#[tokio::test]
async fn a_busy_deployment_group_queues_the_release() {
    let w = World::new().await;
    w.deployer
        .deploy_answers
        .lock()
        .unwrap()
        .push(Ok(DeployOutcome::Blocked {
            by: "d-MANUAL".into(),
        }));
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
async fn migration_exit_zero_deploys_and_anything_else_fails_before_deploying() {
    let w = World::new().await;
    let e = w.engine();
    let ok = w.pushed("shiplane/db", 1, "v1").await;
    assert_eq!(w.state(&ok, "dev").await, Some(StageState::Migrating));
    assert!(w.deploys().is_empty());
    let stopped = TaskStopped {
        task_arn: "arn:aws:ecs:task/1".into(),
        failure: None,
    };
    let Inbound::Accepted(_) = e.on_task_stopped(&stopped, T0).await.unwrap() else {
        panic!()
    };
    assert_eq!(w.state(&ok, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{ok}@dev")]);
    // The same stop event again is refused by the state machine and deploys nothing more.
    e.on_task_stopped(&stopped, T0).await.unwrap();
    assert_eq!(w.deploys().len(), 1);

    let w = World::new().await;
    let e = w.engine();
    let bad = w.pushed("shiplane/db", 2, "v2").await;
    let stopped = TaskStopped {
        task_arn: "arn:aws:ecs:task/1".into(),
        failure: Some("container app exited with code 1".into()),
    };
    e.on_task_stopped(&stopped, T0).await.unwrap();
    let r = w.store.release(&bad).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("exited with code 1")
    );
    assert!(
        w.deploys().is_empty(),
        "nothing deployed after a failed migration"
    );
    let unknown = TaskStopped {
        task_arn: "arn:other".into(),
        failure: None,
    };
    assert!(matches!(
        e.on_task_stopped(&unknown, T0).await.unwrap(),
        Inbound::Ignored(_)
    ));
}

#[tokio::test]
async fn data_jobs_register_and_succeed_at_once_then_promote() {
    let w = World::new().await;
    w.deployer
        .deploy_answers
        .lock()
        .unwrap()
        .push(Ok(DeployOutcome::Registered {
            task_definitions: vec!["etl-nightly:2".into()],
        }));
    let id = w.pushed("shiplane/etl", 1, "20261116-abc1234").await;
    assert_eq!(
        w.state(&id, "dev").await,
        Some(StageState::Succeeded),
        "no bake for data jobs"
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

    let out = e.on_push(&p, T0).await.unwrap();
    assert_eq!(
        out,
        PushOutcome::Replayed {
            release: r.id.clone(),
            tag_added: false
        }
    );
    assert_eq!(w.deploys(), [format!("{}@dev", r.id)]);
    let stored = w.store.release(&r.id).await.unwrap().unwrap().item;
    assert_eq!(stored.stages["dev"].deployment_id.as_deref(), Some("d-1"));
    // And once finished, another replay does nothing more.
    e.on_push(&p, T0).await.unwrap();
    assert_eq!(w.deploys().len(), 1);
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
async fn without_a_pipeline_the_error_says_how_to_store_one() {
    let w = World {
        store: MemoryStore::new(),
        deployer: FakeDeployer::default(),
        notifier: RecordingNotifier::default(),
    };
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
    let a = parse_cached(PIPELINE).unwrap();
    let b = parse_cached(PIPELINE).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "warm invocations reuse the parse");
    let other = PIPELINE.replace("bake = \"10m\"", "bake = \"20m\"");
    let c = parse_cached(&other).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(
        c.services["api"].stage("dev").unwrap().bake,
        Duration::from_secs(1200)
    );
    assert!(parse_cached("not toml [").is_err());
}
