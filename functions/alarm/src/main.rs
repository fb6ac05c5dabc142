//! `alarm`: serves CloudWatch alarm state changes (see handler.rs); the wiring is shared.

mod handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiplane::lambda::serve("alarm", handler::handle).await
}
