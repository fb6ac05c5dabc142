//! The pipeline file: which services Shiplane releases, through which environments, and how.
//!
//! [`Pipeline::from_toml`] parses and validates in one step and reports every problem it
//! finds with its path, so an operator fixes a file in one round trip.

mod diff;
mod duration;
mod locate;
mod problem;
mod raw;
mod tags;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

pub use diff::{Change, EnvironmentDiff, PipelineDiff, ServiceDiff, SettingChange};
pub use duration::parse_duration;
pub use problem::{ConfigError, Position, Problem};
pub use tags::TagPolicy;

/// A validated pipeline: environments in promotion order and the services released through them.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Environment names, in the order a release is promoted through them.
    pub environments: Vec<String>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Service name by ECR repository (each repository belongs to one service): every push
    /// looks its service up here.
    by_repository: HashMap<String, String>,
    /// Which lanes watch which alarm (by name and by prefix): every alarm event looks its
    /// lanes up here.
    watchers: AlarmWatchers,
}

/// The stages (service, environment) watching each alarm, built once per pipeline.
#[derive(Debug, Clone, Default)]
pub struct AlarmWatchers {
    by_name: HashMap<String, Vec<(String, String)>>,
    by_prefix: Vec<(String, String, String)>,
}

impl AlarmWatchers {
    pub(crate) fn of(services: &BTreeMap<String, Service>) -> AlarmWatchers {
        let mut w = AlarmWatchers::default();
        for service in services.values() {
            for stage in &service.stages {
                let lane = (service.name.clone(), stage.environment.clone());
                for name in &stage.alarms {
                    w.by_name
                        .entry(name.clone())
                        .or_default()
                        .push(lane.clone());
                }
                for prefix in &stage.alarm_prefixes {
                    w.by_prefix
                        .push((prefix.clone(), lane.0.clone(), lane.1.clone()));
                }
            }
        }
        w
    }
}

/// One released unit: an ECR repository whose pushes become releases.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// ECR repository name (without registry host).
    pub repository: String,
    pub kind: ServiceKind,
    pub tags: TagPolicy,
    /// The stages of this service, in promotion order (a subset of the pipeline's environments).
    pub stages: Vec<StageConfig>,
}

/// How a release reaches an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// CodeDeploy blue/green (all-at-once, canary or linear) with lifecycle-hook checks.
    BlueGreen,
    /// ECS rolling update of the service, with the deployment circuit breaker.
    Rolling,
    /// Data jobs: register task-definition revisions, run nothing.
    Task,
}

impl ServiceKind {
    /// The spelling used in the pipeline file.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::BlueGreen => "blue-green",
            ServiceKind::Rolling => "rolling",
            ServiceKind::Task => "task",
        }
    }
}

/// Whether a person must approve before a release enters an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    None,
    Manual,
}

/// The CodeDeploy targets of a blue-green stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeDeployTarget {
    pub application: String,
    pub deployment_group: String,
    /// e.g. `CodeDeployDefault.ECSCanary10Percent5Minutes`.
    pub deployment_config: String,
    /// What the deployment group itself must be set to, unless the file says otherwise.
    pub group: GroupExpectation,
}

/// The deployment group settings `shiplane doctor` and `config apply` hold a blue-green
/// stage's group to. By default the group rolls back on its own and removes the old (blue)
/// task set after a success; the file's `keep_blue = true` and `group_rollback = false` say
/// otherwise on purpose, and the check then only notes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupExpectation {
    /// Blue after a success: the group must terminate it unless this is `Keep`.
    pub blue: BlueAfterSuccess,
    /// The group's own auto-rollback: required unless this is `Off`.
    pub rollback: GroupRollback,
}

impl Default for GroupExpectation {
    fn default() -> Self {
        GroupExpectation {
            blue: BlueAfterSuccess::Terminate,
            rollback: GroupRollback::Required,
        }
    }
}

/// What happens to the old (blue) task set after a successful deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlueAfterSuccess {
    /// Terminated (the group's TERMINATE): the default expectation.
    Terminate,
    /// Kept (KEEP_ALIVE), as the file says with `keep_blue = true`.
    Keep,
}

/// Whether the deployment group's own auto-rollback must be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRollback {
    /// On failure and on a stop: the default expectation.
    Required,
    /// Off on purpose, as the file says with `group_rollback = false` (Shiplane's own
    /// deployments still carry their rollback).
    Off,
}

/// The ECS blue/green lifecycle hooks a check can run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LifecycleHook {
    BeforeInstall,
    AfterInstall,
    AfterAllowTestTraffic,
    BeforeAllowTraffic,
    AfterAllowTraffic,
}

