//! The engine's tests, against the in-memory store and fakes: the [`World`] they run in and
//! the helpers they share. The tests are in one file per topic.

mod alarms;
mod bake_timers;
mod deploy;
mod deployment_outcomes;
mod doubles;
mod gates;
mod hooks;
mod known_items;
mod migrations;
mod operators;
mod pipeline;
mod push;
mod recovery;

use std::time::Duration;

use super::*;
use crate::aws::fake::{Call, FakeDeployer, FakeTimer, RecordingNotifier};
use crate::aws::{DeployError, DeployOutcome, Deployer, DeploymentStatus, MigrationRun};
use crate::facts::ContainerExit;
use crate::release::intake::{ImagePush, Intake, PUSH_CLAIM_TTL, claim_key, intake, new_release};
use crate::release::{BLOCKED_RETRY, Digest, LEASE, Policy, Release, apply};
use crate::store::Claim;
use crate::store::{LoadedLane, MemoryStore, StoredPipeline};
use pipeline::{PIPELINE, PipelineFile};

const T0: Timestamp = Timestamp(1_760_000_000_000);

struct World {
    store: MemoryStore,
    deployer: FakeDeployer,
    notifier: RecordingNotifier,
    timer: FakeTimer,
}

impl World {
    /// The base pipeline ([`PIPELINE`]) stored as version 1, nothing else.
    async fn new() -> World {
        let w = World::empty();
        w.store_pipeline(1, PIPELINE).await;
        w
    }

    /// [`World::new`], then `pipeline` applied over the base as version 2.
    async fn with(pipeline: PipelineFile) -> World {
        let w = World::new().await;
        w.store_pipeline(2, pipeline.toml()).await;
        w
    }

    /// No pipeline stored.
    fn empty() -> World {
        World {
            store: MemoryStore::new(),
            deployer: FakeDeployer::default(),
            notifier: RecordingNotifier::default(),
            timer: FakeTimer::default(),
        }
    }

    /// Stores the pipeline file `source` as `version`, applied at T0.
    async fn store_pipeline(&self, version: u64, source: impl Into<String>) {
        self.store
            .put_pipeline(StoredPipeline {
                version,
                source: source.into(),
                applied_at: T0,
                applied_by: "t".into(),
            })
            .await
            .unwrap();
    }

    fn engine(&self) -> Engine<'_, testing::FakePorts> {
        Engine::new(&self.store, &self.deployer, &self.notifier, &self.timer)
    }

    async fn state(&self, id: &ReleaseId, env: &str) -> Option<StageState> {
        self.store.release(id).await.unwrap()?.item.state_in(env)
    }

    /// The next deploy finds its deployment group busy with `d-MANUAL`, a deployment
    /// Shiplane did not start.
    fn busy_group(&self) {
        self.deployer
            .deploy_answers
            .lock()
            .unwrap()
            .push(Ok(DeployOutcome::Blocked {
                by: "d-MANUAL".into(),
            }));
    }

    /// `id`'s api deployment in dev succeeded and its bake is over (at T0): it is dev's
    /// last known good, promoted to prod (where the base pipeline asks for an approval).
    async fn succeed_in_dev(&self, id: &ReleaseId) {
        let e = self.engine();
        let pipeline = e.pipeline().await.unwrap();
        for event in [Event::DeploymentSucceeded, Event::BakeElapsed] {
            e.on_event(&pipeline, "api", "dev", id, event, T0)
                .await
                .unwrap();
        }
    }

    /// api's v1.0.0 succeeded in dev (the last known good) and v1.0.1 deploys there: the two
    /// releases and v1.0.1's deployment.
    async fn good_then_deploying(&self) -> (ReleaseId, ReleaseId, String) {
        let v1 = self.pushed("shiplane/api", 1, "v1.0.0").await;
        self.succeed_in_dev(&v1).await;
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

    /// `<release>@<environment>` of every deploy asked for, in order.
    fn deploys(&self) -> Vec<String> {
        self.deployer.deploys()
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
