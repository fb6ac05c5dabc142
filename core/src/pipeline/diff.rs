//! What changes between the stored pipeline and a new file, service by service and
//! environment by environment, in effective settings (defaults applied, validated): a
//! changed default shows under every lane it changes, and a file reworded to mean the same
//! shows no change.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{
    BlueAfterSuccess, Check, GroupRollback, MigrationMode, Pipeline, Probe, Service, StageConfig,
    TagPolicy, Target,
};

/// Whether a service, an environment of a service, or a setting is new, gone or different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// One setting before and after, each written as in the pipeline file (`"1h"`,
/// `["dev"]`); `None` where it is not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl SettingChange {
    pub fn change(&self) -> Change {
        match (&self.before, &self.after) {
            (None, _) => Change::Added,
            (_, None) => Change::Removed,
            _ => Change::Changed,
        }
    }
}

/// A service's stage in one environment that is added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentDiff {
    pub environment: String,
    pub change: Change,
    pub settings: Vec<SettingChange>,
}

/// A service that is added, removed, or has changed settings or environments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDiff {
    pub service: String,
    pub change: Change,
    /// Its route in the stored pipeline (`dev → prod (no staging)`), if it was there.
    pub route_before: Option<String>,
    /// Its route in the new file, if it is there.
    pub route_after: Option<String>,
    /// Service-wide settings: repository, kind, container, port, tags.
    pub settings: Vec<SettingChange>,
    pub environments: Vec<EnvironmentDiff>,
}

/// Everything that differs; empty when the two pipelines mean the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PipelineDiff {
    /// `pipeline.environments`, when its list or order changed.
    pub environments: Option<SettingChange>,
    /// By service name.
    pub services: Vec<ServiceDiff>,
}

impl PipelineDiff {
    /// What applying `after` over `before` (nothing stored yet: `None`) changes.
    pub fn between(before: Option<&Pipeline>, after: &Pipeline) -> PipelineDiff {
        let environments = match before {
            Some(b) if b.environments == after.environments => None,
            b => Some(SettingChange {
                key: "pipeline.environments".into(),
                before: b.map(|b| list(&b.environments)),
                after: Some(list(&after.environments)),
            }),
        };
        let empty = BTreeMap::new();
        let old = before.map_or(&empty, |b| &b.services);
        let mut names: Vec<&String> = old.keys().chain(after.services.keys()).collect();
        names.sort();
        names.dedup();
        let services = names
            .into_iter()
            .filter_map(|name| {
                service_diff(
                    before.zip(old.get(name)),
                    Some(after).zip(after.services.get(name)),
                )
            })
            .collect();
        PipelineDiff {
            environments,
            services,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.environments.is_none() && self.services.is_empty()
    }

    /// The lanes (service, environment) the new file drops: where a live release would be
    /// left without Shiplane acting on it.
    pub fn dropped_lanes(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        for s in &self.services {
            for e in &s.environments {
                if e.change == Change::Removed {
                    out.push((s.service.as_str(), e.environment.as_str()));
                }
            }
        }
        out
    }
}

fn service_diff(
    before: Option<(&Pipeline, &Service)>,
    after: Option<(&Pipeline, &Service)>,
) -> Option<ServiceDiff> {
    let (name, change) = match (before, after) {
        (Some((_, b)), Some(_)) => (&b.name, Change::Changed),
        (Some((_, b)), None) => (&b.name, Change::Removed),
        (None, Some((_, a))) => (&a.name, Change::Added),
        (None, None) => return None,
    };
    let settings = changes(
        before.map(|(_, s)| service_settings(s)),
        after.map(|(_, s)| service_settings(s)),
    );
    let mut environments = Vec::new();
    // Promotion order: the new file's, and the stored one's for environments it dropped.
    let mut order: Vec<&str> = Vec::new();
    for (_, s) in before.into_iter().chain(after) {
        for st in &s.stages {
            if !order.contains(&st.environment.as_str()) {
                order.push(&st.environment);
            }
        }
    }
    let rank = |env: &str| {
        let at = |side: Option<(&Pipeline, &Service)>| {
            side.and_then(|(p, _)| p.environments.iter().position(|e| e == env))
        };
        at(after).or(at(before)).unwrap_or(usize::MAX)
    };
    order.sort_by_key(|e| rank(e));
    for env in order {
        let stage = |side: Option<(&Pipeline, &Service)>| {
            side.and_then(|(_, s)| s.stage(env)).map(stage_settings)
        };
        let (b, a) = (stage(before), stage(after));
        let env_change = match (&b, &a) {
            (None, _) => Change::Added,
            (_, None) => Change::Removed,
            _ => Change::Changed,
        };
        let settings = changes(b, a);
        if env_change != Change::Changed || !settings.is_empty() {
            environments.push(EnvironmentDiff {
                environment: env.to_string(),
                change: env_change,
                settings,
            });
        }
    }
    let route = |side: Option<(&Pipeline, &Service)>| side.map(|(p, s)| p.route(s).to_string());
    (change != Change::Changed || !settings.is_empty() || !environments.is_empty()).then(|| {
        ServiceDiff {
            service: name.clone(),
            change,
            route_before: route(before),
            route_after: route(after),
            settings,
            environments,
        }
    })
}

/// The settings that differ between two flattened tables, by key.
fn changes(
    before: Option<BTreeMap<String, String>>,
    after: Option<BTreeMap<String, String>>,
) -> Vec<SettingChange> {
    let (before, after) = (before.unwrap_or_default(), after.unwrap_or_default());
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| SettingChange {
            key: k.clone(),
            before: before.get(k).cloned(),
            after: after.get(k).cloned(),
        })
        .collect()
}

