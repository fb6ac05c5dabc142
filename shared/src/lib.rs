//! Shiplane around its core: the release store, the AWS ports and adapters, the event
//! parsers, the engine that runs the core's decisions, and the settings every binary reads
//! once at start-up.
//!
//! The rules ([`pipeline`], [`release`], [`facts`]) live in the `shiplane-core` crate, which
//! has no AWS crate among its dependencies; they are re-exported here under their old paths.
//! The [`store`] module holds the `ReleaseStore` port and its DynamoDB and in-memory adapters.

pub mod aws;
pub mod checks;
pub mod engine;
pub mod inbound;
pub mod lambda;
pub mod metrics;
pub mod sdk;
pub mod settings;
pub mod store;

pub use shiplane_core::{facts, pipeline, release};
