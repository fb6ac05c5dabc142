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
