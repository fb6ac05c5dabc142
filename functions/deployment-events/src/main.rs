//! `deployment-events`: serves ECS and CodeDeploy state changes (see handler.rs); the wiring is shared.

mod handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve("deployment-events", handler::handle).await
}
