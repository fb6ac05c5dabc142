//! The clients of a command that may start or stop deployments (the engine's `Deps`),
//! how the CLI announces what it changed, and who is acting.

use aws_config::SdkConfig;
use shiplane::aws::{
    AwsDeployer, Notification, Notifier, NotifyError, SchedulerTimer, SnsNotifier,
};
use shiplane::engine::{Deps, EngineError};
use shiplane::store::DynamoStore;

use crate::output::errln;
use crate::{Failure, Reach, diagnose};

/// The clients a command that may start or stop deployments needs.
pub(crate) type CliDeps = Deps<(DynamoStore, AwsDeployer, CliNotifier, SchedulerTimer)>;

pub(crate) async fn deps(config: &SdkConfig, table: &str, aws: &Reach) -> CliDeps {
    let config = config.clone();
    Deps {
        store: store(&config, table),
        deployer: AwsDeployer::new(
            aws_sdk_ecs::Client::new(&config),
            aws_sdk_codedeploy::Client::new(&config),
            &aws.hook_function,
            shiplane::aws::AwsTriggers::from_config(&config),
        ),
        notifier: match aws.topic.as_deref().filter(|t| !t.is_empty()) {
            Some(topic) => CliNotifier::Topic(
                SnsNotifier::new(aws_sdk_sns::Client::new(&config), topic)
                    .with_chatbot_topic(aws.chatbot_topic.clone()),
            ),
            None => CliNotifier::Off(std::sync::Once::new()),
        },
        timer: SchedulerTimer::new(
            aws_sdk_scheduler::Client::new(&config),
            &aws.schedule_group,
            aws.promote_function_arn.clone().unwrap_or_default(),
            aws.scheduler_role_arn.clone().unwrap_or_default(),
        ),
    }
}

/// The table, as a store: every command's, and the engine's.
pub(super) fn store(config: &SdkConfig, table: &str) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table)
}

/// Notifications from the CLI go to the topic when it is named, as the functions' do;
/// without one, the command says once that it announced nothing, and how to fix that.
pub enum CliNotifier {
    Topic(SnsNotifier),
    Off(std::sync::Once),
}

/// Printed once by a command whose changes are not announced.
pub const NO_TOPIC: &str = "note: this change was not announced on SNS: no topic is configured; set SHIPLANE_TOPIC_ARN to the stack's TopicArn output (or pass --topic ARN)";

impl CliNotifier {
    fn say_off(once: &std::sync::Once) {
        once.call_once(|| eprintln!("{NO_TOPIC}"));
    }
}

impl Notifier for CliNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), NotifyError> {
        match self {
            CliNotifier::Topic(sns) => {
                let sent = sns.publish(n).await;
                if let Err(e) = &sent {
                    errln!("warning: notification not sent ({e}); the change is recorded");
                }
                sent
            }
            CliNotifier::Off(once) => {
                Self::say_off(once);
                Ok(())
            }
        }
    }

    async fn publish_all(&self, notifications: &[Notification]) -> Vec<(usize, NotifyError)> {
        match self {
            CliNotifier::Topic(sns) => {
                let failed = sns.publish_all(notifications).await;
                for (_, e) in &failed {
                    errln!("warning: notification not sent ({e}); the change is recorded");
                }
                failed
            }
            CliNotifier::Off(once) => {
                if !notifications.is_empty() {
                    Self::say_off(once);
                }
                Vec::new()
            }
        }
    }
}

pub(super) fn engine_failure(e: EngineError) -> Failure {
    Failure::Aws(e.to_string())
}

/// Who is acting: `--actor` (or $SHIPLANE_ACTOR) when given, else the caller's AWS
/// identity (STS GetCallerIdentity: the user or assumed-role ARN), which is what an audit
/// of the account would show too.
pub(crate) async fn actor_name(
    config: &SdkConfig,
    explicit: Option<String>,
) -> Result<String, Failure> {
    if let Some(actor) = explicit.filter(|a| !a.trim().is_empty()) {
        return Ok(actor);
    }
    match aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(identity) => identity.arn.ok_or_else(|| {
            Failure::Failed(
                "STS GetCallerIdentity answered without an ARN; pass --actor NAME".into(),
            )
        }),
        Err(e) => Err(Failure::Failed(format!(
            "cannot tell who you are from your AWS credentials ({}); pass --actor NAME or set SHIPLANE_ACTOR",
            diagnose::one_line(&shiplane::sdk::classify("STS GetCallerIdentity", &e).message)
        ))),
    }
}
