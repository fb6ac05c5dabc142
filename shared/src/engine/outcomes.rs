//! Outcomes from AWS: CodeDeploy's deployment state changes, CloudWatch alarms, and the
//! bake timers EventBridge Scheduler fires.
//!
//! Deployment outcomes come from CodeDeploy's state-change events. They are best effort (the
//! reconciler covers a lost one) and matched to the stage by deployment id, so a late
//! event of an older deployment never finishes a newer one.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::run::{Job, Work};
use super::{Engine, EngineError, Report, stage_of};
use crate::aws::{
    AlarmReader, BakeTimer, DeployRequest, Deployer, DeploymentStatus, Notifier, Timer,
};
use crate::inbound::Inbound;
use crate::inbound::alarm::{AlarmChange, AlarmState};
use crate::inbound::codedeploy::{DeploymentState, DeploymentStateChange};
use crate::pipeline::{Pipeline, Target};
use crate::release::{Event, LaneEvent, StageState, Timestamp};
use crate::store::ReleaseStore;

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Engine<'_, S, D, N, T> {
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
        let pipeline = self.pipeline().await?;
        let Some(reference) = self.store.deployment(&change.deployment_id).await? else {
            return self.foreign_deployment_ended(&pipeline, change, now).await;
        };
        let ignored = |why: String| Ok(Inbound::Ignored(why));
        let Some(release) = self.store.release(&reference.release).await? else {
            return ignored(format!("release {} no longer exists", reference.release));
        };
        let env = reference.environment.as_str();
        let runs = release
            .item
            .stages
            .get(env)
            .and_then(|s| s.deployment_id.as_deref());
        if runs != Some(change.deployment_id.as_str()) {
            return ignored(format!(
                "deployment {} is not the one release {} runs in {env} ({}); a late event changes nothing",
                change.deployment_id,
                release.item.id,
                runs.unwrap_or("none")
            ));
        }
        let Some((service, stage)) = stage_of(&pipeline, &reference.service, env) else {
            return ignored(format!(
                "services.{}.environments.{env} is not in the current pipeline",
                reference.service
            ));
        };
        let event = match change.state {
            DeploymentState::Success => Event::DeploymentSucceeded,
            _ => {
                let how = if change.state == DeploymentState::Stop {
                    "was stopped"
                } else {
                    "failed"
                };
                // The event says only that; CodeDeploy's deployment says why.
                let req = DeployRequest {
                    release: &release.item,
                    service,
                    stage,
                };
                let reason = match self
                    .deployer
                    .deployment_status(req, &change.deployment_id)
                    .await
                {
                    Ok(DeploymentStatus::Failed(why)) => why,
                    _ => format!("CodeDeploy deployment {} {how}", change.deployment_id),
                };
                Event::DeploymentFailed { reason }
            }
        };
        let work = Work::event(&service.name, env, &release.item.id, event);
        Ok(Inbound::Accepted(self.run(&pipeline, work, now).await?))
    }

    /// A deployment someone else made in one of Shiplane's deployment groups ended: a
    /// release it sent back to the queue (`deployment_blocked`) starts now.
    async fn foreign_deployment_ended(
        &self,
        pipeline: &Pipeline,
        change: &DeploymentStateChange,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let mut jobs = Vec::new();
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

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Engine<'_, S, D, N, T> {
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
            .map(|(service, env)| {
                Job::Apply(Work::lane(
                    service,
                    env,
                    LaneEvent::AlarmChanged {
                        alarm: change.alarm.clone(),
                        state: change.state,
                        at: change.at,
                        reason: change.reason.clone(),
                    },
                ))
            })
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

    /// Alarm events are best effort too: asks CloudWatch about every alarm a lane (of
    /// `only`, or of every service) last saw in ALARM, and applies a newer state whose event
    /// never arrived, as [`Self::on_alarm`] would have. Without it a lost OK would hold a
    /// gated environment until an operator unblocked it. CloudWatch unreachable: logged,
    /// nothing changes, the next pass asks again.
    pub async fn refresh_alarms(
        &self,
        reader: &impl AlarmReader,
        pipeline: &Pipeline,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        let mut firing: BTreeMap<String, Timestamp> = BTreeMap::new();
        for service in pipeline.services.values() {
            if only.is_some_and(|o| o != service.name) {
                continue;
            }
            for lane in self.store.lanes(&service.name).await? {
                for (name, seen) in &lane.item.alarms {
                    if seen.state == AlarmState::Alarm {
                        let at = firing.entry(name.clone()).or_insert(seen.at);
                        *at = (*at).max(seen.at);
                    }
                }
            }
        }
        let mut report = Report::default();
        if firing.is_empty() {
            return Ok(report);
        }
        let names: Vec<String> = firing.keys().cloned().collect();
        let current = match reader.current(&names).await {
            Ok(current) => current,
            Err(e) => {
                warn!(alarms = ?names, error = ?e.message, "could not read alarm states; the next pass asks again");
                return Ok(report);
            }
        };
        for change in current {
            let missed = change.state != AlarmState::Alarm
                && firing
                    .get(&change.alarm)
                    .is_some_and(|seen| change.at > *seen);
            if missed {
                info!(alarm = %change.alarm, state = change.state.as_str(), "reconciler: an alarm change whose event was lost");
                if let Inbound::Accepted(r) = self.on_alarm(&change, now).await? {
                    report.merge(r);
                }
            }
        }
        Ok(report)
    }
}

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Engine<'_, S, D, N, T> {
    /// A bake timer fired (Scheduler invoked the promote function): the stage's bake ends,
    /// through its gates. A timer of an earlier attempt, one that fires before the bake
    /// ends, or one for a stage no longer baking changes nothing.
    pub async fn on_bake_timer(
        &self,
        timer: &BakeTimer,
        now: Timestamp,
    ) -> Result<Inbound<Report>, EngineError> {
        let ignored = |why: String| Ok(Inbound::Ignored(why));
        let pipeline = self.pipeline().await?;
        let env = timer.environment.as_str();
        if stage_of(&pipeline, &timer.service, env).is_none() {
            return ignored(format!(
                "services.{}.environments.{env} is not in the current pipeline",
                timer.service
            ));
        }
        let Some(release) = self.store.release(&timer.release).await? else {
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
        if let Some(until) = stage.bake_until.filter(|u| *u > now) {
            return ignored(format!(
                "release {} bakes in {env} until {until}; the timer fired early, the reconciler ends the bake",
                timer.release
            ));
        }
        let work = Work::event(&timer.service, env, &timer.release, Event::BakeElapsed);
        Ok(Inbound::Accepted(self.run(&pipeline, work, now).await?))
    }
}
