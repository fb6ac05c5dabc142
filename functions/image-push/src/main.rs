//! `image-push`: wires settings and AWS clients once, then serves ECR image-push events.

mod handler;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shiplane::aws::{AwsDeployer, SnsNotifier};
use shiplane::settings::Settings;
use shiplane::store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env().unwrap_or_else(|e| {
        // Init fails with the variable's name and the fix; Lambda shows it in the init log.
        eprintln!("image-push cannot start: {e}");
        std::process::exit(1)
    });
    // Throttling and 5xx are retried with exponential backoff before a step is failed.
    let config = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .load()
        .await;
    let deps = handler::Deps {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), settings.table),
        deployer: AwsDeployer::new(
            aws_sdk_ecs::Client::new(&config),
            aws_sdk_codedeploy::Client::new(&config),
            settings.hook_function,
        ),
        notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&config), settings.topic_arn),
    };
    // Boxed behind `dyn Future`: the handler's future is large, and its concrete type
    // inside the runtime's service layers overflows the compiler's type-depth limit.
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let fut: handler::HandlerFuture<'_> = Box::pin(handler::handle(&deps, event));
        fut
    }))
    .await
}
