//! `deployment-events`: wires settings and AWS clients once, then serves ECR deployment-events events.

mod handler;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shiplane::engine::{HandlerFuture, aws_deps};
use shiplane::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env().unwrap_or_else(|e| {
        // Init fails with the variable's name and the fix; Lambda shows it in the init log.
        eprintln!("deployment-events cannot start: {e}");
        std::process::exit(1)
    });
    let deps = aws_deps(&settings).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let fut: HandlerFuture<'_> = Box::pin(handler::handle(&deps, event));
        fut
    }))
    .await
}
