//! An environment's `tags`: which releases may enter it, set in `[defaults.<env>]` or a
//! service's stage, checked and diffed like the service's own.

use super::problems;
use crate::pipeline::{Change, Pipeline, PipelineDiff, SettingChange, TagPolicy};

const FILE: &str = r#"
[pipeline]
environments = ["dev", "staging", "prod"]
[defaults.staging]
tags = { regex = "^release-" }
[defaults.prod]
tags = { semver = ">=1.0.0" }
[services.api]
repository = "team/api"
kind = "task"
tags = { regex = "^(feature-|release-|v)" }
[services.api.environments.dev]
task_families = ["a"]
[services.api.environments.staging]
task_families = ["b"]
[services.api.environments.prod]
task_families = ["c"]
tags = { semver = ">=2", prereleases = true }
"#;

#[test]
fn an_environment_s_tags_come_from_its_defaults_unless_the_service_sets_its_own() {
    let p = Pipeline::from_toml(FILE).unwrap();
    let api = &p.services["api"];
    let tags = |env: &str| api.stage(env).unwrap().tags.to_string();
    assert_eq!(api.stage("dev").unwrap().tags, TagPolicy::Any);
    assert_eq!(tags("staging"), "{ regex = \"^release-\" }");
    assert_eq!(tags("prod"), "{ semver = \">=2\", prereleases = true }");
    assert!(api.stage("staging").unwrap().tags.accepts("release-7"));
    assert!(!api.stage("staging").unwrap().tags.accepts("feature-x"));
    assert!(api.stage("prod").unwrap().tags.accepts("v2.1.0-rc.1"));
    assert!(!api.stage("prod").unwrap().tags.accepts("v1.9.0"));
    assert!(
        api.stage("prod")
            .unwrap()
            .tags
            .accepts_any(&["feature-x", "v2.0.0"])
    );
}

#[test]
fn a_bad_environment_tags_policy_is_named_by_the_path_it_is_written_at() {
    let bad = FILE
        .replace("^release-", "^release-(")
        .replace("\">=2\"", "\"two\"")
        .replace(
            "[services.api.environments.dev]\n",
            "[services.api.environments.dev]\ntags = { regexp = \"x\" }\n",
        );
    assert_eq!(
        problems(&bad),
        [
            "5:18: defaults.staging.tags.regex: \"^release-(\" is not a valid regex (error: unclosed group)",
            "13:8: services.api.environments.dev.tags: set regex = \"...\" or semver = \"...\", or remove tags to accept every tag",
            "13:19: services.api.environments.dev.tags.regexp: unknown key \"regexp\"; did you mean \"regex\"?",
            "19:19: services.api.environments.prod.tags.semver: \"two\" is not a semver range (unexpected character 't' while parsing major version number); write e.g. \">=1.0.0, <2\"",
        ]
    );
    let both = FILE.replace(
        "tags = { regex = \"^release-\" }",
        "tags = { regex = \"^release-\", semver = \"1\" }",
    );
    assert_eq!(
        problems(&both),
        ["5:8: defaults.staging.tags: set either regex or semver, not both"]
    );
}

#[test]
fn a_changed_environment_tags_policy_shows_in_the_diff_under_every_lane_it_changes() {
    let after = FILE.replace("^release-", "^rel-");
    let d = PipelineDiff::between(
        Some(&Pipeline::from_toml(FILE).unwrap()),
        &Pipeline::from_toml(&after).unwrap(),
    );
    let [api] = d.services.as_slice() else {
        panic!("{d:#?}")
    };
    assert!(api.settings.is_empty());
    let [staging] = api.environments.as_slice() else {
        panic!("{d:#?}")
    };
    assert_eq!(
        (staging.environment.as_str(), staging.change),
        ("staging", Change::Changed)
    );
    assert_eq!(
        staging.settings,
        [SettingChange {
            key: "tags".into(),
            before: Some("{ regex = \"^release-\" }".into()),
            after: Some("{ regex = \"^rel-\" }".into()),
        }]
    );
    // Removing it is a change too: every tag is accepted again.
    let open = FILE.replace("[defaults.staging]\ntags = { regex = \"^release-\" }\n", "");
    let d = PipelineDiff::between(
        Some(&Pipeline::from_toml(FILE).unwrap()),
        &Pipeline::from_toml(&open).unwrap(),
    );
    assert_eq!(d.services[0].environments[0].settings[0].after, None);
}

#[test]
fn the_example_sends_tiles_feature_branches_to_dev_only() {
    let p = Pipeline::from_toml(super::EXAMPLE).unwrap();
    let tiles = &p.services["tiles"];
    assert!(tiles.tags.accepts("feature-login") && tiles.tags.accepts("release-42"));
    assert_eq!(tiles.stage("dev").unwrap().tags, TagPolicy::Any);
    let prod = &tiles.stage("prod").unwrap().tags;
    assert!(prod.accepts("release-42") && !prod.accepts("feature-login"));
}
