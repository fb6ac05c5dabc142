//! One alarm state change, from EventBridge ("CloudWatch Alarm State Change") or from an
//! alarm action invoking this function directly; both shapes parse to the same change.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::aws::{Deployer, Notifier, Timer};
use shiplane::engine::Deps;
use shiplane::inbound::Inbound;
use shiplane::inbound::alarm::parse_alarm;
use shiplane::lambda::{HandlerError, accepted, failed, ignored};
use shiplane::release::Timestamp;
use shiplane::store::ReleaseStore;
use tracing::{info, instrument};

/// Handles one alarm state change; store failures return an error so Lambda retries.
#[instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer>(
    deps: &Deps<S, D, N, T>,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let change = match accepted(parse_alarm(&event.payload), "CloudWatch alarm state change")? {
        Ok(change) => change,
        Err(answer) => return Ok(answer),
    };
    match deps.engine().on_alarm(&change, Timestamp::now()).await {
        Ok(Inbound::Ignored(reason)) => Ok(ignored(&reason)),
        Ok(Inbound::Accepted(report)) => {
            info!(alarm = ?change.alarm, state = change.state.as_str(), transitions = report.transitions.len(), "alarm applied");
            Ok(json!({
                "alarm": change.alarm,
                "state": change.state.as_str(),
                "transitions": report.transitions.iter().map(|t| json!({
                    "release": t.release, "environment": t.environment, "to": t.to, "cause": t.cause,
                })).collect::<Vec<_>>(),
                "refused": report.refused,
            }))
        }
        Err(e) => Err(failed(e)),
    }
}
