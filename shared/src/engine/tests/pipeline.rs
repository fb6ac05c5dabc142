//! The engine tests' pipeline file: the base every [`World`](super::World) starts with, and
//! a builder that changes its stages setting by setting, typed, instead of editing the text.

use std::time::Duration;

use crate::pipeline::LifecycleHook;

/// Three services through dev and prod: `api` (blue-green; dev bakes 10 minutes, prod is
/// approved by a person), `db` (rolling; a migration first in dev, no bake) and `etl` (data
/// jobs; dev bakes an hour, prod is approved by a person).
pub(super) const PIPELINE: &str = r#"
[pipeline]
environments = ["dev", "prod"]

[services.api]
repository = "shiplane/api"
kind = "blue-green"
container = "app"
port = 8080
tags = { semver = ">=1.0.0" }
[services.api.environments.dev]
cluster = "dev"
service = "api-dev"
codedeploy = { application = "api", deployment_group = "api-dev" }
bake = "10m"
[services.api.environments.prod]
cluster = "prod"
service = "api-prod"
codedeploy = { application = "api", deployment_group = "api-prod" }
approval = "manual"

[services.db]
repository = "shiplane/db"
kind = "rolling"
container = "app"
[services.db.environments.dev]
cluster = "dev"
service = "db-dev"
migration = { family = "db-migrate", command = ["./migrate"] }

[services.etl]
repository = "shiplane/etl"
kind = "task"
[services.etl.environments.dev]
cluster = "dev"
task_families = ["etl-nightly"]
bake = "1h"
[services.etl.environments.prod]
cluster = "prod"
task_families = ["etl-nightly"]
approval = "manual"
"#;

/// [`PIPELINE`] with some of its stages changed: the TOML text the store takes.
///
/// `PipelineFile::base().stage("api", "dev", |s| s.bake(Duration::ZERO)).toml()`
#[derive(Debug, Clone)]
pub(super) struct PipelineFile {
    doc: toml::Table,
}

impl PipelineFile {
    /// The base pipeline, unchanged.
    pub(super) fn base() -> PipelineFile {
        let doc = PIPELINE
            .parse()
            .unwrap_or_else(|e| panic!("the base pipeline: {e}"));
        PipelineFile { doc }
    }

    /// `service`'s stage in `environment` as `change` leaves it; panics when the base has no
    /// such stage (a change that cannot land is a broken test, not a quiet no-op).
    pub(super) fn stage(
        mut self,
        service: &str,
        environment: &str,
        change: impl FnOnce(Stage) -> Stage,
    ) -> PipelineFile {
        let slot = ["services", service, "environments", environment]
            .into_iter()
            .try_fold(&mut self.doc, |table, key| {
                table.get_mut(key)?.as_table_mut()
            })
            .unwrap_or_else(|| panic!("the base pipeline has no stage {service}/{environment}"));
        let Stage(changed) = change(Stage(std::mem::take(slot)));
        *slot = changed;
        self
    }

    /// The pipeline file's text.
    pub(super) fn toml(&self) -> String {
        toml::to_string(&self.doc).unwrap_or_else(|e| panic!("the pipeline as TOML: {e}"))
    }
}

/// One stage's settings (`[services.NAME.environments.ENV]`), changed one at a time.
#[derive(Debug)]
pub(super) struct Stage(toml::Table);

impl Stage {
    /// `bake = "…"`: how long the stage bakes before it promotes.
    pub(super) fn bake(self, bake: Duration) -> Stage {
        self.set("bake", humantime::format_duration(bake).to_string())
    }

    /// `watch = "…"`: how long a release stays watched after it succeeds.
    pub(super) fn watch(self, watch: Duration) -> Stage {
        self.set("watch", format!("{}s", watch.as_secs()))
    }

    /// `freeze = true`: the stage queues releases and deploys none.
    pub(super) fn freeze(self) -> Stage {
        self.set("freeze", true)
    }

    /// `alarms = [...]`: alarms watched by name.
    pub(super) fn alarms(self, names: &[&str]) -> Stage {
        self.set("alarms", names.to_vec())
    }

    /// `alarm_prefixes = [...]`: alarms watched by name prefix.
    pub(super) fn alarm_prefixes(self, prefixes: &[&str]) -> Stage {
        self.set("alarm_prefixes", prefixes.to_vec())
    }

    /// `hold_while_alarms_in = [...]`: promotion into the stage waits while alarms fire in
    /// these environments.
    pub(super) fn hold_while_alarms_in(self, environments: &[&str]) -> Stage {
        self.set("hold_while_alarms_in", environments.to_vec())
    }

    /// One more `[[…checks]]`: a GET of `url` in `hook`.
    pub(super) fn http_check(self, name: &str, hook: LifecycleHook, url: &str) -> Stage {
        self.check(name, hook, "http", url)
    }

    /// One more `[[…checks]]`: the stage's alarms read in `hook`.
    pub(super) fn alarms_check(self, name: &str, hook: LifecycleHook) -> Stage {
        self.check(name, hook, "alarms", true)
    }

    fn check(
        mut self,
        name: &str,
        hook: LifecycleHook,
        probe: &str,
        with: impl Into<toml::Value>,
    ) -> Stage {
        let mut check = toml::Table::new();
        check.insert("name".into(), name.into());
        check.insert("hook".into(), hook.config_name().into());
        check.insert(probe.into(), with.into());
        let checks = self
            .0
            .entry("checks")
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        match checks {
            toml::Value::Array(checks) => checks.push(check.into()),
            other => panic!("checks is not an array: {other}"),
        }
        self
    }

    fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Stage {
        self.0.insert(key.into(), value.into());
        self
    }
}
