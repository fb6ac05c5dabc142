//! The engine: every use case as the one loop over the ports (see [`run`]).
//!
//! inbound event → domain event → load the lane → apply (pure) → conditional commit →
//! announce → execute actions ([`effects`]) → each outcome back as a domain event. Every
//! pass also finishes whatever the lane owes ([`crate::release::owed`]), so a crash
//! anywhere is finished by the next event on the lane, a replay, or the [`reconcile`]r.

mod claims;
mod effects;
mod hooks;
mod not_its_own;
mod outcomes;
mod pass;
mod ports;
mod push_order;
mod reconcile;
mod run;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod work;

pub use hooks::{HookAnswer, HookInvocation, REPORT_RESERVE};
pub use ports::{Deps, Engine, Ports};
pub use reconcile::{LaneFailure, Reconciled, SERVICES_AT_ONCE};
pub use run::NOTIFY_BUDGET;

use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use crate::aws::{NoPushClock, PushClock, parse_started_by};
use crate::facts::TaskStopped;
use crate::inbound::Inbound;
use crate::pipeline::{Pipeline, Service, StageConfig};
use crate::release::intake::{ImagePush, Intake, claim_key, intake, new_release};
use crate::release::{
    Cause, Digest, Event, LaneEvent, ReleaseId, StageState, Timestamp, Transition,
};
use crate::store::{LaneKey, Reads, ReleaseStore, Settle, StoreError, StoredPipeline};

use claims::ClaimValue;
use run::{Job, Work};

/// Why the engine could not finish; retryable errors make Lambda deliver the event again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No pipeline stored, or the stored one no longer validates.
    #[error("{0}")]
    Config(String),
    /// An AWS service a decision needs (ECR's push times) could not be asked for now:
    /// delivering the event again decides it.
    #[error("{0}")]
    Unavailable(String),
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_retryable(),
            EngineError::Unavailable(_) => true,
            EngineError::Config(_) => false,
        }
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

/// What one run of the loop did, for logs, tests and the operator who asked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub transitions: Vec<Transition>,
    /// Events the state machine refused (stale or duplicate deliveries), with why.
    pub refused: Vec<String>,
}

impl Report {
    /// The state a release last moved to in an environment during this run.
    pub fn state_of(&self, release: &ReleaseId, environment: &str) -> Option<StageState> {
        self.transitions
            .iter()
            .rev()
            .find(|t| t.release.as_ref() == Some(release) && t.environment == environment)
            .and_then(|t| t.to)
    }

    fn merge(&mut self, other: Report) {
        self.transitions.extend(other.transitions);
        self.refused.extend(other.refused);
    }
}

/// A service and its stage in one environment of the pipeline.
pub(crate) fn stage_of<'p>(
    pipeline: &'p Pipeline,
    service: &str,
    environment: &str,
) -> Option<(&'p Service, &'p StageConfig)> {
    let s = pipeline.services.get(service)?;
    Some((s, s.stage(environment)?))
}

/// The last pipeline parsed in this process, with the stored file it was parsed from.
/// Parsing and validating a large pipeline costs milliseconds; a warm invocation that reads
/// the same file reuses the parse. Parsing is a pure function of the text, so this is always
/// correct.
type Parsed = (Arc<StoredPipeline>, Arc<Pipeline>);
static LAST_PARSED: Mutex<Option<Parsed>> = Mutex::new(None);

fn parse_cached(
    stored: &Arc<StoredPipeline>,
) -> Result<Arc<Pipeline>, crate::pipeline::ConfigError> {
    parse_in(&LAST_PARSED, stored)
}

/// [`parse_cached`] with the cache it keeps the last parse in.
fn parse_in(
    cache: &Mutex<Option<Parsed>>,
    stored: &Arc<StoredPipeline>,
) -> Result<Arc<Pipeline>, crate::pipeline::ConfigError> {
    let mut last = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((file, parsed)) = last.as_ref()
        && (Arc::ptr_eq(file, stored) || file.source == stored.source)
    {
        return Ok(parsed.clone());
    }
    let parsed = Arc::new(Pipeline::from_toml(&stored.source)?);
    *last = Some((stored.clone(), parsed.clone()));
    Ok(parsed)
}

