//! The loop itself: decide, commit conditionally, announce, execute, and feed every
//! outcome back, until nothing is left to do; one retry-on-conflict helper.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use tracing::{info, warn};

use super::pass::{Announce, Decided, Pass};
pub(super) use super::work::{Job, Subject, Work};
use super::{Engine, EngineError, Ports, Report, lanes_read_by, stage_of};
use crate::aws::{
    DeployRequest, Deployer, NoPushClock, Notification, Notifier, NotifyError, PushClock,
};
use crate::pipeline::{Pipeline, Service, StageConfig};
use crate::release::{
    Action, Decision, Event, LaneEvent, LaneView, Owed, Policy, ReleaseId, StageState, Timestamp,
    apply, apply_lane, owed,
};
use crate::store::{
    Commit, LaneKey, LoadedLane, Reads, ReleaseStore, Settle, Snapshot, StoreError, read_some,
};

/// Attempts at a decision whose commit keeps meeting concurrent writers.
const COMMIT_ATTEMPTS: u32 = 5;
/// How long a pass waits for SNS to take its notifications. They are best effort (DESIGN
/// invariant 4): a topic that does not answer must not hold a release, or a hook's answer
/// to CodeDeploy, up for the SDK's whole retry schedule.
pub const NOTIFY_BUDGET: Duration = Duration::from_secs(3);

