//! ECR's own record of when an image was pushed, to the millisecond: what orders two pushes
//! whose EventBridge events carry the same second (the event's `time` has no finer
//! resolution). Asked only for such a pair, never for every push.

#[cfg(any(test, feature = "testing"))]
pub mod fake;
#[cfg(feature = "ecr")]
mod sdk;

use std::collections::BTreeMap;
use std::future::Future;

use super::DeployError;
use crate::release::{Digest, Timestamp};

#[cfg(feature = "ecr")]
pub use sdk::EcrPushClock;

/// The port push times are read through.
pub trait PushClock: Send + Sync {
    /// When each of `digests` was pushed to `repository` of `registry`
    /// (`<account>.dkr.ecr.<region>.amazonaws.com`), by ECR's clock; digests ECR does not
    /// know are left out.
    fn pushed_at(
        &self,
        registry: &str,
        repository: &str,
        digests: &[Digest],
    ) -> impl Future<Output = Result<BTreeMap<Digest, Timestamp>, DeployError>> + Send;
}

/// No ECR at hand (the CLI, a test, a function that serves no pushes): the event's second
/// is all there is, and pushes that share it are ordered by digest
/// ([`crate::release::pushed_before`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPushClock;

impl PushClock for NoPushClock {
    async fn pushed_at(
        &self,
        _registry: &str,
        _repository: &str,
        _digests: &[Digest],
    ) -> Result<BTreeMap<Digest, Timestamp>, DeployError> {
        Ok(BTreeMap::new())
    }
}
