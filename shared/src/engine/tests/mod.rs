use std::time::Duration;

use super::*;
use crate::aws::fake::{Call, FakeDeployer, FakeTimer, RecordingNotifier};
use crate::aws::{DeployError, DeployOutcome, DeploymentStatus, MigrationRun};
use crate::facts::ContainerExit;
use crate::release::intake::{ImagePush, Intake, PUSH_CLAIM_TTL, claim_key, intake, new_release};
use crate::release::{BLOCKED_RETRY, Digest, LEASE, Policy, Release, apply};
use crate::store::Claim;
use crate::store::{LoadedLane, MemoryStore, StoredPipeline};

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
    timer: FakeTimer,
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
            timer: FakeTimer::default(),
        }
    }

    fn engine(&self) -> Engine<'_, MemoryStore, FakeDeployer, RecordingNotifier, FakeTimer> {
        Engine {
            store: &self.store,
            deployer: &self.deployer,
            notifier: &self.notifier,
            timer: &self.timer,
        }
    }

    async fn state(&self, id: &ReleaseId, env: &str) -> Option<StageState> {
        self.store.release(id).await.unwrap()?.item.state_in(env)
    }

    /// api's v1.0.0 succeeded in dev (the last known good) and v1.0.1 deploys there: the two
    /// releases and v1.0.1's deployment.
    async fn good_then_deploying(&self) -> (ReleaseId, ReleaseId, String) {
        let e = self.engine();
        let pipeline = e.pipeline().await.unwrap();
        let v1 = self.pushed("shiplane/api", 1, "v1.0.0").await;
        for event in [Event::DeploymentSucceeded, Event::BakeElapsed] {
            e.on_event(&pipeline, "api", "dev", &v1, event, T0)
                .await
                .unwrap();
        }
        let v2 = self.pushed("shiplane/api", 2, "v1.0.1").await;
        let d2 = self.store.release(&v2).await.unwrap().unwrap().item.stages["dev"]
            .deployment_id
            .clone()
            .unwrap();
        (v1, v2, d2)
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
        pushed_at: Timestamp(T0.0 + u64::from(n) * 1000),
    }
}

/// A stopped task whose `app` container exited with `exit` (None: it never ran).
fn stopped(task_arn: &str, started_by: Option<String>, exit: Option<i64>) -> TaskStopped {
    TaskStopped {
        task_arn: task_arn.into(),
        started_by,
        stopped_reason: "Essential container in task exited".into(),
        containers: vec![ContainerExit {
            name: "app".into(),
            exit_code: exit,
            reason: None,
        }],
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
    let stop = stopped("arn:aws:ecs:task/1", None, Some(0));
    let Inbound::Accepted(_) = e.on_task_stopped(&stop, T0).await.unwrap() else {
        panic!()
    };
    assert_eq!(w.state(&ok, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{ok}@dev")]);
    assert_eq!(
        w.deployer.fresh(),
        [format!("{ok}@dev")],
        "the migration the push started was fresh; the deploy after it reuses its revision"
    );
    // The same stop event again is refused by the state machine and deploys nothing more.
    e.on_task_stopped(&stop, T0).await.unwrap();
    assert_eq!(w.deploys().len(), 1);

    let w = World::new().await;
    let e = w.engine();
    let bad = w.pushed("shiplane/db", 2, "v2").await;
    e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(1)), T0)
        .await
        .unwrap();
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
    let unknown = stopped("arn:other", None, Some(0));
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
    let w = World {
        store: MemoryStore::new(),
        deployer: FakeDeployer::default(),
        notifier: RecordingNotifier::default(),
        timer: FakeTimer::default(),
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
    let other = PIPELINE.replace("bake = \"10m\"", "bake = \"20m\"");
    let c = parse_in(&cache, &stored(&other)).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(
        c.services["api"].stage("dev").unwrap().bake,
        Duration::from_secs(1200)
    );
    assert!(parse_in(&cache, &stored("not toml [")).is_err());
}

/// Decides `event` for `release` in `service/env` and commits the decision as the engine
/// does, but runs none of its actions: the function died right after the commit.
async fn commit_only(w: &World, service: &str, env: &str, release: &ReleaseId, event: Event) {
    let pipeline = w.engine().pipeline().await.unwrap();
    let (svc, stage) = stage_of(&pipeline, service, env).unwrap();
    let loaded = LoadedLane::load(&w.store, service, env, std::slice::from_ref(release))
        .await
        .unwrap();
    let d = apply(
        &loaded.view,
        release,
        &event,
        &Policy::for_stage(svc, stage),
        T0,
    )
    .unwrap();
    w.store.commit(loaded.commit_for(&d)).await.unwrap();
}

fn history_causes(history: &[Transition]) -> Vec<&'static str> {
    history.iter().map(|t| t.cause.as_str()).collect()
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

/// Commits a push's arrival (with its claim) and nothing else: the function died after.
async fn commit_arrival(w: &World, p: &ImagePush) {
    let pipeline = w.engine().pipeline().await.unwrap();
    let Intake::Release {
        service,
        environment,
    } = intake(&pipeline, p)
    else {
        panic!("not a release")
    };
    let r = new_release(p, service, T0);
    let mut loaded = LoadedLane::load(&w.store, &service.name, environment, &[])
        .await
        .unwrap();
    loaded.add_new(r.clone());
    let (svc, stage) = stage_of(&pipeline, &service.name, environment).unwrap();
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
        key: claim_key(p),
        value: r.id.to_string(),
        at: T0,
        expires: T0.after(PUSH_CLAIM_TTL),
    });
    w.store.commit(commit).await.unwrap();
}

async fn release_of(w: &World, p: &ImagePush) -> ReleaseId {
    ReleaseId::parse(&w.store.claimed(&claim_key(p), T0).await.unwrap().unwrap()).unwrap()
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

// Defect 4: a queued release on an idle lane always starts.
#[tokio::test]
async fn a_release_sent_back_by_a_busy_group_starts_once_the_retry_time_passed() {
    let w = World::new().await;
    let e = w.engine();
    w.deployer
        .deploy_answers
        .lock()
        .unwrap()
        .push(Ok(DeployOutcome::Blocked {
            by: "d-MANUAL".into(),
        }));
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
    let w = World::new().await;
    let frozen = PIPELINE.replace("bake = \"10m\"", "bake = \"10m\"\nfreeze = true");
    w.store
        .put_pipeline(StoredPipeline {
            version: 2,
            source: frozen,
            applied_at: T0,
            applied_by: "t".into(),
        })
        .await
        .unwrap();
    let e = w.engine();
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Queued));
    w.store
        .put_pipeline(StoredPipeline {
            version: 3,
            source: PIPELINE.into(),
            applied_at: T0,
            applied_by: "t".into(),
        })
        .await
        .unwrap();
    let pipeline = e.pipeline().await.unwrap();
    e.reconcile(&pipeline, Some("api"), T0).await.unwrap();
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{id}@dev")]);
}

// Defect 5: deadlines, and the operator's ways out.
#[tokio::test]
async fn an_overdue_migration_fails_and_frees_the_lane_for_the_queued_release() {
    let w = World::new().await;
    let e = w.engine();
    let stuck = w.pushed("shiplane/db", 1, "v1").await;
    let next = w.pushed("shiplane/db", 2, "v2").await;
    assert_eq!(w.state(&stuck, "dev").await, Some(StageState::Migrating));
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
    let pipeline = e.pipeline().await.unwrap();
    // Within the deadline a running task is left alone.
    e.reconcile(&pipeline, None, T0.after(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_eq!(w.state(&stuck, "dev").await, Some(StageState::Migrating));
    let late = T0.after(Duration::from_secs(2 * 3600));
    e.reconcile(&pipeline, None, late).await.unwrap();
    let r = w.store.release(&stuck).await.unwrap().unwrap().item;
    assert_eq!(r.state_in("dev"), Some(StageState::Failed));
    assert!(
        r.stages["dev"]
            .reason
            .as_deref()
            .unwrap()
            .contains("did not finish")
    );
    assert_eq!(w.state(&next, "dev").await, Some(StageState::Migrating));
}

#[tokio::test]
async fn cancel_ends_an_in_flight_stage_stops_its_deployment_and_frees_the_lane() {
    let w = World::new().await;
    let e = w.engine();
    let r1 = w.pushed("shiplane/api", 1, "v1.0.1").await;
    let r2 = w.pushed("shiplane/api", 2, "v1.0.2").await;
    let pipeline = e.pipeline().await.unwrap();
    let cancel = Event::Cancelled {
        actor: "ana".into(),
        reason: "wrong build".into(),
    };
    e.on_event(&pipeline, "api", "dev", &r1, cancel, T0)
        .await
        .unwrap();
    assert_eq!(w.state(&r1, "dev").await, Some(StageState::Cancelled));
    assert!(w.deployer.calls().contains(&Call::Stop {
        deployment_id: "d-1".into(),
        rollback: true
    }));
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Deploying));
    let history = w.store.history_of_release(&r1).await.unwrap();
    let cancelled = history
        .iter()
        .find(|t| t.cause == Cause::Cancelled)
        .unwrap();
    assert_eq!(cancelled.actor.as_deref(), Some("ana"));
    assert_eq!(cancelled.detail.as_deref(), Some("wrong build"));
    assert!(
        history.iter().any(|t| t.cause == Cause::StopRequested),
        "the stop's outcome is recorded: {:?}",
        history_causes(&history)
    );
}

#[tokio::test]
async fn unblock_frees_a_lane_whatever_holds_it() {
    let w = World::new().await;
    let e = w.engine();
    let r1 = w.pushed("shiplane/db", 1, "v1").await;
    let r2 = w.pushed("shiplane/db", 2, "v2").await;
    let pipeline = e.pipeline().await.unwrap();
    let unblock = || LaneEvent::Unblock {
        actor: "ana".into(),
        reason: "migration hangs".into(),
    };
    e.on_lane(&pipeline, "db", "dev", unblock(), T0)
        .await
        .unwrap();
    assert_eq!(w.state(&r1, "dev").await, Some(StageState::Cancelled));
    assert_eq!(w.state(&r2, "dev").await, Some(StageState::Migrating));
    let lane = w.store.lane("db", "dev").await.unwrap().item;
    assert_eq!(lane.in_flight, Some(r2.clone()));
    let history = w.store.history_of_service("db", 50).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.cause == Cause::Unblocked && t.actor.as_deref() == Some("ana"))
    );
    // A free lane with nothing queued has nothing to unblock: refused, nothing written.
    let w = World::new().await;
    let report = w
        .engine()
        .on_lane(&pipeline, "db", "dev", unblock(), T0)
        .await
        .unwrap();
    assert!(
        report.refused[0].contains("nothing to unblock"),
        "{report:?}"
    );
}

// Defect 2: migrations.
#[tokio::test]
async fn a_migration_whose_task_was_never_recorded_is_found_by_its_started_by() {
    let w = World::new().await;
    let e = w.engine();
    let p = push("shiplane/db", 1, "v1");
    // The arrival committed; RunTask ran but the function died before recording the task.
    commit_arrival(&w, &p).await;
    let id = release_of(&w, &p).await;
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    let stop = stopped(
        "arn:aws:ecs:task/never-recorded",
        Some(crate::aws::started_by(&r, "dev")),
        Some(0),
    );
    let out = e.on_task_stopped(&stop, T0).await.unwrap();
    assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    assert_eq!(w.deploys(), [format!("{id}@dev")]);
    assert!(
        w.deployer
            .calls()
            .iter()
            .all(|c| !matches!(c, Call::RunMigration { .. })),
        "no second migration"
    );
}

#[tokio::test]
async fn a_migration_that_already_stopped_is_adopted_with_its_exit_code() {
    let w = World::new().await;
    w.deployer
        .migration_answers
        .lock()
        .unwrap()
        .push(Ok(MigrationRun::Stopped(stopped(
            "arn:aws:ecs:task/7",
            None,
            Some(0),
        ))));
    let id = w.pushed("shiplane/db", 1, "v1").await;
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    let history = w.store.history_of_release(&id).await.unwrap();
    assert_eq!(
        history_causes(&history),
        [
            "arrived",
            "migration_started",
            "migration_succeeded",
            "deployment_created"
        ]
    );
}

#[tokio::test]
async fn a_stop_event_of_another_task_for_the_same_release_is_ignored() {
    let w = World::new().await;
    let e = w.engine();
    let id = w.pushed("shiplane/db", 1, "v1").await; // task arn:aws:ecs:task/1 recorded
    let r = w.store.release(&id).await.unwrap().unwrap().item;
    let stray = stopped(
        "arn:aws:ecs:task/other",
        Some(crate::aws::started_by(&r, "dev")),
        Some(1),
    );
    let out = e.on_task_stopped(&stray, T0).await.unwrap();
    assert!(
        matches!(out, Inbound::Ignored(ref why) if why.contains("not the migration")),
        "{out:?}"
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Migrating));
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

