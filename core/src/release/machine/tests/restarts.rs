//! Dependent restarts (`restarts`): owed with the success that asks for them, done once,
//! recorded in both services' histories, and an alert when one cannot be done.

use super::*;
use crate::release::model::{Alert, Restart};

fn restarting() -> Policy {
    Policy {
        restarts: vec!["tiles".into(), "search".into()],
        ..policy()
    }
}

fn restart(service: &str) -> Action {
    Action::Restart {
        release: id(1),
        environment: ENV.into(),
        service: service.into(),
    }
}

fn restarted(service: &str, error: Option<&str>) -> Event {
    Event::Restarted {
        service: service.into(),
        deployment_id: error.is_none().then(|| format!("ecs-svc/{service}")),
        error: error.map(Into::into),
        since: T0,
    }
}

/// Release 1 baked and succeeded under `restarting()`.
fn succeeded() -> Decision {
    step(
        &view_in(Some(StageState::Baking)),
        1,
        Event::BakeElapsed,
        &restarting(),
    )
}

#[test]
fn a_success_owes_a_restart_of_each_dependent_and_runs_them() {
    let d = succeeded();
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert_eq!(
        d.view.releases[&id(1)].stages[ENV].restarts(),
        ["tiles", "search"]
    );
    for s in ["tiles", "search"] {
        assert!(d.actions.contains(&restart(s)), "{:?}", d.actions);
        // Owed until its outcome is recorded: a crash before then loses nothing.
        assert!(
            owed(&d.view, &restarting(), T0).contains(&Owed::Act(restart(s))),
            "{s}"
        );
    }
    // Without `restarts`, nothing is owed.
    let plain = step(
        &view_in(Some(StageState::Baking)),
        1,
        Event::BakeElapsed,
        &policy(),
    );
    assert!(
        !plain
            .actions
            .iter()
            .any(|a| matches!(a, Action::Restart { .. }))
    );
}

#[test]
fn a_restart_recorded_is_owed_no_more_and_its_replay_changes_nothing() {
    let d = succeeded();
    let done = step(&d.view, 1, restarted("tiles", None), &restarting());
    assert_eq!(
        done.view.releases[&id(1)].stages[ENV].restarts(),
        ["search"]
    );
    let t = &done.transitions[0];
    assert_eq!((t.cause, t.alert), (Cause::Restarted, None));
    assert!(
        t.detail.as_deref().unwrap().contains("ecs-svc/tiles"),
        "{t:?}"
    );
    let owed_now = owed(&done.view, &restarting(), T0);
    assert!(!owed_now.contains(&Owed::Act(restart("tiles"))));
    assert!(owed_now.contains(&Owed::Act(restart("search"))));
    // The same outcome again (a replay): no change, no record.
    let again = step(&done.view, 1, restarted("tiles", None), &restarting());
    assert!(again.is_noop() && again.transitions.is_empty(), "{again:?}");
}

#[test]
fn an_earlier_successs_restart_leaves_a_newer_successs_owed() {
    // Succeeded at T0; restored later and succeeded again at T0 + 1 min: the first
    // success's restart, slow to answer, does not stand for the second's.
    let mut d = succeeded();
    let stage = d
        .view
        .releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap();
    stage.succeeded_at = Some(Timestamp(T0.0 + 60_000));
    let late = step(&d.view, 1, restarted("tiles", None), &restarting());
    assert!(late.is_noop(), "{late:?}");
    assert_eq!(
        late.view.releases[&id(1)].stages[ENV].restarts(),
        ["tiles", "search"]
    );
}

#[test]
fn a_restart_that_failed_for_good_is_an_alert_and_owed_no_more() {
    let d = succeeded();
    let failed = step(
        &d.view,
        1,
        restarted("tiles", Some("service tiles-dev not found")),
        &restarting(),
    );
    let t = &failed.transitions[0];
    assert_eq!(
        (t.cause, t.alert),
        (Cause::RestartFailed, Some(Alert::RestartFailed))
    );
    assert!(
        t.detail.as_deref().unwrap().contains("restart it by hand"),
        "{t:?}"
    );
    assert!(!owed(&failed.view, &restarting(), T0).contains(&Owed::Act(restart("tiles"))));
}

#[test]
fn a_stage_that_left_its_success_owes_no_restart() {
    let mut d = succeeded();
    let stage = d
        .view
        .releases
        .get_mut(&id(1))
        .unwrap()
        .stages
        .get_mut(ENV)
        .unwrap();
    stage.phase = Phase::fresh(StageState::RolledBack, T0);
    assert!(
        !owed(&d.view, &restarting(), T0)
            .iter()
            .any(|o| matches!(o, Owed::Act(Action::Restart { .. })))
    );
    let late = step(&d.view, 1, restarted("tiles", None), &restarting());
    assert!(late.is_noop(), "{late:?}");
}

#[test]
fn the_restarted_service_records_it_once_in_its_own_history() {
    let tiles = LaneView {
        lane: Lane::new("tiles", ENV),
        releases: BTreeMap::new(),
    };
    let event = LaneEvent::Restarted(Restart {
        by: "api".into(),
        release: id(1),
        deployment_id: "ecs-svc/7".into(),
        at: T0,
    });
    let d = apply_lane(&tiles, &event, &policy(), T0).unwrap();
    assert_eq!(d.transitions.len(), 1);
    let t = &d.transitions[0];
    assert_eq!((t.service.as_str(), t.cause), ("tiles", Cause::Restarted));
    let detail = t.detail.as_deref().unwrap();
    assert!(
        detail.contains("api release") && detail.contains("ecs-svc/7"),
        "{detail}"
    );
    let again = apply_lane(&d.view, &event, &policy(), T0).unwrap();
    assert!(again.is_noop() && again.transitions.is_empty(), "{again:?}");
}