impl LifecycleHook {
    /// Every hook, in the order CodeDeploy runs them.
    pub const ALL: [LifecycleHook; 5] = [
        LifecycleHook::BeforeInstall,
        LifecycleHook::AfterInstall,
        LifecycleHook::AfterAllowTestTraffic,
        LifecycleHook::BeforeAllowTraffic,
        LifecycleHook::AfterAllowTraffic,
    ];

    /// The spelling used in the pipeline file.
    pub fn config_name(self) -> &'static str {
        match self {
            LifecycleHook::BeforeInstall => "before_install",
            LifecycleHook::AfterInstall => "after_install",
            LifecycleHook::AfterAllowTestTraffic => "after_allow_test_traffic",
            LifecycleHook::BeforeAllowTraffic => "before_allow_traffic",
            LifecycleHook::AfterAllowTraffic => "after_allow_traffic",
        }
    }

    /// The name CodeDeploy uses in an AppSpec `Hooks` section and in hook invocations.
    pub fn appspec_name(self) -> &'static str {
        match self {
            LifecycleHook::BeforeInstall => "BeforeInstall",
            LifecycleHook::AfterInstall => "AfterInstall",
            LifecycleHook::AfterAllowTestTraffic => "AfterAllowTestTraffic",
            LifecycleHook::BeforeAllowTraffic => "BeforeAllowTraffic",
            LifecycleHook::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    /// The hook an AppSpec name (and the deploy-hook's alias) stands for.
    pub fn from_appspec_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.appspec_name() == name)
    }

    fn from_config_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.config_name() == name)
    }
}

/// A check a CodeDeploy lifecycle hook runs before the deployment may go on: the quality
/// gate of the new version.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub hook: LifecycleHook,
    pub probe: Probe,
    /// How long the check may take in all (every attempt); the hook's own deadline, less a
    /// margin to report, bounds it too.
    pub timeout: Duration,
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// A request to the new version through the test listener.
    Http(HttpProbe),
    /// None of the stage's alarms (nor those of the environments its gate watches) in ALARM.
    Alarms,
    /// The replacement task set runs as many tasks as desired and is steady.
    EcsSteady,
    /// The team's own smoke test: a Lambda function invoked synchronously must succeed.
    Lambda { function: String },
}

/// An HTTP request and what its answer must be.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub expect_status: u16,
    /// The body must contain this text.
    pub body_contains: Option<String>,
    /// The body is JSON and the value at this pointer (RFC 6901) equals `json_equals`.
    pub json_pointer: Option<(String, serde_json::Value)>,
    /// Each attempt's answer must come within this.
    pub latency_budget: Duration,
    /// Attempts after the first failed one, `interval` apart.
    pub retries: u32,
    pub interval: Duration,
}

/// A one-off task run with the new image before it is deployed (database migrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub family: String,
    pub command: Vec<String>,
    /// The container to run the command in; defaults to the service's container.
    pub container: Option<String>,
    /// Whether the old version keeps serving while the migration runs.
    pub mode: MigrationMode,
}

/// How a migration runs beside the version it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationMode {
    /// The old version serves while the migration runs (a backward-compatible change).
    #[default]
    Online,
    /// The service is scaled to zero and drained first, the migration runs with nothing
    /// serving, and the deployment brings the service back up on the new version: for a
    /// schema change the old version cannot run against. Rolling services only.
    StopFirst,
}

impl MigrationMode {
    /// As the pipeline file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationMode::Online => "online",
            MigrationMode::StopFirst => "stop-first",
        }
    }
}

/// What a stage deploys to, by service kind: exactly the settings that kind has, each
/// present (validation refuses a file that leaves one out).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A CodeDeploy blue/green deployment of an ECS service.
    BlueGreen {
        cluster: String,
        service: String,
        /// The container whose image a release replaces.
        container: String,
        /// The container port CodeDeploy routes traffic to.
        port: u16,
        codedeploy: CodeDeployTarget,
        /// Run in CodeDeploy lifecycle hooks.
        checks: Vec<Check>,
    },
    /// An ECS rolling update of a service, with the deployment circuit breaker.
    Rolling {
        cluster: String,
        service: String,
        container: String,
    },
    /// Data jobs: new revisions of these task-definition families, nothing runs; the
    /// EventBridge rule targets and Scheduler schedules pinned to a revision of one of them
    /// move to the new revision.
    Task {
        families: Vec<String>,
        /// Only triggers whose ECS target runs in this cluster move (the stage's `cluster`,
        /// or its environment's default); None: triggers in any cluster.
        cluster: Option<String>,
    },
}

