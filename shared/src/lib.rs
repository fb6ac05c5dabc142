//! Shiplane's core: the pipeline file, the pure release state machine, the release store
//! and the settings every binary reads once at start-up.
//!
//! Nothing in [`pipeline`] or [`release`] does I/O: every rule can be tested without AWS.
//! The [`store`] module holds the `ReleaseStore` port and its DynamoDB and in-memory adapters.

pub mod aws;
pub mod checks;
pub mod engine;
pub mod inbound;
pub mod lambda;
pub mod metrics;
pub mod pipeline;
pub mod release;
pub mod settings;
pub mod store;
