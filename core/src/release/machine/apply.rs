//! The table of one release's events ([`apply`]): for each state and event, what the
//! release becomes. One file for the table, so that it reads whole; long arm bodies are
//! named steps below it (and, for what AWS reports, in `outcome`).

use super::action::action_name;
use super::arrive::arrive;
use super::event::bounded;
use super::outage::{app_started, app_stopped};
use super::outcome::{
    back_to_queue, deployment_succeeded, record_hook_deployment, record_started,
    retry_failed_restore,
};
use super::owed::persisting_alarm;
use super::policy::{BLOCKED_RETRY, LEASE, RESTORE_TRIES};
use super::undo::{replaced_since, roll_back, runs_unwanted, undo_late, watch_rolls_back};
use super::work::Work;
use super::{Action, Decision, Event, Policy, TransitionError, pending_action};
use crate::release::model::{Cause, LaneView, ReleaseId, StageState, Timestamp};

/// Applies one event for one release to a lane. Pure: the same inputs give the same decision.
pub fn apply(
    view: &LaneView,
    release: &ReleaseId,
    event: &Event,
    policy: &Policy,
    now: Timestamp,
) -> Result<Decision, TransitionError> {
    let mut w = Work::new(view, policy, now);
    let id = release;
    let lane_service = w.view.lane.service.clone();
    let r = w.release(id)?;
    if r.service != lane_service {
        return Err(TransitionError::WrongService {
            release: id.clone(),
            release_service: r.service.clone(),
            service: lane_service,
        });
    }
    let cause = event.cause();
    let actor = event.actor();
    let detail = event.detail();
    let env = w.env();

    let Some(state) = w.state(id) else {
        return match event {
            Event::Arrived | Event::Deployed { .. } => {
                arrive(&mut w, id, cause, actor, detail)?;
                w.done()
            }
            Event::TagAdded { tag } => {
                // A new tag is a fact of the release, wherever it is.
                if w.release(id)?.add_tag(tag) {
                    w.record(id, cause, detail)?;
                }
                w.done()
            }
            _ => Err(TransitionError::NotArrived {
                release: id.clone(),
                environment: env,
                event: event.name(),
            }),
        };
    };

    use StageState as S;
    match (state, event) {
        (_, Event::Arrived | Event::Deployed { .. }) => {
            return Err(TransitionError::AlreadyArrived {
                release: id.clone(),
                environment: env,
                state,
            });
        }
        (_, Event::TagAdded { tag }) => {
            if w.release(id)?.add_tag(tag) {
                w.record(id, cause, detail)?;
            }
        }
        (S::Queued, Event::Dequeue) => {
            if w.view.lane.queued.as_ref() != Some(id) {
                return Err(w.not_allowed(id, state, event));
            }
            if w.set_aside_past_schema(id)? {
                // Not started: built for the schema a stop-first migration replaced.
            } else if let Some(why) = w.busy_because() {
                return Err(TransitionError::Busy {
                    release: id.clone(),
                    service: w.view.lane.service.clone(),
                    environment: env,
                    why,
                });
            } else {
                w.start(id, cause, None)?;
            }
        }
        (S::AwaitingApproval, Event::Approved { actor }) => {
            w.stage(id)?.approved_by = Some(actor.clone());
            if let Some(why) = w.busy_because() {
                w.move_to(id, S::Queued, cause, Some(actor.clone()), Some(why))?;
            } else {
                w.start(id, cause, Some(actor.clone()))?;
            }
        }
        (S::AwaitingApproval | S::Queued, Event::Rejected { .. } | Event::Cancelled { .. }) => {
            let to = if matches!(event, Event::Rejected { .. }) {
                S::Rejected
            } else {
                S::Cancelled
            };
            w.move_to(id, to, cause, actor, detail)?;
            if w.view.lane.queued.as_ref() == Some(id) {
                w.lane().queued = None;
            }
        }
        (S::AwaitingApproval, Event::TimedOut { .. }) => {
            w.move_to(id, S::Cancelled, cause, None, detail)?;
            if w.view.lane.queued.as_ref() == Some(id) {
                w.lane().queued = None;
            }
        }
        // Cancelling the restore of the last known good would leave what it replaces
        // running, for good: refused, with the way to put another release back instead.
        (S::Deploying | S::Validating, Event::Cancelled { .. }) if w.stage(id)?.redeploy => {
            return Err(TransitionError::RestoreNotCancelled {
                release: id.clone(),
                service: w.view.lane.service.clone(),
                environment: env,
            });
        }
        // The deployment that brings a service back up after this release's stop-first
        // migration is the only thing that runs on what the migration changed: cancelling
        // it would leave the service with nothing that can serve.
        (S::Deploying | S::Validating, Event::Cancelled { .. })
            if w.view.lane.down.as_ref().is_some_and(|d| &d.release == id) =>
        {
            return Err(TransitionError::Busy {
                release: id.clone(),
                service: w.view.lane.service.clone(),
                environment: env,
                why: "its stop-first migration completed and its deployment is bringing the stopped service back up on the new version; let it finish (then `shiplane rollback` if it must go)".into(),
            });
        }
        (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::Cancelled { .. }) => {
            w.end_in_flight(id, state, S::Cancelled, cause, actor, detail, true)?;
        }
        (S::Migrating | S::Deploying | S::Validating, Event::TimedOut { .. }) => {
            w.end_in_flight(id, state, S::Failed, cause, None, detail, true)?;
        }
        (S::Deploying | S::Validating, Event::DeploymentReplaced { deployment_id })
            if policy.undo_by_redeploy
                && w.stage(id)?.deployment_id.as_ref() == Some(deployment_id) =>
        {
            w.stage(id)?.fence += 1;
            w.deploy_again(id, deployment_id.clone(), detail.unwrap_or_default())?;
        }
        (S::Migrating, Event::MigrationSucceeded) => {
            // A migration the old version could not run beside has changed its schema:
            // nothing before this release is put back here automatically from now on.
            if w.view.lane.down.as_ref().is_some_and(|d| &d.release == id) {
                w.mark_schema(id)?;
            }
            // The migration's task goes with its phase; the deployment records its own.
            w.move_to(id, S::Deploying, cause, None, None)?;
            w.actions.push(Action::Deploy {
                release: id.clone(),
                environment: env,
                redeploy: false,
            });
        }
        // A restore of the last known good that could not be started (AWS failed past its
        // retries) is not given up: what runs is worse. Nor is the deployment that brings
        // a service stopped for this release's migration back up: nothing else may run
        // on what the migration changed (its UpdateService may also have landed, answer
        // lost, and is adopted). Each is tried again by the next pass after a pause, until
        // its deadline.
        (S::Deploying, Event::ActionFailed { .. })
            if (w.stage(id)?.redeploy
                || w.view.lane.down.as_ref().is_some_and(|d| &d.release == id))
                && w.stage(id)?.deployment_id.is_none() =>
        {
            w.record(id, cause, detail)?;
            w.stage(id)?.set_lease(now.after(BLOCKED_RETRY));
        }
        // A restore of the last known good whose deployment failed is tried again, a few
        // times, before a person is asked to act: what it was to replace still runs.
        (S::Deploying | S::Validating, Event::DeploymentFailed { .. })
            if w.stage(id)?.redeploy && w.stage(id)?.restore_failures < RESTORE_TRIES =>
        {
            retry_failed_restore(&mut w, id, state, cause, detail)?;
        }
        // The deploy action failed for good, but its UpdateService may have landed with
        // its answer lost: a rolling service is put back on the last known good.
        (S::Deploying | S::Validating, Event::ActionFailed { .. }) if policy.undo_by_redeploy => {
            w.end_in_flight(id, state, S::Failed, cause, None, detail, true)?;
        }
        (S::Migrating, Event::MigrationFailed { .. })
        | (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::ActionFailed { .. })
        | (S::Deploying | S::Validating, Event::DeploymentFailed { .. }) => {
            w.move_to(id, S::Failed, cause, None, detail)?;
            if w.view.lane.in_flight.as_ref() == Some(id) {
                w.finish()?;
            }
        }
        // A hook can report in before the deployment's own outcome commits (CodeDeploy
        // calls the first hook right after CreateDeployment): validating takes it too.
        // A CodeDeploy deployment that finished after its stage ended (its stop came too
        // late, or never ran): the release runs. The lane records it as running, and what
        // it owes then restores the last known good (see `owed`). CodeDeploy runs one
        // deployment per group at a time, so the deployment succeeded before any that the
        // lane's current release succeeded with after this stage ended: then it no longer
        // runs (`replaced_since`). A rolling service's deployment is replaced while it
        // runs, and cannot be ordered this way: not there.
        (S::RolledBack | S::Cancelled | S::Failed, Event::DeploymentSucceeded)
            if !policy.undo_by_redeploy
                && w.stage(id)?.deployment_id.is_some()
                && w.view.lane.current.as_ref() != Some(id)
                && !replaced_since(&w, id) =>
        {
            w.record(
                id,
                cause,
                Some("its deployment finished after the stage ended: it runs now, and the last known good is deployed again".into()),
            )?;
            w.lane().current = Some(id.clone());
        }
        // A data-job action that ran on after its stage ended (a cancel, a deadline, the
        // operator's rollback while it ran) moved the triggers to this release's revisions,
        // perhaps after the last known good was put back: the lane records it as running,
        // and what it owes deploys the last known good again, moving them back (its order
        // against the moves of any release since is unknown, so it is restored either way).
        (S::RolledBack | S::Cancelled | S::Failed, Event::JobsUpdated { .. })
            if w.view.lane.current.as_ref() != Some(id) =>
        {
            w.record(
                id,
                cause,
                Some(format!(
                    "{}; its data-job action finished after the stage ended: the last known good is deployed again",
                    detail.unwrap_or_default()
                )),
            )?;
            w.lane().current = Some(id.clone());
            w.settled(id)?;
        }
        // A stop-first migration that completed after its stage ended (its RunTask was in
        // flight): the schema moved all the same.
        (S::Cancelled | S::Failed | S::RolledBack, Event::MigrationSucceeded)
            if policy.stop_first =>
        {
            super::schema::migrated_late(&mut w, id, (state, event, cause))?;
        }
        (S::Succeeded, Event::Restore) => {
            restore_last_known_good(&mut w, id, state, event)?;
        }
        (S::Deploying | S::Migrating, Event::ActionResumed) => {
            resume_action(&mut w, id, state, event, cause)?;
        }
        // The deployment was created after its stage ended (an alarm, an operator or a
        // deadline ended it while CreateDeployment or UpdateService was still in flight):
        // it is recorded, so that what runs stays accounted for, and undone.
        (
            S::Cancelled | S::Failed | S::RolledBack,
            Event::DeploymentCreated {
                deployment_id: late,
                task_definition,
                ..
            },
        ) if w.stage(id)?.deployment_id.is_none() => {
            let stage = w.stage(id)?;
            stage.deployment_id = Some(late.clone());
            stage.task_definition.clone_from(task_definition);
            w.record(
                id,
                cause,
                Some(format!("{late}, created after the stage ended; undoing it")),
            )?;
            undo_late(&mut w, id, late)?;
        }
        (
            S::Deploying | S::Validating,
            Event::DeploymentCreated {
                deployment_id: recorded,
                ..
            },
        )
        | (S::Migrating, Event::MigrationStarted { task_arn: recorded }) => {
            record_started(&mut w, id, state, event, recorded, cause, detail)?;
        }
        // A restore of the last known good waits for the group, holding the lane: it is
        // tried again after a pause, never superseded or sent back to the queue. Waiting
        // for a busy group is not failing to start: its deadline counts from the last time
        // the group was found busy (simulation seed 23572: CodeDeploy's own rollback held
        // the group for its hook's hour, and the restore was given up just before).
        (S::Deploying, Event::DeploymentBlocked { .. })
            if w.stage(id)?.deployment_id.is_none() && w.stage(id)?.redeploy =>
        {
            w.record(id, cause, detail)?;
            let stage = w.stage(id)?;
            stage.set_lease(now.after(BLOCKED_RETRY));
            stage.deadline = Some(now.after(policy.deadlines.deployment_start));
        }
        (S::Deploying, Event::DeploymentBlocked { .. }) if w.stage(id)?.deployment_id.is_none() => {
            back_to_queue(&mut w, id, cause, detail)?;
        }
        (S::Deploying, Event::ValidationStarted) => {
            w.move_to(id, S::Validating, cause, None, None)?;
        }
        (S::Validating, Event::ValidationStarted) => {} // each hook reports in; the first moved it
        (
            S::Deploying | S::Validating,
            Event::HookCompleted {
                deployment_id,
                task_definition,
                checks,
                ..
            },
        ) => {
            record_hook_deployment(&mut w, id, deployment_id, task_definition.as_ref())?;
            if state == S::Deploying {
                w.move_to(id, S::Validating, Cause::ValidationStarted, None, None)?;
            }
            for (passed, record) in checks {
                let cause = if *passed {
                    Cause::CheckPassed
                } else {
                    Cause::CheckFailed
                };
                w.record(id, cause, Some(bounded(record)))?;
            }
            w.record(id, cause, detail)?;
        }
        (S::Deploying | S::Validating, Event::DeploymentSucceeded | Event::JobsUpdated { .. }) => {
            deployment_succeeded(&mut w, id, cause, detail)?;
        }
        (S::Failed | S::RolledBack | S::Cancelled, Event::Retry { .. }) => {
            retry(&mut w, id, cause, actor)?;
        }
        (S::Baking, Event::PromotedEarly { .. }) => {
            w.succeed(id, cause, actor, detail)?;
        }
        (S::Baking, Event::BakeElapsed) => {
            // The gate at the end of the bake: none of the lane's own alarms fires. While
            // one does the release stays baking; its OK makes the lane owe the bake again.
            let firing = w.view.lane.firing_alarms();
            if !firing.is_empty() {
                return Err(TransitionError::Held {
                    release: id.clone(),
                    environment: env,
                    why: format!("{} in ALARM", firing.join(", ")),
                });
            }
            w.succeed(id, cause, None, None)?;
        }
        (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::AlarmFired { .. }) => {
            roll_back(&mut w, id, state, detail)?;
        }
        // The watched last known good's own alarm still fires after it was put back.
        (S::Succeeded, Event::AlarmFired { alarm })
            if persisting_alarm(&w.view, now).is_some_and(|(r, _)| &r == id) =>
        {
            let why = format!("{alarm} still in ALARM once it ran here alone");
            watch_rolls_back(&mut w, &why)?;
        }
        // CodeDeploy's rollback of this ended stage's deployment failed: the version it was
        // to remove may still take production traffic. The lane records it as running, so
        // that what the lane owes restores the last known good (a deployment of its own,
        // which moves all the traffic), unless a newer release succeeded here since.
        (_, Event::RollbackReported { failed: true, .. })
            if runs_unwanted(state)
                && !policy.undo_by_redeploy
                && w.view.lane.current.as_ref() != Some(id)
                && !replaced_since(&w, id) =>
        {
            let detail = detail.map(|d| {
                format!("{d}; it may still take production traffic: the last known good is deployed again")
            });
            w.record(id, cause, detail)?;
            w.lane().current = Some(id.clone());
        }
        // A restart this success owed is done (or failed for good): owed no more. Once
        // the stage left its success, or for a replay, there is nothing to record.
        (S::Succeeded, Event::Restarted { service, since, .. }) => {
            let this_success = w.stage(id)?.succeeded_at.is_none_or(|at| at == *since);
            if this_success && w.stage(id)?.restarted(service) {
                w.record(id, cause, detail)?;
            }
        }
        (_, Event::Restarted { .. }) => {}
        // The service was stopped for this release's `stop-first` migration, and the
        // outcome of starting it again when the release went no further.
        (_, Event::AppStopped { desired, running }) => {
            app_stopped(&mut w, id, state, *desired, *running)?;
        }
        (_, Event::AppStarted { .. }) => app_started(&mut w, id, event)?,
        // The clean-up this success owed is done: recorded when it deregistered something
        // or stopped short; owed no more either way (the next success cleans up again).
        (
            S::Succeeded,
            Event::CleanedUp {
                deregistered,
                error,
            },
        ) => {
            if w.stage(id)?.cleaned_up() {
                if deregistered.is_empty() && error.is_none() {
                    w.changed.insert(id.clone());
                } else {
                    w.record(id, cause, detail)?;
                }
            }
        }
        (_, Event::CleanedUp { .. }) => {}
        // Facts about the stage's timer or CodeDeploy's rollback of its deployment, true
        // whatever the stage became since.
        (_, Event::BakeTimer { .. } | Event::RollbackReported { .. }) => {
            w.record(id, cause, detail)?;
        }
        (
            S::Cancelled | S::Failed | S::RolledBack,
            Event::StopRequested {
                deployment_id,
                succeeded,
                ..
            },
        ) if w.stage(id)?.deployment_id.as_ref() == Some(deployment_id) => {
            w.record(id, cause, detail)?;
            // Too late to stop: it runs (and the lane owes the last known good's restore);
            // only the stop the lane still owes says so, not a duplicate's late outcome.
            if w.view.lane.stopping.as_ref() == Some(id) {
                w.lane().stopping = None;
                if *succeeded && !replaced_since(&w, id) {
                    w.lane().current = Some(id.clone());
                }
            }
        }
        (state, event) => return Err(w.not_allowed(id, state, event)),
    }
    w.done()
}

