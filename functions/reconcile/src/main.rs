//! `reconcile`: a scheduled pass over every lane (see handler.rs); the wiring is shared.

mod handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve("reconcile", |deps, event| {
        Box::pin(handler::handle(deps, event))
    })
    .await
}
