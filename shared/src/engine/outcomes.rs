//! Outcomes from AWS: CodeDeploy's deployment state changes, CloudWatch alarms, and the
//! bake timers EventBridge Scheduler fires.
//!
//! Deployment outcomes come from CodeDeploy's state-change events. They are best effort (the
//! reconciler covers a lost one) and matched to the stage by deployment id, so a late
//! event of an older deployment never finishes a newer one.

use tracing::{info, warn};

use super::run::{Job, Work};
use super::{Engine, EngineError, Ports, Report, lanes_guessed, lanes_read_by, parsed, stage_of};
use crate::aws::{AlarmReader, DeployError, DeployRequest, Deployer, DeploymentStatus, Origin};
use crate::facts::AlarmChange;
use crate::facts::BakeTimer;
use crate::inbound::Inbound;
use crate::inbound::codedeploy::{DeploymentState, DeploymentStateChange};
use crate::inbound::ecs::ServiceDeploymentEnded;
use crate::pipeline::{Pipeline, Target};
use crate::release::AlarmState;
use crate::release::{Event, LaneEvent, ReleaseId, StageState, Timestamp};
use crate::store::{DeploymentRef, LaneKey, Reads, ReleaseStore};

impl<P: Ports> Engine<'_, P> {
    /// A CodeDeploy deployment ended (or started, or is ready to reroute: only logged):
    /// the stage that runs it succeeds (and bakes) or fails; a deployment Shiplane did not
    /// start frees the lane it kept busy.
    pub async fn on_deployment_state(
        &self,
        change: &DeploymentStateChange,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        if !change.state.is_final() {
            return Ok(Inbound::Ignored(format!(
                "deployment {} is {:?}; Shiplane acts when it ends",
                change.deployment_id, change.state
            )));
        }
        // The pipeline and the deployment's reference, read together.
        let (pipeline, reference) = tokio::join!(
            self.pipeline(),
            self.store.deployment(&change.deployment_id)
        );
        let pipeline = pipeline?;
        let outcome = match change.state {
            DeploymentState::Success => Ok(()),
            DeploymentState::Stop => Err((None, "was stopped")),
            _ => Err((None, "failed")),
        };
        let Some(reference) = reference? else {
            let rolled_back = match self.origin(&change.deployment_id).await? {
                Some(Origin::Release {
                    release,
                    environment,
                    attempt,
                    task_definition,
                    ..
                }) => {
                    let found = Found {
                        release,
                        environment,
                        attempt: Some(attempt),
                        task_definition,
                        // CodeDeploy's description names the attempt: no time needed.
                        created: None,
                    };
                    return self
                        .unrecorded_deployment_ended(
                            &pipeline,
                            &change.deployment_id,
                            found,
                            outcome,
                            now,
                        )
                        .await;
                }
                Some(Origin::RollbackOf(original)) => self
                    .store
                    .deployment(&original)
                    .await?
                    .map(|reference| (original, reference)),
                None => None,
            };
            return self
                .foreign_deployment_ended(&pipeline, change, rolled_back, now)
                .await;
        };
        self.deployment_ended(&pipeline, &reference, &change.deployment_id, outcome, now)
            .await
    }

    /// A rolling service's ECS deployment ended ("ECS Deployment State Change"): the stage
    /// that runs it succeeds (and bakes) or fails with ECS's reason. A deployment Shiplane
    /// did not start (a circuit breaker's rollback, a change by hand) changes nothing.
    pub async fn on_service_deployment(
        &self,
        ended: &ServiceDeploymentEnded,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let (pipeline, reference) =
            tokio::join!(self.pipeline(), self.store.deployment(&ended.deployment_id));
        let outcome = ended.outcome.clone().map_err(|why| (Some(why), "failed"));
        let Some(reference) = reference? else {
            // Shiplane's own if its revision says so (the invocation that made it died
            // before recording it): recorded first, then ended as any other.
            if let Some(found) = self.ecs_origin(ended).await? {
                return self
                    .unrecorded_deployment_ended(
                        &*pipeline?,
                        &ended.deployment_id,
                        found,
                        outcome,
                        now,
                    )
                    .await;
            }
            return Ok(Inbound::Ignored(format!(
                "ECS deployment {} was not started by Shiplane (a circuit breaker's rollback, or a change by hand)",
                ended.deployment_id
            )));
        };
        self.deployment_ended(&*pipeline?, &reference, &ended.deployment_id, outcome, now)
            .await
    }

    /// A deployment Shiplane started ended: Ok, or Err with the reason when the event gave
    /// one (else AWS is asked) and how it ended. Only the deployment the stage runs moves it.
    async fn deployment_ended(
        &self,
        pipeline: &Pipeline,
        reference: &DeploymentRef,
        deployment_id: &str,
        outcome: Result<(), (Option<String>, &str)>,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let ignored = |why: String| Ok(Inbound::Ignored(why));
        let env = reference.environment.as_str();
        // The release with its lanes (and the next environment's, should it promote), in
        // one read that the decision then starts from.
        let lanes = match pipeline.services.get(&reference.service) {
            Some(service) => lanes_read_by(service, env, true),
            None => vec![LaneKey::new(&reference.service, env)],
        };
        let reads = Reads {
            lanes,
            releases: vec![reference.release.clone()],
            ..Reads::default()
        };
        let snapshot = self.store.read(&reads, now).await?;
        let Some(release) = snapshot.releases.get(&reference.release).cloned() else {
            return ignored(format!("release {} no longer exists", reference.release));
        };
        let runs = release
            .item
            .stages
            .get(env)
            .and_then(|s| s.deployment_id.as_deref());
        if runs != Some(deployment_id) {
            return ignored(format!(
                "deployment {deployment_id} is not the one release {} runs in {env} ({}); a late event changes nothing",
                release.item.id,
                runs.unwrap_or("none")
            ));
        }
        let Some((service, stage)) = stage_of(pipeline, &reference.service, env) else {
            return ignored(format!(
                "services.{}.environments.{env} is not in the current pipeline",
                reference.service
            ));
        };
        let event = match outcome {
            Ok(()) => Event::DeploymentSucceeded,
            Err((Some(reason), _)) => Event::DeploymentFailed { reason },
            Err((None, how)) => {
                // The event says only that; the deployment says why.
                let req = DeployRequest {
                    release: &release.item,
                    service,
                    stage,
                    fresh: false,
                };
                let reason = match self.deployer.deployment_status(req, deployment_id).await {
                    Ok(DeploymentStatus::Failed(why)) => why,
                    _ => format!("deployment {deployment_id} {how}"),
                };
                Event::DeploymentFailed { reason }
            }
        };
        let work = Work::event(&service.name, env, &release.item.id, event);
        let jobs = vec![Job::Apply(work)];
        Ok(Inbound::Accepted(
            self.drain_from(pipeline, jobs, now, snapshot, None).await?,
        ))
    }

    /// Where a deployment Shiplane holds no reference to came from ([`Deployer::origin`]);
    /// None for any other deployment, and when CodeDeploy refuses to say (logged). When
    /// CodeDeploy cannot be asked now, the event is delivered again: a deployment that
    /// landed after its stage ended is found by nothing else (seed 50993).
    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, EngineError> {
        match self.deployer.origin(deployment_id).await {
            Ok(origin) => Ok(origin),
            Err(e) => unknown_origin(deployment_id, "CodeDeploy", e),
        }
    }

    /// The release an ECS deployment Shiplane holds no reference to deploys, by its
    /// revision's tags ([`Deployer::ecs_origin`]); None for another's, and when ECS refuses
    /// to say (logged). When ECS cannot be asked now, the event is delivered again.
    async fn ecs_origin(
        &self,
        ended: &ServiceDeploymentEnded,
    ) -> Result<Option<Found>, EngineError> {
        let Some((cluster, service)) = ended.service.as_ref() else {
            return Ok(None);
        };
        let tagged = match self
            .deployer
            .ecs_origin(cluster, service, &ended.deployment_id)
            .await
        {
            Ok(Some(tagged)) => tagged,
            Ok(None) => return Ok(None),
            Err(e) => return unknown_origin(&ended.deployment_id, "ECS", e),
        };
        Ok(Some(Found {
            release: tagged.release,
            environment: tagged.environment,
            // ECS's tags name no attempt: the stage's own is taken.
            attempt: None,
            task_definition: Some(tagged.task_definition),
            created: tagged.created,
        }))
    }

    /// A deployment Shiplane made ended, and the invocation that made it died before
    /// recording it (its description names the release): it is recorded on its stage
    /// first, as the one the stage runs (or, if the stage ended meanwhile, as one to undo),
    /// and then its outcome moves the stage as any other's would. One of an earlier
    /// attempt, or of a stage that runs another, changes nothing.
    async fn unrecorded_deployment_ended(
        &self,
        pipeline: &Pipeline,
        id: &str,
        found: Found,
        outcome: Result<(), (Option<String>, &str)>,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let Some(release) = self.store.release(&found.release).await? else {
            return Ok(Inbound::Ignored(format!(
                "deployment {id} names release {}, which no longer exists",
                found.release
            )));
        };
        let Some(stage) = release.item.stages.get(&found.environment) else {
            return Ok(Inbound::Ignored(format!(
                "deployment {id} names release {} in {}, where it never was",
                found.release, found.environment
            )));
        };
        if let Some(attempt) = found.attempt.filter(|a| *a != stage.attempt) {
            return Ok(Inbound::Ignored(format!(
                "deployment {id} was attempt {attempt} of release {} in {}, which is at attempt {} now; a late event changes nothing",
                found.release, found.environment, stage.attempt
            )));
        }
        if let Some(why) = self.not_its_own(id, &found, stage).await? {
            return Ok(Inbound::Ignored(why));
        }
        let reference = DeploymentRef {
            deployment_id: id.to_string(),
            release: found.release.clone(),
            service: release.item.service.clone(),
            environment: found.environment.clone(),
            restore: stage.redeploy,
        };
        let mut report = Report::default();
        if stage.started().is_none() {
            info!(deployment = %id, release = %found.release, environment = %found.environment, "a deployment Shiplane made ended unrecorded; recording it first");
            let work = Work {
                deployments: vec![reference.clone()],
                ..Work::event(
                    &release.item.service,
                    &found.environment,
                    &found.release,
                    Event::DeploymentCreated {
                        deployment_id: id.to_string(),
                        task_definition: found.task_definition,
                        // It ended: what it did is known, whenever it was made.
                        fence: stage.fence,
                    },
                )
            };
            report = self.drain(pipeline, vec![Job::Apply(work)], now).await?;
        }
        match self
            .deployment_ended(pipeline, &reference, id, outcome, now)
            .await?
        {
            Inbound::Accepted(more) => report.merge(more),
            Inbound::Ignored(why) if report.transitions.is_empty() => {
                return Ok(Inbound::Ignored(why));
            }
            Inbound::Ignored(why) => info!(deployment = %id, why = %why, "outcome not applied"),
        }
        Ok(Inbound::Accepted(report))
    }

    /// A deployment someone else made in one of Shiplane's deployment groups ended: a
    /// release it sent back to the queue (`deployment_blocked`) starts now.
    async fn foreign_deployment_ended(
        &self,
        pipeline: &Pipeline,
        change: &DeploymentStateChange,
        rolled_back: Option<(String, DeploymentRef)>,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let mut jobs = Vec::new();
        // CodeDeploy's own rollback of a deployment Shiplane started: say how it went on
        // the release it rolled back.
        if let Some((original, r)) = rolled_back {
            jobs.push(rollback_reported(change, &original, &r));
        }
        for service in pipeline.services.values() {
            for stage in &service.stages {
                let Target::BlueGreen { codedeploy, .. } = &stage.target else {
                    continue;
                };
                if codedeploy.application != change.application
                    || codedeploy.deployment_group != change.deployment_group
                {
                    continue;
                }
                let lane = self
                    .store
                    .lane(&service.name, &stage.environment)
                    .await?
                    .item;
                if lane.in_flight.is_some() {
                    continue;
                }
                let Some(queued) = lane.queued else { continue };
                let waiting = self
                    .store
                    .release(&queued)
                    .await?
                    .and_then(|r| r.item.state_in(&stage.environment))
                    == Some(StageState::Queued);
                if waiting {
                    info!(service = %service.name, environment = %stage.environment, release = %queued, deployment = %change.deployment_id, "the deployment that kept the group busy ended; starting the queued release");
                    jobs.push(Job::Apply(Work::event(
                        &service.name,
                        &stage.environment,
                        &queued,
                        Event::Dequeue,
                    )));
                }
            }
        }
        if jobs.is_empty() {
            return Ok(Inbound::Ignored(format!(
                "deployment {} was not started by Shiplane and keeps no release waiting",
                change.deployment_id
            )));
        }
        Ok(Inbound::Accepted(self.drain(pipeline, jobs, now).await?))
    }
}

