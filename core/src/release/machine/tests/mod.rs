use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;

use super::policy::RESTORE_TRIES;
use super::*;
use crate::pipeline::Approval;
use crate::release::model::{
    AlarmSeen, AlarmState, Cause, Digest, Lane, LaneView, Release, ReleaseId, Stage, StageState,
    Timestamp,
};

const ENV: &str = "dev";
const T0: Timestamp = Timestamp(1_700_000_000_000);

fn id(n: u64) -> ReleaseId {
    ReleaseId::parse(&ulid::Ulid::from_parts(T0.0, u128::from(n)).to_string()).unwrap()
}

fn release(n: u64) -> Release {
    let digest = Digest::parse(&format!("sha256:{:064x}", n)).unwrap();
    Release::new(
        id(n),
        "api",
        "team/api",
        digest,
        Some(&format!("v1.0.{n}")),
        T0,
    )
}

fn policy() -> Policy {
    Policy {
        approval: Approval::None,
        migration: false,
        bake: Duration::from_secs(600),
        frozen: false,
        next_environment: Some("staging".into()),
        deadlines: Deadlines::default(),
        held_by: Vec::new(),
        undo_by_redeploy: false,
    }
}

/// A rolling service's policy: no stop, the newest UpdateService wins.
fn rolling() -> Policy {
    Policy {
        undo_by_redeploy: true,
        ..policy()
    }
}

/// A rolling lane where release 1 ended as `ended` and release 0, the last known good, is
/// being restored, in `restore` (its stage's other fields as `with` leaves them).
fn restore_in_flight(
    ended: StageState,
    restore: StageState,
    with: impl FnOnce(&mut Stage),
) -> LaneView {
    let mut v = view_in(Some(ended));
    v.lane.in_flight = Some(id(0));
    let stage = v
        .releases
        .get_mut(&id(0))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap();
    stage.state = restore;
    stage.redeploy = true;
    with(stage);
    v
}

fn empty_view() -> LaneView {
    LaneView {
        lane: Lane::new("api", ENV),
        releases: BTreeMap::new(),
    }
}

fn with_stage(mut r: Release, state: StageState) -> Release {
    let mut stage = Stage::new(state, T0);
    if matches!(state, StageState::Validating | StageState::Baking) {
        stage.deployment_id = Some("d-1".into());
    }
    if state == StageState::Succeeded {
        stage.succeeded_at = Some(T0);
    }
    r.stages.insert(ENV.into(), stage);
    r
}

/// A lane where release 1 is in `state` (or has not arrived), consistently placed in the
/// lane's slots, and release 0 is the last known good.
fn view_in(state: Option<StageState>) -> LaneView {
    let mut v = empty_view();
    let good = with_stage(release(0), StageState::Succeeded);
    v.lane.last_known_good = Some(good.id.clone());
    v.lane.current = Some(good.id.clone());
    v.releases.insert(good.id.clone(), good);
    let r = match state {
        None => release(1),
        Some(s) => {
            if s.is_in_flight() {
                v.lane.in_flight = Some(id(1));
            } else if s.is_waiting() {
                v.lane.queued = Some(id(1));
            }
            with_stage(release(1), s)
        }
    };
    v.releases.insert(r.id.clone(), r);
    v
}

fn samples() -> Vec<Event> {
    vec![
        Event::Arrived,
        Event::Approved {
            actor: "ana".into(),
        },
        Event::Rejected {
            actor: "ana".into(),
            reason: "no".into(),
        },
        Event::Cancelled {
            actor: "ana".into(),
            reason: "oops".into(),
        },
        Event::MigrationStarted {
            task_arn: "arn:task/1".into(),
        },
        Event::MigrationSucceeded,
        Event::MigrationFailed {
            reason: "exit 1".into(),
        },
        Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: None,
            fence: 0,
        },
        Event::ValidationStarted,
        Event::ActionResumed,
        // Only the lane's last known good is restored (release 0 here): refused for 1.
        Event::Restore,
        Event::DeploymentBlocked {
            reason: "busy".into(),
        },
        Event::DeploymentSucceeded,
        Event::DeploymentFailed {
            reason: "health".into(),
        },
        Event::BakeElapsed,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        Event::ActionFailed {
            reason: "throttled".into(),
        },
        Event::Dequeue,
        Event::TagAdded { tag: "v9".into() },
        Event::DeploymentReplaced {
            deployment_id: "d-1".into(),
        },
        Event::TimedOut {
            reason: "late".into(),
        },
        Event::StopRequested {
            deployment_id: "d-1".into(),
            error: None,
            succeeded: false,
        },
        Event::HookCompleted {
            deployment_id: "d-1".into(),
            task_definition: None,
            hook: "AfterAllowTestTraffic".into(),
            checks: Vec::new(),
            failure: None,
        },
        Event::PromotedEarly {
            actor: "ana".into(),
            reason: "hotfix".into(),
        },
        Event::Retry {
            actor: "ana".into(),
        },
        Event::Deployed {
            actor: "ana".into(),
            reason: "hotfix by digest".into(),
        },
        Event::BakeTimer {
            schedule: "bake-x-0-dev".into(),
            set: true,
            error: None,
        },
        Event::RollbackReported {
            deployment_id: "d-2".into(),
            detail: "rollback of d-1 succeeded".into(),
            failed: false,
        },
    ]
}

#[derive(Debug, PartialEq)]
enum Expect {
    To(StageState),
    /// The state stays; a transition records the fact.
    Recorded,
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
                (Err(TransitionError::NotArrived { .. }), Expect::NotArrived)
                | (Err(TransitionError::AlreadyArrived { .. }), Expect::AlreadyArrived)
                | (Err(TransitionError::NotAllowed { .. }), Expect::NotAllowed) => {}
                _ => panic!("{state:?} + {event:?}: got {got:?}, want {want:?}"),
            }
            covered += 1;
        }
    }
    assert_eq!(covered, 13 * 28);
}

#[test]
fn refused_events_leave_no_trace() {
    // A refusal is a value: the caller keeps the old state, so nothing is half-applied.
    let view = view_in(Some(StageState::Succeeded));
    let before = view.clone();
    for event in samples() {
        if matches!(
            event,
            Event::TagAdded { .. } | Event::BakeTimer { .. } | Event::RollbackReported { .. }
        ) {
            continue; // a fact of the release, recorded in any state
        }
        assert!(apply(&view, &id(1), &event, &policy(), T0).is_err());
        assert_eq!(view, before);
    }
}

fn arrive(view: &LaneView, r: Release, p: &Policy) -> Decision {
    let mut v = view.clone();
    let rid = r.id.clone();
    v.releases.insert(rid.clone(), r);
    apply(&v, &rid, &Event::Arrived, p, T0).unwrap()
}

fn step(view: &LaneView, n: u64, event: Event, p: &Policy) -> Decision {
    apply(view, &id(n), &event, p, T0).unwrap()
}

fn state(d: &Decision, n: u64) -> Option<StageState> {
    d.view.releases[&id(n)].state_in(ENV)
}

#[test]
fn arrival_on_a_free_lane_deploys_and_takes_the_slot() {
    let d = arrive(&empty_view(), release(1), &policy());
    assert_eq!(state(&d, 1), Some(StageState::Deploying));
    assert_eq!(d.view.lane.in_flight, Some(id(1)));
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false
        }]
    );
}

#[test]
fn push_while_in_flight_queues_and_a_later_push_supersedes() {
    let p = policy();
    let d1 = arrive(&empty_view(), release(1), &p);
    let d2 = arrive(&d1.view, release(2), &p);
    assert_eq!(state(&d2, 2), Some(StageState::Queued));
    assert_eq!(d2.view.lane.queued, Some(id(2)));
    assert!(d2.actions.is_empty(), "a queued release deploys nothing");
    let d3 = arrive(&d2.view, release(3), &p);
    assert_eq!(state(&d3, 2), Some(StageState::Superseded));
    assert_eq!(state(&d3, 3), Some(StageState::Queued));
    assert_eq!(d3.view.lane.queued, Some(id(3)));
    assert_eq!(d3.transitions.len(), 2);
    assert_eq!(d3.transitions[0].cause, Cause::Superseded);

    // When the in-flight release ends, only the newest deploys.
    let d4 = step(
        &d3.view,
        1,
        Event::DeploymentFailed { reason: "x".into() },
        &p,
    );
    assert_eq!(state(&d4, 1), Some(StageState::Failed));
    assert_eq!(state(&d4, 3), Some(StageState::Deploying));
    assert_eq!(d4.view.lane.in_flight, Some(id(3)));
    assert_eq!(d4.view.lane.queued, None);
    assert_eq!(
        d4.actions,
        vec![Action::Deploy {
            release: id(3),
            environment: ENV.into(),
            redeploy: false
        }]
    );
}

