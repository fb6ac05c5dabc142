//! `shiplane dashboard` through the built binary: what it says when it cannot serve. (The
//! page itself is tested in a headless browser by tests/tests/dashboard.rs.)

mod common;

use common::shiplane;

#[tokio::test]
async fn a_taken_port_or_a_table_without_a_pipeline_is_said_with_the_fix() {
    let store = shiplane_e2e::fresh_store().await;
    let table = store.table().to_string();
    let empty = shiplane(&table, &["dashboard", "--port", "0"]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains(&format!(
            "no pipeline in table {table}; store one with `shiplane config apply FILE`"
        )),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );

    shiplane_e2e::apply_pipeline(
        &store,
        shiplane_e2e::pipeline_for(&shiplane_e2e::unique_prefix()),
    )
    .await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to take");
    let port = taken.local_addr().unwrap().port().to_string();
    let out = shiplane(&table, &["dashboard", "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "error: port {port} on 127.0.0.1 is taken (another dashboard?): choose another with --port N, or --port 0 for any free one"
        )
    );
}