/// The stored pipeline, parsed; an error names the fix.
fn parsed(stored: Option<&Arc<StoredPipeline>>) -> Result<Arc<Pipeline>, EngineError> {
    let stored = stored.ok_or_else(|| {
        EngineError::Config("no pipeline stored; run `shiplane config apply FILE`".into())
    })?;
    parse_cached(stored).map_err(|e| {
        EngineError::Config(format!(
            "stored pipeline version {} does not validate: {e}",
            stored.version
        ))
    })
}

/// The lanes a decision in `environment` reads: its own, and those its gate watches; with
/// `next`, also the next environment's and its gate's (a decision that may promote).
fn lanes_read_by(service: &Service, environment: &str, next: bool) -> Vec<LaneKey> {
    let with_gates = |env: &str| {
        let gates = service
            .stage(env)
            .map(|stage| stage.hold_while_alarms_in.clone())
            .unwrap_or_default();
        std::iter::once(env.to_string()).chain(gates)
    };
    let mut envs: Vec<String> = with_gates(environment).collect();
    if next
        && let Some(after) = service
            .stages
            .iter()
            .skip_while(|s| s.environment != environment)
            .nth(1)
    {
        envs.extend(with_gates(&after.environment));
    }
    envs.sort_unstable();
    envs.dedup();
    envs.into_iter()
        .map(|env| LaneKey::new(&service.name, env))
        .collect()
}

/// The lanes `lanes_read_by` names for `service` in the pipeline this process cached, or
/// just the event's own lane when nothing is cached: what an event's first read can take
/// along before the pipeline is revalidated.
fn lanes_guessed<S: ReleaseStore>(store: &S, service: &str, environment: &str) -> Vec<LaneKey> {
    store
        .cached_pipeline()
        .and_then(|cached| parse_cached(&cached).ok())
        .and_then(|p| {
            p.services
                .get(service)
                .map(|s| lanes_read_by(s, environment, true))
        })
        .unwrap_or_else(|| vec![LaneKey::new(service, environment)])
}

/// A new release of `push` entering `environment` by `event`, written with its claim
/// (`key`), so that it is made once per repository + digest.
fn release_work(
    push: &ImagePush,
    service: &Service,
    environment: &str,
    key: String,
    event: Event,
    now: Timestamp,
) -> (ReleaseId, Work) {
    let release = new_release(push, service, now);
    let id = release.id.clone();
    let work = Work {
        new_release: Some(release),
        claim: Some(ClaimValue::Release(id.clone()).claim(key, now)),
        ..Work::event(&service.name, environment, &id, event)
    };
    (id, work)
}

