//! The reconciler: events from ECS and CodeDeploy are best effort, so on a schedule (and
//! from `shiplane reconcile`) every lane with work is checked against AWS's truth and fed
//! the same domain events the event functions would have fed. It is idempotent with the
//! event path: an event arriving after the reconciler acted finds its fact recorded.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::run::{Job, Work};
use super::{Engine, EngineError, Report, effects};
use crate::aws::{
    AlarmReader, DeployRequest, Deployer, DeploymentStatus, MigrationRun, Notifier, Timer,
};
use crate::pipeline::{Pipeline, Service, StageConfig};
use crate::release::{Action, AlarmState, Event, StageState, Timestamp};
use crate::store::{LoadedLane, ReleaseStore};

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Engine<'_, S, D, N, T> {
    /// One pass over every lane of `only` (or of every service): ask AWS where in-flight
    /// work is, end what is overdue, and finish what each lane owes.
    pub async fn reconcile(
        &self,
        pipeline: &Pipeline,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        Ok(self.reconcile_lanes(pipeline, only, now).await?.0)
    }

    /// [`Self::reconcile`], then the alarms the same lanes last saw in ALARM read from
    /// CloudWatch ([`Self::refresh_alarms`]): what the scheduled reconciler and
    /// `shiplane reconcile` run, listing each service's lanes once.
    pub async fn reconcile_with_alarms(
        &self,
        reader: &impl AlarmReader,
        pipeline: &Pipeline,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        let (mut report, firing) = self.reconcile_lanes(pipeline, only, now).await?;
        report.merge(self.refresh_alarms(reader, firing, now).await?);
        Ok(report)
    }

    /// The pass, and the alarms its lanes last saw in ALARM with when they saw them.
    async fn reconcile_lanes(
        &self,
        pipeline: &Pipeline,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<(Report, BTreeMap<String, Timestamp>), EngineError> {
        let mut report = Report::default();
        let mut firing: BTreeMap<String, Timestamp> = BTreeMap::new();
        for service in pipeline.services.values() {
            if only.is_some_and(|o| o != service.name) {
                continue;
            }
            // Lanes never written hold nothing.
            let written = self.store.lanes(&service.name).await?;
            for lane in &written {
                for (name, seen) in &lane.item.alarms {
                    if seen.state == AlarmState::Alarm {
                        let at = firing.entry(name.clone()).or_insert(seen.at);
                        *at = (*at).max(seen.at);
                    }
                }
            }
            for stage in &service.stages {
                if written
                    .iter()
                    .any(|l| l.item.environment == stage.environment)
                {
                    report.merge(self.reconcile_lane(pipeline, service, stage, now).await?);
                }
            }
        }
        Ok((report, firing))
    }

    async fn reconcile_lane(
        &self,
        pipeline: &Pipeline,
        service: &Service,
        stage: &StageConfig,
        now: Timestamp,
    ) -> Result<Report, EngineError> {
        let env = stage.environment.as_str();
        let loaded = LoadedLane::load(self.store, &service.name, env, &[]).await?;
        let lane = &loaded.view.lane;
        let mut jobs = Vec::new();
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
            let late = |what: String| Event::TimedOut {
                reason: format!(
                    "{what} by its deadline {}",
                    overdue.map(|d| d.to_string()).unwrap_or_default()
                ),
            };
            let event = match (st.state, st.deployment_id.as_deref()) {
                (StageState::Migrating, Some(task)) => {
                    match self.deployer.migration_status(req, task).await {
                        Ok(MigrationRun::Stopped(stopped)) => {
                            Some(effects::migration_event(&stopped, stage))
                        }
                        Ok(_) if overdue.is_some() => {
                            Some(late(format!("migration task {task} did not finish")))
                        }
                        Err(e) if overdue.is_some() => Some(late(format!(
                            "migration task {task} did not report (ECS: {})",
                            e.message
                        ))),
                        _ => None,
                    }
                }
                (StageState::Deploying | StageState::Validating, Some(deployment)) => {
                    match self.deployer.deployment_status(req, deployment).await {
                        Ok(DeploymentStatus::Succeeded) => Some(Event::DeploymentSucceeded),
                        Ok(DeploymentStatus::Failed(reason)) => {
                            Some(Event::DeploymentFailed { reason })
                        }
                        Ok(_) if overdue.is_some() => {
                            Some(late(format!("deployment {deployment} did not finish")))
                        }
                        Err(e) if overdue.is_some() => Some(late(format!(
                            "deployment {deployment} did not report ({})",
                            e.message
                        ))),
                        Err(e) => {
                            warn!(release = %id, environment = %env, error = ?e.message, "could not ask AWS about the deployment; next pass");
                            None
                        }
                        Ok(_) => None,
                    }
                }
                (StageState::AwaitingApproval, _) if overdue.is_some() => {
                    Some(late("no one approved it".to_string()))
                }
                // A bake still running has its timer: set it again in case it was lost
                // (an already-set timer answers "exists" and changes nothing). A bake that
                // ended is finished below, by what the lane owes.
                (StageState::Baking, _) => {
                    if let Some(at) = st.bake_until.filter(|u| *u > now) {
                        jobs.push(Job::Execute(
                            Action::SetTimer {
                                release: id.clone(),
                                environment: env.to_string(),
                                attempt: st.attempt,
                                at,
                            },
                            release.clone(),
                        ));
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
        jobs.push(Job::Apply(Work::recover(&service.name, env)));
        self.drain(pipeline, jobs, now).await
    }
}
