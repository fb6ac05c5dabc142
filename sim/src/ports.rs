//! Shiplane's ports over the simulated world, and the world's own behaviour: deployments
//! that progress through their lifecycle, tasks that run and exit, alarms that evaluate,
//! schedules that fire. Every call takes a seeded while each way and may fail past the
//! SDK's retries, before its effect or after it (the answer lost).

use std::sync::Arc;
use std::time::Duration;

use shiplane::aws::{
    AlarmReader, AppStop, DeployError, DeployOutcome, DeployRequest, Deployer, DeploymentStatus,
    HookReporter, HookStatus, MigrationRun, Notification, Notifier, NotifyError, Origin, PushClock,
    Tagged, Timer, client_token, deployment_description, is_restore_description,
    parse_deployment_description, pinned_revision, started_by,
};
use shiplane::aws::{Trigger, TriggerId, TriggerPort, settle};
use shiplane::checks::{CheckContext, CheckResult, Checker};
use shiplane::engine::HookInvocation;
use shiplane::facts::{AlarmChange, BakeTimer};
use shiplane::facts::{ContainerExit, TaskStopped};
use shiplane::inbound::codedeploy::{DeploymentState, DeploymentStateChange};
use shiplane::inbound::ecs::ServiceDeploymentEnded;
use shiplane::pipeline::{Check, Pipeline, Target};
use shiplane::release::{
    AlarmState, Cause, Digest, Lane, Release, ReleaseId, StageState, Timestamp, Transition,
};
use shiplane::store::{
    Commit, DeploymentRef, MemoryStore, Reads, ReleaseStore, Snapshot, StoreError, StoredPipeline,
    Versioned,
};

use crate::Sim;
use crate::world::{
    Bad, CdDeployment, CdStatus, DESIRED, EcsDeployment, EcsService, Emitted, Execution, LaneSpec,
    Rollout, Task, World,
};

impl Sim {
    /// One AWS call: the request's way, its effect on the world, the answer's way. Fails
    /// past the SDK's retries with the configured probability, half of the time before
    /// the effect and half after it (done, the answer lost).
    pub async fn call<T>(
        &self,
        op: &str,
        effect: impl FnOnce(&mut World) -> T,
    ) -> Result<T, DeployError> {
        self.hop().await;
        if self.hostile(self.config.fault / 2.0) {
            self.stats().faults += 1;
            self.trace(format!("  fault before {op}"));
            return Err(DeployError {
                message: format!(
                    "{op}: ThrottlingException: Rate exceeded (simulated, retries exhausted)"
                ),
                retryable: true,
            });
        }
        let out = effect(&mut self.world());
        self.hop().await;
        if self.hostile(self.config.fault / 2.0) {
            self.stats().faults += 1;
            self.trace(format!("  fault after {op}"));
            return Err(DeployError {
                message: format!(
                    "{op}: operation timed out (simulated; the request may have been served)"
                ),
                retryable: true,
            });
        }
        Ok(out)
    }
}

/// The real in-memory store, each call taking a seeded while each way and failing past
/// the SDK's retries now and then (a commit also after it landed).
pub struct SimStore {
    pub inner: MemoryStore,
    pub sim: Arc<Sim>,
    /// For the gate invariant, checked at each commit.
    pub pipeline: Arc<Pipeline>,
}

impl SimStore {
    async fn before(&self, op: &str) -> Result<(), StoreError> {
        self.sim.hop().await;
        if self.sim.hostile(self.sim.config.fault / 2.0) {
            self.sim.stats().faults += 1;
            self.sim.trace(format!("  fault before DynamoDB {op}"));
            return Err(StoreError::Unavailable {
                message: format!(
                    "DynamoDB {op}: ProvisionedThroughputExceededException (simulated)"
                ),
            });
        }
        Ok(())
    }

    /// 8. gates: no stage starts (arrives, is dequeued or approved into deploying or
    ///    migrating) while an environment its gate watches (`hold_while_alarms_in`) has an
    ///    alarm recorded as firing: checked right after the commit that starts it, before
    ///    any other invocation runs. An operator's unblock, and a restore, are not held.
    async fn gates_held(&self, history: &[Transition]) {
        for t in history {
            let starts = matches!(t.cause, Cause::Arrived | Cause::Dequeued | Cause::Approved)
                && matches!(t.to, Some(StageState::Deploying | StageState::Migrating))
                && t.from != t.to;
            let Some(stage) = self
                .pipeline
                .services
                .get(&t.service)
                .and_then(|s| s.stage(&t.environment))
                .filter(|_| starts)
            else {
                continue;
            };
            for watched in &stage.hold_while_alarms_in {
                let Ok(gate) = self.inner.lane(&t.service, watched).await else {
                    continue;
                };
                let firing = gate.item.firing_alarms();
                if !firing.is_empty() {
                    self.sim.flag(
                        "gates",
                        format!(
                            "{}/{}: {:?} started ({}) while {} fired in {watched}",
                            t.service,
                            t.environment,
                            t.release,
                            t.cause,
                            firing.join(", ")
                        ),
                    );
                }
            }
        }
    }

    async fn after<T>(&self, op: &str, out: Result<T, StoreError>) -> Result<T, StoreError> {
        self.sim.hop().await;
        if out.is_ok() && self.sim.hostile(self.sim.config.fault / 2.0) {
            self.sim.stats().faults += 1;
            self.sim.trace(format!("  fault after DynamoDB {op}"));
            return Err(StoreError::Unavailable {
                message: format!("DynamoDB {op}: timed out (simulated; the write may have landed)"),
            });
        }
        out
    }
}