mod hooks {
    use super::*;
    use crate::aws::HookStatus;
    use crate::aws::fake::FakeHooks;
    use crate::checks::{CheckResult, ScriptedChecker};
    use crate::engine::HookInvocation;
    use crate::pipeline::LifecycleHook;
    use tokio::time::Instant;

    const CHECKS: &str = r#"
[[services.api.environments.dev.checks]]
name = "health"
hook = "after_allow_test_traffic"
http = "http://test.internal/health"
[[services.api.environments.dev.checks]]
name = "orders"
hook = "after_allow_test_traffic"
http = "http://test.internal/orders"
[[services.api.environments.dev.checks]]
name = "no-alarms"
hook = "before_allow_traffic"
alarms = true
"#;

    /// A world whose api dev stage has checks, with one release deploying (`d-1`).
    async fn deploying() -> (World, ReleaseId) {
        let w = World::new().await;
        let with_checks = PIPELINE.replace(
            "bake = \"10m\"\n[services.api.environments.prod]",
            &format!("bake = \"10m\"\n{CHECKS}\n[services.api.environments.prod]"),
        );
        assert_ne!(with_checks, PIPELINE);
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: with_checks,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        (w, id)
    }

    fn invocation(hook: LifecycleHook, execution: &str) -> HookInvocation {
        HookInvocation {
            deployment_id: "d-1".into(),
            execution_id: execution.into(),
            hook: Some(hook),
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// A store that answers nothing (throttled past the SDK's retries).
    struct Down;

    fn down() -> crate::store::StoreError {
        crate::store::StoreError::Unavailable {
            message: "DynamoDB: ProvisionedThroughputExceededException".into(),
        }
    }

    impl ReleaseStore for Down {
        async fn commit(&self, _: crate::store::Commit) -> Result<(), crate::store::StoreError> {
            Err(down())
        }
        async fn release(
            &self,
            _: &ReleaseId,
        ) -> Result<Option<crate::store::Versioned<Release>>, crate::store::StoreError> {
            Err(down())
        }
        async fn lane(
            &self,
            _: &str,
            _: &str,
        ) -> Result<crate::store::Versioned<crate::release::Lane>, crate::store::StoreError>
        {
            Err(down())
        }
        async fn lanes(
            &self,
            _: &str,
        ) -> Result<Vec<crate::store::Versioned<crate::release::Lane>>, crate::store::StoreError>
        {
            Err(down())
        }
        async fn releases_of_service(
            &self,
            _: &str,
            _: usize,
        ) -> Result<Vec<Release>, crate::store::StoreError> {
            Err(down())
        }
        async fn history_of_release(
            &self,
            _: &ReleaseId,
        ) -> Result<Vec<Transition>, crate::store::StoreError> {
            Err(down())
        }
        async fn history_of_service(
            &self,
            _: &str,
            _: usize,
        ) -> Result<Vec<Transition>, crate::store::StoreError> {
            Err(down())
        }
        async fn read(
            &self,
            _: &crate::store::Reads,
            _: Timestamp,
        ) -> Result<crate::store::Snapshot, crate::store::StoreError> {
            Err(down())
        }
        fn cached_pipeline(&self) -> Option<std::sync::Arc<StoredPipeline>> {
            None
        }
        async fn settle_claim(
            &self,
            _: &str,
            _: &str,
            _: Timestamp,
        ) -> Result<(), crate::store::StoreError> {
            Err(down())
        }
        async fn claimed(
            &self,
            _: &str,
            _: Timestamp,
        ) -> Result<Option<String>, crate::store::StoreError> {
            Err(down())
        }
        async fn deployment(
            &self,
            _: &str,
        ) -> Result<Option<crate::store::DeploymentRef>, crate::store::StoreError> {
            Err(down())
        }
        async fn pipeline(&self) -> Result<Option<StoredPipeline>, crate::store::StoreError> {
            Err(down())
        }
        async fn put_pipeline(&self, _: StoredPipeline) -> Result<(), crate::store::StoreError> {
            Err(down())
        }
    }

    /// With the store unreachable a hook fails closed, unless CodeDeploy's description
    /// says its deployment restores the last known good, which is never held back
    /// (simulation seed 18424: three restore tries failed closed while the store was
    /// throttled, and the bad release went on serving).
    #[tokio::test]
    async fn a_restores_hook_is_answered_succeeded_when_the_store_is_down() {
        let w = World::new().await;
        let engine = Engine {
            store: &Down,
            deployer: &w.deployer,
            notifier: &w.notifier,
            timer: &w.timer,
        };
        let id = ReleaseId::new(T0);
        let hooks = FakeHooks::default();
        for (deployment, restore) in [("d-restore", true), ("d-new", false)] {
            hooks.origins.lock().unwrap().insert(
                deployment.into(),
                crate::aws::Origin::Release {
                    release: id.clone(),
                    environment: "dev".into(),
                    attempt: 0,
                    task_definition: None,
                    restore,
                },
            );
            let inv = HookInvocation {
                deployment_id: deployment.into(),
                ..invocation(LifecycleHook::AfterAllowTestTraffic, deployment)
            };
            let answer = engine
                .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
                .await;
            let expected = if restore {
                HookStatus::Succeeded
            } else {
                HookStatus::Failed
            };
            assert_eq!(answer.status, expected, "{deployment}");
        }
        // CodeDeploy's own rollback deployment neither (simulation, once the world made
        // them: a rollback failed closed while the store was throttled, and 10 % of
        // production traffic stayed on the bad version).
        hooks.origins.lock().unwrap().insert(
            "d-rollback".into(),
            crate::aws::Origin::RollbackOf("d-new".into()),
        );
        let inv = HookInvocation {
            deployment_id: "d-rollback".into(),
            ..invocation(LifecycleHook::BeforeAllowTraffic, "d-rollback")
        };
        let answer = engine
            .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
            .await;
        assert_eq!(answer.status, HookStatus::Succeeded);
    }

    /// A restore of the last known good is never held back by its hooks: no checks run,
    /// and an earlier attempt that died is not waited for (found by the simulation: a
    /// restore failed closed after its first hook invocation died, and the bad release it
    /// was to replace kept serving).
    #[tokio::test]
    async fn a_restore_of_the_last_known_good_is_answered_succeeded_without_checks() {
        let (w, v1) = deploying().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        for event in [Event::DeploymentSucceeded, Event::BakeElapsed] {
            e.on_event(&pipeline, "api", "dev", &v1, event, T0)
                .await
                .unwrap();
        }
        let v2 = w.pushed("shiplane/api", 2, "v1.0.1").await;
        e.on_event(&pipeline, "api", "dev", &v2, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        let alarm = Event::AlarmFired {
            alarm: "api-dev-5xx".into(),
        };
        e.on_event(&pipeline, "api", "dev", &v2, alarm, T0)
            .await
            .unwrap();
        let stage = w.store.release(&v1).await.unwrap().unwrap().item.stages["dev"].clone();
        assert!(stage.redeploy && stage.state == StageState::Deploying);
        let restoring = stage.deployment_id.unwrap();
        assert!(
            w.store
                .deployment(&restoring)
                .await
                .unwrap()
                .unwrap()
                .restore
        );

        let checker = ScriptedChecker::default();
        checker.results.lock().unwrap().insert(
            "health".into(),
            CheckResult::failed(Duration::from_millis(5), "HTTP 500"),
        );
        let hooks = FakeHooks::default();
        // An earlier invocation of the same hook execution claimed it and died.
        let key = format!("hook#{restoring}#e-1#attempt");
        w.store
            .commit(crate::store::Commit {
                claim: Some(Claim {
                    key,
                    value: T0.after(Duration::from_secs(900)).0.to_string(),
                    at: T0,
                    expires: T0.after(Duration::from_secs(3600)),
                }),
                ..crate::store::Commit::default()
            })
            .await
            .unwrap();
        let inv = HookInvocation {
            deployment_id: restoring.clone(),
            ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-1")
        };
        let answer = e.on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(answer.status, HookStatus::Succeeded, "{:?}", answer.reason);
        assert!(
            checker.ran.lock().unwrap().is_empty(),
            "no checks for a restore"
        );
        assert_eq!(w.state(&v1, "dev").await, Some(StageState::Validating));
    }

    #[tokio::test]
    async fn passing_checks_report_succeeded_once_and_are_recorded() {
        let (w, id) = deploying().await;
        let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
        let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
        let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(
            (answer.status, answer.reported.clone()),
            (HookStatus::Succeeded, Ok(()))
        );
        assert_eq!(answer.release, Some(id.clone()));
        assert_eq!(
            hooks.reports(),
            [("d-1".into(), "e-1".into(), HookStatus::Succeeded)]
        );
        assert_eq!(
            *checker.ran.lock().unwrap(),
            ["health", "orders"],
            "only this hook's checks"
        );
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Validating));
        let history = w.store.history_of_release(&id).await.unwrap();
        let causes = history_causes(&history);
        assert!(
            causes.ends_with(&[
                "validation_started",
                "check_passed",
                "check_passed",
                "hook_succeeded"
            ]),
            "{causes:?}"
        );
        let health = history
            .iter()
            .find(|t| t.cause == Cause::CheckPassed)
            .unwrap();
        assert!(
            health
                .detail
                .as_deref()
                .unwrap()
                .starts_with("health: passed in 1 ms"),
            "{health:?}"
        );

        // CodeDeploy (or Lambda's retry) invokes the same hook execution again.
        let again = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(again.status, HookStatus::Succeeded);
        assert_eq!(hooks.reports().len(), 1, "one report");
        assert_eq!(checker.ran.lock().unwrap().len(), 2, "no check runs twice");
        let after = w.store.history_of_release(&id).await.unwrap();
        assert_eq!(after.len(), history.len(), "one history entry");
    }

    #[tokio::test]
    async fn a_failing_check_reports_failed_with_the_reason_recorded_and_announced() {
        let (w, id) = deploying().await;
        let checker = ScriptedChecker::default();
        checker.results.lock().unwrap().insert(
            "health".into(),
            CheckResult::failed(
                Duration::from_millis(40),
                "status 503, expected 200: upstream down",
            ),
        );
        let hooks = FakeHooks::default();
        let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
        let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(answer.status, HookStatus::Failed);
        assert!(
            answer
                .reason
                .as_deref()
                .unwrap()
                .contains("health: failed in 40 ms: status 503")
        );
        assert_eq!(hooks.reports()[0].2, HookStatus::Failed);
        assert_eq!(
            *checker.ran.lock().unwrap(),
            ["health"],
            "the first failure decides"
        );
        let history = w.store.history_of_release(&id).await.unwrap();
        let failed = history
            .iter()
            .find(|t| t.cause == Cause::HookFailed)
            .unwrap();
        assert!(failed.detail.as_deref().unwrap().contains("upstream down"));
        let sent = w.notifier.sent.lock().unwrap().clone();
        let note = sent
            .iter()
            .find(|n| n.kind.as_str() == "hook_failed")
            .expect("announced");
        assert!(
            note.body["detail"].as_str().unwrap().contains("health"),
            "{note:?}"
        );
    }

    #[tokio::test]
    async fn a_topic_that_never_answers_delays_no_hook_answer() {
        let (mut w, id) = deploying().await;
        w.notifier = RecordingNotifier {
            hang: true,
            ..RecordingNotifier::default()
        };
        let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
        let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
        // Less time for the checks (deadline less REPORT_RESERVE) than SNS may take: the
        // answer must not wait for the announcement.
        let deadline = Instant::now() + REPORT_RESERVE + NOTIFY_BUDGET - Duration::from_secs(1);
        let answer = w
            .engine()
            .on_hook(&checker, &hooks, &inv, deadline, T0)
            .await;
        assert!(Instant::now() <= deadline, "answered in time");
        assert_eq!(
            (answer.status, answer.reason, answer.reported),
            (HookStatus::Succeeded, None, Ok(()))
        );
        assert_eq!(
            hooks.reports(),
            [("d-1".into(), "e-1".into(), HookStatus::Succeeded)]
        );
        let causes = history_causes(&w.store.history_of_release(&id).await.unwrap());
        assert_eq!(causes.last(), Some(&"hook_succeeded"));
    }

    #[tokio::test]
    async fn a_check_that_never_answers_is_failed_and_reported_before_the_deadline() {
        let (w, _) = deploying().await;
        let checker = ScriptedChecker::default();
        checker.hang.lock().unwrap().push("no-alarms".into());
        let hooks = FakeHooks::default();
        let inv = invocation(LifecycleHook::BeforeAllowTraffic, "e-2");
        // A short-lived invocation: 4 s left, 3 of them kept to report.
        let deadline = Instant::now() + Duration::from_secs(4);
        let answer = w
            .engine()
            .on_hook(&checker, &hooks, &inv, deadline, T0)
            .await;
        assert!(Instant::now() < deadline, "answered in time");
        assert_eq!(answer.status, HookStatus::Failed);
        assert!(
            answer
                .reason
                .as_deref()
                .unwrap()
                .contains("no result within"),
            "{answer:?}"
        );
        assert_eq!(hooks.reports().len(), 1);
    }

    #[tokio::test]
    async fn a_hook_for_a_deployment_shiplane_did_not_start_fails_with_an_alert_and_changes_nothing()
     {
        let (w, id) = deploying().await;
        let before = w.store.history_of_release(&id).await.unwrap().len();
        let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
        let inv = HookInvocation {
            deployment_id: "d-SOMEONE".into(),
            ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-9")
        };
        let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(answer.status, HookStatus::Failed);
        assert_eq!(hooks.reports()[0].2, HookStatus::Failed);
        assert!(checker.ran.lock().unwrap().is_empty());
        assert!(w.notifier.kinds().contains(&"alert".to_string()));
        assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    }

    #[tokio::test]
    async fn a_hook_of_codedeploys_rollback_of_a_shiplane_deployment_succeeds_without_checks() {
        let (w, id) = deploying().await;
        w.deployer
            .rollbacks
            .lock()
            .unwrap()
            .insert("d-rb".into(), "d-1".into());
        let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
        hooks
            .origins
            .lock()
            .unwrap()
            .insert("d-rb".into(), crate::aws::Origin::RollbackOf("d-1".into()));
        // GetDeployment throttled twice: asked again, not failed closed (simulation: a
        // rollback failed that way, and 10 % of production traffic stayed on the bad
        // version).
        *hooks.origin_failures.lock().unwrap() = 2;
        *checker.hang.lock().unwrap() = vec!["health".into()];
        let inv = HookInvocation {
            deployment_id: "d-rb".into(),
            ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-rb")
        };
        let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(answer.status, HookStatus::Succeeded);
        assert_eq!(answer.release, Some(id.clone()));
        let again = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(again.status, HookStatus::Succeeded);
        assert_eq!(
            hooks.reports(),
            [("d-rb".into(), "e-rb".into(), HookStatus::Succeeded)]
        );
        assert!(
            checker.ran.lock().unwrap().is_empty(),
            "a rollback runs no checks"
        );
        let history = w.store.history_of_release(&id).await.unwrap();
        let recorded: Vec<_> = history
            .iter()
            .filter(|t| t.cause == Cause::CodeDeployRollback)
            .collect();
        assert_eq!(recorded.len(), 1, "once, however often CodeDeploy invokes");
        assert!(
            recorded[0]
                .detail
                .as_deref()
                .unwrap()
                .contains("never held back")
        );
        assert!(!w.notifier.kinds().contains(&"alert".to_string()));
    }

    /// An attempt at a hook of CodeDeploy's rollback that died is not waited for, and the
    /// rollback not failed closed after it (simulation: 10 % of production traffic stayed
    /// on the bad version when a rollback's first hook invocation died).
    #[tokio::test]
    async fn a_rollbacks_hook_is_answered_succeeded_after_an_earlier_attempt_died() {
        let (w, _) = deploying().await;
        w.deployer
            .rollbacks
            .lock()
            .unwrap()
            .insert("d-rb".into(), "d-1".into());
        let hooks = FakeHooks::default();
        hooks
            .origins
            .lock()
            .unwrap()
            .insert("d-rb".into(), crate::aws::Origin::RollbackOf("d-1".into()));
        w.store
            .commit(crate::store::Commit {
                claim: Some(Claim {
                    key: "hook#d-rb#e-rb#attempt".into(),
                    value: T0.after(Duration::from_secs(900)).0.to_string(),
                    at: T0,
                    expires: T0.after(Duration::from_secs(3600)),
                }),
                ..crate::store::Commit::default()
            })
            .await
            .unwrap();
        let inv = HookInvocation {
            deployment_id: "d-rb".into(),
            ..invocation(LifecycleHook::BeforeAllowTraffic, "e-rb")
        };
        let answer = w
            .engine()
            .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
            .await;
        assert_eq!(answer.status, HookStatus::Succeeded, "{:?}", answer.reason);
    }

    /// Neither is a rollback's hook failed closed when the store cannot read a deployment's
    /// reference: the rolled-back deployment's (simulation seed 778), or, on a retry after
    /// an attempt that died, the rollback's own (seeds 25568, 43744, 70860).
    #[tokio::test]
    async fn a_rollbacks_hook_is_answered_succeeded_when_a_reference_cannot_be_read() {
        for (unreadable, died) in [("d-1", false), ("d-rb", true)] {
            let (w, _) = deploying().await;
            let hooks = FakeHooks::default();
            hooks
                .origins
                .lock()
                .unwrap()
                .insert("d-rb".into(), crate::aws::Origin::RollbackOf("d-1".into()));
            let store = super::gate_skew::Interleaved {
                inner: w.store,
                first: std::sync::Mutex::new(None),
                unreadable: Some(unreadable.into()),
            };
            if died {
                store
                    .commit(crate::store::Commit {
                        claim: Some(Claim {
                            key: "hook#d-rb#e-rb#attempt".into(),
                            value: T0.after(Duration::from_secs(900)).0.to_string(),
                            at: T0,
                            expires: T0.after(Duration::from_secs(3600)),
                        }),
                        ..crate::store::Commit::default()
                    })
                    .await
                    .unwrap();
            }
            let e = Engine {
                store: &store,
                deployer: &w.deployer,
                notifier: &w.notifier,
                timer: &w.timer,
            };
            let inv = HookInvocation {
                deployment_id: "d-rb".into(),
                ..invocation(LifecycleHook::BeforeAllowTraffic, "e-rb")
            };
            let answer = e
                .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
                .await;
            assert_eq!(
                answer.status,
                HookStatus::Succeeded,
                "{unreadable}: {:?}",
                answer.reason
            );
        }
    }

    #[tokio::test]
    async fn a_throttled_report_is_retried_and_counts_once() {
        let (w, _) = deploying().await;
        let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
        *hooks.throttle_next.lock().unwrap() = 2;
        let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
        let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
        assert_eq!(answer.reported, Ok(()));
        assert_eq!(*hooks.attempts.lock().unwrap(), 3);
        assert_eq!(
            hooks.reports(),
            [("d-1".into(), "e-1".into(), HookStatus::Succeeded)]
        );
    }

    #[tokio::test]
    async fn a_hook_whose_deployment_reference_was_never_written_finds_its_release_by_description()
    {
        let w = World::new().await;
        let with_checks = PIPELINE.replace(
            "bake = \"10m\"\n[services.api.environments.prod]",
            &format!("bake = \"10m\"\n{CHECKS}\n[services.api.environments.prod]"),
        );
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: with_checks,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        // The arrival committed; CreateDeployment ran; the function died before recording it.
        let p = push("shiplane/api", 1, "v1.0.0");
        commit_arrival(&w, &p).await;
        let id = release_of(&w, &p).await;
        let hooks = FakeHooks::default();
        hooks.origins.lock().unwrap().insert(
            "d-LOST".into(),
            crate::aws::Origin::Release {
                release: id.clone(),
                environment: "dev".into(),
                attempt: 0,
                task_definition: Some("td:LOST".into()),
                restore: false,
            },
        );
        let inv = HookInvocation {
            deployment_id: "d-LOST".into(),
            ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-1")
        };
        let answer = w
            .engine()
            .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
            .await;
        assert_eq!(
            (answer.status, answer.release),
            (HookStatus::Succeeded, Some(id.clone()))
        );
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Validating));
        // The deployment is the stage's from now on (issue #22, simulation seed 5: a stage
        // validating with no deployment recorded waited for ever, and the deployment's
        // SUCCESS was taken for someone else's).
        let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
        assert_eq!(stage.deployment_id.as_deref(), Some("d-LOST"));
        assert_eq!(
            stage.task_definition.as_deref(),
            Some("td:LOST"),
            "the revision it deploys is recorded too, so a restore deploys it again (seed 61)"
        );
        let reference = w.store.deployment("d-LOST").await.unwrap().unwrap();
        assert_eq!(
            (reference.release, reference.environment.as_str()),
            (id.clone(), "dev")
        );
        // Without a hook alias there is no way to know which checks to run: Failed, alert.
        let unnamed = HookInvocation {
            hook: None,
            deployment_id: "d-LOST".into(),
            ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-2")
        };
        let answer = w
            .engine()
            .on_hook(&ScriptedChecker::default(), &hooks, &unnamed, soon(), T0)
            .await;
        assert_eq!(answer.status, HookStatus::Failed);
        let why = answer.reason.unwrap();
        assert!(why.contains("without a hook alias"), "{why}");
    }
}