#[test]
fn pushes_at_the_same_instant_end_the_same_whichever_arrives_first() {
    let p = policy();
    // Releases 2 and 3 share their push time (every test release is pushed at T0); 3 has
    // the greater digest.
    assert_eq!(release(2).pushed_at, release(3).pushed_at);
    assert!(release(2).digest < release(3).digest);
    let busy = arrive(&empty_view(), release(1), &p);
    for order in [[2, 3], [3, 2]] {
        let first = arrive(&busy.view, release(order[0]), &p);
        let second = arrive(&first.view, release(order[1]), &p);
        assert_eq!(state(&second, 3), Some(StageState::Queued), "{order:?}");
        assert_eq!(state(&second, 2), Some(StageState::Superseded), "{order:?}");
        assert_eq!(second.view.lane.queued, Some(id(3)));
        assert_eq!(
            second.view.lane.newest_digest,
            Some(release(3).digest),
            "{order:?}"
        );
    }
    // Arriving second, the lesser digest is superseded on arrival, and says why.
    let first = arrive(&busy.view, release(3), &p);
    let second = arrive(&first.view, release(2), &p);
    let why = second.transitions[0].detail.clone().unwrap();
    assert!(
        why.contains("the same instant as") && why.contains(release(3).digest.short()),
        "{why}"
    );
    // A push a millisecond later is newer whatever its digest.
    let mut later = release(2);
    later.pushed_at = T0.after(Duration::from_millis(1));
    let after = arrive(&first.view, later, &p);
    assert_eq!(state(&after, 2), Some(StageState::Queued));
    assert_eq!(state(&after, 3), Some(StageState::Superseded));
}

#[test]
fn full_happy_path_bakes_then_succeeds_and_promotes() {
    let p = policy();
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-9".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert_eq!(
        d.view.releases[&id(1)].stages[ENV].deployment_id.as_deref(),
        Some("d-9")
    );
    // The same outcome delivered again changes nothing.
    let again = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-9".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert!(again.is_noop());
    assert!(matches!(
        apply(
            &d.view,
            &id(1),
            &Event::DeploymentCreated {
                deployment_id: "d-other".into(),
                task_definition: None,
                fence: 0,
            },
            &p,
            T0
        ),
        Err(TransitionError::DeploymentMismatch { .. })
    ));
    let d = step(&d.view, 1, Event::ValidationStarted, &p);
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&d, 1), Some(StageState::Baking));
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(
        d.view.releases[&id(1)].stages[ENV].bake_until,
        Some(T0.after(p.bake))
    );
    assert_eq!(
        d.actions,
        vec![Action::SetTimer {
            release: id(1),
            environment: ENV.into(),
            attempt: 0,
            at: T0.after(p.bake),
        }],
        "the bake ends by its timer"
    );
    let d = step(&d.view, 1, Event::BakeElapsed, &p);
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert_eq!(d.view.lane.last_known_good, Some(id(1)));
    assert_eq!(d.view.lane.in_flight, None);
    assert_eq!(
        d.actions,
        vec![
            Action::ClearTimer {
                release: id(1),
                environment: ENV.into(),
                attempt: 0,
            },
            Action::Promote {
                release: id(1),
                from: ENV.into(),
                to: "staging".into()
            }
        ]
    );
}

#[test]
fn a_bake_ends_held_while_one_of_the_lanes_own_alarms_fires_and_ends_when_it_is_ok() {
    let p = policy();
    let mut view = view_in(Some(StageState::Baking));
    let until = T0.after(p.bake);
    view.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .bake_until = Some(until);
    view.lane.alarms.insert(
        "api-5xx".into(),
        AlarmSeen {
            state: AlarmState::Alarm,
            at: T0,
        },
    );
    let held = apply(&view, &id(1), &Event::BakeElapsed, &p, until).unwrap_err();
    assert!(
        matches!(&held, TransitionError::Held { why, .. } if why.contains("api-5xx in ALARM")),
        "{held}"
    );
    assert!(
        held.to_string().contains("shiplane promote --skip-bake"),
        "{held}"
    );
    assert!(
        owed(&view, &p, until).is_empty(),
        "a held bake is not owed again until the alarm is OK"
    );
    // An operator's emergency promotion is not held.
    let early = step(
        &view,
        1,
        Event::PromotedEarly {
            actor: "ana".into(),
            reason: "hotfix".into(),
        },
        &p,
    );
    assert_eq!(state(&early, 1), Some(StageState::Succeeded));
    view.lane.alarms.get_mut("api-5xx").unwrap().state = AlarmState::Ok;
    assert_eq!(
        owed(&view, &p, until),
        vec![Owed::Apply(id(1), Event::BakeElapsed)]
    );
    let d = apply(&view, &id(1), &Event::BakeElapsed, &p, until).unwrap();
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
}

#[test]
fn a_timer_outcome_is_recorded_in_any_state_and_a_retried_stage_bakes_under_a_new_timer() {
    let p = policy();
    let view = view_in(Some(StageState::Failed));
    let d = step(
        &view,
        1,
        Event::BakeTimer {
            schedule: "bake-1-0-dev".into(),
            set: false,
            error: Some("AccessDenied".into()),
        },
        &p,
    );
    assert_eq!(d.transitions[0].cause, Cause::TimerFailed);
    assert!(
        d.transitions[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("clearing bake-1-0-dev: AccessDenied; the reconciler ends the bake"),
        "{:?}",
        d.transitions[0].detail
    );
    let d = step(
        &d.view,
        1,
        Event::Retry {
            actor: "ana".into(),
        },
        &p,
    );
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    assert!(
        matches!(d.actions.as_slice(), [Action::SetTimer { attempt: 1, .. }]),
        "{:?}",
        d.actions
    );
}

#[test]
fn zero_bake_and_last_environment_succeed_without_promotion() {
    let p = Policy {
        bake: Duration::ZERO,
        next_environment: None,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert!(d.actions.is_empty());
}

#[test]
fn migration_runs_first_and_its_failure_deploys_nothing() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Migrating));
    assert_eq!(
        d.actions,
        vec![Action::RunMigration {
            release: id(1),
            environment: ENV.into()
        }]
    );
    let ok = step(&d.view, 1, Event::MigrationSucceeded, &p);
    assert_eq!(
        ok.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false
        }]
    );
    let bad = step(
        &d.view,
        1,
        Event::MigrationFailed {
            reason: "exit code 1".into(),
        },
        &p,
    );
    assert_eq!(state(&bad, 1), Some(StageState::Failed));
    assert_eq!(
        bad.view.releases[&id(1)].stages[ENV].reason.as_deref(),
        Some("exit code 1")
    );
    assert!(bad.actions.is_empty());
    assert_eq!(bad.view.lane.in_flight, None);
}

#[test]
fn manual_approval_waits_and_approval_while_busy_queues() {
    let p = Policy {
        approval: Approval::Manual,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::AwaitingApproval));
    assert!(d.actions.is_empty());
    let approved = step(
        &d.view,
        1,
        Event::Approved {
            actor: "ana".into(),
        },
        &p,
    );
    assert_eq!(state(&approved, 1), Some(StageState::Deploying));
    assert_eq!(approved.transitions[0].actor.as_deref(), Some("ana"));

    // Release 2 awaits approval while 1 is in flight; approving it queues it, and it
    // deploys when 1 ends without asking again.
    let d2 = arrive(&approved.view, release(2), &p);
    let d2 = step(
        &d2.view,
        2,
        Event::Approved {
            actor: "ben".into(),
        },
        &p,
    );
    assert_eq!(state(&d2, 2), Some(StageState::Queued));
    assert_eq!(
        d2.view.releases[&id(2)].stages[ENV].approved_by.as_deref(),
        Some("ben")
    );
    let d3 = step(
        &d2.view,
        1,
        Event::DeploymentFailed { reason: "x".into() },
        &p,
    );
    assert_eq!(state(&d3, 2), Some(StageState::Deploying));

    // A release still awaiting approval does not start when the lane frees up.
    let d4 = arrive(&approved.view, release(3), &p);
    let d5 = step(
        &d4.view,
        1,
        Event::DeploymentFailed { reason: "x".into() },
        &p,
    );
    assert_eq!(state(&d5, 3), Some(StageState::AwaitingApproval));
    assert_eq!(d5.view.lane.in_flight, None);
}

