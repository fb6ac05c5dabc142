//! Turns the raw file into a [`Pipeline`], collecting every problem with its path.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::raw::{RawCheck, RawFile, RawService, RawStage};
use super::{
    AlarmWatchers, Approval, Check, CodeDeployTarget, ConfigError, HttpProbe, LifecycleHook,
    Migration, Pipeline, Probe, Problem, Service, ServiceKind, StageConfig, TagPolicy, Target,
    parse_duration,
};

/// Every key the file format knows, for "did you mean" hints on unknown ones.
const KNOWN_KEYS: &[&str] = &[
    "pipeline",
    "environments",
    "defaults",
    "services",
    "repository",
    "kind",
    "container",
    "port",
    "tags",
    "regex",
    "semver",
    "prereleases",
    "cluster",
    "service",
    "codedeploy",
    "application",
    "deployment_group",
    "deployment_config",
    "checks",
    "name",
    "hook",
    "http",
    "expect_status",
    "timeout",
    "ecs_steady",
    "lambda",
    "method",
    "headers",
    "body_contains",
    "json_pointer",
    "json_equals",
    "latency",
    "retries",
    "interval",
    "alarms",
    "alarm_prefixes",
    "bake",
    "approval",
    "hold_while_alarms_in",
    "freeze",
    "migration",
    "family",
    "command",
    "task_families",
    "restart_on_release",
];

const DEFAULT_DEPLOYMENT_CONFIG: &str = "CodeDeployDefault.ECSAllAtOnce";
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_LAMBDA_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
            at: None,
        });
    }
}

// Compiled once per process: validation runs on every invocation that loads the pipeline.
// Patterns are literals in this file and covered by tests; an invalid one is a bug here.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z][a-z0-9-]{0,62}$").unwrap_or_else(|e| panic!("built-in pattern: {e}"))
});
static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
        .unwrap_or_else(|e| panic!("built-in pattern: {e}"))
});

fn name_ok(name: &str) -> bool {
    NAME.is_match(name)
}

/// ECR repository names: lowercase path components separated by `/`.
fn repository_ok(name: &str) -> bool {
    name.len() <= 256 && REPOSITORY.is_match(name)
}

pub(super) fn validate(raw: RawFile, unknown: Vec<String>) -> Result<Pipeline, ConfigError> {
    let mut p = Problems::default();
    for path in unknown {
        // serde_ignored writes `?` for each Option it passes through; the file has no such key.
        let path = path
            .split('.')
            .filter(|segment| *segment != "?")
            .collect::<Vec<_>>()
            .join(".");
        let key = path.rsplit('.').next().unwrap_or(&path);
        let hint = KNOWN_KEYS
            .iter()
            .map(|k| (strsim::levenshtein(k, key), k))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, k)| format!("; did you mean \"{k}\"?"))
            .unwrap_or_else(|| "; remove it or check the spelling".to_string());
        p.add(path.clone(), format!("unknown key \"{key}\"{hint}"));
    }

    let environments = pipeline_environments(&raw, &mut p);
    let known_envs: BTreeSet<&str> = environments.iter().map(String::as_str).collect();

    for env in raw.defaults.keys() {
        if !known_envs.contains(env.as_str()) {
            p.add(
                format!("defaults.{env}"),
                format!(
                    "environment \"{env}\" is not in pipeline.environments; add it there or remove these defaults"
                ),
            );
        }
    }

    if raw.services.is_empty() {
        p.add(
            "services",
            "no services; add at least one [services.<name>] table",
        );
    }
    let mut repositories: BTreeMap<String, String> = BTreeMap::new();
    let mut services = BTreeMap::new();
    for (name, service) in &raw.services {
        let path = format!("services.{name}");
        if !name_ok(name) {
            p.add(
                &path,
                format!(
                    "service name \"{name}\" must be lowercase letters, digits and dashes, starting with a letter"
                ),
            );
        }
        if let Some(repo) = &service.repository {
            if let Some(first) = repositories.get(repo) {
                p.add(
                    format!("{path}.repository"),
                    format!(
                        "repository \"{repo}\" is already tracked by services.{first}; each repository belongs to one service"
                    ),
                );
            } else {
                repositories.insert(repo.clone(), name.clone());
            }
        }
        if let Some(s) = service_config(name, service, &raw, &environments, &mut p) {
            services.insert(name.clone(), s);
        }
    }

    if p.0.is_empty() {
        let by_repository = services
            .values()
            .map(|s| (s.repository.clone(), s.name.clone()))
            .collect();
        let watchers = AlarmWatchers::of(&services);
        Ok(Pipeline {
            environments,
            services,
            by_repository,
            watchers,
        })
    } else {
        Err(ConfigError { problems: p.0 })
    }
}

