//! `SHIPLANE_*` settings, read once at start-up.

use std::collections::HashMap;
use std::time::Duration;

/// How long one AWS call may wait for its answer before the SDK gives up on that attempt
/// and retries, unless `SHIPLANE_AWS_ATTEMPT_TIMEOUT` says otherwise.
pub const DEFAULT_AWS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A setting that is missing or unusable; names the variable and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    pub name: &'static str,
    pub problem: String,
}

/// What every Shiplane function needs to know about its surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The DynamoDB table holding releases, lanes, history and the pipeline.
    pub table: String,
    /// The SNS topic every transition is announced on.
    pub topic_arn: String,
    /// A second SNS topic that gets every notification in AWS Chatbot's custom-notification
    /// schema (SHIPLANE_CHATBOT_TOPIC_ARN; optional: unset or empty sends none).
    pub chatbot_topic_arn: Option<String>,
    /// The deploy-hook Lambda (name or ARN) every AppSpec names for its lifecycle hooks.
    pub hook_function: String,
    /// The EventBridge Scheduler group bake timers are created in.
    pub schedule_group: String,
    /// The promote function (ARN) a bake timer invokes when the bake ends.
    pub promote_function_arn: String,
    /// The role Scheduler assumes to invoke the promote function.
    pub scheduler_role_arn: String,
    /// The region the function runs in (AWS_REGION, which Lambda always sets).
    pub region: String,
    /// Trust the platform's certificate store instead of the embedded Amazon roots
    /// (SHIPLANE_TLS_NATIVE_ROOTS=1; behind a TLS-inspecting proxy, say).
    pub native_tls_roots: bool,
    /// How long one attempt of an AWS call may wait for its answer
    /// (SHIPLANE_AWS_ATTEMPT_TIMEOUT, e.g. `10s`): an endpoint that accepts the connection
    /// and goes silent is retried, not waited on until the function times out.
    pub aws_attempt_timeout: Duration,
}

impl Settings {
    /// Reads the process environment; fails naming the first missing variable.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads the process environment, or ends the process with the variable's name and the
    /// fix: a function that cannot start says why in its init log.
    pub fn from_env_or_exit(function: &str) -> Settings {
        Self::from_env().unwrap_or_else(|e| {
            eprintln!("{function} cannot start: {e}");
            std::process::exit(1)
        })
    }

    /// Reads settings from a map, so tests need not touch the process environment.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        Ok(Settings {
            table: required(vars, "SHIPLANE_TABLE", "the DynamoDB table name")?,
            topic_arn: required(vars, "SHIPLANE_TOPIC_ARN", "the SNS topic ARN")?,
            chatbot_topic_arn: vars
                .get("SHIPLANE_CHATBOT_TOPIC_ARN")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            hook_function: required(
                vars,
                "SHIPLANE_HOOK_FUNCTION",
                "the deploy-hook Lambda function name or ARN",
            )?,
            schedule_group: required(
                vars,
                "SHIPLANE_SCHEDULE_GROUP",
                "the EventBridge Scheduler group for bake timers",
            )?,
            promote_function_arn: required(
                vars,
                "SHIPLANE_PROMOTE_FUNCTION_ARN",
                "the ARN of the promote function bake timers invoke",
            )?,
            scheduler_role_arn: required(
                vars,
                "SHIPLANE_SCHEDULER_ROLE_ARN",
                "the ARN of the role Scheduler assumes to invoke the promote function",
            )?,
            region: required(vars, "AWS_REGION", "the AWS region (Lambda sets it)")?,
            native_tls_roots: vars
                .get("SHIPLANE_TLS_NATIVE_ROOTS")
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes")),
            aws_attempt_timeout: match vars.get("SHIPLANE_AWS_ATTEMPT_TIMEOUT").map(|v| v.trim()) {
                None | Some("") => DEFAULT_AWS_ATTEMPT_TIMEOUT,
                Some(v) => humantime::parse_duration(v)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| SettingsError {
                        name: "SHIPLANE_AWS_ATTEMPT_TIMEOUT",
                        problem: format!(
                            "{v:?} is not a duration; set it to one such as 10s or 2500ms, or unset it for {} s",
                            DEFAULT_AWS_ATTEMPT_TIMEOUT.as_secs()
                        ),
                    })?,
            },
        })
    }
}

