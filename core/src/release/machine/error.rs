//! The refusals: every way an event can fail to apply ([`TransitionError`]), kept in one
//! list apart from the tables that return them.

use crate::release::model::{ReleaseId, StageState, Timestamp};

/// An event that does not apply to the state it met. Never a panic; handlers log it as
/// "ignored" (stale or duplicate delivery) or report it to the operator who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("release {release} has not reached {environment}; nothing to {event}")]
    NotArrived {
        release: ReleaseId,
        environment: String,
        event: &'static str,
    },
    #[error("release {release} already reached {environment} (it is {state})")]
    AlreadyArrived {
        release: ReleaseId,
        environment: String,
        state: StageState,
    },
    #[error("release {release} is {state} in {environment}; {event} does not apply")]
    NotAllowed {
        release: ReleaseId,
        environment: String,
        state: StageState,
        event: &'static str,
    },
    #[error("release {release} was not loaded with lane {service}/{environment}")]
    UnknownRelease {
        release: ReleaseId,
        service: String,
        environment: String,
    },
    #[error("release {release} belongs to service {release_service}, not {service}")]
    WrongService {
        release: ReleaseId,
        release_service: String,
        service: String,
    },
    #[error("release {release} in {environment} runs deployment {expected}, not {got}")]
    DeploymentMismatch {
        release: ReleaseId,
        environment: String,
        expected: String,
        got: String,
    },
    #[error(
        "deployment {deployment} of release {release} in {environment} ended and was tried again; its late news changes nothing"
    )]
    EndedDeployment {
        release: ReleaseId,
        environment: String,
        deployment: String,
    },
    #[error(
        "deployment {deployment} of release {release} in {environment} was made before a late deployment may have replaced it; the deploy is made again when its lease ends"
    )]
    FencedDeployment {
        release: ReleaseId,
        environment: String,
        deployment: String,
    },
    #[error("{service}/{environment} is already paused by {by}")]
    AlreadyPaused {
        service: String,
        environment: String,
        by: String,
    },
    #[error("{service}/{environment} is not paused")]
    NotPaused {
        service: String,
        environment: String,
    },
    #[error("{service}/{environment} is busy ({why}); release {release} stays queued")]
    Busy {
        release: ReleaseId,
        service: String,
        environment: String,
        why: String,
    },
    #[error("alarm {alarm} changed at {at}, before the change already recorded ({seen}); ignored")]
    StaleAlarm {
        alarm: String,
        at: Timestamp,
        seen: Timestamp,
    },
    #[error("{service}/{environment} has no release to roll back to: {why}")]
    NoRollbackTarget {
        service: String,
        environment: String,
        why: String,
    },
    #[error(
        "release {release} stays baking in {environment}: {why}; it promotes when the alarm returns to OK (or: shiplane promote --skip-bake)"
    )]
    Held {
        release: ReleaseId,
        environment: String,
        why: String,
    },
    #[error("{service}/{environment} holds nothing to unblock")]
    NothingToUnblock {
        service: String,
        environment: String,
    },
    #[error(
        "release {release} is being restored in {service}/{environment} after a rollback; cancelling it would leave what it replaces running. Put another release back with `shiplane rollback {service} {environment} --to RELEASE --reason WHY`"
    )]
    RestoreNotCancelled {
        release: ReleaseId,
        service: String,
        environment: String,
    },
    #[error(
        "release {release} was pushed before {migrated}, whose stop-first migration completed in {service}/{environment}: it was built for the schema that migration replaced. Restore the database to its schema first, then `shiplane rollback {service} {environment} --to {release} --reason WHY`"
    )]
    PastSchema {
        release: ReleaseId,
        migrated: ReleaseId,
        service: String,
        environment: String,
    },
}