/// The last known good `id` is deployed again over a release that ended here yet runs;
/// refused unless the lane is free and `id` is its last known good.
fn restore_last_known_good(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    event: &Event,
) -> Result<(), TransitionError> {
    let lane = &w.view.lane;
    let runs_bad = lane
        .current
        .as_ref()
        .filter(|c| *c != id)
        .is_some_and(|c| w.state(c).is_some_and(runs_unwanted));
    if lane.in_flight.is_some()
        || lane.last_known_good.as_ref() != Some(id)
        || !runs_bad
        || w.view.predates_schema(id)
    {
        return Err(w.not_allowed(id, state, event));
    }
    let bad = lane.current.clone().unwrap_or_else(|| id.clone());
    w.redeploy(
        id,
        None,
        Some(format!("{bad} runs, but it ended here; restoring")),
    )?;
    Ok(())
}

/// The action `id`'s stage owes, left unfinished past its lease, is taken over and run
/// again; past its deadline it is given up (a restore of the last known good is tried
/// again first).
fn resume_action(
    w: &mut Work<'_>,
    id: &ReleaseId,
    state: StageState,
    event: &Event,
    cause: Cause,
) -> Result<(), TransitionError> {
    use StageState as S;
    let (env, now, policy) = (w.env(), w.now, w.policy);
    let expired = w.stage(id)?.lease().is_none_or(|until| until <= now);
    let Some(action) = pending_action(w.release(id)?, &env).filter(|_| expired) else {
        return Err(w.not_allowed(id, state, event));
    };
    let deadlines = policy.deadlines;
    let stage = w.stage(id)?;
    let overdue = stage.deadline.is_some_and(|d| d <= now);
    if overdue && stage.redeploy && stage.restore_failures < RESTORE_TRIES {
        // A restore of the last known good is not given up at its first deadline:
        // what runs is worse. It counts as a failed try, and is tried again.
        stage.restore_failures += 1;
        stage.deadline = Some(now.after(deadlines.deployment_start));
        let tries = stage.restore_failures;
        w.record(
            id,
            Cause::TimedOut,
            Some(format!(
                "the restore could not be started by its deadline; trying again ({tries} of {RESTORE_TRIES} tries failed)"
            )),
        )?;
    } else if overdue {
        // Not started by its deadline: given up, for a person to look at.
        let why = format!(
            "{} could not be started by its deadline; see its history, then `shiplane retry`",
            action_name(&action)
        );
        // An UpdateService may have landed with its answer lost: a rolling
        // service is put back on the last known good (simulation seed 188).
        let restore = matches!(action, Action::Deploy { .. });
        w.end_in_flight(
            id,
            state,
            S::Failed,
            Cause::TimedOut,
            None,
            Some(why),
            restore,
        )?;
        return Ok(());
    }
    let draining = w.view.lane.down.as_ref().is_some_and(|d| &d.release == id)
        && state == S::Migrating
        && w.stage(id)?.started().is_none();
    if draining {
        // The migration waits for the service it stopped to have no tasks: looked at
        // again, not taken over from a dead invocation (nothing to record).
        w.stage(id)?.set_lease(now.after(LEASE));
        w.changed.insert(id.clone());
        w.actions.push(action);
        return Ok(());
    }
    // Deferred behind a data-job action that may have run on after its stage ended, it
    // waited; it was not left unfinished.
    let waited = w.waited(action_name(&action));
    let stage = w.stage(id)?;
    stage.set_lease(now.after(LEASE));
    stage.resumed += 1;
    let why = waited
        .unwrap_or_else(|| format!("{} left unfinished past its lease", action_name(&action)));
    w.record(id, cause, Some(why))?;
    w.actions.push(action);
    Ok(())
}

