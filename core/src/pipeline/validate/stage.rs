//! A service's stage in one environment, with the environment's defaults applied: where it
//! deploys, its gates, bake, migration, and where each setting is written.

use std::time::Duration;

use super::checks::checks;
use super::tags::tag_policy;
use super::{Problems, required};
use crate::pipeline::raw::{RawCodeDeploy, RawService, RawStage};
use crate::pipeline::{
    Approval, BlueAfterSuccess, Check, CodeDeployTarget, DEFAULT_KEEP, GroupExpectation,
    GroupRollback, MAX_KEEP, Migration, MigrationMode, ServiceKind, StageConfig, Target,
    parse_duration,
};

const DEFAULT_DEPLOYMENT_CONFIG: &str = "CodeDeployDefault.ECSAllAtOnce";

/// Where each of a stage's settings is written: in the service's own table, or, when only
/// there, in `[defaults.<env>]`; a problem is reported once, at the line that holds it.
pub(super) struct Written<'a> {
    /// `services.<name>`
    pub(super) service: &'a str,
    /// `services.<name>.environments.<env>`
    pub(super) stage: String,
    pub(super) own: &'a RawStage,
    /// The environment's defaults and their path, `defaults.<env>`.
    pub(super) defaults: Option<(&'a RawStage, String)>,
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

    /// Keys that make no sense for this kind are errors where the service sets them; a value
    /// inherited from [defaults.<env>] is meant for other services and is ignored here.
    fn not_for(&self, kind: ServiceKind, key: &str, set: bool, p: &mut Problems, fix: &str) {
        if set {
            p.add(
                format!("{}.{key}", self.stage),
                format!("does not apply to a {} service; {fix}", kind.as_str()),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn stage_config(
    w: &Written<'_>,
    env: &str,
    kind: ServiceKind,
    (container, port): (Option<&str>, Option<u16>),
    merged: &RawStage,
    service: &RawService,
    environments: &[String],
    p: &mut Problems,
) -> StageConfig {
    let codedeploy = codedeploy(w, kind, merged, p);
    ecs_service(w, kind, merged, p);
    let checks = stage_checks(w, kind, merged, p);
    let bake = duration(w, "bake", merged.bake.as_ref(), |s| s.bake.is_some(), p);
    let watch = duration(w, "watch", merged.watch.as_ref(), |s| s.watch.is_some(), p);
    let approval = approval(w, merged, p);
    let hold = hold_while_alarms_in(w, env, merged, service, environments, p);
    let migration = migration(w, kind, merged, p);
    let task_families = task_families(w, kind, merged, p);
    restart_on_release_removed(w, p);
    let keep = keep(w, merged, p);
    let tags = tag_policy(&w.at("tags", |s| s.tags.is_some()), merged.tags.as_ref(), p);

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
        },
        ServiceKind::Task => Target::Task {
            families: task_families,
            cluster: merged.cluster.clone(),
        },
    };
    StageConfig {
        environment: env.to_string(),
        target,
        alarms: merged.alarms.clone().unwrap_or_default(),
        alarm_prefixes: merged.alarm_prefixes.clone().unwrap_or_default(),
        bake,
        watch,
        approval,
        hold_while_alarms_in: hold,
        freeze: merged.freeze.unwrap_or(false),
        migration,
        restarts: merged.restarts.clone().unwrap_or_default(),
        keep,
        tags,
    }
}

/// How many of the revisions Shiplane registered here are kept after a success
/// ([`StageConfig::keep`]): at least one, at most [`MAX_KEEP`].
fn keep(w: &Written<'_>, merged: &RawStage, p: &mut Problems) -> u32 {
    match merged.keep {
        None => DEFAULT_KEEP,
        Some(n) => match u32::try_from(n) {
            Ok(n @ 1..=MAX_KEEP) => n,
            _ => {
                p.add(
                    w.at("keep", |s| s.keep.is_some()),
                    format!("{n} is not a number of revisions to keep; write 1 to {MAX_KEEP} (default {DEFAULT_KEEP})"),
                );
                DEFAULT_KEEP
            }
        },
    }
}

/// The CodeDeploy application and deployment group of a blue-green stage.
fn codedeploy(
    w: &Written<'_>,
    kind: ServiceKind,
    merged: &RawStage,
    p: &mut Problems,
) -> Option<CodeDeployTarget> {
    match kind {
        ServiceKind::BlueGreen => {
            let cd = merged.codedeploy.clone().unwrap_or_default();
            let cd_set = |s: &RawStage, key: fn(&RawCodeDeploy) -> bool| {
                s.codedeploy.as_ref().is_some_and(key)
            };
            let application = required(
                cd.application.as_deref(),
                &w.at("codedeploy.application", |s| {
                    cd_set(s, |c| c.application.is_some())
                }),
                "name the CodeDeploy application",
                p,
            );
            let group = required(
                cd.deployment_group.as_deref(),
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
                    group: GroupExpectation {
                        blue: match cd.keep_blue {
                            Some(true) => BlueAfterSuccess::Keep,
                            _ => BlueAfterSuccess::Terminate,
                        },
                        rollback: match cd.group_rollback {
                            Some(false) => GroupRollback::Off,
                            _ => GroupRollback::Required,
                        },
                    },
                }),
                _ => None,
            }
        }
        _ => {
            w.not_for(
                kind,
                "codedeploy",
                w.own.codedeploy.is_some(),
                p,
                "only blue-green services deploy through CodeDeploy",
            );
            None
        }
    }
}

