//! Starting stages on AWS: task-definition revisions pinned to a digest, CodeDeploy
//! blue/green deployments, ECS rolling updates, and one-off migration tasks.
//!
//! Every operation first looks for its own earlier effect (a revision tagged with the
//! release, an active deployment described as the release's, a task started by it; after
//! a lease ran out, any deployment described as the release's try), so a replay after a
//! crash reuses what exists instead of doing it twice.

use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentError;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentError;
use aws_sdk_codedeploy::types::{
    AppSpecContent, RevisionLocation, RevisionLocationType, TimeRange,
};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_ecs::types::{
    Compatibility, ContainerOverride, DeploymentCircuitBreaker, DeploymentConfiguration,
    DesiredStatus, LaunchType, NetworkMode, Tag, TaskDefinition, TaskDefinitionField, TaskOverride,
};
use futures_util::future::try_join_all;

use super::appspec;
use super::error::DeployError;
pub(super) use super::error::sdk;
use crate::facts::{ContainerExit, TaskStopped};
use crate::pipeline::{
    Check, CodeDeployTarget, LifecycleHook, Service, ServiceKind, StageConfig, Target,
};
use crate::release::{Release, ReleaseId};

const TAG_RELEASE: &str = "shiplane:release";
const TAG_ENVIRONMENT: &str = "shiplane:environment";
const TAG_DIGEST: &str = "shiplane:digest";
/// How far CodeDeploy's clock may be behind the function's when looking for a deployment
/// created since a stage began.
const CLOCK_SKEW_MS: u64 = 5_000;
/// How many of a family's newest revisions a taken-over action looks through for its own.
const EARLIER_REVISIONS: i32 = 10;
/// Attempts at registering a revision, each first looking for one already registered.
const REGISTER_ATTEMPTS: u32 = 5;

/// One release into one stage.
#[derive(Debug, Clone, Copy)]
pub struct DeployRequest<'a> {
    pub release: &'a Release,
    pub service: &'a Service,
    pub stage: &'a StageConfig,
    /// The first effect of a release minted moments ago by the same pass: nothing can have
    /// registered a revision or started a task for it yet, so none is looked for (one
    /// `DescribeTaskDefinition`, or two `ListTasks`, fewer).
    pub fresh: bool,
}

/// What starting a stage produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployOutcome {
    /// A CodeDeploy deployment (blue-green) or an ECS service deployment (rolling) runs.
    Started {
        deployment_id: String,
        task_definition: String,
    },
    /// Revisions registered for data jobs; nothing runs, nothing to wait for.
    Registered { task_definitions: Vec<String> },
    /// The deployment group is busy with a deployment Shiplane did not start.
    Blocked { by: String },
}

/// A deployment as CodeDeploy's GetDeployment describes it; None when CodeDeploy does not
/// know it.
pub(super) async fn deployment_info(
    codedeploy: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<Option<aws_sdk_codedeploy::types::DeploymentInfo>, DeployError> {
    use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentError;
    match codedeploy
        .get_deployment()
        .deployment_id(deployment_id)
        .send()
        .await
    {
        Ok(out) => Ok(out.deployment_info),
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                GetDeploymentError::DeploymentDoesNotExistException(_)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk("CodeDeploy GetDeployment", &e)),
    }
}

/// Where a deployment came from, as GetDeployment describes it ([`Origin`]); None for one
/// someone else made.
pub(super) fn origin_of(info: aws_sdk_codedeploy::types::DeploymentInfo) -> Option<Origin> {
    use aws_sdk_codedeploy::types::DeploymentCreator;
    if info.creator == Some(DeploymentCreator::CodeDeployRollback) {
        return info
            .rollback_info
            .and_then(|r| r.rollback_triggering_deployment_id)
            .map(Origin::RollbackOf);
    }
    let description = info.description.as_deref()?;
    let (release, environment, attempt) = parse_deployment_description(description)?;
    let restore = is_restore_description(description);
    let task_definition = info
        .revision
        .and_then(|r| r.app_spec_content)
        .and_then(|a| a.content)
        .and_then(|c| appspec::task_definition_of(&c));
    Some(Origin::Release {
        release,
        environment,
        attempt,
        task_definition,
        restore,
    })
}

/// Where a migration task is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationRun {
    /// Started (now or by an earlier attempt) and not stopped yet.
    Running { task_arn: String },
    /// Already stopped: how it ended.
    Stopped(TaskStopped),
    /// ECS no longer knows the task (stopped tasks are forgotten after about an hour).
    Missing,
}

/// Where a deployment is, as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentStatus {
    InProgress,
    Succeeded,
    /// Failed, stopped or rolled back, with why.
    Failed(String),
    /// AWS does not know it.
    Unknown,
    /// A rolling service's newer deployment replaced it (or ECS no longer lists it): what
    /// it deployed no longer runs, whatever its rollout reached.
    Replaced,
}

/// The port the engine starts, stops and inspects stages through.
pub trait Deployer: Send + Sync {
    /// Registers the revision pinned to the release's digest and starts the stage's
    /// deployment (by service kind). Idempotent per release and environment.
    fn deploy(
        &self,
        req: DeployRequest<'_>,
    ) -> impl Future<Output = Result<DeployOutcome, DeployError>> + Send;

    /// Reads ahead, changing nothing, what `deploy(req)` reads before it acts (the ECS
    /// service, its task definition and the family's latest revision), so that the engine
    /// overlaps those reads with the commit that decides to deploy. The next `deploy` of the
    /// same release, environment and attempt uses them, once. Best effort: a failed read is
    /// simply made again by `deploy`.
    fn prefetch(&self, req: DeployRequest<'_>) -> impl Future<Output = ()> + Send {
        let _ = req;
        std::future::ready(())
    }

