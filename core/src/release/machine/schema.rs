//! A `stop-first` migration's mark on its lane ([`Lane::schema`]): the releases pushed
//! before the one whose migration completed were built for the schema it replaced, so
//! none is started or put back there unless a person names it (a rollback `--to`). The
//! steps every table shares for it.
//!
//! [`Lane::schema`]: crate::release::Lane::schema

use super::work::Work;
use super::{Event, TransitionError};
use crate::release::model::{Alert, Cause, ReleaseId, Schema, StageState};

/// Why `good` (the last known good, or the release before it) is not put back: a
/// `stop-first` migration since moved the schema past it
/// ([`Lane::schema`](crate::release::Lane::schema)).
pub(super) fn schema_moved(good: &ReleaseId) -> String {
    format!(
        "{good}, which would be put back, was built for the schema a stop-first migration here since replaced: what runs keeps running, manual action needed"
    )
}

/// The release whose stop-first migration `id` predates ([`Lane::schema`]), if it does.
///
/// [`Lane::schema`]: crate::release::Lane::schema
fn migrated_since(w: &Work<'_>, id: &ReleaseId) -> Option<ReleaseId> {
    let schema = w.view.lane.schema.as_ref()?;
    w.view.predates_schema(id).then(|| schema.release.clone())
}

/// Back past a stop-first migration only when a person names the release: the database
/// must be restored to its schema first, which Shiplane cannot know was done.
pub(super) fn refuse_default_past_schema(
    w: &Work<'_>,
    target: &ReleaseId,
    to: Option<&ReleaseId>,
) -> Result<(), TransitionError> {
    let Some(migrated) = migrated_since(w, target).filter(|_| to.is_none()) else {
        return Ok(());
    };
    Err(TransitionError::NoRollbackTarget {
        service: w.view.lane.service.clone(),
        environment: w.env(),
        why: format!(
            "{target}, the release it would put back, was built for the schema that {migrated}'s stop-first migration replaced, and cannot run on it; restore the database to its schema first, then name it: --to {target}"
        ),
    })
}

/// An operator's retry of a release pushed before the last stop-first migration here: it
/// was built for the schema that migration replaced, so it is refused, naming the way
/// (restore the database, then a rollback that names it).
pub(super) fn refuse_retry_past_schema(
    w: &Work<'_>,
    id: &ReleaseId,
) -> Result<(), TransitionError> {
    match migrated_since(w, id) {
        Some(migrated) => Err(TransitionError::PastSchema {
            release: id.clone(),
            migrated,
            service: w.view.lane.service.clone(),
            environment: w.env(),
        }),
        None => Ok(()),
    }
}

impl Work<'_> {
    /// `id`'s stop-first migration completed here: nothing pushed before it is put back.
    pub(super) fn mark_schema(&mut self, id: &ReleaseId) -> Result<(), TransitionError> {
        let schema = Schema::of(self.release(id)?);
        self.lane().schema = Some(schema);
        Ok(())
    }

    /// A queued release pushed before the last stop-first migration here (retried while
    /// that release was in flight) is set aside instead of started: it was built for the
    /// schema that migration replaced. Whether it was.
    pub(super) fn set_aside_past_schema(
        &mut self,
        id: &ReleaseId,
    ) -> Result<bool, TransitionError> {
        let Some(migrated) = migrated_since(self, id) else {
            return Ok(false);
        };
        self.move_to(
            id,
            StageState::Superseded,
            Cause::Superseded,
            None,
            Some(format!(
                "pushed before {migrated}, whose stop-first migration completed here while it waited: it cannot run on that schema"
            )),
        )?;
        if self.view.lane.queued.as_ref() == Some(id) {
            self.lane().queued = None;
        }
        Ok(true)
    }
}

/// `id`'s stop-first migration completed after its stage ended (its RunTask was in flight
/// when the stage ended): the lane is marked all the same, once. A service already started
/// again on the release before it now runs that on the new schema: a person is told.
pub(super) fn migrated_late(
    w: &mut Work<'_>,
    id: &ReleaseId,
    (state, event, cause): (StageState, &Event, Cause),
) -> Result<(), TransitionError> {
    // Once (a replay changes nothing), and never under a newer mark.
    let marked = w
        .view
        .lane
        .schema
        .as_ref()
        .is_some_and(|s| &s.release == id);
    if marked || w.view.predates_schema(id) {
        return Err(w.not_allowed(id, state, event));
    }
    w.mark_schema(id)?;
    let running = w.view.lane.down.is_none();
    let why = if running {
        "its migration completed after its stage ended, and the service was already started again on the release before it, which now runs on the new schema: manual action needed"
    } else {
        "its migration completed after its stage ended: nothing pushed before it is put back here by itself"
    };
    w.record(id, cause, Some(why.into()))?;
    if running {
        w.alert(Alert::SchemaMoved);
    }
    Ok(())
}
