//! What an image push becomes, decided without I/O: ignored (with why) or a release of
//! one service entering its first environment, claimed once per repository + digest.

use std::time::Duration;

use super::model::{Digest, Release, ReleaseId, Timestamp};
use crate::pipeline::{Pipeline, Service};

/// How long a push's idempotency claim is kept (DynamoDB TTL deletes it afterwards).
pub const PUSH_CLAIM_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A successful, tagged push of an image: the start of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePush {
    /// `<account>.dkr.ecr.<region>.amazonaws.com`
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    pub tag: String,
    /// When ECR says the push happened (the event's `time`): orders releases.
    pub pushed_at: Timestamp,
}

/// The decision about a push.
#[derive(Debug, Clone)]
pub enum Intake<'p> {
    /// A release of `service`, entering `environment` (its first) when new.
    Release {
        service: &'p Service,
        environment: &'p str,
    },
    /// Not a release, and why.
    Ignored(String),
}

/// Which service a push belongs to and where its release starts; why not, otherwise.
pub fn intake<'p>(pipeline: &'p Pipeline, push: &ImagePush) -> Intake<'p> {
    let Some(service) = pipeline.service_for_repository(&push.repository) else {
        return Intake::Ignored(format!(
            "repository {} is not tracked by any service",
            push.repository
        ));
    };
    if !service.tags.accepts(&push.tag) {
        return Intake::Ignored(format!(
            "tag {} does not match services.{}.tags",
            push.tag, service.name
        ));
    }
    match service.stages.first() {
        // The service takes the push, but its first environment takes no release of it:
        // there is nowhere for it to go.
        Some(first) if !first.tags.accepts(&push.tag) => Intake::Ignored(format!(
            "tag {} is not accepted by {} (tags = {}), the first environment of services.{}",
            push.tag, first.environment, first.tags, service.name
        )),
        Some(first) => Intake::Release {
            service,
            environment: &first.environment,
        },
        None => Intake::Ignored(format!("services.{} has no environments", service.name)),
    }
}

/// The business key that makes a push a release at most once.
pub fn claim_key(push: &ImagePush) -> String {
    format!("push#{}#{}", push.repository, push.digest)
}

/// The release a new push makes. Its id is minted from the push time, so ids sort the
/// way pushes happened, not the way their events were processed.
pub fn new_release(push: &ImagePush, service: &Service, now: Timestamp) -> Release {
    let mut release = Release::new(
        ReleaseId::new(push.pushed_at),
        &service.name,
        &push.repository,
        push.digest.clone(),
        Some(&push.tag),
        now,
    );
    release.registry = push.registry.clone();
    release.pushed_at = push.pushed_at;
    release
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"
[pipeline]
environments = ["dev", "prod"]
[services.api]
repository = "team/api"
kind = "task"
tags = { semver = ">=1.0.0" }
[services.api.environments.dev]
task_families = ["a"]
[services.api.environments.prod]
task_families = ["b"]
"#;

    fn push(repository: &str, tag: &str, at: u64) -> ImagePush {
        ImagePush {
            registry: "1.dkr.ecr.eu-west-1.amazonaws.com".into(),
            repository: repository.into(),
            digest: Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            tag: tag.into(),
            pushed_at: Timestamp(at),
        }
    }

    #[test]
    fn pushes_of_tracked_repositories_with_accepted_tags_start_in_the_first_environment() {
        let pipeline = Pipeline::from_toml(PIPELINE).unwrap();
        for (p, want) in [
            (push("team/api", "v1.2.0", 1), Some("dev")),
            (push("team/api", "latest", 1), None),
            (push("team/api", "v1.2.0-rc.1", 1), None),
            (push("team/other", "v1.2.0", 1), None),
        ] {
            let got = match intake(&pipeline, &p) {
                Intake::Release { environment, .. } => Some(environment),
                Intake::Ignored(_) => None,
            };
            assert_eq!(got, want, "{p:?}");
        }
        assert_eq!(
            claim_key(&push("team/api", "v1", 1)),
            format!("push#team/api#sha256:{}", "a".repeat(64))
        );
    }

    #[test]
    fn a_push_whose_tag_the_first_environment_does_not_accept_is_ignored_with_why() {
        let pipeline = Pipeline::from_toml(&PIPELINE.replace(
            "[services.api.environments.dev]\n",
            "[services.api.environments.dev]\ntags = { semver = \">=2\" }\n",
        ))
        .unwrap();
        match intake(&pipeline, &push("team/api", "v1.2.0", 1)) {
            Intake::Ignored(why) => assert_eq!(
                why,
                "tag v1.2.0 is not accepted by dev (tags = { semver = \">=2\" }), the first environment of services.api"
            ),
            Intake::Release { .. } => panic!("dev takes only 2.x"),
        }
        assert!(matches!(
            intake(&pipeline, &push("team/api", "v2.0.1", 1)),
            Intake::Release {
                environment: "dev",
                ..
            }
        ));
    }

    #[test]
    fn a_new_release_is_named_and_ordered_by_its_push_time_not_by_processing_time() {
        let pipeline = Pipeline::from_toml(PIPELINE).unwrap();
        let service = &pipeline.services["api"];
        let early = new_release(
            &push("team/api", "v1.0.0", 1_000_000),
            service,
            Timestamp(9_000_000_000_000),
        );
        let late = new_release(
            &push("team/api", "v1.0.1", 2_000_000),
            service,
            Timestamp(1),
        );
        assert!(early.id < late.id, "ids sort by push time");
        assert_eq!(early.pushed_at, Timestamp(1_000_000));
        assert_eq!(early.registry, "1.dkr.ecr.eu-west-1.amazonaws.com");
    }
}