    /// Starts the one-off migration task with the release's image, once per release and
    /// environment: a task already started for them (running or stopped) is returned, and
    /// RunTask's client token makes two concurrent attempts start one task.
    fn run_migration(
        &self,
        req: DeployRequest<'_>,
    ) -> impl Future<Output = Result<MigrationRun, DeployError>> + Send;

    /// Where a migration task started for this release and environment is now.
    fn migration_status(
        &self,
        req: DeployRequest<'_>,
        task_arn: &str,
    ) -> impl Future<Output = Result<MigrationRun, DeployError>> + Send;

    /// Where a deployment of this stage is now.
    fn deployment_status(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
    ) -> impl Future<Output = Result<DeploymentStatus, DeployError>> + Send;

    /// Stops a deployment; with `rollback`, CodeDeploy routes traffic back. Stopping one
    /// that already completed is not an error.
    fn stop_deployment(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
        rollback: bool,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;

    /// Who made a deployment Shiplane holds no reference to, from CodeDeploy's
    /// GetDeployment; None for one someone else made, and for one CodeDeploy does not know.
    fn origin(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<Origin>, DeployError>> + Send;

    /// The release an ECS service deployment Shiplane holds no reference to deploys, by
    /// the tags of its task-definition revision (DescribeServices, DescribeTaskDefinition);
    /// None for a revision Shiplane did not register, or a deployment ECS no longer lists.
    fn ecs_origin(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<Tagged>, DeployError>> + Send;
}

/// A task-definition revision Shiplane registered, by its tags ([`Deployer::ecs_origin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub release: ReleaseId,
    pub environment: String,
    pub task_definition: String,
}

/// Where a deployment Shiplane holds no reference to came from ([`Deployer::origin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// CodeDeploy's automatic rollback of the deployment named (`creator` is
    /// `codeDeployRollback`, and `rollbackInfo.rollbackTriggeringDeploymentId` names it).
    /// CodeDeploy's state-change events carry no rollback flag: a rollback is a new
    /// deployment, told only by this.
    RollbackOf(String),
    /// Shiplane made it for this release, environment and attempt (its description
    /// says so), deploying this revision (its AppSpec's), and the invocation that made it
    /// died before recording it.
    Release {
        release: ReleaseId,
        environment: String,
        attempt: u32,
        task_definition: Option<String>,
        /// It restores the last known good (its description names a restore try): a
        /// hook answers it Succeeded even when the store cannot be read.
        restore: bool,
    },
}

/// The revision this attempt of the release already deployed here, recorded with its
/// deployment: a restore deploys exactly it again (the family's latest may be a newer
/// release's by then, and registering another would leave two revisions per release).
pub fn pinned_revision<'a>(req: &DeployRequest<'a>) -> Option<&'a str> {
    req.release
        .stages
        .get(&req.stage.environment)
        .and_then(|s| s.task_definition.as_deref())
}

/// Which attempt at a stage this is (0 the first; `shiplane retry` counts up): every
/// effect an attempt leaves in AWS is named with it, so a retry starts afresh.
fn attempt(release: &Release, environment: &str) -> u32 {
    release.stages.get(environment).map_or(0, |s| s.attempt)
}

/// The `startedBy` Shiplane gives a release's migration task: `shiplane/<release>/<env>`
/// (and `/<attempt>` for a retry; at most 110 of the 128 characters ECS allows), so a
/// task's stop event names its release and environment even if the function died before
/// it recorded the task's ARN.
pub fn started_by(release: &Release, environment: &str) -> String {
    match attempt(release, environment) {
        0 => format!("shiplane/{}/{environment}", release.id),
        n => format!("shiplane/{}/{environment}/{n}", release.id),
    }
}

/// The release, environment and attempt a `startedBy` of [`started_by`] names; None for
/// any other.
pub fn parse_started_by(started_by: &str) -> Option<(ReleaseId, String, u32)> {
    let rest = started_by.strip_prefix("shiplane/")?;
    let mut parts = rest.split('/');
    let id = ReleaseId::parse(parts.next()?).ok()?;
    let env = parts.next().filter(|e| !e.is_empty())?;
    let attempt = match parts.next() {
        None => 0,
        Some(n) => n.parse().ok().filter(|n| *n > 0)?,
    };
    parts
        .next()
        .is_none()
        .then(|| (id, env.to_string(), attempt))
}

/// RunTask's idempotency token for a release's migration in one environment and attempt
/// (at most the 64 characters ECS allows): a retried or concurrent RunTask starts no
/// second task.
pub fn client_token(release: &Release, environment: &str) -> String {
    let suffix = match attempt(release, environment) {
        0 => String::new(),
        n => format!("-{n}"),
    };
    let token = format!("{}-{environment}{suffix}", release.id);
    if token.len() <= 64 {
        return token;
    }
    // FNV-1a of the environment name: stable across processes and versions.
    let hash = environment.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{}-{hash:016x}{suffix}", release.id)
}

/// The description Shiplane gives a release's CodeDeploy deployment; how it finds its own.
/// It names the attempt and, for a restore of the last known good, which try at the
/// restore this is: each names one deployment, so one found by it is this try's.
pub fn deployment_description(release: &Release, environment: &str) -> String {
    let label: String = release.label().chars().take(40).collect();
    let mut description = format!("shiplane release {} ({label}) to {environment}", release.id);
    let stage = release.stages.get(environment);
    if let Some(n) = stage.map(|s| s.attempt).filter(|n| *n > 0) {
        description.push_str(&format!(", attempt {n}"));
    }
    if let Some(stage) = stage.filter(|s| s.redeploy) {
        description.push_str(&format!(", restore {}", stage.restore_failures + 1));
    }
    description
}

