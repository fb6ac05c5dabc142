//! Reads the account the pipeline releases through, one resource at a time (each once),
//! and hands what it read to [`super::rules`]. Only Describe/Get calls. This file: the
//! walk over the pipeline and each stage's own resources; `groups.rs`: the CodeDeploy
//! groups; `roles.rs`: their service roles; `wide.rs`: what every environment shares.

mod groups;
mod roles;
mod wide;

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use shiplane::aws::CloudWatchAlarms;
use shiplane::pipeline::{Pipeline, Service, ServiceKind, StageConfig, Target};
use shiplane::sdk::classify;

use super::rules::{At, RoleUse, container_finding, controller_finding};
use super::{Check, Report, Severity};
use crate::diagnose::one_line;

/// What the stack names besides the pipeline: the deploy-hook function and the bake
/// timers' schedule group.
#[derive(Debug, Clone, Copy)]
pub struct Reach<'a> {
    pub hook_function: &'a str,
    pub schedule_group: &'a str,
}

/// What a read found.
enum Lookup<T> {
    Found(T),
    /// AWS says it does not exist; the text says what is missing when it can be two things.
    Missing(&'static str),
    /// AWS did not answer (permission, network): the message, on one line.
    Unreadable(String),
}

impl<T> Lookup<T> {
    /// The outcome of a read, with the error codes that mean "it does not exist".
    fn of<E, R>(
        operation: &str,
        read: Result<T, aws_sdk_ecs::error::SdkError<E, R>>,
        missing: &[(&str, &'static str)],
    ) -> Lookup<T>
    where
        E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match read {
            Ok(v) => Lookup::Found(v),
            Err(e) => {
                let failure = classify(operation, &e);
                match missing
                    .iter()
                    .find(|(code, _)| failure.code.as_deref() == Some(*code))
                {
                    Some((_, what)) => Lookup::Missing(what),
                    None => Lookup::Unreadable(one_line(&failure.message)),
                }
            }
        }
    }
}

/// One account check: the clients, what was read so far, and the report.
pub struct AccountCheck {
    ecr: aws_sdk_ecr::Client,
    ecs: aws_sdk_ecs::Client,
    codedeploy: aws_sdk_codedeploy::Client,
    lambda: aws_sdk_lambda::Client,
    iam: aws_sdk_iam::Client,
    scheduler: aws_sdk_scheduler::Client,
    alarms: CloudWatchAlarms,
    clusters: BTreeMap<String, bool>,
    /// Container names by task definition (family or ARN); `None`: missing or unreadable.
    task_definitions: BTreeMap<String, Option<Vec<String>>>,
    /// The groups' service roles, with the stages with checks each acts for.
    role_uses: roles::RoleUses,
    /// Managed policies' documents by ARN (AWS's are attached to many roles).
    managed_policies: BTreeMap<String, String>,
    /// Lambda aliases' resource policies by alias ARN (`None`: it has none).
    alias_policies: BTreeMap<String, Option<String>>,
    report: Report,
}

impl AccountCheck {
    pub fn new(config: &SdkConfig) -> AccountCheck {
        AccountCheck {
            ecr: aws_sdk_ecr::Client::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
            codedeploy: aws_sdk_codedeploy::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            scheduler: aws_sdk_scheduler::Client::new(config),
            alarms: CloudWatchAlarms::from_config(config),
            clusters: BTreeMap::new(),
            task_definitions: BTreeMap::new(),
            role_uses: roles::RoleUses::new(),
            managed_policies: BTreeMap::new(),
            alias_policies: BTreeMap::new(),
            report: Report::default(),
        }
    }

    /// `shiplane doctor`: everything every stage of `pipeline` needs from the account.
    pub async fn everything(mut self, pipeline: &Pipeline, reach: Reach<'_>) -> Report {
        for service in pipeline.services.values() {
            self.repository(service).await;
            for stage in &service.stages {
                self.stage(service, stage).await;
            }
        }
        self.alarms(pipeline).await;
        self.hook_function(pipeline, reach.hook_function).await;
        self.schedule_group(pipeline, reach.schedule_group).await;
        self.report
    }

