//! One bake timer firing: the payload Shiplane set the schedule with
//! (`{"source": "shiplane.bake-timer", "service", "environment", "release", "attempt"}`).
//! The bake ends through the stage's gates; the release then waits for approval in the
//! next environment, or deploys there.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::aws::AlarmReader;
use shiplane::engine::{Deps, Ports};
use shiplane::inbound::schedule::parse_timer;
use shiplane::lambda::{HandlerError, handle_event};

/// Handles one fired timer, the stage's alarms read from CloudWatch first; store failures
/// return an error so Scheduler's retry policy delivers it again (the reconciler ends the
/// bake if every delivery fails).
pub async fn handle<P: Ports>(
    deps: &Deps<P>,
    alarms: &impl AlarmReader,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    handle_event(
        event.payload,
        "bake timer",
        |payload: &Value, _| parse_timer(payload),
        async |timer, now| deps.engine().on_bake_timer_reading(alarms, timer, now).await,
        |timer| json!({"release": timer.release, "service": timer.service, "environment": timer.environment}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiplane::aws::fake::FakeAlarms;
    use shiplane::engine::testing::{ONE_SERVICE_PIPELINE, deps_with_pipeline};
    use shiplane::facts::BakeTimer;

    #[tokio::test]
    async fn bad_and_foreign_payloads_change_nothing() {
        let deps = deps_with_pipeline(ONE_SERVICE_PIPELINE).await;
        let fire = async |payload| {
            let event = LambdaEvent::new(payload, lambda_runtime::Context::default());
            handle(&deps, &FakeAlarms::default(), event).await
        };
        let out = fire(json!({"source": "aws.scheduler"})).await.unwrap();
        let reason = out["ignored"].as_str().unwrap_or_default();
        assert!(reason.contains("not a Shiplane bake timer"), "{out}");
        let err = fire(json!({"source": BakeTimer::SOURCE, "service": "api"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("environment"), "{err}");
        // A timer for a release that does not exist (deleted by hand, another table).
        let out = fire(json!({"source": BakeTimer::SOURCE, "service": "api",
            "environment": "dev", "release": "01JD2B3C4D5E6F7G8H9J0KMNPQ", "attempt": 0}))
        .await
        .unwrap();
        let reason = out["ignored"].as_str().unwrap_or_default();
        assert!(reason.contains("does not exist"), "{out}");
        assert!(deps.deployer.calls().is_empty());
        assert!(deps.notifier.kinds().is_empty());
        assert!(deps.timer.log().is_empty());
    }

    /// The seeded mutation campaign over every event fixture (`shiplane_e2e::fuzz`): no
    /// panic, a stable error type, nothing changed by what is refused or ignored, one log
    /// line per record. `make fuzz` runs it longer.
    #[test]
    fn fuzz_campaign() {
        let tally = shiplane_e2e::fuzz::run(&Fuzzed);
        // A timer reaches the engine only for a release that bakes, whose id no fixture
        // can know: every case is refused or ignored, and must change nothing.
        assert!(tally.refused > 0, "{tally:?}");
    }

    struct Fuzzed;

    impl shiplane_e2e::fuzz::Target for Fuzzed {
        type Deps = shiplane::engine::testing::FakeDeps;
        const NAME: &'static str = "promote";
        const FAMILY: &'static [&'static str] = &["bake-timer", "eventbridge-schedule"];
        async fn deps(&self) -> Self::Deps {
            deps_with_pipeline(&shiplane_e2e::fuzz::pipeline()).await
        }
        async fn invoke(&self, deps: &Self::Deps, payload: Value) -> Result<Value, HandlerError> {
            let event = LambdaEvent::new(payload, lambda_runtime::Context::default());
            handle(deps, &FakeAlarms::default(), event).await
        }
        fn effects(&self, deps: &Self::Deps) -> shiplane_e2e::fuzz::Effects {
            shiplane_e2e::fuzz::effects_of(deps)
        }
    }
}
