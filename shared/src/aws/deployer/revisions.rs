//! Task-definition revisions pinned to a release's digest: which containers get the image,
//! finding the revision an earlier run registered (by its tags), registering a new one,
//! and reading a revision's tags back.

use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition, TaskDefinitionField};

use super::adapter::{AwsDeployer, ecs_service};
use super::naming::{TAG_DIGEST, TAG_ENVIRONMENT, TAG_RELEASE};
use super::{DeployError, DeployRequest, Tagged, sdk};
use crate::release::{Release, ReleaseId, Timestamp};

/// How many of a family's newest revisions a taken-over action looks through for its own.
const EARLIER_REVISIONS: i32 = 10;
/// Attempts at registering a revision, each first looking for one already registered.
const REGISTER_ATTEMPTS: u32 = 5;

/// `registry/repo:tag` or `registry/repo@sha256:…` → `registry/repo`.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(colon) if colon > no_digest.rfind('/').unwrap_or(0) => &no_digest[..colon],
        _ => no_digest,
    }
}

/// Which containers of a task definition get the release's image.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pick<'a> {
    Named(&'a str),
    /// Every container running an image of this repository (data jobs).
    Repository(&'a str),
}

impl Pick<'_> {
    pub(super) fn matches(&self, name: Option<&str>, image: Option<&str>) -> bool {
        match self {
            Pick::Named(n) => name == Some(*n),
            Pick::Repository(repo) => image.is_some_and(|i| {
                let r = image_repository(i);
                r == *repo || r.ends_with(&format!("/{repo}"))
            }),
        }
    }
}

/// The ARN of a family's latest revision (with its tags) when it is the one registered for
/// `release` in `environment`: what a replay reuses instead of registering another.
fn registered_for(
    (latest, tags): (TaskDefinition, Vec<Tag>),
    release: &Release,
    environment: &str,
) -> Option<Result<String, DeployError>> {
    // A revision's tag keys are unique (ECS refuses a duplicate).
    let tagged = |k: &str, v: &str| tag(&tags, k) == Some(v);
    (tagged(TAG_RELEASE, release.id.as_str()) && tagged(TAG_ENVIRONMENT, environment)).then(|| {
        latest.task_definition_arn.ok_or_else(|| {
            DeployError::permanent(format!(
                "latest revision of {} has no ARN",
                latest.family.as_deref().unwrap_or("?")
            ))
        })
    })
}

/// The value of a revision's tag `key`, if it has one.
pub(super) fn tag<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The family of a task definition ARN (`…:task-definition/<family>:<revision>`) or of a
/// `<family>:<revision>` name.
pub(super) fn family_of(task_definition: &str) -> Option<&str> {
    let name = task_definition.rsplit('/').next()?;
    let (family, revision) = name.rsplit_once(':')?;
    (!family.is_empty() && revision.parse::<u32>().is_ok()).then_some(family)
}

impl AwsDeployer {
    /// A task definition (by ARN, or a family's latest) with its tags.
    pub(super) async fn task_definition(
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
    /// when the action was taken over after its lease ran out ([`Stage::resumed`]), when
    /// it restores the release, or for data jobs (a data-job stage records no revision of
    /// its own to deploy again, and another release's run may register in its families
    /// between two runs of its action: its revisions are found by their tags, so that a
    /// restore or a second run registers none while they are kept).
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
            .is_some_and(|s| s.resumed > 0 || s.redeploy);
        let data_jobs = matches!(req.stage.target, crate::pipeline::Target::Task { .. });
        if !resumed && !data_jobs {
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
    pub(super) async fn ensure_revision(
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
        if !req.fresh
            && let Some(ours) = self.registered_revision(family, latest, &req).await?
        {
            return Ok(ours);
        }
        let containers = pinned_containers(base, family, pick, &req)?;
        self.register(base, family, containers, req).await
    }

    /// The revision of `family` already registered for this release and environment: the
    /// latest one (given, else read) if it is, else one an earlier run registered before
    /// another release's ([`Self::earlier_revision`]).
    async fn registered_revision(
        &self,
        family: &str,
        latest: Option<(TaskDefinition, Vec<Tag>)>,
        req: &DeployRequest<'_>,
    ) -> Result<Option<String>, DeployError> {
        let latest = match latest {
            Some(latest) if latest.0.family.as_deref() == Some(family) => latest,
            _ => self.task_definition(family).await?,
        };
        if let Some(ours) = registered_for(latest, req.release, &req.stage.environment) {
            return ours.map(Some);
        }
        self.earlier_revision(family, req).await
    }

    /// Registers a revision equal to `base` but for its `containers`, tagged with the
    /// release, environment and digest.
    async fn register(
        &self,
        base: &TaskDefinition,
        family: &str,
        containers: Vec<ContainerDefinition>,
        req: DeployRequest<'_>,
    ) -> Result<String, DeployError> {
        let env = req.stage.environment.as_str();
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

    /// The release an ECS service deployment deploys, by the tags of its task-definition
    /// revision ([`Deployer::ecs_origin`]).
    ///
    /// [`Deployer::ecs_origin`]: super::Deployer::ecs_origin
    pub(super) async fn tagged_revision(
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
            .and_then(|d| {
                let created = d
                    .created_at
                    .and_then(|t| t.to_millis().ok())
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(Timestamp);
                Some((d.task_definition?, created))
            });
        let Some((arn, created)) = found else {
            return Ok(None);
        };
        let (_, tags) = self.task_definition(&arn).await?;
        let (Some(release), Some(environment)) =
            (tag(&tags, TAG_RELEASE), tag(&tags, TAG_ENVIRONMENT))
        else {
            return Ok(None);
        };
        Ok(ReleaseId::parse(release).ok().map(|release| Tagged {
            release,
            environment: environment.to_string(),
            task_definition: arn,
            created,
        }))
    }
}

/// `base`'s containers with the release's image in those `pick` chooses; an error when the
/// release has no registry to name its image by, or `pick` chooses none.
fn pinned_containers(
    base: &TaskDefinition,
    family: &str,
    pick: Pick<'_>,
    req: &DeployRequest<'_>,
) -> Result<Vec<ContainerDefinition>, DeployError> {
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
            Pick::Repository(r) => {
                format!("task definition family {family} has no container running an image of {r}")
            }
        }));
    }
    Ok(containers)
}

#[cfg(test)]
mod tests {
    use super::*;

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
