//! Parse the EventBridge payload by its detail-type and hand it to the engine.
//!
//! Handled: ECS Task State Change (a migration task stopped), ECS Deployment State Change
//! (a rolling service's deployment completed or failed) and CodeDeploy Deployment
//! State-change Notification (a deployment succeeded, failed or was stopped; CodeDeploy's
//! own rollback deployments reported on the release they roll back).

use aws_lambda_events::codedeploy::CodeDeployEvent;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::engine::{Deps, Ports};
use shiplane::inbound::codedeploy::parse_deployment_state;
use shiplane::inbound::ecs::{parse_service_deployment, parse_task_stopped};
use shiplane::lambda::{HandlerError, Payload, handle_event, ignored};

/// Handles one state-change event; store failures return an error so Lambda retries.
pub async fn handle<P: Ports>(
    deps: &Deps<P>,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let detail_type = event
        .payload
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match detail_type {
        "CodeDeploy Deployment State-change Notification" => {
            handle_event(
                event.payload,
                "CodeDeploy deployment state change",
                |event: &DeploymentStateEvent, now| parse_deployment_state(&event.0, now),
                async |change, now| deps.engine().on_deployment_state(change, now).await,
                |change| json!({ "deployment": change.deployment_id }),
            )
            .await
        }
        "ECS Deployment State Change" => {
            handle_event(
                event.payload,
                "ECS deployment state change",
                parse_service_deployment,
                async |ended, now| deps.engine().on_service_deployment(ended, now).await,
                |ended| json!({ "deployment": ended.deployment_id }),
            )
            .await
        }
        "ECS Task State Change" => {
            handle_event(
                event.payload,
                "ECS task state change",
                |event: &_, _| parse_task_stopped(event),
                async |stopped, now| deps.engine().on_task_stopped(stopped, now).await,
                |stopped| json!({ "task": stopped.task_arn }),
            )
            .await
        }
        other => Ok(ignored(&format!(
            "detail-type {other:?} is not one this function serves"
        ))),
    }
}

/// CodeDeploy's state change, which aws_lambda_events gives a type of its own (not an
/// EventBridge envelope), read as this function always has: a payload of another shape is
/// an `InvalidEvent` "malformed CodeDeploy deployment state change: …", without a log line.
struct DeploymentStateEvent(CodeDeployEvent);

impl Payload for DeploymentStateEvent {
    fn read(payload: Value, what: &str) -> Result<Self, HandlerError> {
        serde_json::from_value(payload)
            .map(Self)
            .map_err(|e| HandlerError::InvalidEvent(format!("malformed {what}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiplane::aws::fake::{FakeDeployer, FakeTimer, RecordingNotifier};
    use shiplane::engine::testing::FakeDeps;
    use shiplane::store::MemoryStore;

    fn event(path: &str) -> LambdaEvent<Value> {
        let path = format!(
            "{}/../../tests/fixtures/events/{path}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        invoke(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
    }

    fn deps() -> FakeDeps {
        Deps {
            store: MemoryStore::new(),
            deployer: FakeDeployer::default(),
            notifier: RecordingNotifier::default(),
            timer: FakeTimer::default(),
        }
    }

    fn invoke(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn tasks_shiplane_did_not_start_and_other_events_are_ignored() {
        let d = deps();
        for (fixture, why) in [
            ("ecs/migration-stopped-ok", "not started by Shiplane"),
            ("ecs/task-running", "RUNNING"),
            ("codedeploy/ready", "acts when it ends"),
            ("codedeploy/instance", "Instance"),
            // A rolling service's deployment Shiplane did not start, and one still in
            // progress (a circuit breaker's rollback starting).
            (
                "ecs/service-deployment-completed",
                "not started by Shiplane",
            ),
            (
                "ecs/service-deployment-rollback-in-progress",
                "acts when it ends",
            ),
            ("ecr/tagged-push", "ECR Image Action"),
        ] {
            let out = handle(&d, event(fixture)).await.unwrap();
            let reason = out["ignored"].as_str().unwrap_or_default();
            assert!(reason.contains(why), "{fixture}: {out}");
        }
        let err = handle(&d, event("codedeploy/missing-deployment"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
        assert!(d.deployer.calls().is_empty());
    }

    #[tokio::test]
    async fn malformed_events_are_rejected() {
        let d = deps();
        for (payload, says) in [
            (
                json!({"detail-type": "ECS Task State Change", "source": "aws.ecs",
                    "detail": {"lastStatus": "STOPPED"}}),
                "taskArn",
            ),
            (
                json!({"detail-type": "ECS Deployment State Change", "source": "aws.ecs",
                    "detail": {"eventName": "SERVICE_DEPLOYMENT_COMPLETED"}}),
                "detail.deploymentId",
            ),
            (
                json!({"detail-type": "ECS Task State Change", "detail": 3}),
                "malformed ECS task state change event",
            ),
            (
                json!({"detail-type": "CodeDeploy Deployment State-change Notification"}),
                "malformed CodeDeploy deployment state change: missing field",
            ),
        ] {
            let err = handle(&d, invoke(payload)).await.unwrap_err();
            assert_eq!(err.error_type(), "InvalidEvent", "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    shiplane_e2e::fuzz_campaign!(Fuzzed);

    struct Fuzzed;

    impl shiplane_e2e::fuzz::Target for Fuzzed {
        type Deps = FakeDeps;
        const NAME: &'static str = "deployment-events";
        const FAMILY: &'static [&'static str] = &[
            "events/codedeploy",
            "events/ecs",
            "codedeploy-deployment",
            "of-d-1",
        ];
        async fn deps(&self) -> Self::Deps {
            shiplane_e2e::fuzz::deps_with_a_release_deploying().await
        }
        async fn invoke(&self, deps: &Self::Deps, payload: Value) -> Result<Value, HandlerError> {
            handle(deps, invoke(payload)).await
        }
        fn effects(&self, deps: &Self::Deps) -> shiplane_e2e::fuzz::Effects {
            shiplane_e2e::fuzz::effects_of(deps)
        }
    }
}