/// How CodeDeploy's own rollback `change` of deployment `original` (of release stage
/// `r`) went, as the event that says so on the release it rolled back.
fn rollback_reported(change: &DeploymentStateChange, original: &str, r: &DeploymentRef) -> Job {
    let failed = change.state != DeploymentState::Success;
    let detail = if failed {
        format!(
            "CodeDeploy's rollback deployment {} (of {original}) {}: {}/{} may run neither version wholly",
            change.deployment_id,
            if change.state == DeploymentState::Stop {
                "was stopped"
            } else {
                "failed"
            },
            r.service,
            r.environment,
        )
    } else {
        format!(
            "CodeDeploy's rollback deployment {} (of {original}) succeeded: the version before serves again",
            change.deployment_id
        )
    };
    Job::Apply(Work::event(
        &r.service,
        &r.environment,
        &r.release,
        Event::RollbackReported {
            deployment_id: change.deployment_id.clone(),
            detail,
            failed,
        },
    ))
}

/// The release, environment and attempt (when known) a deployment Shiplane holds no
/// reference to was made for, and the revision it deploys.
pub(super) struct Found {
    pub(super) release: ReleaseId,
    pub(super) environment: String,
    attempt: Option<u32>,
    task_definition: Option<String>,
    /// When AWS created the deployment, when it says (ECS).
    pub(super) created: Option<Timestamp>,
}

