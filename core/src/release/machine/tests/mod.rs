//! The machine's tests: the fixtures they share (a lane, its releases, a policy, one
//! sample of every event) here, and one file per topic.

mod alerts;
mod clean_up;
mod flow;
mod holds;
mod late;
mod outage;
mod properties;
mod recovery;
mod restarts;
mod restore;
mod table;
mod tags;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::policy::RESTORE_TRIES;
use super::*;
use crate::pipeline::{Approval, TagPolicy};
use crate::release::model::{
    AlarmSeen, AlarmState, Cause, Digest, Lane, LaneView, Phase, Release, ReleaseId, Stage,
    StageState, Timestamp,
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
        stop_first: false,
        bake: Duration::from_secs(600),
        frozen: false,
        next_environment: Some("staging".into()),
        next_tags: TagPolicy::Any,
        deadlines: Deadlines::default(),
        held_by: Vec::new(),
        undo_by_redeploy: false,
        data_jobs: false,
        watch: Duration::ZERO,
        restarts: Vec::new(),
        keep: 5,
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
    stage.phase = Phase::fresh(restore, stage.since);
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
        Event::Restarted {
            service: "tiles".into(),
            deployment_id: Some("ecs-svc/1".into()),
            error: None,
            since: T0,
        },
        Event::CleanedUp {
            deregistered: vec!["api-dev:1".into()],
            error: None,
        },
        Event::AppStopped {
            desired: Some(2),
            running: 0,
        },
        Event::AppStarted {
            deployment_id: Some("ecs-svc/2".into()),
            error: None,
        },
    ]
}

fn arrive(view: &LaneView, r: Release, p: &Policy) -> Decision {
    let mut v = view.clone();
    let rid = r.id.clone();
    v.releases.insert(rid.clone(), r);
    apply(&v, &rid, &Event::Arrived, p, T0).unwrap()
}

/// Release `n`'s stage here, to set up what a test needs.
fn stage_mut(view: &mut LaneView, n: u64) -> &mut Stage {
    view.releases
        .get_mut(&id(n))
        .and_then(|r| r.stages.get_mut(ENV))
        .expect("release n has a stage here")
}

fn step(view: &LaneView, n: u64, event: Event, p: &Policy) -> Decision {
    apply(view, &id(n), &event, p, T0).unwrap()
}

fn state(d: &Decision, n: u64) -> Option<StageState> {
    d.view.releases[&id(n)].state_in(ENV)
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
