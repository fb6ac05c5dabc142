//! In-memory fakes of the AWS ports, for tests of the engine and handlers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    DeployError, DeployOutcome, DeployRequest, Deployer, DeploymentStatus, MigrationRun,
    Notification, Notifier, NotifyError, Origin,
};

/// What a [`FakeDeployer`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Deploy {
        release: String,
        environment: String,
    },
    RunMigration {
        release: String,
        environment: String,
    },
    Stop {
        deployment_id: String,
        rollback: bool,
    },
    Restart {
        cluster: String,
        service: String,
    },
    CleanUp {
        release: String,
        environment: String,
        keep: u32,
    },
    StopApp {
        release: String,
        environment: String,
    },
    StartApp {
        release: String,
        environment: String,
    },
}

/// Records calls and answers from a script; deploys start `d-<n>` by default, migrations
/// start `arn:aws:ecs:task/<n>` once per release and environment (as RunTask's client
/// token makes them), and deployments and tasks are in progress until told otherwise.
#[derive(Default)]
pub struct FakeDeployer {
    pub calls: Mutex<Vec<Call>>,
    /// Answers for the next `deploy` calls, in order; empty means "started".
    pub deploy_answers: Mutex<Vec<Result<DeployOutcome, DeployError>>>,
    pub migration_answers: Mutex<Vec<Result<MigrationRun, DeployError>>>,
    /// What `deployment_status` and `migration_status` answer, by deployment id or task ARN.
    pub statuses: Mutex<HashMap<String, DeploymentStatus>>,
    pub tasks: Mutex<HashMap<String, MigrationRun>>,
    /// CodeDeploy's automatic rollback deployments: rollback id → the deployment it rolls back.
    pub rollbacks: Mutex<HashMap<String, String>>,
    /// Deployments Shiplane made but never recorded, by id: what GetDeployment's
    /// description and AppSpec tell of them.
    pub unrecorded: Mutex<HashMap<String, Origin>>,
    /// ECS service deployments Shiplane made but never recorded, by id: their revision's tags.
    pub unrecorded_ecs: Mutex<HashMap<String, super::Tagged>>,
    /// Migrations already started, by `<release>@<environment>`: the client token.
    started: Mutex<HashMap<String, String>>,
    /// `<release>@<environment>` of every deploy or migration asked as fresh
    /// ([`DeployRequest::fresh`]).
    pub fresh: Mutex<Vec<String>>,
    /// How many of the next `deployment_status` calls fail (throttled past retries).
    pub status_failures: Mutex<u32>,
    /// How many of the next `stop_deployment` calls fail (throttled past retries).
    pub stop_failures: Mutex<u32>,
    /// How many of the next `origin` and `ecs_origin` calls fail (throttled past retries).
    pub origin_failures: Mutex<u32>,
    /// Answers for the next `restart` calls, in order; empty means a new deployment.
    pub restart_answers: Mutex<Vec<Result<String, DeployError>>>,
    /// Answers for the next `stop_app` calls, in order; empty means "stopped from 2
    /// tasks, none still running".
    pub stop_answers: Mutex<Vec<Result<super::AppStop, DeployError>>>,
    /// Answers for the next `start_app` calls, in order; empty means "started".
    pub start_answers: Mutex<Vec<Result<Option<String>, DeployError>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `op` throttled past the SDK's retries while `left` counts down to zero.
fn throttled(left: &Mutex<u32>, op: &str) -> Result<(), DeployError> {
    let mut left = lock(left);
    if *left == 0 {
        return Ok(());
    }
    *left -= 1;
    Err(DeployError {
        message: format!("{op}: ThrottlingException: Rate exceeded"),
        retryable: true,
    })
}

impl FakeDeployer {
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// `<release>@<environment>` of every deploy asked for, in order.
    pub fn deploys(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Deploy {
                    release,
                    environment,
                } => Some(format!("{release}@{environment}")),
                _ => None,
            })
            .collect()
    }

    /// What [`FakeDeployer::fresh`] holds.
    pub fn fresh(&self) -> Vec<String> {
        lock(&self.fresh).clone()
    }

    fn record(&self, req: &DeployRequest<'_>, call: Call) -> usize {
        if req.fresh {
            lock(&self.fresh).push(format!("{}@{}", req.release.id, req.stage.environment));
        }
        let mut calls = lock(&self.calls);
        calls.push(call);
        calls.len()
    }

    /// Scripts where a deployment is, as the reconciler will ask.
    pub fn set_status(&self, deployment_id: &str, status: DeploymentStatus) {
        lock(&self.statuses).insert(deployment_id.to_string(), status);
    }

    /// Scripts where a migration task is.
    pub fn set_task(&self, task_arn: &str, run: MigrationRun) {
        lock(&self.tasks).insert(task_arn.to_string(), run);
    }
}