fn text(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|i| text(i)).collect::<Vec<_>>().join(", ")
    )
}

fn duration(d: Duration) -> String {
    text(&humantime::format_duration(d).to_string().replace(' ', ""))
}

fn service_settings(s: &Service) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("repository".into(), text(&s.repository));
    out.insert("kind".into(), text(s.kind.as_str()));
    let first = s.stages.first().map(|st| &st.target);
    if let Some(container) = first.and_then(Target::container) {
        out.insert("container".into(), text(container));
    }
    if let Some(Target::BlueGreen { port, .. }) = first {
        out.insert("port".into(), port.to_string());
    }
    match &s.tags {
        TagPolicy::Any => {}
        TagPolicy::Regex(re) => {
            out.insert("tags.regex".into(), text(re.as_str()));
        }
        TagPolicy::Semver { range, prereleases } => {
            out.insert("tags.semver".into(), text(&range.to_string()));
            out.insert("tags.prereleases".into(), prereleases.to_string());
        }
    }
    out
}

/// A stage's effective settings, keyed as the file writes them (checks by name).
fn stage_settings(st: &StageConfig) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    target_settings(&st.target, &mut out);
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), v);
    };
    for (k, v) in [
        ("alarms", &st.alarms),
        ("alarm_prefixes", &st.alarm_prefixes),
        ("hold_while_alarms_in", &st.hold_while_alarms_in),
        ("restarts", &st.restarts),
    ] {
        if !v.is_empty() {
            put(k, list(v));
        }
    }
    put("bake", duration(st.bake));
    put("keep", st.keep.to_string());
    put(
        "approval",
        text(match st.approval {
            super::Approval::None => "none",
            super::Approval::Manual => "manual",
        }),
    );
    put("freeze", st.freeze.to_string());
    if st.tags != TagPolicy::Any {
        put("tags", st.tags.to_string());
    }
    if let Some(m) = &st.migration {
        put("migration.family", text(&m.family));
        put("migration.command", list(&m.command));
        if let Some(c) = &m.container {
            put("migration.container", text(c));
        }
        if m.mode != MigrationMode::Online {
            put("migration.mode", text(m.mode.as_str()));
        }
    }
    check_settings(st.target.checks(), &mut out);
    out
}

/// The settings of a stage's target, by service kind.
fn target_settings(target: &Target, out: &mut BTreeMap<String, String>) {
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), v);
    };
    match target {
        Target::BlueGreen {
            cluster,
            service,
            codedeploy,
            ..
        } => {
            put("cluster", text(cluster));
            put("service", text(service));
            put("codedeploy.application", text(&codedeploy.application));
            put(
                "codedeploy.deployment_group",
                text(&codedeploy.deployment_group),
            );
            put(
                "codedeploy.deployment_config",
                text(&codedeploy.deployment_config),
            );
            // Only an opt-out is shown: a file that leaves them out says nothing new.
            if codedeploy.group.blue == BlueAfterSuccess::Keep {
                put("codedeploy.keep_blue", "true".into());
            }
            if codedeploy.group.rollback == GroupRollback::Off {
                put("codedeploy.group_rollback", "false".into());
            }
        }
        Target::Rolling {
            cluster, service, ..
        } => {
            put("cluster", text(cluster));
            put("service", text(service));
        }
        Target::Task { families, cluster } => {
            put("task_families", list(families));
            if let Some(cluster) = cluster {
                put("cluster", text(cluster));
            }
        }
    }
}

/// Each check's settings under `checks.<name>`, or `checks.<name>#<index>` where two
/// checks share a name.
fn check_settings(checks: &[Check], out: &mut BTreeMap<String, String>) {
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), v);
    };
    for (i, c) in checks.iter().enumerate() {
        let named = checks.iter().filter(|o| o.name == c.name).count() == 1;
        let at = if named {
            format!("checks.{}", c.name)
        } else {
            format!("checks.{}#{i}", c.name)
        };
        put(&format!("{at}.hook"), text(c.hook.config_name()));
        put(&format!("{at}.timeout"), duration(c.timeout));
        match &c.probe {
            Probe::Alarms => put(&format!("{at}.alarms"), "true".into()),
            Probe::EcsSteady => put(&format!("{at}.ecs_steady"), "true".into()),
            Probe::Lambda { function } => put(&format!("{at}.lambda"), text(function)),
            Probe::Http(h) => {
                put(&format!("{at}.http"), text(&h.url));
                put(&format!("{at}.method"), text(&h.method));
                for (k, v) in &h.headers {
                    put(&format!("{at}.headers.{k}"), text(v));
                }
                put(&format!("{at}.expect_status"), h.expect_status.to_string());
                if let Some(b) = &h.body_contains {
                    put(&format!("{at}.body_contains"), text(b));
                }
                if let Some((ptr, value)) = &h.json_pointer {
                    put(&format!("{at}.json_pointer"), text(ptr));
                    put(&format!("{at}.json_equals"), value.to_string());
                }
                put(&format!("{at}.latency"), duration(h.latency_budget));
                put(&format!("{at}.retries"), h.retries.to_string());
                put(&format!("{at}.interval"), duration(h.interval));
            }
        }
    }
}
