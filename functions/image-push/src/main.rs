//! `image-push`: serves ECR image pushes (see handler.rs); the wiring is shared.

mod handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve("image-push", |deps, event| {
        Box::pin(handler::handle(deps, event))
    })
    .await
}
