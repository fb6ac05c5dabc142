//! The reconciler: events from ECS, CodeDeploy and CloudWatch are best effort, so on a
//! schedule (and from `shiplane reconcile`) every lane with work is checked against AWS's
//! truth and fed the same domain events the event functions would have fed. It is
//! idempotent with the event path: an event arriving after the reconciler acted finds its
//! fact recorded.
//!
//! One pass:
//! 1. every service's lanes are listed (one query per service, several services at once);
//! 2. the current state of every alarm watched by a lane with work (an in-flight or queued
//!    release), and by the lanes that gate it, and of every alarm a lane last saw in ALARM,
//!    is read from CloudWatch in one batch (DESIGN invariant 12: alarms are state, not
//!    edges);
//! 3. each service, [`SERVICES_AT_ONCE`] at a time, first records the alarm changes its
//!    lanes missed, ALARM included, through the same lane event as `on_alarm` (a baking
//!    release is rolled back, not promoted); then each lane asks AWS where its work is and
//!    finishes what it owes.
//!
//! A lane that fails (a corrupt item, a conflict that outlasts the retries, an AWS error)
//! is logged with its service and environment, counted in [`Reconciled::failed`] and left
//! to the next pass; the other lanes go on.
//!
//! CloudWatch unreachable: a bake that is over is not ended in that pass; it stays owed and
//! the next pass that reads the alarms ends it (or rolls it back). Declaring a release good
//! (it becomes last known good and is promoted) on alarm states this pass could not check
//! is the one decision that cannot be taken back, while a bake a few minutes longer costs
//! nothing. Everything else a lane owes goes ahead: outcomes AWS reports, a committed
//! action that never ran, a queued release on a free lane (its gate reads the recorded
//! alarm states, as the event functions do).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use futures_util::{StreamExt, stream};
use tracing::{error, info, warn};

pub(super) use alarms::missed;
use alarms::{Alarms, read_alarms};

use super::run::{Job, Work};
use super::{Engine, EngineError, Ports, Report, effects};
use crate::aws::{AlarmReader, DeployRequest, Deployer, DeploymentStatus, MigrationRun};
use crate::facts::AlarmChange;
use crate::pipeline::{Pipeline, Service, StageConfig};
use crate::release::{
    Action, Event, Lane, LaneView, Policy, ReleaseId, Stage, StageState, Timestamp,
    outlasting_outage, owed_clean_up, persisting_alarm,
};
use crate::store::{LaneKey, LoadedLane, Reads, ReleaseStore, Snapshot, Versioned, read_some};

/// Services reconciled at once. Lanes of one service are reconciled in order (a promotion
/// in one changes the next); services are independent. Eight keeps a 3,000-lane pass well
/// inside the function's timeout (BENCHMARKS.md, reconciler pass) while the AWS calls it
/// makes at once stay few: ECS, CodeDeploy and DescribeAlarms allow tens of calls a second.
pub const SERVICES_AT_ONCE: usize = 8;

/// A lane the pass could not reconcile; the next pass tries again.
#[derive(Debug)]
pub struct LaneFailure {
    pub service: String,
    /// None when the service's lanes could not even be listed.
    pub environment: Option<String>,
    pub error: EngineError,
}

/// What a pass did, and what it left to the next one.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub report: Report,
    /// Lanes (or services) that failed, sorted; each was logged.
    pub failed: Vec<LaneFailure>,
    /// Why CloudWatch could not be read, when it could not.
    pub alarms_unread: Option<String>,
    /// Lanes whose bake is over but was left owed: their alarms could not be read.
    pub bakes_left_owed: Vec<LaneKey>,
}

impl Reconciled {
    fn merge(&mut self, other: Reconciled) {
        self.report.merge(other.report);
        self.failed.extend(other.failed);
        self.bakes_left_owed.extend(other.bakes_left_owed);
    }

    fn fail(&mut self, service: &str, environment: Option<&str>, error: EngineError) {
        error!(service = %service, environment = ?environment, error = %error, retryable = error.is_retryable(), "lane not reconciled; the next pass tries again");
        self.failed.push(LaneFailure {
            service: service.to_string(),
            environment: environment.map(str::to_string),
            error,
        });
    }
}