mod hook_attempts {
    use super::*;
    use crate::aws::HookStatus;
    use crate::aws::fake::FakeHooks;
    use crate::checks::ScriptedChecker;
    use crate::engine::HookInvocation;
    use crate::pipeline::LifecycleHook;
    use crate::store::Commit;
    use tokio::time::Instant;

    fn invocation() -> HookInvocation {
        HookInvocation {
            deployment_id: "d-1".into(),
            execution_id: "e-1".into(),
            hook: Some(LifecycleHook::AfterAllowTestTraffic),
        }
    }

    /// What an attempt leaves before running its checks: "running, answers by `by`".
    async fn earlier_attempt(w: &World, by: Timestamp) {
        w.store
            .commit(Commit {
                claim: Some(Claim {
                    key: "hook#d-1#e-1#attempt".into(),
                    value: by.0.to_string(),
                    at: T0,
                    expires: T0.after(Duration::from_secs(3600)),
                }),
                ..Commit::default()
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_retry_after_an_attempt_that_died_mid_check_fails_closed_without_running_the_checks()
    {
        let w = World::new().await;
        w.pushed("shiplane/api", 1, "v1.0.0").await;
        // The earlier attempt should have answered a minute ago; it never did (a panic
        // aborted it, or Lambda's timeout killed it).
        earlier_attempt(&w, Timestamp(T0.0 - 60_000)).await;
        let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = w
            .engine()
            .on_hook(&checker, &hooks, &invocation(), deadline, T0)
            .await;
        assert_eq!(answer.status, HookStatus::Failed);
        assert!(answer.reason.unwrap().contains("earlier attempt"));
        assert!(
            checker.ran.lock().unwrap().is_empty(),
            "the checks are not run again"
        );
        assert_eq!(hooks.reports().len(), 1, "and CodeDeploy has its answer");
    }

    #[tokio::test]
    async fn a_duplicate_while_the_first_attempt_runs_answers_what_the_first_records() {
        let w = World::new().await;
        w.pushed("shiplane/api", 1, "v1.0.0").await;
        earlier_attempt(&w, T0.after(Duration::from_secs(30))).await;
        let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
        let deadline = Instant::now() + Duration::from_secs(10);
        let first_records = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            w.store
                .commit(Commit {
                    claim: Some(Claim {
                        key: "hook#d-1#e-1".into(),
                        value: "Succeeded".into(),
                        at: T0,
                        expires: T0.after(Duration::from_secs(3600)),
                    }),
                    ..Commit::default()
                })
                .await
                .unwrap();
        };
        let (engine, inv) = (w.engine(), invocation());
        let (answer, ()) = tokio::join!(
            engine.on_hook(&checker, &hooks, &inv, deadline, T0),
            first_records
        );
        assert_eq!(answer.status, HookStatus::Succeeded);
        assert!(
            checker.ran.lock().unwrap().is_empty(),
            "the duplicate ran nothing"
        );
    }
}

mod deployment_outcomes {
    use super::*;
    use crate::inbound::codedeploy::{DeploymentState, DeploymentStateChange};
    use crate::inbound::ecs::ServiceDeploymentEnded;

    /// Found by the simulation (seed 241, an operator cancelling while UpdateService was in
    /// flight): the deployment landed after the stage ended, its record was lost with the
    /// invocation, and its end event was taken for someone else's while it served. Its
    /// revision's tags name the release: it is recorded on the stage and undone.
    #[tokio::test]
    async fn an_ecs_deployment_that_landed_after_its_stage_ended_is_found_by_its_revisions_tags() {
        let w = World::new().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/db", 1, "v1").await;
        commit_only(&w, "db", "dev", &id, Event::MigrationSucceeded).await;
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
        let cancel = Event::Cancelled {
            actor: "ana".into(),
            reason: "second thoughts".into(),
        };
        e.on_event(&pipeline, "db", "dev", &id, cancel, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Cancelled));
        w.deployer.unrecorded_ecs.lock().unwrap().insert(
            "ecs-svc/LATE".into(),
            crate::aws::Tagged {
                release: id.clone(),
                environment: "dev".into(),
                task_definition: "db-dev:9".into(),
            },
        );
        let ended = ServiceDeploymentEnded {
            deployment_id: "ecs-svc/LATE".into(),
            service: Some(("shiplane-dev".into(), "db-dev".into())),
            outcome: Ok(()),
            at: T0,
        };
        // ECS cannot be asked now: the event fails, to be delivered again, and changes
        // nothing meanwhile (taken for another's, nothing would ever find it: seed 50993).
        *w.deployer.origin_failures.lock().unwrap() = 1;
        let err = e.on_service_deployment(&ended, T0).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("ecs-svc/LATE"), "{err}");
        let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
        assert_eq!(stage.deployment_id, None);
        let out = e.on_service_deployment(&ended, T0).await.unwrap();
        assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
        let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
        assert_eq!(stage.deployment_id.as_deref(), Some("ecs-svc/LATE"));
        assert_eq!(stage.task_definition.as_deref(), Some("db-dev:9"));
        assert!(w.store.deployment("ecs-svc/LATE").await.unwrap().is_some());
        let history = w.store.history_of_release(&id).await.unwrap();
        assert!(
            history.iter().any(|t| t
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("created after the stage ended"))),
            "{history:?}"
        );
        // Without its service in the event, or of a revision Shiplane did not tag: as before.
        let foreign = ServiceDeploymentEnded {
            deployment_id: "ecs-svc/HAND".into(),
            ..ended
        };
        let out = e.on_service_deployment(&foreign, T0).await.unwrap();
        assert!(matches!(out, Inbound::Ignored(_)), "{out:?}");
    }

    /// A rolling deployment that ECS no longer runs (a newer one of the service replaced
    /// it, here a late one no event told of) is deployed again by the reconciler's pass,
    /// and the replaced one's late news changes nothing (simulation seed 21288).
    #[tokio::test]
    async fn the_reconciler_deploys_again_a_rolling_deployment_that_was_replaced() {
        let w = World::new().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/db", 1, "v1").await;
        e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
            .await
            .unwrap();
        let deployment = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"]
            .deployment_id
            .clone()
            .unwrap();
        let before = w.deploys().len();
        // Still in progress: the pass changes nothing.
        e.reconcile(&pipeline, Some("db"), T0).await.unwrap();
        assert_eq!(w.deploys().len(), before);
        w.deployer
            .statuses
            .lock()
            .unwrap()
            .insert(deployment.clone(), DeploymentStatus::Replaced);
        e.reconcile(&pipeline, Some("db"), T0).await.unwrap();
        assert_eq!(w.deploys().len(), before + 1, "deployed again");
        let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
        assert_eq!(stage.state, StageState::Deploying);
        assert_eq!(stage.ended, std::slice::from_ref(&deployment));
        assert_ne!(stage.deployment_id.as_deref(), Some(deployment.as_str()));
        let history = w.store.history_of_release(&id).await.unwrap();
        assert!(
            history.iter().any(|t| t.cause == Cause::Redeployed),
            "{history:?}"
        );
        // The replaced one's success, arriving late, is not taken for the new one's.
        let late = ServiceDeploymentEnded {
            service: None,
            deployment_id: deployment.clone(),
            outcome: Ok(()),
            at: T0,
        };
        let _ = e.on_service_deployment(&late, T0).await;
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    }

    #[tokio::test]
    async fn a_rolling_services_ecs_deployment_ending_moves_the_stage_that_runs_it() {
        let w = World::new().await;
        let e = w.engine();
        let id = w.pushed("shiplane/db", 1, "v1").await;
        e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
            .await
            .unwrap();
        let deployment = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"]
            .deployment_id
            .clone()
            .unwrap();
        let ended = |outcome| ServiceDeploymentEnded {
            service: None,
            deployment_id: deployment.clone(),
            outcome,
            at: T0,
        };
        // Another deployment of the service (a circuit breaker's rollback): nothing.
        let other = ServiceDeploymentEnded {
            service: None,
            deployment_id: "ecs-svc/999".into(),
            ..ended(Ok(()))
        };
        assert!(matches!(
            e.on_service_deployment(&other, T0).await.unwrap(),
            Inbound::Ignored(why) if why.contains("not started by Shiplane")
        ));
        let failed = ended(Err(
            "ECS deployment circuit breaker: task failed to start.".into()
        ));
        e.on_service_deployment(&failed, T0).await.unwrap();
        let r = w.store.release(&id).await.unwrap().unwrap().item;
        assert_eq!(r.state_in("dev"), Some(StageState::Failed));
        assert!(
            r.stages["dev"]
                .reason
                .as_deref()
                .unwrap()
                .contains("circuit breaker"),
            "{:?}",
            r.stages["dev"]
        );
        // The late COMPLETED of the same deployment cannot revive it.
        let out = e.on_service_deployment(&ended(Ok(())), T0).await.unwrap();
        assert_eq!(
            w.state(&id, "dev").await,
            Some(StageState::Failed),
            "{out:?}"
        );

        // A second release's deployment completes: it succeeds (db has no bake in dev).
        let next = w.pushed("shiplane/db", 2, "v2").await;
        let task = w.store.release(&next).await.unwrap().unwrap().item.stages["dev"]
            .deployment_id
            .clone()
            .unwrap();
        e.on_task_stopped(&stopped(&task, None, Some(0)), T0)
            .await
            .unwrap();
        let deployment = w.store.release(&next).await.unwrap().unwrap().item.stages["dev"]
            .deployment_id
            .clone()
            .unwrap();
        let done = ServiceDeploymentEnded {
            service: None,
            deployment_id: deployment,
            outcome: Ok(()),
            at: T0,
        };
        e.on_service_deployment(&done, T0).await.unwrap();
        assert_eq!(w.state(&next, "dev").await, Some(StageState::Succeeded));
    }

    #[tokio::test]
    async fn codedeploys_own_rollback_deployment_is_reported_on_the_release_it_rolled_back() {
        let w = World::new().await;
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        w.engine()
            .on_deployment_state(&change("d-1", DeploymentState::Failure), T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Failed));
        // CodeDeploy rolls d-1 back with a deployment of its own, which ends.
        async fn rollback_ends(
            w: &World,
            id: &ReleaseId,
            rollback: &str,
            state: DeploymentState,
        ) -> Vec<Transition> {
            w.deployer
                .rollbacks
                .lock()
                .unwrap()
                .insert(rollback.into(), "d-1".into());
            w.engine()
                .on_deployment_state(&change(rollback, state), T0)
                .await
                .unwrap();
            w.store.history_of_release(id).await.unwrap()
        }
        let history = rollback_ends(&w, &id, "d-rb", DeploymentState::Success).await;
        let last = history.last().unwrap();
        assert_eq!(last.cause, Cause::CodeDeployRollback);
        assert!(
            last.detail
                .as_deref()
                .unwrap()
                .contains("rollback deployment d-rb (of d-1) succeeded"),
            "{last:?}"
        );
        assert_eq!(last.to, Some(StageState::Failed), "a fact; the stage stays");
        // Had it failed, a person is told, by an alert, and the lane records the release
        // as what may run (here there is no last known good to put back).
        let history = rollback_ends(&w, &id, "d-rb2", DeploymentState::Failure).await;
        let last = history.last().unwrap();
        assert_eq!(last.cause, Cause::RollbackFailed);
        assert!(
            last.detail
                .as_deref()
                .unwrap()
                .contains("may run neither version wholly"),
            "{last:?}"
        );
        assert_eq!(w.notifier.kinds().last().map(String::as_str), Some("alert"));
        let lane = w.store.lane("api", "dev").await.unwrap().item;
        assert_eq!(lane.current, Some(id.clone()));
        // A deployment that is neither Shiplane's nor a rollback of one: ignored.
        let out = w
            .engine()
            .on_deployment_state(&change("d-someone", DeploymentState::Success), T0)
            .await
            .unwrap();
        assert!(matches!(out, Inbound::Ignored(_)), "{out:?}");
    }

    /// CodeDeploy's own rollback of a stopped deployment failed (simulation, once the world
    /// made rollbacks: 10 % of production traffic stayed on the bad version): the lane
    /// records that release as what may run, and restores the last known good itself.
    #[tokio::test]
    async fn a_failed_codedeploy_rollback_makes_the_lane_restore_the_last_known_good() {
        let w = World::new().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let (v1, v2, d2) = w.good_then_deploying().await;
        let alarm = Event::AlarmFired {
            alarm: "api-dev-5xx".into(),
        };
        e.on_event(&pipeline, "api", "dev", &v2, alarm, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&v2, "dev").await, Some(StageState::RolledBack));
        e.on_deployment_state(&change(&d2, DeploymentState::Stop), T0)
            .await
            .unwrap();
        let deploys = w.deploys().len();
        w.deployer
            .rollbacks
            .lock()
            .unwrap()
            .insert("d-rb".into(), d2.clone());
        e.on_deployment_state(&change("d-rb", DeploymentState::Failure), T0)
            .await
            .unwrap();
        let history = w.store.history_of_release(&v2).await.unwrap();
        assert!(
            history.iter().any(|t| t.cause == Cause::RollbackFailed
                && t.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("the last known good is deployed again"))),
            "{history:?}"
        );
        assert_eq!(w.state(&v1, "dev").await, Some(StageState::Deploying));
        assert_eq!(w.deploys().len(), deploys + 1, "the restore's deployment");
    }

    /// Found by the simulation (seed 118): CreateDeployment served, the function died
    /// before recording it, and the deployment ended; its event was taken for someone
    /// else's, and the reconciler later made a second deployment for the same try.
    #[tokio::test]
    async fn a_deployment_that_ended_unrecorded_is_recorded_from_its_description_then_ends_its_stage()
     {
        let w = World::new().await;
        let p = push("shiplane/api", 1, "v1.0.0");
        commit_arrival(&w, &p).await;
        let id = release_of(&w, &p).await;
        let made = |attempt| crate::aws::Origin::Release {
            release: id.clone(),
            environment: "dev".into(),
            attempt,
            task_definition: Some("td:LOST".into()),
            restore: false,
        };
        // An earlier attempt's deployment changes nothing.
        w.deployer
            .unrecorded
            .lock()
            .unwrap()
            .insert("d-OLD".into(), made(3));
        let out = w
            .engine()
            .on_deployment_state(&change("d-OLD", DeploymentState::Success), T0)
            .await
            .unwrap();
        assert!(matches!(out, Inbound::Ignored(_)), "{out:?}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));

        w.deployer
            .unrecorded
            .lock()
            .unwrap()
            .insert("d-LOST".into(), made(0));
        // CodeDeploy cannot say now who made it: delivered again, nothing changed.
        *w.deployer.origin_failures.lock().unwrap() = 1;
        let err = w
            .engine()
            .on_deployment_state(&change("d-LOST", DeploymentState::Success), T0)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
        let out = w
            .engine()
            .on_deployment_state(&change("d-LOST", DeploymentState::Success), T0)
            .await
            .unwrap();
        assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
        assert_eq!(stage.deployment_id.as_deref(), Some("d-LOST"));
        assert_eq!(stage.task_definition.as_deref(), Some("td:LOST"));
        let reference = w.store.deployment("d-LOST").await.unwrap().unwrap();
        assert_eq!(reference.release, id);
        assert!(w.deploys().is_empty(), "no second deployment");
    }

    fn change(deployment: &str, state: DeploymentState) -> DeploymentStateChange {
        DeploymentStateChange {
            deployment_id: deployment.into(),
            application: "api".into(),
            deployment_group: "api-dev".into(),
            state,
            at: T0,
        }
    }

    #[tokio::test]
    async fn success_bakes_the_stage_and_the_same_event_again_changes_nothing() {
        let w = World::new().await;
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        let e = w.engine();
        let out = e
            .on_deployment_state(&change("d-1", DeploymentState::Success), T0)
            .await
            .unwrap();
        assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        let before = w.store.history_of_release(&id).await.unwrap().len();
        e.on_deployment_state(&change("d-1", DeploymentState::Success), T0)
            .await
            .unwrap();
        assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
        for state in [DeploymentState::Start, DeploymentState::Ready] {
            let out = e
                .on_deployment_state(&change("d-1", state), T0)
                .await
                .unwrap();
            assert!(matches!(out, Inbound::Ignored(_)), "{state:?}");
        }
    }

    #[tokio::test]
    async fn failure_fails_the_stage_with_codedeploys_reason_and_the_queued_release_deploys() {
        let w = World::new().await;
        let r1 = w.pushed("shiplane/api", 1, "v1.0.1").await;
        let r2 = w.pushed("shiplane/api", 2, "v1.0.2").await;
        w.deployer.set_status(
            "d-1",
            DeploymentStatus::Failed(
                "CodeDeploy deployment d-1 failed: the AfterAllowTestTraffic hook failed".into(),
            ),
        );
        w.engine()
            .on_deployment_state(&change("d-1", DeploymentState::Failure), T0)
            .await
            .unwrap();
        let r = w.store.release(&r1).await.unwrap().unwrap().item;
        assert_eq!(r.state_in("dev"), Some(StageState::Failed));
        assert!(
            r.stages["dev"]
                .reason
                .as_deref()
                .unwrap()
                .contains("hook failed")
        );
        assert_eq!(w.state(&r2, "dev").await, Some(StageState::Deploying));
        assert_eq!(w.deploys(), [format!("{r1}@dev"), format!("{r2}@dev")]);
        // A stop of the next one, said as CodeDeploy says it.
        w.engine()
            .on_deployment_state(&change("d-2", DeploymentState::Stop), T0)
            .await
            .unwrap();
        let r = w.store.release(&r2).await.unwrap().unwrap().item;
        assert!(
            r.stages["dev"]
                .reason
                .as_deref()
                .unwrap()
                .contains("was stopped"),
            "{:?}",
            r.stages["dev"]
        );
    }

    #[tokio::test]
    async fn a_late_event_of_an_older_deployment_never_finishes_a_newer_one() {
        let w = World::new().await;
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await; // runs d-1
        // An older deployment of the same release and environment (one that was replaced)
        // is still known by reference.
        w.store
            .commit(crate::store::Commit {
                deployments: vec![crate::store::DeploymentRef {
                    deployment_id: "d-OLD".into(),
                    release: id.clone(),
                    service: "api".into(),
                    environment: "dev".into(),
                    restore: false,
                }],
                ..crate::store::Commit::default()
            })
            .await
            .unwrap();
        let out = w
            .engine()
            .on_deployment_state(&change("d-OLD", DeploymentState::Success), T0)
            .await
            .unwrap();
        assert!(
            matches!(out, Inbound::Ignored(ref why) if why.contains("late event")),
            "{out:?}"
        );
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
    }

    #[tokio::test]
    async fn the_end_of_a_deployment_shiplane_did_not_start_frees_the_lane_it_blocked() {
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
        let e = w.engine();
        let out = e
            .on_deployment_state(&change("d-MANUAL", DeploymentState::Success), T0)
            .await
            .unwrap();
        assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
        assert_eq!(w.deploys().len(), 2);
        // A foreign deployment in a group no release waits for changes nothing.
        let other = DeploymentStateChange {
            deployment_group: "elsewhere".into(),
            ..change("d-X", DeploymentState::Failure)
        };
        assert!(matches!(
            e.on_deployment_state(&other, T0).await.unwrap(),
            Inbound::Ignored(_)
        ));
    }
}

