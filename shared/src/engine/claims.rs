//! What an idempotency claim's value records. The store keeps it as the claim's string
//! (the item's `value` attribute) and never reads it; the engine writes three kinds, each
//! under a key of its own, and every one is made and read back here, so that what it
//! means is spelled once and what is stored stays as it always was.

use std::time::Duration;

use crate::aws::HookStatus;
use crate::release::intake::{ImagePush, PUSH_CLAIM_TTL};
use crate::release::{ReleaseId, Timestamp};
use crate::store::{Claim, StoreError};

/// How long a hook's verdict, and an attempt's hold on its hook execution, is kept for
/// duplicate invocations.
const HOOK_CLAIM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a claim records, by the kind of key it is held under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClaimValue {
    /// A push's (repository + digest): the release it minted.
    Release(ReleaseId),
    /// A hook attempt's (`hook#<deployment>#<execution>#attempt`): when it must have
    /// answered by.
    AnswerBy(Timestamp),
    /// A hook execution's (`hook#<deployment>#<execution>`): what CodeDeploy was answered.
    Verdict(HookStatus),
}

impl ClaimValue {
    /// The claim of `key` to this value, made `now` and kept as long as its kind needs.
    pub(super) fn claim(self, key: String, now: Timestamp) -> Claim {
        let ttl = match self {
            ClaimValue::Release(_) => PUSH_CLAIM_TTL,
            ClaimValue::AnswerBy(_) | ClaimValue::Verdict(_) => HOOK_CLAIM_TTL,
        };
        Claim {
            key,
            value: self.to_stored(),
            at: now,
            expires: now.after(ttl),
        }
    }

    /// The value as stored: the release id, the time in milliseconds, or
    /// `Succeeded`/`Failed`.
    fn to_stored(&self) -> String {
        match self {
            ClaimValue::Release(id) => id.to_string(),
            ClaimValue::AnswerBy(at) => at.0.to_string(),
            ClaimValue::Verdict(status) => status.as_str().to_string(),
        }
    }

    /// The release `push`'s claim recorded (`stored`): anything but a release id there is
    /// a corrupt item.
    pub(super) fn release(push: &ImagePush, stored: &str) -> Result<ReleaseId, StoreError> {
        ReleaseId::parse(stored).map_err(|e| StoreError::Corrupt {
            what: format!("claim for {}", push.digest),
            message: e.to_string(),
        })
    }

    /// When an earlier hook attempt's claim (`stored`) says it answers by; one that cannot
    /// be read is taken as long past, so it is not waited for.
    pub(super) fn answer_by(stored: &str) -> Timestamp {
        Timestamp(stored.parse().unwrap_or(0))
    }

    /// The verdict a hook execution's claim (`stored`) recorded: Succeeded only when it
    /// says so; anything else fails closed.
    pub(super) fn verdict(stored: &str) -> HookStatus {
        match HookStatus::parse(stored) {
            Some(HookStatus::Succeeded) => HookStatus::Succeeded,
            _ => HookStatus::Failed,
        }
    }
}
