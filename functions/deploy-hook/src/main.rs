//! `deploy-hook`: serves CodeDeploy lifecycle hooks (see handler.rs); the wiring is shared.

mod handler;

use shiplane::aws::CodeDeployHooks;
use shiplane::checks::AwsChecker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve_with(
        "deploy-hook",
        |config| handler::Hooks {
            checker: AwsChecker::new(config),
            reporter: CodeDeployHooks::from_config(config),
        },
        handler::handle,
    )
    .await
}