fn pipeline_environments(raw: &RawFile, p: &mut Problems) -> Vec<String> {
    let Some(envs) = raw.pipeline.as_ref().and_then(|p| p.environments.as_ref()) else {
        p.add(
            "pipeline.environments",
            "missing; list the environments in promotion order, e.g. [\"dev\", \"staging\", \"prod\"]",
        );
        return Vec::new();
    };
    if envs.is_empty() {
        p.add(
            "pipeline.environments",
            "empty; list at least one environment",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, env) in envs.iter().enumerate() {
        if !name_ok(env) {
            p.add(
                format!("pipeline.environments.{i}"),
                format!(
                    "\"{env}\" is not an environment name; use lowercase letters, digits and dashes"
                ),
            );
        }
        if !seen.insert(env) {
            p.add(
                format!("pipeline.environments.{i}"),
                format!("\"{env}\" is listed twice; each environment appears once"),
            );
        }
    }
    envs.clone()
}

fn required<'a>(
    value: &'a Option<String>,
    path: &str,
    why: &str,
    p: &mut Problems,
) -> Option<&'a str> {
    match value.as_deref() {
        Some(v) if !v.trim().is_empty() => Some(v),
        Some(_) => {
            p.add(path, format!("must not be empty ({why})"));
            None
        }
        None => {
            p.add(path, format!("missing; {why}"));
            None
        }
    }
}

fn service_config(
    name: &str,
    raw: &RawService,
    file: &RawFile,
    environments: &[String],
    p: &mut Problems,
) -> Option<Service> {
    let path = format!("services.{name}");
    let before = p.0.len();

    let repository = required(
        &raw.repository,
        &format!("{path}.repository"),
        "name the ECR repository whose pushes become releases",
        p,
    )
    .map(str::to_string);
    if let Some(repo) = &repository
        && !repository_ok(repo)
    {
        p.add(
            format!("{path}.repository"),
            format!(
                "\"{repo}\" is not an ECR repository name; use lowercase path components such as \"team/api\""
            ),
        );
    }

    let kind = match raw.kind.as_deref() {
        Some("blue-green") => Some(ServiceKind::BlueGreen),
        Some("rolling") => Some(ServiceKind::Rolling),
        Some("task") => Some(ServiceKind::Task),
        Some(other) => {
            p.add(
                format!("{path}.kind"),
                format!(
                    "\"{other}\" is not a service kind; write \"blue-green\", \"rolling\" or \"task\""
                ),
            );
            None
        }
        None => {
            p.add(
                format!("{path}.kind"),
                "missing; write \"blue-green\", \"rolling\" or \"task\"",
            );
            None
        }
    };

    if matches!(kind, Some(ServiceKind::BlueGreen | ServiceKind::Rolling)) {
        required(
            &raw.container,
            &format!("{path}.container"),
            "name the container whose image a release replaces",
            p,
        );
    }
    let port = match (kind, raw.port) {
        (_, Some(port)) if !(1..=65535).contains(&port) => {
            p.add(
                format!("{path}.port"),
                format!("{port} is not a port; use 1-65535"),
            );
            None
        }
        (Some(ServiceKind::BlueGreen), None) => {
            p.add(
                format!("{path}.port"),
                "missing; blue-green needs the container port the load balancer routes to",
            );
            None
        }
        (_, port) => port.and_then(|v| u16::try_from(v).ok()),
    };

    let tags = tag_policy(&path, raw, p);

    if raw.environments.is_empty() {
        p.add(
            format!("{path}.environments"),
            "no environments; add [services.<name>.environments.<env>] for each environment this service is released to",
        );
    }
    for env in raw.environments.keys() {
        if !environments.contains(env) {
            p.add(
                format!("{path}.environments.{env}"),
                format!(
                    "environment \"{env}\" is not defined; add it to pipeline.environments or fix the name"
                ),
            );
        }
    }
    let mut stages = Vec::new();
    let no_defaults = RawStage::default();
    for env in environments {
        let Some(own) = raw.environments.get(env) else {
            continue;
        };
        let defaults = file.defaults.get(env);
        let merged = own.over(defaults.unwrap_or(&no_defaults));
        let written = Written {
            service: &path,
            stage: format!("{path}.environments.{env}"),
            own,
            defaults: defaults.map(|d| (d, format!("defaults.{env}"))),
        };
        if let Some(kind) = kind {
            stages.push(stage_config(
                &written,
                env,
                kind,
                (raw.container.as_deref(), port),
                &merged,
                raw,
                environments,
                p,
            ));
        }
    }

    // Gates that watch an environment where this service has no alarms can never hold.
    for stage in &stages {
        for watched in &stage.hold_while_alarms_in {
            if let Some(w) = stages.iter().find(|s| &s.environment == watched)
                && w.alarms.is_empty()
                && w.alarm_prefixes.is_empty()
            {
                let env = &stage.environment;
                let from_defaults = raw.environments[env].hold_while_alarms_in.is_none();
                let at = if from_defaults {
                    format!("defaults.{env}.hold_while_alarms_in")
                } else {
                    format!("{path}.environments.{env}.hold_while_alarms_in")
                };
                p.add(
                    at,
                    format!(
                        "the gate watches alarms in \"{watched}\", but {path}.environments.{watched} has no alarms or alarm_prefixes; add them there"
                    ),
                );
            }
        }
    }

    if p.0.len() != before {
        return None;
    }
    Some(Service {
        name: name.to_string(),
        repository: repository?,
        kind: kind?,
        tags,
        stages,
    })
}

