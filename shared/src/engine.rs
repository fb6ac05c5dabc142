//! The one loop every handler runs: load → apply (pure) → commit (conditional) → announce
//! → execute actions → feed each outcome back as another event.
//!
//! The commit records the decision before any action runs, and every action is idempotent,
//! so a crash anywhere leaves a state from which a replay of the same inbound event
//! finishes the work (see [`pending_action`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::aws::{DeployOutcome, DeployRequest, Deployer, Notification, Notifier};
use crate::inbound::Inbound;
use crate::inbound::ecr::ImagePush;
use crate::inbound::ecs::TaskStopped;
use crate::pipeline::{Pipeline, Service, StageConfig};
use crate::release::{
    Action, Event, Policy, Release, ReleaseId, StageState, Timestamp, Transition, apply,
    pending_action,
};
use crate::store::{Claim, Commit, DeploymentRef, LoadedLane, ReleaseStore, StoreError, Versioned};

/// How long a push's idempotency claim is kept (DynamoDB TTL deletes it afterwards).
pub const PUSH_CLAIM_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Attempts at a commit that keeps meeting concurrent writers before giving up.
const COMMIT_ATTEMPTS: u32 = 5;

/// Why the engine could not finish; retryable errors make Lambda deliver the event again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No pipeline stored, or the stored one no longer validates.
    #[error("{0}")]
    Config(String),
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, EngineError::Store(e) if e.is_retryable())
    }
}

/// What became of an image push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Ignored(String),
    /// A new release, in `state` in its first environment.
    Created {
        release: ReleaseId,
        environment: String,
        state: Option<StageState>,
    },
    /// The digest was already a release: the push was a replay or a new tag for it.
    Replayed {
        release: ReleaseId,
        tag_added: bool,
    },
}

/// What one run of the loop did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub transitions: Vec<Transition>,
    /// Events the state machine refused (stale or duplicate deliveries), with why.
    pub refused: Vec<String>,
}

/// One event for one release in one lane, with what its commit must also write.
#[derive(Debug, Clone)]
struct Work {
    service: String,
    environment: String,
    release: ReleaseId,
    event: Event,
    new_release: Option<Release>,
    claim: Option<Claim>,
    deployments: Vec<DeploymentRef>,
}

impl Work {
    fn event(service: &str, environment: &str, release: &ReleaseId, event: Event) -> Work {
        Work {
            service: service.to_string(),
            environment: environment.to_string(),
            release: release.clone(),
            event,
            new_release: None,
            claim: None,
            deployments: Vec::new(),
        }
    }
}

enum Job {
    Apply(Work),
    Execute(Action, Release),
}

/// A Lambda handler's future, boxed behind `dyn Future`: the engine's future is large, and
/// its concrete type inside the runtime's service layers overflows the compiler's
/// type-depth limit. (The error type is `lambda_runtime::Error`.)
pub type HandlerFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>>,
            > + Send
            + 'a,
    >,
>;

/// The clients a function builds once per cold start and every invocation reuses.
pub struct Deps<S, D, N> {
    pub store: S,
    pub deployer: D,
    pub notifier: N,
}

impl<S: ReleaseStore, D: Deployer, N: Notifier> Deps<S, D, N> {
    /// An engine borrowing these clients.
    pub fn engine(&self) -> Engine<'_, S, D, N> {
        Engine {
            store: &self.store,
            deployer: &self.deployer,
            notifier: &self.notifier,
        }
    }
}

/// The production clients: DynamoDB, ECS + CodeDeploy, SNS, from Lambda's environment
/// ([`crate::aws::lambda_sdk_config`]), each built when an event first needs it
/// ([`OnFirstUse`]). Throttling and 5xx are retried with exponential backoff (5 attempts)
/// before a step is failed. TLS trusts the Amazon Trust Services roots (see
/// [`crate::aws::https_client`]).
pub async fn aws_deps(
    settings: &crate::settings::Settings,
) -> Deps<crate::store::DynamoStore, crate::aws::AwsDeployer, crate::aws::SnsNotifier> {
    use crate::aws::OnFirstUse;
    let config = crate::aws::lambda_sdk_config(settings).await;
    Deps {
        store: crate::store::DynamoStore::new(
            OnFirstUse::new(&config, aws_sdk_dynamodb::Client::new),
            &settings.table,
        ),
        deployer: crate::aws::AwsDeployer::new(
            OnFirstUse::new(&config, aws_sdk_ecs::Client::new),
            OnFirstUse::new(&config, aws_sdk_codedeploy::Client::new),
            &settings.hook_function,
        ),
        notifier: crate::aws::SnsNotifier::new(
            OnFirstUse::new(&config, aws_sdk_sns::Client::new),
            &settings.topic_arn,
        ),
    }
}

