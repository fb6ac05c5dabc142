//! What AWS reports of a stage's own action, as the [`apply`](fn@super::apply) table
//! takes it: a deployment or migration task recorded, the deployment a hook ran for, a
//! deployment's success, a busy deployment group, a failed restore. Named steps, kept out
//! of the table so that each of its arms stays short.

use super::policy::BLOCKED_RETRY;
use super::undo::replace_shipped;
use super::work::Work;
use super::{Event, TransitionError};
use crate::release::model::{Cause, Phase, ReleaseId, StageState};

/// A restore of the last known good whose deployment failed: the failure is recorded, and
/// the restore is deployed again after a pause, with a new deadline.
pub(super) fn retry_failed_restore(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    cause: Cause,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    let (now, policy) = (w.now, w.policy);
    w.record(id, cause, detail)?;
    if state == S::Validating {
        let again = Some("restoring again".to_string());
        w.move_to(id, S::Deploying, Cause::Rollback, None, again)?;
    }
    let deadlines = policy.deadlines;
    let stage = w.stage(id)?;
    stage.restore_failures += 1;
    stage.ended.extend(stage.deployment_id.take());
    stage.set_lease(now.after(BLOCKED_RETRY));
    stage.deadline = Some(now.after(deadlines.deployment_start));
    Ok(())
}

/// The deployment or migration task a stage's action started is recorded (with the
/// revision it deploys), once; one that does not belong to the stage's try now (another
/// deployment, one that ended, one fenced off by a late deployment) is refused.
pub(super) fn record_started(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    event: &Event,
    recorded: &String,
    cause: Cause,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    let (env, now, policy) = (w.env(), w.now, w.policy);
    match w.stage(id)?.started().map(str::to_string) {
        Some(known) if &known == recorded => {
            // Recorded by a hook first: the revision is recorded now.
            if let Event::DeploymentCreated {
                task_definition: Some(td),
                ..
            } = event
                && w.stage(id)?.task_definition.is_none()
            {
                w.stage(id)?.task_definition = Some(td.clone());
                w.changed.insert(id.clone());
            }
        }
        Some(known) => {
            return Err(TransitionError::DeploymentMismatch {
                release: id.clone(),
                environment: env,
                expected: known,
                got: recorded.clone(),
            });
        }
        None if w.stage(id)?.ended.contains(recorded) => {
            return Err(w.ended_deployment(id, recorded));
        }
        None if matches!(event, Event::DeploymentCreated { fence, .. } if *fence < w.stage(id)?.fence) =>
        {
            return Err(TransitionError::FencedDeployment {
                release: id.clone(),
                environment: env,
                deployment: recorded.clone(),
            });
        }
        None => {
            let deadline = w.stage(id)?.deadline;
            w.move_to(id, state, cause, None, detail)?;
            let stage = w.stage(id)?;
            stage.set_started(recorded.clone());
            if let Event::DeploymentCreated {
                task_definition: Some(td),
                ..
            } = event
            {
                stage.task_definition = Some(td.clone());
            }
            // A deployment has its own, longer deadline; a migration keeps its own.
            stage.deadline = if state == S::Migrating {
                deadline
            } else {
                Some(now.after(policy.deadlines.deployment))
            };
        }
    }
    Ok(())
}

/// A deployment group busy with a deployment Shiplane did not start sends `id` back to the
/// queue, to be tried again after a pause; a newer release already queued supersedes it.
pub(super) fn back_to_queue(
    w: &mut Work<'_>,
    id: &ReleaseId,
    cause: Cause,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    let now = w.now;
    // Back to the queue; a newer release already waiting wins and this one is superseded.
    w.lane().in_flight = None;
    match w.view.lane.queued.clone() {
        Some(newer) => {
            w.move_to(
                id,
                S::Superseded,
                cause,
                None,
                Some(format!("superseded by {newer}")),
            )?;
        }
        None => {
            w.move_to(id, S::Queued, cause, None, detail)?;
            w.stage(id)?.phase = Phase::Queued {
                not_before: Some(now.after(BLOCKED_RETRY)),
            };
            w.lane().queued = Some(id.clone());
        }
    }
    Ok(())
}

/// The deployment a lifecycle hook ran for is recorded on the stage if its own outcome
/// never was; a hook of another deployment, or of one that ended, is refused.
pub(super) fn record_hook_deployment(
    w: &mut Work<'_>,
    id: &ReleaseId,
    deployment_id: &String,
    task_definition: Option<&String>,
) -> Result<(), TransitionError> {
    let (env, now, policy) = (w.env(), w.now, w.policy);
    match w.stage(id)?.deployment_id.clone() {
        Some(known) if &known != deployment_id => {
            return Err(TransitionError::DeploymentMismatch {
                release: id.clone(),
                environment: env,
                expected: known,
                got: deployment_id.clone(),
            });
        }
        Some(_) => {}
        None if w.stage(id)?.ended.contains(deployment_id) => {
            return Err(w.ended_deployment(id, deployment_id));
        }
        None => {
            let stage = w.stage(id)?;
            stage.deployment_id = Some(deployment_id.clone());
            if task_definition.is_some() {
                stage.task_definition = task_definition.cloned();
            }
            stage.deadline = Some(now.after(policy.deadlines.deployment));
        }
    }
    Ok(())
}

/// `id`'s deployment succeeded: it bakes, or succeeds at once (a restore, no bake), or,
/// with no bake to hold it while one of the lane's own alarms fires, is replaced.
pub(super) fn deployment_succeeded(
    w: &mut Work<'_>,
    id: &ReleaseId,
    cause: Cause,
    detail: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    let policy = w.policy;
    let redeploy = w.stage(id)?.redeploy;
    w.lane().current = Some(id.clone());
    super::outage::ended_by_deployment(w, id)?;
    let firing = w.view.lane.firing_alarms();
    if !redeploy && policy.bake.is_zero() && !firing.is_empty() {
        // The lane's own alarm blocks its success (DESIGN invariant 12): with no
        // bake to hold, the release that now runs is replaced, as an alarm during
        // its bake would. A bake holds its end until the alarm is OK instead.
        let why = format!(
            "the deployment succeeded while {} in ALARM here",
            firing.join(", ")
        );
        replace_shipped(w, id, (S::RolledBack, Cause::AlarmFired, None), Some(why))?;
    } else if redeploy || policy.bake.is_zero() {
        w.succeed(id, cause, None, detail)?;
    } else {
        // Entering the bake sets its end: the policy's bake from now.
        w.move_to(id, S::Baking, cause, None, detail)?;
    }
    Ok(())
}