impl Deployer for FakeDeployer {
    async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
        let n = self.record(
            &req,
            Call::Deploy {
                release: req.release.id.to_string(),
                environment: req.stage.environment.clone(),
            },
        );
        let scripted = {
            let mut answers = lock(&self.deploy_answers);
            (!answers.is_empty()).then(|| answers.remove(0))
        };
        scripted.unwrap_or_else(|| {
            Ok(DeployOutcome::Started {
                deployment_id: format!("d-{n}"),
                task_definition: format!("td:{n}"),
            })
        })
    }

    async fn run_migration(&self, req: DeployRequest<'_>) -> Result<MigrationRun, DeployError> {
        let n = self.record(
            &req,
            Call::RunMigration {
                release: req.release.id.to_string(),
                environment: req.stage.environment.clone(),
            },
        );
        let scripted = {
            let mut answers = lock(&self.migration_answers);
            (!answers.is_empty()).then(|| answers.remove(0))
        };
        if let Some(answer) = scripted {
            return answer;
        }
        let attempt = req
            .release
            .stages
            .get(&req.stage.environment)
            .map_or(0, |s| s.attempt);
        let key = format!("{}@{}#{attempt}", req.release.id, req.stage.environment);
        let arn = lock(&self.started)
            .entry(key)
            .or_insert_with(|| format!("arn:aws:ecs:task/{n}"))
            .clone();
        Ok(lock(&self.tasks)
            .get(&arn)
            .cloned()
            .unwrap_or(MigrationRun::Running { task_arn: arn }))
    }

    async fn migration_status(
        &self,
        _req: DeployRequest<'_>,
        task_arn: &str,
    ) -> Result<MigrationRun, DeployError> {
        Ok(lock(&self.tasks)
            .get(task_arn)
            .cloned()
            .unwrap_or(MigrationRun::Running {
                task_arn: task_arn.to_string(),
            }))
    }

    async fn deployment_status(
        &self,
        _req: DeployRequest<'_>,
        deployment_id: &str,
    ) -> Result<DeploymentStatus, DeployError> {
        throttled(&self.status_failures, "CodeDeploy GetDeployment")?;
        Ok(lock(&self.statuses)
            .get(deployment_id)
            .cloned()
            .unwrap_or(DeploymentStatus::InProgress))
    }

    async fn stop_deployment(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
        rollback: bool,
    ) -> Result<(), DeployError> {
        self.record(
            &req,
            Call::Stop {
                deployment_id: deployment_id.to_string(),
                rollback,
            },
        );
        throttled(&self.stop_failures, "CodeDeploy StopDeployment")
    }

    async fn restart(
        &self,
        cluster: &str,
        service: &str,
        _since: crate::release::Timestamp,
    ) -> Result<String, DeployError> {
        let n = {
            let mut calls = lock(&self.calls);
            calls.push(Call::Restart {
                cluster: cluster.to_string(),
                service: service.to_string(),
            });
            calls.len()
        };
        let mut answers = lock(&self.restart_answers);
        if answers.is_empty() {
            Ok(format!("ecs-svc/{n}"))
        } else {
            answers.remove(0)
        }
    }

    async fn stop_app(&self, req: DeployRequest<'_>) -> Result<super::AppStop, DeployError> {
        self.record(
            &req,
            Call::StopApp {
                release: req.release.id.to_string(),
                environment: req.stage.environment.clone(),
            },
        );
        let mut answers = lock(&self.stop_answers);
        if answers.is_empty() {
            Ok(super::AppStop {
                desired: 2,
                running: 0,
            })
        } else {
            answers.remove(0)
        }
    }

    async fn start_app(
        &self,
        req: DeployRequest<'_>,
        _desired: Option<u32>,
    ) -> Result<Option<String>, DeployError> {
        let n = self.record(
            &req,
            Call::StartApp {
                release: req.release.id.to_string(),
                environment: req.stage.environment.clone(),
            },
        );
        let mut answers = lock(&self.start_answers);
        if answers.is_empty() {
            Ok(Some(format!("ecs-svc/{n}")))
        } else {
            answers.remove(0)
        }
    }

    async fn clean_up(
        &self,
        req: DeployRequest<'_>,
        keep: u32,
        _protect: &[crate::release::ReleaseId],
    ) -> super::CleanUp {
        self.record(
            &req,
            Call::CleanUp {
                release: req.release.id.to_string(),
                environment: req.stage.environment.clone(),
                keep,
            },
        );
        super::CleanUp::default()
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, DeployError> {
        throttled(&self.origin_failures, "CodeDeploy GetDeployment")?;
        if let Some(original) = lock(&self.rollbacks).get(deployment_id) {
            return Ok(Some(Origin::RollbackOf(original.clone())));
        }
        Ok(lock(&self.unrecorded).get(deployment_id).cloned())
    }

    async fn ecs_origin(
        &self,
        _cluster: &str,
        _service: &str,
        deployment_id: &str,
    ) -> Result<Option<super::Tagged>, DeployError> {
        throttled(&self.origin_failures, "ECS DescribeServices")?;
        Ok(lock(&self.unrecorded_ecs).get(deployment_id).cloned())
    }
}