/// The ECS cluster and service of the kinds that run a service.
fn ecs_service(w: &Written<'_>, kind: ServiceKind, merged: &RawStage, p: &mut Problems) {
    let needs_ecs_service = matches!(kind, ServiceKind::BlueGreen | ServiceKind::Rolling);
    if needs_ecs_service {
        required(
            merged.cluster.as_deref(),
            &w.at("cluster", |s| s.cluster.is_some()),
            "name the ECS cluster",
            p,
        );
        required(
            merged.service.as_deref(),
            &w.at("service", |s| s.service.is_some()),
            "name the ECS service",
            p,
        );
    } else {
        w.not_for(
            kind,
            "service",
            w.own.service.is_some(),
            p,
            "task services only register task definitions; remove it",
        );
    }
}

/// The lifecycle-hook checks of a blue-green stage.
fn stage_checks(
    w: &Written<'_>,
    kind: ServiceKind,
    merged: &RawStage,
    p: &mut Problems,
) -> Vec<Check> {
    if kind == ServiceKind::BlueGreen {
        checks(
            &w.at("checks", |s| s.checks.is_some()),
            merged.checks.as_deref().unwrap_or_default(),
            p,
        )
    } else {
        w.not_for(
            kind,
            "checks",
            w.own.checks.is_some(),
            p,
            "checks run in CodeDeploy lifecycle hooks, which only blue-green services have",
        );
        Vec::new()
    }
}

/// A duration setting (`bake`, `watch`) as `written` sets it: zero when left out.
fn duration(
    w: &Written<'_>,
    key: &str,
    value: Option<&String>,
    written: fn(&RawStage) -> bool,
    p: &mut Problems,
) -> Duration {
    match value {
        Some(text) => parse_duration(text).unwrap_or_else(|e| {
            p.add(w.at(key, written), e);
            Duration::ZERO
        }),
        None => Duration::ZERO,
    }
}

fn approval(w: &Written<'_>, merged: &RawStage, p: &mut Problems) -> Approval {
    match merged.approval.as_deref() {
        None | Some("none") => Approval::None,
        Some("manual") => Approval::Manual,
        Some(other) => {
            p.add(
                w.at("approval", |s| s.approval.is_some()),
                format!("\"{other}\" is not an approval mode; write \"none\" or \"manual\""),
            );
            Approval::None
        }
    }
}

/// The environments whose alarms hold promotion into `env`: others this service is
/// released to.
fn hold_while_alarms_in(
    w: &Written<'_>,
    env: &str,
    merged: &RawStage,
    service: &RawService,
    environments: &[String],
    p: &mut Problems,
) -> Vec<String> {
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
    hold
}