#[test]
fn alarm_during_deployment_stops_it_with_rollback() {
    let p = policy();
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-7".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    let d = step(
        &d.view,
        1,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    assert_eq!(
        d.actions,
        vec![Action::StopDeployment {
            release: id(1),
            environment: ENV.into(),
            deployment_id: "d-7".into(),
            rollback: true
        }]
    );
    assert_eq!(d.view.lane.in_flight, None);
}

#[test]
fn alarm_during_bake_redeploys_last_known_good_which_then_skips_bake_and_promotion() {
    let p = policy();
    let view = view_in(Some(StageState::Baking));
    let d = step(
        &view,
        1,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    assert_eq!(state(&d, 0), Some(StageState::Deploying));
    assert_eq!(
        d.view.lane.in_flight,
        Some(id(0)),
        "the restore occupies the lane"
    );
    assert_eq!(
        d.actions,
        vec![
            Action::ClearTimer {
                release: id(1),
                environment: ENV.into(),
                attempt: 0,
            },
            Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true
            }
        ],
        "the bad release's timer goes with its bake"
    );
    let d = step(&d.view, 0, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&d, 0), Some(StageState::Succeeded));
    assert_eq!(d.view.lane.current, Some(id(0)));
    assert!(d.actions.is_empty(), "no bake, no promotion for a restore");
    assert!(!d.view.releases[&id(0)].stages[ENV].redeploy);
}

#[test]
fn alarm_during_bake_without_last_known_good_frees_the_lane() {
    let mut view = view_in(Some(StageState::Baking));
    view.lane.last_known_good = None;
    let d = step(&view, 1, Event::AlarmFired { alarm: "a".into() }, &policy());
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    assert!(
        d.actions
            .iter()
            .all(|a| matches!(a, Action::ClearTimer { .. })),
        "nothing deployed: {:?}",
        d.actions
    );
    assert_eq!(d.view.lane.in_flight, None);
}

fn firing(view: &mut LaneView, alarm: &str) {
    view.lane.alarms.insert(
        alarm.into(),
        AlarmSeen {
            state: AlarmState::Alarm,
            at: T0,
        },
    );
}

fn alarm_changed(state: AlarmState, second: u64) -> LaneEvent {
    LaneEvent::AlarmChanged {
        alarm: "api-5xx".into(),
        state,
        at: Timestamp(T0.0 + second * 1000),
        reason: "Threshold Crossed".into(),
    }
}

#[test]
fn an_alarm_during_a_migration_ends_the_stage_leaves_the_task_and_deploys_nothing() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::MigrationStarted {
            task_arn: "arn:task/7".into(),
        },
        &p,
    );
    let fired = apply_lane(&d.view, &alarm_changed(AlarmState::Alarm, 10), &p, T0).unwrap();
    assert_eq!(state(&fired, 1), Some(StageState::Failed));
    let stage = &fired.view.releases[&id(1)].stages[ENV];
    let reason = stage.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("api-5xx: Threshold Crossed during the migration")
            && reason.contains("the migration task arn:task/7 is left to finish")
            && reason.contains("not deployed"),
        "{reason}"
    );
    assert!(
        fired.actions.is_empty(),
        "no stop, no deployment: {:?}",
        fired.actions
    );
    assert_eq!(fired.view.lane.in_flight, None);
    let t = fired.transitions.last().unwrap();
    assert_eq!(
        (t.cause, t.to),
        (Cause::AlarmFired, Some(StageState::Failed))
    );
    // The task's own end comes later and deploys nothing.
    assert!(matches!(
        apply(&fired.view, &id(1), &Event::MigrationSucceeded, &p, T0),
        Err(TransitionError::NotAllowed { .. })
    ));
    // The same through the release's own event.
    let d = step(
        &d.view,
        1,
        Event::AlarmFired {
            alarm: "api-5xx".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::Failed));
    assert!(d.actions.is_empty());
}

#[test]
fn a_stage_does_not_start_while_its_own_alarm_fires_and_the_ok_makes_the_lane_owe_the_start() {
    let p = policy();
    let mut view = empty_view();
    firing(&mut view, "api-5xx");
    let d = arrive(&view, release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert_eq!(
        d.transitions[0].detail.as_deref(),
        Some("held: api-5xx (dev) in ALARM")
    );
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(d.view.lane.in_flight, None);
    assert!(owed(&d.view, &p, T0).is_empty(), "nothing starts it");
    assert!(matches!(
        apply(&d.view, &id(1), &Event::Dequeue, &p, T0),
        Err(TransitionError::Busy { why, .. }) if why.contains("api-5xx (dev) in ALARM")
    ));
    // Approved or retried while it fires: queued all the same.
    let manual = Policy {
        approval: Approval::Manual,
        ..policy()
    };
    let waiting = arrive(&view, release(2), &manual);
    let approved = step(
        &waiting.view,
        2,
        Event::Approved {
            actor: "ana".into(),
        },
        &manual,
    );
    assert_eq!(state(&approved, 2), Some(StageState::Queued));
    let mut failed = view_in(Some(StageState::Failed));
    firing(&mut failed, "api-5xx");
    let retried = step(
        &failed,
        1,
        Event::Retry {
            actor: "ana".into(),
        },
        &p,
    );
    assert_eq!(state(&retried, 1), Some(StageState::Queued));
    // The release in flight ends while the alarm fires: the queued one waits.
    let mut busy = view_in(Some(StageState::Deploying));
    let r2 = with_stage(release(2), StageState::Queued);
    busy.lane.queued = Some(r2.id.clone());
    busy.releases.insert(r2.id.clone(), r2);
    firing(&mut busy, "api-5xx");
    let ended = step(&busy, 1, Event::DeploymentFailed { reason: "x".into() }, &p);
    assert_eq!(state(&ended, 2), Some(StageState::Queued));
    assert_eq!(ended.view.lane.in_flight, None);
    // OK: nothing is stranded, the lane owes the start.
    let ok = apply_lane(&d.view, &alarm_changed(AlarmState::Ok, 10), &p, T0).unwrap();
    assert_eq!(
        owed(&ok.view, &p, T0),
        vec![Owed::Apply(id(1), Event::Dequeue)]
    );
    let started = step(&ok.view, 1, Event::Dequeue, &p);
    assert_eq!(state(&started, 1), Some(StageState::Deploying));
}

#[test]
fn a_deployment_that_succeeds_while_its_own_alarm_fires_never_becomes_last_known_good() {
    let no_bake = Policy {
        bake: Duration::ZERO,
        ..policy()
    };
    let mut view = view_in(Some(StageState::Validating));
    firing(&mut view, "api-5xx");
    let d = step(&view, 1, Event::DeploymentSucceeded, &no_bake);
    assert_eq!(state(&d, 1), Some(StageState::RolledBack));
    let reason = d.view.releases[&id(1)].stages[ENV].reason.clone().unwrap();
    assert!(reason.contains("api-5xx in ALARM"), "{reason}");
    assert_eq!(d.view.lane.last_known_good, Some(id(0)));
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::Promote { .. })),
        "{:?}",
        d.actions
    );
    // What runs is the bad release until the last known good is back.
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(state(&d, 0), Some(StageState::Deploying));
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true
        }]
    );
    // The restore succeeds although the alarm still fires: it is the remedy.
    let restored = step(&d.view, 0, Event::DeploymentSucceeded, &no_bake);
    assert_eq!(state(&restored, 0), Some(StageState::Succeeded));
    assert_eq!(restored.view.lane.current, Some(id(0)));
    // With nothing to restore, nothing deploys and a person is asked to act.
    view.lane.last_known_good = None;
    let alone = step(&view, 1, Event::DeploymentSucceeded, &no_bake);
    assert_eq!(state(&alone, 1), Some(StageState::RolledBack));
    assert!(alone.actions.is_empty(), "{:?}", alone.actions);
    assert_eq!(alone.view.lane.last_known_good, None);
    assert_eq!(alone.view.lane.in_flight, None);
    // With a bake, the release bakes and the bake's end waits for OK.
    let baking = step(&view, 1, Event::DeploymentSucceeded, &policy());
    assert_eq!(state(&baking, 1), Some(StageState::Baking));
}

