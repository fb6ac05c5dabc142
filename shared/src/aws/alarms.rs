//! Reading alarm states from CloudWatch: alarms are state, not edges (DESIGN invariant 12).
//! The reconciler reads the current state of every alarm a lane with work watches, so a
//! change whose event was lost (an ALARM that should have rolled a release back, an OK
//! that should have let a gated environment go) is applied all the same.

use std::future::Future;

use super::DeployError;
use crate::facts::AlarmChange;

/// The port current alarm states are read through.
pub trait AlarmReader: Send + Sync {
    /// The current state of each alarm named in `names` or whose name starts with one of
    /// `prefixes`, as a change at the time it entered that state; alarms CloudWatch does
    /// not know are left out.
    fn current(
        &self,
        names: &[String],
        prefixes: &[String],
    ) -> impl Future<Output = Result<Vec<AlarmChange>, DeployError>> + Send;
}

/// The prefixes to ask about: sorted, each once, none that a shorter one already covers
/// (`api-` covers `api-dev-`), since CloudWatch takes one prefix per call.
pub(crate) fn covering_prefixes(prefixes: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = prefixes.iter().collect();
    sorted.sort();
    let mut out: Vec<String> = Vec::new();
    for p in sorted {
        if !out.iter().any(|kept| p.starts_with(kept.as_str())) {
            out.push(p.clone());
        }
    }
    out
}

#[cfg(feature = "alarms")]
pub use cloudwatch::CloudWatchAlarms;

#[cfg(feature = "alarms")]
mod cloudwatch {
    use std::collections::BTreeMap;

    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{AlarmType, StateValue};

    use super::*;
    use crate::aws::error::sdk;
    use crate::release::AlarmState;
    use crate::release::Timestamp;
    use crate::sdk::OnFirstUse;

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

    /// An alarm's state as a change. Its time is when the state last changed
    /// (`StateTransitionedTimestamp`), as the state-change event says; not
    /// `StateUpdatedTimestamp`, which also moves when only the reason does and would make an
    /// alarm that stays in ALARM look like a new change on every read.
    fn change(
        name: Option<&str>,
        state: Option<&StateValue>,
        transitioned: Option<&DateTime>,
        updated: Option<&DateTime>,
        reason: Option<&str>,
    ) -> Option<AlarmChange> {
        let state = match state? {
            StateValue::Alarm => AlarmState::Alarm,
            StateValue::Ok => AlarmState::Ok,
            StateValue::InsufficientData => AlarmState::InsufficientData,
            _ => return None,
        };
        let at = u64::try_from(transitioned.or(updated)?.to_millis().ok()?).ok()?;
        Some(AlarmChange {
            alarm: name?.to_string(),
            state,
            at: Timestamp(at),
            reason: reason.unwrap_or("read from CloudWatch").to_string(),
        })
    }

    /// Which alarms one DescribeAlarms asks about (CloudWatch takes names or one prefix).
    enum Filter<'a> {
        Names(&'a [String]),
        Prefix(&'a str),
    }

    impl CloudWatchAlarms {
        /// Every page of one DescribeAlarms, metric and composite alarms alike, into `out`.
        async fn describe(
            &self,
            filter: Filter<'_>,
            out: &mut BTreeMap<String, AlarmChange>,
        ) -> Result<(), DeployError> {
            let mut token = None;
            loop {
                let mut ask = self
                    .cloudwatch
                    .describe_alarms()
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .max_records(100)
                    .set_next_token(token.take());
                ask = match filter {
                    Filter::Names(names) => ask.set_alarm_names(Some(names.to_vec())),
                    Filter::Prefix(prefix) => ask.alarm_name_prefix(prefix),
                };
                let page = ask
                    .send()
                    .await
                    .map_err(|e| sdk("CloudWatch DescribeAlarms", &e))?;
                // Metric and composite alarms share these fields, but no type or trait.
                macro_rules! change_of {
                    ($alarm:expr) => {
                        change(
                            $alarm.alarm_name.as_deref(),
                            $alarm.state_value.as_ref(),
                            $alarm.state_transitioned_timestamp.as_ref(),
                            $alarm.state_updated_timestamp.as_ref(),
                            $alarm.state_reason.as_deref(),
                        )
                    };
                }
                let metric = page.metric_alarms().iter().filter_map(|a| change_of!(a));
                let composite = page.composite_alarms().iter().filter_map(|a| change_of!(a));
                for c in metric.chain(composite) {
                    out.insert(c.alarm.clone(), c);
                }
                token = page.next_token;
                if token.is_none() {
                    return Ok(());
                }
            }
        }
    }

    impl AlarmReader for CloudWatchAlarms {
        /// 100 names per call, then one call per prefix not covered by a shorter one; one
        /// call at a time (DescribeAlarms allows few calls a second per account).
        async fn current(
            &self,
            names: &[String],
            prefixes: &[String],
        ) -> Result<Vec<AlarmChange>, DeployError> {
            let mut out = BTreeMap::new();
            for chunk in names.chunks(100) {
                self.describe(Filter::Names(chunk), &mut out).await?;
            }
            for prefix in covering_prefixes(prefixes) {
                self.describe(Filter::Prefix(&prefix), &mut out).await?;
            }
            Ok(out.into_values().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::covering_prefixes;

    #[test]
    fn a_prefix_is_asked_once_and_not_when_a_shorter_one_covers_it() {
        let given: Vec<String> = ["api-dev-", "web-", "api-", "web-", "api-prod-"]
            .map(String::from)
            .to_vec();
        assert_eq!(covering_prefixes(&given), ["api-", "web-"]);
        assert!(covering_prefixes(&[]).is_empty());
    }
}
