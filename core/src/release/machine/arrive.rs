//! A release's arrival in an environment (a push, a promotion, an operator's deploy):
//! superseded, queued, awaiting approval or started. Separate because arrival is the one
//! step that orders pushes against each other.

use super::TransitionError;
use super::work::Work;
use crate::pipeline::Approval;
use crate::release::model::{Cause, ReleaseId, StageState, pushed_before};

/// A release arrives in an environment: superseded on arrival when a newer push of the
/// service already arrived here, else it supersedes the queued one and starts, queues, or
/// waits for approval.
pub(super) fn arrive(
    w: &mut Work<'_>,
    id: &ReleaseId,
    cause: Cause,
    actor: Option<String>,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    let (pushed, digest) = {
        let r = w.release(id)?;
        (r.pushed_at, r.digest.clone())
    };
    if let Some(newest) = w.view.lane.newest_pushed_at {
        let newest_digest = w.view.lane.newest_digest.as_ref();
        // Lanes written before digests were recorded order equal times by arrival.
        let before = match newest_digest {
            Some(d) => pushed_before((pushed, &digest), (newest, d)),
            None => pushed < newest,
        };
        if before {
            let why = match newest_digest.filter(|_| pushed == newest) {
                Some(d) => format!(
                    "pushed at {pushed}, the same instant as {}, which already arrived here; at equal push times the greater digest is taken as the newer",
                    d.short()
                ),
                None => format!(
                    "pushed at {pushed}, before a newer release that already arrived here (pushed at {newest})"
                ),
            };
            return w.move_to(
                id,
                StageState::Superseded,
                Cause::Superseded,
                None,
                Some(why),
            );
        }
    }
    w.lane().newest_pushed_at = Some(pushed);
    w.lane().newest_digest = Some(digest);
    if let Some(older) = w.view.lane.queued.clone() {
        w.move_to(
            &older,
            StageState::Superseded,
            Cause::Superseded,
            None,
            Some(format!("superseded by {id}")),
        )?;
        w.lane().queued = None;
    }
    if w.policy.approval == Approval::Manual {
        w.move_to(id, StageState::AwaitingApproval, cause, actor, detail)?;
        w.lane().queued = Some(id.clone());
    } else if let Some(why) = w.busy_because() {
        let why = match detail {
            Some(d) => format!("{d}; {why}"),
            None => why,
        };
        w.move_to(id, StageState::Queued, cause, actor, Some(why))?;
        w.lane().queued = Some(id.clone());
    } else {
        w.start_with(id, cause, actor, detail)?;
    }
    Ok(())
}