/// A future run beside others, boxed as `Send` where it is made: a service's pass holds
/// the engine's large futures, and rustc cannot prove a stream of closures' futures `Send`
/// in a handler generic over the ports.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<P: Ports> Engine<'_, P> {
    /// One pass over every lane of `only` (or of every service) with the alarm states the
    /// lanes recorded, CloudWatch not asked: for callers with no CloudWatch to ask (tests,
    /// the fault simulation). The function and the CLI run [`Self::reconcile_with_alarms`].
    pub async fn reconcile(
        &self,
        pipeline: &Pipeline,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<Reconciled, EngineError> {
        let (listed, failed) = self.list_lanes(pipeline, only).await?;
        let mut out = self
            .reconcile_services(pipeline, listed, &Alarms::Recorded, now)
            .await;
        out.failed.extend(failed.failed);
        Ok(sorted(out))
    }

    /// The reconciler's pass (see the module's documentation): the alarms of every lane
    /// with work read from CloudWatch first, then every lane reconciled, a failing lane
    /// counted and skipped. Fails only when no service's lanes could be listed at all (the
    /// store is down: the function's errors alarm should say so).
    pub async fn reconcile_with_alarms(
        &self,
        reader: &impl AlarmReader,
        pipeline: &Pipeline,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<Reconciled, EngineError> {
        let (listed, failed) = self.list_lanes(pipeline, only).await?;
        let (alarms, unread) = read_alarms(reader, pipeline, &listed, now).await;
        let mut out = self
            .reconcile_services(pipeline, listed, &alarms, now)
            .await;
        out.failed.extend(failed.failed);
        out.alarms_unread = unread;
        Ok(sorted(out))
    }

    /// Every written lane of each service, [`SERVICES_AT_ONCE`] services at a time; the
    /// services that could not be listed as failures. Err when none could be.
    async fn list_lanes<'p>(
        &self,
        pipeline: &'p Pipeline,
        only: Option<&str>,
    ) -> Result<(Vec<(&'p Service, Vec<Versioned<Lane>>)>, Reconciled), EngineError> {
        let services = pipeline
            .services
            .values()
            .filter(|s| only.is_none_or(|o| o == s.name));
        let listings: Vec<Boxed<'_, _>> = services
            .map(|service| -> Boxed<'_, _> {
                Box::pin(async move { (service, self.store.lanes(&service.name).await) })
            })
            .collect();
        let answers: Vec<_> = stream::iter(listings)
            .buffer_unordered(SERVICES_AT_ONCE)
            .collect()
            .await;
        let mut listed = Vec::new();
        let mut failed = Reconciled::default();
        let mut first_error = None;
        for (service, answer) in answers {
            match answer {
                Ok(lanes) => listed.push((service, lanes)),
                Err(e) => {
                    first_error.get_or_insert_with(|| e.clone());
                    failed.fail(&service.name, None, e.into());
                }
            }
        }
        match first_error {
            Some(e) if listed.is_empty() => Err(e.into()),
            _ => Ok((listed, failed)),
        }
    }

    /// Every listed service, [`SERVICES_AT_ONCE`] at a time.
    async fn reconcile_services(
        &self,
        pipeline: &Pipeline,
        listed: Vec<(&Service, Vec<Versioned<Lane>>)>,
        alarms: &Alarms,
        now: Timestamp,
    ) -> Reconciled {
        let services: Vec<Boxed<'_, Reconciled>> = listed
            .into_iter()
            .map(|(service, lanes)| -> Boxed<'_, Reconciled> {
                Box::pin(self.reconcile_service(pipeline, service, lanes, alarms, now))
            })
            .collect();
        let passes: Vec<Reconciled> = stream::iter(services)
            .buffer_unordered(SERVICES_AT_ONCE)
            .collect()
            .await;
        let mut out = Reconciled::default();
        for pass in passes {
            out.merge(pass);
        }
        out
    }

    /// One service: the alarm changes its lanes missed, then each written lane in pipeline
    /// order, each lane's failure kept to that lane.
    async fn reconcile_service(
        &self,
        pipeline: &Pipeline,
        service: &Service,
        listed: Vec<Versioned<Lane>>,
        alarms: &Alarms,
        now: Timestamp,
    ) -> Reconciled {
        let name = service.name.as_str();
        let mut out = Reconciled::default();
        let written: BTreeSet<String> = listed.iter().map(|l| l.item.environment.clone()).collect();
        // What the listing read is reused (every decision still checks it at commit), until
        // something this pass does changes the service's lanes.
        let mut known = Snapshot::default();
        for lane in listed {
            known
                .lanes
                .insert(LaneKey::new(name, &lane.item.environment), lane);
        }
        // Lanes not to reconcile further (their alarm changes could not be recorded), and
        // lanes whose alarms this pass does not know.
        let mut skipped: BTreeSet<String> = BTreeSet::new();
        let mut unknown: BTreeSet<String> = BTreeSet::new();
        match alarms {
            Alarms::Recorded => {}
            Alarms::Unread => {
                unknown.extend(service.stages.iter().map(|s| s.environment.clone()));
            }
            Alarms::Read(by_lane) => {
                let missed = self.apply_missed_alarms(pipeline, service, by_lane, &known, now);
                let (applied, failed) = missed.await;
                for (env, e) in failed {
                    out.fail(name, Some(&env), e);
                    skipped.insert(env);
                }
                if let Some(report) = applied {
                    out.report.merge(report);
                    known = Snapshot::default();
                }
            }
        }
        // The releases every lane references, in one read.
        if !known.lanes.is_empty() {
            self.read_referenced(name, &mut known).await;
        }
        for stage in &service.stages {
            let env = stage.environment.as_str();
            // Lanes never written hold nothing.
            if !written.contains(env) || skipped.contains(env) {
                continue;
            }
            let hold_bake = unknown.contains(env);
            let lane = self
                .reconcile_lane(pipeline, service, stage, now, known.clone(), hold_bake)
                .await;
            match lane {
                Ok((report, held)) => {
                    if !report.transitions.is_empty() {
                        known = Snapshot::default();
                    }
                    out.report.merge(report);
                    if held {
                        out.bakes_left_owed.push(LaneKey::new(name, env));
                    }
                }
                Err(e) => {
                    known = Snapshot::default();
                    out.fail(name, Some(env), e);
                }
            }
        }
        out
    }

    /// Applies, lane by lane, the alarm changes `by_lane` holds that the service's lanes
    /// missed (their events lost). Returns the report of what was applied (None when
    /// nothing was: what the pass knows still holds) and the lanes whose changes could not
    /// be recorded, with why.
    async fn apply_missed_alarms(
        &self,
        pipeline: &Pipeline,
        service: &Service,
        by_lane: &BTreeMap<LaneKey, Vec<AlarmChange>>,
        known: &Snapshot,
        now: Timestamp,
    ) -> (Option<Report>, Vec<(String, EngineError)>) {
        let name = service.name.as_str();
        let mut applied: Option<Report> = None;
        let mut failed = Vec::new();
        for stage in &service.stages {
            let env = stage.environment.as_str();
            let key = LaneKey::new(name, env);
            let lane = known.lanes.get(&key).map(|l| &l.item);
            let jobs: Vec<Job> = by_lane
                .get(&key)
                .into_iter()
                .flatten()
                .filter(|change| missed(lane, change))
                .map(|change| {
                    info!(service = %name, environment = %env, alarm = %change.alarm, state = change.state.as_str(), at = %change.at, "reconciler: an alarm change whose event was lost");
                    super::outcomes::alarm_changed(name, env, change)
                })
                .collect();
            if jobs.is_empty() {
                continue;
            }
            let report = applied.get_or_insert_with(Report::default);
            match self.drain(pipeline, jobs, now).await {
                Ok(r) => report.merge(r),
                Err(e) => failed.push((env.to_string(), e)),
            }
        }
        (applied, failed)
    }

    /// Reads the releases the lanes in `known` reference, in one read, into `known`.
    async fn read_referenced(&self, name: &str, known: &mut Snapshot) {
        let mut ids: Vec<_> = known
            .lanes
            .values()
            .flat_map(|l| LaneView::referenced(&l.item))
            .collect();
        ids.sort();
        ids.dedup();
        let reads = Reads {
            releases: ids,
            ..Reads::default()
        };
        match read_some(self.store, &reads).await {
            Ok(read) => known.absorb(read),
            // Each lane reads its own, and fails alone if it must.
            Err(e) => {
                warn!(service = %name, error = %e, "could not read the service's releases at once; each lane reads its own")
            }
        }
    }

    /// One lane: what AWS says of its work in flight, then what it owes; with `hold_bake`
    /// (its alarms are not known this pass) a bake that is over is left owed. Returns the
    /// report and whether a bake was left owed.
    async fn reconcile_lane(
        &self,
        pipeline: &Pipeline,
        service: &Service,
        stage: &StageConfig,
        now: Timestamp,
        mut known: Snapshot,
        hold_bake: bool,
    ) -> Result<(Report, bool), EngineError> {
        let env = stage.environment.as_str();
        let loaded =
            LoadedLane::load_from(self.store, &service.name, env, &[], &[], &mut known).await?;
        let lane = &loaded.view.lane;
        let mut jobs = Vec::new();
        let mut bake_over = None;
        let holders = [&lane.in_flight, &lane.queued];
        for id in holders.into_iter().flatten() {
            let Some(release) = loaded.view.releases.get(id) else {
                continue;
            };
            let Some(st) = release.stages.get(env) else {
                continue;
            };
            let overdue = st.deadline.filter(|d| *d <= now);
            let req = DeployRequest {
                release,
                service,
                stage,
                fresh: false,
            };
            let event = match (st.state(), st.started()) {
                (StageState::Migrating, Some(_))
                | (StageState::Deploying | StageState::Validating, Some(_)) => {
                    self.in_flight_outcome(req, st, id, overdue).await
                }
                (StageState::AwaitingApproval, _) if overdue.is_some() => {
                    Some(late("no one approved it".to_string(), overdue))
                }
                // A bake still running has its timer: set it again in case it was lost
                // (an already-set timer answers "exists" and changes nothing). A bake that
                // ended is finished below, by what the lane owes.
                (StageState::Baking, _) => {
                    match st.bake_until().filter(|u| *u > now) {
                        Some(at) => jobs.push(Job::Execute(
                            Action::SetTimer {
                                release: id.clone(),
                                environment: env.to_string(),
                                attempt: st.attempt,
                                at,
                            },
                            release.clone(),
                        )),
                        None => bake_over = Some(id.clone()),
                    }
                    None
                }
                _ => None,
            };
            if let Some(event) = event {
                info!(release = %id, environment = %env, event = event.name(), "reconciler: AWS reports an outcome");
                jobs.push(Job::Apply(Work::event(&service.name, env, id, event)));
            }
        }
        let held = end_bake(&service.name, env, bake_over, hold_bake, &mut jobs);
        if !hold_bake {
            jobs.extend(alarms_outlasting(service, stage, &loaded.view, now));
        }
        jobs.push(Job::Apply(Work::recover(&service.name, env)));
        jobs.extend(clean_up_job(service, stage, &loaded.view));
        if jobs.is_empty() {
            return Ok((Report::default(), held));
        }
        let report = self.drain_from(pipeline, jobs, now, known, None).await?;
        Ok((report, held))
    }
    /// What AWS says of a stage's migration task or deployment in flight, as the event to
    /// apply: its outcome, or, past the stage's deadline (`overdue`), that it timed out;
    /// None while it runs, or when AWS cannot be asked before the deadline.
    async fn in_flight_outcome(
        &self,
        req: DeployRequest<'_>,
        st: &Stage,
        id: &ReleaseId,
        overdue: Option<Timestamp>,
    ) -> Option<Event> {
        match (st.state(), st.started()) {
            (StageState::Migrating, Some(task)) => {
                match self.deployer.migration_status(req, task).await {
                    Ok(MigrationRun::Stopped(stopped)) => {
                        Some(effects::migration_event(&stopped, req.stage))
                    }
                    Ok(_) if overdue.is_some() => Some(late(
                        format!("migration task {task} did not finish"),
                        overdue,
                    )),
                    Err(e) if overdue.is_some() => Some(late(
                        format!("migration task {task} did not report (ECS: {})", e.message),
                        overdue,
                    )),
                    _ => None,
                }
            }
            (StageState::Deploying | StageState::Validating, Some(deployment)) => {
                match self.deployer.deployment_status(req, deployment).await {
                    Ok(DeploymentStatus::Succeeded) => Some(Event::DeploymentSucceeded),
                    Ok(DeploymentStatus::Failed(reason)) => {
                        Some(Event::DeploymentFailed { reason })
                    }
                    Ok(DeploymentStatus::Replaced) => Some(Event::DeploymentReplaced {
                        deployment_id: deployment.to_string(),
                    }),
                    Ok(_) if overdue.is_some() => Some(late(
                        format!("deployment {deployment} did not finish"),
                        overdue,
                    )),
                    Err(e) if overdue.is_some() => Some(late(
                        format!("deployment {deployment} did not report ({})", e.message),
                        overdue,
                    )),
                    Err(e) => {
                        warn!(release = %id, environment = %req.stage.environment, error = ?e.message, "could not ask AWS about the deployment; next pass");
                        None
                    }
                    Ok(_) => None,
                }
            }
            _ => None,
        }
    }
}

