//! The pipeline file as written: every value kept as text so validation can report all
//! problems at once instead of stopping at the first that serde meets.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::locate::{Document, position_of};
use super::{ConfigError, Problem};

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawFile {
    pub pipeline: Option<RawPipeline>,
    #[serde(default)]
    pub defaults: BTreeMap<String, RawStage>,
    #[serde(default)]
    pub services: BTreeMap<String, RawService>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawPipeline {
    pub environments: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawService {
    pub repository: Option<String>,
    pub kind: Option<String>,
    pub container: Option<String>,
    pub port: Option<i64>,
    pub tags: Option<RawTags>,
    #[serde(default)]
    pub environments: BTreeMap<String, RawStage>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct RawTags {
    pub regex: Option<String>,
    pub semver: Option<String>,
    pub prereleases: Option<bool>,
}

/// Stage settings; used both for `[defaults.<env>]` and `[services.<s>.environments.<env>]`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct RawStage {
    pub cluster: Option<String>,
    pub service: Option<String>,
    pub codedeploy: Option<RawCodeDeploy>,
    pub checks: Option<Vec<RawCheck>>,
    pub alarms: Option<Vec<String>>,
    pub alarm_prefixes: Option<Vec<String>>,
    pub bake: Option<String>,
    pub watch: Option<String>,
    pub approval: Option<String>,
    pub hold_while_alarms_in: Option<Vec<String>>,
    pub freeze: Option<bool>,
    pub migration: Option<RawMigration>,
    pub task_families: Option<Vec<String>>,
    pub restarts: Option<Vec<String>>,
    pub keep: Option<i64>,
    /// Removed: read only to say what replaced it.
    pub restart_on_release: Option<toml::Value>,
    pub tags: Option<RawTags>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct RawCodeDeploy {
    pub application: Option<String>,
    pub deployment_group: Option<String>,
    pub deployment_config: Option<String>,
    pub keep_blue: Option<bool>,
    pub group_rollback: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct RawCheck {
    pub name: Option<String>,
    pub hook: Option<String>,
    pub timeout: Option<String>,
    // One of these four says what the check is.
    pub http: Option<String>,
    pub alarms: Option<bool>,
    pub ecs_steady: Option<bool>,
    pub lambda: Option<String>,
    // HTTP checks.
    pub method: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub expect_status: Option<i64>,
    pub body_contains: Option<String>,
    pub json_pointer: Option<String>,
    pub json_equals: Option<toml::Value>,
    pub latency: Option<String>,
    pub retries: Option<i64>,
    pub interval: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct RawMigration {
    pub family: Option<String>,
    pub command: Option<Vec<String>>,
    pub container: Option<String>,
    pub mode: Option<String>,
}

impl RawStage {
    /// This stage's settings with the environment's defaults filling what it leaves out.
    /// Values replace defaults whole: a service's `alarms` list is not appended to the default's.
    pub fn over(&self, defaults: &RawStage) -> RawStage {
        let codedeploy = match (&self.codedeploy, &defaults.codedeploy) {
            (Some(own), Some(def)) => Some(RawCodeDeploy {
                application: own.application.clone().or_else(|| def.application.clone()),
                deployment_group: own
                    .deployment_group
                    .clone()
                    .or_else(|| def.deployment_group.clone()),
                deployment_config: own
                    .deployment_config
                    .clone()
                    .or_else(|| def.deployment_config.clone()),
                keep_blue: own.keep_blue.or(def.keep_blue),
                group_rollback: own.group_rollback.or(def.group_rollback),
            }),
            (own, def) => own.clone().or_else(|| def.clone()),
        };
        RawStage {
            cluster: self.cluster.clone().or_else(|| defaults.cluster.clone()),
            service: self.service.clone().or_else(|| defaults.service.clone()),
            codedeploy,
            checks: self.checks.clone().or_else(|| defaults.checks.clone()),
            alarms: self.alarms.clone().or_else(|| defaults.alarms.clone()),
            alarm_prefixes: self
                .alarm_prefixes
                .clone()
                .or_else(|| defaults.alarm_prefixes.clone()),
            bake: self.bake.clone().or_else(|| defaults.bake.clone()),
            watch: self.watch.clone().or_else(|| defaults.watch.clone()),
            approval: self.approval.clone().or_else(|| defaults.approval.clone()),
            hold_while_alarms_in: self
                .hold_while_alarms_in
                .clone()
                .or_else(|| defaults.hold_while_alarms_in.clone()),
            freeze: self.freeze.or(defaults.freeze),
            migration: self
                .migration
                .clone()
                .or_else(|| defaults.migration.clone()),
            task_families: self
                .task_families
                .clone()
                .or_else(|| defaults.task_families.clone()),
            restarts: self.restarts.clone().or_else(|| defaults.restarts.clone()),
            keep: self.keep.or(defaults.keep),
            restart_on_release: self
                .restart_on_release
                .clone()
                .or_else(|| defaults.restart_on_release.clone()),
            tags: self.tags.clone().or_else(|| defaults.tags.clone()),
        }
    }
}

/// Parses TOML into the raw form, collecting the path of every unknown key.
pub(super) fn parse(source: &str) -> Result<(RawFile, Vec<String>), ConfigError> {
    let mut unknown = Vec::new();
    let problem = |e| toml_problem(source, e);
    let deserializer = toml::Deserializer::parse(source).map_err(problem)?;
    let raw = serde_ignored::deserialize(deserializer, |path| unknown.push(path.to_string()))
        .map_err(problem)?;
    Ok((raw, unknown))
}

/// TOML that does not parse, or a value of the wrong type: toml's own short message, at
/// its span, with the path of the value when the file parses far enough to say.
fn toml_problem(source: &str, err: toml::de::Error) -> ConfigError {
    let span = err.span();
    let path = span
        .as_ref()
        .and_then(|s| Document::parse(source).path_at(s.start))
        .unwrap_or_default();
    ConfigError {
        problems: vec![Problem {
            path,
            message: format!("not a valid pipeline file: {}", err.message().trim_end()),
            at: span.map(|s| position_of(source, s.start)),
        }],
    }
}
