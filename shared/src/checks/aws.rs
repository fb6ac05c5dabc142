//! The production [`Checker`]: HTTP through the test listener, CloudWatch alarm states,
//! the ECS replacement task set, and the team's own Lambda smoke test.

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use serde_json::json;

use super::{CheckContext, CheckResult, Checker, HttpClient, excerpt};
use crate::pipeline::{Check, Probe};
use crate::sdk::{OnFirstUse, classify};

/// Runs every kind of check; each SDK client is built when a check first needs it.
pub struct AwsChecker {
    http: HttpClient,
    ecs: OnFirstUse<aws_sdk_ecs::Client>,
    cloudwatch: OnFirstUse<aws_sdk_cloudwatch::Client>,
    lambda: OnFirstUse<aws_sdk_lambda::Client>,
}

/// The client that invokes a team's smoke test: without the per-attempt limit of the
/// other calls, since the test runs as long as it runs and the check's own `timeout`
/// bounds it (a second attempt would run the test twice).
fn smoke_test_client(config: &aws_config::SdkConfig) -> aws_sdk_lambda::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .disable_operation_attempt_timeout()
        .build();
    let conf = aws_sdk_lambda::config::Builder::from(config)
        .timeout_config(timeouts)
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

impl AwsChecker {
    pub fn new(config: &aws_config::SdkConfig) -> AwsChecker {
        AwsChecker {
            http: HttpClient::new(),
            ecs: OnFirstUse::new(config, aws_sdk_ecs::Client::new),
            cloudwatch: OnFirstUse::new(config, aws_sdk_cloudwatch::Client::new),
            lambda: OnFirstUse::new(config, smoke_test_client),
        }
    }

    /// Alarms in ALARM among the stage's own and those its gate watches.
    async fn alarms(&self, ctx: &CheckContext<'_>) -> Result<Vec<String>, String> {
        let (names, prefixes) = ctx.watched_alarms();
        let mut firing = Vec::new();
        let mut requests: Vec<
            aws_sdk_cloudwatch::operation::describe_alarms::builders::DescribeAlarmsFluentBuilder,
        > = names
            .chunks(100)
            .map(|chunk| {
                self.cloudwatch
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
            })
            .collect();
        for prefix in &prefixes {
            requests.push(self.cloudwatch.describe_alarms().alarm_name_prefix(prefix));
        }
        for request in requests {
            let mut token = None;
            loop {
                let out = request
                    .clone()
                    .state_value(StateValue::Alarm)
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("CloudWatch DescribeAlarms", &e).message)?;
                firing.extend(
                    out.metric_alarms()
                        .iter()
                        .filter_map(|a| a.alarm_name.clone()),
                );
                firing.extend(
                    out.composite_alarms()
                        .iter()
                        .filter_map(|a| a.alarm_name.clone()),
                );
                token = out.next_token;
                if token.is_none() {
                    break;
                }
            }
        }
        firing.sort();
        firing.dedup();
        Ok(firing)
    }

    /// The replacement task set runs as many tasks as desired and is steady. The
    /// replacement is the task set CodeDeploy made for this deployment (its external id is
    /// the deployment id); failing that, the newest one.
    async fn ecs_steady(&self, ctx: &CheckContext<'_>) -> Result<String, String> {
        let (cluster, service) = ctx
            .stage
            .target
            .ecs_service()
            .ok_or("a task service runs no ECS service")?;
        let svc = crate::aws::ecs_service(&self.ecs, cluster, service)
            .await
            .map_err(|e| e.message)?;
        let sets = svc.task_sets();
        let set = sets
            .iter()
            .find(|t| t.external_id() == Some(ctx.deployment_id))
            .or_else(|| {
                sets.iter().max_by_key(|t| {
                    t.created_at()
                        .map(aws_sdk_cloudwatch::primitives::DateTime::secs)
                })
            })
            .ok_or_else(|| format!("ECS service {service} has no task set"))?;
        let (running, desired) = (set.running_count(), set.computed_desired_count());
        let steady = set
            .stability_status()
            .map(aws_sdk_ecs::types::StabilityStatus::as_str)
            == Some("STEADY_STATE");
        let what = format!(
            "task set {}: {running} of {desired} tasks running, {}",
            set.id().unwrap_or("?"),
            set.stability_status()
                .map_or("stability unknown", |s| s.as_str())
        );
        if running == desired && desired > 0 && steady {
            Ok(what)
        } else {
            Err(what)
        }
    }

    /// Invokes the team's smoke test with what it tests; it must return without error.
    async fn lambda(&self, function: &str, ctx: &CheckContext<'_>) -> Result<String, String> {
        let payload = json!({
            "source": "shiplane",
            "deploymentId": ctx.deployment_id,
            "service": ctx.service.name,
            "environment": ctx.stage.environment,
        });
        let out = self
            .lambda
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| classify("Lambda Invoke", &e).message)?;
        let body = out
            .payload()
            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
            .unwrap_or_default();
        match out.function_error() {
            Some(kind) => Err(format!("{function} failed ({kind}): {}", excerpt(&body))),
            None => Ok(excerpt(&body)),
        }
    }
}

impl Checker for AwsChecker {
    async fn run(&self, check: &Check, ctx: &CheckContext<'_>) -> CheckResult {
        let started = Instant::now();
        let judged = |r: Result<String, String>, started: Instant| {
            let latency: Duration = started.elapsed();
            match r {
                Ok(what) => CheckResult::passed(latency, what),
                Err(why) => CheckResult::failed(latency, why),
            }
        };
        match &check.probe {
            Probe::Http(probe) => self.http.probe(probe).await,
            Probe::Alarms => {
                let r = self.alarms(ctx).await.and_then(|firing| {
                    if firing.is_empty() {
                        Ok("no alarm in ALARM".to_string())
                    } else {
                        Err(format!("in ALARM: {}", firing.join(", ")))
                    }
                });
                judged(r, started)
            }
            Probe::EcsSteady => judged(self.ecs_steady(ctx).await, started),
            Probe::Lambda { function } => judged(self.lambda(function, ctx).await, started),
        }
    }
}
