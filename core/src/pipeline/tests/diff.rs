use super::EXAMPLE;
use crate::pipeline::{Change, Pipeline, PipelineDiff, SettingChange};

fn diff(before: &str, after: &str) -> PipelineDiff {
    PipelineDiff::between(
        Some(&Pipeline::from_toml(before).unwrap()),
        &Pipeline::from_toml(after).unwrap(),
    )
}

fn setting(key: &str, before: Option<&str>, after: Option<&str>) -> SettingChange {
    SettingChange {
        key: key.into(),
        before: before.map(Into::into),
        after: after.map(Into::into),
    }
}

#[test]
fn a_file_that_means_the_same_has_no_diff() {
    let reworded = EXAMPLE
        .replace("# Shiplane pipeline file.", "# reworded")
        .replace("bake = \"10m\"", "bake = \"600s\"")
        .replace("method = \"GET\"", "");
    let d = diff(EXAMPLE, &reworded);
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn a_changed_default_shows_under_every_lane_it_changes() {
    let d = diff(EXAMPLE, &EXAMPLE.replace("bake = \"1h\"", "bake = \"2h\""));
    assert_eq!(d.environments, None);
    let lanes: Vec<(String, String, Vec<SettingChange>)> = d
        .services
        .iter()
        .flat_map(|s| {
            assert_eq!(s.change, Change::Changed);
            assert!(s.settings.is_empty());
            s.environments
                .iter()
                .map(|e| (s.service.clone(), e.environment.clone(), e.settings.clone()))
        })
        .collect();
    let bake = vec![setting("bake", Some("\"1h\""), Some("\"2h\""))];
    assert_eq!(
        lanes,
        [
            ("api".into(), "prod".into(), bake.clone()),
            ("etl".into(), "prod".into(), bake.clone()),
            ("tiles".into(), "prod".into(), bake),
        ]
    );
}

#[test]
fn added_removed_and_changed_services_and_environments() {
    let after = EXAMPLE
        // tiles gone: everything from its table to etl's.
        .split("[services.tiles]")
        .next()
        .unwrap()
        .to_string()
        + "[services.etl]"
        + EXAMPLE.split("[services.etl]").nth(1).unwrap();
    let after = after
        .replace(
            "[services.api.environments.staging]",
            "[services.api.environments.staging-gone]",
        )
        .replace(
            "service = \"api-staging\"\nalarms = [\"api-staging-5xx\"]\ncodedeploy = { application = \"api\", deployment_group = \"api-staging\", deployment_config = \"CodeDeployDefault.ECSLinear10PercentEvery1Minutes\" }\n",
            "",
        )
        .replace("[services.api.environments.staging-gone]\n", "")
        .replace("restarts = [\"tiles\"]\n", "")
        .replace("port = 8080", "port = 8081")
        .replace(
            "[services.etl.environments.prod]",
            "[services.etl.environments.staging]\ntask_families = [\"etl-nightly\"]\n\n[services.etl.environments.prod]",
        );
    let d = diff(EXAMPLE, &after);
    assert_eq!(d.environments, None);
    let summary: Vec<String> = d
        .services
        .iter()
        .map(|s| {
            let envs: Vec<String> = s
                .environments
                .iter()
                .map(|e| {
                    format!(
                        "{:?} {} ({} settings)",
                        e.change,
                        e.environment,
                        e.settings.len()
                    )
                })
                .collect();
            format!(
                "{:?} {} {:?} → {:?}: {:?} | {}",
                s.change,
                s.service,
                s.route_before,
                s.route_after,
                s.settings,
                envs.join(", ")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "Changed api Some(\"dev → staging → prod\") → Some(\"dev → prod (no staging)\"): \
             [SettingChange { key: \"port\", before: Some(\"8080\"), after: Some(\"8081\") }] | \
             Changed dev (1 settings), Removed staging (10 settings), Changed prod (1 settings)",
            "Changed etl Some(\"dev → prod (no staging)\") → Some(\"dev → staging → prod\"): [] | \
             Added staging (6 settings)",
            "Removed tiles Some(\"dev → prod (no staging)\") → None: [SettingChange { key: \"container\", before: Some(\"\\\"tileserver\\\"\"), after: None }, SettingChange { key: \"kind\", before: Some(\"\\\"rolling\\\"\"), after: None }, SettingChange { key: \"repository\", before: Some(\"\\\"shiplane/tiles\\\"\"), after: None }, SettingChange { key: \"tags.regex\", before: Some(\"\\\"^(feature-.+|release-[0-9]+)$\\\"\"), after: None }] | \
             Removed dev (6 settings), Removed prod (7 settings)",
        ]
    );
    assert_eq!(
        d.dropped_lanes(),
        [("api", "staging"), ("tiles", "dev"), ("tiles", "prod")]
    );
    assert_eq!(
        d.services[1].environments[0].settings,
        [
            setting("approval", None, Some("\"manual\"")),
            setting("bake", None, Some("\"30m\"")),
            setting("cluster", None, Some("\"shiplane-staging\"")),
            setting("freeze", None, Some("false")),
            setting("keep", None, Some("5")),
            setting("task_families", None, Some("[\"etl-nightly\"]")),
        ],
        "an added environment lists its effective settings, defaults included"
    );
}

#[test]
fn a_first_apply_adds_everything_and_a_new_environment_order_is_a_change() {
    let p = Pipeline::from_toml(EXAMPLE).unwrap();
    let d = PipelineDiff::between(None, &p);
    assert_eq!(
        d.environments,
        Some(setting(
            "pipeline.environments",
            None,
            Some("[\"dev\", \"staging\", \"prod\"]")
        ))
    );
    assert!(d.services.iter().all(|s| s.change == Change::Added));
    assert!(d.dropped_lanes().is_empty());

    let d = diff(
        EXAMPLE,
        &EXAMPLE.replace(
            "environments = [\"dev\", \"staging\", \"prod\"]",
            "environments = [\"dev\", \"staging\", \"prod\", \"dr\"]",
        ),
    );
    assert_eq!(
        d.environments,
        Some(setting(
            "pipeline.environments",
            Some("[\"dev\", \"staging\", \"prod\"]"),
            Some("[\"dev\", \"staging\", \"prod\", \"dr\"]")
        ))
    );
    assert!(d.services.is_empty(), "no service changes: {d:#?}");
}

#[test]
fn a_group_opt_out_shows_in_the_diff_and_leaving_it_out_does_not() {
    let with = EXAMPLE.replace(
        "deployment_group = \"api-prod\",",
        "deployment_group = \"api-prod\", keep_blue = true, group_rollback = false,",
    );
    assert_ne!(with, EXAMPLE, "the example names api-prod's group");
    let d = diff(EXAMPLE, &with);
    let prod = &d.services[0].environments[0];
    assert_eq!(
        (d.services[0].service.as_str(), prod.environment.as_str()),
        ("api", "prod")
    );
    assert_eq!(
        prod.settings,
        [
            setting("codedeploy.group_rollback", None, Some("false")),
            setting("codedeploy.keep_blue", None, Some("true")),
        ]
    );
    let said_default = EXAMPLE.replace(
        "deployment_group = \"api-prod\",",
        "deployment_group = \"api-prod\", keep_blue = false, group_rollback = true,",
    );
    assert!(diff(EXAMPLE, &said_default).is_empty());
}