impl<P: Ports> Engine<'_, P> {
    /// A CloudWatch alarm changed state: every lane that watches it records the change (an
    /// older change than the one recorded is refused); on ALARM the release in flight there
    /// is stopped and rolled back, or, if it already shipped, replaced by the last known
    /// good release.
    pub async fn on_alarm(
        &self,
        change: &AlarmChange,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let pipeline = self.pipeline().await?;
        let lanes = pipeline.lanes_watching(&change.alarm);
        if lanes.is_empty() {
            return Ok(Inbound::Ignored(format!(
                "alarm {} is watched by no stage of the pipeline",
                change.alarm
            )));
        }
        let mut jobs: Vec<Job> = lanes
            .iter()
            .map(|(service, env)| alarm_changed(service, env, change))
            .collect();
        // An alarm that stopped firing may release the holds of the environments gated on
        // its own: look at what those lanes owe again.
        if change.state != AlarmState::Alarm {
            for (service, env) in &lanes {
                let Some(s) = pipeline.services.get(*service) else {
                    continue;
                };
                for gated in s
                    .stages
                    .iter()
                    .filter(|st| st.hold_while_alarms_in.iter().any(|w| w == env))
                {
                    jobs.push(Job::Apply(Work::recover(service, &gated.environment)));
                }
            }
        }
        Ok(Inbound::Accepted(self.drain(&pipeline, jobs, now).await?))
    }
}