/// The task run before the deployment, for the kinds that run a service.
fn migration(
    w: &Written<'_>,
    kind: ServiceKind,
    merged: &RawStage,
    p: &mut Problems,
) -> Option<Migration> {
    match (&merged.migration, kind) {
        (Some(_), ServiceKind::Task) => {
            w.not_for(
                kind,
                "migration",
                w.own.migration.is_some(),
                p,
                "data jobs run nothing on release",
            );
            None
        }
        (Some(m), _) => {
            let mpath = w.at("migration", |s| s.migration.is_some());
            let family = required(
                m.family.as_deref(),
                &format!("{mpath}.family"),
                "name the task-definition family that runs the migration",
                p,
            );
            let command = m.command.clone().unwrap_or_default();
            if command.is_empty() || command.iter().any(std::string::String::is_empty) {
                p.add(
                    format!("{mpath}.command"),
                    "must be a non-empty list of non-empty arguments, e.g. [\"./migrate\", \"up\"]",
                );
            }
            let mode = migration_mode(m.mode.as_deref(), kind, &mpath, p);
            family.map(|f| Migration {
                family: f.to_string(),
                command,
                container: m.container.clone(),
                mode,
            })
        }
        (None, _) => None,
    }
}

/// `migration.mode`: online unless the file says `stop-first`, which only a rolling
/// service can do.
fn migration_mode(
    mode: Option<&str>,
    kind: ServiceKind,
    mpath: &str,
    p: &mut Problems,
) -> MigrationMode {
    match mode {
        None | Some("online") => MigrationMode::Online,
        Some("stop-first") if kind == ServiceKind::BlueGreen => {
            p.add(
                format!("{mpath}.mode"),
                "\"stop-first\" needs a rolling service: a CodeDeploy blue/green deployment sizes both its task sets from the service's desired count, so bringing the service back up for the new version would bring the old version up beside it; make the migration backward compatible (mode \"online\") or release this service with kind \"rolling\"",
            );
            MigrationMode::Online
        }
        Some("stop-first") => MigrationMode::StopFirst,
        Some(other) => {
            p.add(
                format!("{mpath}.mode"),
                format!("unknown mode \"{other}\"; write \"online\" (the old version serves while it runs) or \"stop-first\" (the service is stopped first)"),
            );
            MigrationMode::Online
        }
    }
}

/// The task-definition families a task service updates.
fn task_families(
    w: &Written<'_>,
    kind: ServiceKind,
    merged: &RawStage,
    p: &mut Problems,
) -> Vec<String> {
    let task_families = merged.task_families.clone().unwrap_or_default();
    if kind == ServiceKind::Task {
        if task_families.is_empty() || task_families.iter().any(std::string::String::is_empty) {
            p.add(
                w.at("task_families", |s| s.task_families.is_some()),
                "missing; list the task-definition families a task service updates",
            );
        }
    } else {
        w.not_for(
            kind,
            "task_families",
            w.own.task_families.is_some(),
            p,
            "only task services update task families; use kind = \"task\"",
        );
    }
    task_families
}

/// `restart_on_release` changed nothing (every release of a rolling service starts new
/// tasks): what a tile server needs is a restart when *another* service's release changes
/// the schema it reads, which that service's `restarts` says.
fn restart_on_release_removed(w: &Written<'_>, p: &mut Problems) {
    if w.own.restart_on_release.is_some()
        || w.defaults
            .as_ref()
            .is_some_and(|(d, _)| d.restart_on_release.is_some())
    {
        p.add(
            w.at("restart_on_release", |s| s.restart_on_release.is_some()),
            format!(
                "restart_on_release was removed: every release of {} already starts new tasks; to restart it when another service is released (a schema it reads on start), remove this line and add `restarts = [\"{}\"]` to that service's environment",
                w.service.trim_start_matches("services."),
                w.service.trim_start_matches("services.")
            ),
        );
    }
}