fn tag_policy(path: &str, raw: &RawService, p: &mut Problems) -> TagPolicy {
    let Some(tags) = &raw.tags else {
        return TagPolicy::Any;
    };
    let path = format!("{path}.tags");
    match (&tags.regex, &tags.semver) {
        (Some(_), Some(_)) => {
            p.add(&path, "set either regex or semver, not both");
            TagPolicy::Any
        }
        (Some(re), None) => {
            if tags.prereleases.is_some() {
                p.add(
                    format!("{path}.prereleases"),
                    "only applies to a semver range; remove it or use semver",
                );
            }
            match Regex::new(re) {
                Ok(re) => TagPolicy::Regex(re),
                Err(e) => {
                    let first = e.to_string();
                    let detail = first.lines().last().unwrap_or_default().trim().to_string();
                    p.add(
                        format!("{path}.regex"),
                        format!("\"{re}\" is not a valid regex ({detail})"),
                    );
                    TagPolicy::Any
                }
            }
        }
        (None, Some(range)) => match semver::VersionReq::parse(range) {
            Ok(range) => TagPolicy::Semver {
                range,
                prereleases: tags.prereleases.unwrap_or(false),
            },
            Err(e) => {
                p.add(
                    format!("{path}.semver"),
                    format!("\"{range}\" is not a semver range ({e}); write e.g. \">=1.0.0, <2\""),
                );
                TagPolicy::Any
            }
        },
        (None, None) => {
            p.add(
                &path,
                "set regex = \"...\" or semver = \"...\", or remove tags to accept every tag",
            );
            TagPolicy::Any
        }
    }
}

/// Where each of a stage's settings is written: in the service's own table, or, when only
/// there, in `[defaults.<env>]`; a problem is reported once, at the line that holds it.
struct Written<'a> {
    /// `services.<name>`
    service: &'a str,
    /// `services.<name>.environments.<env>`
    stage: String,
    own: &'a RawStage,
    /// The environment's defaults and their path, `defaults.<env>`.
    defaults: Option<(&'a RawStage, String)>,
}