impl ReleaseStore for SimStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        self.before("TransactWriteItems").await?;
        let what: Vec<String> = commit
            .history
            .iter()
            .map(|t| format!("{:?}->{:?} {}", t.from, t.to, t.cause))
            .chain(
                commit
                    .deployments
                    .iter()
                    .map(|d| format!("ref {}", d.deployment_id)),
            )
            .collect();
        let history = commit.history.clone();
        let out = self.inner.commit(commit).await;
        if out.is_ok() {
            self.gates_held(&history).await;
        }
        match &out {
            Err(e) => self
                .sim
                .trace(format!("  commit refused: {e} [{}]", what.join(", "))),
            Ok(()) if std::env::var_os("SIM_COMMITS").is_some() => {
                self.sim.trace(format!("  committed [{}]", what.join(", ")))
            }
            Ok(()) => {}
        }
        self.after("TransactWriteItems", out).await
    }

    async fn release(&self, id: &ReleaseId) -> Result<Option<Versioned<Release>>, StoreError> {
        self.before("GetItem").await?;
        let out = self.inner.release(id).await;
        self.sim.hop().await;
        out
    }

    async fn lane(&self, service: &str, environment: &str) -> Result<Versioned<Lane>, StoreError> {
        self.before("GetItem").await?;
        let out = self.inner.lane(service, environment).await;
        self.sim.hop().await;
        out
    }

    async fn lanes(&self, service: &str) -> Result<Vec<Versioned<Lane>>, StoreError> {
        self.before("Query").await?;
        let out = self.inner.lanes(service).await;
        self.sim.hop().await;
        out
    }

    async fn releases_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Release>, StoreError> {
        self.before("Query").await?;
        let out = self.inner.releases_of_service(service, limit).await;
        self.sim.hop().await;
        out
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
        self.before("BatchGetItem").await?;
        let out = self.inner.read(reads, now).await;
        self.sim.hop().await;
        out
    }

    fn cached_pipeline(&self) -> Option<Arc<StoredPipeline>> {
        self.inner.cached_pipeline()
    }

    async fn settle_claim(&self, key: &str, tag: &str, now: Timestamp) -> Result<(), StoreError> {
        self.before("UpdateItem").await?;
        let out = self.inner.settle_claim(key, tag, now).await;
        self.after("UpdateItem", out).await
    }

    async fn claimed(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        self.before("GetItem").await?;
        let out = self.inner.claimed(key, now).await;
        self.sim.hop().await;
        out
    }

    async fn deployment(&self, deployment_id: &str) -> Result<Option<DeploymentRef>, StoreError> {
        self.before("GetItem").await?;
        let out = self.inner.deployment(deployment_id).await;
        self.sim.hop().await;
        out
    }

    async fn pipeline(&self) -> Result<Option<StoredPipeline>, StoreError> {
        self.before("GetItem").await?;
        let out = self.inner.pipeline().await;
        self.sim.hop().await;
        out
    }

    async fn put_pipeline(&self, pipeline: StoredPipeline) -> Result<(), StoreError> {
        self.inner.put_pipeline(pipeline).await
    }
}

/// ECS and CodeDeploy, as Shiplane's production adapter drives them: every operation
/// first looks for its own earlier effect, as `AwsDeployer` does.
pub struct SimDeployer {
    pub sim: Arc<Sim>,
}

fn lane_of(sim: &Sim, req: &DeployRequest<'_>) -> Result<LaneSpec, DeployError> {
    sim.world()
        .lane(&req.service.name, &req.stage.environment)
        .cloned()
        .ok_or_else(|| DeployError {
            message: format!(
                "no simulated lane {}/{}",
                req.service.name, req.stage.environment
            ),
            retryable: false,
        })
}

fn permanent(message: impl Into<String>) -> DeployError {
    DeployError {
        message: message.into(),
        retryable: false,
    }
}

impl SimDeployer {
    /// The family's revision pinned to the release: the latest one if it is already this
    /// release's in this environment, else a new one (as `AwsDeployer::ensure_revision`).
    async fn revision(&self, req: &DeployRequest<'_>, family: &str) -> Result<String, DeployError> {
        let (id, env) = (req.release.id.to_string(), req.stage.environment.clone());
        if !req.fresh {
            let ours = self
                .sim
                .call("ECS DescribeTaskDefinition", |w| {
                    w.latest(family)
                        .filter(|r| {
                            r.release.as_deref() == Some(&id)
                                && r.environment.as_deref() == Some(&env)
                        })
                        .map(|r| r.arn.clone())
                })
                .await?;
            if let Some(arn) = ours {
                return Ok(arn);
            }
            if let Some(arn) = self.earlier_revision(req, family).await? {
                return Ok(arn);
            }
        }
        let digest = req.release.digest.clone();
        let attempt = req.release.stages.get(&env).map_or(0, |s| s.attempt);
        let sim = self.sim.clone();
        self.sim
            .call("ECS RegisterTaskDefinition", |w| {
                let arn = w.register(family, &id, &env, attempt, &digest);
                sim.trace(format!("  registered {arn} for {id} in {env}"));
                arn
            })
            .await
    }

    /// As `AwsDeployer::earlier_revision`: after a takeover or for a restore, this release's revision
    /// among the family's newest ten (ListTaskDefinitions, then DescribeTaskDefinition of
    /// each until found, as one call here).
    async fn earlier_revision(
        &self,
        req: &DeployRequest<'_>,
        family: &str,
    ) -> Result<Option<String>, DeployError> {
        let resumed = req
            .release
            .stages
            .get(&req.stage.environment)
            .is_some_and(|s| s.resumed > 0 || s.redeploy);
        if !resumed && !matches!(req.stage.target, Target::Task { .. }) {
            return Ok(None);
        }
        let (id, env) = (req.release.id.to_string(), req.stage.environment.clone());
        self.sim
            .call("ECS ListTaskDefinitions", |w| {
                // ListTaskDefinitions lists ACTIVE revisions.
                w.revisions
                    .iter()
                    .rev()
                    .filter(|r| r.family == family && r.active)
                    .take(10)
                    .find(|r| {
                        r.release.as_deref() == Some(&id) && r.environment.as_deref() == Some(&env)
                    })
                    .map(|r| r.arn.clone())
            })
            .await
    }

