//! A service's table: its repository, kind, container, port and tags, and its stages in
//! promotion order.

use std::collections::BTreeMap;

use super::stage::{Written, stage_config};
use super::tags::tag_policy;
use super::{Problems, name_ok, repository_ok, required};
use crate::pipeline::raw::{RawFile, RawService, RawStage};
use crate::pipeline::{Service, ServiceKind, StageConfig};

/// The services of the file by name, each whose table holds no problem; each repository
/// is tracked by one service.
pub(super) fn services(
    raw: &RawFile,
    environments: &[String],
    p: &mut Problems,
) -> BTreeMap<String, Service> {
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
        if let Some(s) = service_config(name, service, raw, environments, p) {
            services.insert(name.clone(), s);
        }
    }
    services
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

    let repository = repository(&path, raw, p);
    let kind = kind(&path, raw, p);
    let port = container_and_port(&path, kind, raw, p);
    let tags = tag_policy(&format!("{path}.tags"), raw.tags.as_ref(), p);
    stage_environments(&path, raw, environments, p);
    let stages = match kind {
        Some(kind) => stages(&path, kind, port, raw, file, environments, p),
        None => Vec::new(),
    };
    gates_without_alarms(&path, &stages, raw, p);

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

/// The ECR repository; `path` is the service's, `services.<name>`.
fn repository(path: &str, raw: &RawService, p: &mut Problems) -> Option<String> {
    let repository = required(
        raw.repository.as_deref(),
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
    repository
}

fn kind(path: &str, raw: &RawService, p: &mut Problems) -> Option<ServiceKind> {
    match raw.kind.as_deref() {
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
    }
}

/// The container the kinds that run a service need, and the port (blue-green needs one).
fn container_and_port(
    path: &str,
    kind: Option<ServiceKind>,
    raw: &RawService,
    p: &mut Problems,
) -> Option<u16> {
    if matches!(kind, Some(ServiceKind::BlueGreen | ServiceKind::Rolling)) {
        required(
            raw.container.as_deref(),
            &format!("{path}.container"),
            "name the container whose image a release replaces",
            p,
        );
    }
    match (kind, raw.port) {
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
    }
}

/// The service's environment tables: at least one, each an environment of the pipeline.
fn stage_environments(path: &str, raw: &RawService, environments: &[String], p: &mut Problems) {
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
}

/// The service's stages in promotion order, each with its environment's defaults applied.
fn stages(
    path: &str,
    kind: ServiceKind,
    port: Option<u16>,
    raw: &RawService,
    file: &RawFile,
    environments: &[String],
    p: &mut Problems,
) -> Vec<StageConfig> {
    let mut stages = Vec::new();
    let no_defaults = RawStage::default();
    for env in environments {
        let Some(own) = raw.environments.get(env) else {
            continue;
        };
        let defaults = file.defaults.get(env);
        let merged = own.over(defaults.unwrap_or(&no_defaults));
        let written = Written {
            service: path,
            stage: format!("{path}.environments.{env}"),
            own,
            defaults: defaults.map(|d| (d, format!("defaults.{env}"))),
        };
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
    stages
}

/// Gates that watch an environment where this service has no alarms can never hold.
fn gates_without_alarms(path: &str, stages: &[StageConfig], raw: &RawService, p: &mut Problems) {
    for stage in stages {
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
}