impl Target {
    /// The ECS cluster and service, for the kinds that deploy one.
    pub fn ecs_service(&self) -> Option<(&str, &str)> {
        match self {
            Target::BlueGreen {
                cluster, service, ..
            }
            | Target::Rolling {
                cluster, service, ..
            } => Some((cluster, service)),
            Target::Task { .. } => None,
        }
    }

    /// The container whose image a release replaces, for the kinds that run a service.
    pub fn container(&self) -> Option<&str> {
        match self {
            Target::BlueGreen { container, .. } | Target::Rolling { container, .. } => {
                Some(container)
            }
            Target::Task { .. } => None,
        }
    }

    /// The lifecycle-hook checks (blue-green only).
    pub fn checks(&self) -> &[Check] {
        match self {
            Target::BlueGreen { checks, .. } => checks,
            _ => &[],
        }
    }
}

/// Everything Shiplane needs to release one service into one environment.
#[derive(Debug, Clone)]
pub struct StageConfig {
    pub environment: String,
    /// Where and how it deploys, by service kind.
    pub target: Target,
    /// CloudWatch alarm names watched while the release is in flight or baking.
    pub alarms: Vec<String>,
    /// Alarm name prefixes watched the same way.
    pub alarm_prefixes: Vec<String>,
    pub bake: Duration,
    /// How long after its bake a released version's alarms stay armed: an alarm in that
    /// window rolls it back to the release before it (zero: watching ends with the bake).
    pub watch: Duration,
    pub approval: Approval,
    /// Hold promotion into this environment while alarms fire in these environments.
    pub hold_while_alarms_in: Vec<String>,
    /// A frozen environment queues releases and deploys none until unfrozen.
    pub freeze: bool,
    /// Which releases may enter this environment, by their tags (the stage's `tags`; every
    /// tag when left out). A release the next environment does not accept ends its journey
    /// where it succeeded last.
    pub tags: TagPolicy,
    /// Run before the deployment (blue-green and rolling only), in the target's cluster.
    pub migration: Option<Migration>,
    /// Rolling services restarted here (a new ECS deployment of the revision they run)
    /// each time a release of this service succeeds here: a tile server that reads the
    /// schema this service's migration changed, on start only.
    pub restarts: Vec<String>,
    /// How many of the task-definition revisions Shiplane registered for this environment
    /// are kept after a success: older ones are deregistered (never those of the releases
    /// the environment runs, last knew good, or may roll back to).
    pub keep: u32,
}

impl StageConfig {
    /// The container a migration runs its command in and whose exit code decides it: the
    /// migration's own `container`, else the service's.
    pub fn migration_container(&self) -> Option<&str> {
        self.migration
            .as_ref()
            .and_then(|m| m.container.as_deref())
            .or(self.target.container())
    }

    /// Whether the stage's migration stops the service first (`mode = "stop-first"`).
    pub fn stops_first(&self) -> bool {
        self.migration
            .as_ref()
            .is_some_and(|m| m.mode == MigrationMode::StopFirst)
    }
}

/// [`StageConfig::keep`] when the file says nothing.
pub const DEFAULT_KEEP: u32 = 5;
/// The most revisions `keep` may ask for.
pub const MAX_KEEP: u32 = 100;

impl Pipeline {
    /// Parses and validates a pipeline file; on failure every problem is listed once, in
    /// file order, with its line and column.
    pub fn from_toml(source: &str) -> Result<Pipeline, ConfigError> {
        raw::parse(source)
            .and_then(|(raw, unknown)| validate::validate(raw, unknown))
            .map_err(|e| e.located(source))
    }

    /// [`Pipeline::from_toml`] and the warnings a person editing the file should read
    /// (a service whose route skips an environment others go through). Only the CLI asks:
    /// the functions load the stored file on every invocation and need no warnings.
    pub fn check(source: &str) -> Result<Checked, ConfigError> {
        let pipeline = Pipeline::from_toml(source)?;
        let warnings = ConfigError {
            problems: pipeline.skip_warnings(),
        }
        .located(source)
        .problems;
        Ok(Checked { pipeline, warnings })
    }

    /// The environments a service's releases go through, and those of the pipeline it
    /// has no stage in: `dev → prod (no staging)` says what a bare list would hide.
    pub fn route(&self, service: &Service) -> Route {
        Route {
            environments: service
                .stages
                .iter()
                .map(|s| s.environment.clone())
                .collect(),
            skipped: self
                .environments
                .iter()
                .filter(|e| service.stage(e).is_none())
                .cloned()
                .collect(),
        }
    }