/// The lane event by which `service`/`environment` records an alarm's change, and acts on
/// it: from the alarm function, and from the reconciler for a change whose event was lost.
pub(super) fn alarm_changed(service: &str, environment: &str, change: &AlarmChange) -> Job {
    Job::Apply(Work::lane(
        service,
        environment,
        LaneEvent::AlarmChanged {
            alarm: change.alarm.clone(),
            state: change.state,
            at: change.at,
            reason: change.reason.clone(),
        },
    ))
}

impl<P: Ports> Engine<'_, P> {
    /// [`Self::on_bake_timer`], after the stage's own alarms are read from CloudWatch: a
    /// bake ends on the alarms' current state, not on the events that happened to arrive
    /// (DESIGN invariant 12). A change whose event was lost is applied first, as
    /// [`Self::on_alarm`] would have (an ALARM rolls the release back); CloudWatch
    /// unreadable: the bake is left to the reconciler, which ends it once it can read them.
    pub async fn on_bake_timer_reading(
        &self,
        reader: &impl AlarmReader,
        timer: &BakeTimer,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let pipeline = self.pipeline().await?;
        let env = timer.environment.as_str();
        let mut report = Report::default();
        if let Some((_, stage)) = stage_of(&pipeline, &timer.service, env)
            && !(stage.alarms.is_empty() && stage.alarm_prefixes.is_empty())
        {
            let changes = match reader.current(&stage.alarms, &stage.alarm_prefixes).await {
                Ok(changes) => changes,
                Err(e) => {
                    warn!(service = %timer.service, environment = %env, error = ?e.message, "could not read the stage's alarms; the reconciler ends the bake");
                    return Ok(Inbound::Ignored(format!(
                        "the alarms of services.{}.environments.{env} could not be read from CloudWatch ({}); the reconciler ends the bake once it can read them",
                        timer.service, e.message
                    )));
                }
            };
            let lane = self.store.lane(&timer.service, env).await?.item;
            let jobs: Vec<Job> = changes
                .iter()
                .filter(|change| super::reconcile::missed(Some(&lane), change))
                .map(|change| {
                    info!(service = %timer.service, environment = %env, alarm = %change.alarm, state = change.state.as_str(), "bake timer: an alarm change whose event was lost");
                    alarm_changed(&timer.service, env, change)
                })
                .collect();
            if !jobs.is_empty() {
                report.merge(self.drain(&pipeline, jobs, now).await?);
            }
        }
        match self.on_bake_timer(timer, now).await? {
            Inbound::Accepted(r) => {
                report.merge(r);
                Ok(Inbound::Accepted(report))
            }
            Inbound::Ignored(why) if report.transitions.is_empty() => Ok(Inbound::Ignored(why)),
            Inbound::Ignored(_) => Ok(Inbound::Accepted(report)),
        }
    }

    /// A bake timer fired (Scheduler invoked the promote function): the stage's bake ends,
    /// through its gates. A timer of an earlier attempt, one that fires before the bake
    /// ends, or one for a stage no longer baking changes nothing.
    pub async fn on_bake_timer(
        &self,
        timer: &BakeTimer,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let ignored = |why: String| Ok(Inbound::Ignored(why));
        let env = timer.environment.as_str();
        // The timer names the release and the lane: read with the pipeline, at once.
        let reads = Reads {
            pipeline: true,
            lanes: lanes_guessed(self.store, &timer.service, env),
            releases: vec![timer.release.clone()],
            ..Reads::default()
        };
        let snapshot = self.store.read(&reads, now).await?;
        let pipeline = parsed(snapshot.pipeline.as_ref())?;
        if stage_of(&pipeline, &timer.service, env).is_none() {
            return ignored(format!(
                "services.{}.environments.{env} is not in the current pipeline",
                timer.service
            ));
        }
        let Some(release) = snapshot.releases.get(&timer.release) else {
            return ignored(format!("release {} does not exist", timer.release));
        };
        if release.item.service != timer.service {
            return ignored(format!(
                "release {} belongs to {}, not {}",
                timer.release, release.item.service, timer.service
            ));
        }
        let Some(stage) = release.item.stages.get(env) else {
            return ignored(format!("release {} has not reached {env}", timer.release));
        };
        if stage.attempt != timer.attempt {
            return ignored(format!(
                "the timer is for attempt {} of release {} in {env}, which is at attempt {}",
                timer.attempt, timer.release, stage.attempt
            ));
        }
        if let Some(until) = stage.bake_until().filter(|u| *u > now) {
            return ignored(format!(
                "release {} bakes in {env} until {until}; the timer fired early, the reconciler ends the bake",
                timer.release
            ));
        }
        let work = Work::event(&timer.service, env, &timer.release, Event::BakeElapsed);
        let jobs = vec![Job::Apply(work)];
        Ok(Inbound::Accepted(
            self.drain_from(&pipeline, jobs, now, snapshot, None)
                .await?,
        ))
    }
}

/// A deployment whose maker AWS could not name: retried while AWS is throttled or
/// unreachable, taken for another's when it refuses for good.
fn unknown_origin<T>(
    deployment_id: &str,
    asked: &str,
    e: DeployError,
) -> Result<Option<T>, EngineError> {
    if e.retryable {
        warn!(deployment = ?deployment_id, error = ?e.message, "could not ask {asked} who made the deployment; the event is delivered again");
        return Err(EngineError::Unavailable(format!(
            "{asked} could not say who made deployment {deployment_id} ({}); the event is delivered again",
            e.message
        )));
    }
    warn!(deployment = ?deployment_id, error = ?e.message, "{asked} refused to say who made the deployment; taken for another's");
    Ok(None)
}
