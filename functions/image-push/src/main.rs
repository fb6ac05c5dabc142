//! `image-push`: serves ECR image pushes (see handler.rs); the wiring is shared, plus ECR
//! (built on first use) for the push times that order two pushes in one second.

mod handler;

use shiplane::aws::EcrPushClock;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve_with("image-push", EcrPushClock::from_config, handler::handle).await
}
