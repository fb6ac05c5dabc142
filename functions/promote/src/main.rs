//! `promote`: serves bake timers fired by EventBridge Scheduler (see handler.rs); the
//! wiring is shared.

mod handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve("promote", |deps, event| {
        Box::pin(handler::handle(deps, event))
    })
    .await
}
