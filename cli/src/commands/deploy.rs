//! `shiplane deploy`: a release of an image by digest (or by the digest ECR holds for a
//! tag), made without a push: it enters the service's first environment as a push would.

use aws_config::SdkConfig;
use shiplane::engine::PushOutcome;
use shiplane::release::{Digest, Timestamp};
use shiplane::store::ReleaseStore;

use super::Context;
use super::clients::{CliDeps, engine_failure};
use super::lookup::unknown_service;
use crate::{Failure, Operator, render};

/// `shiplane deploy SERVICE --digest D | --tag T`: the release made, by the name to type
/// next; a digest that is already a release is refused.
pub(super) async fn deploy(
    cx: &Context<'_>,
    service: &str,
    digest: Option<&str>,
    tag: Option<&str>,
    registry: Option<&str>,
    reason: &str,
    who: &Operator,
) -> Result<(), Failure> {
    let deps = cx.deps(&who.aws).await;
    let (digest, found_in) = image(cx.config, &deps, service, digest, tag).await?;
    let registry = registry.map(str::to_string).or(found_in);
    let outcome = deps
        .engine()
        .on_operator_deploy(
            service,
            digest,
            tag.map(str::to_string),
            registry,
            &cx.actor(who).await?,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(engine_failure)?;
    match outcome {
        PushOutcome::Created {
            release,
            environment,
            state,
        } => {
            let state = state.map_or_else(|| "-".to_string(), |s| s.to_string());
            // The name to type next: the tag it got (given, or made from the digest).
            let name = match deps.store.release(&release).await? {
                Some(r) => crate::names::display(&r.item),
                None => release.to_string(),
            };
            render::deployed(&release, &name, &environment, &state, cx.json());
            Ok(())
        }
        PushOutcome::Replayed { release, .. } => Err(Failure::Refused(format!(
            "that digest is already release {release}; use `shiplane retry` or `shiplane rollback --to {release}`"
        ))),
        PushOutcome::Ignored(why) => Err(Failure::BadInput(why)),
    }
}

/// The image to release: `--digest` as given, else the digest ECR holds for `--tag` in
/// the service's repository, with the registry host it was found in.
async fn image(
    config: &SdkConfig,
    deps: &CliDeps,
    service: &str,
    digest: Option<&str>,
    tag: Option<&str>,
) -> Result<(Digest, Option<String>), Failure> {
    match (digest, tag) {
        (Some(d), _) => Ok((
            Digest::parse(d).map_err(|e| Failure::BadInput(e.to_string()))?,
            None,
        )),
        (None, Some(t)) => {
            let pipeline = deps.engine().pipeline().await.map_err(engine_failure)?;
            let Some(svc) = pipeline.services.get(service) else {
                return Err(unknown_service(&pipeline, service));
            };
            let (d, registry) = digest_of_tag(config, &svc.repository, t).await?;
            Ok((d, Some(registry)))
        }
        (None, None) => Err(Failure::BadInput("give --digest or --tag".into())),
    }
}

/// The digest ECR holds for `tag` in `repository`, and the registry host it lives in.
async fn digest_of_tag(
    config: &SdkConfig,
    repository: &str,
    tag: &str,
) -> Result<(Digest, String), Failure> {
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    let out = aws_sdk_ecr::Client::new(config)
        .describe_images()
        .repository_name(repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("ImageNotFoundException") => Failure::BadInput(format!(
                "no image tagged {tag} in ECR repository {repository}; push it, or give --digest"
            )),
            Some("RepositoryNotFoundException") => Failure::BadInput(format!(
                "no ECR repository {repository} (the service's repository in the pipeline)"
            )),
            _ => Failure::Aws(shiplane::sdk::classify("ECR DescribeImages", &e).message),
        })?;
    let image = out
        .image_details
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            Failure::BadInput(format!(
                "no image tagged {tag} in ECR repository {repository}"
            ))
        })?;
    let digest = Digest::parse(image.image_digest.as_deref().unwrap_or_default())
        .map_err(|e| Failure::Failed(format!("ECR answered an unusable digest for {tag}: {e}")))?;
    let region = config
        .region()
        .map(std::string::ToString::to_string)
        .ok_or_else(|| Failure::BadInput("no AWS region; set AWS_REGION".into()))?;
    let registry = format!(
        "{}.dkr.ecr.{region}.amazonaws.com",
        image.registry_id.unwrap_or_default()
    );
    Ok((digest, registry))
}
