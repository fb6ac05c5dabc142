//! CloudWatch alarm state changes, in both shapes they arrive in: the EventBridge
//! "CloudWatch Alarm State Change" event (`detail.alarmName`, `detail.state`), and the
//! payload an alarm action sends a Lambda function directly (`alarmData.alarmName`,
//! `alarmData.state`; CloudWatch's "Lambda alarm actions", 2023).
//!
//! Only what Shiplane needs is read, with its own types: the alarm's configuration (metric
//! math, composite rules, a period of 86,400 s that overflows the `u16` period of
//! aws_lambda_events' typed `CloudWatchAlarm`) is left as it is.

use serde::Deserialize;
use serde_json::Value;

use super::Inbound;
use crate::facts::AlarmChange;
use crate::release::{InvalidInput, Timestamp, escaped};

pub use crate::release::AlarmState;

#[derive(Deserialize)]
struct StateRaw {
    value: Option<String>,
    reason: Option<String>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmRaw {
    alarm_name: Option<String>,
    state: Option<StateRaw>,
}

fn field(name: &'static str, message: impl Into<String>) -> InvalidInput {
    InvalidInput {
        field: name,
        message: message.into(),
    }
}

/// CloudWatch's timestamps: `2026-11-16T04:00:00.123+0000` (or an RFC 3339 offset or `Z`).
pub fn parse_cloudwatch_time(text: &str) -> Result<Timestamp, String> {
    let bad = || format!("{:?} is not a CloudWatch timestamp", escaped(text));
    let split = text
        .char_indices()
        .skip(19)
        .find(|(_, c)| matches!(c, '+' | '-' | 'Z'))
        .map(|(i, _)| i);
    let (base, offset) = match split {
        Some(i) => text.split_at(i),
        None => (text, "Z"),
    };
    let utc = humantime::parse_rfc3339_weak(base).map_err(|_| bad())?;
    let offset_ms: i64 = match offset {
        "Z" | "" => 0,
        o => {
            let digits: String = o[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return Err(bad());
            }
            let hours: i64 = digits[..2].parse().map_err(|_| bad())?;
            let minutes: i64 = digits[2..].parse().map_err(|_| bad())?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (hours * 60 + minutes) * 60_000
        }
    };
    let ms = utc
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad())?
        .as_millis();
    let ms = i64::try_from(ms).map_err(|_| bad())? - offset_ms;
    u64::try_from(ms).map(Timestamp).map_err(|_| bad())
}

/// The alarm part of either shape, or why the payload is neither: both come from CloudWatch
/// (`source` "aws.cloudwatch"); an EventBridge event says it is an alarm state change in
/// its `detail-type` and carries the alarm in `detail`; an alarm action's payload has no
/// `detail-type` and carries it in `alarmData`.
fn alarm_of(payload: &Value) -> Result<Option<&Value>, String> {
    let text = |key: &str| payload.get(key).and_then(Value::as_str);
    let source = text("source").unwrap_or_default();
    if source != "aws.cloudwatch" {
        return Err(format!(
            "not from CloudWatch (source {:?})",
            escaped(source)
        ));
    }
    match text("detail-type") {
        Some("CloudWatch Alarm State Change") => Ok(payload.get("detail")),
        None if payload.get("alarmData").is_some() => Ok(payload.get("alarmData")),
        kind => Err(format!(
            "not a CloudWatch alarm state change (detail-type {:?})",
            escaped(kind.unwrap_or_default())
        )),
    }
}

