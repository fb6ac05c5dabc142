//! Which pushes go where: a release the next environment's `tags` do not accept ends its
//! journey where it succeeded, with no promotion owed and the reason recorded once.

use super::*;
use crate::pipeline::Pipeline;

/// Staging takes only `release-*` tags.
fn picky() -> Policy {
    Policy {
        next_tags: TagPolicy::Regex(regex::Regex::new("^release-").unwrap()),
        ..policy()
    }
}

fn tagged(n: u64, tags: &[&str]) -> Release {
    let mut r = release(n);
    r.tags = tags.iter().map(ToString::to_string).collect();
    r
}

/// Through its deployment and bake to success in dev.
fn to_success(r: Release, p: &Policy) -> Decision {
    let d = arrive(&empty_view(), r, p);
    let d = step(&d.view, 1, Event::DeploymentSucceeded, p);
    step(&d.view, 1, Event::BakeElapsed, p)
}

fn not_promoted(d: &Decision) -> Vec<(StageState, Option<String>)> {
    d.transitions
        .iter()
        .filter(|t| t.cause == Cause::NotPromoted)
        .map(|t| (t.to.unwrap(), t.detail.clone()))
        .collect()
}

#[test]
fn a_release_the_next_environment_does_not_accept_succeeds_here_and_goes_no_further() {
    let p = picky();
    let d = to_success(tagged(1, &["feature-x"]), &p);
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert_eq!(d.view.lane.last_known_good, Some(id(1)), "it is dev's good");
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::Promote { .. })),
        "{:?}",
        d.actions
    );
    let why = "tag feature-x not accepted by staging (tags = { regex = \"^release-\" })";
    assert_eq!(
        not_promoted(&d),
        vec![(StageState::Succeeded, Some(why.to_string()))]
    );
    let stage = &d.view.releases[&id(1)].stages[ENV];
    assert_eq!(stage.promote_to(), None);
    assert_eq!(stage.not_promoted(), Some(why));
    // Not left waiting: nothing is owed for it, now or later.
    assert!(owed(&d.view, &p, T0.after(Duration::from_secs(86_400))).is_empty());
}

#[test]
fn a_release_the_next_environment_accepts_goes_on_as_before() {
    let p = picky();
    for tags in [&["release-1.4"][..], &["feature-x", "release-1.4"]] {
        let d = to_success(tagged(1, tags), &p);
        assert!(not_promoted(&d).is_empty(), "{tags:?}");
        assert_eq!(
            d.view.releases[&id(1)].stages[ENV].promote_to(),
            Some("staging")
        );
        assert!(
            d.actions.contains(&Action::Promote {
                release: id(1),
                from: ENV.into(),
                to: "staging".into(),
            }),
            "{tags:?}: {:?}",
            d.actions
        );
    }
}

#[test]
fn every_way_to_succeed_stops_a_release_the_next_environment_refuses() {
    // No bake: the deployment's success is the stage's.
    let p = Policy {
        bake: Duration::ZERO,
        ..picky()
    };
    let d = arrive(&empty_view(), tagged(1, &["feature-x"]), &p);
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert_eq!(not_promoted(&d).len(), 1);
    // An operator's early promotion ends the bake, not the policy.
    let p = picky();
    let d = arrive(&empty_view(), tagged(1, &["feature-x"]), &p);
    let d = step(&d.view, 1, Event::DeploymentSucceeded, &p);
    let d = step(
        &d.view,
        1,
        Event::PromotedEarly {
            actor: "ana".into(),
            reason: "hotfix".into(),
        },
        &p,
    );
    assert_eq!(state(&d, 1), Some(StageState::Succeeded));
    assert_eq!(not_promoted(&d).len(), 1);
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::Promote { .. }))
    );
}

#[test]
fn the_last_environment_and_a_restore_have_nothing_to_refuse() {
    let last = Policy {
        next_environment: None,
        ..picky()
    };
    let d = to_success(tagged(1, &["feature-x"]), &last);
    assert!(not_promoted(&d).is_empty());
    assert_eq!(d.view.releases[&id(1)].stages[ENV].not_promoted(), None);
    // The last known good put back after a rollback already went where it could.
    let p = picky();
    let mut view = restore_in_flight(StageState::RolledBack, StageState::Deploying, |s| {
        s.deployment_id = Some("d-0".into());
    });
    view.releases.get_mut(&id(0)).unwrap().tags = vec!["feature-y".into()];
    let d = step(
        &view,
        0,
        Event::DeploymentSucceeded,
        &Policy {
            bake: Duration::ZERO,
            ..p
        },
    );
    assert_eq!(state(&d, 0), Some(StageState::Succeeded));
    assert!(not_promoted(&d).is_empty(), "{:?}", d.transitions);
}

const PIPELINE: &str = r#"
[pipeline]
environments = ["dev", "staging", "prod"]
[defaults.prod]
tags = { semver = ">=1.0.0" }
[services.api]
repository = "team/api"
kind = "task"
[services.api.environments.dev]
task_families = ["a"]
[services.api.environments.staging]
task_families = ["b"]
tags = { regex = "^release-" }
[services.api.environments.prod]
task_families = ["c"]
"#;

#[test]
fn a_stage_s_policy_names_the_next_environment_s_tags_so_promotion_stops_at_the_first_refusal() {
    let pipeline = Pipeline::from_toml(PIPELINE).unwrap();
    let api = &pipeline.services["api"];
    let of = |env: &str| Policy::for_stage(api, api.stage(env).unwrap());
    assert_eq!(of("dev").next_environment.as_deref(), Some("staging"));
    assert_eq!(of("dev").next_tags.to_string(), "{ regex = \"^release-\" }");
    assert_eq!(
        of("staging").next_tags.to_string(),
        "{ semver = \">=1.0.0\" }"
    );
    assert_eq!(of("prod").next_tags, TagPolicy::Any);
    // v1.2.0 is a tag prod would take, but staging comes first and does not: it stops in
    // dev. (Data jobs do not bake; the fixture's path does.)
    let dev = Policy {
        bake: Duration::from_secs(60),
        ..of("dev")
    };
    let d = to_success(tagged(1, &["v1.2.0"]), &dev);
    assert_eq!(
        not_promoted(&d)[0].1.as_deref(),
        Some("tag v1.2.0 not accepted by staging (tags = { regex = \"^release-\" })")
    );
}

#[test]
fn the_reason_is_bounded_as_any_detail() {
    let long: Vec<String> = (0..16)
        .map(|i| format!("feature-{i}-{}", "x".repeat(100)))
        .collect();
    let tags: Vec<&str> = long.iter().map(String::as_str).collect();
    let d = to_success(tagged(1, &tags), &picky());
    let told = not_promoted(&d);
    let [(_, Some(why))] = told.as_slice() else {
        panic!("{told:?}")
    };
    assert!(
        why.len() <= MAX_DETAIL + '…'.len_utf8() && why.ends_with('…'),
        "{why}"
    );
    assert_eq!(
        d.view.releases[&id(1)].stages[ENV].not_promoted(),
        Some(why.as_str())
    );
}