/// The release, environment and attempt a deployment description of Shiplane's names;
/// None for a deployment someone else made.
pub fn parse_deployment_description(description: &str) -> Option<(ReleaseId, String, u32)> {
    let rest = description.strip_prefix("shiplane release ")?;
    let (id, rest) = rest.split_once(' ')?;
    let (_, rest) = rest.rsplit_once(") to ")?;
    let mut parts = rest.split(", ");
    let env = parts.next().filter(|e| !e.is_empty() && !e.contains(' '))?;
    let mut attempt = 0;
    for part in parts {
        match part.split_once(' ') {
            Some(("attempt", n)) => attempt = n.parse().ok()?,
            Some(("restore", n)) => _ = n.parse::<u32>().ok()?,
            _ => return None,
        }
    }
    let id = ReleaseId::parse(id).ok()?;
    Some((id, env.to_string(), attempt))
}

/// Whether a description of [`deployment_description`]'s names a restore of the last
/// known good (`…, restore N`).
pub fn is_restore_description(description: &str) -> bool {
    parse_deployment_description(description).is_some()
        && description
            .rsplit(", ")
            .next()
            .is_some_and(|last| last.starts_with("restore "))
}

/// `registry/repo:tag` or `registry/repo@sha256:…` → `registry/repo`.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(colon) if colon > no_digest.rfind('/').unwrap_or(0) => &no_digest[..colon],
        _ => no_digest,
    }
}

/// An ECS service as it is now (an inactive one of the same name does not count).
pub(crate) async fn ecs_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<aws_sdk_ecs::types::Service, DeployError> {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| sdk("ECS DescribeServices", &e))?;
    out.services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() != Some("INACTIVE"))
        .ok_or_else(|| {
            DeployError::permanent(format!(
                "ECS service {service} not found in cluster {cluster}; check the pipeline's cluster and service"
            ))
        })
}

/// Which containers of a task definition get the release's image.
#[derive(Debug, Clone, Copy)]
enum Pick<'a> {
    Named(&'a str),
    /// Every container running an image of this repository (data jobs).
    Repository(&'a str),
}

impl Pick<'_> {
    fn matches(&self, name: Option<&str>, image: Option<&str>) -> bool {
        match self {
            Pick::Named(n) => name == Some(*n),
            Pick::Repository(repo) => image.is_some_and(|i| {
                let r = image_repository(i);
                r == *repo || r.ends_with(&format!("/{repo}"))
            }),
        }
    }
}

/// What a service deployment reads before it acts: the ECS service, the task definition
/// it runs (the base of the next revision) and its family's latest revision with tags.
#[derive(Debug, Clone)]
struct Revisions {
    service: aws_sdk_ecs::types::Service,
    base: TaskDefinition,
    latest: Option<(TaskDefinition, Vec<Tag>)>,
}

/// Reads made ahead by [`Deployer::prefetch`] kept at most, by release, environment and
/// attempt; each is used once, and only while it is fresh (the commit it overlaps takes
/// milliseconds; one whose deploy never came must not be used minutes later).
const PREFETCHED: usize = 4;
const PREFETCH_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// The ARN of a family's latest revision (with its tags) when it is the one registered for
/// `release` in `environment`: what a replay reuses instead of registering another.
fn registered_for(
    (latest, tags): (TaskDefinition, Vec<Tag>),
    release: &Release,
    environment: &str,
) -> Option<Result<String, DeployError>> {
    let tagged = |k: &str, v: &str| {
        tags.iter()
            .any(|t| t.key() == Some(k) && t.value() == Some(v))
    };
    (tagged(TAG_RELEASE, release.id.as_str()) && tagged(TAG_ENVIRONMENT, environment)).then(|| {
        latest.task_definition_arn.ok_or_else(|| {
            DeployError::permanent(format!(
                "latest revision of {} has no ARN",
                latest.family.as_deref().unwrap_or("?")
            ))
        })
    })
}

/// The family of a task definition ARN (`…:task-definition/<family>:<revision>`) or of a
/// `<family>:<revision>` name.
fn family_of(task_definition: &str) -> Option<&str> {
    let name = task_definition.rsplit('/').next()?;
    let (family, revision) = name.rsplit_once(':')?;
    (!family.is_empty() && revision.parse::<u32>().is_ok()).then_some(family)
}

/// The production [`Deployer`]: ECS and CodeDeploy through the AWS SDK.
#[derive(Clone, Debug)]
pub struct AwsDeployer {
    ecs: crate::sdk::OnFirstUse<aws_sdk_ecs::Client>,
    codedeploy: crate::sdk::OnFirstUse<aws_sdk_codedeploy::Client>,
    hook_function: String,
    prefetched: Arc<Mutex<Vec<(String, std::time::Instant, Revisions)>>>,
}

/// The key a prefetch is kept under: one attempt of one release in one environment.
fn prefetch_key(release: &Release, environment: &str) -> String {
    format!(
        "{}@{environment}#{}",
        release.id,
        attempt(release, environment)
    )
}

impl AwsDeployer {
    /// `hook_function` is the deploy-hook Lambda named in every AppSpec.
    pub fn new(
        ecs: impl Into<crate::sdk::OnFirstUse<aws_sdk_ecs::Client>>,
        codedeploy: impl Into<crate::sdk::OnFirstUse<aws_sdk_codedeploy::Client>>,
        hook_function: impl Into<String>,
    ) -> AwsDeployer {
        AwsDeployer {
            ecs: ecs.into(),
            codedeploy: codedeploy.into(),
            hook_function: hook_function.into(),
            prefetched: Arc::default(),
        }
    }