    /// As `AwsDeployer::data_jobs`: each family's revision (one after another here), then
    /// the same [`settle`] over the world's triggers, deregistering through the world.
    async fn data_jobs(
        &self,
        req: &DeployRequest<'_>,
        families: &[String],
        cluster: Option<&str>,
    ) -> Result<DeployOutcome, DeployError> {
        let (mut registered, mut failed) = (Vec::new(), None);
        for family in families {
            match self.revision(req, family).await {
                Ok(arn) => registered.push(arn),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let deregister = |arn: String| async move {
            let sim = self.sim.clone();
            self.sim
                .call("ECS DeregisterTaskDefinition", move |w| {
                    if let Some(r) = w.revisions.iter_mut().find(|r| r.arn == arn) {
                        r.active = false;
                        sim.trace(format!("  withdrew {arn}"));
                        w.withdrawn.push(arn);
                    }
                })
                .await
        };
        let (id, env) = (req.release.id.to_string(), req.stage.environment.clone());
        let ours = |w: &World| -> Vec<String> {
            let of_release = |arn: &str| {
                w.revision(arn).is_some_and(|r| {
                    r.release.as_deref() == Some(id.as_str())
                        && r.environment.as_deref() == Some(env.as_str())
                })
            };
            w.triggers
                .iter()
                .filter(|t| of_release(&t.task_definition))
                .map(|t| t.id.to_string())
                .collect()
        };
        // Moved to this release's revisions before this run (an earlier run's, taken over).
        let before = ours(&self.sim.world());
        let key = format!("{id}@{env}");
        {
            let mut w = self.sim.world();
            let (runs, overlapped) = w.data_job_runs.entry(key.clone()).or_default();
            *runs += 1;
            *overlapped |= *runs > 1;
        }
        let triggers = SimTriggers { sim: &self.sim };
        let restore = req.release.stages[&req.stage.environment].redeploy;
        let settled = settle(&triggers, registered, failed, cluster, restore, deregister).await;
        // Another run of the same action at once (a duplicate, a taken-over lease) may
        // move triggers to these revisions meanwhile: the check is for a run alone.
        let alone = {
            let mut w = self.sim.world();
            let (runs, overlapped) = w.data_job_runs.entry(key).or_default();
            let alone = !*overlapped;
            *runs -= 1;
            if *runs == 0 {
                *overlapped = false;
            }
            alone
        };
        let (task_definitions, triggers) = match settled {
            Ok(done) => done,
            Err(e) => {
                // All or none: what this run moved is back, unless the error names a
                // trigger that could not be put back (a person is told which, and how).
                let stranded: Vec<String> = ours(&self.sim.world())
                    .into_iter()
                    .filter(|t| !before.contains(t))
                    .collect();
                if alone && !stranded.is_empty() && !e.message.contains("could NOT be put back") {
                    self.sim.flag(
                        "all or none",
                        format!(
                            "{} in {env} failed ({}) with {} still on its revisions",
                            req.release.id,
                            e.message,
                            stranded.join(", ")
                        ),
                    );
                }
                return Err(e);
            }
        };
        for line in triggers.lines() {
            self.sim.trace(format!("  {line}"));
        }
        Ok(DeployOutcome::Registered {
            task_definitions,
            triggers,
        })
    }

    async fn blue_green(
        &self,
        req: &DeployRequest<'_>,
        lane: &LaneSpec,
        td: String,
    ) -> Result<DeployOutcome, DeployError> {
        let Some((application, group)) = lane.group.clone() else {
            return Err(permanent("no deployment group"));
        };
        let description = deployment_description(req.release, &req.stage.environment);
        let sim = self.sim.clone();
        let hooks = lane.hooks.clone();
        let ecs = lane.ecs.clone();
        let task_definition = td.clone();
        if let Some(deployment_id) = self
            .earlier_deployment(req, &application, &group, &description)
            .await?
        {
            return Ok(DeployOutcome::Started {
                deployment_id,
                task_definition: td,
            });
        }
        let desc = description.clone();
        let now = self.sim.now();
        let created = self
            .sim
            .call("CodeDeploy CreateDeployment", move |w| {
                if let Some(active) = w.active_in(&application, &group) {
                    return Err((active.id.clone(), active.description.clone()));
                }
                let id = format!("d-{:08}", w.fresh_id());
                w.codedeploy.push(CdDeployment {
                    id: id.clone(),
                    application,
                    group,
                    description: desc,
                    created: now,
                    task_definition,
                    ecs,
                    status: CdStatus::Created,
                    reason: String::new(),
                    hooks,
                    executions: Vec::new(),
                    shifted: false,
                    rollback_of: None,
                });
                sim.trace(format!("  CodeDeploy created {id}"));
                tokio::spawn(codedeploy_lifecycle(sim.clone(), id.clone()));
                Ok(id)
            })
            .await?;
        Ok(match created {
            Ok(deployment_id) => DeployOutcome::Started {
                deployment_id,
                task_definition: td,
            },
            Err((active, theirs))
                if parse_deployment_description(&theirs)
                    == parse_deployment_description(&description) =>
            {
                DeployOutcome::Started {
                    deployment_id: active,
                    task_definition: td,
                }
            }
            Err((active, _)) => DeployOutcome::Blocked { by: active },
        })
    }

    /// As `AwsDeployer::earlier_deployment`: after a takeover, the deployment of this
    /// stage's try created since the stage began (ListDeployments, then
    /// BatchGetDeployments).
    async fn earlier_deployment(
        &self,
        req: &DeployRequest<'_>,
        application: &str,
        group: &str,
        description: &str,
    ) -> Result<Option<String>, DeployError> {
        let Some(stage) = req
            .release
            .stages
            .get(&req.stage.environment)
            .filter(|s| s.resumed > 0)
        else {
            return Ok(None);
        };
        let since = Timestamp(stage.since.0.saturating_sub(5_000));
        let ids: Vec<String> = self
            .sim
            .call("CodeDeploy ListDeployments", |w| {
                w.codedeploy
                    .iter()
                    .filter(|d| d.application == application && d.group == group)
                    .filter(|d| d.created >= since)
                    .map(|d| d.id.clone())
                    .collect()
            })
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        self.sim
            .call("CodeDeploy BatchGetDeployments", |w| {
                w.codedeploy
                    .iter()
                    .filter(|d| ids.contains(&d.id))
                    .find(|d| d.description == description)
                    .map(|d| d.id.clone())
            })
            .await
    }

    async fn rolling(
        &self,
        req: &DeployRequest<'_>,
        lane: &LaneSpec,
        td: String,
    ) -> Result<DeployOutcome, DeployError> {
        let sim = self.sim.clone();
        let ecs = lane.ecs.clone();
        let ended = &req.release.stages[&req.stage.environment].ended;
        let adopted = self
            .sim
            .call("ECS DescribeServices", |w| {
                let svc = w.services.get(&ecs)?;
                if stopped_from(svc).is_some() {
                    return None; // stopped for a migration: a new deployment brings it up
                }
                // The newest release deployment: a restart (another service's `restarts`)
                // changes no revision the service is updated to.
                let newest = svc.deployments.iter().rev().find(|d| !d.restart)?;
                (newest.task_definition == td && !ended.contains(&newest.id))
                    .then(|| newest.id.clone())
            })
            .await?;
        if let Some(deployment_id) = adopted {
            return Ok(DeployOutcome::Started {
                deployment_id,
                task_definition: td,
            });
        }
        let task_definition = td.clone();
        let created = self.sim.now();
        let key = ecs.clone();
        let deployment_id = self
            .sim
            .call("ECS UpdateService", move |w| {
                // Stopped for a migration: brought back up in the same call.
                let bring_up = w.services.get(&ecs).and_then(stopped_from).is_some();
                update_service(&sim, w, ecs, Some(task_definition), created, bring_up)
            })
            .await?;
        self.forget_stop(key).await;
        Ok(DeployOutcome::Started {
            deployment_id,
            task_definition: td,
        })
    }

    /// ECS UntagResource of the stop's tag, best effort as the adapter's.
    async fn forget_stop(&self, ecs: String) {
        let _ = self
            .sim
            .call("ECS UntagResource", move |w| {
                if let Some(svc) = w.services.get_mut(&ecs) {
                    svc.stopped_from = None;
                }
            })
            .await;
    }
}

/// The count a service at zero is brought back to (its tag), as the adapter reads it.
fn stopped_from(svc: &EcsService) -> Option<u32> {
    svc.at_zero.and(svc.stopped_from).filter(|n| *n > 0)
}

impl Deployer for SimDeployer {
    async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
        if !req.release.stages[&req.stage.environment].redeploy
            && self.sim.hostile(self.sim.config.second_thoughts)
        {
            self.sim.world().emit(Emitted::SecondThoughts {
                service: req.release.service.clone(),
                environment: req.stage.environment.clone(),
                release: req.release.id.clone(),
            });
        }
        if let Target::Task { families, cluster } = &req.stage.target {
            return self.data_jobs(&req, families, cluster.as_deref()).await;
        }
        let lane = lane_of(&self.sim, &req)?;
        let td = match pinned_revision(&req) {
            Some(pinned) => pinned.to_string(),
            None => self.revision(&req, &lane.family).await?,
        };
        if lane.blue_green {
            self.blue_green(&req, &lane, td).await
        } else {
            self.rolling(&req, &lane, td).await
        }
    }

    async fn run_migration(&self, req: DeployRequest<'_>) -> Result<MigrationRun, DeployError> {
        let lane = lane_of(&self.sim, &req)?;
        let Some(family) = lane.migration_family.clone() else {
            return Err(permanent("no migration"));
        };
        let by = started_by(req.release, &req.stage.environment);
        if !req.fresh {
            let earlier = self
                .sim
                .call("ECS ListTasks", |w| {
                    w.tasks.iter().find(|t| t.started_by == by).map(task_run)
                })
                .await?;
            if let Some(run) = earlier {
                return Ok(run);
            }
        }
        let td = self.revision(&req, &family).await?;
        let token = client_token(req.release, &req.stage.environment);
        let sim = self.sim.clone();
        let digest = req.release.digest.clone();
        let cluster = lane.ecs.split('/').next().unwrap_or_default().to_string();
        let (ecs, stop_first) = (lane.ecs.clone(), lane.stop_first);
        self.sim
            .call("ECS RunTask", move |w| {
                if let Some(t) = w.tasks.iter().find(|t| t.token == token) {
                    return task_run(t);
                }
                let arn = format!(
                    "arn:aws:ecs:eu-west-1:111122223333:task/{cluster}/{:032x}",
                    w.fresh_id()
                );
                let now = sim.now();
                let beside_running = w.services.get(&ecs).is_some_and(|s| s.runs_tasks(now));
                w.tasks.push(Task {
                    arn: arn.clone(),
                    token,
                    started_by: by,
                    cluster,
                    digest,
                    running: true,
                    exit: None,
                    exited: None,
                    stop_first,
                    beside_running,
                    ecs: ecs.clone(),
                });
                sim.trace(format!("  ECS migration task {arn} ({td})"));
                tokio::spawn(migration_task(sim.clone(), arn.clone()));
                MigrationRun::Running { task_arn: arn }
            })
            .await
    }

    async fn migration_status(
        &self,
        _req: DeployRequest<'_>,
        task_arn: &str,
    ) -> Result<MigrationRun, DeployError> {
        self.sim
            .call("ECS DescribeTasks", |w| {
                w.tasks
                    .iter()
                    .find(|t| t.arn == task_arn)
                    .map_or(MigrationRun::Missing, task_run)
            })
            .await
    }

    async fn deployment_status(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
    ) -> Result<DeploymentStatus, DeployError> {
        if matches!(req.stage.target, Target::Task { .. }) {
            return Ok(DeploymentStatus::Succeeded);
        }
        let lane = lane_of(&self.sim, &req)?;
        if lane.blue_green {
            return self
                .sim
                .call("CodeDeploy GetDeployment", |w| {
                    match w.codedeploy.iter().find(|d| d.id == deployment_id) {
                        None => DeploymentStatus::Unknown,
                        Some(d) => match d.status {
                            CdStatus::Succeeded => DeploymentStatus::Succeeded,
                            CdStatus::Failed | CdStatus::Stopped => DeploymentStatus::Failed(
                                format!("CodeDeploy deployment {deployment_id}: {}", d.reason),
                            ),
                            _ => DeploymentStatus::InProgress,
                        },
                    }
                })
                .await;
        }
        self.sim
            .call("ECS DescribeServices", |w| {
                let deployments = w.services.get(&lane.ecs).map(|s| &s.deployments);
                let found = deployments.and_then(|ds| ds.iter().find(|d| d.id == deployment_id));
                // The newest is PRIMARY; any other was replaced.
                let primary = deployments
                    .and_then(|ds| ds.last())
                    .is_some_and(|d| d.id == deployment_id);
                match found.map(|d| d.rollout) {
                    Some(Rollout::Failed) => DeploymentStatus::Failed(format!(
                        "ECS deployment {deployment_id} failed: tasks failed to start"
                    )),
                    None => DeploymentStatus::Replaced,
                    Some(_) if !primary => DeploymentStatus::Replaced,
                    Some(Rollout::Completed) => DeploymentStatus::Succeeded,
                    Some(Rollout::InProgress) => DeploymentStatus::InProgress,
                    Some(Rollout::Inactive) => DeploymentStatus::Replaced,
                }
            })
            .await
    }

    async fn stop_deployment(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
        rollback: bool,
    ) -> Result<(), DeployError> {
        let lane = lane_of(&self.sim, &req)?;
        if !lane.blue_green {
            // What the production adapter answers for a rolling service.
            return Err(permanent(format!(
                "ECS deployment {deployment_id} of a rolling service is not stopped by Shiplane"
            )));
        }
        let sim = self.sim.clone();
        self.sim
            .call("CodeDeploy StopDeployment", |w| {
                stop(&sim, w, deployment_id, rollback, "stopped by Shiplane");
            })
            .await
    }

    /// As `AwsDeployer::clean_up_revisions`, in one call (AWS's list, reads and
    /// deregistrations, any of which may fail part-way, are one effect here).
    async fn clean_up(
        &self,
        req: DeployRequest<'_>,
        keep: u32,
        protect: &[ReleaseId],
    ) -> shiplane::aws::CleanUp {
        let families: Vec<String> = match (&req.stage.target, lane_of(&self.sim, &req)) {
            (Target::Task { families, .. }, _) => families.clone(),
            (_, Ok(lane)) => std::iter::once(lane.family.clone())
                .chain(lane.migration_family.clone())
                .collect(),
            (_, Err(e)) => {
                return shiplane::aws::CleanUp {
                    deregistered: Vec::new(),
                    error: Some(e),
                };
            }
        };
        let env = req.stage.environment.clone();
        let protect: Vec<String> = protect.iter().map(ToString::to_string).collect();
        let sim = self.sim.clone();
        let done = self
            .sim
            .call("ECS DeregisterTaskDefinition", move |w| {
                let mut out = Vec::new();
                for family in families {
                    let mut kept = 0;
                    for r in w
                        .revisions
                        .iter_mut()
                        .rev()
                        .filter(|r| r.family == family && r.active)
                    {
                        let Some(release) = r
                            .release
                            .clone()
                            .filter(|_| r.environment.as_deref() == Some(env.as_str()))
                        else {
                            continue;
                        };
                        if kept < keep {
                            kept += 1;
                        } else if !protect.contains(&release) {
                            r.active = false;
                            out.push(r.arn.clone());
                        }
                    }
                }
                if !out.is_empty() {
                    sim.trace(format!("  deregistered {}", out.join(", ")));
                }
                out
            })
            .await;
        match done {
            Ok(deregistered) => shiplane::aws::CleanUp {
                deregistered,
                error: None,
            },
            Err(e) => shiplane::aws::CleanUp {
                deregistered: Vec::new(),
                error: Some(e),
            },
        }
    }

    async fn restart(
        &self,
        cluster: &str,
        service: &str,
        since: Timestamp,
    ) -> Result<String, DeployError> {
        let ecs = format!("{cluster}/{service}");
        let newer = self
            .sim
            .call("ECS DescribeServices", |w| {
                w.services.get(&ecs).and_then(|s| {
                    s.deployments
                        .iter()
                        .rev()
                        .find(|d| d.created >= since)
                        .map(|d| d.id.clone())
                })
            })
            .await?;
        if let Some(id) = newer {
            return Ok(id);
        }
        let (sim, created) = (self.sim.clone(), self.sim.now());
        self.sim
            .call("ECS UpdateService", move |w| {
                update_service(&sim, w, ecs, None, created, false)
            })
            .await
    }

    async fn stop_app(&self, req: DeployRequest<'_>) -> Result<AppStop, DeployError> {
        let ecs = lane_of(&self.sim, &req)?.ecs;
        let (key, sim) = (ecs.clone(), self.sim.clone());
        let stopped = self
            .sim
            .call("ECS DescribeServices", |w| {
                w.services
                    .get(&ecs)
                    .and_then(|s| s.at_zero.map(|_| s.stopped_from))
            })
            .await?;
        let desired = match stopped {
            Some(remembered) => remembered.unwrap_or(0),
            None => {
                let tagged = key.clone();
                self.sim
                    .call("ECS TagResource", move |w| {
                        if let Some(svc) = w.services.get_mut(&tagged) {
                            svc.stopped_from = Some(DESIRED);
                        }
                    })
                    .await?;
                let drained = self.sim.now().after(self.sim.ms(0, 90_000));
                let zeroed = key.clone();
                self.sim
                    .call("ECS UpdateService", move |w| {
                        if let Some(svc) = w.services.get_mut(&zeroed) {
                            svc.at_zero.get_or_insert(drained);
                            sim.trace(format!("  ECS {zeroed} scaled to 0"));
                        }
                    })
                    .await?;
                DESIRED
            }
        };
        let now = self.sim.now();
        let running = self
            .sim
            .call("ECS ListTasks", move |w| {
                w.services.get(&key).is_some_and(|s| s.runs_tasks(now))
            })
            .await
            .map_or(u32::MAX, u32::from);
        Ok(AppStop { desired, running })
    }

    async fn start_app(
        &self,
        req: DeployRequest<'_>,
        _desired: Option<u32>,
    ) -> Result<Option<String>, DeployError> {
        let ecs = lane_of(&self.sim, &req)?.ecs;
        // As the adapter: not while the release's migration runs, never after it completed.
        let by = started_by(req.release, &req.stage.environment);
        let task = self
            .sim
            .call("ECS ListTasks", |w| {
                w.tasks
                    .iter()
                    .find(|t| t.started_by == by)
                    .map(|t| (t.running, t.exit))
            })
            .await?;
        match task {
            Some((true, _)) => {
                return Err(DeployError {
                    message: "the migration task still runs".into(),
                    retryable: true,
                });
            }
            Some((false, Some(0))) => {
                return Err(permanent(
                    "the migration completed: the revision the service ran is not started again",
                ));
            }
            _ => {}
        }
        let (sim, created, key) = (self.sim.clone(), self.sim.now(), ecs.clone());
        let started = self
            .sim
            .call("ECS UpdateService", move |w| {
                let stopped = w.services.get(&ecs).and_then(stopped_from);
                stopped.map(|_| update_service(&sim, w, ecs, None, created, true))
            })
            .await?;
        // As the adapter: a service found running keeps its (stale) tag.
        if started.is_some() {
            self.forget_stop(key).await;
        }
        Ok(started)
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, DeployError> {
        self.sim
            .call("CodeDeploy GetDeployment", |w| origin_in(w, deployment_id))
            .await
    }

    async fn ecs_origin(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> Result<Option<Tagged>, DeployError> {
        let key = format!("{cluster}/{service}");
        let td = self
            .sim
            .call("ECS DescribeServices", |w| {
                w.services.get(&key).and_then(|s| {
                    s.deployments
                        .iter()
                        .find(|d| d.id == deployment_id)
                        .map(|d| (d.task_definition.clone(), d.created))
                })
            })
            .await?;
        let Some((td, created)) = td else {
            return Ok(None);
        };
        self.sim
            .call("ECS DescribeTaskDefinition", |w| {
                let r = w.revision(&td)?;
                Some(Tagged {
                    release: ReleaseId::parse(r.release.as_deref()?).ok()?,
                    environment: r.environment.clone()?,
                    task_definition: td.clone(),
                    created: Some(created),
                })
            })
            .await
    }
}

/// The data jobs' triggers in the world: listing them is one call, each update another,
/// each failing as any call does (before its effect, or after it with the answer lost).
struct SimTriggers<'a> {
    sim: &'a Arc<Sim>,
}

impl TriggerPort for SimTriggers<'_> {
    async fn ecs_triggers(&self) -> Result<Vec<Trigger>, DeployError> {
        self.sim
            .call("Scheduler ListSchedules", |w| w.triggers.clone())
            .await
    }

    async fn point(&self, trigger: &TriggerId, from: &str, to: &str) -> Result<(), DeployError> {
        let op = match trigger {
            TriggerId::Schedule { .. } => "Scheduler UpdateSchedule",
            TriggerId::RuleTarget { .. } => "EventBridge PutTargets",
        };
        let sim = self.sim.clone();
        self.sim
            .call(op, |w| {
                let Some(t) = w.triggers.iter_mut().find(|t| &t.id == trigger) else {
                    return Err(permanent(format!("{trigger} is gone")));
                };
                if t.task_definition == from {
                    t.task_definition = to.to_string();
                    sim.trace(format!("  {trigger} now names {to}"));
                } else if t.task_definition != to {
                    return Err(permanent(format!(
                        "{trigger} names {}, not {from}",
                        t.task_definition
                    )));
                }
                Ok(())
            })
            .await?
    }
}

fn task_run(t: &Task) -> MigrationRun {
    if t.running {
        return MigrationRun::Running {
            task_arn: t.arn.clone(),
        };
    }
    MigrationRun::Stopped(stopped(t))
}

fn stopped(t: &Task) -> TaskStopped {
    TaskStopped {
        task_arn: t.arn.clone(),
        started_by: Some(t.started_by.clone()),
        stopped_reason: "Essential container in task exited".into(),
        containers: vec![ContainerExit {
            name: "app".into(),
            exit_code: t.exit,
            reason: None,
        }],
    }
}

/// Ends a CodeDeploy deployment that is still active: traffic goes back to the original
/// revision, and the STOP event goes out.
fn stop(sim: &Arc<Sim>, w: &mut World, id: &str, rollback: bool, why: &str) {
    let now = sim.now();
    // DeploymentAlreadyCompleted counts as done.
    let Some(d) = w.active_mut(id) else {
        return;
    };
    d.status = CdStatus::Stopped;
    d.reason = why.to_string();
    let event = change(d, DeploymentState::Stop, now);
    sim.trace(format!("  CodeDeploy {id} stopped ({why})"));
    w.emit(Emitted::CodeDeploy(event));
    if rollback {
        roll_back(sim, w, id);
    }
}

/// CodeDeploy's automatic rollback (a stop with `autoRollbackEnabled`, or a failure: every
/// simulated group enables it): a deployment of its own, creator `codeDeployRollback`, that
/// routes production traffic back to what the service served before, through the same
/// lifecycle hooks, and keeps the group busy until it ends.
fn roll_back(sim: &Arc<Sim>, w: &mut World, original: &str) {
    let Some(d) = w.deployment_mut(original) else {
        return;
    };
    let (application, group, ecs, hooks) = (
        d.application.clone(),
        d.group.clone(),
        d.ecs.clone(),
        d.hooks.clone(),
    );
    let serving = w
        .services
        .get(&ecs)
        .map(|s| s.serving.clone())
        .unwrap_or_default();
    let id = format!("d-{:08}", w.fresh_id());
    w.codedeploy.push(CdDeployment {
        id: id.clone(),
        application,
        group,
        description: String::new(),
        created: sim.now(),
        task_definition: serving,
        ecs,
        status: CdStatus::Created,
        reason: String::new(),
        hooks,
        executions: Vec::new(),
        shifted: false,
        rollback_of: Some(original.to_string()),
    });
    sim.trace(format!(
        "  CodeDeploy created {id}, its rollback of {original}"
    ));
    tokio::spawn(codedeploy_lifecycle(sim.clone(), id));
}

fn change(d: &CdDeployment, state: DeploymentState, at: Timestamp) -> DeploymentStateChange {
    DeploymentStateChange {
        deployment_id: d.id.clone(),
        application: d.application.clone(),
        deployment_group: d.group.clone(),
        state,
        at,
    }
}

fn unserve_partial(w: &mut World, ecs: &str) {
    if let Some(svc) = w.services.get_mut(ecs)
        && let Some(partial) = svc.partial.take()
        && partial != svc.serving
    {
        svc.since.remove(&partial);
    }
}

fn serve(w: &mut World, ecs: &str, td: &str, now: Timestamp) {
    let svc = w.services.entry(ecs.to_string()).or_default();
    if svc.partial.as_deref() == Some(td) {
        svc.partial = None;
    }
    if svc.serving != td {
        let old = std::mem::replace(&mut svc.serving, td.to_string());
        svc.since.remove(&old);
        svc.since.entry(td.to_string()).or_insert(now);
    }
}

fn serve_partly(w: &mut World, ecs: &str, td: &str, now: Timestamp) {
    unserve_partial(w, ecs);
    let svc = w.services.entry(ecs.to_string()).or_default();
    svc.partial = Some(td.to_string());
    svc.since.entry(td.to_string()).or_insert(now);
}

/// A CodeDeploy blue/green deployment: install, the hooks (each invoking the deploy-hook
/// and waiting up to an hour for its answer), a canary of production traffic, then all of
/// it. Ends early when stopped.
async fn codedeploy_lifecycle(sim: Arc<Sim>, id: String) {
    tokio::time::sleep(sim.ms(2_000, 10_000)).await;
    let hooks = {
        let mut w = sim.world();
        let Some(d) = w.deployment_mut(&id) else {
            return;
        };
        if d.status != CdStatus::Created {
            return;
        }
        d.status = CdStatus::InProgress;
        d.hooks.clone()
    };
    for hook in hooks {
        let execution = {
            let mut w = sim.world();
            let n = w.fresh_id();
            let deadline = sim.now().after(Duration::from_secs(3600));
            let Some(d) = w.active_mut(&id) else {
                return;
            };
            let execution = format!("exec-{n}");
            d.executions.push(Execution {
                id: execution.clone(),
                hook,
                answer: None,
                deadline,
                completed: 0,
                dead_lettered: false,
            });
            w.emit(Emitted::Hook(HookInvocation {
                deployment_id: id.clone(),
                execution_id: execution.clone(),
                hook: Some(hook),
            }));
            execution
        };
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let now = sim.now();
            let mut w = sim.world();
            let Some(d) = w.active_mut(&id) else {
                return;
            };
            let Some(e) = d.executions.iter().find(|e| e.id == execution) else {
                return;
            };
            let failed = match e.answer {
                Some(HookStatus::Succeeded) => break,
                Some(HookStatus::Failed) => {
                    Some(format!("{} hook answered Failed", hook.appspec_name()))
                }
                None if now > e.deadline => Some(format!(
                    "{} hook not answered within an hour",
                    hook.appspec_name()
                )),
                None => None,
            };
            if let Some(why) = failed {
                d.status = CdStatus::Failed;
                d.reason = why.clone();
                let event = change(d, DeploymentState::Failure, now);
                let rolls_back = d.rollback_of.is_none();
                sim.trace(format!("  CodeDeploy {id} failed: {why}"));
                w.emit(Emitted::CodeDeploy(event));
                if rolls_back {
                    roll_back(&sim, &mut w, &id);
                }
                return;
            }
        }
    }
    {
        let now = sim.now();
        let mut w = sim.world();
        let Some(d) = w.active_mut(&id) else {
            return;
        };
        d.shifted = true;
        if d.rollback_of.is_some() {
            // All production traffic back to the original task set at once.
            succeed(&sim, &mut w, &id, now);
            return;
        }
        let (ecs, td) = (d.ecs.clone(), d.task_definition.clone());
        serve_partly(&mut w, &ecs, &td, now);
        sim.trace(format!(
            "  CodeDeploy {id} shifted 10% of production traffic"
        ));
    }
    let canary = sim.ms(60_000, 240_000);
    let until = tokio::time::Instant::now() + canary;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if sim.world().active_mut(&id).is_none() {
            return;
        }
    }
    let now = sim.now();
    succeed(&sim, &mut sim.world(), &id, now);
}