/// Parses either shape; other events are ignored ([`alarm_of`] says why), and a change without an alarm name, a
/// known state or a readable timestamp, or stamped ahead of `now` (the function's clock)
/// by more than [`super::MAX_CLOCK_SKEW`], is rejected naming the field.
pub fn parse_alarm(payload: &Value, now: Timestamp) -> Result<Inbound<AlarmChange>, InvalidInput> {
    let raw = match alarm_of(payload) {
        Ok(raw) => raw.cloned().unwrap_or(Value::Null),
        Err(why) => return Ok(Inbound::Ignored(why)),
    };
    let raw: AlarmRaw = serde_json::from_value(raw)
        .map_err(|e| field("detail", format!("not an alarm state change: {e}")))?;
    let alarm = raw
        .alarm_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| field("alarmName", "missing from the event"))?;
    let state = raw
        .state
        .ok_or_else(|| field("state", "missing from the event"))?;
    let value = state.value.unwrap_or_default();
    let state_value = match value.as_str() {
        "OK" => AlarmState::Ok,
        "ALARM" => AlarmState::Alarm,
        "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
        other => {
            return Err(field(
                "state.value",
                format!("{:?} is not OK, ALARM or INSUFFICIENT_DATA", escaped(other)),
            ));
        }
    };
    let at = state
        .timestamp
        .as_deref()
        .ok_or_else(|| field("state.timestamp", "missing from the event"))
        .and_then(|t| parse_cloudwatch_time(t).map_err(|e| field("state.timestamp", e)))
        .and_then(|at| super::not_ahead("state.timestamp", at, now))?;
    Ok(Inbound::Accepted(AlarmChange {
        alarm,
        state: state_value,
        at,
        reason: state.reason.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Result<Inbound<AlarmChange>, InvalidInput> {
        let path = format!(
            "{}/../tests/fixtures/events/cloudwatch/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_alarm(
            &serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")),
            Timestamp::now(),
        )
    }

    fn accepted(name: &str) -> AlarmChange {
        match fixture(name) {
            Ok(Inbound::Accepted(c)) => c,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn both_shapes_and_every_kind_of_alarm_parse() {
        let eb = accepted("eventbridge-alarm");
        assert_eq!(
            (eb.alarm.as_str(), eb.state),
            ("api-dev-5xx", AlarmState::Alarm)
        );
        assert_eq!(
            eb.at,
            parse_cloudwatch_time("2026-11-16T04:00:00.123Z").unwrap()
        );
        assert!(eb.reason.starts_with("Threshold Crossed"));
        let direct = accepted("lambda-action-alarm");
        assert_eq!(
            (direct.alarm.as_str(), direct.state, direct.at),
            ("api-dev-5xx", AlarmState::Alarm, eb.at)
        );
        assert_eq!(accepted("eventbridge-ok").state, AlarmState::Ok);
        assert_eq!(
            accepted("eventbridge-insufficient-data").state,
            AlarmState::InsufficientData
        );
        assert_eq!(
            accepted("eventbridge-metric-math-daily").alarm,
            "api-dev-error-rate"
        );
        assert_eq!(accepted("eventbridge-composite").alarm, "api-dev-health");
        assert_eq!(
            fixture("bad-timestamp").unwrap_err().field,
            "state.timestamp"
        );
        assert!(matches!(
            parse_alarm(
                &serde_json::json!({"source": "aws.cloudwatch", "detail-type": "ECS Task State Change", "detail": {}}),
                Timestamp::now()
            ),
            Ok(Inbound::Ignored(_))
        ));
        assert_eq!(
            parse_alarm(&serde_json::json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {"state": {"value": "ALARM"}}}), Timestamp::now())
                .unwrap_err()
                .field,
            "alarmName"
        );
    }

    /// An alarm change in either shape that another source sent, or whose `detail-type`
    /// says it is something else, is no alarm change: ignored, with the reason.
    #[test]
    fn only_cloudwatchs_alarm_state_changes_are_read() {
        let load = |shape: &str| -> Value {
            let path = format!(
                "{}/../tests/fixtures/events/cloudwatch/{shape}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
        };
        let ignored = |payload: &Value| match parse_alarm(payload, Timestamp::now()) {
            Ok(Inbound::Ignored(why)) => why,
            other => panic!("{payload}: {other:?}"),
        };
        for shape in ["eventbridge-alarm", "lambda-action-alarm"] {
            let mut forged = load(shape);
            forged["source"] = "my.app".into();
            assert!(ignored(&forged).contains("source \"my.app\""), "{shape}");
            forged.as_object_mut().unwrap().remove("source");
            assert!(ignored(&forged).contains("source \"\""), "{shape}");
        }
        let mut direct = load("lambda-action-alarm");
        direct["detail-type"] = "ECS Task State Change".into();
        assert!(ignored(&direct).contains("ECS Task State Change"));
        let mut eventbridge = load("eventbridge-alarm");
        eventbridge["detail-type"] = "CloudWatch Alarm Configuration Change".into();
        assert!(ignored(&eventbridge).contains("Configuration Change"));
        eventbridge.as_object_mut().unwrap().remove("detail-type");
        assert!(ignored(&eventbridge).contains("detail-type \"\""));
    }

    #[test]
    fn a_change_stamped_ahead_of_the_clock_is_refused() {
        for shape in ["eventbridge-ok", "lambda-action-alarm"] {
            let path = format!(
                "{}/../tests/fixtures/events/cloudwatch/{shape}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let mut payload: Value = serde_json::from_str(&text).unwrap();
            let key = if shape.starts_with("eventbridge") {
                "detail"
            } else {
                "alarmData"
            };
            payload[key]["state"]["timestamp"] = "9999-12-31T23:59:59.000+0000".into();
            let err = parse_alarm(&payload, Timestamp::now()).unwrap_err();
            assert_eq!(err.field, "state.timestamp", "{shape}: {err}");
        }
    }

    #[test]
    fn cloudwatch_timestamps_with_every_offset_spelling() {
        let z = parse_cloudwatch_time("2026-11-16T04:00:00.123Z").unwrap();
        assert_eq!(parse_cloudwatch_time("2026-11-16T04:00:00.123+0000"), Ok(z));
        assert_eq!(
            parse_cloudwatch_time("2026-11-16T05:00:00.123+01:00"),
            Ok(z)
        );
        assert_eq!(parse_cloudwatch_time("2026-11-16T03:30:00.123-0030"), Ok(z));
        assert_eq!(
            parse_cloudwatch_time("2026-11-16T04:00:00Z").unwrap().0 + 123,
            z.0
        );
        for bad in ["yesterday", "2026-11-16T04:00:00.123+00", ""] {
            assert!(parse_cloudwatch_time(bad).is_err(), "{bad}");
        }
    }
}
