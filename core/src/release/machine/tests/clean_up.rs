//! The clean-up of older revisions (`keep`): owed with a success, only to the reconciler,
//! never of a release the lane keeps, and owed no more once done.

use super::*;

fn clean_up_of(view: &LaneView) -> Option<Action> {
    owed_clean_up(view, &policy())
}

#[test]
fn a_success_owes_a_clean_up_that_protects_every_release_the_lane_keeps() {
    let mut v = view_in(Some(StageState::Baking));
    let queued = with_stage(release(7), StageState::Queued);
    v.lane.queued = Some(queued.id.clone());
    v.releases.insert(queued.id.clone(), queued);
    let d = step(&v, 1, Event::BakeElapsed, &policy());
    assert!(d.view.releases[&id(1)].stages[ENV].owes_clean_up());
    // Not an action of the success itself, nor what every event on the lane finishes: the
    // reconciler's (a bake's end does not wait for it).
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::CleanUp { .. }))
    );
    assert!(
        !owed(&d.view, &policy(), T0)
            .iter()
            .any(|o| matches!(o, Owed::Act(Action::CleanUp { .. })))
    );
    let Some(Action::CleanUp {
        release,
        environment,
        keep,
        protect,
    }) = clean_up_of(&d.view)
    else {
        panic!("a clean-up is owed: {:?}", d.view)
    };
    assert_eq!((release, environment.as_str(), keep), (id(1), ENV, 5));
    // Runs and last known good (1), the one before it, where an operator's rollback goes
    // (0), and the one queued (7).
    assert_eq!(protect, [id(0), id(1), id(7)]);
}

#[test]
fn a_clean_up_done_is_owed_no_more_and_recorded_only_when_it_did_something() {
    let d = step(
        &view_in(Some(StageState::Baking)),
        1,
        Event::BakeElapsed,
        &policy(),
    );
    let nothing = Event::CleanedUp {
        deregistered: Vec::new(),
        error: None,
    };
    let quiet = step(&d.view, 1, nothing.clone(), &policy());
    assert!(
        quiet.transitions.is_empty() && quiet.changed.contains(&id(1)),
        "{quiet:?}"
    );
    assert_eq!(clean_up_of(&quiet.view), None);
    // Its replay changes nothing.
    assert!(step(&quiet.view, 1, nothing, &policy()).is_noop());
    let some = step(
        &d.view,
        1,
        Event::CleanedUp {
            deregistered: vec!["api-dev:3".into(), "api-dev:4".into()],
            error: None,
        },
        &policy(),
    );
    let t = &some.transitions[0];
    assert_eq!(t.cause, Cause::CleanedUp);
    assert_eq!(
        t.detail.as_deref(),
        Some("deregistered api-dev:3, api-dev:4")
    );
    assert_eq!(clean_up_of(&some.view), None);
}

#[test]
fn a_lane_whose_success_owes_nothing_owes_no_clean_up() {
    // The sample's last known good was stored before clean-ups were owed.
    assert_eq!(clean_up_of(&view_in(Some(StageState::Queued))), None);
}