mod alarms {
    use super::*;
    use crate::facts::AlarmChange;
    use crate::release::AlarmState;

    pub(super) async fn watched() -> World {
        let w = World::new().await;
        let with_alarms = PIPELINE.replace(
            "bake = \"10m\"\n[services.api.environments.prod]",
            "bake = \"10m\"\nalarm_prefixes = [\"api-dev-\"]\n[services.api.environments.prod]",
        );
        assert_ne!(with_alarms, PIPELINE);
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: with_alarms,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        w
    }

    pub(super) fn alarm(state: AlarmState, second: u64) -> AlarmChange {
        AlarmChange {
            alarm: "api-dev-5xx".into(),
            state,
            at: Timestamp(T0.0 + second * 1000),
            reason: "Threshold Crossed".into(),
        }
    }

    fn stops(w: &World) -> usize {
        w.deployer
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Stop { rollback: true, .. }))
            .count()
    }

    #[tokio::test]
    async fn an_alarm_during_deployment_stops_and_rolls_back_once_however_often_it_arrives() {
        let w = watched().await;
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        for _ in 0..3 {
            w.engine()
                .on_alarm(&alarm(AlarmState::Alarm, 10), T0)
                .await
                .unwrap();
        }
        assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
        assert_eq!(
            stops(&w),
            1,
            "exactly one StopDeployment(autoRollbackEnabled)"
        );
        let lane = w.store.lane("api", "dev").await.unwrap().item;
        assert_eq!(lane.in_flight, None);
        assert_eq!(lane.alarms["api-dev-5xx"].state, AlarmState::Alarm);
    }

    #[tokio::test]
    async fn an_alarm_during_bake_restores_the_last_known_good_once_and_the_bad_release_goes_no_further()
     {
        let w = watched().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let good = w.pushed("shiplane/api", 1, "v1.0.0").await;
        e.on_event(
            &pipeline,
            "api",
            "dev",
            &good,
            Event::DeploymentSucceeded,
            T0,
        )
        .await
        .unwrap();
        e.on_event(&pipeline, "api", "dev", &good, Event::BakeElapsed, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
        let bad = w.pushed("shiplane/api", 2, "v1.0.1").await;
        e.on_event(
            &pipeline,
            "api",
            "dev",
            &bad,
            Event::DeploymentSucceeded,
            T0,
        )
        .await
        .unwrap();
        assert_eq!(w.state(&bad, "dev").await, Some(StageState::Baking));
        let deploys_before = w.deploys().len();
        // The alarm fires, clears and fires again (flapping), and arrives twice.
        for (state, second) in [
            (AlarmState::Alarm, 10),
            (AlarmState::Alarm, 10),
            (AlarmState::Ok, 20),
            (AlarmState::Alarm, 30),
        ] {
            e.on_alarm(&alarm(state, second), T0).await.unwrap();
        }
        assert_eq!(w.state(&bad, "dev").await, Some(StageState::RolledBack));
        assert_eq!(
            w.deploys()[deploys_before..],
            [format!("{good}@dev")],
            "exactly one redeploy of the last known good release"
        );
        assert_eq!(w.state(&good, "dev").await, Some(StageState::Deploying));
        // Restored: the good release succeeds again; the bad one never reached prod.
        e.on_event(
            &pipeline,
            "api",
            "dev",
            &good,
            Event::DeploymentSucceeded,
            T0,
        )
        .await
        .unwrap();
        assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
        assert_eq!(w.state(&bad, "prod").await, None);
        let lane = w.store.lane("api", "dev").await.unwrap().item;
        assert_eq!(
            (lane.current, lane.last_known_good),
            (Some(good.clone()), Some(good))
        );
    }

    /// Simulation seed 19597: a bad release cancelled in its bake kept serving (only a
    /// deployment in flight was undone), and its alarm then rolled back the good push
    /// after it.
    #[tokio::test]
    async fn cancelling_a_baking_release_restores_the_last_known_good_before_the_queue_moves() {
        let w = watched().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let good = w.pushed("shiplane/api", 1, "v1.0.0").await;
        for event in [Event::DeploymentSucceeded, Event::BakeElapsed] {
            e.on_event(&pipeline, "api", "dev", &good, event, T0)
                .await
                .unwrap();
        }
        let bad = w.pushed("shiplane/api", 2, "v1.0.1").await;
        e.on_event(
            &pipeline,
            "api",
            "dev",
            &bad,
            Event::DeploymentSucceeded,
            T0,
        )
        .await
        .unwrap();
        let next = w.pushed("shiplane/api", 3, "v1.0.2").await;
        assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
        let deploys_before = w.deploys().len();
        let cancel = Event::Cancelled {
            actor: "ana".into(),
            reason: "errors in the logs".into(),
        };
        e.on_event(&pipeline, "api", "dev", &bad, cancel, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&bad, "dev").await, Some(StageState::Cancelled));
        assert_eq!(
            w.deploys()[deploys_before..],
            [format!("{good}@dev")],
            "the last known good is deployed again, and nothing else"
        );
        assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
        e.on_event(
            &pipeline,
            "api",
            "dev",
            &good,
            Event::DeploymentSucceeded,
            T0,
        )
        .await
        .unwrap();
        assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
        assert_eq!(w.state(&next, "dev").await, Some(StageState::Deploying));
        assert_eq!(w.deploys().last(), Some(&format!("{next}@dev")));
    }

    #[tokio::test]
    async fn an_older_alarm_change_arriving_late_is_ignored() {
        let w = watched().await;
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        w.engine()
            .on_alarm(&alarm(AlarmState::Ok, 20), T0)
            .await
            .unwrap();
        let out = w
            .engine()
            .on_alarm(&alarm(AlarmState::Alarm, 10), T0)
            .await
            .unwrap();
        let Inbound::Accepted(report) = out else {
            panic!()
        };
        assert!(
            report.refused[0].contains("before the change already recorded"),
            "{report:?}"
        );
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
        assert_eq!(stops(&w), 0);
        // INSUFFICIENT_DATA is recorded, nothing more.
        w.engine()
            .on_alarm(&alarm(AlarmState::InsufficientData, 30), T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
        let history = w.store.history_of_service("api", 50).await.unwrap();
        let causes = history_causes(&history);
        assert!(
            causes.contains(&"alarm_cleared") && causes.contains(&"alarm_no_data"),
            "{causes:?}"
        );
    }

    #[tokio::test]
    async fn without_a_last_known_good_nothing_is_deployed_and_the_reason_asks_for_a_person() {
        let w = watched().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        e.on_alarm(&alarm(AlarmState::Alarm, 10), T0).await.unwrap();
        let r = w.store.release(&id).await.unwrap().unwrap().item;
        assert_eq!(r.state_in("dev"), Some(StageState::RolledBack));
        assert!(
            r.stages["dev"]
                .reason
                .as_deref()
                .unwrap()
                .contains("manual action needed")
        );
        assert_eq!(w.deploys().len(), 1);
        let unwatched = AlarmChange {
            alarm: "billing".into(),
            ..alarm(AlarmState::Alarm, 40)
        };
        assert!(matches!(
            e.on_alarm(&unwatched, T0).await.unwrap(),
            Inbound::Ignored(_)
        ));
    }
}