/// An active deployment succeeds: all production traffic moves to its task set (another's
/// left over, a rollback that failed, no longer takes any) and its event goes out.
fn succeed(sim: &Sim, w: &mut World, id: &str, now: Timestamp) {
    let Some(d) = w.active_mut(id) else {
        return;
    };
    d.status = CdStatus::Succeeded;
    let event = change(d, DeploymentState::Success, now);
    let (ecs, td) = (d.ecs.clone(), d.task_definition.clone());
    if w.services.get(&ecs).and_then(|s| s.partial.as_deref()) != Some(td.as_str()) {
        unserve_partial(w, &ecs);
    }
    serve(w, &ecs, &td, now);
    sim.trace(format!("  CodeDeploy {id} succeeded: {ecs} serves {td}"));
    w.emit(Emitted::CodeDeploy(event));
}

/// An ECS rolling deployment: new tasks take traffic as they come up; the circuit breaker
/// fails a release whose tasks crash and rolls the service back; a newer deployment
/// replaces one still in progress without an event.
/// UpdateService on a rolling service: a new deployment of `task_definition`, or with none
/// (a forced new deployment, a restart) of the revision the service names, its newest
/// deployment's unless the circuit breaker rolled that one back; any in progress is
/// replaced. Its rollout runs on its own.
fn update_service(
    sim: &Arc<Sim>,
    w: &mut World,
    ecs: String,
    task_definition: Option<String>,
    created: Timestamp,
    bring_up: bool,
) -> String {
    let id = format!("ecs-svc/{:012}", w.fresh_id());
    let svc = w.services.entry(ecs.clone()).or_default();
    if bring_up && svc.at_zero.take().is_some() {
        sim.trace(format!("  ECS {ecs} scaled back up"));
        // Tasks start while a stop-first migration of this service still runs: what the
        // stop was for is undone (the invariant "stopped first" reports it).
        let beside: Vec<String> = w
            .tasks
            .iter()
            .filter(|t| t.stop_first && t.running && t.ecs == ecs)
            .map(|t| t.arn.clone())
            .collect();
        w.started_beside.extend(beside);
    }
    let restart = task_definition.is_none();
    let task_definition = task_definition.unwrap_or_else(|| {
        svc.deployments
            .iter()
            .rev()
            .find(|d| d.rollout != Rollout::Failed)
            .map_or_else(|| svc.serving.clone(), |d| d.task_definition.clone())
    });
    for d in &mut svc.deployments {
        if d.rollout == Rollout::InProgress {
            d.rollout = Rollout::Inactive;
        }
    }
    svc.deployments.push(EcsDeployment {
        id: id.clone(),
        task_definition,
        rollout: Rollout::InProgress,
        created,
        restart,
    });
    let what = if restart {
        "restart"
    } else {
        "rolling deployment"
    };
    sim.trace(format!("  ECS {what} {id} of {ecs}"));
    tokio::spawn(ecs_rollout(sim.clone(), ecs, id.clone()));
    id
}