#[test]
fn pause_holds_the_queue_and_resume_starts_it() {
    let p = policy();
    let paused = apply_lane(
        &empty_view(),
        &LaneEvent::Pause {
            actor: "ana".into(),
            reason: "incident".into(),
        },
        &p,
        T0,
    )
    .unwrap();
    assert_eq!(paused.transitions[0].cause, Cause::Paused);
    assert!(matches!(
        apply_lane(
            &paused.view,
            &LaneEvent::Pause {
                actor: "ben".into(),
                reason: "x".into()
            },
            &p,
            T0
        ),
        Err(TransitionError::AlreadyPaused { .. })
    ));
    let d = arrive(&paused.view, release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert_eq!(
        d.transitions[0].detail.as_deref(),
        Some("lane paused by ana")
    );
    let resumed = apply_lane(
        &d.view,
        &LaneEvent::Resume {
            actor: "ana".into(),
        },
        &p,
        T0,
    )
    .unwrap();
    assert_eq!(state(&resumed, 1), Some(StageState::Deploying));
    assert_eq!(resumed.actions.len(), 1);
    assert!(matches!(
        apply_lane(
            &resumed.view,
            &LaneEvent::Resume {
                actor: "ana".into()
            },
            &p,
            T0
        ),
        Err(TransitionError::NotPaused { .. })
    ));
}

#[test]
fn frozen_environment_queues_everything() {
    let p = Policy {
        frozen: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert!(d.actions.is_empty());
}

#[test]
fn events_for_another_service_or_unloaded_release_are_refused() {
    let mut other = release(5);
    other.service = "web".into();
    let mut v = empty_view();
    v.releases.insert(other.id.clone(), other);
    assert!(matches!(
        apply(&v, &id(5), &Event::Arrived, &policy(), T0),
        Err(TransitionError::WrongService { .. })
    ));
    assert!(matches!(
        apply(&empty_view(), &id(6), &Event::Arrived, &policy(), T0),
        Err(TransitionError::UnknownRelease { .. })
    ));
}

// ---- properties over arbitrary event sequences ----

#[derive(Debug, Clone)]
enum Op {
    Push,
    Event(usize, usize),
    Pause,
    Resume,
    /// The lane's own alarm changes: to ALARM (true) or OK.
    Alarm(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Push),
        8 => (0usize..8, 0usize..15).prop_map(|(r, e)| Op::Event(r, e)),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => any::<bool>().prop_map(Op::Alarm),
    ]
}

fn any_policy() -> impl Strategy<Value = Policy> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(manual, migration, bake, next)| Policy {
            approval: if manual {
                Approval::Manual
            } else {
                Approval::None
            },
            migration,
            bake: if bake {
                Duration::from_secs(60)
            } else {
                Duration::ZERO
            },
            frozen: false,
            next_environment: next.then(|| "staging".to_string()),
            deadlines: Deadlines::default(),
            held_by: Vec::new(),
            undo_by_redeploy: false,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_event_sequence(p in any_policy(), ops in proptest::collection::vec(op(), 1..60)) {
        let mut view = empty_view();
        let mut pushed = 0u64;
        let mut superseded: BTreeSet<ReleaseId> = BTreeSet::new();
        for (k, op) in ops.into_iter().enumerate() {
            let result = match op {
                Op::Push => {
                    pushed += 1;
                    let r = release(pushed);
                    let mut v = view.clone();
                    let rid = r.id.clone();
                    v.releases.insert(rid.clone(), r);
                    apply(&v, &rid, &Event::Arrived, &p, T0)
                }
                Op::Event(r, e) if pushed > 0 => {
                    let n = (r as u64 % pushed) + 1;
                    apply(&view, &id(n), &samples()[e], &p, T0)
                }
                Op::Event(..) => continue,
                Op::Pause => apply_lane(&view, &LaneEvent::Pause { actor: "a".into(), reason: "r".into() }, &p, T0),
                Op::Resume => apply_lane(&view, &LaneEvent::Resume { actor: "a".into() }, &p, T0),
                Op::Alarm(fires) => {
                    let state = if fires { AlarmState::Alarm } else { AlarmState::Ok };
                    apply_lane(&view, &alarm_changed(state, k as u64), &p, T0)
                }
            };
            let Ok(d) = result else { continue };

            // 4. The lane's own firing alarm blocks a start and a success (an operator's
            // unblock or early promotion aside, and the restore of the last known good).
            if !d.view.lane.firing_alarms().is_empty() {
                for t in &d.transitions {
                    let restore = t.release.as_ref().is_some_and(|r| {
                        view.releases.get(r).and_then(|r| r.stages.get(ENV)).is_some_and(|s| s.redeploy)
                    });
                    let started = matches!(t.to, Some(StageState::Migrating | StageState::Deploying))
                        && !matches!(t.from, Some(StageState::Migrating))
                        && t.cause != Cause::Rollback;
                    let succeeded = t.to == Some(StageState::Succeeded)
                        && t.cause != Cause::PromotedEarly
                        && !restore;
                    prop_assert!(!started && !succeeded, "{t:?} while {:?} fires", d.view.lane.firing_alarms());
                }
            }

            // 1. At most one release in flight, and it is the lane's in-flight slot.
            let in_flight: Vec<_> = d.view.releases.values()
                .filter(|r| r.state_in(ENV).is_some_and(StageState::is_in_flight))
                .map(|r| r.id.clone())
                .collect();
            prop_assert!(in_flight.len() <= 1, "two in flight: {in_flight:?}");
            prop_assert_eq!(in_flight.first(), d.view.lane.in_flight.as_ref());
            // At most one waiting, and it is the queue slot.
            let waiting: Vec<_> = d.view.releases.values()
                .filter(|r| r.state_in(ENV).is_some_and(StageState::is_waiting))
                .map(|r| r.id.clone())
                .collect();
            prop_assert!(waiting.len() <= 1, "two waiting: {waiting:?}");
            prop_assert_eq!(waiting.first(), d.view.lane.queued.as_ref());
            // 2. The last known good succeeded here.
            if let Some(good) = &d.view.lane.last_known_good {
                prop_assert!(d.view.releases[good].stages[ENV].succeeded_at.is_some());
            }
            // 3. A superseded release never deploys and never leaves that state.
            for a in &d.actions {
                if let Action::Deploy { release, .. } | Action::RunMigration { release, .. } = a {
                    prop_assert!(!superseded.contains(release), "superseded {release} deployed");
                }
            }
            for s in &superseded {
                prop_assert_eq!(d.view.releases[s].state_in(ENV), Some(StageState::Superseded));
            }
            for r in d.view.releases.values() {
                if r.state_in(ENV) == Some(StageState::Superseded) {
                    superseded.insert(r.id.clone());
                }
            }
            // Every changed release has a transition, and every transition a changed release.
            for t in &d.transitions {
                if let Some(r) = &t.release {
                    prop_assert!(d.changed.contains(r));
                }
            }
            view = d.view;
        }
    }
}

#[test]
fn a_busy_deployment_group_queues_the_release_instead_of_failing() {
    let p = policy();
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentBlocked {
            reason: "group busy with d-HAND".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::Queued));
    assert_eq!(d.view.lane.in_flight, None);
    assert_eq!(d.view.lane.queued, Some(id(1)));
    assert!(
        d.actions.is_empty(),
        "nothing retries at once into the same busy group"
    );

    // With a newer release already waiting, the blocked one gives way to it.
    let d = arrive(&empty_view(), release(1), &p);
    let d = arrive(&d.view, release(2), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentBlocked {
            reason: "busy".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::Superseded));
    assert_eq!(d.view.lane.queued, Some(id(2)));

    // Once a deployment exists, a block cannot apply to it.
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert!(matches!(
        apply(
            &d.view,
            &id(1),
            &Event::DeploymentBlocked { reason: "x".into() },
            &p,
            T0
        ),
        Err(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn migration_task_is_recorded_then_cleared_for_the_deployment() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let d = step(
        &d.view,
        1,
        Event::MigrationStarted {
            task_arn: "arn:task/9".into(),
        },
        &p,
    );
    assert_eq!(
        d.view.releases[&id(1)].stages[ENV].deployment_id.as_deref(),
        Some("arn:task/9")
    );
    assert!(
        step(
            &d.view,
            1,
            Event::MigrationStarted {
                task_arn: "arn:task/9".into()
            },
            &p
        )
        .is_noop()
    );
    let d = step(&d.view, 1, Event::MigrationSucceeded, &p);
    assert_eq!(d.view.releases[&id(1)].stages[ENV].deployment_id, None);
}

#[test]
fn pending_action_names_the_work_a_crash_interrupted() {
    let p = Policy {
        migration: true,
        ..policy()
    };
    let d = arrive(&empty_view(), release(1), &p);
    let r = &d.view.releases[&id(1)];
    assert_eq!(
        pending_action(r, ENV),
        Some(Action::RunMigration {
            release: id(1),
            environment: ENV.into()
        })
    );
    let d = step(
        &d.view,
        1,
        Event::MigrationStarted {
            task_arn: "t".into(),
        },
        &p,
    );
    assert_eq!(
        pending_action(&d.view.releases[&id(1)], ENV),
        None,
        "the task runs; its stop event continues"
    );
    let d = step(&d.view, 1, Event::MigrationSucceeded, &p);
    assert_eq!(
        pending_action(&d.view.releases[&id(1)], ENV),
        Some(Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false
        })
    );
    let d = step(
        &d.view,
        1,
        Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: None,
            fence: 0,
        },
        &p,
    );
    assert_eq!(pending_action(&d.view.releases[&id(1)], ENV), None);
    assert_eq!(
        pending_action(&d.view.releases[&id(1)], "prod"),
        None,
        "never reached prod"
    );
}

/// The facts one release's deployment produces, in the order AWS produces them.
fn facts() -> Vec<Event> {
    vec![
        Event::Arrived,
        Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: None,
            fence: 0,
        },
        Event::ValidationStarted,
        Event::HookCompleted {
            deployment_id: "d-1".into(),
            task_definition: None,
            hook: "AfterAllowTestTraffic".into(),
            checks: vec![(true, "health: passed in 3 ms: ok".into())],
            failure: None,
        },
        Event::DeploymentSucceeded,
        Event::BakeElapsed,
    ]
}

