//! The built `reconcile` binary behind a local Runtime API.

const BINARY: &str = env!("CARGO_BIN_EXE_reconcile");

/// Bytes that are not one JSON object, through the built binary: an `InvalidEvent`, one
/// log record each, and no AWS call.
#[tokio::test]
async fn a_payload_that_is_not_one_json_object_is_an_invalid_event_and_calls_no_aws() {
    shiplane_e2e::bad_input::bad_payloads_are_invalid_events(
        BINARY,
        "shiplane-reconcile",
        serde_json::json!({}),
    )
    .await;
}
