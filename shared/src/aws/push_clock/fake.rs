//! An in-memory [`PushClock`] for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::PushClock;
use crate::aws::DeployError;
use crate::release::{Digest, Timestamp};

/// Answers the push times it is given, and records what it was asked.
#[derive(Debug, Default)]
pub struct FakePushClock {
    /// ECR's push time of each digest it knows.
    pub times: Mutex<BTreeMap<Digest, Timestamp>>,
    /// The digests of every call, in order.
    pub asked: Mutex<Vec<Vec<Digest>>>,
    /// What every call fails with, when set.
    pub failure: Mutex<Option<DeployError>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakePushClock {
    /// A clock that knows these push times.
    pub fn with(times: impl IntoIterator<Item = (Digest, Timestamp)>) -> FakePushClock {
        FakePushClock {
            times: Mutex::new(times.into_iter().collect()),
            ..FakePushClock::default()
        }
    }

    /// The digests of every call so far.
    pub fn asked(&self) -> Vec<Vec<Digest>> {
        lock(&self.asked).clone()
    }
}

impl PushClock for FakePushClock {
    async fn pushed_at(
        &self,
        _registry: &str,
        _repository: &str,
        digests: &[Digest],
    ) -> Result<BTreeMap<Digest, Timestamp>, DeployError> {
        lock(&self.asked).push(digests.to_vec());
        if let Some(e) = lock(&self.failure).clone() {
            return Err(e);
        }
        let times = lock(&self.times);
        Ok(digests
            .iter()
            .filter_map(|d| times.get(d).map(|t| (d.clone(), *t)))
            .collect())
    }
}
