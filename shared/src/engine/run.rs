//! The loop itself: decide, commit conditionally, announce, execute, and feed every
//! outcome back, until nothing is left to do; one retry-on-conflict helper.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use tracing::{error, info, warn};

use super::{Engine, EngineError, Report, stage_of};
use crate::aws::{Deployer, Notification, Notifier, Timer};
use crate::pipeline::Pipeline;
use crate::release::{
    Action, Decision, Event, LaneEvent, LaneView, Owed, Policy, Release, ReleaseId, StageState,
    Timestamp, Transition, apply, apply_lane, owed,
};
use crate::store::{Claim, DeploymentRef, LoadedLane, ReleaseStore, StoreError};

/// Attempts at a decision whose commit keeps meeting concurrent writers.
const COMMIT_ATTEMPTS: u32 = 5;
/// More jobs than any one event can cause: past it the loop stops, loudly, rather than spin.
const MAX_JOBS: usize = 500;

/// What a unit of work is about.
#[derive(Debug, Clone)]
pub(super) enum Subject {
    Release(ReleaseId, Event),
    Lane(LaneEvent),
    /// Nothing happened; finish what the lane owes.
    Recover,
}

/// One event in one lane, with what its commit must also write.
#[derive(Debug, Clone)]
pub(super) struct Work {
    pub service: String,
    pub environment: String,
    pub subject: Subject,
    pub new_release: Option<Release>,
    pub claim: Option<Claim>,
    pub deployments: Vec<DeploymentRef>,
}

impl Work {
    fn with(service: &str, environment: &str, subject: Subject) -> Work {
        Work {
            service: service.to_string(),
            environment: environment.to_string(),
            subject,
            new_release: None,
            claim: None,
            deployments: Vec::new(),
        }
    }

    pub fn event(service: &str, environment: &str, release: &ReleaseId, event: Event) -> Work {
        Self::with(
            service,
            environment,
            Subject::Release(release.clone(), event),
        )
    }

    pub fn lane(service: &str, environment: &str, event: LaneEvent) -> Work {
        Self::with(service, environment, Subject::Lane(event))
    }

    pub fn recover(service: &str, environment: &str) -> Work {
        Self::with(service, environment, Subject::Recover)
    }
}

pub(super) enum Job {
    Apply(Work),
    Execute(Action, Release),
}

/// What one decision produced.
struct Decided {
    jobs: Vec<Job>,
    transitions: Vec<Transition>,
    refused: Option<String>,
}

/// Runs `attempt` again while its commit meets a concurrent writer (a conflict), with a
/// growing pause, up to [`COMMIT_ATTEMPTS`] times; every other outcome is returned as is.
pub(super) async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let mut n = 0;
    loop {
        n += 1;
        match attempt().await {
            Err(EngineError::Store(StoreError::Conflict { what })) if n < COMMIT_ATTEMPTS => {
                info!(conflict = %what, attempt = n, "concurrent change; deciding again");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(n))).await;
            }
            other => return other,
        }
    }
}

