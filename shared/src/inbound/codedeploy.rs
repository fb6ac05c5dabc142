//! CodeDeploy "Deployment State-change Notification" events, delivered by EventBridge.
//!
//! Shape: aws_lambda_events' `CodeDeployEvent` (its fixture
//! `example-codedeploy-deployment-event.json`); the states CodeDeploy documents for
//! deployment events are START, SUCCESS, FAILURE, STOP and READY (blue/green waiting to
//! reroute traffic). The event carries no rollback flag: a rollback is a new deployment.

use aws_lambda_events::codedeploy::CodeDeployEvent;

use super::Inbound;
use crate::release::{InvalidInput, Timestamp};

/// What a deployment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    Start,
    /// Blue/green: the replacement is ready and waits for traffic to be rerouted.
    Ready,
    Success,
    Failure,
    Stop,
}

impl DeploymentState {
    /// Whether the deployment is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentState::Success | DeploymentState::Failure | DeploymentState::Stop
        )
    }
}

/// A CodeDeploy deployment changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStateChange {
    pub deployment_id: String,
    pub application: String,
    pub deployment_group: String,
    pub state: DeploymentState,
    /// The event's own time.
    pub at: Timestamp,
}

/// Parses a deployment state change; instance events and unknown states are ignored, and a
/// `time` more than [`super::MAX_CLOCK_SKEW`] ahead of `now` (the function's clock) is
/// rejected.
pub fn parse_deployment_state(
    event: &CodeDeployEvent,
    now: Timestamp,
) -> Result<Inbound<DeploymentStateChange>, InvalidInput> {
    let (source, kind) = (
        event.source.as_deref().unwrap_or_default(),
        event.detail_type.as_deref().unwrap_or_default(),
    );
    if source != "aws.codedeploy" || kind != "CodeDeploy Deployment State-change Notification" {
        return Ok(Inbound::Ignored(format!(
            "not a CodeDeploy deployment state change (source {source}, detail-type {kind})"
        )));
    }
    let d = &event.detail;
    let deployment_id =
        d.deployment_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or(InvalidInput {
                field: "deploymentId",
                message: "missing from the event".into(),
            })?;
    let state = match d.state.as_str() {
        "START" => DeploymentState::Start,
        "READY" => DeploymentState::Ready,
        "SUCCESS" => DeploymentState::Success,
        "FAILURE" => DeploymentState::Failure,
        "STOP" => DeploymentState::Stop,
        other => {
            return Ok(Inbound::Ignored(format!(
                "deployment {deployment_id} state {:?} is not one CodeDeploy documents",
                crate::release::escaped(other)
            )));
        }
    };
    Ok(Inbound::Accepted(DeploymentStateChange {
        deployment_id,
        application: d.application.clone().unwrap_or_default(),
        deployment_group: d.deployment_group.clone().unwrap_or_default(),
        state,
        at: super::not_ahead(
            "time",
            Timestamp(u64::try_from(event.time.timestamp_millis()).unwrap_or(0)),
            now,
        )?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Result<Inbound<DeploymentStateChange>, InvalidInput> {
        let path = format!(
            "{}/../tests/fixtures/events/codedeploy/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_deployment_state(
            &serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")),
            Timestamp::now(),
        )
    }

    #[test]
    fn every_documented_state_parses_and_the_rest_is_ignored_or_rejected() {
        for (name, state) in [
            ("success", DeploymentState::Success),
            ("failure", DeploymentState::Failure),
            ("stop", DeploymentState::Stop),
            ("ready", DeploymentState::Ready),
            ("start", DeploymentState::Start),
        ] {
            let Ok(Inbound::Accepted(c)) = fixture(name) else {
                panic!("{name}")
            };
            assert_eq!(c.state, state);
            assert_eq!(
                (
                    c.deployment_id.as_str(),
                    c.application.as_str(),
                    c.deployment_group.as_str()
                ),
                ("d-7ZV2KGX1B", "api", "api-dev")
            );
            assert_eq!(c.at, Timestamp(1_794_799_200_000), "2026-11-16T03:20:00Z");
            assert_eq!(
                state.is_final(),
                matches!(name, "success" | "failure" | "stop")
            );
        }
        assert!(
            matches!(fixture("unknown-state"), Ok(Inbound::Ignored(why)) if why.contains("PAUSED"))
        );
        assert!(
            matches!(fixture("instance"), Ok(Inbound::Ignored(why)) if why.contains("Instance"))
        );
        assert_eq!(
            fixture("missing-deployment").unwrap_err().field,
            "deploymentId"
        );
        // Stamped more than the skew ahead of the function's clock: refused.
        let path = format!(
            "{}/../tests/fixtures/events/codedeploy/success.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let event = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let before = Timestamp(1_794_799_200_000 - 301_000);
        assert_eq!(
            parse_deployment_state(&event, before).unwrap_err().field,
            "time"
        );
        // The library's own fixture parses too.
        let theirs = r#"{"account":"123456789012","region":"us-east-1","detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","version":"0","time":"2016-06-30T22:06:31Z","id":"c071bfbf","resources":[],"detail":{"instanceGroupId":"9fd2","region":"us-east-1","application":"myApplication","deploymentId":"d-123456789","state":"SUCCESS","deploymentGroup":"myDeploymentGroup"}}"#;
        assert!(matches!(
            parse_deployment_state(&serde_json::from_str(theirs).unwrap(), Timestamp::now()),
            Ok(Inbound::Accepted(_))
        ));
    }
}
