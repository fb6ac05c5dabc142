//! `image-push`: wires settings and AWS clients once, then serves ECR image-push events.

mod handler;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shiplane::engine::{HandlerFuture, aws_deps};
use shiplane::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env_or_exit("image-push");
    let deps = aws_deps(&settings).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let fut: HandlerFuture<'_> = Box::pin(handler::handle(&deps, event));
        fut
    }))
    .await
}