/// Keeps every notification; can be told to fail every publish, or to never answer (a
/// topic whose endpoint accepts connections and goes silent).
#[derive(Default)]
pub struct RecordingNotifier {
    pub sent: Mutex<Vec<Notification>>,
    pub fail: bool,
    pub hang: bool,
}

impl RecordingNotifier {
    pub fn kinds(&self) -> Vec<String> {
        lock(&self.sent)
            .iter()
            .map(|n| n.kind.as_str().to_string())
            .collect()
    }
}

impl Notifier for RecordingNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), NotifyError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        if self.fail {
            return Err(NotifyError {
                message: "SNS Publish: InternalError: the topic is down".into(),
                retryable: true,
            });
        }
        lock(&self.sent).push(n.clone());
        Ok(())
    }
}

/// A CodeDeploy that records hook reports (a second report of a completed execution is
/// accepted and not recorded, as AWS's LifecycleEventAlreadyCompleted counts as done), can
/// be told to throttle the next reports, and describes deployments from a script.
#[derive(Default)]
pub struct FakeHooks {
    pub reports: Mutex<Vec<(String, String, super::HookStatus)>>,
    pub attempts: Mutex<u32>,
    pub throttle_next: Mutex<u32>,
    /// What GetDeployment tells of a deployment, by id.
    pub origins: Mutex<HashMap<String, Origin>>,
    /// How many of the next GetDeployment calls are throttled (past the SDK's retries).
    pub origin_failures: Mutex<u32>,
}

impl FakeHooks {
    pub fn reports(&self) -> Vec<(String, String, super::HookStatus)> {
        lock(&self.reports).clone()
    }
}

impl super::HookReporter for FakeHooks {
    async fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: super::HookStatus,
    ) -> Result<(), DeployError> {
        *lock(&self.attempts) += 1;
        throttled(
            &self.throttle_next,
            "CodeDeploy PutLifecycleEventHookExecutionStatus",
        )?;
        let mut reports = lock(&self.reports);
        if !reports.iter().any(|(_, e, _)| e == execution_id) {
            reports.push((deployment_id.to_string(), execution_id.to_string(), status));
        }
        Ok(())
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, DeployError> {
        throttled(&self.origin_failures, "CodeDeploy GetDeployment")?;
        Ok(lock(&self.origins).get(deployment_id).cloned())
    }
}

