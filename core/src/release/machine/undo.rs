//! Undoing what a stage started (an alarm's rollback, a shipped release replaced, a
//! deployment that landed after its stage ended) and telling what runs: the steps both
//! tables share when something must be put back.

use super::apply_lane::rollback_target;
use super::work::Work;
use super::{Action, TransitionError};
use crate::release::model::{Alert, Cause, ReleaseId, StageState};

/// An alarm fired while `id` was in flight here: a migration ends the stage (see
/// [`migration_left_to_finish`]); a deployment is stopped and rolled back; a release that
/// already shipped (baking) is replaced by the last known good one.
pub(super) fn roll_back(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    if super::outage::outage_alarm(w, id, state, detail.clone())? {
        return Ok(());
    }
    match state {
        S::Migrating => {
            let task = w.stage(id)?.started().map(str::to_string);
            let detail = format!(
                "{} during the migration; {}",
                detail.unwrap_or_else(|| "an alarm fired".into()),
                migration_left_to_finish(task.as_deref())
            );
            w.end_in_flight(
                id,
                state,
                S::Failed,
                Cause::AlarmFired,
                None,
                Some(detail),
                true,
            )
        }
        S::Baking => replace_shipped(w, id, (S::RolledBack, Cause::AlarmFired, None), detail),
        _ => w.end_in_flight(
            id,
            state,
            S::RolledBack,
            Cause::AlarmFired,
            None,
            detail,
            true,
        ),
    }
}

/// What an alarm during a migration does, as the stage's reason says it. The task is not
/// stopped: stopping a schema migration halfway can leave the database half-migrated and
/// locked, which is worse than a finished migration the running version was written to
/// live with (it runs before the new version comes up). The stage ends as failed, not
/// rolled back, because nothing was reverted.
fn migration_left_to_finish(task_arn: Option<&str>) -> String {
    let task = match task_arn {
        Some(arn) => format!("the migration task {arn}"),
        None => "the migration task, if it started,".to_string(),
    };
    format!(
        "{task} is left to finish (stopping it halfway could leave the schema half-applied) and the new version is not deployed; check it, then `shiplane retry` once the alarm is OK"
    )
}

/// `id`, which already runs here (it bakes, or its deployment just succeeded), ends as
/// `to` and is replaced by the last known good release; with none, nothing is deployed,
/// the lane is freed and the reason says a person must act.
pub(super) fn replace_shipped(
    w: &mut Work<'_>,
    id: &ReleaseId,
    (to, cause, actor): (StageState, Cause, Option<String>),
    detail: Option<String>,
) -> Result<(), TransitionError> {
    let good = w.view.lane.last_known_good.clone().filter(|g| g != id);
    match good {
        Some(good) if !w.view.predates_schema(&good) => {
            w.move_to(id, to, cause, actor, detail)?;
            w.redeploy(&good, None, Some(format!("restoring after {id}")))?;
        }
        _ => {
            let (why, alert) = match &good {
                Some(good) => (super::schema::schema_moved(good), Alert::SchemaMoved),
                None => (
                    "no last known good release to restore here: it keeps running, manual action needed".to_string(),
                    Alert::NothingToRestore,
                ),
            };
            let detail = Some(detail.map_or_else(|| why.clone(), |d| format!("{d}; {why}")));
            w.move_to(id, to, cause, actor, detail)?;
            w.alert(alert);
            w.finish()?;
        }
    }
    Ok(())
}