    /// `shiplane config apply`: each blue-green stage's deployment group.
    pub async fn groups(mut self, pipeline: &Pipeline) -> Report {
        for service in pipeline.services.values() {
            for stage in &service.stages {
                if let Target::BlueGreen {
                    cluster,
                    service: ecs_service,
                    codedeploy,
                    ..
                } = &stage.target
                {
                    let at = at(service, stage);
                    self.group(at, codedeploy, cluster, ecs_service).await;
                }
            }
        }
        self.report
    }

    async fn stage(&mut self, service: &Service, stage: &StageConfig) {
        let at = at(service, stage);
        match &stage.target {
            Target::BlueGreen {
                cluster,
                service: ecs_service,
                container,
                codedeploy,
                ..
            } => {
                self.ecs_service(at, service.kind, cluster, ecs_service, container)
                    .await;
                let role = self.group(at, codedeploy, cluster, ecs_service).await;
                let hooks: BTreeSet<_> = stage.target.checks().iter().map(|c| c.hook).collect();
                if let Some(role) = role.filter(|_| !hooks.is_empty()) {
                    let used = RoleUse {
                        environment: stage.environment.clone(),
                        service: service.name.clone(),
                        group: format!(
                            "{}/{}",
                            codedeploy.application, codedeploy.deployment_group
                        ),
                        hooks,
                    };
                    self.role_used(&role, used);
                }
            }
            Target::Rolling {
                cluster,
                service: ecs_service,
                container,
                ..
            } => {
                self.ecs_service(at, service.kind, cluster, ecs_service, container)
                    .await;
            }
            Target::Task { families, .. } => {
                for family in families {
                    self.family(at, Check::TaskFamily, family, None).await;
                }
            }
        }
        if let Some(m) = &stage.migration {
            let container = m
                .container
                .as_deref()
                .or_else(|| stage.target.container())
                .unwrap_or_default();
            let setting = format!("{}.migration.container", at.stage_path());
            self.family(at, Check::Migration, &m.family, Some((container, &setting)))
                .await;
        }
    }

    async fn repository(&mut self, service: &Service) {
        let at = At {
            environment: None,
            service: Some(&service.name),
        };
        self.report.looked_at(None);
        let read = self
            .ecr
            .describe_repositories()
            .repository_names(&service.repository)
            .send()
            .await;
        let thing = format!("ECR repository {}", service.repository);
        match Lookup::of("ECR DescribeRepositories", read, &[("RepositoryNotFoundException", "")]) {
            Lookup::Found(_) => {}
            Lookup::Missing(_) => self.report.add(at.finding(
                Severity::Error,
                Check::Repository,
                thing,
                "does not exist: images are pushed to it and releases made from its pushes".into(),
                format!(
                    "aws ecr create-repository --repository-name {} (or fix services.{}.repository)",
                    service.repository, service.name
                ),
            )),
            Lookup::Unreadable(m) => self.unreadable(at, thing, "ecr:DescribeRepositories", m),
        }
    }

    /// Whether the cluster exists (read once a run; reported once per environment).
    async fn cluster(&mut self, at: At<'_>, cluster: &str) -> bool {
        self.report.looked_at(at.environment);
        let found = match self.clusters.get(cluster) {
            Some(found) => *found,
            None => {
                let read = self.ecs.describe_clusters().clusters(cluster).send().await;
                let thing = format!("ECS cluster {cluster}");
                let found = match Lookup::of("ECS DescribeClusters", read, &[]) {
                    Lookup::Found(out) => {
                        out.clusters().iter().any(|c| c.status() == Some("ACTIVE"))
                    }
                    Lookup::Missing(_) => false,
                    Lookup::Unreadable(m) => {
                        self.unreadable(at, thing, "ecs:DescribeClusters", m);
                        return false;
                    }
                };
                self.clusters.insert(cluster.to_string(), found);
                found
            }
        };
        if !found {
            self.report.add(at.finding(
                Severity::Error,
                Check::Cluster,
                format!("ECS cluster {cluster}"),
                "does not exist (or is not ACTIVE): nothing can be deployed there".into(),
                format!(
                    "aws ecs create-cluster --cluster-name {cluster}, or fix {}.cluster",
                    at.stage_path()
                ),
            ));
        }
        found
    }