    fn prefetched(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<(String, std::time::Instant, Revisions)>> {
        self.prefetched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reads `req`'s deployment starts with: made ahead by `prefetch` (taken, once),
    /// else made now.
    async fn revisions_for(
        &self,
        req: &DeployRequest<'_>,
        cluster: &str,
        service: &str,
    ) -> Result<Revisions, DeployError> {
        let key = prefetch_key(req.release, &req.stage.environment);
        let ahead = {
            let mut kept = self.prefetched();
            kept.iter()
                .position(|(k, _, _)| *k == key)
                .map(|i| kept.remove(i))
                .filter(|(_, at, _)| at.elapsed() <= PREFETCH_FRESH)
                .map(|(_, _, revisions)| revisions)
        };
        match ahead {
            Some(revisions) => Ok(revisions),
            None => self.revisions(cluster, service, req.fresh).await,
        }
    }

    /// The ECS service, the task definition it runs, and (at the same time as that one)
    /// its family's latest revision, unless `fresh` (none can be this release's yet).
    async fn revisions(
        &self,
        cluster: &str,
        service: &str,
        fresh: bool,
    ) -> Result<Revisions, DeployError> {
        let current = self.ecs_service(cluster, service).await?;
        let arn = current.task_definition.clone().ok_or_else(|| {
            DeployError::permanent(format!("ECS service {service} has no task definition"))
        })?;
        let (base, latest) = match family_of(&arn) {
            Some(family) if !fresh => {
                let (base, latest) =
                    tokio::join!(self.task_definition(&arn), self.task_definition(family));
                (base?.0, Some(latest?))
            }
            _ => (self.task_definition(&arn).await?.0, None),
        };
        Ok(Revisions {
            service: current,
            base,
            latest,
        })
    }

    async fn ecs_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<aws_sdk_ecs::types::Service, DeployError> {
        ecs_service(&self.ecs, cluster, service).await
    }

    async fn task_definition(
        &self,
        arn_or_family: &str,
    ) -> Result<(TaskDefinition, Vec<Tag>), DeployError> {
        let out = self
            .ecs
            .describe_task_definition()
            .task_definition(arn_or_family)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| sdk("ECS DescribeTaskDefinition", &e))?;
        let td = out.task_definition.ok_or_else(|| {
            DeployError::permanent(format!("task definition {arn_or_family} not found"))
        })?;
        Ok((td, out.tags.unwrap_or_default()))
    }

    /// The revision an earlier run of this stage's action registered, when another
    /// release registered one of the same family since (a migration family shared by the
    /// environments): looked for among the family's newest [`EARLIER_REVISIONS`] only
    /// when the action was taken over after its lease ran out ([`Stage::resumed`]).
    ///
    /// [`Stage::resumed`]: crate::release::Stage::resumed
    async fn earlier_revision(
        &self,
        family: &str,
        req: &DeployRequest<'_>,
    ) -> Result<Option<String>, DeployError> {
        let resumed = req
            .release
            .stages
            .get(&req.stage.environment)
            .is_some_and(|s| s.resumed > 0);
        if !resumed {
            return Ok(None);
        }
        let listed = self
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .sort(aws_sdk_ecs::types::SortOrder::Desc)
            .max_results(EARLIER_REVISIONS)
            .send()
            .await
            .map_err(|e| sdk("ECS ListTaskDefinitions", &e))?;
        for arn in listed.task_definition_arns() {
            // The prefix also matches longer family names (`api` lists `api-migrate`).
            if family_of(arn) != Some(family) {
                continue;
            }
            if let Some(ours) = registered_for(
                self.task_definition(arn).await?,
                req.release,
                &req.stage.environment,
            ) {
                return ours.map(Some);
            }
        }
        Ok(None)
    }

    /// The revision of `base`'s family pinned to the release's digest: the latest one
    /// (given, else read) if it is already this release's, else a new one equal to `base`
    /// but for the image.
    async fn ensure_revision(
        &self,
        base: &TaskDefinition,
        latest: Option<(TaskDefinition, Vec<Tag>)>,
        pick: Pick<'_>,
        req: DeployRequest<'_>,
    ) -> Result<String, DeployError> {
        let family = base
            .family
            .as_deref()
            .ok_or_else(|| DeployError::permanent("task definition without a family"))?;
        let env = req.stage.environment.as_str();
        if !req.fresh {
            let latest = match latest {
                Some(latest) if latest.0.family.as_deref() == Some(family) => latest,
                _ => self.task_definition(family).await?,
            };
            if let Some(ours) = registered_for(latest, req.release, env) {
                return ours;
            }
            if let Some(ours) = self.earlier_revision(family, &req).await? {
                return Ok(ours);
            }
        }
        if req.release.registry.is_empty() {
            return Err(DeployError::permanent(format!(
                "release {} has no registry; cannot name its image by digest",
                req.release.id
            )));
        }
        let image = req.release.image_ref();
        let mut containers = base.container_definitions.clone().unwrap_or_default();
        let mut replaced = 0;
        for c in &mut containers {
            if pick.matches(c.name.as_deref(), c.image.as_deref()) {
                c.image = Some(image.clone());
                replaced += 1;
            }
        }
        if replaced == 0 {
            return Err(DeployError::permanent(match pick {
                Pick::Named(n) => format!(
                    "task definition family {family} has no container named {n}; fix services.{}.container",
                    req.service.name
                ),
                Pick::Repository(r) => format!(
                    "task definition family {family} has no container running an image of {r}"
                ),
            }));
        }
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        // RegisterTaskDefinition is not idempotent: when its answer is lost, a blind retry
        // registers a second revision. So the SDK does not retry it; each attempt here
        // looks for this release's revision first.
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            if attempt > 1
                && let Some(ours) =
                    registered_for(self.task_definition(family).await?, req.release, env)
            {
                return ours;
            }
            let sent = self
                .ecs
                .register_task_definition()
                .set_family(base.family.clone())
                .set_task_role_arn(base.task_role_arn.clone())
                .set_execution_role_arn(base.execution_role_arn.clone())
                .set_network_mode(base.network_mode.clone())
                .set_container_definitions(Some(containers.clone()))
                .set_volumes(base.volumes.clone())
                .set_placement_constraints(base.placement_constraints.clone())
                .set_requires_compatibilities(base.requires_compatibilities.clone())
                .set_cpu(base.cpu.clone())
                .set_memory(base.memory.clone())
                .set_pid_mode(base.pid_mode.clone())
                .set_ipc_mode(base.ipc_mode.clone())
                .set_proxy_configuration(base.proxy_configuration.clone())
                .set_ephemeral_storage(base.ephemeral_storage.clone())
                .set_runtime_platform(base.runtime_platform.clone())
                .set_enable_fault_injection(base.enable_fault_injection)
                .tags(tag(TAG_RELEASE, req.release.id.as_str()))
                .tags(tag(TAG_ENVIRONMENT, env))
                .tags(tag(TAG_DIGEST, req.release.digest.as_str()))
                .customize()
                .config_override(
                    aws_sdk_ecs::config::Config::builder()
                        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled()),
                )
                .send()
                .await;
            match sent {
                Ok(out) => break out,
                Err(e) => {
                    let e = sdk("ECS RegisterTaskDefinition", &e);
                    if !e.retryable || attempt >= REGISTER_ATTEMPTS {
                        return Err(e);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        };
        out.task_definition
            .and_then(|td| td.task_definition_arn)
            .ok_or_else(|| DeployError::permanent("RegisterTaskDefinition returned no ARN"))
    }

    /// The ECS service a migration runs beside (its cluster, and its network for awsvpc).
    fn migration_home<'a>(req: &DeployRequest<'a>) -> Result<(&'a str, &'a str), DeployError> {
        req.stage.target.ecs_service().ok_or_else(|| {
            DeployError::permanent(format!(
                "services.{} is a task service; data jobs run no migration",
                req.service.name
            ))
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn blue_green(
        &self,
        req: DeployRequest<'_>,
        cluster: &str,
        service: &str,
        container: &str,
        port: u16,
        target: &CodeDeployTarget,
        checks: &[Check],
    ) -> Result<DeployOutcome, DeployError> {
        let revisions = self.revisions_for(&req, cluster, service).await?;
        let task_definition = match pinned_revision(&req) {
            Some(pinned) => pinned.to_string(),
            None => {
                self.ensure_revision(
                    &revisions.base,
                    revisions.latest,
                    Pick::Named(container),
                    req,
                )
                .await?
            }
        };

        let hooks: Vec<LifecycleHook> = checks.iter().map(|c| c.hook).collect();
        let spec = appspec(
            &task_definition,
            container,
            port,
            &hooks,
            &self.hook_function,
        );
        let description = deployment_description(req.release, &req.stage.environment);
        if let Some(deployment_id) = self.earlier_deployment(&req, target, &description).await? {
            return Ok(DeployOutcome::Started {
                deployment_id,
                task_definition,
            });
        }
        let result = self
            .codedeploy
            .create_deployment()
            .application_name(&target.application)
            .deployment_group_name(&target.deployment_group)
            .deployment_config_name(&target.deployment_config)
            .description(&description)
            .revision(
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::AppSpecContent)
                    .app_spec_content(AppSpecContent::builder().content(spec.to_string()).build())
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(out) => Ok(DeployOutcome::Started {
                deployment_id: out.deployment_id.ok_or_else(|| {
                    DeployError::permanent("CreateDeployment returned no deployment id")
                })?,
                task_definition,
            }),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    CreateDeploymentError::DeploymentLimitExceededException(_)
                ) =>
            {
                let message = e.err().to_string();
                // "The Deployment Group 'g' already has an active Deployment 'd-XXXX'"
                let active = message.rsplit('\'').nth(1).unwrap_or_default().to_string();
                let theirs = self
                    .codedeploy
                    .get_deployment()
                    .deployment_id(&active)
                    .send()
                    .await
                    .map_err(|e| sdk("CodeDeploy GetDeployment", &e))?;
                // Ours if it deploys this attempt of the release here, whichever try at a
                // restore made it: every try deploys the same pinned revision.
                let ours = theirs
                    .deployment_info
                    .and_then(|d| d.description)
                    .and_then(|d| parse_deployment_description(&d))
                    == parse_deployment_description(&description);
                if ours {
                    Ok(DeployOutcome::Started {
                        deployment_id: active,
                        task_definition,
                    })
                } else {
                    Ok(DeployOutcome::Blocked { by: active })
                }
            }
            Err(e) => Err(sdk("CodeDeploy CreateDeployment", &e)),
        }
    }

    /// The deployment an earlier run of this stage's action created, found by its
    /// description among those created in the group since the stage began: only when the
    /// action was taken over after its lease ran out ([`Stage::resumed`]), since only then
    /// can one exist unrecorded (it may have ended already, so CreateDeployment would not
    /// refuse a second).
    ///
    /// [`Stage::resumed`]: crate::release::Stage::resumed
    async fn earlier_deployment(
        &self,
        req: &DeployRequest<'_>,
        target: &CodeDeployTarget,
        description: &str,
    ) -> Result<Option<String>, DeployError> {
        let Some(stage) = req
            .release
            .stages
            .get(&req.stage.environment)
            .filter(|s| s.resumed > 0)
        else {
            return Ok(None);
        };
        // CodeDeploy's clock and the function's may differ by a little.
        let since = aws_sdk_codedeploy::primitives::DateTime::from_millis(
            stage.since.0.saturating_sub(CLOCK_SKEW_MS) as i64,
        );
        let mut pages = self
            .codedeploy
            .list_deployments()
            .application_name(&target.application)
            .deployment_group_name(&target.deployment_group)
            .create_time_range(TimeRange::builder().start(since).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let ids = page
                .map_err(|e| sdk("CodeDeploy ListDeployments", &e))?
                .deployments
                .unwrap_or_default();
            for chunk in ids.chunks(25) {
                let out = self
                    .codedeploy
                    .batch_get_deployments()
                    .set_deployment_ids(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| sdk("CodeDeploy BatchGetDeployments", &e))?;
                let ours = out
                    .deployments_info
                    .unwrap_or_default()
                    .into_iter()
                    .find(|d| d.description.as_deref() == Some(description));
                if let Some(id) = ours.and_then(|d| d.deployment_id) {
                    tracing::info!(deployment = %id, release = %req.release.id, environment = %req.stage.environment, "found the deployment an earlier run of this stage created");
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }

    async fn rolling(
        &self,
        req: DeployRequest<'_>,
        cluster: &str,
        service: &str,
        container: &str,
        restart_on_release: bool,
    ) -> Result<DeployOutcome, DeployError> {
        let Revisions {
            service: current,
            base,
            latest,
        } = self.revisions_for(&req, cluster, service).await?;
        let task_definition = match pinned_revision(&req) {
            Some(pinned) => pinned.to_string(),
            None => {
                self.ensure_revision(&base, latest, Pick::Named(container), req)
                    .await?
            }
        };
        let primary = |s: &aws_sdk_ecs::types::Service| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
                .and_then(|d| d.id().map(str::to_string))
        };
        let ended = req
            .release
            .stages
            .get(&req.stage.environment)
            .map_or(&[][..], |s| s.ended.as_slice());
        let mut force = restart_on_release;
        if current.task_definition.as_deref() == Some(task_definition.as_str()) {
            let adopted = primary(&current).unwrap_or_else(|| task_definition.clone());
            if !ended.contains(&adopted) {
                // Already updated by an earlier attempt: adopt its deployment.
                return Ok(DeployOutcome::Started {
                    deployment_id: adopted,
                    task_definition,
                });
            }
            // The stage gave that deployment up (a late one was recorded after it, and
            // may have replaced it): a new one is made, whose outcome is news.
            force = true;
        }
        let out = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(&task_definition)
            .force_new_deployment(force)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(true)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk("ECS UpdateService", &e))?;
        let deployment_id = out
            .service
            .as_ref()
            .and_then(primary)
            .unwrap_or_else(|| task_definition.clone());
        Ok(DeployOutcome::Started {
            deployment_id,
            task_definition,
        })
    }

    async fn data_jobs(
        &self,
        req: DeployRequest<'_>,
        families: &[String],
    ) -> Result<DeployOutcome, DeployError> {
        // Every family at once: each reads its latest, which is both the base and the
        // revision to reuse if it is ours, then registers.
        let task_definitions = try_join_all(families.iter().map(|family| async move {
            let (base, tags) = self.task_definition(family).await?;
            let latest = Some((base.clone(), tags));
            let pick = Pick::Repository(&req.release.repository);
            self.ensure_revision(&base, latest, pick, req).await
        }))
        .await?;
        Ok(DeployOutcome::Registered { task_definitions })
    }
}

impl Deployer for AwsDeployer {
    async fn prefetch(&self, req: DeployRequest<'_>) {
        let Some((cluster, service)) = req.stage.target.ecs_service() else {
            return; // data jobs: nothing worth reading ahead
        };
        if let Ok(revisions) = self.revisions(cluster, service, req.fresh).await {
            let key = prefetch_key(req.release, &req.stage.environment);
            let mut kept = self.prefetched();
            kept.retain(|(k, at, _)| *k != key && at.elapsed() <= PREFETCH_FRESH);
            if kept.len() >= PREFETCHED {
                kept.remove(0);
            }
            kept.push((key, std::time::Instant::now(), revisions));
        }
    }

    async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
        match &req.stage.target {
            Target::BlueGreen {
                cluster,
                service,
                container,
                port,
                codedeploy,
                checks,
            } => {
                self.blue_green(req, cluster, service, container, *port, codedeploy, checks)
                    .await
            }
            Target::Rolling {
                cluster,
                service,
                container,
                restart_on_release,
            } => {
                self.rolling(req, cluster, service, container, *restart_on_release)
                    .await
            }
            Target::Task { families } => self.data_jobs(req, families).await,
        }
    }

    async fn run_migration(&self, req: DeployRequest<'_>) -> Result<MigrationRun, DeployError> {
        let Some(migration) = req.stage.migration.as_ref() else {
            return Err(DeployError::permanent(format!(
                "services.{}.environments.{} has no migration",
                req.service.name, req.stage.environment
            )));
        };
        let (cluster, service) = Self::migration_home(&req)?;
        let started_by = started_by(req.release, &req.stage.environment);
        let list = |status: DesiredStatus| {
            self.ecs
                .list_tasks()
                .cluster(cluster)
                .started_by(&started_by)
                .desired_status(status)
                .send()
        };
        // A task an earlier attempt started (running or stopped), and the family the task
        // runs, asked at once; a fresh release has no earlier attempt to ask about.
        let earlier = async {
            if req.fresh {
                return (None, None);
            }
            let (running, stopped) =
                tokio::join!(list(DesiredStatus::Running), list(DesiredStatus::Stopped));
            (Some(running), Some(stopped))
        };
        let ((running, stopped), family) =
            tokio::join!(earlier, self.task_definition(&migration.family));
        for listed in [running, stopped].into_iter().flatten() {
            let out = listed.map_err(|e| sdk("ECS ListTasks", &e))?;
            if let Some(arn) = out.task_arns.unwrap_or_default().into_iter().next() {
                // Started by an earlier attempt: adopt it, with its exit if it stopped.
                return self.task(cluster, &arn).await;
            }
        }

        // The family's latest is both the base and the revision to reuse if it is ours.
        let (base, tags) = family?;
        let latest = Some((base.clone(), tags));
        let container = migration
            .container
            .as_deref()
            .or(req.stage.target.container());
        let pick = match container {
            Some(name) => Pick::Named(name),
            None => Pick::Repository(&req.release.repository),
        };
        let container_name = base
            .container_definitions()
            .iter()
            .find(|c| pick.matches(c.name.as_deref(), c.image.as_deref()))
            .and_then(|c| c.name.clone())
            .ok_or_else(|| {
                DeployError::permanent(format!(
                    "migration family {} has no container for the release's image",
                    migration.family
                ))
            })?;
        let task_definition = self.ensure_revision(&base, latest, pick, req).await?;
        let network = if base.network_mode == Some(NetworkMode::Awsvpc) {
            // The migration joins the service's network.
            self.ecs_service(cluster, service)
                .await?
                .network_configuration
        } else {
            None
        };
        let out = self
            .ecs
            .run_task()
            .cluster(cluster)
            .task_definition(&task_definition)
            .count(1)
            .started_by(&started_by)
            .client_token(client_token(req.release, &req.stage.environment))
            // A family made for Fargate runs there; otherwise the cluster's default applies.
            .set_launch_type(
                base.requires_compatibilities()
                    .contains(&Compatibility::Fargate)
                    .then_some(LaunchType::Fargate),
            )
            .set_network_configuration(network)
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name(container_name)
                            .set_command(Some(migration.command.clone()))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk("ECS RunTask", &e))?;
        if let Some(task) = out.tasks().first() {
            return Ok(task_run(task));
        }
        let reasons: Vec<String> = out
            .failures()
            .iter()
            .map(|f| format!("{}: {}", f.arn().unwrap_or("?"), f.reason().unwrap_or("?")))
            .collect();
        Err(DeployError {
            message: format!("ECS RunTask started no task: {}", reasons.join("; ")),
            retryable: true,
        })
    }

    async fn migration_status(
        &self,
        req: DeployRequest<'_>,
        task_arn: &str,
    ) -> Result<MigrationRun, DeployError> {
        let (cluster, _) = Self::migration_home(&req)?;
        self.task(cluster, task_arn).await
    }

    async fn deployment_status(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
    ) -> Result<DeploymentStatus, DeployError> {
        match &req.stage.target {
            Target::BlueGreen { .. } => {
                let out = self
                    .codedeploy
                    .get_deployment()
                    .deployment_id(deployment_id)
                    .send()
                    .await
                    .map_err(|e| sdk("CodeDeploy GetDeployment", &e))?;
                let Some(info) = out.deployment_info else {
                    return Ok(DeploymentStatus::Unknown);
                };
                // CodeDeploy's reason when it gives one; never a sentence ending in a colon.
                let why = info
                    .error_information
                    .as_ref()
                    .and_then(|e| e.message.as_deref())
                    .filter(|m| !m.trim().is_empty())
                    .map_or_else(|| " (no reason given)".to_string(), |m| format!(": {m}"));
                use aws_sdk_codedeploy::types::DeploymentStatus as S;
                Ok(match info.status {
                    Some(S::Succeeded) => DeploymentStatus::Succeeded,
                    Some(S::Failed) => DeploymentStatus::Failed(format!(
                        "CodeDeploy deployment {deployment_id} failed{why}"
                    )),
                    Some(S::Stopped) => DeploymentStatus::Failed(format!(
                        "CodeDeploy deployment {deployment_id} was stopped{why}"
                    )),
                    Some(_) => DeploymentStatus::InProgress,
                    None => DeploymentStatus::Unknown,
                })
            }
            Target::Rolling {
                cluster, service, ..
            } => {
                let current = self.ecs_service(cluster, service).await?;
                let Some(d) = current
                    .deployments()
                    .iter()
                    .find(|d| d.id() == Some(deployment_id))
                else {
                    // ECS lists the PRIMARY deployment and those it drains; one it
                    // dropped was replaced long ago.
                    return Ok(DeploymentStatus::Replaced);
                };
                use aws_sdk_ecs::types::DeploymentRolloutState as R;
                Ok(match d.rollout_state() {
                    Some(R::Failed) => DeploymentStatus::Failed(format!(
                        "ECS deployment {deployment_id} failed: {}",
                        d.rollout_state_reason().unwrap_or_default()
                    )),
                    // A completed deployment that is no longer PRIMARY was replaced.
                    _ if d.status() != Some("PRIMARY") => DeploymentStatus::Replaced,
                    Some(R::Completed) => DeploymentStatus::Succeeded,
                    _ => DeploymentStatus::InProgress,
                })
            }
            Target::Task { .. } => Ok(DeploymentStatus::Succeeded),
        }
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, DeployError> {
        Ok(deployment_info(&self.codedeploy, deployment_id)
            .await?
            .and_then(origin_of))
    }

    async fn ecs_origin(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> Result<Option<Tagged>, DeployError> {
        let found = ecs_service(&self.ecs, cluster, service)
            .await?
            .deployments
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.id.as_deref() == Some(deployment_id))
            .and_then(|d| d.task_definition);
        let Some(arn) = found else {
            return Ok(None);
        };
        let (_, tags) = self.task_definition(&arn).await?;
        let tag = |k: &str| {
            tags.iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let (Some(release), Some(environment)) = (tag(TAG_RELEASE), tag(TAG_ENVIRONMENT)) else {
            return Ok(None);
        };
        Ok(ReleaseId::parse(&release).ok().map(|release| Tagged {
            release,
            environment,
            task_definition: arn,
        }))
    }

    async fn stop_deployment(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
        rollback: bool,
    ) -> Result<(), DeployError> {
        if req.service.kind != ServiceKind::BlueGreen {
            return Err(DeployError::permanent(format!(
                "ECS deployment {deployment_id} of a {} service is not stopped by Shiplane; its circuit breaker rolls a failure back, or update the service by hand",
                req.service.kind.as_str()
            )));
        }
        match self
            .codedeploy
            .stop_deployment()
            .deployment_id(deployment_id)
            .auto_rollback_enabled(rollback)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    StopDeploymentError::DeploymentAlreadyCompletedException(_)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk("CodeDeploy StopDeployment", &e)),
        }
    }
}

impl AwsDeployer {
    /// A task by ARN: running, or stopped with every container's exit.
    async fn task(&self, cluster: &str, task_arn: &str) -> Result<MigrationRun, DeployError> {
        let out = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(task_arn)
            .send()
            .await
            .map_err(|e| sdk("ECS DescribeTasks", &e))?;
        Ok(out.tasks().first().map_or(MigrationRun::Missing, task_run))
    }
}

/// Where a task described by ECS is.
fn task_run(task: &aws_sdk_ecs::types::Task) -> MigrationRun {
    let task_arn = task.task_arn().unwrap_or_default().to_string();
    if task.last_status() != Some("STOPPED") {
        return MigrationRun::Running { task_arn };
    }
    MigrationRun::Stopped(TaskStopped {
        task_arn,
        started_by: task.started_by().map(str::to_string),
        stopped_reason: task
            .stopped_reason()
            .unwrap_or("no reason given")
            .to_string(),
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerExit {
                name: c.name().unwrap_or("?").to_string(),
                exit_code: c.exit_code().map(i64::from),
                reason: c.reason().map(str::to_string),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_by_names_release_and_environment_in_full_and_parses_back() {
        let r = Release::new(
            ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap(),
            "api",
            "team/api",
            crate::release::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            None,
            crate::release::Timestamp(0),
        );
        let long_env = format!("e{}", "x".repeat(62));
        for env in ["dev", "staging-eu-west-1", long_env.as_str()] {
            let s = started_by(&r, env);
            assert!(s.len() <= 128, "{s}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b)),
                "ECS allows letters, digits, - _ / only: {s}"
            );
            assert_eq!(
                parse_started_by(&s),
                Some((r.id.clone(), env.to_string(), 0))
            );
            let token = client_token(&r, env);
            assert!(token.len() <= 64, "{token}");
        }
        // Two environments with a long common prefix no longer collide.
        let a = format!("{}a", "x".repeat(40));
        let b = format!("{}b", "x".repeat(40));
        assert_ne!(started_by(&r, &a), started_by(&r, &b));
        assert_ne!(client_token(&r, &a), client_token(&r, &b));
        assert_eq!(client_token(&r, &a), client_token(&r, &a), "stable");
        for other in [
            "01JD2B3C4D5E6F7G8H9J0KMNPQ-dev",
            "shiplane/nope/dev",
            "shiplane/01JD2B3C4D5E6F7G8H9J0KMNPQ/",
            "ecs-svc/123",
        ] {
            assert_eq!(parse_started_by(other), None, "{other}");
        }
    }

    #[test]
    fn a_deployment_description_names_release_environment_attempt_and_restore_try() {
        use crate::release::{Stage, StageState, Timestamp};
        let mut r = Release::new(
            ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap(),
            "api",
            "team/api",
            crate::release::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            Some("v1.2.0"),
            Timestamp(0),
        );
        let first = deployment_description(&r, "prod");
        assert_eq!(
            first,
            "shiplane release 01JD2B3C4D5E6F7G8H9J0KMNPQ (v1.2.0) to prod"
        );
        let mut stage = Stage::new(StageState::Deploying, Timestamp(0));
        stage.attempt = 2;
        r.stages.insert("prod".into(), stage.clone());
        let retried = deployment_description(&r, "prod");
        stage.redeploy = true;
        r.stages.insert("prod".into(), stage.clone());
        let restore = deployment_description(&r, "prod");
        stage.restore_failures = 1;
        r.stages.insert("prod".into(), stage);
        let restore_again = deployment_description(&r, "prod");
        assert!(
            restore_again.ends_with(", attempt 2, restore 2"),
            "{restore_again}"
        );
        let all = [&first, &retried, &restore, &restore_again];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "each try is a deployment of its own");
            }
        }
        let attempts = [0, 2, 2, 2];
        let restores: Vec<bool> = all.iter().map(|d| is_restore_description(d)).collect();
        assert_eq!(restores, [false, false, true, true]);
        for (d, attempt) in all.iter().zip(attempts) {
            assert_eq!(
                parse_deployment_description(d),
                Some((r.id.clone(), "prod".to_string(), attempt)),
                "{d}"
            );
        }
        for other in [
            "deployed by hand",
            "shiplane release 01JD2B3C4D5E6F7G8H9J0KMNPQ (v1) to prod, by hand",
            "shiplane release nope (v1) to prod",
            "shiplane release 01JD2B3C4D5E6F7G8H9J0KMNPQ (v1) to ",
        ] {
            assert_eq!(parse_deployment_description(other), None, "{other}");
        }
    }

    #[test]
    fn the_family_of_a_task_definition_comes_from_its_arn_or_name() {
        for (td, family) in [
            (
                "arn:aws:ecs:us-east-1:123456789012:task-definition/api-dev:42",
                Some("api-dev"),
            ),
            (
                "arn:aws-cn:ecs:cn-north-1:1:task-definition/a_b-c:1",
                Some("a_b-c"),
            ),
            ("api:7", Some("api")),
            ("api", None),
            ("arn:aws:ecs:us-east-1:1:task-definition/api:latest", None),
            (":3", None),
        ] {
            assert_eq!(family_of(td), family, "{td}");
        }
    }

    #[test]
    fn image_repository_strips_tag_and_digest_but_not_ports() {
        assert_eq!(
            image_repository("1.dkr.ecr.r.amazonaws.com/shiplane/api:v1"),
            "1.dkr.ecr.r.amazonaws.com/shiplane/api"
        );
        assert_eq!(
            image_repository("1.dkr.ecr.r.amazonaws.com/shiplane/api@sha256:ab"),
            "1.dkr.ecr.r.amazonaws.com/shiplane/api"
        );
        assert_eq!(image_repository("localhost:5000/api"), "localhost:5000/api");
        assert_eq!(image_repository("api"), "api");
        assert!(
            Pick::Repository("shiplane/etl")
                .matches(None, Some("1.dkr.ecr.r.amazonaws.com/shiplane/etl:old"))
        );
        assert!(!Pick::Repository("shiplane/etl").matches(
            None,
            Some("1.dkr.ecr.r.amazonaws.com/shiplane/etl-sidecar:1")
        ));
        assert!(
            !Pick::Repository("etl")
                .matches(None, Some("1.dkr.ecr.r.amazonaws.com/other/notetl:1"))
        );
    }
}
