//! A bake timer firing: EventBridge Scheduler invokes the promote function with the
//! schedule's `Target.Input` as the event, unchanged (a Lambda target gets the input as
//! its payload; Scheduler adds nothing around it). Shiplane wrote that input itself
//! ([`BakeTimer`]), so anything else is either another producer's event (ignored) or a
//! timer payload that fails validation (rejected, naming the field).

use serde_json::Value;

use super::Inbound;
use crate::facts::BakeTimer;
use crate::release::{InvalidInput, ReleaseId};

/// Parses a fired timer's payload.
pub fn parse_timer(payload: &Value) -> Result<Inbound<BakeTimer>, InvalidInput> {
    let source = payload.get("source").and_then(Value::as_str);
    if source != Some(BakeTimer::SOURCE) {
        return Ok(Inbound::Ignored(format!(
            "not a Shiplane bake timer (source {:?}; expected {:?})",
            source.unwrap_or("none"),
            BakeTimer::SOURCE
        )));
    }
    let text = |field: &'static str| {
        payload
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or(InvalidInput {
                field,
                message: "missing; a bake timer names service, environment, release and attempt"
                    .into(),
            })
    };
    let (service, environment) = (text("service")?, text("environment")?);
    let release = ReleaseId::parse(text("release")?)?;
    let attempt = payload
        .get("attempt")
        .and_then(Value::as_u64)
        .and_then(|a| u32::try_from(a).ok())
        .ok_or(InvalidInput {
            field: "attempt",
            message: "missing or not a whole number".into(),
        })?;
    Ok(Inbound::Accepted(BakeTimer::new(
        service,
        environment,
        &release,
        attempt,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_payload_a_timer_was_set_with_parses_back_to_it() {
        let timer = BakeTimer::new(
            "api",
            "dev",
            &ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap(),
            2,
        );
        let payload = serde_json::to_value(&timer).unwrap();
        assert_eq!(parse_timer(&payload).unwrap(), Inbound::Accepted(timer));
    }

    #[test]
    fn other_payloads_are_ignored_and_broken_timers_rejected_naming_the_field() {
        for other in [json!({}), json!({"source": "aws.events"}), json!([1])] {
            assert!(
                matches!(parse_timer(&other), Ok(Inbound::Ignored(_))),
                "{other}"
            );
        }
        let good = json!({"source": BakeTimer::SOURCE, "service": "api", "environment": "dev",
            "release": "01JD2B3C4D5E6F7G8H9J0KMNPQ", "attempt": 0});
        for (field, bad) in [
            ("service", json!("")),
            ("environment", json!(null)),
            ("release", json!("not-an-id")),
            ("attempt", json!(-1)),
            ("attempt", json!("1")),
        ] {
            let mut payload = good.clone();
            payload[field] = bad;
            let err = parse_timer(&payload).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
        assert!(matches!(parse_timer(&good), Ok(Inbound::Accepted(_))));
    }
}