/// Applies each event as the engine does: a refused event leaves the view as it was (the
/// engine commits nothing for it), and a deployment's outcome reaches only the stage that
/// records that deployment (`Engine::on_deployment_state` matches by deployment id).
fn deliver_onto(mut view: LaneView, events: &[Event]) -> LaneView {
    for event in events {
        let recorded = view.releases[&id(1)]
            .stages
            .get(ENV)
            .and_then(|s| s.deployment_id.as_deref())
            == Some("d-1");
        if matches!(event, Event::DeploymentSucceeded) && !recorded {
            continue;
        }
        if let Ok(d) = apply(&view, &id(1), event, &policy(), T0) {
            view = d.view;
        }
    }
    view
}

fn deliver(events: &[Event]) -> LaneView {
    let mut view = empty_view();
    view.releases.insert(id(1), release(1));
    deliver_onto(view, events)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Deliveries out of order and twice never take a wrong turn: whatever was applied
    /// early is a state the in-order sequence passes through or a refusal, and once the
    /// reconciler has re-delivered AWS's facts in order, the release ends exactly where the
    /// in-order sequence ends it.
    #[test]
    fn out_of_order_and_duplicate_deliveries_end_where_the_in_order_sequence_ends(
        order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
        twice in proptest::collection::vec(0..6usize, 0..4),
    ) {
        let facts = facts();
        let in_order = deliver(&facts);
        let mut messy: Vec<Event> = order.iter().map(|i| facts[*i].clone()).collect();
        for (k, i) in twice.iter().enumerate() {
            messy.insert((k * 2).min(messy.len()), facts[*i].clone());
        }
        let early = deliver(&messy);
        let reached = early.releases[&id(1)].state_in(ENV);
        prop_assert!(
            reached.is_none_or(|s| matches!(
                s,
                StageState::Deploying | StageState::Validating | StageState::Baking | StageState::Succeeded
            )),
            "an out-of-order delivery reached {reached:?}"
        );
        // The reconciler: AWS's facts again, in order, on top of whatever happened.
        let view = deliver_onto(early, &facts);
        let (got, want) = (&view.releases[&id(1)], &in_order.releases[&id(1)]);
        prop_assert_eq!(got.state_in(ENV), want.state_in(ENV));
        prop_assert_eq!(&got.stages[ENV].deployment_id, &want.stages[ENV].deployment_id);
        prop_assert_eq!(&view.lane, &in_order.lane);
    }
}

/// Issue #22, defect 2: an alarm during a rolling service's deployment must put the last
/// known good back (ECS has no stop: a newer deployment replaces the one in progress),
/// not record `rolled_back` over a deployment that goes on.
#[test]
fn an_alarm_while_a_rolling_service_deploys_redeploys_the_last_known_good() {
    let p = Policy {
        undo_by_redeploy: true,
        ..policy()
    };
    for recorded in [true, false] {
        let mut v = view_in(Some(StageState::Deploying));
        if recorded {
            let stage = v
                .releases
                .get_mut(&id(1))
                .unwrap()
                .stages
                .get_mut(ENV)
                .unwrap();
            stage.deployment_id = Some("ecs-svc/1".into());
        }
        let d = apply(
            &v,
            &id(1),
            &Event::AlarmFired {
                alarm: "api-dev-5xx".into(),
            },
            &p,
            T0,
        )
        .unwrap();
        assert_eq!(
            d.view.releases[&id(1)].state_in(ENV),
            Some(StageState::RolledBack)
        );
        assert_eq!(
            d.view.releases[&id(0)].state_in(ENV),
            Some(StageState::Deploying)
        );
        assert_eq!(
            d.view.lane.in_flight,
            Some(id(0)),
            "the restore holds the lane"
        );
        assert_eq!(
            d.actions,
            vec![Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true,
            }],
            "no StopDeployment, which ECS cannot do (recorded: {recorded})"
        );
    }
}

/// Issue #22, defect 1: a deployment created after its stage ended (an alarm, an operator
/// or a deadline ended it while CreateDeployment was in flight) is recorded and undone,
/// not refused and left running unrecorded.
#[test]
fn a_deployment_created_after_its_stage_ended_is_recorded_and_undone() {
    let created = Event::DeploymentCreated {
        deployment_id: "d-late".into(),
        task_definition: Some("td:7".into()),
        fence: 0,
    };
    for ended in [
        StageState::RolledBack,
        StageState::Cancelled,
        StageState::Failed,
    ] {
        // CodeDeploy: the late deployment is stopped and rolled back.
        let d = apply(&view_in(Some(ended)), &id(1), &created, &policy(), T0).unwrap();
        let stage = &d.view.releases[&id(1)].stages[ENV];
        assert_eq!(stage.state, ended);
        assert_eq!(stage.deployment_id.as_deref(), Some("d-late"));
        assert_eq!(
            d.actions,
            vec![Action::StopDeployment {
                release: id(1),
                environment: ENV.into(),
                deployment_id: "d-late".into(),
                rollback: true,
            }]
        );
        assert_eq!(d.transitions.len(), 1, "history says so");
        // A replay of the same outcome changes nothing more.
        assert!(apply(&d.view, &id(1), &created, &policy(), T0).is_err());

        // Rolling: what the lane records as running is deployed again.
        let rolling = Policy {
            undo_by_redeploy: true,
            ..policy()
        };
        let d = apply(&view_in(Some(ended)), &id(1), &created, &rolling, T0).unwrap();
        assert_eq!(
            d.actions,
            vec![Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true,
            }]
        );
    }
}

/// A rolling service's late deployment of a release that was rolled back replaced the
/// restore in flight (the newest UpdateService wins): the restore is deployed again, and
/// its history says why (found by the simulation, seed 1670, where the second deployment
/// went unexplained).
#[test]
fn a_late_rolling_deployment_makes_the_restore_in_flight_deploy_again_and_says_why() {
    let rolling = rolling();
    let v = restore_in_flight(StageState::RolledBack, StageState::Validating, |s| {
        s.deployment_id = Some("ecs-svc/67".into())
    });
    let late = Event::DeploymentCreated {
        deployment_id: "ecs-svc/68".into(),
        task_definition: None,
        fence: 0,
    };
    let d = apply(&v, &id(1), &late, &rolling, T0).unwrap();
    let stage = &d.view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.state, StageState::Deploying);
    assert_eq!(stage.deployment_id, None);
    assert_eq!(stage.ended, ["ecs-svc/67"]);
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    let why = d
        .transitions
        .iter()
        .find(|t| t.release == Some(id(0)) && t.cause == Cause::Redeployed)
        .and_then(|t| t.detail.clone())
        .unwrap();
    assert!(
        why.contains("ecs-svc/67 was replaced by ecs-svc/68"),
        "{why}"
    );
}