async fn ecs_rollout(sim: Arc<Sim>, ecs: String, id: String) {
    let td = {
        let now = sim.now();
        let mut w = sim.world();
        let Some(td) = w
            .services
            .get(&ecs)
            .and_then(|s| s.deployments.iter().find(|d| d.id == id))
            .map(|d| d.task_definition.clone())
        else {
            return;
        };
        serve_partly(&mut w, &ecs, &td, now);
        td
    };
    let steps = sim.between(3, 15);
    for _ in 0..steps {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let w = sim.world();
        let live = w
            .services
            .get(&ecs)
            .and_then(|s| s.deployments.iter().find(|d| d.id == id))
            .is_some_and(|d| d.rollout == Rollout::InProgress);
        if !live {
            return;
        }
    }
    let now = sim.now();
    let mut w = sim.world();
    let crashes = w.image_of(&td).is_some_and(|i| i.bad == Bad::Check);
    let Some(d) = w
        .services
        .get_mut(&ecs)
        .and_then(|s| s.deployments.iter_mut().find(|d| d.id == id))
    else {
        return;
    };
    if d.rollout != Rollout::InProgress {
        return;
    }
    let outcome = if crashes {
        d.rollout = Rollout::Failed;
        unserve_partial(&mut w, &ecs);
        sim.trace(format!(
            "  ECS {id} failed: the circuit breaker rolled {ecs} back"
        ));
        Err("ECS deployment circuit breaker: tasks failed to start (simulated)".to_string())
    } else {
        d.rollout = Rollout::Completed;
        serve(&mut w, &ecs, &td, now);
        sim.trace(format!("  ECS {id} completed: {ecs} serves {td}"));
        Ok(())
    };
    let service = ecs
        .split_once('/')
        .map(|(c, s)| (c.to_string(), s.to_string()));
    w.emit(Emitted::Ecs(ServiceDeploymentEnded {
        deployment_id: id,
        service,
        outcome,
        at: now,
    }));
}