/// DESIGN invariant 8: order comes from the source, also within one second.
mod same_second_pushes {
    use super::*;
    use crate::aws::{FakePushClock, PushClock};

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
}

/// DESIGN invariant 12: a lane's own firing alarm blocks its start and its success.
mod own_alarms {
    use super::*;
    use crate::facts::AlarmChange;
    use crate::release::AlarmState;

    /// A world whose db dev stage (a migration first, no bake) watches `db-dev-` alarms.
    async fn watched() -> World {
        let w = World::new().await;
        let with_alarms = PIPELINE.replace(
            "service = \"db-dev\"\n",
            "service = \"db-dev\"\nalarm_prefixes = [\"db-dev-\"]\n",
        );
        assert_ne!(with_alarms, PIPELINE);
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: with_alarms,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        w
    }

    fn alarm(state: AlarmState, second: u64) -> AlarmChange {
        AlarmChange {
            alarm: "db-dev-errors".into(),
            state,
            at: Timestamp(T0.0 + second * 1000),
            reason: "Threshold Crossed".into(),
        }
    }

    fn migrations(w: &World) -> usize {
        w.deployer
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::RunMigration { .. }))
            .count()
    }

    #[tokio::test]
    async fn an_alarm_during_a_migration_ends_the_stage_deploys_nothing_and_holds_the_next_release_until_ok()
     {
        let w = watched().await;
        let e = w.engine();
        let first = w.pushed("shiplane/db", 1, "v1").await;
        assert_eq!(w.state(&first, "dev").await, Some(StageState::Migrating));
        e.on_alarm(&alarm(AlarmState::Alarm, 10), T0).await.unwrap();
        let r = w.store.release(&first).await.unwrap().unwrap().item;
        assert_eq!(r.state_in("dev"), Some(StageState::Failed));
        let reason = r.stages["dev"].reason.clone().unwrap();
        assert!(
            reason.contains("db-dev-errors") && reason.contains("left to finish"),
            "{reason}"
        );
        // The task is left to finish, and its end deploys nothing.
        assert!(
            !w.deployer
                .calls()
                .iter()
                .any(|c| matches!(c, Call::Stop { .. })),
            "{:?}",
            w.deployer.calls()
        );
        e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
            .await
            .unwrap();
        assert_eq!(w.state(&first, "dev").await, Some(StageState::Failed));
        assert!(w.deploys().is_empty(), "{:?}", w.deploys());
        // A push while the alarm fires waits, whoever looks at the lane.
        let next = w.pushed("shiplane/db", 2, "v2").await;
        assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
        let pipeline = e.pipeline().await.unwrap();
        e.reconcile(&pipeline, None, T0).await.unwrap();
        assert_eq!(w.state(&next, "dev").await, Some(StageState::Queued));
        assert_eq!(migrations(&w), 1);
        // OK: the held release starts, nothing stranded.
        e.on_alarm(&alarm(AlarmState::Ok, 20), T0).await.unwrap();
        assert_eq!(w.state(&next, "dev").await, Some(StageState::Migrating));
        assert_eq!(migrations(&w), 2);
    }

    #[tokio::test]
    async fn a_deployment_that_succeeds_while_its_lanes_alarm_fires_is_replaced_not_made_last_known_good()
     {
        let w = watched().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let good = w.pushed("shiplane/db", 1, "v1").await;
        e.on_task_stopped(&stopped("arn:aws:ecs:task/1", None, Some(0)), T0)
            .await
            .unwrap();
        e.on_event(
            &pipeline,
            "db",
            "dev",
            &good,
            Event::DeploymentSucceeded,
            T0,
        )
        .await
        .unwrap();
        assert_eq!(w.state(&good, "dev").await, Some(StageState::Succeeded));
        e.on_alarm(&alarm(AlarmState::Alarm, 10), T0).await.unwrap();
        let bad = w.pushed("shiplane/db", 2, "v2").await;
        assert_eq!(w.state(&bad, "dev").await, Some(StageState::Queued));
        // An operator overrides the hold; the new version deploys and succeeds while the
        // alarm still fires.
        let unblock = LaneEvent::Unblock {
            actor: "ana".into(),
            reason: "hotfix".into(),
        };
        e.on_lane(&pipeline, "db", "dev", unblock, T0)
            .await
            .unwrap();
        let history = w.store.history_of_service("db", 50).await.unwrap();
        let unblocked = history
            .iter()
            .find(|t| t.cause == Cause::Unblocked)
            .unwrap();
        assert_eq!(
            unblocked.detail.as_deref(),
            Some("hotfix (overriding the gate: db-dev-errors (dev) in ALARM)")
        );
        let task = format!("arn:aws:ecs:task/{}", w.deployer.calls().len());
        e.on_task_stopped(&stopped(&task, None, Some(0)), T0)
            .await
            .unwrap();
        assert_eq!(w.state(&bad, "dev").await, Some(StageState::Deploying));
        e.on_event(&pipeline, "db", "dev", &bad, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&bad, "dev").await, Some(StageState::RolledBack));
        let lane = w.store.lane("db", "dev").await.unwrap().item;
        assert_eq!(lane.last_known_good, Some(good.clone()));
        assert_eq!(lane.in_flight, Some(good.clone()), "the restore runs");
        assert_eq!(
            w.deploys().last().map(String::as_str),
            Some(format!("{good}@dev").as_str())
        );
    }
}