/// Reads one required variable, naming it and what it should hold when it is not set.
pub fn required(
    vars: &HashMap<String, String>,
    name: &'static str,
    what: &str,
) -> Result<String, SettingsError> {
    match vars.get(name).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(SettingsError {
            name,
            problem: format!("not set; set it to {what}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_or_names_the_missing_one() {
        let mut vars = HashMap::new();
        let err = Settings::from_vars(&vars).unwrap_err();
        assert_eq!(err.name, "SHIPLANE_TABLE");
        assert_eq!(
            err.to_string(),
            "SHIPLANE_TABLE: not set; set it to the DynamoDB table name"
        );
        vars.insert("SHIPLANE_TABLE".into(), "shiplane".into());
        vars.insert("SHIPLANE_TOPIC_ARN".into(), "  ".into());
        assert_eq!(
            Settings::from_vars(&vars).unwrap_err().name,
            "SHIPLANE_TOPIC_ARN"
        );
        vars.insert(
            "SHIPLANE_TOPIC_ARN".into(),
            "arn:aws:sns:us-east-1:1:t".into(),
        );
        assert_eq!(
            Settings::from_vars(&vars).unwrap_err().name,
            "SHIPLANE_HOOK_FUNCTION"
        );
        vars.insert(
            "SHIPLANE_HOOK_FUNCTION".into(),
            "shiplane-deploy-hook".into(),
        );
        for (name, value) in [
            ("SHIPLANE_SCHEDULE_GROUP", "shiplane"),
            (
                "SHIPLANE_PROMOTE_FUNCTION_ARN",
                "arn:aws:lambda:eu-west-1:1:function:p",
            ),
            ("SHIPLANE_SCHEDULER_ROLE_ARN", "arn:aws:iam::1:role/s"),
        ] {
            assert_eq!(Settings::from_vars(&vars).unwrap_err().name, name);
            vars.insert(name.into(), value.into());
        }
        assert_eq!(Settings::from_vars(&vars).unwrap_err().name, "AWS_REGION");
        vars.insert("AWS_REGION".into(), "eu-west-1".into());
        assert_eq!(
            Settings::from_vars(&vars).unwrap(),
            Settings {
                table: "shiplane".into(),
                topic_arn: "arn:aws:sns:us-east-1:1:t".into(),
                chatbot_topic_arn: None,
                hook_function: "shiplane-deploy-hook".into(),
                schedule_group: "shiplane".into(),
                promote_function_arn: "arn:aws:lambda:eu-west-1:1:function:p".into(),
                scheduler_role_arn: "arn:aws:iam::1:role/s".into(),
                region: "eu-west-1".into(),
                native_tls_roots: false,
                aws_attempt_timeout: DEFAULT_AWS_ATTEMPT_TIMEOUT,
            }
        );
        vars.insert(
            "SHIPLANE_CHATBOT_TOPIC_ARN".into(),
            "arn:aws:sns:us-east-1:1:c".into(),
        );
        assert_eq!(
            Settings::from_vars(&vars)
                .unwrap()
                .chatbot_topic_arn
                .as_deref(),
            Some("arn:aws:sns:us-east-1:1:c")
        );
        vars.insert("SHIPLANE_TLS_NATIVE_ROOTS".into(), "1".into());
        assert!(Settings::from_vars(&vars).unwrap().native_tls_roots);
        vars.insert("SHIPLANE_AWS_ATTEMPT_TIMEOUT".into(), "2500ms".into());
        assert_eq!(
            Settings::from_vars(&vars).unwrap().aws_attempt_timeout,
            Duration::from_millis(2500)
        );
        for bad in ["soon", "0s", "-1s"] {
            vars.insert("SHIPLANE_AWS_ATTEMPT_TIMEOUT".into(), bad.into());
            let err = Settings::from_vars(&vars).unwrap_err();
            assert_eq!(err.name, "SHIPLANE_AWS_ATTEMPT_TIMEOUT", "{bad}");
            assert!(err.problem.contains("such as 10s"), "{err}");
        }
    }
}