    /// One warning per environment a service's route passes over (before its last stage)
    /// while other services stop there: its releases reach the later environments
    /// untested by that one, which may be meant but should never be a surprise.
    fn skip_warnings(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for service in self.services.values() {
            let Some(last) = service.stages.last() else {
                continue;
            };
            let route: Vec<&str> = service
                .stages
                .iter()
                .map(|s| s.environment.as_str())
                .collect();
            for env in self
                .environments
                .iter()
                .take_while(|e| **e != last.environment)
                .filter(|e| service.stage(e).is_none())
            {
                let others: Vec<&str> = self
                    .services
                    .values()
                    .filter(|s| s.stage(env).is_some())
                    .map(|s| s.name.as_str())
                    .collect();
                if others.is_empty() {
                    continue;
                }
                out.push(Problem {
                    path: format!("services.{}", service.name),
                    message: format!(
                        "{} skips {env}, which {} go{} through; add [services.{}.environments.{env}] if {} should stop there too",
                        route.join(" → "),
                        others.join(", "),
                        if others.len() == 1 { "es" } else { "" },
                        service.name,
                        service.name,
                    ),
                    at: None,
                });
            }
        }
        out
    }

    /// The (service, environment) lanes that watch an alarm, by name or prefix.
    pub fn lanes_watching(&self, alarm: &str) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .watchers
            .by_name
            .get(alarm)
            .into_iter()
            .flatten()
            .map(|(s, e)| (s.as_str(), e.as_str()))
            .chain(
                self.watchers
                    .by_prefix
                    .iter()
                    .filter(|(p, _, _)| alarm.starts_with(p.as_str()))
                    .map(|(_, s, e)| (s.as_str(), e.as_str())),
            )
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The service that tracks an ECR repository, if any.
    pub fn service_for_repository(&self, repository: &str) -> Option<&Service> {
        self.services.get(self.by_repository.get(repository)?)
    }
}

impl Service {
    /// This service's stage in an environment, if it is released there.
    pub fn stage(&self, environment: &str) -> Option<&StageConfig> {
        self.stages.iter().find(|s| s.environment == environment)
    }

    /// The environment after `environment` in this service's promotion order.
    pub fn next_environment(&self, environment: &str) -> Option<&str> {
        let at = self
            .stages
            .iter()
            .position(|s| s.environment == environment)?;
        self.stages.get(at + 1).map(|s| s.environment.as_str())
    }
}

/// A validated pipeline and what its author should still read.
#[derive(Debug, Clone)]
pub struct Checked {
    pub pipeline: Pipeline,
    /// Not errors: the file is valid. In file order, each with its place.
    pub warnings: Vec<Problem>,
}

/// A service's way through the pipeline (see [`Pipeline::route`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Its stages' environments, in promotion order.
    pub environments: Vec<String>,
    /// The pipeline's environments it has no stage in.
    pub skipped: Vec<String>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.environments.join(" → "))?;
        if !self.skipped.is_empty() {
            write!(f, " (no {})", self.skipped.join(", "))?;
        }
        Ok(())
    }
}

/// A valid pipeline of `services` blue-green services through dev, staging and prod: the
/// shape the benchmarks and the size limits are measured with (570 bytes a service).
pub fn example_pipeline(services: usize) -> String {
    let mut s = String::from(
        "[pipeline]\nenvironments = [\"dev\", \"staging\", \"prod\"]\n\n[defaults.prod]\napproval = \"manual\"\nbake = \"1h\"\n",
    );
    for i in 0..services {
        s.push_str(&format!(
            r#"
[services.svc-{i}]
repository = "team/svc-{i}"
kind = "blue-green"
container = "app"
port = 8080
tags = {{ semver = ">=1.0.0" }}
[services.svc-{i}.environments.dev]
cluster = "dev"
service = "svc-{i}-dev"
codedeploy = {{ application = "svc-{i}", deployment_group = "svc-{i}-dev" }}
alarms = ["svc-{i}-dev-5xx"]
bake = "10m"
[services.svc-{i}.environments.prod]
cluster = "prod"
service = "svc-{i}-prod"
codedeploy = {{ application = "svc-{i}", deployment_group = "svc-{i}-prod" }}
hold_while_alarms_in = ["dev"]
"#
        ));
    }
    s
}

#[cfg(test)]
mod tests;