mod gates {
    use super::*;
    use crate::facts::AlarmChange;
    use crate::release::AlarmState;

    #[tokio::test]
    async fn a_dev_alarm_holds_the_prod_promotion_and_its_return_to_ok_lets_it_go() {
        let w = World::new().await;
        let gated = PIPELINE
            .replace(
                "bake = \"10m\"\n[services.api.environments.prod]",
                "bake = \"10m\"\nalarm_prefixes = [\"api-dev-\"]\n[services.api.environments.prod]",
            )
            .replace(
                "deployment_group = \"api-prod\" }\napproval = \"manual\"",
                "deployment_group = \"api-prod\" }\napproval = \"manual\"\nhold_while_alarms_in = [\"dev\"]",
            );
        assert!(gated.contains("hold_while_alarms_in"));
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: gated,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        e.on_event(&pipeline, "api", "dev", &id, Event::BakeElapsed, T0)
            .await
            .unwrap();
        assert_eq!(
            w.state(&id, "prod").await,
            Some(StageState::AwaitingApproval)
        );
        let change = |state, second: u64| AlarmChange {
            alarm: "api-dev-5xx".into(),
            state,
            at: Timestamp(T0.0 + second * 1000),
            reason: "r".into(),
        };
        e.on_alarm(&change(AlarmState::Alarm, 10), T0)
            .await
            .unwrap();
        // Approved while dev's alarm fires: held in the queue, with the reason.
        let approve = Event::Approved {
            actor: "ana".into(),
        };
        e.on_event(&pipeline, "api", "prod", &id, approve, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "prod").await, Some(StageState::Queued));
        let history = w.store.history_of_release(&id).await.unwrap();
        let queued = history
            .iter()
            .rev()
            .find(|t| t.environment == "prod")
            .unwrap();
        assert_eq!(queued.actor.as_deref(), Some("ana"));
        assert_eq!(
            queued.detail.as_deref(),
            Some("held: api-dev-5xx (dev) in ALARM")
        );
        assert!(w.deploys().iter().all(|d| !d.ends_with("@prod")));
        // Nothing starts it while the alarm fires (the reconciler looks too).
        e.reconcile(&pipeline, None, T0).await.unwrap();
        assert_eq!(w.state(&id, "prod").await, Some(StageState::Queued));
        // The alarm returns to OK: the promotion proceeds.
        e.on_alarm(&change(AlarmState::Ok, 20), T0).await.unwrap();
        assert_eq!(w.state(&id, "prod").await, Some(StageState::Deploying));
        assert_eq!(
            w.deploys().last().map(String::as_str),
            Some(format!("{id}@prod").as_str())
        );
    }
}

/// Write skew on a gate: every gate lane a decision read is a condition of its commit.
mod gate_skew {
    use super::*;
    use crate::inbound::alarm::AlarmState;
    use crate::store::{Commit, DeploymentRef, Reads, Snapshot, StoreError, Versioned};
    use std::sync::{Arc, Mutex};

    /// A store that lands `first` (another invocation's commit) just before the first
    /// commit it is asked for: a write between a decision's read and its commit. It can
    /// also fail every read of one deployment's reference (`unreadable`: throttled).
    pub(super) struct Interleaved {
        pub(super) inner: MemoryStore,
        pub(super) first: Mutex<Option<Commit>>,
        pub(super) unreadable: Option<String>,
    }

    impl ReleaseStore for Interleaved {
        async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
            let first = self.first.lock().unwrap().take();
            if let Some(first) = first {
                self.inner.commit(first).await.unwrap();
            }
            self.inner.commit(commit).await
        }
        async fn release(&self, id: &ReleaseId) -> Result<Option<Versioned<Release>>, StoreError> {
            self.inner.release(id).await
        }
        async fn lane(
            &self,
            service: &str,
            environment: &str,
        ) -> Result<Versioned<crate::release::Lane>, StoreError> {
            self.inner.lane(service, environment).await
        }
        async fn lanes(
            &self,
            service: &str,
        ) -> Result<Vec<Versioned<crate::release::Lane>>, StoreError> {
            self.inner.lanes(service).await
        }
        async fn releases_of_service(
            &self,
            service: &str,
            limit: usize,
        ) -> Result<Vec<Release>, StoreError> {
            self.inner.releases_of_service(service, limit).await
        }
        async fn history_of_release(&self, id: &ReleaseId) -> Result<Vec<Transition>, StoreError> {
            self.inner.history_of_release(id).await
        }
        async fn history_of_service(
            &self,
            service: &str,
            limit: usize,
        ) -> Result<Vec<Transition>, StoreError> {
            self.inner.history_of_service(service, limit).await
        }
        async fn read(&self, reads: &Reads, now: Timestamp) -> Result<Snapshot, StoreError> {
            self.inner.read(reads, now).await
        }
        fn cached_pipeline(&self) -> Option<Arc<StoredPipeline>> {
            self.inner.cached_pipeline()
        }
        async fn settle_claim(
            &self,
            key: &str,
            tag: &str,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            self.inner.settle_claim(key, tag, now).await
        }
        async fn claimed(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
            self.inner.claimed(key, now).await
        }
        async fn deployment(
            &self,
            deployment_id: &str,
        ) -> Result<Option<DeploymentRef>, StoreError> {
            if self.unreadable.as_deref() == Some(deployment_id) {
                return Err(StoreError::Unavailable {
                    message: "DynamoDB GetItem: ProvisionedThroughputExceededException".into(),
                });
            }
            self.inner.deployment(deployment_id).await
        }
        async fn pipeline(&self) -> Result<Option<StoredPipeline>, StoreError> {
            self.inner.pipeline().await
        }
        async fn put_pipeline(&self, pipeline: StoredPipeline) -> Result<(), StoreError> {
            self.inner.put_pipeline(pipeline).await
        }
    }

    #[tokio::test]
    async fn a_dev_alarm_committed_between_a_prod_decisions_read_and_its_commit_holds_prod() {
        let w = World::new().await;
        let gated = PIPELINE
            .replace(
                "bake = \"10m\"\n[services.api.environments.prod]",
                "bake = \"10m\"\nalarm_prefixes = [\"api-dev-\"]\n[services.api.environments.prod]",
            )
            .replace(
                "deployment_group = \"api-prod\" }\napproval = \"manual\"",
                "deployment_group = \"api-prod\" }\napproval = \"manual\"\nhold_while_alarms_in = [\"dev\"]",
            );
        assert!(gated.contains("hold_while_alarms_in"));
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: gated,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        e.on_event(&pipeline, "api", "dev", &id, Event::BakeElapsed, T0)
            .await
            .unwrap();
        assert_eq!(
            w.state(&id, "prod").await,
            Some(StageState::AwaitingApproval)
        );
        // Another invocation's decision: dev's alarm fires (dev is idle, so only its lane
        // changes).
        let dev = LoadedLane::load(&w.store, "api", "dev", &[]).await.unwrap();
        let (service, stage) = stage_of(&pipeline, "api", "dev").unwrap();
        let fired = LaneEvent::AlarmChanged {
            alarm: "api-dev-5xx".into(),
            state: AlarmState::Alarm,
            at: Timestamp(T0.0 + 10_000),
            reason: "Threshold Crossed".into(),
        };
        let decision =
            crate::release::apply_lane(&dev.view, &fired, &Policy::for_stage(service, stage), T0)
                .unwrap();
        let skewed = Interleaved {
            inner: w.store,
            first: Mutex::new(Some(dev.commit_for(&decision))),
            unreadable: None,
        };
        let e = Engine {
            store: &skewed,
            deployer: &w.deployer,
            notifier: &w.notifier,
            timer: &w.timer,
        };
        // The approval is decided against dev without the alarm; dev's alarm lands before
        // its commit.
        let approve = Event::Approved {
            actor: "ana".into(),
        };
        e.on_event(&pipeline, "api", "prod", &id, approve, T0)
            .await
            .unwrap();
        assert!(skewed.first.lock().unwrap().is_none(), "the alarm landed");
        let dev_lane = skewed.inner.lane("api", "dev").await.unwrap().item;
        assert_eq!(dev_lane.alarms["api-dev-5xx"].state, AlarmState::Alarm);
        let r = skewed.inner.release(&id).await.unwrap().unwrap().item;
        assert_eq!(r.state_in("prod"), Some(StageState::Queued));
        assert!(
            !w.deployer
                .calls()
                .iter()
                .any(|c| matches!(c, Call::Deploy { environment, .. } if environment == "prod")),
            "{:?}",
            w.deployer.calls()
        );
        let history = skewed.inner.history_of_release(&id).await.unwrap();
        let queued = history
            .iter()
            .rev()
            .find(|t| t.environment == "prod")
            .unwrap();
        assert_eq!(
            queued.detail.as_deref(),
            Some("held: api-dev-5xx (dev) in ALARM")
        );
    }
}

mod operator_levers {
    use super::*;

    /// `n` releases of api that each succeeded in dev, oldest first.
    async fn succeeded(w: &World, n: u8) -> Vec<ReleaseId> {
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let mut ids = Vec::new();
        for i in 1..=n {
            let id = w.pushed("shiplane/api", i, &format!("v1.0.{i}")).await;
            e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
                .await
                .unwrap();
            e.on_event(&pipeline, "api", "dev", &id, Event::BakeElapsed, T0)
                .await
                .unwrap();
            ids.push(id);
        }
        ids
    }

