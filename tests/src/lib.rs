//! Harness for tests against the local AWS emulator.
//!
//! Tests run under `infra/local/with-emulator.sh` (as `make test` does), which exports
//! `AWS_ENDPOINT_URL` and dummy credentials. Each test makes its own table, so tests run
//! in parallel against one emulator without seeing each other's items.

use aws_config::{BehaviorVersion, SdkConfig};
use shiplane::store::DynamoStore;

/// The emulator's endpoint; panics with the way to provide one when it is missing.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.0.0.1:") => url,
        Ok(url) => panic!(
            "AWS_ENDPOINT_URL is {url}; these tests only talk to a local emulator on 127.0.0.1"
        ),
        Err(_) => panic!(
            "AWS_ENDPOINT_URL is not set: run these tests with `make test`, or under \
             infra/local/with-emulator.sh (e.g. `infra/local/with-emulator.sh cargo test`)"
        ),
    }
}

/// SDK configuration for the emulator, read from the environment as every binary does.
pub async fn aws_config() -> SdkConfig {
    endpoint();
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A unique table name for one test.
pub fn unique_table() -> String {
    format!(
        "shiplane-test-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    )
}

/// A store on a new, empty table in the emulator.
pub async fn fresh_store() -> DynamoStore {
    let config = aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique_table();
    DynamoStore::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("create table {table}: {e}"));
    DynamoStore::new(client, table)
}
