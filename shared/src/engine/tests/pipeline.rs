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
task_families = ["etl-nightly"]
bake = "1h"
[services.etl.environments.prod]
task_families = ["etl-nightly"]
approval = "manual"
"#;

/// [`PIPELINE`] with some of its stages changed: the TOML text the store takes.
///
/// `PipelineFile::base().stage("api", "dev", |s| s.freeze()).toml()`
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

/// TEMPORARY (removed once the call sites use the builder): every pipeline the tests made
/// by editing [`PIPELINE`]'s text, each expression copied from its call site, is the one
/// the builder makes, as a TOML document and as the parsed [`crate::pipeline::Pipeline`].
#[test]
fn the_builder_makes_the_pipelines_the_text_replacements_made() {
    const CHECKS: &str = r#"
[[services.api.environments.dev.checks]]
name = "health"
hook = "after_allow_test_traffic"
http = "http://test.internal/health"
[[services.api.environments.dev.checks]]
name = "orders"
hook = "after_allow_test_traffic"
http = "http://test.internal/orders"
[[services.api.environments.dev.checks]]
name = "no-alarms"
hook = "before_allow_traffic"
alarms = true
"#;
    let gated = || {
        PIPELINE
            .replace(
                "bake = \"10m\"\n[services.api.environments.prod]",
                "bake = \"10m\"\nalarm_prefixes = [\"api-dev-\"]\n[services.api.environments.prod]",
            )
            .replace(
                "deployment_group = \"api-prod\" }\napproval = \"manual\"",
                "deployment_group = \"api-prod\" }\napproval = \"manual\"\nhold_while_alarms_in = [\"dev\"]",
            )
    };
    let with_checks = || {
        PIPELINE.replace(
            "bake = \"10m\"\n[services.api.environments.prod]",
            &format!("bake = \"10m\"\n{CHECKS}\n[services.api.environments.prod]"),
        )
    };
    let built_gated = || {
        PipelineFile::base()
            .stage("api", "dev", |s| s.alarm_prefixes(&["api-dev-"]))
            .stage("api", "prod", |s| s.hold_while_alarms_in(&["dev"]))
    };
    let built_checks = || {
        PipelineFile::base().stage("api", "dev", |s| {
            s.http_check(
                "health",
                LifecycleHook::AfterAllowTestTraffic,
                "http://test.internal/health",
            )
            .http_check(
                "orders",
                LifecycleHook::AfterAllowTestTraffic,
                "http://test.internal/orders",
            )
            .alarms_check("no-alarms", LifecycleHook::BeforeAllowTraffic)
        })
    };
    let sites: Vec<(&str, String, PipelineFile)> = vec![
        (
            "deploy.rs the_same_pipeline_text_is_parsed_once_and_other_text_again",
            PIPELINE.replace("bake = \"10m\"", "bake = \"20m\""),
            PipelineFile::base().stage("api", "dev", |s| s.bake(Duration::from_secs(20 * 60))),
        ),
        (
            "deploy.rs a_release_queued_by_a_freeze_starts_when_a_pipeline_without_it_is_applied",
            PIPELINE.replace("bake = \"10m\"", "bake = \"10m\"\nfreeze = true"),
            PipelineFile::base().stage("api", "dev", |s| s.freeze()),
        ),
        ("hooks.rs deploying", with_checks(), built_checks()),
        (
            "hooks.rs a_hook_whose_deployment_reference_was_never_written_finds_its_release_by_description",
            with_checks(),
            built_checks(),
        ),
        (
            "alarms.rs watched",
            PIPELINE.replace(
                "bake = \"10m\"\n[services.api.environments.prod]",
                "bake = \"10m\"\nalarm_prefixes = [\"api-dev-\"]\n[services.api.environments.prod]",
            ),
            PipelineFile::base().stage("api", "dev", |s| s.alarm_prefixes(&["api-dev-"])),
        ),
        (
            "alarms.rs db_watched",
            PIPELINE.replace(
                "service = \"db-dev\"\n",
                "service = \"db-dev\"\nalarm_prefixes = [\"db-dev-\"]\n",
            ),
            PipelineFile::base().stage("db", "dev", |s| s.alarm_prefixes(&["db-dev-"])),
        ),
        (
            "gates.rs a_dev_alarm_holds_the_prod_promotion_and_its_return_to_ok_lets_it_go",
            gated(),
            built_gated(),
        ),
        (
            "gates.rs a_dev_alarm_committed_between_a_prod_decisions_read_and_its_commit_holds_prod",
            gated(),
            built_gated(),
        ),
        (
            "gates.rs an_operator_can_unblock_a_gate_whose_alarm_never_reports_ok",
            gated(),
            built_gated(),
        ),
        (
            "bake_timers.rs the_bake_timer_reads_the_alarms_first_and_a_lost_alarm_rolls_back",
            PIPELINE.replace(
                "bake = \"10m\"\n[services.api.environments.prod]",
                "bake = \"10m\"\nalarms = [\"api-dev-5xx\"]\n[services.api.environments.prod]",
            ),
            PipelineFile::base().stage("api", "dev", |s| s.alarms(&["api-dev-5xx"])),
        ),
    ];
    let parsed = |text: &str| {
        let p = crate::pipeline::Pipeline::from_toml(text).unwrap_or_else(|e| panic!("{e}"));
        format!("{:#?}\n{:#?}", p.environments, p.services)
    };
    for (site, old, built) in &sites {
        let new = built.toml();
        assert_ne!(old, PIPELINE, "{site}: the replacement changed nothing");
        let (old_doc, new_doc): (toml::Table, toml::Table) =
            (old.parse().unwrap(), new.parse().unwrap());
        assert_eq!(old_doc, new_doc, "{site}: another TOML document");
        assert_eq!(parsed(old), parsed(&new), "{site}: another pipeline");
        assert_ne!(parsed(&new), parsed(PIPELINE), "{site}: the base pipeline");
    }
    // The base itself, as the freeze test applies it again (version 3).
    assert_eq!(parsed(PIPELINE), parsed(&PipelineFile::base().toml()));
    println!("{} call sites: the same pipelines", sites.len());
}