/// A bake that is over (`bake_over`) ends through its gate, as a job, once the lane's
/// alarms were read this pass (their missed changes applied first); with `hold_bake` they
/// Like a bake's end, what an alarm that goes on firing with no change arriving owes is
/// done only by a pass that read the alarms (their missed changes applied first): the
/// watch's rollback ([`persisting_alarm`]), and the rollback of the release that brought a
/// stopped service back up while the outage's alarm still fires ([`outlasting_outage`]).
fn alarms_outlasting(
    service: &Service,
    stage: &StageConfig,
    view: &LaneView,
    now: Timestamp,
) -> Vec<Job> {
    let env = stage.environment.as_str();
    let policy = Policy::for_stage(service, stage);
    [
        persisting_alarm(view, now),
        outlasting_outage(view, &policy, now),
    ]
    .into_iter()
    .flatten()
    .map(|(id, alarm)| {
        Job::Apply(Work::event(
            &service.name,
            env,
            &id,
            Event::AlarmFired { alarm },
        ))
    })
    .collect()
}

/// were not, and it stays owed to the next pass (true).
fn end_bake(
    service: &str,
    env: &str,
    bake_over: Option<ReleaseId>,
    hold_bake: bool,
    jobs: &mut Vec<Job>,
) -> bool {
    match bake_over {
        Some(release) if hold_bake => {
            warn!(service = %service, environment = %env, release = %release, "the bake is over but the lane's alarms could not be read; it stays owed to the next pass");
            true
        }
        Some(release) => {
            // The lane's alarms were read this pass (their missed changes applied
            // first): the bake ends, through its gate.
            let work = Work::event(service, env, &release, Event::BakeElapsed);
            jobs.push(Job::Apply(work));
            false
        }
        None => false,
    }
}

/// The event of a stage that did not `what` by its deadline (`overdue`).
fn late(what: String, overdue: Option<Timestamp>) -> Event {
    Event::TimedOut {
        reason: format!(
            "{what} by its deadline {}",
            overdue.map(|d| d.to_string()).unwrap_or_default()
        ),
    }
}

/// `out` with its failures and held bakes in a stable order (services finish in any).
fn sorted(mut out: Reconciled) -> Reconciled {
    out.failed
        .sort_by(|a, b| (&a.service, &a.environment).cmp(&(&b.service, &b.environment)));
    out.bakes_left_owed.sort();
    out
}

mod alarms;
/// The clean-up of older revisions a success on the lane owes ([`owed_clean_up`]): a
/// reconciler's job only, off the way of every release's events.
fn clean_up_job(service: &Service, stage: &StageConfig, view: &LaneView) -> Option<Job> {
    let action = owed_clean_up(view, &Policy::for_stage(service, stage))?;
    let release = view.releases.get(action.release())?.clone();
    Some(Job::Execute(action, release))
}

#[cfg(test)]
mod tests;
