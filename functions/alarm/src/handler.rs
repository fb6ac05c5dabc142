//! One alarm state change, from EventBridge ("CloudWatch Alarm State Change") or from an
//! alarm action invoking this function directly; both shapes parse to the same change.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::engine::{Deps, Ports};
use shiplane::inbound::alarm::parse_alarm;
use shiplane::lambda::{HandlerError, handle_event};

/// Handles one alarm state change; store failures return an error so Lambda retries.
pub async fn handle<P: Ports>(
    deps: &Deps<P>,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    handle_event(
        event.payload,
        "CloudWatch alarm state change",
        parse_alarm,
        async |change, now| deps.engine().on_alarm(change, now).await,
        |change| json!({"alarm": change.alarm, "state": change.state.as_str()}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiplane::engine::testing::deps_with_pipeline;
    use shiplane::release::AlarmState;
    use shiplane::store::ReleaseStore;

    fn invoke(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    fn change(state: &str, timestamp: &str) -> Value {
        json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": "api-dev-5xx",
                "state": {"value": state, "reason": "test", "timestamp": timestamp}}})
    }

    /// A change of a watched alarm that CloudWatch did not send, in either shape, or that
    /// says it is another kind of event: ignored, and no lane records it.
    #[tokio::test]
    async fn an_alarm_change_from_elsewhere_is_ignored_and_recorded_nowhere() {
        let d = deps_with_pipeline(&shiplane_e2e::fuzz::pipeline()).await;
        let mut forged = change("ALARM", "2026-11-16T04:00:00.000+0000");
        forged["source"] = json!("my.app");
        let direct = json!({"source": "my.app", "alarmData": forged["detail"].clone()});
        let mut other_kind = forged.clone();
        other_kind["source"] = json!("aws.cloudwatch");
        other_kind["detail-type"] = json!("ECS Task State Change");
        other_kind["alarmData"] = forged["detail"].clone();
        for payload in [forged, direct, other_kind] {
            let out = handle(&d, invoke(payload.clone())).await.unwrap();
            assert!(out["ignored"].is_string(), "{payload}: {out}");
        }
        let lane = d.store.lane("api", "dev").await.unwrap();
        assert!(lane.item.alarms.is_empty(), "nothing recorded: {lane:?}");
        assert!(d.notifier.kinds().is_empty());
    }

    /// An alarm change stamped in year 9999 would outrank every real change after it: the
    /// alarm would fire forever and hold its gates. It is refused and recorded nowhere, and
    /// the real changes after it count.
    #[tokio::test]
    async fn a_change_stamped_far_ahead_is_refused_and_the_lane_keeps_listening() {
        let d = deps_with_pipeline(&shiplane_e2e::fuzz::pipeline()).await;
        let err = handle(&d, invoke(change("ALARM", "9999-12-31T23:59:59.000+0000")))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
        assert!(err.to_string().contains("state.timestamp"), "{err}");
        let lane = d.store.lane("api", "dev").await.unwrap();
        assert!(lane.item.alarms.is_empty(), "nothing recorded: {lane:?}");
        for (state, at) in [
            ("ALARM", "2026-11-16T04:00:00.000+0000"),
            ("OK", "2026-11-16T04:10:00.000+0000"),
        ] {
            let out = handle(&d, invoke(change(state, at))).await.unwrap();
            assert_eq!(out["refused"], json!([]), "{state}: {out}");
            let lane = d.store.lane("api", "dev").await.unwrap().item;
            let expected = if state == "OK" {
                AlarmState::Ok
            } else {
                AlarmState::Alarm
            };
            assert_eq!(lane.alarms["api-dev-5xx"].state, expected, "{state}");
        }
        assert!(d.deployer.calls().is_empty());
    }

    shiplane_e2e::fuzz_campaign!(Fuzzed);

    struct Fuzzed;

    impl shiplane_e2e::fuzz::Target for Fuzzed {
        type Deps = shiplane::engine::testing::FakeDeps;
        const NAME: &'static str = "alarm";
        const FAMILY: &'static [&'static str] = &["cloudwatch"];
        async fn deps(&self) -> Self::Deps {
            deps_with_pipeline(&shiplane_e2e::fuzz::pipeline()).await
        }
        async fn invoke(&self, deps: &Self::Deps, payload: Value) -> Result<Value, HandlerError> {
            handle(deps, invoke(payload)).await
        }
        fn effects(&self, deps: &Self::Deps) -> shiplane_e2e::fuzz::Effects {
            shiplane_e2e::fuzz::effects_of(deps)
        }
    }
}