/// A migration task: runs a while, exits 0 (or 1 for a bad migration), and its stop
/// event goes out.
async fn migration_task(sim: Arc<Sim>, arn: String) {
    tokio::time::sleep(sim.ms(20_000, 90_000)).await;
    let mut w = sim.world();
    let bad = {
        let Some(t) = w.tasks.iter().find(|t| t.arn == arn) else {
            return;
        };
        w.image(&t.digest).is_some_and(|i| i.bad == Bad::Migration)
    };
    let Some(t) = w.tasks.iter_mut().find(|t| t.arn == arn) else {
        return;
    };
    t.running = false;
    t.exit = Some(if bad { 1 } else { 0 });
    t.exited = Some(sim.now());
    let event = stopped(t);
    sim.trace(format!(
        "  migration task {arn} exited {}",
        if bad { 1 } else { 0 }
    ));
    w.emit(Emitted::TaskStopped(event));
}

/// CloudWatch: every lane's alarm fires while a bad release has served production
/// traffic (wholly or in part) for its delay, and returns to OK when none does.
pub async fn alarms_evaluate(sim: Arc<Sim>) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let now = sim.now();
        let mut w = sim.world();
        let lanes = w.lanes.clone();
        for lane in lanes {
            let Some(svc) = w.services.get(&lane.ecs) else {
                continue;
            };
            // A service stopped for a migration serves nothing: its 5xx alarm fires.
            let down = svc.at_zero.is_some_and(|drained| drained <= now);
            let firing = down
                || [Some(&svc.serving), svc.partial.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|td| {
                        let since = svc.since.get(td).copied().unwrap_or(now);
                        w.image_of(td).is_some_and(|i| {
                            matches!(i.bad, Bad::Alarm | Bad::LateAlarm)
                                && since.after(i.alarm_delay) <= now
                        })
                    });
            let state = if firing {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            };
            let seen = w.alarms.get(&lane.alarm).map(|(s, _)| *s);
            if seen != Some(state) {
                w.alarms.insert(lane.alarm.clone(), (state, now));
                sim.trace(format!("  alarm {} → {}", lane.alarm, state.as_str()));
                w.emit(Emitted::Alarm(AlarmChange {
                    alarm: lane.alarm.clone(),
                    state,
                    at: now,
                    reason: format!("simulated: {}", state.as_str()),
                }));
            }
        }
    }
}

