//! One reconciler pass per invocation. EventBridge Scheduler sends the schedule's input:
//! `{}` for every service, or `{"service": "api"}` for one. The pass asks ECS and CodeDeploy
//! about work in flight, then CloudWatch about alarms lanes last saw firing.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::aws::{AlarmReader, Deployer, Notifier, Timer};
use shiplane::engine::Deps;
use shiplane::lambda::{HandlerError, failed, moved};
use shiplane::release::Timestamp;
use shiplane::store::ReleaseStore;
use tracing::{info, instrument};

/// Runs one pass; store failures return a retryable error, and the next scheduled pass
/// picks up whatever this one could not finish.
#[instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer>(
    deps: &Deps<S, D, N, T>,
    alarms: &impl AlarmReader,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let only = match event.payload.get("service") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(HandlerError::InvalidEvent(format!(
                "\"service\" must be a service name, not {other}"
            )));
        }
    };
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(failed)?;
    if let Some(name) = &only
        && !pipeline.services.contains_key(name)
    {
        return Err(HandlerError::InvalidEvent(format!(
            "no service {name:?} in the current pipeline"
        )));
    }
    let report = engine
        .reconcile_with_alarms(alarms, &pipeline, only.as_deref(), Timestamp::now())
        .await
        .map_err(failed)?;
    info!(transitions = report.transitions.len(), "reconciled");
    Ok(json!({ "transitions": moved(&report) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiplane::aws::fake::{FakeAlarms, FakeDeps, ONE_SERVICE_PIPELINE, deps_with_pipeline};

    async fn deps() -> FakeDeps {
        deps_with_pipeline(ONE_SERVICE_PIPELINE).await
    }

    fn invoke(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn a_pass_over_nothing_changes_nothing_and_bad_input_is_an_invalid_event() {
        let d = deps().await;
        let cw = FakeAlarms::default();
        let out = handle(&d, &cw, invoke(json!({}))).await.unwrap();
        assert_eq!(out["transitions"], json!([]));
        let out = handle(&d, &cw, invoke(json!({"service": "api"})))
            .await
            .unwrap();
        assert_eq!(out["transitions"], json!([]));
        assert!(cw.asked.lock().unwrap().is_empty(), "no alarm fires");
        for bad in [json!({"service": 3}), json!({"service": "nope"})] {
            let err = handle(&d, &cw, invoke(bad)).await.unwrap_err();
            assert_eq!(err.error_type(), "InvalidEvent", "{err}");
        }
        assert!(d.deployer.calls().is_empty());
    }
}
