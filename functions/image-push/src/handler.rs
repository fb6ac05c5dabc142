//! Parse the EventBridge payload, hand the push to the engine, map the outcome.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::aws::PushClock;
use shiplane::engine::{Deps, Ports, PushOutcome};
use shiplane::inbound::ecr::{EcrImageAction, parse_push};
use shiplane::lambda::{HandlerError, accepted, envelope, failed, ignored};
use shiplane::release::Timestamp;
use tracing::info;

/// Handles one ECR Image Action event. Ignored events return Ok with the reason; invalid
/// ones an `InvalidEvent` naming the field (Lambda sends them to the dead-letter queue);
/// store failures a retryable error so Lambda delivers the event again. `clock` gives
/// ECR's own push times when the push shares its event's second with another.
pub async fn handle<P: Ports>(
    deps: &Deps<P>,
    clock: &impl PushClock,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let parsed = envelope::<EcrImageAction>(event.payload, "ECR image action")?;
    let now = Timestamp::now();
    let push = match accepted(parse_push(&parsed, now), "ECR image action")? {
        Ok(push) => push,
        Err(answer) => return Ok(answer),
    };
    match deps.engine().on_push_with(&push, clock, now).await {
        Ok(PushOutcome::Ignored(reason)) => Ok(ignored(&reason)),
        Ok(PushOutcome::Created {
            release,
            environment,
            state,
        }) => {
            info!(release = %release, environment = %environment, state = ?state, "release created");
            Ok(json!({ "release": release, "environment": environment, "state": state }))
        }
        Ok(PushOutcome::Replayed { release, tag_added }) => {
            info!(release = %release, tag_added, "push already a release");
            Ok(json!({ "release": release, "replayed": true, "tag_added": tag_added }))
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiplane::aws::NoPushClock;
    use shiplane::engine::testing::{FakeDeps, ONE_SERVICE_PIPELINE, deps_with_pipeline};
    use shiplane::store::ReleaseStore;

    async fn deps() -> FakeDeps {
        deps_with_pipeline(ONE_SERVICE_PIPELINE).await
    }

    fn event(name: &str) -> LambdaEvent<Value> {
        let path = format!(
            "{}/../../tests/fixtures/events/ecr/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let payload = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    /// Every fixture with its expected outcome; none but the accepted ones touch state.
    #[tokio::test]
    async fn every_fixture_gets_its_outcome() {
        for (name, expect) in [
            ("tagged-push", "release"),
            ("tagged-index", "release"),
            ("extra-fields", "replayed"), // same digest as tagged-push
            ("untagged-child", "ignored"),
            ("attestation", "ignored"),
            ("delete", "ignored"),
            ("failed-push", "ignored"),
            ("other-source", "ignored"),
            ("unknown-repository", "ignored"),
            ("bad-digest", "error:image-digest"),
            ("bad-tag", "error:image-tag"),
            ("long-tag", "error:image-tag"),
            ("missing-fields", "error:image-digest"),
        ] {
            let d = deps().await;
            if name == "extra-fields" {
                handle(&d, &NoPushClock, event("tagged-push"))
                    .await
                    .unwrap();
            }
            let calls_before = d.deployer.calls().len();
            let got = handle(&d, &NoPushClock, event(name)).await;
            match (expect, &got) {
                ("release", Ok(v)) => assert_eq!(v["state"], "deploying", "{name}: {v}"),
                ("replayed", Ok(v)) => assert_eq!(v["replayed"], true, "{name}: {v}"),
                ("ignored", Ok(v)) => assert!(v["ignored"].is_string(), "{name}: {v}"),
                (e, Err(err)) if e.starts_with("error:") => {
                    let field = &e["error:".len()..];
                    assert!(err.to_string().contains(field), "{name}: {err}");
                }
                _ => panic!("{name}: expected {expect}, got {got:?}"),
            }
            if expect == "ignored" || expect.starts_with("error:") {
                let releases = d.store.releases_of_service("api", 5).await.unwrap();
                assert!(releases.is_empty(), "{name} made no release");
            }
            if expect != "release" {
                assert_eq!(
                    d.deployer.calls().len(),
                    calls_before,
                    "{name} called no mutating API"
                );
            }
        }
    }

    /// Two pushes in one second (the fixture's): ECR's own push times, read through the
    /// handler's clock, decide which is newer, not the order they are handled in.
    #[tokio::test]
    async fn pushes_in_one_second_are_ordered_by_ecrs_push_times() {
        use shiplane::aws::FakePushClock;
        use shiplane::release::{Digest, Timestamp};
        let d = deps().await;
        let with = |digest: &str, tag: &str| {
            let mut e = event("tagged-push");
            e.payload["detail"]["image-digest"] = json!(digest);
            e.payload["detail"]["image-tag"] = json!(tag);
            e
        };
        let (older, newer) = (
            format!("sha256:{}", "f".repeat(64)),
            format!("sha256:{}", "1".repeat(64)),
        );
        // 2026-11-16T01:54:34Z: the fixture's second.
        let second = 1_794_794_074_000;
        let clock = FakePushClock::with([
            (Digest::parse(&older).unwrap(), Timestamp(second + 200)),
            (Digest::parse(&newer).unwrap(), Timestamp(second + 700)),
        ]);
        let first = handle(&d, &clock, with(&newer, "v1.5.1")).await.unwrap();
        assert_eq!(first["state"], "deploying", "{first}");
        let late = handle(&d, &clock, with(&older, "v1.5.0")).await.unwrap();
        assert_eq!(late["state"], "superseded", "{late}");
        assert_eq!(clock.asked().len(), 1);
    }

    /// A push stamped in year 9999 would be the newest the lane ever sees, and every real
    /// push after it would be created already superseded: it is refused and makes nothing,
    /// and the next real push deploys.
    #[tokio::test]
    async fn a_push_stamped_far_ahead_is_refused_and_the_next_push_deploys() {
        let d = deps().await;
        let mut far = event("tagged-push");
        far.payload["time"] = json!("9999-12-31T23:59:59Z");
        let err = handle(&d, &NoPushClock, far).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
        assert!(
            err.to_string().contains("time: more than 5m ahead"),
            "{err}"
        );
        let releases = d.store.releases_of_service("api", 5).await.unwrap();
        assert!(releases.is_empty(), "no release: {releases:?}");
        let out = handle(&d, &NoPushClock, event("tagged-push"))
            .await
            .unwrap();
        assert_eq!(out["state"], "deploying", "{out}");
    }

    #[test]
    fn a_tag_with_a_line_break_cannot_forge_a_log_line() {
        let forged = "v1\n2026-11-24T00:00:00Z  INFO shiplane: release approved by admin";
        let mut event = event("tagged-push");
        event.payload["detail"]["image-tag"] = json!(forged);
        let ((), captured) = shiplane_e2e::logs::captured_async(async {
            let d = deps().await;
            let err = handle(&d, &NoPushClock, event).await.unwrap_err();
            assert_eq!(err.error_type(), "InvalidEvent");
            assert!(!err.to_string().contains('\n'), "{err}");
        });
        captured.assert_one_line_per_record("image-push");
        let logs = captured.text;
        assert!(logs.contains("rejected"), "{logs}");
        assert!(logs.contains("v1\\n2026"), "the break is escaped: {logs}");
        assert!(
            logs.lines().all(|l| !l.starts_with("2026-11-24T00:00:00Z")),
            "no forged line: {logs}"
        );
    }

    #[tokio::test]
    async fn a_payload_that_is_not_an_event_is_rejected() {
        let d = deps().await;
        let err = handle(
            &d,
            &NoPushClock,
            LambdaEvent::new(json!({"hello": 1}), lambda_runtime::Context::default()),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed ECR image action event"),
            "{err}"
        );
    }

    shiplane_e2e::fuzz_campaign!(Fuzzed);

    struct Fuzzed;

    impl shiplane_e2e::fuzz::Target for Fuzzed {
        type Deps = FakeDeps;
        const NAME: &'static str = "image-push";
        const FAMILY: &'static [&'static str] = &["ecr"];
        async fn deps(&self) -> Self::Deps {
            deps_with_pipeline(&shiplane_e2e::fuzz::pipeline()).await
        }
        async fn invoke(&self, deps: &Self::Deps, payload: Value) -> Result<Value, HandlerError> {
            let event = LambdaEvent::new(payload, lambda_runtime::Context::default());
            handle(deps, &NoPushClock, event).await
        }
        fn effects(&self, deps: &Self::Deps) -> shiplane_e2e::fuzz::Effects {
            shiplane_e2e::fuzz::effects_of(deps)
        }
    }
}