/// The engine over a store, a deployer and a notifier (real or fake).
pub struct Engine<'a, S, D, N> {
    pub store: &'a S,
    pub deployer: &'a D,
    pub notifier: &'a N,
}

fn stage_of<'p>(
    pipeline: &'p Pipeline,
    service: &str,
    environment: &str,
) -> Option<(&'p Service, &'p StageConfig)> {
    let s = pipeline.services.get(service)?;
    Some((s, s.stage(environment)?))
}

/// The last pipeline parsed in this process, with its exact source text. Parsing and
/// validating a large pipeline costs milliseconds; a warm invocation that reads the same
/// text reuses the parse. Parsing is a pure function of the text, so this is always correct.
static LAST_PARSED: Mutex<Option<(String, Arc<Pipeline>)>> = Mutex::new(None);

fn parse_cached(source: &str) -> Result<Arc<Pipeline>, crate::pipeline::ConfigError> {
    let mut last = LAST_PARSED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((text, parsed)) = last.as_ref()
        && text == source
    {
        return Ok(parsed.clone());
    }
    let parsed = Arc::new(Pipeline::from_toml(source)?);
    *last = Some((source.to_string(), parsed.clone()));
    Ok(parsed)
}

/// Records which release and stage a deployment (or migration task) belongs to, so its
/// state-change events find their way back.
fn reference_to(release: &Release, environment: &str, id: &str) -> DeploymentRef {
    DeploymentRef {
        deployment_id: id.to_string(),
        release: release.id.clone(),
        service: release.service.clone(),
        environment: environment.to_string(),
    }
}