/// The jobs a lane owes, leaving out actions the decision at hand already runs.
fn owed_jobs(view: &LaneView, policy: &Policy, now: Timestamp, running: &[Action]) -> Vec<Job> {
    let jobs: Vec<Job> = owed(view, policy, now)
        .into_iter()
        .filter_map(|o| match o {
            Owed::Act(a) if running.contains(&a) => None,
            Owed::Act(a) => view
                .releases
                .get(a.release())
                .map(|r| Job::Execute(a.clone(), r.clone())),
            Owed::Apply(id, event) => Some(Job::Apply(Work::event(
                &view.lane.service,
                &view.lane.environment,
                &id,
                event,
            ))),
        })
        .collect();
    if !jobs.is_empty() {
        info!(
            service = %view.lane.service,
            environment = %view.lane.environment,
            owed = jobs.len(),
            "finishing work the lane owes"
        );
    }
    jobs
}

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Engine<'_, S, D, N, T> {
    pub(super) async fn run(
        &self,
        pipeline: &Pipeline,
        work: Work,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        self.drain(pipeline, vec![Job::Apply(work)], now).await
    }

    /// Runs jobs, and the jobs they cause, until none is left. An action runs at most once
    /// per pass.
    pub(super) async fn drain(
        &self,
        pipeline: &Pipeline,
        jobs: Vec<Job>,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        let mut jobs = VecDeque::from(jobs);
        let mut report = Report::default();
        let mut executed: HashSet<Action> = HashSet::new();
        let mut done = 0;
        while let Some(job) = jobs.pop_front() {
            done += 1;
            if done > MAX_JOBS {
                error!(
                    left = jobs.len(),
                    "too many follow-up jobs for one event; stopping (a bug: please report it)"
                );
                break;
            }
            match job {
                Job::Apply(work) => {
                    let decided = retry_on_conflict(|| self.decide(pipeline, &work, now)).await?;
                    report.transitions.extend(decided.transitions);
                    report.refused.extend(decided.refused);
                    jobs.extend(decided.jobs);
                }
                Job::Execute(action, release) => {
                    if executed.insert(action.clone()) {
                        let outcomes = Box::pin(self.execute(pipeline, action, &release)).await;
                        jobs.extend(outcomes.into_iter().map(Job::Apply));
                    }
                }
            }
        }
        Ok(report)
    }

    /// Decides one unit of work and records the decision; returns what to do next.
    async fn decide(
        &self,
        pipeline: &Pipeline,
        work: &Work,
        now: Timestamp,
    ) -> Result<Decided, EngineError> {
        let Some((service, stage)) = stage_of(pipeline, &work.service, &work.environment) else {
            let why = format!(
                "services.{}.environments.{} is not in the current pipeline",
                work.service, work.environment
            );
            warn!(reason = %why, "ignored");
            return Ok(Decided {
                jobs: Vec::new(),
                transitions: Vec::new(),
                refused: Some(why),
            });
        };
        let mut policy = Policy::for_stage(service, stage);
        // The gate: alarms firing in the environments this one is held by.
        for watched in &stage.hold_while_alarms_in {
            let lane = self.store.lane(&service.name, watched).await?.item;
            policy.held_by.extend(
                lane.firing_alarms()
                    .into_iter()
                    .map(|name| format!("{name} ({watched})")),
            );
        }
        let subjects: Vec<ReleaseId> = match &work.subject {
            Subject::Release(id, _) => vec![id.clone()],
            Subject::Lane(LaneEvent::Rollback { to: Some(id), .. }) => vec![id.clone()],
            _ => Vec::new(),
        };
        let mut loaded =
            LoadedLane::load(self.store, &work.service, &work.environment, &subjects).await?;
        if let Some(r) = &work.new_release {
            loaded.add_new(r.clone());
        }
        let decided = match &work.subject {
            Subject::Release(id, event) => apply(&loaded.view, id, event, &policy, now),
            Subject::Lane(event) => apply_lane(&loaded.view, event, &policy, now),
            Subject::Recover => {
                return Ok(Decided {
                    jobs: owed_jobs(&loaded.view, &policy, now, &[]),
                    transitions: Vec::new(),
                    refused: None,
                });
            }
        };
        let decision = match decided {
            Ok(d) if !d.is_noop() => d,
            Ok(_) => {
                return Ok(Decided {
                    jobs: owed_jobs(&loaded.view, &policy, now, &[]),
                    transitions: Vec::new(),
                    refused: None,
                });
            }
            Err(refused) => {
                info!(
                    service = %work.service,
                    environment = %work.environment,
                    reason = %refused,
                    "ignored: the event does not apply to the current state"
                );
                // Whatever the lane still owes is finished all the same.
                return Ok(Decided {
                    jobs: owed_jobs(&loaded.view, &policy, now, &[]),
                    transitions: Vec::new(),
                    refused: Some(refused.to_string()),
                });
            }
        };
        let mut commit = loaded.commit_for(&decision);
        commit.claim = work.claim.clone();
        commit.deployments = work.deployments.clone();
        self.store.commit(commit).await?;
        self.announce(work, &decision).await;
        let mut jobs: Vec<Job> = decision
            .actions
            .iter()
            .filter_map(|a| {
                decision
                    .view
                    .releases
                    .get(a.release())
                    .map(|r| Job::Execute(a.clone(), r.clone()))
            })
            .collect();
        jobs.extend(owed_jobs(&decision.view, &policy, now, &decision.actions));
        Ok(Decided {
            jobs,
            transitions: decision.transitions,
            refused: None,
        })
    }

    /// Logs every transition and publishes its notification. Best effort: a failed publish
    /// is logged and never blocks or retries the release.
    async fn announce(&self, work: &Work, decision: &Decision) {
        let mut notes = Vec::new();
        if let Some(r) = &work.new_release {
            notes.push(Notification::release_created(r));
        }
        for t in &decision.transitions {
            info!(
                service = %t.service,
                environment = %t.environment,
                release = ?t.release.as_ref().map(ReleaseId::as_str),
                from = ?t.from.map(StageState::as_str),
                to = ?t.to.map(StageState::as_str),
                cause = %t.cause,
                actor = ?t.actor,
                detail = ?t.detail,
                "transition"
            );
            let release = t
                .release
                .as_ref()
                .and_then(|id| decision.view.releases.get(id));
            notes.push(Notification::transition(t, release));
        }
        for (i, e) in self.notifier.publish_all(&notes).await {
            let (kind, service) = notes.get(i).map_or(("?".into(), "?"), |n| {
                (n.kind.to_string(), n.service.as_str())
            });
            warn!(kind = %kind, service = %service, error = ?e.message, retryable = e.retryable, "notification not sent; the release goes on");
        }
    }
}