    /// The ECS service: that it exists, its deployment controller, and the container a
    /// release replaces in its task definition.
    async fn ecs_service(
        &mut self,
        at: At<'_>,
        kind: ServiceKind,
        cluster: &str,
        service: &str,
        container: &str,
    ) {
        if !self.cluster(at, cluster).await {
            return;
        }
        self.report.looked_at(at.environment);
        let read = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await;
        let thing = format!("ECS service {cluster}/{service}");
        let found = match Lookup::of("ECS DescribeServices", read, &[]) {
            Lookup::Found(out) => out
                .services()
                .iter()
                .find(|s| s.status() == Some("ACTIVE"))
                .cloned(),
            Lookup::Missing(_) => None,
            Lookup::Unreadable(m) => {
                return self.unreadable(at, thing, "ecs:DescribeServices", m);
            }
        };
        let Some(found) = found else {
            return self.report.add(at.finding(
                Severity::Error,
                Check::Service,
                thing,
                "does not exist (or is not ACTIVE): a release there fails".into(),
                format!("create it, or fix {}.service", at.stage_path()),
            ));
        };
        let controller = found
            .deployment_controller()
            .map(aws_sdk_ecs::types::DeploymentController::r#type)
            .map(aws_sdk_ecs::types::DeploymentControllerType::as_str);
        if let Some(f) = controller_finding(at, kind, cluster, service, controller) {
            self.report.add(f);
        }
        if let Some(td) = found.task_definition() {
            let setting = format!("services.{}.container", at.service.unwrap_or_default());
            self.family(at, Check::Container, td, Some((container, &setting)))
                .await;
        }
    }

    /// A task definition (a family's newest revision, or an ARN) exists and, when asked,
    /// has the container named.
    async fn family(
        &mut self,
        at: At<'_>,
        check: Check,
        family: &str,
        container: Option<(&str, &str)>,
    ) {
        self.report.looked_at(at.environment);
        let shown = family.rsplit('/').next().unwrap_or(family).to_string();
        let containers = match self.task_definitions.get(family) {
            Some(known) => known.clone(),
            None => {
                let known = self.read_task_definition(at, check, family, &shown).await;
                self.task_definitions
                    .insert(family.to_string(), known.clone());
                known
            }
        };
        if let (Some(containers), Some((name, setting))) = (containers, container) {
            let f = container_finding(at, check, &shown, name, &containers, setting);
            if let Some(f) = f {
                self.report.add(f);
            }
        }
    }

    async fn read_task_definition(
        &mut self,
        at: At<'_>,
        check: Check,
        family: &str,
        shown: &str,
    ) -> Option<Vec<String>> {
        let read = self
            .ecs
            .describe_task_definition()
            .task_definition(family)
            .send()
            .await;
        let thing = format!("task definition {shown}");
        match Lookup::of(
            "ECS DescribeTaskDefinition",
            read,
            &[("ClientException", "")],
        ) {
            Lookup::Found(out) => Some(
                out.task_definition()
                    .map(|td| {
                        td.container_definitions()
                            .iter()
                            .filter_map(|c| c.name().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Lookup::Missing(_) => {
                let setting = match check {
                    Check::Migration => "migration.family",
                    Check::TaskFamily => "task_families",
                    _ => "service",
                };
                self.report.add(at.finding(
                    Severity::Error,
                    check,
                    thing,
                    "does not exist: a release registers its revision from the newest one, and there is none".into(),
                    format!("register the family (aws ecs register-task-definition --family {shown} ...), or fix {}.{setting}", at.stage_path()),
                ));
                None
            }
            Lookup::Unreadable(m) => {
                self.unreadable(at, thing, "ecs:DescribeTaskDefinition", m);
                None
            }
        }
    }

    fn unreadable(&mut self, at: At<'_>, thing: String, action: &str, message: String) {
        self.report.add(at.finding(
            Severity::Error,
            Check::Unreadable,
            thing,
            format!("could not be checked: {message}"),
            format!("let your AWS identity call {action} (doctor only reads; docs/cli.md lists what it calls), or check the region and the network"),
        ));
    }
}

fn at<'a>(service: &'a Service, stage: &'a StageConfig) -> At<'a> {
    At {
        environment: Some(&stage.environment),
        service: Some(&service.name),
    }
}
