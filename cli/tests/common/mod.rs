//! What the CLI's integration tests share.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

/// Runs the built `shiplane` on `table` as the operator "ana".
pub fn shiplane(table: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .arg("--table")
        .arg(table)
        .args(args)
        .env("SHIPLANE_ACTOR", "ana")
        .output()
        .expect("run shiplane")
}