/// An operator's new attempt at a stage that failed, was rolled back or cancelled: it
/// starts afresh, or queues; refused while another release waits in the queue or the
/// old deployment is still owed a stop.
fn retry(
    w: &mut Work<'_>,
    id: &ReleaseId,
    cause: Cause,
    actor: Option<String>,
) -> Result<(), TransitionError> {
    use StageState as S;
    let env = w.env();
    if let Some(other) = w.view.lane.queued.clone().filter(|q| q != id) {
        return Err(TransitionError::Busy {
            release: id.clone(),
            service: w.view.lane.service.clone(),
            environment: env,
            why: format!("release {other} waits in the queue; cancel it first"),
        });
    }
    super::schema::refuse_retry_past_schema(w, id)?;
    if w.view.lane.stopping.as_ref() == Some(id) {
        // Its deployment is still owed a stop: a new attempt would forget it, and
        // it would go on to serve (simulation seed 17891).
        let deployment = w.stage(id)?.deployment_id.clone().unwrap_or_default();
        return Err(TransitionError::Busy {
            release: id.clone(),
            service: w.view.lane.service.clone(),
            environment: env,
            why: format!(
                "its deployment {deployment} is still being stopped; retry in a few minutes, once the reconciler has stopped it"
            ),
        });
    }
    let stage = w.stage(id)?;
    stage.attempt += 1;
    stage.deployment_id = None;
    stage.task_definition = None;
    stage.redeploy = false;
    let attempt = stage.attempt;
    if let Some(why) = w.busy_because() {
        w.move_to(
            id,
            S::Queued,
            cause,
            actor,
            Some(format!("attempt {attempt}; {why}")),
        )?;
        w.lane().queued = Some(id.clone());
    } else {
        w.start(id, cause, actor)?;
    }
    Ok(())
}
