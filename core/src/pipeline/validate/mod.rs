//! Turns the raw file into a [`Pipeline`], collecting every problem with its path.

mod checks;
mod jobs;
mod keys;
mod service;
mod stage;
mod tags;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

use super::raw::RawFile;
use super::{AlarmWatchers, ConfigError, Pipeline, Problem, Service, ServiceKind};
use keys::unknown_keys;
use service::services;

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
    unknown_keys(unknown, &mut p);
    let environments = pipeline_environments(&raw, &mut p);
    stray_defaults(&raw, &environments, &mut p);
    let services = services(&raw, &environments, &mut p);
    restarts(&raw, &services, &mut p);
    jobs::shared_families(&services, &mut p);

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

/// Each service a stage `restarts` is another rolling service of the file with a stage in
/// the same environment: the one ECS service a restart can start new tasks of in place.
fn restarts(raw: &RawFile, services: &BTreeMap<String, Service>, p: &mut Problems) {
    for (name, service) in services {
        for stage in &service.stages {
            let env = &stage.environment;
            for (i, dependent) in stage.restarts.iter().enumerate() {
                let own = raw.services[name].environments[env].restarts.is_some();
                let at = if own {
                    format!("services.{name}.environments.{env}.restarts.{i}")
                } else {
                    format!("defaults.{env}.restarts.{i}")
                };
                let problem = match services.get(dependent) {
                    _ if dependent == name => Some(format!(
                        "\"{dependent}\" is this service; a release of it starts new tasks already"
                    )),
                    // Refused for problems of its own, reported there.
                    None if raw.services.contains_key(dependent) => None,
                    None => Some(format!(
                        "no service \"{dependent}\" in this file; name a [services.<name>] table"
                    )),
                    Some(d) if d.kind != ServiceKind::Rolling => Some(format!(
                        "services.{dependent} is a {} service; only a rolling service is restarted in place",
                        d.kind.as_str()
                    )),
                    Some(d) if d.stage(env).is_none() => Some(format!(
                        "services.{dependent} has no {env} environment to restart; add services.{dependent}.environments.{env}"
                    )),
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    p.add(at, problem);
                }
            }
        }
    }
}

/// `[defaults.<env>]` tables for environments the pipeline does not list.
fn stray_defaults(raw: &RawFile, environments: &[String], p: &mut Problems) {
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
    value: Option<&'a str>,
    path: &str,
    why: &str,
    p: &mut Problems,
) -> Option<&'a str> {
    match value {
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
