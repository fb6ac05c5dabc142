//! ECR "Image Action" events, delivered by EventBridge.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use super::Inbound;
use crate::release::{Digest, InvalidInput, validate_tag};

/// The `detail` of an ECR Image Action event; unknown fields are tolerated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    pub action_type: Option<String>,
    pub result: Option<String>,
    pub repository_name: Option<String>,
    pub image_digest: Option<String>,
    pub image_tag: Option<String>,
    pub manifest_media_type: Option<String>,
    pub artifact_media_type: Option<String>,
}

/// A successful, tagged push of an image: the start of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePush {
    /// `<account>.dkr.ecr.<region>.amazonaws.com`
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    pub tag: String,
}

/// Config media types of runnable images; any other artifact (signatures, SBOMs,
/// attestations) is not a release.
const IMAGE_CONFIG_TYPES: &[&str] = &[
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
];

fn missing(field: &'static str) -> InvalidInput {
    InvalidInput {
        field,
        message: "missing from the event".into(),
    }
}

/// Parses an ECR Image Action event into a push, an "ignored: why", or an error naming
/// the field that fails validation.
pub fn parse_push(
    event: &EventBridgeEvent<EcrImageAction>,
) -> Result<Inbound<ImagePush>, InvalidInput> {
    if event.source != "aws.ecr" || event.detail_type != "ECR Image Action" {
        return Ok(Inbound::Ignored(format!(
            "not an ECR image action (source {}, detail-type {})",
            event.source, event.detail_type
        )));
    }
    let d = &event.detail;
    let action = d.action_type.as_deref().unwrap_or_default();
    if action != "PUSH" {
        return Ok(Inbound::Ignored(format!(
            "action-type {action:?} is not a push"
        )));
    }
    let result = d.result.as_deref().unwrap_or_default();
    if result != "SUCCESS" {
        return Ok(Inbound::Ignored(format!(
            "push result {result:?} is not SUCCESS"
        )));
    }
    let repository = d
        .repository_name
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| missing("repository-name"))?;
    let digest = Digest::parse(
        d.image_digest
            .as_deref()
            .ok_or_else(|| missing("image-digest"))?,
    )?;
    let Some(tag) = d.image_tag.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(Inbound::Ignored(format!(
            "untagged image {digest} (a child manifest of a multi-arch push; the tagged index is the release)"
        )));
    };
    validate_tag(tag)?;
    if let Some(artifact) = d.artifact_media_type.as_deref()
        && !IMAGE_CONFIG_TYPES.contains(&artifact)
    {
        return Ok(Inbound::Ignored(format!(
            "artifact {artifact} under tag {tag} is not a runnable image (signature, attestation or SBOM)"
        )));
    }
    if is_signature_tag(tag) {
        return Ok(Inbound::Ignored(format!(
            "tag {tag} names a signature or attestation of another image"
        )));
    }
    let account = event
        .account
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| missing("account"))?;
    let region = event
        .region
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| missing("region"))?;
    Ok(Inbound::Accepted(ImagePush {
        registry: format!("{account}.dkr.ecr.{region}.amazonaws.com"),
        repository: repository.to_string(),
        digest,
        tag: tag.to_string(),
    }))
}

/// Cosign-style tags, `sha256-<64 hex>.sig|.att|.sbom`, that point at another image.
fn is_signature_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(hex, _)| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Result<Inbound<ImagePush>, InvalidInput> {
        let path = format!(
            "{}/../tests/fixtures/events/ecr/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let event: EventBridgeEvent<EcrImageAction> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_push(&event)
    }

    fn ignored(name: &str) -> String {
        match fixture(name) {
            Ok(Inbound::Ignored(why)) => why,
            other => panic!("{name}: expected ignored, got {other:?}"),
        }
    }

    fn rejected(name: &str) -> InvalidInput {
        match fixture(name) {
            Err(e) => e,
            other => panic!("{name}: expected rejected, got {other:?}"),
        }
    }

    #[test]
    fn tagged_pushes_are_accepted() {
        let Ok(Inbound::Accepted(push)) = fixture("tagged-push") else {
            panic!()
        };
        assert_eq!(
            push.registry,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(push.repository, "shiplane/api");
        assert_eq!(push.tag, "v1.4.0");
        assert!(push.digest.as_str().starts_with("sha256:4d8b3f0e"));
        let Ok(Inbound::Accepted(index)) = fixture("tagged-index") else {
            panic!()
        };
        assert_eq!(
            index.tag, "v1.5.0",
            "the tagged index of a multi-arch push is the release"
        );
        let Ok(Inbound::Accepted(extra)) = fixture("extra-fields") else {
            panic!()
        };
        assert_eq!(extra.tag, "v1.4.0", "unknown fields are tolerated");
        // A tag the service's policy rejects still parses; the policy is applied with the config.
        assert!(matches!(fixture("rejected-tag"), Ok(Inbound::Accepted(_))));
        // So does an unknown repository.
        assert!(matches!(
            fixture("unknown-repository"),
            Ok(Inbound::Accepted(_))
        ));
    }

    #[test]
    fn non_releases_are_ignored_with_a_reason() {
        assert!(ignored("untagged-child").contains("untagged image"));
        assert!(ignored("attestation").contains("not a runnable image"));
        assert!(ignored("delete").contains("\"DELETE\" is not a push"));
        assert!(ignored("failed-push").contains("\"FAILURE\" is not SUCCESS"));
        assert!(ignored("other-source").contains("not an ECR image action"));
    }

    #[test]
    fn invalid_fields_are_rejected_by_name() {
        let e = rejected("bad-digest");
        assert_eq!(e.field, "image-digest");
        assert!(e.message.contains("64 lowercase hex"), "{e}");
        assert_eq!(rejected("bad-tag").field, "image-tag");
        let long = rejected("long-tag");
        assert_eq!(long.field, "image-tag");
        assert!(
            long.message.len() < 300,
            "the message does not echo 300 characters back"
        );
        let e = rejected("missing-fields");
        assert_eq!(
            (e.field, e.message.as_str()),
            ("image-digest", "missing from the event")
        );
    }

    #[test]
    fn malformed_envelopes_do_not_parse() {
        let err = serde_json::from_str::<EventBridgeEvent<EcrImageAction>>(r#"{"detail": {}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("detail-type"), "{err}");
    }

    #[test]
    fn signature_tags() {
        assert!(is_signature_tag(&format!("sha256-{}.sig", "a".repeat(64))));
        assert!(!is_signature_tag("sha256-abc.sig"));
        assert!(!is_signature_tag("v1.0.0"));
    }
}
