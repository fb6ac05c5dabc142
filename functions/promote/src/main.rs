//! `promote`: serves bake timers fired by EventBridge Scheduler (see handler.rs); the
//! wiring is shared.

mod handler;

use shiplane::aws::CloudWatchAlarms;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve_with("promote", CloudWatchAlarms::from_config, handler::handle).await
}