/// The jobs a lane owes, leaving out actions the decision at hand already runs, the end
/// of a bake that is over, and the watch's rollback for an alarm that goes on firing: both
/// follow the alarms' current state in CloudWatch, not the states the lane recorded (an
/// ALARM or an OK may be lost or late; DESIGN invariant 12), so only passes that read
/// CloudWatch first do them (the reconciler, and for a bake the bake timer).
fn owed_jobs(view: &LaneView, policy: &Policy, now: Timestamp, running: &[Action]) -> Vec<Job> {
    let jobs: Vec<Job> = owed(view, policy, now)
        .into_iter()
        .filter_map(|o| match o {
            Owed::Act(a) if running.contains(&a) => None,
            Owed::Apply(_, Event::BakeElapsed | Event::AlarmFired { .. }) => None,
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

impl<P: Ports> Engine<'_, P> {
    pub(super) async fn run(
        &self,
        pipeline: &Pipeline,
        work: Work,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        self.drain(pipeline, vec![Job::Apply(work)], now).await
    }

    pub(super) async fn drain(
        &self,
        pipeline: &Pipeline,
        jobs: Vec<Job>,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        self.drain_from(pipeline, jobs, now, Snapshot::default(), None)
            .await
    }

    /// [`Engine::run`], except that the notifications of a pass that succeeds are handed
    /// back instead of sent: the deploy-hook answers CodeDeploy first, and announces while
    /// it does.
    pub(super) async fn run_unannounced(
        &self,
        pipeline: &Pipeline,
        work: Work,
        now: Timestamp,
    ) -> (Result<Report, EngineError>, Vec<Notification>) {
        let jobs = vec![Job::Apply(work)];
        self.pass(
            pipeline,
            jobs,
            now,
            Snapshot::default(),
            None,
            Announce::ByCaller,
            &NoPushClock,
        )
        .await
    }

    /// Runs jobs, and the jobs they cause, until none is left. An action runs at most once
    /// per pass. `known` holds items already read for the first job (its lanes and
    /// releases are used); items this pass commits are kept too, so the decision on an
    /// action's outcome starts from them instead of reading them again (a commit conflict,
    /// or a decision that commits nothing, reads afresh). When every job is done, `settle`
    /// (a delivery's claim and tag) is marked settled: by the last commit, when the last job
    /// commits one, else by a write of its own. The notifications of every decision go
    /// out together at the end, in one `PublishBatch` per ten, also when a job failed.
    pub(super) async fn drain_from(
        &self,
        pipeline: &Pipeline,
        jobs: Vec<Job>,
        now: Timestamp,
        known: Snapshot,
        settle: Option<&Settle>,
    ) -> Result<Report, EngineError> {
        self.drain_placing(pipeline, jobs, now, known, settle, &NoPushClock)
            .await
    }

    /// [`Engine::drain_from`], placing the pushes it mints by ECR's push times from
    /// `clock` when they share a second with the newest push of their lane.
    pub(super) async fn drain_placing(
        &self,
        pipeline: &Pipeline,
        jobs: Vec<Job>,
        now: Timestamp,
        known: Snapshot,
        settle: Option<&Settle>,
        clock: &impl PushClock,
    ) -> Result<Report, EngineError> {
        let (result, _) = self
            .pass(pipeline, jobs, now, known, settle, Announce::AtEnd, clock)
            .await;
        result
    }

    /// The loop of [`Engine::drain_from`]; its notifications go out as `announce` says
    /// (those it leaves to the caller are returned).
    #[allow(clippy::too_many_arguments)]
    async fn pass(
        &self,
        pipeline: &Pipeline,
        jobs: Vec<Job>,
        now: Timestamp,
        mut known: Snapshot,
        settle: Option<&Settle>,
        announce: Announce,
        clock: &impl PushClock,
    ) -> (Result<Report, EngineError>, Vec<Notification>) {
        let mut jobs = VecDeque::from(jobs);
        let mut pass = Pass::new();
        while let Some(job) = jobs.pop_front() {
            if !pass.count(jobs.len()) {
                break;
            }
            match job {
                Job::Apply(work) => {
                    let settling = settle.filter(|_| jobs.is_empty());
                    // Boxed: a decision's future is large, and every pass holds one.
                    let decided = Box::pin(
                        self.decide_retrying(pipeline, &work, now, &mut known, settling, clock),
                    )
                    .await;
                    match decided {
                        Ok(decided) => jobs.extend(pass.absorb(&work, decided)),
                        Err(e) => {
                            pass.failed = Some(e);
                            break;
                        }
                    }
                }
                Job::Execute(action, release) => {
                    if let Some(fresh) = pass.first_run(&action, &release) {
                        let outcomes =
                            Box::pin(self.execute(pipeline, action, &release, fresh)).await;
                        jobs.extend(outcomes.into_iter().map(Job::Apply));
                    }
                }
            }
        }
        self.end_pass(pass, settle, announce).await
    }

    /// Ends a pass: its delivery is settled when it finished everything and no commit
    /// settled it already, its notifications go out (or back to the caller), and its
    /// report or its failure is the answer.
    async fn end_pass(
        &self,
        pass: Pass,
        settle: Option<&Settle>,
        announce: Announce,
    ) -> (Result<Report, EngineError>, Vec<Notification>) {
        let settling = async {
            if let (Some(Settle { key, tag, at }), true, false, None) =
                (settle, pass.complete, pass.settled, &pass.failed)
                && let Err(e) = self.store.settle_claim(key, tag, *at).await
            {
                // A replay then takes the longer way, and finds nothing left to do.
                warn!(claim = %key, error = %e, "claim not marked settled");
            }
        };
        let (now_sent, left) = match (announce, &pass.failed) {
            (Announce::ByCaller, None) => (Vec::new(), pass.pending),
            _ => (pass.pending, Vec::new()),
        };
        tokio::join!(self.publish(now_sent), settling);
        let result = match pass.failed {
            Some(e) => Err(e),
            None => Ok(pass.report),
        };
        (result, left)
    }

    /// [`Engine::decide`], again while its commit meets a concurrent writer (with a
    /// growing pause, up to [`COMMIT_ATTEMPTS`] times) or while it rests on unchecked
    /// items (once, from fresh reads).
    async fn decide_retrying(
        &self,
        pipeline: &Pipeline,
        work: &Work,
        now: Timestamp,
        known: &mut Snapshot,
        settle: Option<&Settle>,
        clock: &impl PushClock,
    ) -> Result<Decided, EngineError> {
        let mut n = 0;
        loop {
            n += 1;
            match self.decide(pipeline, work, now, known, settle, clock).await {
                Ok(decided) if decided.unchecked => {
                    info!(service = %work.service, environment = %work.environment, "nothing committed from items known before; deciding again from fresh reads");
                    *known = Snapshot::default();
                }
                Err(EngineError::Store(StoreError::Conflict { what })) if n < COMMIT_ATTEMPTS => {
                    info!(conflict = %what, attempt = n, "concurrent change; deciding again");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(n))).await;
                }
                other => return other,
            }
        }
    }

    /// Decides one unit of work and records the decision; returns what to do next.
    /// `settle` is written with the commit when the decision leaves nothing more to do; a
    /// release the work mints is placed among the lane's pushes with `clock`.
    async fn decide(
        &self,
        pipeline: &Pipeline,
        work: &Work,
        now: Timestamp,
        known: &mut Snapshot,
        settle: Option<&Settle>,
        clock: &impl PushClock,
    ) -> Result<Decided, EngineError> {
        let Some((service, stage)) = stage_of(pipeline, &work.service, &work.environment) else {
            let why = format!(
                "services.{}.environments.{} is not in the current pipeline",
                work.service, work.environment
            );
            warn!(reason = %why, "ignored");
            return Ok(Decided::nothing(Vec::new(), Some(why), false));
        };
        let (loaded, policy, cached) = self.load_for(work, service, stage, known, clock).await?;
        let decided = match &work.subject {
            Subject::Release(id, event) => apply(&loaded.view, id, event, &policy, now),
            Subject::Lane(event) => apply_lane(&loaded.view, event, &policy, now),
            Subject::Recover => {
                let jobs = owed_jobs(&loaded.view, &policy, now, &[]);
                return Ok(Decided::nothing(jobs, None, cached));
            }
        };
        let decision = match decided {
            Ok(d) if !d.is_noop() => d,
            Ok(_) => {
                let jobs = owed_jobs(&loaded.view, &policy, now, &[]);
                return Ok(Decided::nothing(jobs, None, cached));
            }
            Err(refused) => {
                info!(
                    service = %work.service,
                    environment = %work.environment,
                    reason = %refused,
                    "ignored: the event does not apply to the current state"
                );
                // Whatever the lane still owes is finished all the same.
                let jobs = owed_jobs(&loaded.view, &policy, now, &[]);
                return Ok(Decided::nothing(jobs, Some(refused.to_string()), cached));
            }
        };
        self.record(
            pipeline,
            work,
            service,
            &loaded,
            decision,
            &policy,
            (now, settle),
            known,
        )
        .await
    }

    /// Loads `work`'s lane, the releases it names and the lanes its gate watches (from
    /// `known` where it can), places a release the work mints among the lane's pushes, and
    /// makes the stage's policy, held by the gate's firing alarms. Also says whether the
    /// load rested on items known before.
    async fn load_for(
        &self,
        work: &Work,
        service: &Service,
        stage: &StageConfig,
        known: &mut Snapshot,
        clock: &impl PushClock,
    ) -> Result<(LoadedLane, Policy, bool), EngineError> {
        let mut policy = Policy::for_stage(service, stage);
        let subjects: Vec<ReleaseId> = match &work.subject {
            // A release minted by this work is not read: its id is new (a ULID), and its
            // commit writes it only if it does not exist.
            Subject::Release(id, _) if work.new_release.as_ref().is_some_and(|r| r.id == *id) => {
                Vec::new()
            }
            Subject::Release(id, _) => vec![id.clone()],
            Subject::Lane(LaneEvent::Rollback { to: Some(id), .. }) => vec![id.clone()],
            _ => Vec::new(),
        };
        // The gate: alarms firing in the environments this one is held by.
        let gates: Vec<LaneKey> = stage
            .hold_while_alarms_in
            .iter()
            .map(|watched| LaneKey::new(&service.name, watched))
            .collect();
        let lane_key = LaneKey::new(&work.service, &work.environment);
        let knew_lanes: HashSet<LaneKey> = known.lanes.keys().cloned().collect();
        let knew_releases: HashSet<ReleaseId> = known.releases.keys().cloned().collect();
        let mut loaded = LoadedLane::load_from(
            self.store,
            &work.service,
            &work.environment,
            &subjects,
            &gates,
            known,
        )
        .await?;
        let cached = knew_lanes.contains(&lane_key)
            || gates.iter().any(|g| knew_lanes.contains(g))
            || loaded.versions.keys().any(|id| knew_releases.contains(id));
        // Read from what was loaded, so that its commit checks every gate lane it read.
        for (key, watched) in gates.iter().zip(&stage.hold_while_alarms_in) {
            if let Some(lane) = loaded.also.get(key) {
                policy.held_by.extend(
                    lane.item
                        .firing_alarms()
                        .into_iter()
                        .map(|name| format!("{name} ({watched})")),
                );
            }
        }
        if let Some(r) = &work.new_release {
            let placed = super::push_order::place(clock, &mut loaded.view.lane, r.clone()).await?;
            loaded.add_new(placed);
        }
        Ok((loaded, policy, cached))
    }

    /// Commits `decision` (with what `work` must also write, and `settle` when nothing is
    /// left to do), reading ahead meanwhile; returns what to do next.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        pipeline: &Pipeline,
        work: &Work,
        service: &Service,
        loaded: &LoadedLane,
        decision: Decision,
        policy: &Policy,
        (now, settle): (Timestamp, Option<&Settle>),
        known: &mut Snapshot,
    ) -> Result<Decided, EngineError> {
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
        jobs.extend(owed_jobs(&decision.view, policy, now, &decision.actions));
        let mut commit = loaded.commit_for(&decision);
        commit.claim = work.claim.clone();
        commit.deployments = work.deployments.clone();
        commit.settle = settle.filter(|_| jobs.is_empty()).cloned();
        let settled = commit.settle.is_some();
        let written = Commit {
            releases: commit.releases.clone(),
            lanes: commit.lanes.clone(),
            ..Commit::default()
        };
        // What the deployments decided here read first is read while the decision is
        // committed: reads only, used only after the commit has landed.
        // So are the lanes of the environments it promotes to, if this pass has not read them.
        let promoted: Vec<LaneKey> = decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Promote { to, .. } => Some(to),
                _ => None,
            })
            .flat_map(|to| lanes_read_by(service, to, false))
            .filter(|key| !known.lanes.contains_key(key))
            .collect();
        let ahead = Reads {
            lanes: promoted,
            ..Reads::default()
        };
        let minted = work.new_release.as_ref().map(|r| &r.id);
        let (committed, (), ahead) = tokio::join!(
            self.store.commit(commit),
            self.prefetch(pipeline, &decision, minted),
            read_some(self.store, &ahead)
        );
        if let Err(e) = committed {
            // Something changed under this pass: everything it knows is read again.
            *known = Snapshot::default();
            return Err(e.into());
        }
        known.record(&written);
        // A failed read ahead is only a read to make again later.
        if let Ok(ahead) = ahead {
            known.absorb(ahead);
        }
        let notes = notes(work, &decision);
        crate::metrics::emit_decision(&loaded.view, &decision);
        Ok(Decided {
            jobs,
            transitions: decision.transitions,
            refused: None,
            notes,
            unchecked: false,
            settled,
        })
    }

    /// Reads ahead for the deployments `decision` starts ([`Deployer::prefetch`]); those of
    /// the release this decision mints are fresh ([`DeployRequest::fresh`]).
    async fn prefetch(&self, pipeline: &Pipeline, decision: &Decision, minted: Option<&ReleaseId>) {
        for action in &decision.actions {
            let Action::Deploy {
                release,
                environment,
                ..
            } = action
            else {
                continue;
            };
            let Some(release) = decision.view.releases.get(release) else {
                continue;
            };
            if let Some((service, stage)) = stage_of(pipeline, &release.service, environment) {
                self.deployer
                    .prefetch(DeployRequest {
                        release,
                        service,
                        stage,
                        fresh: minted == Some(&release.id),
                    })
                    .await;
            }
        }
    }

    /// Publishes notifications. Best effort: a failed publish is logged and never blocks
    /// or retries the release, and SNS gets [`NOTIFY_BUDGET`] to take them.
    pub(super) async fn publish(&self, notes: Vec<Notification>) {
        if notes.is_empty() {
            return;
        }
        let failed =
            match tokio::time::timeout(NOTIFY_BUDGET, self.notifier.publish_all(&notes)).await {
                Ok(failed) => failed,
                Err(_) => {
                    let why = format!("SNS did not answer within {} s", NOTIFY_BUDGET.as_secs());
                    (0..notes.len())
                        .map(|i| {
                            let e = NotifyError {
                                message: why.clone(),
                                retryable: true,
                            };
                            (i, e)
                        })
                        .collect()
                }
            };
        for (i, e) in failed {
            let (kind, service) = notes.get(i).map_or(("?".into(), "?"), |n| {
                (n.kind.to_string(), n.service.as_str())
            });
            warn!(kind = %kind, service = %service, error = ?e.message, retryable = e.retryable, "notification not sent; the release goes on");
        }
    }
}

/// Logs every transition of a committed decision and returns its notifications.
fn notes(work: &Work, decision: &Decision) -> Vec<Notification> {
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
    notes
}