    #[tokio::test]
    async fn promote_skip_bake_ends_the_bake_now_recorded_with_who_and_why() {
        let w = World::new().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        let early = Event::PromotedEarly {
            actor: "ana".into(),
            reason: "security fix, CVE-2026-1234".into(),
        };
        e.on_event(&pipeline, "api", "dev", &id, early.clone(), T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
        assert_eq!(
            w.state(&id, "prod").await,
            Some(StageState::AwaitingApproval)
        );
        let history = w.store.history_of_release(&id).await.unwrap();
        let t = history
            .iter()
            .find(|t| t.cause == Cause::PromotedEarly)
            .unwrap();
        assert_eq!(
            (t.actor.as_deref(), t.detail.as_deref()),
            (Some("ana"), Some("security fix, CVE-2026-1234"))
        );
        // Not baking any more: refused.
        let again = e
            .on_event(&pipeline, "api", "dev", &id, early, T0)
            .await
            .unwrap();
        assert!(again.transitions.is_empty() && !again.refused.is_empty());
    }

    #[tokio::test]
    async fn rollback_puts_the_previous_good_release_back_and_stops_what_is_in_flight() {
        let w = World::new().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let ids = succeeded(&w, 2).await;
        let (v1, v2) = (&ids[0], &ids[1]);
        let v3 = w.pushed("shiplane/api", 3, "v1.0.3").await; // deploying
        let d3 = w.store.release(&v3).await.unwrap().unwrap().item.stages["dev"]
            .deployment_id
            .clone()
            .unwrap();
        let rollback = LaneEvent::Rollback {
            actor: "ana".into(),
            reason: "v1.0.2 corrupts carts".into(),
            to: None,
        };
        e.on_lane(&pipeline, "api", "dev", rollback, T0)
            .await
            .unwrap();
        // v2 ran and was the last known good: the rollback goes to v1, the one before.
        assert_eq!(w.state(v1, "dev").await, Some(StageState::Deploying));
        assert_eq!(w.state(v2, "dev").await, Some(StageState::RolledBack));
        assert_eq!(w.state(&v3, "dev").await, Some(StageState::RolledBack));
        assert!(w.deployer.calls().contains(&Call::Stop {
            deployment_id: d3,
            rollback: true
        }));
        assert_eq!(
            w.deploys().last().map(String::as_str),
            Some(format!("{v1}@dev").as_str())
        );
        e.on_event(&pipeline, "api", "dev", v1, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        let lane = w.store.lane("api", "dev").await.unwrap().item;
        assert_eq!(
            (lane.current.as_ref(), lane.in_flight.as_ref()),
            (Some(v1), None)
        );
        assert_eq!(
            w.state(v1, "prod").await,
            Some(StageState::Superseded),
            "a restore is not promoted again"
        );
        let history = w.store.history_of_service("api", 100).await.unwrap();
        assert!(
            history
                .iter()
                .any(|t| t.cause == Cause::Rollback && t.actor.as_deref() == Some("ana"))
        );
    }

    #[tokio::test]
    async fn rollback_to_a_named_release_and_refusals() {
        let w = World::new().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let ids = succeeded(&w, 3).await;
        let to_first = LaneEvent::Rollback {
            actor: "ana".into(),
            reason: "back to the known state".into(),
            to: Some(ids[0].clone()),
        };
        e.on_lane(&pipeline, "api", "dev", to_first, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&ids[0], "dev").await, Some(StageState::Deploying));
        assert_eq!(w.state(&ids[2], "dev").await, Some(StageState::RolledBack));
        // A release that never succeeded in prod cannot be rolled back to there.
        let never = LaneEvent::Rollback {
            actor: "ana".into(),
            reason: "x".into(),
            to: Some(ids[1].clone()),
        };
        let report = e
            .on_lane(&pipeline, "api", "prod", never, T0)
            .await
            .unwrap();
        assert!(
            report.refused[0].contains("never succeeded here"),
            "{report:?}"
        );
        // Nothing ever succeeded in an environment: nothing to roll back to.
        let fresh = World::new().await;
        let nothing = LaneEvent::Rollback {
            actor: "ana".into(),
            reason: "x".into(),
            to: None,
        };
        let report = fresh
            .engine()
            .on_lane(&pipeline, "api", "dev", nothing, T0)
            .await
            .unwrap();
        assert!(
            report.refused[0].contains("no earlier release"),
            "{report:?}"
        );
    }
}

mod retry {
    use super::*;

    #[tokio::test]
    async fn a_failed_migration_retried_runs_a_new_task_and_the_old_tasks_late_stop_changes_nothing()
     {
        let w = World::new().await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/db", 1, "v1").await;
        let r = w.store.release(&id).await.unwrap().unwrap().item;
        let first_task = r.stages["dev"].deployment_id.clone().unwrap();
        let first_by = crate::aws::started_by(&r, "dev");
        e.on_task_stopped(&stopped(&first_task, Some(first_by.clone()), Some(1)), T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Failed));

        let report = e
            .on_event(
                &pipeline,
                "db",
                "dev",
                &id,
                Event::Retry {
                    actor: "ana".into(),
                },
                T0,
            )
            .await
            .unwrap();
        assert!(report.refused.is_empty(), "{report:?}");
        let r = w.store.release(&id).await.unwrap().unwrap().item;
        assert_eq!(r.state_in("dev"), Some(StageState::Migrating));
        assert_eq!(r.stages["dev"].attempt, 1);
        let second_task = r.stages["dev"].deployment_id.clone().unwrap();
        assert_ne!(
            second_task, first_task,
            "a new migration task, not the failed one adopted"
        );
        let migrations = w
            .deployer
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::RunMigration { .. }))
            .count();
        assert_eq!(migrations, 2);
        // The first attempt's stop event, delivered again late: ignored.
        let late = e
            .on_task_stopped(
                &stopped("arn:aws:ecs:task/late", Some(first_by), Some(1)),
                T0,
            )
            .await
            .unwrap();
        assert!(
            matches!(late, Inbound::Ignored(ref why) if why.contains("attempt 0")),
            "{late:?}"
        );
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Migrating));
        let retried = w.store.history_of_release(&id).await.unwrap();
        assert!(
            retried
                .iter()
                .any(|t| t.cause == Cause::Retried && t.actor.as_deref() == Some("ana"))
        );
        // Only a stage that ended can be retried.
        let again = e
            .on_event(
                &pipeline,
                "db",
                "dev",
                &id,
                Event::Retry {
                    actor: "ana".into(),
                },
                T0,
            )
            .await
            .unwrap();
        assert!(again.transitions.is_empty() && !again.refused.is_empty());
    }
}

mod gate_override {
    use super::*;
    use crate::facts::AlarmChange;
    use crate::release::AlarmState;

    #[tokio::test]
    async fn an_operator_can_unblock_a_gate_whose_alarm_never_reports_ok() {
        let w = World::new().await;
        let gated = PIPELINE
            .replace(
                "bake = \"10m\"\n[services.api.environments.prod]",
                "bake = \"10m\"\nalarm_prefixes = [\"api-dev-\"]\n[services.api.environments.prod]",
            )
            .replace(
                "deployment_group = \"api-prod\" }\napproval = \"manual\"",
                "deployment_group = \"api-prod\" }\napproval = \"manual\"\nhold_while_alarms_in = [\"dev\"]",
            );
        assert!(gated.contains("hold_while_alarms_in"));
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: gated,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        e.on_event(&pipeline, "api", "dev", &id, Event::DeploymentSucceeded, T0)
            .await
            .unwrap();
        e.on_event(&pipeline, "api", "dev", &id, Event::BakeElapsed, T0)
            .await
            .unwrap();
        let fired = AlarmChange {
            alarm: "api-dev-5xx".into(),
            state: AlarmState::Alarm,
            at: Timestamp(T0.0 + 10_000),
            reason: "r".into(),
        };
        e.on_alarm(&fired, T0).await.unwrap();
        let approve = Event::Approved {
            actor: "ana".into(),
        };
        e.on_event(&pipeline, "api", "prod", &id, approve, T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "prod").await, Some(StageState::Queued));
        // The OK event is lost; the operator decides.
        let unblock = LaneEvent::Unblock {
            actor: "ana".into(),
            reason: "the dev alarm is a false positive".into(),
        };
        let report = e
            .on_lane(&pipeline, "api", "prod", unblock, T0)
            .await
            .unwrap();
        assert!(report.refused.is_empty(), "{report:?}");
        assert_eq!(w.state(&id, "prod").await, Some(StageState::Deploying));
        let unblocked = report
            .transitions
            .iter()
            .find(|t| t.cause == Cause::Unblocked)
            .unwrap();
        assert!(
            unblocked
                .detail
                .as_deref()
                .unwrap()
                .contains("overriding the gate: api-dev-5xx (dev) in ALARM"),
            "{unblocked:?}"
        );
    }
}

mod bake_timers {
    use super::alarms::{alarm, watched};
    use super::*;
    use crate::facts::BakeTimer;
    use crate::inbound::alarm::AlarmState;
    use crate::inbound::codedeploy::{DeploymentState, DeploymentStateChange};

    const BAKE_END: Timestamp = Timestamp(T0.0 + 600_000);

    /// Pushes a release and reports its deployment a success at T0: it bakes in dev.
    async fn baking(w: &World) -> ReleaseId {
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        bake(w, &id).await;
        id
    }