impl Written<'_> {
    /// The path of `key` where its value is written (`set` says whether a table sets it);
    /// the stage's own path when neither does, as that is where it would be added.
    fn at(&self, key: &str, set: impl Fn(&RawStage) -> bool) -> String {
        match &self.defaults {
            Some((defaults, path)) if !set(self.own) && set(defaults) => format!("{path}.{key}"),
            _ => format!("{}.{key}", self.stage),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn stage_config(
    w: &Written<'_>,
    env: &str,
    kind: ServiceKind,
    (container, port): (Option<&str>, Option<u16>),
    merged: &RawStage,
    service: &RawService,
    environments: &[String],
    p: &mut Problems,
) -> StageConfig {
    let (path, own) = (w.stage.as_str(), w.own);
    let kind_name = kind.as_str();
    // Keys that make no sense for this kind are errors where the service sets them; a value
    // inherited from [defaults.<env>] is meant for other services and is ignored here.
    let not_for = |key: &str, set: bool, p: &mut Problems, fix: &str| {
        if set {
            p.add(
                format!("{path}.{key}"),
                format!("does not apply to a {kind_name} service; {fix}"),
            );
        }
    };

    let codedeploy = match kind {
        ServiceKind::BlueGreen => {
            let cd = merged.codedeploy.clone().unwrap_or_default();
            let cd_set = |s: &RawStage, key: fn(&super::raw::RawCodeDeploy) -> bool| {
                s.codedeploy.as_ref().is_some_and(key)
            };
            let application = required(
                &cd.application,
                &w.at("codedeploy.application", |s| {
                    cd_set(s, |c| c.application.is_some())
                }),
                "name the CodeDeploy application",
                p,
            );
            let group = required(
                &cd.deployment_group,
                &w.at("codedeploy.deployment_group", |s| {
                    cd_set(s, |c| c.deployment_group.is_some())
                }),
                "name the CodeDeploy deployment group",
                p,
            );
            match (application, group) {
                (Some(a), Some(g)) => Some(CodeDeployTarget {
                    application: a.to_string(),
                    deployment_group: g.to_string(),
                    deployment_config: cd
                        .deployment_config
                        .clone()
                        .unwrap_or_else(|| DEFAULT_DEPLOYMENT_CONFIG.to_string()),
                }),
                _ => None,
            }
        }
        _ => {
            not_for(
                "codedeploy",
                own.codedeploy.is_some(),
                p,
                "only blue-green services deploy through CodeDeploy",
            );
            None
        }
    };

    let needs_ecs_service = matches!(kind, ServiceKind::BlueGreen | ServiceKind::Rolling);
    if needs_ecs_service {
        required(
            &merged.cluster,
            &w.at("cluster", |s| s.cluster.is_some()),
            "name the ECS cluster",
            p,
        );
        required(
            &merged.service,
            &w.at("service", |s| s.service.is_some()),
            "name the ECS service",
            p,
        );
    } else {
        not_for(
            "service",
            own.service.is_some(),
            p,
            "task services only register task definitions; remove it",
        );
    }

    let checks = if kind == ServiceKind::BlueGreen {
        checks(
            &w.at("checks", |s| s.checks.is_some()),
            merged.checks.as_deref().unwrap_or_default(),
            p,
        )
    } else {
        not_for(
            "checks",
            own.checks.is_some(),
            p,
            "checks run in CodeDeploy lifecycle hooks, which only blue-green services have",
        );
        Vec::new()
    };

    let bake = match &merged.bake {
        Some(text) => parse_duration(text).unwrap_or_else(|e| {
            p.add(w.at("bake", |s| s.bake.is_some()), e);
            Duration::ZERO
        }),
        None => Duration::ZERO,
    };

    let approval = match merged.approval.as_deref() {
        None | Some("none") => Approval::None,
        Some("manual") => Approval::Manual,
        Some(other) => {
            p.add(
                w.at("approval", |s| s.approval.is_some()),
                format!("\"{other}\" is not an approval mode; write \"none\" or \"manual\""),
            );
            Approval::None
        }
    };

    let hold = merged.hold_while_alarms_in.clone().unwrap_or_default();
    let hold_at = w.at("hold_while_alarms_in", |s| s.hold_while_alarms_in.is_some());
    for (i, watched) in hold.iter().enumerate() {
        if watched == env {
            p.add(
                format!("{hold_at}.{i}"),
                format!(
                    "a gate into \"{env}\" cannot watch \"{env}\" itself; alarms there already roll the release back"
                ),
            );
        } else if !environments.contains(watched) {
            p.add(
                format!("{hold_at}.{i}"),
                format!(
                    "environment \"{watched}\" is not defined; add it to pipeline.environments or fix the name"
                ),
            );
        } else if !service.environments.contains_key(watched) {
            p.add(
                format!("{hold_at}.{i}"),
                format!(
                    "{} is not released to \"{watched}\", so it has no alarms there; watch one of its environments",
                    w.service
                ),
            );
        }
    }

    let migration = match (&merged.migration, kind) {
        (Some(_), ServiceKind::Task) => {
            not_for(
                "migration",
                own.migration.is_some(),
                p,
                "data jobs run nothing on release",
            );
            None
        }
        (Some(m), _) => {
            let mpath = w.at("migration", |s| s.migration.is_some());
            let family = required(
                &m.family,
                &format!("{mpath}.family"),
                "name the task-definition family that runs the migration",
                p,
            );
            let command = m.command.clone().unwrap_or_default();
            if command.is_empty() || command.iter().any(|c| c.is_empty()) {
                p.add(
                    format!("{mpath}.command"),
                    "must be a non-empty list of non-empty arguments, e.g. [\"./migrate\", \"up\"]",
                );
            }
            family.map(|f| Migration {
                family: f.to_string(),
                command,
                container: m.container.clone(),
            })
        }
        (None, _) => None,
    };

    let task_families = merged.task_families.clone().unwrap_or_default();
    if kind == ServiceKind::Task {
        if task_families.is_empty() || task_families.iter().any(|f| f.is_empty()) {
            p.add(
                w.at("task_families", |s| s.task_families.is_some()),
                "missing; list the task-definition families a task service updates",
            );
        }
    } else {
        not_for(
            "task_families",
            own.task_families.is_some(),
            p,
            "only task services update task families; use kind = \"task\"",
        );
    }

    let restart_on_release = merged.restart_on_release.unwrap_or(false);
    if kind != ServiceKind::Rolling {
        not_for(
            "restart_on_release",
            own.restart_on_release == Some(true),
            p,
            "only rolling services are restarted in place; use kind = \"rolling\"",
        );
    }

    // Where a value is missing a problem was recorded above, and the pipeline is refused
    // whole: the empty placeholders below are never used.
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let container = container.unwrap_or_default().to_string();
    let target = match kind {
        ServiceKind::BlueGreen => Target::BlueGreen {
            cluster: text(&merged.cluster),
            service: text(&merged.service),
            container,
            port: port.unwrap_or_default(),
            codedeploy: codedeploy.unwrap_or_default(),
            checks,
        },
        ServiceKind::Rolling => Target::Rolling {
            cluster: text(&merged.cluster),
            service: text(&merged.service),
            container,
            restart_on_release,
        },
        ServiceKind::Task => Target::Task {
            families: task_families,
        },
    };
    StageConfig {
        environment: env.to_string(),
        target,
        alarms: merged.alarms.clone().unwrap_or_default(),
        alarm_prefixes: merged.alarm_prefixes.clone().unwrap_or_default(),
        bake,
        approval,
        hold_while_alarms_in: hold,
        freeze: merged.freeze.unwrap_or(false),
        migration,
    }
}

/// `path` is where the list is written: `….checks`.
fn checks(path: &str, raw: &[RawCheck], p: &mut Problems) -> Vec<Check> {
    let mut out = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let cpath = format!("{path}.{i}");
        let hook = match c.hook.as_deref() {
            Some(h) => LifecycleHook::from_config_name(h).or_else(|| {
                let names: Vec<_> = LifecycleHook::ALL.iter().map(|h| h.config_name()).collect();
                p.add(
                    format!("{cpath}.hook"),
                    format!(
                        "\"{h}\" is not a lifecycle hook; write one of {}",
                        names.join(", ")
                    ),
                );
                None
            }),
            None => {
                p.add(
                    format!("{cpath}.hook"),
                    "missing; name the lifecycle hook this check runs in, e.g. \"after_allow_test_traffic\"",
                );
                None
            }
        };
        let duration = |key: &str, value: &Option<String>, default: Duration, p: &mut Problems| {
            value.as_ref().map_or(default, |t| {
                parse_duration(t).unwrap_or_else(|e| {
                    p.add(format!("{cpath}.{key}"), e);
                    default
                })
            })
        };
        let kinds = [
            c.http.is_some(),
            c.alarms == Some(true),
            c.ecs_steady == Some(true),
            c.lambda.is_some(),
        ];
        let probe = match kinds.iter().filter(|k| **k).count() {
            0 => {
                p.add(
                    format!("{cpath}.http"),
                    "missing; a check is one of http = \"URL\", alarms = true, ecs_steady = true or lambda = \"FUNCTION\"",
                );
                None
            }
            1 => probe(&cpath, c, p),
            _ => {
                p.add(
                    cpath.clone(),
                    "more than one of http, alarms, ecs_steady and lambda; make each its own check",
                );
                None
            }
        };
        if c.http.is_none() {
            for (key, set) in [
                ("method", c.method.is_some()),
                ("headers", c.headers.is_some()),
                ("expect_status", c.expect_status.is_some()),
                ("body_contains", c.body_contains.is_some()),
                ("json_pointer", c.json_pointer.is_some()),
                ("json_equals", c.json_equals.is_some()),
                ("latency", c.latency.is_some()),
                ("retries", c.retries.is_some()),
                ("interval", c.interval.is_some()),
            ] {
                if set {
                    p.add(format!("{cpath}.{key}"), "applies to http checks only");
                }
            }
        }
        let default_timeout = match probe {
            Some(Probe::Lambda { .. }) => DEFAULT_LAMBDA_CHECK_TIMEOUT,
            Some(Probe::Http(ref h)) => h.latency_budget * (h.retries + 1) + h.interval * h.retries,
            _ => DEFAULT_CHECK_TIMEOUT,
        };
        let timeout = duration("timeout", &c.timeout, default_timeout, p);
        if let (Some(hook), Some(probe)) = (hook, probe) {
            out.push(Check {
                name: c.name.clone().unwrap_or_else(|| format!("check-{i}")),
                hook,
                probe,
                timeout,
            });
        }
    }
    out
}

/// The probe of a check that names exactly one kind.
fn probe(cpath: &str, c: &RawCheck, p: &mut Problems) -> Option<Probe> {
    if c.alarms == Some(true) {
        return Some(Probe::Alarms);
    }
    if c.ecs_steady == Some(true) {
        return Some(Probe::EcsSteady);
    }
    if let Some(function) = &c.lambda {
        if function.is_empty() {
            p.add(format!("{cpath}.lambda"), "name the function to invoke");
            return None;
        }
        return Some(Probe::Lambda {
            function: function.clone(),
        });
    }
    let url = c.http.as_deref()?;
    let mut ok = true;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        p.add(
            format!("{cpath}.http"),
            format!("\"{url}\" is not an http(s) URL"),
        );
        ok = false;
    }
    let method = c
        .method
        .clone()
        .unwrap_or_else(|| "GET".into())
        .to_uppercase();
    if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
        p.add(
            format!("{cpath}.method"),
            format!("\"{method}\" is not an HTTP method; write GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"),
        );
        ok = false;
    }
    let expect_status = match c.expect_status {
        None => 200,
        Some(s) if (100..=599).contains(&s) => s as u16,
        Some(s) => {
            p.add(
                format!("{cpath}.expect_status"),
                format!("{s} is not an HTTP status; use 100-599"),
            );
            ok = false;
            200
        }
    };
    let json_pointer = match (&c.json_pointer, &c.json_equals) {
        (None, None) => None,
        (Some(ptr), Some(value)) if ptr.is_empty() || ptr.starts_with('/') => {
            Some((ptr.clone(), serde_json::to_value(value).unwrap_or_default()))
        }
        (Some(ptr), Some(_)) => {
            p.add(
                format!("{cpath}.json_pointer"),
                format!("\"{ptr}\" is not a JSON pointer; start it with '/', e.g. \"/status\""),
            );
            ok = false;
            None
        }
        (Some(_), None) => {
            p.add(
                format!("{cpath}.json_equals"),
                "missing; give the value json_pointer must equal",
            );
            ok = false;
            None
        }
        (None, Some(_)) => {
            p.add(
                format!("{cpath}.json_pointer"),
                "missing; say where json_equals is looked for",
            );
            ok = false;
            None
        }
    };
    let retries = match c.retries {
        None => 0,
        Some(r) if (0..=20).contains(&r) => r as u32,
        Some(r) => {
            p.add(format!("{cpath}.retries"), format!("{r} is not 0-20"));
            ok = false;
            0
        }
    };
    let parse = |key: &str, value: &Option<String>, default: Duration, p: &mut Problems| {
        value.as_ref().map_or(default, |t| {
            parse_duration(t).unwrap_or_else(|e| {
                p.add(format!("{cpath}.{key}"), e);
                default
            })
        })
    };
    let latency_budget = parse("latency", &c.latency, DEFAULT_CHECK_TIMEOUT, p);
    let interval = parse("interval", &c.interval, Duration::from_secs(5), p);
    ok.then(|| {
        Probe::Http(HttpProbe {
            method,
            url: url.to_string(),
            headers: c.headers.clone().unwrap_or_default(),
            expect_status,
            body_contains: c.body_contains.clone(),
            json_pointer,
            latency_budget,
            retries,
            interval,
        })
    })
}