/// EventBridge Scheduler: one-time schedules that invoke the promote function, then delete
/// themselves.
pub struct SimTimer {
    pub sim: Arc<Sim>,
}

async fn fire(sim: Arc<Sim>, name: String, at: Timestamp) {
    let wait = Duration::from_millis(at.0.saturating_sub(sim.now().0)) + sim.ms(0, 60_000);
    tokio::time::sleep(wait).await;
    let mut w = sim.world();
    let due = w.schedules.get(&name).filter(|(_, a)| *a == at).cloned();
    if let Some((timer, _)) = due {
        w.schedules.remove(&name);
        w.emit(Emitted::Timer(timer));
    }
}

impl Timer for SimTimer {
    async fn set(&self, timer: &BakeTimer, at: Timestamp) -> Result<bool, DeployError> {
        let sim = self.sim.clone();
        self.sim
            .call("Scheduler CreateSchedule", |w| {
                let name = timer.name();
                if w.schedules.contains_key(&name) {
                    return false;
                }
                w.schedules.insert(name.clone(), (timer.clone(), at));
                tokio::spawn(fire(sim.clone(), name, at));
                true
            })
            .await
    }

    async fn clear(&self, timer: &BakeTimer) -> Result<bool, DeployError> {
        self.sim
            .call("Scheduler DeleteSchedule", |w| {
                w.schedules.remove(&timer.name()).is_some()
            })
            .await
    }
}