impl<S: ReleaseStore, D: Deployer, N: Notifier> Engine<'_, S, D, N> {
    /// The current pipeline, parsed; an error names the fix.
    pub async fn pipeline(&self) -> Result<Arc<Pipeline>, EngineError> {
        let stored = self.store.pipeline().await?.ok_or_else(|| {
            EngineError::Config("no pipeline stored; run `shiplane config apply FILE`".into())
        })?;
        parse_cached(&stored.source).map_err(|e| {
            EngineError::Config(format!(
                "stored pipeline version {} does not validate: {e}",
                stored.version
            ))
        })
    }

    /// An image was pushed: make it a release (once per repository + digest) and start
    /// its first stage; a replay finishes whatever the first delivery left undone.
    pub async fn on_push(
        &self,
        push: &ImagePush,
        now: Timestamp,
    ) -> Result<PushOutcome, EngineError> {
        let pipeline = self.pipeline().await?;
        let Some(service) = pipeline.service_for_repository(&push.repository) else {
            return Ok(PushOutcome::Ignored(format!(
                "repository {} is not tracked by any service",
                push.repository
            )));
        };
        if !service.tags.accepts(&push.tag) {
            return Ok(PushOutcome::Ignored(format!(
                "tag {} does not match services.{}.tags",
                push.tag, service.name
            )));
        }
        let Some(first) = service.stages.first() else {
            return Ok(PushOutcome::Ignored(format!(
                "services.{} has no environments",
                service.name
            )));
        };
        let key = format!("push#{}#{}", push.repository, push.digest);
        if let Some(existing) = self.store.claimed(&key, now).await? {
            return self.replay_push(&pipeline, &existing, push, now).await;
        }
        let mut release = Release::new(
            ReleaseId::new(now),
            &service.name,
            &push.repository,
            push.digest.clone(),
            Some(&push.tag),
            now,
        );
        release.registry = push.registry.clone();
        let id = release.id.clone();
        let work = Work {
            new_release: Some(release),
            claim: Some(Claim {
                key,
                value: id.to_string(),
                at: now,
                expires: now.after(PUSH_CLAIM_TTL),
            }),
            ..Work::event(&service.name, &first.environment, &id, Event::Arrived)
        };
        match self.run(&pipeline, work, now).await {
            Ok(_) => {
                let state = self
                    .store
                    .release(&id)
                    .await?
                    .and_then(|r| r.item.state_in(&first.environment));
                Ok(PushOutcome::Created {
                    release: id,
                    environment: first.environment.clone(),
                    state,
                })
            }
            // Another delivery of the same push won the race: finish its work, if any.
            Err(EngineError::Store(StoreError::AlreadyClaimed { value, .. })) => {
                self.replay_push(&pipeline, &value, push, now).await
            }
            Err(e) => Err(e),
        }
    }

    async fn replay_push(
        &self,
        pipeline: &Pipeline,
        existing: &str,
        push: &ImagePush,
        now: Timestamp,
    ) -> Result<PushOutcome, EngineError> {
        let id = ReleaseId::parse(existing).map_err(|e| StoreError::Corrupt {
            what: format!("claim for {}", push.digest),
            message: e.to_string(),
        })?;
        let mut tag_added = false;
        for _ in 0..COMMIT_ATTEMPTS {
            let Some(current) = self.store.release(&id).await? else {
                return Err(StoreError::Corrupt {
                    what: format!("claim for {}", push.digest),
                    message: format!("names release {id}, which does not exist"),
                }
                .into());
            };
            if current.item.tags.contains(&push.tag) {
                break;
            }
            let mut item = current.item;
            item.tags.push(push.tag.clone());
            let commit = Commit {
                releases: vec![Versioned {
                    item,
                    version: current.version,
                }],
                ..Commit::default()
            };
            match self.store.commit(commit).await {
                Ok(()) => {
                    tag_added = true;
                    info!(release = %id, tag = %push.tag, "tag added to existing release");
                    break;
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        self.finish_pending(pipeline, &id, now).await?;
        Ok(PushOutcome::Replayed {
            release: id,
            tag_added,
        })
    }

    /// Executes whatever action a release's stages still owe (work a crash interrupted).
    pub async fn finish_pending(
        &self,
        pipeline: &Pipeline,
        release: &ReleaseId,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        let Some(r) = self.store.release(release).await? else {
            return Ok(Report::default());
        };
        let jobs: VecDeque<Job> = r
            .item
            .stages
            .keys()
            .filter_map(|env| pending_action(&r.item, env))
            .map(|a| Job::Execute(a, r.item.clone()))
            .collect();
        if !jobs.is_empty() {
            info!(release = %release, pending = jobs.len(), "finishing interrupted work");
        }
        self.drain(pipeline, jobs, now).await
    }

    /// A migration task stopped: continue to the deployment, or fail the stage with why.
    pub async fn on_task_stopped(
        &self,
        stopped: &TaskStopped,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let Some(dep) = self.store.deployment(&stopped.task_arn).await? else {
            return Ok(Inbound::Ignored(format!(
                "task {} was not started by Shiplane",
                stopped.task_arn
            )));
        };
        let pipeline = self.pipeline().await?;
        let event = match &stopped.failure {
            None => Event::MigrationSucceeded,
            Some(reason) => Event::MigrationFailed {
                reason: format!("migration task {}: {reason}", stopped.task_arn),
            },
        };
        let work = Work::event(&dep.service, &dep.environment, &dep.release, event);
        Ok(Inbound::Accepted(self.run(&pipeline, work, now).await?))
    }

    /// Applies one event to one release in one lane, and everything that follows from it.
    pub async fn on_event(
        &self,
        pipeline: &Pipeline,
        service: &str,
        environment: &str,
        release: &ReleaseId,
        event: Event,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        self.run(
            pipeline,
            Work::event(service, environment, release, event),
            now,
        )
        .await
    }

    async fn run(
        &self,
        pipeline: &Pipeline,
        work: Work,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        self.drain(pipeline, VecDeque::from([Job::Apply(work)]), now)
            .await
    }

    async fn drain(
        &self,
        pipeline: &Pipeline,
        mut jobs: VecDeque<Job>,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        let mut report = Report::default();
        while let Some(job) = jobs.pop_front() {
            match job {
                Job::Apply(work) => {
                    for follow in self
                        .apply_and_commit(pipeline, work, now, &mut report)
                        .await?
                    {
                        jobs.push_back(follow);
                    }
                }
                Job::Execute(action, release) => {
                    for work in Box::pin(self.execute(pipeline, action, &release)).await {
                        jobs.push_back(Job::Apply(work));
                    }
                }
            }
        }
        Ok(report)
    }

    /// Decides and records; returns the actions to execute next.
    async fn apply_and_commit(
        &self,
        pipeline: &Pipeline,
        work: Work,
        now: Timestamp,
        report: &mut Report,
    ) -> Result<Vec<Job>, EngineError> {
        let Some((service, stage)) = stage_of(pipeline, &work.service, &work.environment) else {
            let why = format!(
                "services.{}.environments.{} is not in the current pipeline",
                work.service, work.environment
            );
            warn!(release = %work.release, event = work.event.name(), reason = %why, "ignored");
            report.refused.push(why);
            return Ok(Vec::new());
        };
        let policy = Policy::for_stage(service, stage);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut loaded = LoadedLane::load(
                self.store,
                &work.service,
                &work.environment,
                std::slice::from_ref(&work.release),
            )
            .await?;
            if let Some(r) = &work.new_release {
                loaded.add_new(r.clone());
            }
            let decision = match apply(&loaded.view, &work.release, &work.event, &policy, now) {
                Ok(d) => d,
                Err(refused) => {
                    info!(
                        release = %work.release,
                        environment = %work.environment,
                        event = work.event.name(),
                        reason = %refused,
                        "ignored: the event does not apply to the current state"
                    );
                    report.refused.push(refused.to_string());
                    // A replay of an event whose decision was recorded but whose action
                    // never ran: run it now.
                    return Ok(loaded
                        .view
                        .releases
                        .get(&work.release)
                        .and_then(|r| {
                            pending_action(r, &work.environment).map(|a| Job::Execute(a, r.clone()))
                        })
                        .into_iter()
                        .collect());
                }
            };
            if decision.is_noop() {
                return Ok(Vec::new());
            }
            let mut commit = loaded.commit_for(&decision);
            commit.claim = work.claim.clone();
            commit.deployments = work.deployments.clone();
            match self.store.commit(commit).await {
                Ok(()) => {}
                Err(StoreError::Conflict { what }) if attempt < COMMIT_ATTEMPTS => {
                    info!(release = %work.release, conflict = %what, attempt, "concurrent change; deciding again");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            for t in &decision.transitions {
                info!(
                    service = %t.service,
                    environment = %t.environment,
                    release = ?t.release.as_ref().map(ReleaseId::as_str),
                    from = ?t.from.map(StageState::as_str),
                    to = ?t.to.map(StageState::as_str),
                    cause = %t.cause,
                    detail = ?t.detail,
                    "transition"
                );
            }
            if let Some(r) = &work.new_release {
                self.announce(Notification::release_created(r)).await;
            }
            for t in &decision.transitions {
                let release = t
                    .release
                    .as_ref()
                    .and_then(|id| decision.view.releases.get(id));
                self.announce(Notification::transition(t, release)).await;
            }
            report
                .transitions
                .extend(decision.transitions.iter().cloned());
            return Ok(decision
                .actions
                .iter()
                .filter_map(|a| {
                    let id = match a {
                        Action::RunMigration { release, .. }
                        | Action::Deploy { release, .. }
                        | Action::StopDeployment { release, .. }
                        | Action::ScheduleBake { release, .. }
                        | Action::Promote { release, .. } => release,
                    };
                    decision
                        .view
                        .releases
                        .get(id)
                        .map(|r| Job::Execute(a.clone(), r.clone()))
                })
                .collect());
        }
    }

    /// Best effort: a failed publish is logged and never blocks or retries the release.
    async fn announce(&self, n: Notification) {
        if let Err(e) = self.notifier.publish(&n).await {
            warn!(kind = %n.kind, service = %n.service, error = %e, "notification not sent; the release goes on");
        }
    }

    /// Runs one action; its outcome comes back as events for the same lane.
    async fn execute(&self, pipeline: &Pipeline, action: Action, release: &Release) -> Vec<Work> {
        let service_name = release.service.as_str();
        match action {
            Action::Deploy { environment, .. } | Action::RunMigration { environment, .. }
                if stage_of(pipeline, service_name, &environment).is_none() =>
            {
                vec![Work::event(
                    service_name,
                    &environment,
                    &release.id,
                    Event::ActionFailed {
                        reason: format!(
                            "services.{service_name}.environments.{environment} is no longer in the pipeline"
                        ),
                    },
                )]
            }
            Action::Deploy { environment, .. } => {
                let Some((service, stage)) = stage_of(pipeline, service_name, &environment) else {
                    return Vec::new();
                };
                let req = DeployRequest {
                    release,
                    service,
                    stage,
                };
                let (event, deployments) = match self.deployer.deploy(req).await {
                    Ok(DeployOutcome::Started {
                        deployment_id,
                        task_definition,
                    }) => {
                        info!(release = %release.id, environment = %environment, deployment = %deployment_id, task_definition = %task_definition, "deployment started");
                        let reference = DeploymentRef {
                            deployment_id: deployment_id.clone(),
                            release: release.id.clone(),
                            service: service_name.to_string(),
                            environment: environment.clone(),
                        };
                        (Event::DeploymentCreated { deployment_id }, vec![reference])
                    }
                    Ok(DeployOutcome::Registered { task_definitions }) => {
                        info!(release = %release.id, environment = %environment, task_definitions = ?task_definitions, "task definitions registered; nothing runs");
                        (Event::DeploymentSucceeded, Vec::new())
                    }
                    Ok(DeployOutcome::Blocked { by }) => (
                        Event::DeploymentBlocked {
                            reason: format!(
                                "deployment group busy with {by}, which Shiplane did not start"
                            ),
                        },
                        Vec::new(),
                    ),
                    Err(e) => {
                        error!(release = %release.id, environment = %environment, error = %e, retryable = e.retryable, "deploy failed");
                        (Event::ActionFailed { reason: e.message }, Vec::new())
                    }
                };
                vec![Work {
                    deployments,
                    ..Work::event(service_name, &environment, &release.id, event)
                }]
            }
            Action::RunMigration { environment, .. } => {
                let Some((service, stage)) = stage_of(pipeline, service_name, &environment) else {
                    return Vec::new();
                };
                let req = DeployRequest {
                    release,
                    service,
                    stage,
                };
                match self.deployer.run_migration(req).await {
                    Ok(task_arn) => {
                        info!(release = %release.id, environment = %environment, task = %task_arn, "migration started");
                        vec![Work {
                            deployments: vec![reference_to(release, &environment, &task_arn)],
                            ..Work::event(
                                service_name,
                                &environment,
                                &release.id,
                                Event::MigrationStarted { task_arn },
                            )
                        }]
                    }
                    Err(e) => {
                        error!(release = %release.id, environment = %environment, error = %e, "migration could not start");
                        vec![Work::event(
                            service_name,
                            &environment,
                            &release.id,
                            Event::ActionFailed { reason: e.message },
                        )]
                    }
                }
            }
            Action::StopDeployment {
                deployment_id,
                rollback,
                environment,
                ..
            } => {
                if let Err(e) = self
                    .deployer
                    .stop_deployment(&deployment_id, rollback)
                    .await
                {
                    error!(release = %release.id, environment = %environment, deployment = %deployment_id, error = %e, "stop deployment failed");
                }
                Vec::new()
            }
            Action::Promote { to, .. } => {
                vec![Work::event(service_name, &to, &release.id, Event::Arrived)]
            }
            Action::ScheduleBake {
                environment, at, ..
            } => {
                error!(
                    release = %release.id,
                    environment = %environment,
                    bake_ends = %at,
                    "no bake timer in this function; the release stays baking until a promote event arrives"
                );
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests;
