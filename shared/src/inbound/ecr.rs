//! ECR "Image Action" events, delivered by EventBridge.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use super::Inbound;
use crate::release::{Digest, InvalidInput, Timestamp, validate_tag};

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

pub use crate::release::intake::ImagePush;

/// Artifact media types that are not runnable images, with what they are. A push whose
/// `artifact-media-type` is one of these is not a release; any other (an image config,
/// an image index or manifest list, a type this table does not know, or none at all) is.
/// Sources: the OCI image and distribution specs, cosign, notation, in-toto/DSSE, Helm,
/// SPDX, CycloneDX, Syft, ORAS and the WebAssembly OCI artifact layout.
pub const NOT_RUNNABLE: &[(&str, &str)] = &[
    (
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "a cosign signature",
    ),
    (
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "a cosign signature",
    ),
    (
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "a sigstore bundle",
    ),
    (
        "application/vnd.cncf.notary.signature",
        "a notation signature",
    ),
    (
        "application/vnd.dsse.envelope.v1+json",
        "an in-toto attestation",
    ),
    ("application/vnd.in-toto+json", "an in-toto attestation"),
    ("application/spdx+json", "an SPDX SBOM"),
    ("text/spdx", "an SPDX SBOM"),
    ("application/vnd.cyclonedx+json", "a CycloneDX SBOM"),
    ("application/vnd.syft+json", "a Syft SBOM"),
    ("application/vnd.cncf.helm.config.v1+json", "a Helm chart"),
    (
        "application/vnd.oci.empty.v1+json",
        "an OCI artifact without an image config",
    ),
    ("application/vnd.unknown.config.v1+json", "an ORAS artifact"),
    (
        "application/vnd.wasm.config.v0+json",
        "a WebAssembly module",
    ),
];

/// What a non-runnable artifact type is, if the table knows it.
fn not_runnable(artifact: &str) -> Option<&'static str> {
    NOT_RUNNABLE
        .iter()
        .find(|(t, _)| *t == artifact)
        .map(|(_, what)| *what)
}

fn missing(field: &'static str) -> InvalidInput {
    InvalidInput {
        field,
        message: "missing from the event".into(),
    }
}

/// Parses an ECR Image Action event into a push, an "ignored: why", or an error naming
/// the field that fails validation (a `time` more than [`super::MAX_CLOCK_SKEW`] ahead of
/// `now`, the function's clock, among them).
pub fn parse_push(
    event: &EventBridgeEvent<EcrImageAction>,
    now: Timestamp,
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
    if let Some(what) = d.artifact_media_type.as_deref().and_then(not_runnable) {
        return Ok(Inbound::Ignored(format!(
            "the artifact under tag {tag} is {what}, not a runnable image"
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
    let pushed_at = event
        .time
        .map(|t| Timestamp(u64::try_from(t.timestamp_millis()).unwrap_or(0)))
        .map(|at| super::not_ahead("time", at, now))
        .transpose()?;
    Ok(Inbound::Accepted(ImagePush {
        registry: format!("{account}.dkr.ecr.{region}.amazonaws.com"),
        repository: repository.to_string(),
        digest,
        tag: tag.to_string(),
        // EventBridge always stamps `time`; an envelope without one is ordered by arrival.
        pushed_at: pushed_at.unwrap_or(now),
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
        parse_push(&event, Timestamp::now())
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
        assert!(ignored("attestation").contains("an in-toto attestation"));
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

    fn with_artifact(
        artifact: Option<&str>,
        manifest: &str,
    ) -> Result<Inbound<ImagePush>, InvalidInput> {
        let path = format!(
            "{}/../tests/fixtures/events/ecr/tagged-push.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut event: EventBridgeEvent<EcrImageAction> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        event.detail.artifact_media_type = artifact.map(str::to_string);
        event.detail.manifest_media_type = Some(manifest.to_string());
        parse_push(&event, Timestamp::now())
    }

    #[test]
    fn every_known_non_runnable_artifact_type_is_ignored_and_named() {
        for (artifact, what) in NOT_RUNNABLE {
            match with_artifact(Some(artifact), "application/vnd.oci.image.manifest.v1+json") {
                Ok(Inbound::Ignored(why)) => assert!(why.contains(what), "{artifact}: {why}"),
                other => panic!("{artifact}: expected ignored, got {other:?}"),
            }
        }
    }

    #[test]
    fn images_indexes_and_unknown_or_absent_artifact_types_are_releases() {
        // docker buildx pushes an OCI index (with attestations inside) under the tag.
        for (artifact, manifest) in [
            (
                Some("application/vnd.docker.container.image.v1+json"),
                "application/vnd.docker.distribution.manifest.v2+json",
            ),
            (
                Some("application/vnd.oci.image.config.v1+json"),
                "application/vnd.oci.image.manifest.v1+json",
            ),
            (
                Some("application/vnd.oci.image.index.v1+json"),
                "application/vnd.oci.image.index.v1+json",
            ),
            (
                Some("application/vnd.docker.distribution.manifest.list.v2+json"),
                "application/vnd.docker.distribution.manifest.list.v2+json",
            ),
            (None, "application/vnd.oci.image.index.v1+json"),
            (None, "application/vnd.docker.distribution.manifest.v2+json"),
            (
                Some("application/vnd.example.future+json"),
                "application/vnd.oci.image.manifest.v1+json",
            ),
        ] {
            assert!(
                matches!(with_artifact(artifact, manifest), Ok(Inbound::Accepted(_))),
                "{artifact:?} / {manifest}"
            );
        }
    }

    #[test]
    fn the_push_is_placed_by_the_events_own_time() {
        let Ok(Inbound::Accepted(push)) = fixture("tagged-push") else {
            panic!()
        };
        // tagged-push.json says "time": "2026-11-16T01:54:34Z".
        assert_eq!(push.pushed_at, Timestamp(1_794_794_074_000));
    }

    #[test]
    fn a_push_stamped_ahead_of_the_clock_is_refused() {
        let path = format!(
            "{}/../tests/fixtures/events/ecr/tagged-push.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let event: EventBridgeEvent<EcrImageAction> = serde_json::from_str(&text).unwrap();
        let before = Timestamp(1_794_794_074_000 - 301_000);
        assert_eq!(parse_push(&event, before).unwrap_err().field, "time");
        let far = text.replace("2026-11-16T01:54:34Z", "9999-12-31T23:59:59Z");
        let event: EventBridgeEvent<EcrImageAction> = serde_json::from_str(&far).unwrap();
        assert_eq!(
            parse_push(&event, Timestamp::now()).unwrap_err().field,
            "time"
        );
    }

    #[test]
    fn signature_tags() {
        assert!(is_signature_tag(&format!("sha256-{}.sig", "a".repeat(64))));
        assert!(!is_signature_tag("sha256-abc.sig"));
        assert!(!is_signature_tag("v1.0.0"));
    }
}