/// SNS: takes every notification after a while (notifications never block a release).
pub struct SimNotifier {
    pub sim: Arc<Sim>,
}

impl Notifier for SimNotifier {
    async fn publish(&self, _n: &Notification) -> Result<(), NotifyError> {
        self.sim.hop().await;
        Ok(())
    }
}

/// CloudWatch's DescribeAlarms.
pub struct SimAlarms {
    pub sim: Arc<Sim>,
}

impl AlarmReader for SimAlarms {
    async fn current(
        &self,
        names: &[String],
        prefixes: &[String],
    ) -> Result<Vec<AlarmChange>, DeployError> {
        self.sim
            .call("CloudWatch DescribeAlarms", |w| {
                w.alarms
                    .iter()
                    .filter(|(n, _)| {
                        names.contains(n) || prefixes.iter().any(|p| n.starts_with(p.as_str()))
                    })
                    .map(|(n, (state, at))| AlarmChange {
                        alarm: n.clone(),
                        state: *state,
                        at: *at,
                        reason: "simulated".into(),
                    })
                    .collect()
            })
            .await
    }
}

/// CodeDeploy's side of a hook: PutLifecycleEventHookExecutionStatus and GetDeployment.
pub struct SimHooks {
    pub sim: Arc<Sim>,
}

impl HookReporter for SimHooks {
    async fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: HookStatus,
    ) -> Result<(), DeployError> {
        self.sim
            .call("CodeDeploy PutLifecycleEventHookExecutionStatus", |w| {
                if let Some(e) = w
                    .deployment_mut(deployment_id)
                    .and_then(|d| d.executions.iter_mut().find(|e| e.id == execution_id))
                    && e.answer.is_none()
                {
                    e.answer = Some(status);
                }
            })
            .await
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, DeployError> {
        self.sim
            .call("CodeDeploy GetDeployment", |w| origin_in(w, deployment_id))
            .await
    }
}

/// What the simulated GetDeployment tells of a deployment: CodeDeploy's rollback of
/// another (creator and `rollbackInfo`), or Shiplane's own, by its description and AppSpec.
fn origin_in(w: &World, deployment_id: &str) -> Option<Origin> {
    let d = w.codedeploy.iter().find(|d| d.id == deployment_id)?;
    if let Some(original) = &d.rollback_of {
        return Some(Origin::RollbackOf(original.clone()));
    }
    let (release, environment, attempt) = parse_deployment_description(&d.description)?;
    Some(Origin::Release {
        release,
        environment,
        attempt,
        task_definition: Some(d.task_definition.clone()),
        restore: is_restore_description(&d.description),
    })
}

/// The hook's checks: the new revision answers well unless its image is bad that way.
pub struct SimChecker {
    pub sim: Arc<Sim>,
}

impl Checker for SimChecker {
    async fn run(&self, _check: &Check, ctx: &CheckContext<'_>) -> CheckResult {
        let latency = self.sim.ms(50, 3_000);
        tokio::time::sleep(latency).await;
        let w = self.sim.world();
        let bad = w
            .codedeploy
            .iter()
            .find(|d| d.id == ctx.deployment_id)
            .and_then(|d| w.image_of(&d.task_definition))
            .is_some_and(|i| i.bad == Bad::Check);
        if bad {
            CheckResult::failed(latency, "HTTP 500 (simulated)")
        } else {
            CheckResult::passed(latency, "HTTP 200 (simulated)")
        }
    }
}

/// A digest for the n-th pushed image.
pub fn digest(n: u64) -> Digest {
    // Mixed (splitmix64, a bijection: still one digest per image), so that a later push's
    // digest is no more likely to sort after an earlier one's than in ECR.
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    Digest::parse(&format!("sha256:{z:064x}")).unwrap_or_else(|e| unreachable!("{e}"))
}

/// ECR's DescribeImages: each image's push time to the millisecond, as the image-push
/// function asks when two pushes share the event's second.
pub struct SimPushClock {
    pub sim: Arc<Sim>,
}

impl PushClock for SimPushClock {
    async fn pushed_at(
        &self,
        _registry: &str,
        _repository: &str,
        digests: &[Digest],
    ) -> Result<std::collections::BTreeMap<Digest, Timestamp>, DeployError> {
        self.sim
            .call("ECR DescribeImages", |w| {
                w.images
                    .iter()
                    .filter(|i| digests.contains(&i.digest))
                    .map(|i| (i.digest.clone(), i.pushed))
                    .collect()
            })
            .await
    }
}
