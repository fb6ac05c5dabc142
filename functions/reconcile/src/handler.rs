//! One reconciler pass per invocation. EventBridge Scheduler sends the schedule's input:
//! `{}` for every service, or `{"service": "api"}` for one. The pass reads the alarms of
//! every lane with work from CloudWatch, then asks ECS and CodeDeploy about work in flight
//! and finishes what each lane owes (`shiplane::engine` reconcile).

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::aws::AlarmReader;
use shiplane::engine::{Deps, Ports, Reconciled};
use shiplane::lambda::{HandlerError, failed, moved};
use shiplane::release::Timestamp;
use tracing::info;

/// Runs one pass. A lane that fails is logged and counted in the answer (`lanes_failed`,
/// `failures`), and the next scheduled pass tries it again; only a pass that reached no
/// lane at all (the store is down) is the function's error.
pub async fn handle<P: Ports>(
    deps: &Deps<P>,
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
    let pass = engine
        .reconcile_with_alarms(alarms, &pipeline, only.as_deref(), Timestamp::now())
        .await
        .map_err(failed)?;
    info!(
        transitions = pass.report.transitions.len(),
        lanes_failed = pass.failed.len(),
        bakes_left_owed = pass.bakes_left_owed.len(),
        alarms_read = pass.alarms_unread.is_none(),
        "reconciled"
    );
    Ok(answer(&pass))
}

/// The pass as the function answers it.
fn answer(pass: &Reconciled) -> Value {
    let failures: Vec<Value> = pass
        .failed
        .iter()
        .map(|f| {
            json!({
                "service": f.service,
                "environment": f.environment,
                "error": f.error.to_string(),
                "retryable": f.error.is_retryable(),
            })
        })
        .collect();
    let held: Vec<Value> = pass
        .bakes_left_owed
        .iter()
        .map(|lane| json!({"service": lane.service, "environment": lane.environment}))
        .collect();
    json!({
        "transitions": moved(&pass.report),
        "lanes_failed": pass.failed.len(),
        "failures": failures,
        "alarms_unread": pass.alarms_unread,
        "bakes_left_owed": held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiplane::aws::fake::FakeAlarms;
    use shiplane::engine::testing::{FakeDeps, ONE_SERVICE_PIPELINE, deps_with_pipeline};
    use shiplane::release::{Lane, ReleaseId};
    use shiplane::store::{Commit, ReleaseStore, Versioned};

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
        assert_eq!(out["lanes_failed"], json!(0));
        let out = handle(&d, &cw, invoke(json!({"service": "api"})))
            .await
            .unwrap();
        assert_eq!(out["transitions"], json!([]));
        assert!(cw.asked().is_empty(), "no lane has work");
        for bad in [json!({"service": 3}), json!({"service": "nope"})] {
            let err = handle(&d, &cw, invoke(bad)).await.unwrap_err();
            assert_eq!(err.error_type(), "InvalidEvent", "{err}");
        }
        assert!(d.deployer.calls().is_empty());
    }

    #[tokio::test]
    async fn the_answer_says_which_lanes_failed_and_why() {
        let d = deps().await;
        let mut lane = Lane::new("api", "dev");
        lane.queued = Some(ReleaseId::new(Timestamp(1_760_000_000_000)));
        d.store
            .commit(Commit {
                lanes: vec![Versioned {
                    item: lane,
                    version: 0,
                }],
                ..Commit::default()
            })
            .await
            .unwrap();
        let out = handle(&d, &FakeAlarms::default(), invoke(json!({})))
            .await
            .unwrap();
        assert_eq!(out["lanes_failed"], json!(1));
        let failure = &out["failures"][0];
        assert_eq!(
            (&failure["service"], &failure["environment"]),
            (&json!("api"), &json!("dev"))
        );
        let why = failure["error"].as_str().unwrap_or_default();
        assert!(why.contains("does not exist"), "{why}");
        assert_eq!(failure["retryable"], json!(false));
    }

    shiplane_e2e::fuzz_campaign!(Fuzzed);

    struct Fuzzed;

    impl shiplane_e2e::fuzz::Target for Fuzzed {
        type Deps = FakeDeps;
        const NAME: &'static str = "reconcile";
        const FAMILY: &'static [&'static str] = &["reconcile", "eventbridge"];
        async fn deps(&self) -> Self::Deps {
            deps_with_pipeline(&shiplane_e2e::fuzz::pipeline()).await
        }
        async fn invoke(&self, deps: &Self::Deps, payload: Value) -> Result<Value, HandlerError> {
            handle(deps, &FakeAlarms::default(), invoke(payload)).await
        }
        fn effects(&self, deps: &Self::Deps) -> shiplane_e2e::fuzz::Effects {
            shiplane_e2e::fuzz::effects_of(deps)
        }
    }
}