/// Bake timers as Scheduler keeps them: set ones by name with when they fire, and every
/// set and clear in order; can be told to fail the next calls.
#[derive(Default)]
pub struct FakeTimer {
    /// Timers set and not cleared: name → (payload, fire time).
    pub set: Mutex<HashMap<String, (crate::facts::BakeTimer, crate::release::Timestamp)>>,
    /// "set <name>" / "clear <name>", in call order (a set of a name already set is not
    /// recorded, as Scheduler's ConflictException counts as set).
    pub log: Mutex<Vec<String>>,
    pub fail_next: Mutex<u32>,
}

impl FakeTimer {
    pub fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// The timers set and not cleared, by name.
    pub fn pending(&self) -> Vec<(String, crate::facts::BakeTimer, crate::release::Timestamp)> {
        let mut out: Vec<_> = lock(&self.set)
            .iter()
            .map(|(n, (t, at))| (n.clone(), t.clone(), *at))
            .collect();
        out.sort_by_key(|(n, _, _)| n.clone());
        out
    }

    fn failing(&self, op: &str) -> Result<(), DeployError> {
        let mut fail = lock(&self.fail_next);
        if *fail > 0 {
            *fail -= 1;
            return Err(DeployError {
                message: format!("Scheduler {op}: AccessDeniedException: not authorized"),
                retryable: false,
            });
        }
        Ok(())
    }
}

impl super::Timer for FakeTimer {
    async fn set(
        &self,
        timer: &crate::facts::BakeTimer,
        at: crate::release::Timestamp,
    ) -> Result<bool, DeployError> {
        self.failing("CreateSchedule")?;
        let name = timer.name();
        let mut set = lock(&self.set);
        if set.contains_key(&name) {
            return Ok(false);
        }
        set.insert(name.clone(), (timer.clone(), at));
        lock(&self.log).push(format!("set {name}"));
        Ok(true)
    }

    async fn clear(&self, timer: &crate::facts::BakeTimer) -> Result<bool, DeployError> {
        self.failing("DeleteSchedule")?;
        let name = timer.name();
        if lock(&self.set).remove(&name).is_none() {
            return Ok(false);
        }
        lock(&self.log).push(format!("clear {name}"));
        Ok(true)
    }
}

/// CloudWatch as a script: the current state of each alarm, and every question asked (the
/// names, then the prefixes); can be told to be unreachable.
#[derive(Default)]
pub struct FakeAlarms {
    pub states: Mutex<Vec<crate::facts::AlarmChange>>,
    pub asked: Mutex<Vec<(Vec<String>, Vec<String>)>>,
    pub unreachable: Mutex<bool>,
}

impl FakeAlarms {
    /// Sets the alarms' current states.
    pub fn set(&self, states: Vec<crate::facts::AlarmChange>) {
        *lock(&self.states) = states;
    }

    /// Every question asked so far.
    pub fn asked(&self) -> Vec<(Vec<String>, Vec<String>)> {
        lock(&self.asked).clone()
    }
}

impl super::AlarmReader for FakeAlarms {
    async fn current(
        &self,
        names: &[String],
        prefixes: &[String],
    ) -> Result<Vec<crate::facts::AlarmChange>, DeployError> {
        lock(&self.asked).push((names.to_vec(), prefixes.to_vec()));
        if *lock(&self.unreachable) {
            return Err(DeployError {
                message: "CloudWatch DescribeAlarms: dispatch failure: connection refused".into(),
                retryable: true,
            });
        }
        Ok(lock(&self.states)
            .iter()
            .filter(|c| names.contains(&c.alarm) || prefixes.iter().any(|p| c.alarm.starts_with(p)))
            .cloned()
            .collect())
    }
}