/// A late deployment that lands while the restore in flight is still being made (its
/// UpdateService may have run before the late one): no second deploy races the first
/// (two would register two revisions, simulation seed 94187); the first one's answer is
/// refused, since the late one may have replaced it (seed 7614), and the action is made
/// again once its lease ends, whose answer counts.
#[test]
fn a_late_rolling_deployment_fences_off_the_answer_of_the_deploy_still_in_flight() {
    let rolling = rolling();
    let v = restore_in_flight(StageState::Cancelled, StageState::Deploying, |s| {
        s.lease = Some(T0.after(LEASE))
    });
    let late = Event::DeploymentCreated {
        deployment_id: "ecs-svc/68".into(),
        task_definition: None,
        fence: 0,
    };
    let d = apply(&v, &id(1), &late, &rolling, T0).unwrap();
    assert!(
        d.actions.is_empty(),
        "no second deploy races the first: {:?}",
        d.actions
    );
    let stage = &d.view.releases[&id(0)].stages[ENV];
    assert_eq!((stage.state, stage.fence), (StageState::Deploying, 1));
    assert!(
        d.transitions
            .iter()
            .any(|t| t.release == Some(id(0)) && t.cause == Cause::Redeployed),
        "{:?}",
        d.transitions
    );
    let answer = |fence| Event::DeploymentCreated {
        deployment_id: "ecs-svc/66".into(),
        task_definition: None,
        fence,
    };
    let soon = Timestamp(T0.0 + 1);
    assert!(matches!(
        apply(&d.view, &id(0), &answer(0), &rolling, soon),
        Err(TransitionError::FencedDeployment { .. })
    ));
    // Taken over when the lease ends: the deploy is made again, and its answer counts.
    let later = T0.after(LEASE);
    let resumed = apply(&d.view, &id(0), &Event::ActionResumed, &rolling, later).unwrap();
    assert!(matches!(resumed.actions[..], [Action::Deploy { .. }]));
    let taken = apply(&resumed.view, &id(0), &answer(1), &rolling, later).unwrap();
    let stage = &taken.view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.deployment_id.as_deref(), Some("ecs-svc/66"));
}

/// A rolling deployment a newer one replaced (another release's that landed unrecorded,
/// or a change by hand) is made again, once the reconciler sees it is no longer PRIMARY
/// (simulation seed 21288); on a blue/green service, or for a deployment the stage does
/// not run, the news changes nothing.
#[test]
fn a_replaced_rolling_deployment_is_made_again() {
    let rolling = rolling();
    let mut v = view_in(Some(StageState::Deploying));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("ecs-svc/66".into());
    let replaced = |d: &str| Event::DeploymentReplaced {
        deployment_id: d.into(),
    };
    let d = apply(&v, &id(1), &replaced("ecs-svc/66"), &rolling, T0).unwrap();
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.deployment_id, None);
    assert_eq!(stage.ended, ["ecs-svc/66"]);
    assert_eq!(stage.fence, 1);
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false,
        }]
    );
    assert!(
        d.transitions.iter().any(|t| t.cause == Cause::Redeployed
            && t.detail
                .as_deref()
                .is_some_and(|w| w.contains("ecs-svc/66 was replaced"))),
        "{:?}",
        d.transitions
    );
    assert!(matches!(
        apply(&v, &id(1), &replaced("ecs-svc/65"), &rolling, T0),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(matches!(
        apply(&v, &id(1), &replaced("ecs-svc/66"), &policy(), T0),
        Err(TransitionError::NotAllowed { .. })
    ));
}

/// A deployment's revision is recorded with it, so that a restore deploys that revision
/// again; a retry starts afresh.
#[test]
fn the_deployed_revision_is_recorded_and_a_retry_forgets_it() {
    let d = apply(
        &view_in(Some(StageState::Deploying)),
        &id(1),
        &Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: Some("arn:td/api:7".into()),
            fence: 0,
        },
        &policy(),
        T0,
    )
    .unwrap();
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.task_definition.as_deref(), Some("arn:td/api:7"));
    let failed = apply(
        &d.view,
        &id(1),
        &Event::DeploymentFailed { reason: "x".into() },
        &policy(),
        T0,
    )
    .unwrap();
    let retried = apply(
        &failed.view,
        &id(1),
        &Event::Retry { actor: "me".into() },
        &policy(),
        T0,
    )
    .unwrap();
    assert_eq!(
        retried.view.releases[&id(1)].stages[ENV].task_definition,
        None
    );
}

/// Issue #22, defect 5: the action a stage owes belongs to the invocation that committed
/// it until its lease runs out; then exactly one taker wins it (the commit is conditional
/// on the release's version, and the taker renews the lease).
#[test]
fn a_dead_owners_action_is_taken_over_once_after_its_lease() {
    let d = apply(
        &view_in(Some(StageState::Queued)),
        &id(1),
        &Event::Dequeue,
        &policy(),
        T0,
    )
    .unwrap();
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.lease, Some(T0.after(LEASE)));
    let within = Timestamp(T0.0 + 1000);
    assert!(
        owed(&d.view, &policy(), within).is_empty(),
        "the owner runs it"
    );
    assert!(apply(&d.view, &id(1), &Event::ActionResumed, &policy(), within).is_err());
    let after = T0.after(LEASE);
    assert_eq!(
        owed(&d.view, &policy(), after),
        vec![Owed::Apply(id(1), Event::ActionResumed)]
    );
    let taken = apply(&d.view, &id(1), &Event::ActionResumed, &policy(), after).unwrap();
    assert_eq!(
        taken.actions,
        vec![Action::Deploy {
            release: id(1),
            environment: ENV.into(),
            redeploy: false,
        }]
    );
    assert_eq!(taken.transitions[0].cause, Cause::ActionResumed);
    assert_eq!(
        taken.view.releases[&id(1)].stages[ENV].lease,
        Some(after.after(LEASE))
    );
    assert!(
        apply(&taken.view, &id(1), &Event::ActionResumed, &policy(), after).is_err(),
        "a second taker finds it owned again"
    );
    assert_eq!(
        taken.view.releases[&id(1)].stages[ENV].resumed,
        1,
        "the taker's deployer looks for the dead owner's deployment first"
    );
}

/// A restore of the last known good that could not be started by its deadline (the store
/// unreachable pass after pass, in the simulation, seed 1440) is tried again, as a failed
/// try, instead of being failed for a person while the bad release runs; after the tries,
/// it is failed as any action past its deadline.
#[test]
fn a_restore_past_its_deadline_is_tried_again_before_it_is_given_up() {
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let mut view = apply(
        &view_in(Some(StageState::Baking)),
        &id(1),
        &alarm,
        &policy(),
        T0,
    )
    .unwrap()
    .view;
    let mut now = T0;
    for n in 1..=RESTORE_TRIES {
        now = view.releases[&id(0)].stages[ENV].deadline.unwrap();
        let d = apply(&view, &id(0), &Event::ActionResumed, &policy(), now).unwrap();
        let stage = &d.view.releases[&id(0)].stages[ENV];
        assert_eq!(stage.state, StageState::Deploying, "try {n}");
        assert_eq!(stage.restore_failures, n);
        assert!(stage.deadline.unwrap() > now, "a new deadline");
        assert_eq!(
            d.actions,
            vec![Action::Deploy {
                release: id(0),
                environment: ENV.into(),
                redeploy: true,
            }]
        );
        assert!(
            d.transitions
                .iter()
                .any(|t| t.cause == Cause::TimedOut && t.to == Some(StageState::Deploying)),
            "the missed deadline is in the history"
        );
        view = d.view;
    }
    now = view.releases[&id(0)].stages[ENV].deadline.unwrap().max(now);
    let d = apply(&view, &id(0), &Event::ActionResumed, &policy(), now).unwrap();
    assert_eq!(
        d.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Failed)
    );
    assert!(d.actions.is_empty());
}

/// A decision that lost a race decides again after a later one committed, with its own
/// (earlier) invocation time: its history item must not read as before the change it
/// follows (found by the simulation, seed 25: a release superseded "before" it arrived).
#[test]
fn history_never_goes_back_in_time_for_a_stage() {
    let mut v = view_in(Some(StageState::Queued));
    let later = Timestamp(T0.0 + 5_000);
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .since = later;
    let d = apply(&v, &id(1), &Event::Dequeue, &policy(), T0).unwrap();
    assert_eq!(d.transitions[0].at, later);
    assert_eq!(d.view.releases[&id(1)].stages[ENV].since, later);
}

/// The same for a fact recorded without a change of state: a bake timer's outcome recorded
/// at T+2s, then a rollback decided at T+1s that lost the race to it, is recorded after it
/// (found by the simulation, seed 58835: the history ended at `baking` under a rollback).
#[test]
fn history_never_goes_back_before_a_recorded_fact() {
    let recorded = Timestamp(T0.0 + 2_000);
    let timer = Event::BakeTimer {
        schedule: "s".into(),
        set: true,
        error: Some("throttled".into()),
    };
    let view = apply(
        &view_in(Some(StageState::Baking)),
        &id(1),
        &timer,
        &policy(),
        recorded,
    )
    .unwrap()
    .view;
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let d = apply(&view, &id(1), &alarm, &policy(), Timestamp(T0.0 + 1_000)).unwrap();
    let rolled_back = d
        .transitions
        .iter()
        .find(|t| t.release == Some(id(1)) && t.to == Some(StageState::RolledBack))
        .unwrap();
    assert_eq!(rolled_back.at, recorded);
}

