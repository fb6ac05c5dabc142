//! Shiplane's rules, with no I/O and no AWS crate in reach: the pipeline file
//! ([`pipeline`]), the pure release state machine ([`release`]) and the domain facts the
//! world reports ([`facts`]). Every rule can be tested without AWS, and the compiler keeps
//! it so: this crate does not depend on any AWS SDK.

pub mod facts;
pub mod pipeline;
pub mod release;