/// Undoes deployment `late` of `id`, created after its stage ended: CodeDeploy stops it
/// and routes traffic back; on a rolling service (no stop: the newest UpdateService wins)
/// the lane's own deployment in flight is made again, or, with none, the last known good
/// is restored.
pub(super) fn undo_late(
    w: &mut Work<'_>,
    id: &ReleaseId,
    late: &str,
) -> Result<(), TransitionError> {
    let env = w.env();
    if !w.policy.undo_by_redeploy {
        w.lane().stopping = Some(id.clone());
        w.actions.push(Action::StopDeployment {
            release: id.clone(),
            environment: env,
            deployment_id: late.to_string(),
            rollback: true,
        });
        return Ok(());
    }
    let lane = w.view.lane.clone();
    let deploying = lane.in_flight.as_ref().filter(|r| {
        *r != id
            && matches!(
                w.state(r),
                Some(StageState::Deploying | StageState::Validating)
            )
    });
    if let Some(r) = deploying.cloned() {
        let stage = w.stage(&r)?;
        // Its deployment may have been replaced by the late one: what an action issued
        // before this says is refused from now on, and the deployment is made again.
        stage.fence += 1;
        let Some(replaced) = stage.deployment_id.clone() else {
            // Its deploy action may still be running: no second one races it (two would
            // register two revisions). The action is taken over when its lease ends,
            // after which it can no longer answer.
            w.record(
                &r,
                Cause::Redeployed,
                Some(format!(
                    "{late} of release {id} landed late and may have replaced the deployment still being made; it is made again when its action's lease ends"
                )),
            )?;
            return Ok(());
        };
        let why = format!(
            "{replaced} was replaced by {late} of release {id}, which landed late; deploying again"
        );
        w.deploy_again(&r, replaced, why)?;
    } else if lane.in_flight.is_none()
        && let Some(good) = lane
            .last_known_good
            .clone()
            .filter(|g| g != id && w.state(g) == Some(StageState::Succeeded))
    {
        if w.view.predates_schema(&good) {
            // Built for the schema a stop-first migration replaced: not put back. The late
            // deployment is what runs (the newest UpdateService wins), recorded so, and a
            // person is told (simulation seed 22850).
            w.record(
                id,
                Cause::DeploymentCreated,
                Some(super::schema::schema_moved(&good)),
            )?;
            w.alert(Alert::SchemaMoved);
            w.lane().current = Some(id.clone());
            return Ok(());
        }
        // Nothing in flight: the last known good is deployed again, holding the lane.
        w.redeploy(
            &good,
            None,
            Some(format!(
                "{id}'s deployment landed after its stage ended; restoring"
            )),
        )?;
    }
    Ok(())
}

/// Whether a lane whose current release is in `state` runs what it does not want: the
/// release ended here (rolled back, failed, cancelled, or superseded after a retry) or
/// waits to deploy again, yet its version runs (a deployment that finished after its stage
/// ended, a CodeDeploy rollback that failed). The last known good is then restored.
pub(super) fn runs_unwanted(state: StageState) -> bool {
    !state.is_in_flight() && state != StageState::Succeeded
}

/// Whether the lane's current release succeeded here after `id`'s stage ended: a late
/// success of `id`'s deployment is then older than what runs.
pub(super) fn replaced_since(w: &Work<'_>, id: &ReleaseId) -> bool {
    let env = &w.view.lane.environment;
    let ended = w
        .view
        .releases
        .get(id)
        .and_then(|r| r.stages.get(env))
        .map(|s| s.since);
    let current = w
        .view
        .lane
        .current
        .as_ref()
        .and_then(|c| w.view.releases.get(c))
        .and_then(|r| r.stages.get(env))
        .and_then(|s| s.succeeded_at);
    matches!((ended, current), (Some(ended), Some(succeeded)) if succeeded > ended)
}

/// An ALARM of the last known good while it is still watched after its bake (the stage's
/// `watch`) and runs here alone: it is rolled back and the release before it deployed
/// again, as an operator's rollback would, and a person is alerted; with none before it,
/// it keeps running and the alert says so. The watch ends either way. With a release in
/// flight the alarm is that one's first (it is rolled back to this one, as always);
/// if it goes on firing once this one runs alone again, it is this one's own
/// ([`persisting_alarm`](super::owed::persisting_alarm)).
pub(super) fn watch_rolls_back(w: &mut Work<'_>, detail: &str) -> Result<(), TransitionError> {
    let lane = w.view.lane.clone();
    let Some(watched) = lane
        .last_known_good
        .clone()
        .filter(|_| lane.in_flight.is_none())
    else {
        return Ok(());
    };
    if w.state(&watched) != Some(StageState::Succeeded) {
        return Ok(());
    }
    w.lane().watch = None;
    let why = format!("{detail}, while it was watched after its bake");
    let before = lane
        .previous_good
        .as_ref()
        .filter(|p| **p != watched)
        .and_then(|p| rollback_target(w, Some(p)).ok());
    let Some(good) = before.clone().filter(|g| !w.view.predates_schema(g)) else {
        let (what, alert) = match &before {
            Some(good) => (
                format!("{why}; {}", super::schema::schema_moved(good)),
                Alert::SchemaMoved,
            ),
            None => (
                format!(
                    "{why}; no earlier release to restore here: it keeps running, manual action needed"
                ),
                Alert::NothingToRestore,
            ),
        };
        w.record(&watched, Cause::AlarmFired, Some(what))?;
        w.alert(alert);
        return Ok(());
    };
    let what = Some(format!("{why}; restoring {good}"));
    w.move_to(
        &watched,
        StageState::RolledBack,
        Cause::AlarmFired,
        None,
        what,
    )?;
    w.alert(Alert::AlarmAfterRelease);
    let lane = w.lane();
    lane.last_known_good = Some(good.clone());
    lane.previous_good = None;
    w.redeploy(&good, None, Some(format!("restoring after {watched}")))
}