/// What runs must be good: when a stop came too late (the deployment had succeeded), the
/// lane records what runs and owes the last known good's restore, once. A success older
/// than the current release's (it replaced it since) says nothing.
#[test]
fn what_runs_after_a_stop_too_late_is_replaced_by_the_last_known_good_once() {
    let mut v = view_in(Some(StageState::RolledBack));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    // A late SUCCESS of a CodeDeploy deployment says it runs; a rolling service's may
    // have been replaced since, so only the stop's own outcome says so there.
    let late = apply(&v, &id(1), &Event::DeploymentSucceeded, &policy(), T0).unwrap();
    assert_eq!(late.view.lane.current, Some(id(1)));
    let rolling = rolling();
    assert!(apply(&v, &id(1), &Event::DeploymentSucceeded, &rolling, T0).is_err());
    // The stop the lane owes says so too; a duplicate's late outcome (the lane no longer
    // owes it) does not.
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: true,
    };
    let duplicate = apply(&v, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(duplicate.view.lane.current, Some(id(0)));
    v.lane.stopping = Some(id(1));
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: true,
    };
    let d = apply(&v, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(1)), "the lane says what runs");
    assert_eq!(
        d.view.releases[&id(1)].state_in(ENV),
        Some(StageState::RolledBack)
    );
    let restored = apply(&d.view, &id(0), &Event::Restore, &policy(), T0).unwrap();
    assert_eq!(restored.view.lane.in_flight, Some(id(0)));
    assert_eq!(
        restored.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
    assert!(owed(&restored.view, &policy(), T0).is_empty(), "once");
    // With the good release running, there is nothing to restore.
    assert!(apply(&view_in(None), &id(0), &Event::Restore, &policy(), T0).is_err());
}

/// A stop that reached a deployment that had already succeeded stopped nothing: the
/// release runs, the lane says so, and the last known good is owed (found by the
/// simulation, with the deployment's own SUCCESS event lost).
#[test]
fn a_stop_too_late_records_what_runs_and_owes_the_restore() {
    let mut v = view_in(Some(StageState::RolledBack));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    v.lane.stopping = Some(id(1));
    let stopped = |succeeded| Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded,
    };
    let d = apply(&v, &id(1), &stopped(false), &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(0)));
    assert!(owed(&d.view, &policy(), T0).is_empty());
    let d = apply(&v, &id(1), &stopped(true), &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(
        owed(&d.view, &policy(), T0),
        vec![Owed::Apply(id(0), Event::Restore)]
    );
}

/// Issue #22, defect 1 (the deploy's answer lost): a rolling service's deploy that failed
/// for good may still have landed; the last known good is deployed again (found by the
/// simulation: UpdateService served, its answer lost, the stage failed, the release ran).
#[test]
fn a_rolling_deploy_that_failed_for_good_puts_the_last_known_good_back() {
    let rolling = rolling();
    let failed = Event::ActionFailed {
        reason: "ECS UpdateService: timed out".into(),
    };
    let d = apply(
        &view_in(Some(StageState::Deploying)),
        &id(1),
        &failed,
        &rolling,
        T0,
    )
    .unwrap();
    assert_eq!(
        d.view.releases[&id(1)].state_in(ENV),
        Some(StageState::Failed)
    );
    assert_eq!(d.view.lane.in_flight, Some(id(0)));
    assert_eq!(
        d.actions,
        vec![Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        }]
    );
}

/// A restore of the last known good whose deployment failed (its hook failed closed while
/// the store was unreachable, in the simulation) is tried again, a few times, before it
/// is failed for a person.
#[test]
fn a_failed_restore_is_tried_again_before_a_person_is_asked() {
    let mut v = view_in(Some(StageState::Baking));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let mut view = apply(&v, &id(1), &alarm, &policy(), T0).unwrap().view;
    let failed = Event::DeploymentFailed {
        reason: "BeforeAllowTraffic hook answered Failed".into(),
    };
    let mut now = T0;
    for n in 0..RESTORE_TRIES {
        let created = Event::DeploymentCreated {
            deployment_id: format!("d-r{n}"),
            task_definition: None,
            fence: 0,
        };
        view = apply(&view, &id(0), &created, &policy(), now).unwrap().view;
        let d = apply(&view, &id(0), &failed, &policy(), now).unwrap();
        assert_eq!(
            d.view.releases[&id(0)].state_in(ENV),
            Some(StageState::Deploying)
        );
        now = now.after(BLOCKED_RETRY);
        assert_eq!(
            owed(&d.view, &policy(), now),
            vec![Owed::Apply(id(0), Event::ActionResumed)],
            "try {n}"
        );
        view = apply(&d.view, &id(0), &Event::ActionResumed, &policy(), now)
            .unwrap()
            .view;
    }
    let created = Event::DeploymentCreated {
        deployment_id: "d-last".into(),
        task_definition: None,
        fence: 0,
    };
    view = apply(&view, &id(0), &created, &policy(), now).unwrap().view;
    let d = apply(&view, &id(0), &failed, &policy(), now).unwrap();
    assert_eq!(
        d.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Failed)
    );
}

/// A rolling service's deploy that could not be confirmed by its deadline (its
/// UpdateService may have landed, its record lost, the reconciler failing pass after
/// pass: simulation seed 188) puts the last known good back; on CodeDeploy, where an
/// unrecorded deployment is found by its description when it ends, it only fails.
#[test]
fn a_deploy_past_its_deadline_on_a_rolling_service_restores_the_last_known_good() {
    for (undo_by_redeploy, restored) in [(true, true), (false, false)] {
        let p = Policy {
            undo_by_redeploy,
            ..policy()
        };
        let d = apply(
            &view_in(Some(StageState::Queued)),
            &id(1),
            &Event::Dequeue,
            &p,
            T0,
        )
        .unwrap();
        let deadline = d.view.releases[&id(1)].stages[ENV].deadline.unwrap();
        let d = apply(&d.view, &id(1), &Event::ActionResumed, &p, deadline).unwrap();
        assert_eq!(
            d.view.releases[&id(1)].state_in(ENV),
            Some(StageState::Failed)
        );
        let redeploy = Action::Deploy {
            release: id(0),
            environment: ENV.into(),
            redeploy: true,
        };
        assert_eq!(
            d.actions.contains(&redeploy),
            restored,
            "rolling: {undo_by_redeploy}"
        );
    }
}

/// An operator's retry of a release whose deployment is still owed a stop (the stop was
/// throttled) is refused until the stop is done: the new attempt would forget the old
/// deployment, which would go on to serve (simulation seed 17891).
#[test]
fn a_retry_waits_for_the_stop_its_old_deployment_is_owed() {
    let mut v = view_in(Some(StageState::Validating));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let d = apply(&v, &id(1), &alarm, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.stopping, Some(id(1)));
    let retry = Event::Retry {
        actor: "ana".into(),
    };
    let refused = apply(&d.view, &id(1), &retry, &policy(), T0).unwrap_err();
    assert!(
        refused.to_string().contains("d-1 is still being stopped"),
        "{refused}"
    );
    // Once the stop is recorded, the retry goes ahead.
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: false,
    };
    let d = apply(&d.view, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.stopping, None);
    assert!(apply(&d.view, &id(1), &retry, &policy(), T0).is_ok());
}

/// A late hook of a restore's deployment that already failed (its retried invocation,
/// in the simulation, seed 423) is not taken for the next try: it would have put the
/// failed deployment back on the stage, burnt a try, and cleared the pinned revision.
#[test]
fn a_late_hook_or_answer_of_a_failed_restore_try_changes_nothing() {
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let mut view = apply(
        &view_in(Some(StageState::Baking)),
        &id(1),
        &alarm,
        &policy(),
        T0,
    )
    .unwrap()
    .view;
    let created = Event::DeploymentCreated {
        deployment_id: "d-r1".into(),
        task_definition: Some("td:7".into()),
        fence: 0,
    };
    view = apply(&view, &id(0), &created, &policy(), T0).unwrap().view;
    let failed = Event::DeploymentFailed {
        reason: "BeforeAllowTraffic hook answered Failed".into(),
    };
    view = apply(&view, &id(0), &failed, &policy(), T0).unwrap().view;
    let stage = &view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.ended, ["d-r1"]);
    assert_eq!(stage.task_definition.as_deref(), Some("td:7"));
    let late_hook = Event::HookCompleted {
        deployment_id: "d-r1".into(),
        task_definition: None,
        hook: "AfterAllowTestTraffic".into(),
        checks: vec![],
        failure: None,
    };
    for late in [late_hook, created] {
        assert!(
            matches!(
                apply(&view, &id(0), &late, &policy(), T0),
                Err(TransitionError::EndedDeployment { .. })
            ),
            "{late:?}"
        );
    }
    // The next try's hook is taken, and keeps the pinned revision.
    let next_hook = Event::HookCompleted {
        deployment_id: "d-r2".into(),
        task_definition: None,
        hook: "AfterAllowTestTraffic".into(),
        checks: vec![],
        failure: None,
    };
    let d = apply(&view, &id(0), &next_hook, &policy(), T0).unwrap();
    let stage = &d.view.releases[&id(0)].stages[ENV];
    assert_eq!(stage.deployment_id.as_deref(), Some("d-r2"));
    assert_eq!(stage.task_definition.as_deref(), Some("td:7"));
}

