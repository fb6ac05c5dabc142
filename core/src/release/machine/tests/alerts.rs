//! Which changes ask a person to act (their notification is an alert), and which do not.

use super::*;
use crate::release::model::{Alert, Transition};

fn alerts(d: &Decision) -> Vec<Option<Alert>> {
    d.transitions.iter().map(|t| t.alert).collect()
}

fn cancel() -> Event {
    Event::Cancelled {
        actor: "oncall".into(),
        reason: "bad".into(),
    }
}

#[test]
fn a_release_that_still_runs_with_nothing_to_restore_raises_an_alert() {
    // A baking release cancelled, on either kind of service, with no last known good.
    for p in [policy(), rolling()] {
        let mut v = view_in(Some(StageState::Baking));
        v.lane.last_known_good = None;
        let d = apply(&v, &id(1), &cancel(), &p, T0).unwrap();
        assert_eq!(state(&d, 1), Some(StageState::Cancelled));
        assert_eq!(alerts(&d), [Some(Alert::NothingToRestore)], "{d:?}");
    }
    // A rolling deployment cancelled mid-way goes on, with nothing to put back over it.
    let mut v = view_in(Some(StageState::Deploying));
    v.lane.last_known_good = None;
    let d = apply(&v, &id(1), &cancel(), &rolling(), T0).unwrap();
    assert_eq!(alerts(&d), [Some(Alert::NothingToRestore)], "{d:?}");
}

#[test]
fn a_release_undone_by_the_last_known_good_or_by_codedeploy_raises_none() {
    // The last known good is put back: Shiplane did what a person would.
    for p in [policy(), rolling()] {
        let d = apply(
            &view_in(Some(StageState::Baking)),
            &id(1),
            &cancel(),
            &p,
            T0,
        )
        .unwrap();
        assert!(alerts(&d).iter().all(Option::is_none), "{d:?}");
    }
    // A blue/green deployment is stopped and rolled back by CodeDeploy.
    let mut v = view_in(Some(StageState::Deploying));
    v.lane.last_known_good = None;
    let d = apply(&v, &id(1), &cancel(), &policy(), T0).unwrap();
    assert!(alerts(&d).iter().all(Option::is_none), "{d:?}");
}

#[test]
fn a_failed_rollback_or_stop_and_a_stage_past_its_deadline_raise_alerts() {
    let timed_out = Event::TimedOut {
        reason: "deployment d-1 did not finish".into(),
    };
    let d = apply(
        &view_in(Some(StageState::Validating)),
        &id(1),
        &timed_out,
        &policy(),
        T0,
    )
    .unwrap();
    assert_eq!(state(&d, 1), Some(StageState::Failed));
    assert_eq!(d.transitions[0].alert, Some(Alert::PastDeadline), "{d:?}");

    // An approval nobody gave in time is no emergency: the release is cancelled.
    let d = apply(
        &view_in(Some(StageState::AwaitingApproval)),
        &id(1),
        &timed_out,
        &policy(),
        T0,
    )
    .unwrap();
    assert_eq!(state(&d, 1), Some(StageState::Cancelled));
    assert!(alerts(&d).iter().all(Option::is_none), "{d:?}");

    assert_eq!(
        Alert::of(Cause::RollbackFailed, None),
        Some(Alert::RollbackFailed)
    );
    let failed_stop = Alert::of(Cause::StopFailed, Some(StageState::Cancelled));
    assert_eq!(failed_stop, Some(Alert::StopFailed));
    for cause in [Cause::DeploymentFailed, Cause::AlarmFired, Cause::Cancelled] {
        assert_eq!(
            Alert::of(cause, Some(StageState::Failed)),
            None,
            "{cause}: Shiplane handles it"
        );
    }
}

#[test]
fn an_alert_is_stored_in_history_and_older_items_without_one_still_read() {
    let mut v = view_in(Some(StageState::Baking));
    v.lane.last_known_good = None;
    let d = apply(&v, &id(1), &cancel(), &policy(), T0).unwrap();
    let t = &d.transitions[0];
    let stored = serde_json::to_value(t).unwrap();
    assert_eq!(stored["alert"], "nothing_to_restore");
    assert_eq!(serde_json::from_value::<Transition>(stored).unwrap(), *t);
    let mut older = serde_json::to_value(t).unwrap();
    older.as_object_mut().unwrap().remove("alert");
    assert_eq!(
        serde_json::from_value::<Transition>(older).unwrap().alert,
        None
    );
    older_or_newer_alert_reads_as_other();
}

fn older_or_newer_alert_reads_as_other() {
    let t = serde_json::json!({
        "at": 1, "service": "api", "environment": "prod", "cause": "stop_failed",
        "alert": "written_by_a_newer_shiplane"
    });
    assert_eq!(
        serde_json::from_value::<Transition>(t).unwrap().alert,
        Some(Alert::Other)
    );
}
