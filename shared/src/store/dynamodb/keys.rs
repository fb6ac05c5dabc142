//! The table's key formats, and the only place they are spelled: every partition, sort
//! and GSI key the adapter writes, reads or queries by is made (or taken apart) here, as
//! the table in the module's documentation lays them out.

use crate::release::{ReleaseId, Timestamp};

/// An item's primary key: partition key (`pk`) and sort key (`sk`).
pub(super) type Key = (String, String);

/// The partition of the pipeline's versions, their parts and the pointer.
pub(super) const PIPELINE: &str = "PIPELINE";
/// What the sort keys of a service's lanes begin with.
pub(super) const LANE_PREFIX: &str = "LANE#";
/// What the sort keys of history items begin with.
pub(super) const HISTORY_PREFIX: &str = "HISTORY#";
/// What the sort keys of pipeline versions (heads and parts) begin with.
pub(super) const VERSION_PREFIX: &str = "VERSION#";
/// Between a pipeline version's head sort key and a part's number.
const PART: &str = "#PART#";

/// The partition of a release: its item and its history.
pub(super) fn release_pk(id: &ReleaseId) -> String {
    format!("RELEASE#{id}")
}

/// A release's item.
pub(super) fn release(id: &ReleaseId) -> Key {
    (release_pk(id), "RELEASE".into())
}

/// The GSI partition of a service's releases.
pub(super) fn releases_of(service: &str) -> String {
    format!("SERVICE#{service}#RELEASES")
}

/// The partition of a service's lanes.
pub(super) fn lanes_pk(service: &str) -> String {
    format!("SERVICE#{service}")
}

/// A lane's item.
pub(super) fn lane(service: &str, environment: &str) -> Key {
    (lanes_pk(service), format!("{LANE_PREFIX}{environment}"))
}

/// The partition of a lane's history (transitions of no release).
pub(super) fn lane_history_pk(service: &str, environment: &str) -> String {
    format!("LANE#{service}#{environment}")
}

/// Where a history item sorts: when, which commit, and its place in the commit.
pub(super) fn history_order(at: Timestamp, commit_id: &str, n: usize) -> String {
    format!("{:013}#{commit_id}#{n:03}", at.0)
}

/// A history item, in its release's or lane's partition, at `order` ([`history_order`]).
pub(super) fn history(pk: String, order: &str) -> Key {
    (pk, format!("{HISTORY_PREFIX}{order}"))
}

/// The GSI partition of a service's history.
pub(super) fn history_of(service: &str) -> String {
    format!("SERVICE#{service}#HISTORY")
}

/// An idempotency claim's item, by business key.
pub(super) fn claim(key: &str) -> Key {
    (format!("CLAIM#{key}"), "CLAIM".into())
}

/// A deployment reference's item.
pub(super) fn deployment(deployment_id: &str) -> Key {
    (format!("DEPLOYMENT#{deployment_id}"), "DEPLOYMENT".into())
}

/// The pipeline pointer's item (the current version).
pub(super) fn pointer() -> Key {
    (PIPELINE.into(), "CURRENT".into())
}

/// A pipeline version's head item.
pub(super) fn pipeline_version(version: u64) -> Key {
    (PIPELINE.into(), format!("{VERSION_PREFIX}{version:010}"))
}

/// Part `k` of a pipeline version: its head for 0.
pub(super) fn pipeline_part(version: u64, k: usize) -> Key {
    let (pk, head) = pipeline_version(version);
    if k == 0 {
        (pk, head)
    } else {
        (pk, format!("{head}{PART}{k:03}"))
    }
}

/// The head sort key of the pipeline version a part's (or head's) sort key belongs to.
pub(super) fn pipeline_head(sk: &str) -> &str {
    sk.split(PART).next().unwrap_or_default()
}