/// A restore that meets a busy deployment group (the bad release's deployment still runs)
/// holds the lane and is tried again; it is never superseded by the queue (found by the
/// simulation: the restore superseded, the bad release kept running).
#[test]
fn a_restore_blocked_by_a_busy_group_waits_and_tries_again() {
    let mut v = view_in(Some(StageState::Baking));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let mut view = apply(&v, &id(1), &alarm, &policy(), T0).unwrap().view;
    let mut queued = with_stage(release(2), StageState::Queued);
    queued.pushed_at = Timestamp(T0.0 + 1);
    view.lane.queued = Some(queued.id.clone());
    view.releases.insert(queued.id.clone(), queued);
    let blocked = Event::DeploymentBlocked {
        reason: "deployment group busy with d-1".into(),
    };
    let d = apply(&view, &id(0), &blocked, &policy(), T0).unwrap();
    assert_eq!(
        d.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Deploying)
    );
    assert_eq!(d.view.lane.in_flight, Some(id(0)));
    assert_eq!(
        d.view.releases[&id(2)].state_in(ENV),
        Some(StageState::Queued)
    );
    assert_eq!(
        owed(&d.view, &policy(), T0.after(BLOCKED_RETRY)),
        vec![Owed::Apply(id(0), Event::ActionResumed)]
    );
}

/// A stop committed whose invocation died before running it is still owed, until its
/// outcome is recorded (found by the simulation: the alarm's commit landed, its answer was
/// lost, the stop never ran and the bad release shipped).
#[test]
fn a_stop_whose_invocation_died_is_still_owed() {
    let v = view_in(Some(StageState::Validating));
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let d = apply(&v, &id(1), &alarm, &policy(), T0).unwrap();
    let stop = Action::StopDeployment {
        release: id(1),
        environment: ENV.into(),
        deployment_id: "d-1".into(),
        rollback: true,
    };
    assert!(d.actions.contains(&stop));
    assert_eq!(d.view.lane.stopping, Some(id(1)));
    assert!(owed(&d.view, &policy(), T0).contains(&Owed::Act(stop)));
    let stopped = Event::StopRequested {
        deployment_id: "d-1".into(),
        error: None,
        succeeded: false,
    };
    let done = apply(&d.view, &id(1), &stopped, &policy(), T0).unwrap();
    assert_eq!(done.view.lane.stopping, None);
    assert!(owed(&done.view, &policy(), T0).is_empty());
}

/// Cancelling the restore of the last known good would leave the release it replaces
/// running for good: refused, naming the ways out (found by the simulation: an operator's
/// cancel kept a release whose alarm fired in service).
#[test]
fn a_restore_of_the_last_known_good_cannot_be_cancelled() {
    let mut v = view_in(Some(StageState::Baking));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    let restoring = apply(&v, &id(1), &alarm, &policy(), T0).unwrap().view;
    let cancel = Event::Cancelled {
        actor: "oncall".into(),
        reason: "oops".into(),
    };
    let err = apply(&restoring, &id(0), &cancel, &policy(), T0).unwrap_err();
    assert!(
        matches!(err, TransitionError::RestoreNotCancelled { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("shiplane rollback api dev --to"),
        "{err}"
    );
}

/// CodeDeploy's rollback of a release's deployment failed after the release had moved on
/// (an operator retried it, and a newer push superseded it: simulation seed 58387, where
/// the bad version kept part of production traffic and its alarm held the queue): the
/// lane records it as what may run, and owes the last known good's restore.
#[test]
fn a_failed_codedeploy_rollback_of_a_release_that_moved_on_restores_the_last_known_good() {
    let v = view_in(Some(StageState::Superseded));
    let failed = Event::RollbackReported {
        deployment_id: "d-rb".into(),
        detail: "CodeDeploy's rollback deployment d-rb (of d-1) failed".into(),
        failed: true,
    };
    let d = apply(&v, &id(1), &failed, &policy(), T0).unwrap();
    assert_eq!(d.view.lane.current, Some(id(1)));
    assert_eq!(
        owed(&d.view, &policy(), T0),
        vec![Owed::Apply(id(0), Event::Restore)]
    );
    let restored = apply(&d.view, &id(0), &Event::Restore, &policy(), T0).unwrap();
    assert_eq!(
        restored.view.releases[&id(0)].state_in(ENV),
        Some(StageState::Deploying)
    );
    // A release deploying again moves all traffic itself: nothing is owed for it.
    let again = view_in(Some(StageState::Deploying));
    let d = apply(&again, &id(1), &failed, &policy(), T0).unwrap();
    assert_ne!(d.view.lane.current, Some(id(1)));
}

/// A late SUCCESS that is older than what the lane deployed since (a restore succeeded
/// after the stage ended) does not say it runs (found in review: a duplicate flipped the
/// lane back to the rolled-back release).
#[test]
fn a_late_success_older_than_the_current_release_changes_nothing() {
    let mut v = view_in(Some(StageState::RolledBack));
    v.releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .deployment_id = Some("d-1".into());
    v.releases
        .get_mut(&id(0))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap()
        .succeeded_at = Some(Timestamp(T0.0 + 60_000));
    assert!(apply(&v, &id(1), &Event::DeploymentSucceeded, &policy(), T0).is_err());
}

/// Cancelling or unblocking a release during its bake, on either kind of service: it
/// already serves, so the last known good is put back, and the release queued behind it
/// waits for that restore (simulation seed 19597, where the cancelled bad release kept
/// serving and its alarm then rolled back the good push after it).
#[test]
fn ending_a_baking_release_puts_the_last_known_good_back() {
    let ends = [
        Err(Event::Cancelled {
            actor: "oncall".into(),
            reason: "bad".into(),
        }),
        Ok(LaneEvent::Unblock {
            actor: "oncall".into(),
            reason: "stuck".into(),
        }),
    ];
    for p in [policy(), rolling()] {
        for end in &ends {
            let mut v = view_in(Some(StageState::Baking));
            v.releases
                .insert(id(2), with_stage(release(2), StageState::Queued));
            v.lane.queued = Some(id(2));
            let d = match end {
                Err(event) => apply(&v, &id(1), event, &p, T0).unwrap(),
                Ok(lane) => apply_lane(&v, lane, &p, T0).unwrap(),
            };
            assert_eq!(state(&d, 1), Some(StageState::Cancelled), "{end:?}");
            assert_eq!(state(&d, 0), Some(StageState::Deploying), "{end:?}");
            assert_eq!(d.view.lane.in_flight, Some(id(0)), "{end:?}");
            assert_eq!(d.view.lane.queued, Some(id(2)), "waits for the restore");
            assert_eq!(state(&d, 2), Some(StageState::Queued));
            assert!(
                d.actions.contains(&Action::Deploy {
                    release: id(0),
                    environment: ENV.into(),
                    redeploy: true,
                }),
                "{end:?}: {:?}",
                d.actions
            );
        }
    }
}

/// With no last known good, a cancelled baking release frees the lane and its reason
/// says it still runs, for a person to act.
#[test]
fn ending_a_baking_release_with_nothing_to_restore_says_it_keeps_running() {
    let mut v = view_in(Some(StageState::Baking));
    v.lane.last_known_good = None;
    let cancel = Event::Cancelled {
        actor: "oncall".into(),
        reason: "bad".into(),
    };
    let d = apply(&v, &id(1), &cancel, &policy(), T0).unwrap();
    assert_eq!(state(&d, 1), Some(StageState::Cancelled));
    assert_eq!(d.view.lane.in_flight, None);
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::Deploy { .. })),
        "{:?}",
        d.actions
    );
    let why = d.transitions.last().unwrap().detail.clone().unwrap();
    assert!(
        why.starts_with("bad; ") && why.contains("keeps running"),
        "{why}"
    );
}
