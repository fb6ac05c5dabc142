//! `shiplane init --stack NAME`: this CLI's settings, written from a deployed stack's
//! outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;

use super::Context;
use crate::Failure;
use crate::output::{errln, out, outln};
use crate::settings::Settings;

/// Which stack output sets which setting (template.yaml's Outputs).
const STACK_OUTPUTS: [&str; 7] = [
    "TableName",
    "TopicArn",
    "ChatbotTopicArn",
    "ScheduleGroupName",
    "PromoteFunctionArn",
    "SchedulerRoleArn",
    "HookFunctionName",
];

/// `shiplane init --stack NAME`: the stack's outputs, and the region it was read in,
/// written to the project (or user) settings file.
pub(super) async fn init(cx: &Context<'_>, stack: &str, user: bool) -> Result<(), Failure> {
    let region = cx.config.region().map(std::string::ToString::to_string);
    let outputs = stack_outputs(cx.config, stack, region.as_deref()).await?;
    let get = |key: &str| outputs.get(key).cloned();
    let found = Settings {
        stack: Some(stack.to_string()),
        region,
        table: get("TableName"),
        topic_arn: get("TopicArn"),
        chatbot_topic_arn: get("ChatbotTopicArn"),
        schedule_group: get("ScheduleGroupName"),
        promote_function_arn: get("PromoteFunctionArn"),
        scheduler_role_arn: get("SchedulerRoleArn"),
        hook_function: get("HookFunctionName"),
    };
    let missing: Vec<&str> = STACK_OUTPUTS
        .into_iter()
        .filter(|k| !outputs.contains_key(*k))
        .collect();
    if found.table.is_none() {
        return Err(Failure::BadInput(format!(
            "stack \"{stack}\" has no TableName output: is it the stack template.yaml deployed? (outputs it has: {})",
            if outputs.is_empty() {
                "none".to_string()
            } else {
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        )));
    }
    let path = settings_file(user)?;
    crate::settings::write(&path, &found).map_err(Failure::Failed)?;
    written(&path, stack, &found, &missing, cx.json());
    Ok(())
}

/// The stack's outputs, by key (CloudFormation DescribeStacks in `region`).
async fn stack_outputs(
    config: &SdkConfig,
    stack: &str,
    region: Option<&str>,
) -> Result<BTreeMap<String, String>, Failure> {
    use aws_sdk_cloudformation::error::ProvideErrorMetadata;
    let described = aws_sdk_cloudformation::Client::new(config)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("ValidationError") => Failure::BadInput(format!(
                "no stack \"{stack}\" in {}: give the name `sam deploy` used (samconfig.toml's stack_name), or set AWS_REGION to the region it is in",
                region.unwrap_or("your region")
            )),
            _ => Failure::Aws(shiplane::sdk::classify("CloudFormation DescribeStacks", &e).message),
        })?;
    Ok(described
        .stacks
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|s| s.outputs)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| Some((o.output_key?, o.output_value?)))
        .collect())
}

/// The settings file `init` writes: the user's with `--user`, else the project's.
fn settings_file(user: bool) -> Result<PathBuf, Failure> {
    if user {
        crate::settings::user_file().ok_or_else(|| {
            Failure::BadInput("no home directory to write the user file in: set XDG_CONFIG_HOME or HOME, or leave out --user".into())
        })
    } else {
        Ok(PathBuf::from(crate::settings::PROJECT_FILE))
    }
}

/// Says what `init` wrote, and which outputs the stack lacked.
fn written(path: &Path, stack: &str, found: &Settings, missing: &[&str], json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::json!({"file": path.display().to_string(), "settings": found, "missing_outputs": missing})
        );
    } else {
        outln!("wrote {} from stack {stack}:", path.display());
        out!(
            "{}",
            found
                .to_file()
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
        if !missing.is_empty() {
            errln!(
                "warning: the stack has no {} output; those settings keep their defaults",
                missing.join(", ")
            );
        }
    }
}
