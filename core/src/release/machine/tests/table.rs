//! The whole transition table: every state (and "not arrived") against every event, and
//! what a refusal leaves (nothing).

use super::*;

#[derive(Debug, PartialEq)]
enum Expect {
    To(StageState),
    /// The state stays; a transition records the fact.
    Recorded,
    /// Nothing changes, nothing is recorded: an outcome owed no more (a replay).
    Unchanged,
    NotArrived,
    AlreadyArrived,
    NotAllowed,
}

/// The whole transition table: for every state (and "not arrived") and every event,
/// what the release becomes. Anything not listed must be refused with NotAllowed.
fn expected(state: Option<StageState>, event: &Event) -> Expect {
    use Expect::*;
    use StageState as S;
    let Some(state) = state else {
        return match event {
            Event::Arrived | Event::Deployed { .. } => To(S::Deploying),
            Event::TagAdded { .. } => Recorded,
            _ => NotArrived,
        };
    };
    match (state, event) {
        (_, Event::Arrived | Event::Deployed { .. }) => AlreadyArrived,
        (_, Event::TagAdded { .. } | Event::BakeTimer { .. } | Event::RollbackReported { .. }) => {
            Recorded
        }
        // The sample's stage owes no restart: the outcome of one changes nothing.
        (_, Event::Restarted { .. } | Event::CleanedUp { .. }) => Unchanged,
        // A stop for a migration is a fact of the lane whatever the stage became (the
        // service is stopped); a start with no stop recorded is a replay.
        (_, Event::AppStopped { .. }) => Recorded,
        (_, Event::AppStarted { .. }) => Unchanged,
        (S::Queued, Event::Dequeue) => To(S::Deploying),
        (S::AwaitingApproval, Event::Approved { .. }) => To(S::Deploying),
        (S::AwaitingApproval | S::Queued, Event::Rejected { .. }) => To(S::Rejected),
        (
            S::AwaitingApproval
            | S::Queued
            | S::Migrating
            | S::Deploying
            | S::Validating
            | S::Baking,
            Event::Cancelled { .. },
        ) => To(S::Cancelled),
        (S::Migrating | S::Deploying | S::Validating, Event::TimedOut { .. }) => To(S::Failed),
        (S::AwaitingApproval, Event::TimedOut { .. }) => To(S::Cancelled),
        (S::Deploying, Event::HookCompleted { .. }) => To(S::Validating),
        (S::Validating, Event::HookCompleted { .. }) => Recorded,
        (S::Migrating, Event::MigrationStarted { .. }) => To(S::Migrating),
        (S::Migrating, Event::MigrationSucceeded) => To(S::Deploying),
        (S::Migrating, Event::MigrationFailed { .. }) => To(S::Failed),
        (S::Migrating | S::Deploying | S::Validating | S::Baking, Event::ActionFailed { .. }) => {
            To(S::Failed)
        }
        (S::Deploying, Event::DeploymentCreated { .. }) => To(S::Deploying),
        // The sample stage holds no lease (an item from before leases): taken over.
        (S::Deploying | S::Migrating, Event::ActionResumed) => Recorded,
        // Created after the stage ended: recorded, and undone.
        (S::Failed | S::RolledBack | S::Cancelled, Event::DeploymentCreated { .. }) => Recorded,
        (S::Validating, Event::DeploymentCreated { .. }) => To(S::Validating),
        (S::Deploying, Event::DeploymentBlocked { .. }) => To(S::Queued),
        (S::Deploying | S::Validating, Event::ValidationStarted) => To(S::Validating),
        (S::Deploying | S::Validating, Event::DeploymentSucceeded) => To(S::Baking),
        (S::Deploying | S::Validating, Event::DeploymentFailed { .. }) => To(S::Failed),
        (S::Baking, Event::BakeElapsed | Event::PromotedEarly { .. }) => To(S::Succeeded),
        (S::Failed | S::RolledBack | S::Cancelled, Event::Retry { .. }) => To(S::Deploying),
        (S::Deploying | S::Validating | S::Baking, Event::AlarmFired { .. }) => To(S::RolledBack),
        // Nothing is reverted: the migration task is left to finish, nothing deploys.
        (S::Migrating, Event::AlarmFired { .. }) => To(S::Failed),
        _ => NotAllowed,
    }
}

#[test]
fn every_state_event_pair_follows_the_table() {
    let mut covered = 0;
    let states: Vec<Option<StageState>> = std::iter::once(None)
        .chain(StageState::ALL.into_iter().map(Some))
        .collect();
    for state in &states {
        for event in samples() {
            let view = view_in(*state);
            let got = apply(&view, &id(1), &event, &policy(), Timestamp(T0.0 + 10));
            let want = expected(*state, &event);
            match (&got, &want) {
                (Ok(d), Expect::To(to)) => {
                    assert_eq!(
                        d.view.releases[&id(1)].state_in(ENV),
                        Some(*to),
                        "{state:?} + {event:?}"
                    );
                    // The release that was touched changed and history says so, unless it
                    // was a replay of a recorded fact.
                    let replay = matches!(
                        (state, &event),
                        (Some(StageState::Validating), Event::ValidationStarted)
                            // the sample's deployment is the one already recorded there
                            | (Some(StageState::Validating), Event::DeploymentCreated { .. })
                    );
                    assert_eq!(
                        d.transitions.is_empty(),
                        replay,
                        "{state:?} + {event:?}: {d:?}"
                    );
                }
                (Ok(d), Expect::Recorded) => {
                    assert_eq!(
                        d.view.releases[&id(1)].state_in(ENV),
                        *state,
                        "{state:?} + {event:?}"
                    );
                    assert_eq!(d.transitions.len(), 1, "{state:?} + {event:?}");
                    assert_eq!(d.transitions[0].from, d.transitions[0].to);
                }
                (Ok(d), Expect::Unchanged) => {
                    assert!(
                        d.is_noop() && d.transitions.is_empty(),
                        "{state:?} + {event:?}"
                    );
                }
                (Err(TransitionError::NotArrived { .. }), Expect::NotArrived)
                | (Err(TransitionError::AlreadyArrived { .. }), Expect::AlreadyArrived)
                | (Err(TransitionError::NotAllowed { .. }), Expect::NotAllowed) => {}
                _ => panic!("{state:?} + {event:?}: got {got:?}, want {want:?}"),
            }
            covered += 1;
        }
    }
    assert_eq!(covered, 13 * 32);
}

#[test]
fn refused_events_leave_no_trace() {
    // A refusal is a value: the caller keeps the old state, so nothing is half-applied.
    let view = view_in(Some(StageState::Succeeded));
    let before = view.clone();
    for event in samples() {
        if matches!(
            event,
            Event::TagAdded { .. }
                | Event::BakeTimer { .. }
                | Event::RollbackReported { .. }
                | Event::Restarted { .. }
                | Event::CleanedUp { .. }
                | Event::AppStopped { .. }
                | Event::AppStarted { .. }
        ) {
            continue; // a fact of the release, recorded (or owed no more) in any state
        }
        assert!(apply(&view, &id(1), &event, &policy(), T0).is_err());
        assert_eq!(view, before);
    }
}