impl<P: Ports> Engine<'_, P> {
    /// The current pipeline, parsed (revalidated when this process has one cached); an
    /// error names the fix.
    pub async fn pipeline(&self) -> Result<Arc<Pipeline>, EngineError> {
        let reads = Reads {
            pipeline: true,
            ..Reads::default()
        };
        let snapshot = self.store.read(&reads, Timestamp(0)).await?;
        parsed(snapshot.pipeline.as_ref())
    }

    /// [`Self::on_push_with`] knowing no more of a push's time than its event's second.
    pub async fn on_push(
        &self,
        push: &ImagePush,
        now: Timestamp,
    ) -> Result<PushOutcome, EngineError> {
        self.on_push_with(push, &NoPushClock, now).await
    }

    /// An image was pushed: make it a release (once per repository + digest) and start
    /// its first stage; a replay finishes whatever the first delivery left undone, and a
    /// replay of a push whose processing ran to its end answers from one read. A push that
    /// shares its second with the newest one in its lane is placed by ECR's own push times,
    /// read from `clock` (see [`push_order`]).
    pub async fn on_push_with(
        &self,
        push: &ImagePush,
        clock: &impl PushClock,
        now: Timestamp,
    ) -> Result<PushOutcome, EngineError> {
        let key = claim_key(push);
        // A process with no pipeline cached loads it first: the lane the push enters then
        // joins the claim in the read below (two calls, where a read beside the load and
        // one after it would be three in as many round trips), and a push of a repository
        // it does not name is ignored without another.
        if self.store.cached_pipeline().is_none()
            && let Intake::Ignored(why) = intake(&*self.pipeline().await?, push)
        {
            return Ok(PushOutcome::Ignored(why));
        }
        // One read: the claim, the pipeline (revalidated) and, when the pipeline this
        // process cached names it, the lane the push enters.
        let mut reads = Reads {
            claim: Some(key.clone()),
            pipeline: true,
            ..Reads::default()
        };
        if let Some(cached) = self.store.cached_pipeline()
            && let Ok(guess) = parse_cached(&cached)
            && let Intake::Release {
                service,
                environment,
            } = intake(&guess, push)
        {
            reads.lanes = lanes_read_by(service, environment, false);
        }
        let snapshot = self.store.read(&reads, now).await?;
        if let Some(claim) = &snapshot.claim
            && claim.settled.contains(&push.tag)
        {
            let release = ClaimValue::release(push, &claim.value)?;
            info!(release = %release, tag = ?push.tag, "ignored: a replay of a push already handled");
            return Ok(PushOutcome::Replayed {
                release,
                tag_added: false,
            });
        }
        let pipeline = parsed(snapshot.pipeline.as_ref())?;
        let (service, environment) = match intake(&pipeline, push) {
            Intake::Ignored(why) => return Ok(PushOutcome::Ignored(why)),
            Intake::Release {
                service,
                environment,
            } => (service, environment),
        };
        if let Some(claim) = &snapshot.claim {
            return self
                .replay_push(&pipeline, service, environment, &claim.value, push, now)
                .await;
        }
        let (id, work) = release_work(push, service, environment, key.clone(), Event::Arrived, now);
        let settle = Settle {
            key: key.clone(),
            tag: push.tag.clone(),
            at: now,
        };
        let jobs = vec![Job::Apply(work)];
        let run = self.drain_placing(&pipeline, jobs, now, snapshot, Some(&settle), clock);
        match run.await {
            Ok(report) => Ok(PushOutcome::Created {
                state: report.state_of(&id, environment),
                release: id,
                environment: environment.to_string(),
            }),
            // Another delivery of the same push won the race: finish its work, if any.
            Err(EngineError::Store(StoreError::AlreadyClaimed { value, .. })) => {
                self.replay_push(&pipeline, service, environment, &value, push, now)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// An operator deploys an image by digest without a push (`shiplane deploy`): a release
    /// like a push's (once per repository + digest), whatever the service's tag policy,
    /// recorded with who and why. The registry is the one given, else the one of the
    /// service's newest release.
    #[allow(clippy::too_many_arguments)]
    pub async fn on_operator_deploy(
        &self,
        service: &str,
        digest: Digest,
        tag: Option<String>,
        registry: Option<String>,
        actor: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<PushOutcome, EngineError> {
        let pipeline = self.pipeline().await?;
        let Some(svc) = pipeline.services.get(service) else {
            return Ok(PushOutcome::Ignored(format!(
                "no service \"{service}\" in the pipeline"
            )));
        };
        let Some(first) = svc.stages.first() else {
            return Ok(PushOutcome::Ignored(format!(
                "services.{service} has no environments"
            )));
        };
        let registry = match registry {
            Some(r) => r,
            None => match self.store.releases_of_service(service, 1).await?.first() {
                Some(newest) if !newest.registry.is_empty() => newest.registry.clone(),
                _ => {
                    return Ok(PushOutcome::Ignored(format!(
                        "{service} has no release yet to take the registry from; give --registry <account>.dkr.ecr.<region>.amazonaws.com"
                    )));
                }
            },
        };
        let tag = tag.unwrap_or_else(|| format!("deploy-{}", digest.short()));
        if let Err(e) = crate::release::validate_tag(&tag) {
            return Ok(PushOutcome::Ignored(e.to_string()));
        }
        let push = ImagePush {
            registry,
            repository: svc.repository.clone(),
            digest,
            tag,
            pushed_at: now,
        };
        let key = claim_key(&push);
        if let Some(existing) = self.store.claimed(&key, now).await? {
            return Ok(PushOutcome::Replayed {
                release: ClaimValue::release(&push, &existing)?,
                tag_added: false,
            });
        }
        let event = Event::Deployed {
            actor: actor.to_string(),
            reason: reason.to_string(),
        };
        let (id, work) = release_work(&push, svc, &first.environment, key, event, now);
        let report = self.run(&pipeline, work, now).await?;
        Ok(PushOutcome::Created {
            state: report.state_of(&id, &first.environment),
            release: id,
            environment: first.environment.clone(),
        })
    }

    /// A push of a digest that is already a release: its tag is added (a transition with
    /// its history item) and whatever its lanes owe is finished.
    async fn replay_push(
        &self,
        pipeline: &Pipeline,
        service: &Service,
        environment: &str,
        existing: &str,
        push: &ImagePush,
        now: Timestamp,
    ) -> Result<PushOutcome, EngineError> {
        let id = ClaimValue::release(push, existing)?;
        let Some(release) = self.store.release(&id).await? else {
            return Err(StoreError::Corrupt {
                what: format!("claim for {}", push.digest),
                message: format!("names release {id}, which does not exist"),
            }
            .into());
        };
        let tag = Event::TagAdded {
            tag: push.tag.clone(),
        };
        let report = self
            .run(
                pipeline,
                Work::event(&service.name, environment, &id, tag),
                now,
            )
            .await?;
        // Work a crash interrupted in the release's later environments.
        for (env, stage) in &release.item.stages {
            if env != environment && !stage.state().is_terminal() {
                self.run(pipeline, Work::recover(&service.name, env), now)
                    .await?;
            }
        }
        if let Err(e) = self
            .store
            .settle_claim(&claim_key(push), &push.tag, now)
            .await
        {
            warn!(release = %id, error = %e, "claim not marked settled");
        }
        let tag_added = report
            .transitions
            .iter()
            .any(|t| t.cause == Cause::TagAdded);
        if tag_added {
            info!(release = %id, tag = ?push.tag, "tag added to existing release");
        }
        Ok(PushOutcome::Replayed {
            release: id,
            tag_added,
        })
    }

    /// A task stopped: if it is a release's migration (named by its `startedBy`, or by the
    /// task ARN recorded when it started), continue to the deployment or fail the stage.
    pub async fn on_task_stopped(
        &self,
        stopped: &TaskStopped,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let named = stopped.started_by.as_deref().and_then(parse_started_by);
        let target = match named.clone() {
            Some((id, env, _)) => Some((id, env)),
            None => self
                .store
                .deployment(&stopped.task_arn)
                .await?
                .map(|d| (d.release, d.environment)),
        };
        let not_ours = || {
            Ok(Inbound::Ignored(format!(
                "task {} was not started by Shiplane",
                stopped.task_arn
            )))
        };
        let Some((id, env)) = target else {
            return not_ours();
        };
        // The release and the pipeline, in one read.
        let reads = Reads {
            pipeline: true,
            releases: vec![id.clone()],
            ..Reads::default()
        };
        let snapshot = self.store.read(&reads, now).await?;
        let Some(release) = snapshot.releases.get(&id) else {
            return not_ours();
        };
        if let (Some((_, _, attempt)), Some(stage)) = (&named, release.item.stages.get(&env))
            && *attempt != stage.attempt
        {
            return Ok(Inbound::Ignored(format!(
                "task {} ran attempt {attempt} of release {id} in {env}, which is at attempt {}",
                stopped.task_arn, stage.attempt
            )));
        }
        if let Some(stage) = release.item.stages.get(&env)
            && stage.state() == StageState::Migrating
            && let Some(known) = stage.started()
            && known != stopped.task_arn
        {
            return Ok(Inbound::Ignored(format!(
                "task {} is not the migration of release {id} in {env} (that is {known})",
                stopped.task_arn
            )));
        }
        let pipeline = parsed(snapshot.pipeline.as_ref())?;
        let Some((service, stage)) = stage_of(&pipeline, &release.item.service, &env) else {
            return Ok(Inbound::Ignored(format!(
                "services.{}.environments.{env} is not in the current pipeline",
                release.item.service
            )));
        };
        let event = effects::migration_event(stopped, stage);
        let work = Work::event(&service.name, &env, &id, event);
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

    /// Applies an operator's event to a whole lane (pause, resume, unblock).
    pub async fn on_lane(
        &self,
        pipeline: &Pipeline,
        service: &str,
        environment: &str,
        event: LaneEvent,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        self.run(pipeline, Work::lane(service, environment, event), now)
            .await
    }

    /// Finishes whatever one lane owes (see [`crate::release::owed`]).
    pub async fn recover(
        &self,
        pipeline: &Pipeline,
        service: &str,
        environment: &str,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        self.run(pipeline, Work::recover(service, environment), now)
            .await
    }
}

#[cfg(test)]
mod tests;