    /// [`baking`] while the lane's own alarm fires: the push is held, and an operator's
    /// unblock overrides the hold (the one way a release bakes under its firing alarm).
    async fn baking_under_alarm(w: &World) -> ReleaseId {
        let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Queued), "held");
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        let unblock = LaneEvent::Unblock {
            actor: "ana".into(),
            reason: "the alarm is unrelated".into(),
        };
        e.on_lane(&pipeline, "api", "dev", unblock, T0)
            .await
            .unwrap();
        bake(w, &id).await;
        id
    }

    async fn bake(w: &World, id: &ReleaseId) {
        let success = DeploymentStateChange {
            deployment_id: "d-1".into(),
            application: "api".into(),
            deployment_group: "api-dev".into(),
            state: DeploymentState::Success,
            at: T0,
        };
        w.engine().on_deployment_state(&success, T0).await.unwrap();
        assert_eq!(w.state(id, "dev").await, Some(StageState::Baking));
    }

    fn causes(history: &[Transition]) -> Vec<&str> {
        history.iter().map(|t| t.cause.as_str()).collect()
    }

    /// Alarms are state (DESIGN invariant 12): the bake timer's pass reads the stage's
    /// alarms from CloudWatch first. An ALARM whose event was lost rolls the release back
    /// instead of letting the timer promote it (found by the simulation, seed 1495: the
    /// event lost, two reconciler passes dead, the timer promoted a bad release); with
    /// CloudWatch unreachable the bake is left to the reconciler.
    #[tokio::test]
    async fn the_bake_timer_reads_the_alarms_first_and_a_lost_alarm_rolls_back() {
        use crate::aws::fake::FakeAlarms;
        use crate::facts::AlarmChange;
        let w = World::new().await;
        let with_alarm = PIPELINE.replace(
            "bake = \"10m\"\n[services.api.environments.prod]",
            "bake = \"10m\"\nalarms = [\"api-dev-5xx\"]\n[services.api.environments.prod]",
        );
        assert_ne!(with_alarm, PIPELINE);
        w.store
            .put_pipeline(StoredPipeline {
                version: 2,
                source: with_alarm,
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
        let id = baking(&w).await;
        let timer = BakeTimer::new("api", "dev", &id, 0);
        let cloudwatch = FakeAlarms::default();
        cloudwatch.states.lock().unwrap().push(AlarmChange {
            alarm: "api-dev-5xx".into(),
            state: AlarmState::Alarm,
            at: Timestamp(BAKE_END.0 - 60_000),
            reason: "5xx above 1%".into(),
        });
        *cloudwatch.unreachable.lock().unwrap() = true;
        let e = w.engine();
        let unread = e
            .on_bake_timer_reading(&cloudwatch, &timer, BAKE_END)
            .await
            .unwrap();
        *cloudwatch.unreachable.lock().unwrap() = false;
        assert!(
            matches!(unread, Inbound::Ignored(ref why) if why.contains("reconciler")),
            "{unread:?}"
        );
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        let out = e
            .on_bake_timer_reading(&cloudwatch, &timer, BAKE_END)
            .await
            .unwrap();
        assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
        assert_eq!(w.state(&id, "prod").await, None, "never promoted");
        assert_eq!(cloudwatch.asked.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_bake_sets_one_timer_whose_firing_promotes_and_which_is_then_deleted() {
        let w = World::new().await;
        let id = baking(&w).await;
        let timer = BakeTimer::new("api", "dev", &id, 0);
        assert_eq!(
            w.timer.pending(),
            [(timer.name(), timer.clone(), BAKE_END)],
            "one timer, at the end of the bake"
        );
        // Fired early (it cannot be, rounded up to the minute; a clock can be off): nothing.
        let early = w
            .engine()
            .on_bake_timer(&timer, Timestamp(BAKE_END.0 - 1))
            .await
            .unwrap();
        assert!(matches!(early, Inbound::Ignored(ref why) if why.contains("fired early")));
        let out = w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
        assert!(matches!(out, Inbound::Accepted(_)), "{out:?}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
        assert_eq!(
            w.state(&id, "prod").await,
            Some(StageState::AwaitingApproval)
        );
        assert_eq!(
            w.timer.log(),
            [
                format!("set {}", timer.name()),
                format!("clear {}", timer.name())
            ]
        );
        let history = w.store.history_of_release(&id).await.unwrap();
        let dev: Vec<Transition> = history
            .into_iter()
            .filter(|t| t.environment == "dev")
            .collect();
        assert_eq!(
            causes(&dev),
            [
                "arrived",
                "deployment_created",
                "deployment_succeeded",
                "timer_set",
                "bake_elapsed",
                "timer_cleared"
            ]
        );
        // Scheduler delivers at least once: the same firing again changes nothing.
        let before = w.store.history_of_release(&id).await.unwrap().len();
        let again = w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
        match again {
            Inbound::Accepted(report) => {
                assert!(report.transitions.is_empty());
                assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
        // A timer of another attempt of the stage is not this bake's.
        let old = BakeTimer::new("api", "dev", &id, 7);
        assert!(matches!(
            w.engine().on_bake_timer(&old, BAKE_END).await.unwrap(),
            Inbound::Ignored(ref why) if why.contains("attempt 7")
        ));
    }

    #[tokio::test]
    async fn a_timer_that_could_not_be_set_is_set_again_by_the_reconciler_which_also_ends_a_due_bake()
     {
        let w = World::new().await;
        *w.timer.fail_next.lock().unwrap() = 1;
        let id = baking(&w).await;
        assert!(w.timer.pending().is_empty());
        let history = w.store.history_of_release(&id).await.unwrap();
        let failed = history.last().unwrap();
        assert_eq!(failed.cause, Cause::TimerFailed);
        assert!(
            failed
                .detail
                .as_deref()
                .unwrap()
                .contains("AccessDeniedException"),
            "{failed:?}"
        );
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        e.reconcile(&pipeline, None, Timestamp(T0.0 + 60_000))
            .await
            .unwrap();
        assert_eq!(w.timer.pending().len(), 1, "set again by the reconciler");
        // Passes while it is set change nothing and record nothing.
        let before = w.store.history_of_release(&id).await.unwrap().len();
        e.reconcile(&pipeline, None, Timestamp(T0.0 + 120_000))
            .await
            .unwrap();
        assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
        // The timer is lost again, and the bake ends: the reconciler ends it.
        w.timer.set.lock().unwrap().clear();
        e.reconcile(&pipeline, None, BAKE_END).await.unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
        assert_eq!(
            w.state(&id, "prod").await,
            Some(StageState::AwaitingApproval)
        );
    }

    #[tokio::test]
    async fn an_alarm_during_the_bake_deletes_the_timer_with_the_bake() {
        let w = watched().await;
        let id = baking(&w).await;
        assert_eq!(w.timer.pending().len(), 1);
        w.engine()
            .on_alarm(&alarm(AlarmState::Alarm, 30), T0)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
        assert!(w.timer.pending().is_empty(), "{:?}", w.timer.log());
        // Its firing anyway (Scheduler was already invoking it) changes nothing.
        let timer = BakeTimer::new("api", "dev", &id, 0);
        w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
        assert_eq!(w.state(&id, "prod").await, None);
    }

    #[tokio::test]
    async fn a_bake_ending_while_the_stages_alarm_fires_is_held_until_it_is_ok() {
        let w = watched().await;
        // The alarm fires while the lane is idle, before the release exists.
        w.engine()
            .on_alarm(&alarm(AlarmState::Alarm, 1), T0)
            .await
            .unwrap();
        let id = baking_under_alarm(&w).await;
        let timer = BakeTimer::new("api", "dev", &id, 0);
        let held = w.engine().on_bake_timer(&timer, BAKE_END).await.unwrap();
        match held {
            Inbound::Accepted(report) => {
                assert!(report.transitions.is_empty());
                assert!(
                    report.refused[0].contains("api-dev-5xx in ALARM"),
                    "{:?}",
                    report.refused
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        e.reconcile(&pipeline, None, Timestamp(BAKE_END.0 + 60_000))
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        // OK: the gate opens; the bake ends at the reconciler's next pass, which reads
        // every alarm of the lane first (the OK of one alarm says nothing of the others,
        // whose ALARM may be lost or late: simulation seed 2318).
        e.on_alarm(&alarm(AlarmState::Ok, 700), Timestamp(BAKE_END.0 + 120_000))
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        e.reconcile(&pipeline, None, Timestamp(BAKE_END.0 + 180_000))
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
        assert_eq!(
            w.state(&id, "prod").await,
            Some(StageState::AwaitingApproval)
        );
    }

    /// Found by the simulation (seed 2318): a bake over, its lane's ALARM late (still in
    /// EventBridge), and a push arriving on the lane ended the bake from the states the
    /// lane had recorded; the bad release became last known good. Only a pass that reads
    /// the alarms from CloudWatch ends a bake.
    #[tokio::test]
    async fn an_event_passing_a_bake_that_is_over_leaves_it_to_a_pass_that_reads_the_alarms() {
        use crate::aws::fake::FakeAlarms;
        let w = watched().await;
        let id = baking(&w).await;
        let after = Timestamp(BAKE_END.0 + 1_000);
        let next = w
            .engine()
            .on_push(&push("shiplane/api", 2, "v1.0.1"), after)
            .await;
        assert!(next.is_ok(), "{next:?}");
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking));
        // The reconciler reads CloudWatch: the ALARM whose event is late rolls it back.
        let cloudwatch = FakeAlarms::default();
        cloudwatch.set(vec![alarm(AlarmState::Alarm, 590)]);
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        e.reconcile_with_alarms(&cloudwatch, &pipeline, None, after)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::RolledBack));
    }

    #[tokio::test]
    async fn an_ok_whose_event_was_lost_is_read_from_cloudwatch_by_the_reconciler() {
        use crate::aws::fake::FakeAlarms;
        let w = watched().await;
        w.engine()
            .on_alarm(&alarm(AlarmState::Alarm, 1), T0)
            .await
            .unwrap();
        let id = baking_under_alarm(&w).await;
        let e = w.engine();
        let pipeline = e.pipeline().await.unwrap();
        e.on_bake_timer(&BakeTimer::new("api", "dev", &id, 0), BAKE_END)
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Baking), "held");
        let cloudwatch = FakeAlarms::default();
        // CloudWatch says it still fires (the change recorded), or reports an OK older than
        // the ALARM seen: nothing.
        for stale in [alarm(AlarmState::Alarm, 1), alarm(AlarmState::Ok, 0)] {
            cloudwatch.set(vec![stale]);
            let report = e
                .reconcile_with_alarms(&cloudwatch, &pipeline, None, BAKE_END)
                .await
                .unwrap()
                .report;
            assert!(report.transitions.is_empty(), "{report:?}");
        }
        assert_eq!(
            cloudwatch.asked()[0],
            (
                vec!["api-dev-5xx".to_string()],
                vec!["api-dev-".to_string()]
            ),
            "the alarms the baking lane watches: by name as recorded, and by prefix"
        );
        // The OK event never came; CloudWatch knows.
        cloudwatch.set(vec![alarm(AlarmState::Ok, 700)]);
        e.reconcile_with_alarms(&cloudwatch, &pipeline, None, Timestamp(BAKE_END.0 + 60_000))
            .await
            .unwrap();
        assert_eq!(w.state(&id, "dev").await, Some(StageState::Succeeded));
        let lane = w.store.lane("api", "dev").await.unwrap().item;
        assert_eq!(lane.alarms["api-dev-5xx"].state, AlarmState::Ok);
        // No lane has work that watches an alarm any more: CloudWatch is not asked again.
        let asked = cloudwatch.asked().len();
        e.reconcile_with_alarms(
            &cloudwatch,
            &pipeline,
            None,
            Timestamp(BAKE_END.0 + 120_000),
        )
        .await
        .unwrap();
        assert_eq!(cloudwatch.asked().len(), asked);
    }
}

/// Fewer round trips, the same guarantees: what a pass knows it reuses only while the
/// store agrees, and a push run to its end is answered again from its claim.
mod known_items {
    use super::*;
    use crate::aws::DeployRequest;
    use crate::release::LaneEvent;
    use crate::store::{Reads, Snapshot};

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

    struct Meanwhile<'a> {
        inner: FakeDeployer,
        world: &'a World,
        happens: Happens,
    }

    impl<'a> Meanwhile<'a> {
        fn new(world: &'a World, happens: Happens) -> Meanwhile<'a> {
            Meanwhile {
                inner: FakeDeployer::default(),
                world,
                happens,
            }
        }

        /// The world's engine, deploying through this.
        fn engine(&self) -> Engine<'_, MemoryStore, Self, RecordingNotifier, FakeTimer> {
            Engine {
                store: &self.world.store,
                deployer: self,
                notifier: &self.world.notifier,
                timer: &self.world.timer,
            }
        }
    }

    impl Deployer for Meanwhile<'_> {
        async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
            let store = &self.world.store;
            if let Happens::IdTaken = self.happens {
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
                return self.inner.deploy(req).await;
            }
            let pipeline = self.world.engine().pipeline().await.unwrap();
            let (svc, stage) = stage_of(&pipeline, "api", "dev").unwrap();
            let loaded = LoadedLane::load(store, "api", "dev", &[]).await.unwrap();
            let pause = LaneEvent::Pause {
                actor: "ana".into(),
                reason: "incident".into(),
            };
            let policy = Policy::for_stage(svc, stage);
            let d = crate::release::apply_lane(&loaded.view, &pause, &policy, T0).unwrap();
            store.commit(loaded.commit_for(&d)).await.unwrap();
            self.inner.deploy(req).await
        }

        async fn run_migration(&self, req: DeployRequest<'_>) -> Result<MigrationRun, DeployError> {
            self.inner.run_migration(req).await
        }

        async fn migration_status(
            &self,
            req: DeployRequest<'_>,
            task_arn: &str,
        ) -> Result<MigrationRun, DeployError> {
            self.inner.migration_status(req, task_arn).await
        }

        async fn deployment_status(
            &self,
            req: DeployRequest<'_>,
            deployment_id: &str,
        ) -> Result<DeploymentStatus, DeployError> {
            self.inner.deployment_status(req, deployment_id).await
        }

        async fn stop_deployment(
            &self,
            req: DeployRequest<'_>,
            deployment_id: &str,
            rollback: bool,
        ) -> Result<(), DeployError> {
            self.inner
                .stop_deployment(req, deployment_id, rollback)
                .await
        }

        async fn origin(
            &self,
            deployment_id: &str,
        ) -> Result<Option<crate::aws::Origin>, DeployError> {
            self.inner.origin(deployment_id).await
        }

        async fn ecs_origin(
            &self,
            cluster: &str,
            service: &str,
            deployment_id: &str,
        ) -> Result<Option<crate::aws::Tagged>, DeployError> {
            self.inner.ecs_origin(cluster, service, deployment_id).await
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
        let lanes = vec![("api".to_string(), "dev".to_string())];
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
}

/// Issue #22, defect 5: one executor per action. While the invocation that committed a
/// deployment is still inside `deploy`, a reconciler pass and a duplicate delivery find
/// the action owned (its lease) and run nothing (the take-over after the lease is the
/// machine's `a_dead_owners_action_is_taken_over_once_after_its_lease`).
mod one_executor {
    use super::*;
    use crate::aws::{DeployRequest, Deployer};
    use tokio::sync::Notify;

    /// A deployer whose first `deploy` waits for the test's signal.
    struct Held<'a> {
        inner: FakeDeployer,
        world: &'a World,
        entered: Notify,
        gate: Notify,
        first: std::sync::atomic::AtomicBool,
    }

    impl Deployer for Held<'_> {
        async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
            if !self.first.swap(true, std::sync::atomic::Ordering::SeqCst) {
                self.entered.notify_one();
                self.gate.notified().await;
            }
            self.inner.deploy(req).await
        }
        async fn run_migration(&self, req: DeployRequest<'_>) -> Result<MigrationRun, DeployError> {
            self.inner.run_migration(req).await
        }
        async fn migration_status(
            &self,
            req: DeployRequest<'_>,
            task_arn: &str,
        ) -> Result<MigrationRun, DeployError> {
            self.inner.migration_status(req, task_arn).await
        }
        async fn deployment_status(
            &self,
            req: DeployRequest<'_>,
            deployment_id: &str,
        ) -> Result<DeploymentStatus, DeployError> {
            self.inner.deployment_status(req, deployment_id).await
        }
        async fn stop_deployment(
            &self,
            req: DeployRequest<'_>,
            deployment_id: &str,
            rollback: bool,
        ) -> Result<(), DeployError> {
            self.inner
                .stop_deployment(req, deployment_id, rollback)
                .await
        }
        async fn origin(
            &self,
            deployment_id: &str,
        ) -> Result<Option<crate::aws::Origin>, DeployError> {
            self.inner.origin(deployment_id).await
        }

        async fn ecs_origin(
            &self,
            cluster: &str,
            service: &str,
            deployment_id: &str,
        ) -> Result<Option<crate::aws::Tagged>, DeployError> {
            self.inner.ecs_origin(cluster, service, deployment_id).await
        }
    }

    impl Held<'_> {
        fn engine(&self) -> Engine<'_, MemoryStore, Self, RecordingNotifier, FakeTimer> {
            Engine {
                store: &self.world.store,
                deployer: self,
                notifier: &self.world.notifier,
                timer: &self.world.timer,
            }
        }

        fn deploys(&self) -> usize {
            self.inner
                .calls()
                .iter()
                .filter(|c| matches!(c, Call::Deploy { .. }))
                .count()
        }
    }

    #[tokio::test]
    async fn a_reconciler_pass_or_a_duplicate_delivery_meanwhile_runs_nothing() {
        let w = World::new().await;
        let held = Held {
            inner: FakeDeployer::default(),
            world: &w,
            entered: Notify::new(),
            gate: Notify::new(),
            first: Default::default(),
        };
        let e = held.engine();
        let p = push("shiplane/api", 1, "v1.0.0");
        let soon = T0.after(Duration::from_secs(10));
        let meanwhile = async {
            held.entered.notified().await;
            let pipeline = e.pipeline().await.unwrap();
            e.recover(&pipeline, "api", "dev", soon).await.unwrap();
            e.on_push(&p, soon).await.unwrap();
            assert_eq!(held.deploys(), 0, "only the owner is inside deploy");
            held.gate.notify_one();
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
