//! Reading alarm states from CloudWatch: the reconciler's way to learn of a state change
//! whose event was lost (an OK that never arrived would hold a gated environment forever).

use std::future::Future;

use super::DeployError;
use crate::inbound::alarm::AlarmChange;

/// The port current alarm states are read through.
pub trait AlarmReader: Send + Sync {
    /// Each named alarm's current state, as a change at the time it entered that state
    /// (CloudWatch's `StateUpdatedTimestamp`); alarms CloudWatch does not know are left out.
    fn current(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<AlarmChange>, DeployError>> + Send;
}

#[cfg(feature = "alarms")]
pub use cloudwatch::CloudWatchAlarms;

#[cfg(feature = "alarms")]
mod cloudwatch {
    use aws_sdk_cloudwatch::types::{AlarmType, StateValue};

    use super::*;
    use crate::aws::{OnFirstUse, deployer::sdk};
    use crate::inbound::alarm::AlarmState;
    use crate::release::Timestamp;

    /// The production [`AlarmReader`]: CloudWatch DescribeAlarms, 100 names per call.
    #[derive(Clone, Debug)]
    pub struct CloudWatchAlarms {
        cloudwatch: OnFirstUse<aws_sdk_cloudwatch::Client>,
    }

    impl CloudWatchAlarms {
        pub fn new(cloudwatch: impl Into<OnFirstUse<aws_sdk_cloudwatch::Client>>) -> Self {
            CloudWatchAlarms {
                cloudwatch: cloudwatch.into(),
            }
        }

        pub fn from_config(config: &aws_config::SdkConfig) -> Self {
            Self::new(OnFirstUse::new(config, aws_sdk_cloudwatch::Client::new))
        }
    }

    fn change(
        name: Option<&str>,
        state: Option<&StateValue>,
        updated: Option<&aws_sdk_cloudwatch::primitives::DateTime>,
        reason: Option<&str>,
    ) -> Option<AlarmChange> {
        let state = match state? {
            StateValue::Alarm => AlarmState::Alarm,
            StateValue::Ok => AlarmState::Ok,
            StateValue::InsufficientData => AlarmState::InsufficientData,
            _ => return None,
        };
        let at = u64::try_from(updated?.to_millis().ok()?).ok()?;
        Some(AlarmChange {
            alarm: name?.to_string(),
            state,
            at: Timestamp(at),
            reason: reason.unwrap_or("read from CloudWatch").to_string(),
        })
    }

    impl AlarmReader for CloudWatchAlarms {
        async fn current(&self, names: &[String]) -> Result<Vec<AlarmChange>, DeployError> {
            let mut out = Vec::new();
            for chunk in names.chunks(100) {
                let mut token = None;
                loop {
                    let page = self
                        .cloudwatch
                        .describe_alarms()
                        .set_alarm_names(Some(chunk.to_vec()))
                        .alarm_types(AlarmType::MetricAlarm)
                        .alarm_types(AlarmType::CompositeAlarm)
                        .set_next_token(token.take())
                        .send()
                        .await
                        .map_err(|e| sdk("CloudWatch DescribeAlarms", &e))?;
                    out.extend(page.metric_alarms().iter().filter_map(|a| {
                        change(
                            a.alarm_name.as_deref(),
                            a.state_value.as_ref(),
                            a.state_updated_timestamp.as_ref(),
                            a.state_reason.as_deref(),
                        )
                    }));
                    out.extend(page.composite_alarms().iter().filter_map(|a| {
                        change(
                            a.alarm_name.as_deref(),
                            a.state_value.as_ref(),
                            a.state_updated_timestamp.as_ref(),
                            a.state_reason.as_deref(),
                        )
                    }));
                    token = page.next_token;
                    if token.is_none() {
                        break;
                    }
                }
            }
            Ok(out)
        }
    }
}
