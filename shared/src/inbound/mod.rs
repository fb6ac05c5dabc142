//! Inbound AWS payloads turned into domain inputs, or into an explicit "ignored: why".
//!
//! Parsing never touches state: a payload is accepted, ignored (logged at info), or rejected
//! with an error that names the field.

pub mod alarm;
pub mod codedeploy;
pub mod ecr;
pub mod ecs;
pub mod schedule;

/// What parsing made of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<T> {
    Accepted(T),
    /// Not for Shiplane, or not a release; the reason is logged and nothing changes.
    Ignored(String),
}
