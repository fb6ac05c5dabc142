use super::*;

const EXAMPLE: &str = include_str!("../../../../infra/pipeline.example.toml");

fn problems(source: &str) -> Vec<String> {
    match Pipeline::from_toml(source) {
        Ok(_) => panic!("expected problems in:\n{source}"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_example_file_validates_and_means_what_its_comments_say() {
    let p = Pipeline::from_toml(EXAMPLE).unwrap();
    assert_eq!(p.environments, ["dev", "staging", "prod"]);
    let api = &p.services["api"];
    assert_eq!(api.kind, ServiceKind::BlueGreen);
    let dev = api.stage("dev").unwrap();
    let Target::BlueGreen {
        cluster,
        service,
        container,
        port,
        checks,
        ..
    } = &dev.target
    else {
        panic!("{:?}", dev.target)
    };
    assert_eq!(cluster, "shiplane-dev", "cluster comes from defaults");
    assert_eq!(
        (service.as_str(), container.as_str(), *port),
        ("api-dev", "app", 8080)
    );
    assert_eq!(dev.bake, Duration::from_secs(600));
    assert_eq!(dev.approval, Approval::None);
    assert_eq!(checks.len(), 3);
    assert_eq!(checks[0].hook, LifecycleHook::AfterAllowTestTraffic);
    assert!(
        matches!(&checks[0].probe, Probe::Http(h) if h.retries == 3 && h.body_contains.as_deref() == Some("ok"))
    );
    assert_eq!(checks[0].timeout, Duration::from_secs(30));
    assert_eq!(
        (checks[1].hook, &checks[1].probe),
        (LifecycleHook::AfterInstall, &Probe::EcsSteady)
    );
    assert_eq!(checks[2].probe, Probe::Alarms);
    assert_eq!(dev.migration.as_ref().unwrap().command, ["./migrate", "up"]);
    let prod = api.stage("prod").unwrap();
    assert_eq!(prod.approval, Approval::Manual);
    assert_eq!(prod.bake, Duration::from_secs(3600));
    assert_eq!(prod.watch, Duration::from_secs(24 * 3600));
    assert_eq!(dev.watch, Duration::ZERO, "no watch unless asked");
    assert_eq!(prod.hold_while_alarms_in, ["dev"]);
    let Target::BlueGreen { codedeploy, .. } = &prod.target else {
        panic!("{:?}", prod.target)
    };
    assert_eq!(
        codedeploy.deployment_config,
        "CodeDeployDefault.ECSCanary10Percent15Minutes"
    );
    assert_eq!(api.next_environment("dev"), Some("staging"));
    assert_eq!(api.next_environment("prod"), None);

    let tiles = &p.services["tiles"];
    assert!(matches!(
        tiles.stage("dev").unwrap().target,
        Target::Rolling { .. }
    ));
    assert_eq!(api.stage("dev").unwrap().restarts, ["tiles"]);
    assert_eq!(api.stage("prod").unwrap().restarts, ["tiles"]);
    assert!(api.stage("staging").unwrap().restarts.is_empty());
    assert_eq!(
        api.stage("dev").unwrap().keep,
        crate::pipeline::DEFAULT_KEEP
    );
    assert_eq!(
        tiles.stage("prod").unwrap().approval,
        Approval::None,
        "service overrides default"
    );
    assert_eq!(
        tiles.next_environment("dev"),
        Some("prod"),
        "skips environments it does not list"
    );

    let etl = &p.services["etl"];
    assert_eq!(
        etl.stage("dev").unwrap().target,
        Target::Task {
            families: vec!["etl-nightly".into(), "etl-backfill".into()],
            cluster: Some("shiplane-dev".into()),
        }
    );
    assert_eq!(
        p.service_for_repository("shiplane/etl").unwrap().name,
        "etl"
    );
    assert!(p.service_for_repository("shiplane/unknown").is_none());
}

const MINIMAL: &str = r#"
[pipeline]
environments = ["dev", "prod"]

[services.api]
repository = "team/api"
kind = "rolling"
container = "app"

[services.api.environments.dev]
cluster = "c"
service = "api"
"#;

#[test]
fn a_minimal_file_validates_with_defaults() {
    let p = Pipeline::from_toml(MINIMAL).unwrap();
    let dev = p.services["api"].stage("dev").unwrap();
    assert_eq!(dev.bake, Duration::ZERO);
    assert_eq!(dev.approval, Approval::None);
    assert!(!dev.freeze);
    assert!(matches!(p.services["api"].tags, TagPolicy::Any));
}

#[test]
fn five_distinct_mistakes_give_five_messages_with_paths_and_places_in_file_order() {
    let source = include_str!("../../../../tests/fixtures/pipelines/five-mistakes.toml");
    let got = problems(source);
    assert_eq!(
        got,
        [
            "15:9: services.api.environments.dev.bakee: unknown key \"bakee\"; did you mean \"bake\"?",
            "21:8: services.api.environments.prod.bake: \"1 hour\" is not a duration; write \"1h\"",
            "22:12: services.api.environments.prod.approval: \"yes please\" is not an approval mode; write \"none\" or \"manual\"",
            "24:1: services.api.environments.qa: environment \"qa\" is not defined; add it to pipeline.environments or fix the name",
            "28:14: services.web.repository: repository \"team/api\" is already tracked by services.api; each repository belongs to one service",
        ]
    );
}

/// Three services inherit `[defaults.prod]`; its mistakes are the file's, not theirs.
const DEFAULTS_TYPO: &str = r#"[pipeline]
environments = ["dev", "prod"]

[defaults.prod]
bake = "1 hour"
approval = "manual"
hold_while_alarms_in = ["qa"]
[[defaults.prod.checks]]
hook = "after_lunch"
alarms = true
timeot = "5s"

[services.a]
repository = "team/a"
kind = "blue-green"
container = "app"
port = 80
[services.a.environments.dev]
cluster = "c"
service = "a-dev"
codedeploy = { application = "a", deployment_group = "a-dev" }
[services.a.environments.prod]
cluster = "c"
service = "a-prod"
codedeploy = { application = "a", deployment_group = "" }

[services.b]
repository = "team/b"
kind = "blue-green"
container = "app"
port = 80
[services.b.environments.prod]
cluster = "c"
service = "b-prod"
codedeploy = { application = "b", deployment_group = "b-prod" }
bake = "2 hours"

[services.c]
repository = "team/c"
kind = "blue-green"
container = "app"
port = 80
[services.c.environments.prod]
cluster = "c"
service = "c-prod"
codedeploy = { application = "c" }
"#;

#[test]
fn a_mistake_in_defaults_is_reported_once_where_it_is_written() {
    assert_eq!(
        problems(DEFAULTS_TYPO),
        [
            "5:8: defaults.prod.bake: \"1 hour\" is not a duration; write \"1h\"",
            "7:25: defaults.prod.hold_while_alarms_in.0: environment \"qa\" is not defined; add it to pipeline.environments or fix the name",
            "9:8: defaults.prod.checks.0.hook: \"after_lunch\" is not a lifecycle hook; write one of before_install, after_install, after_allow_test_traffic, before_allow_traffic, after_allow_traffic",
            "11:10: defaults.prod.checks.0.timeot: unknown key \"timeot\"; did you mean \"timeout\"?",
            "25:54: services.a.environments.prod.codedeploy.deployment_group: must not be empty (name the CodeDeploy deployment group)",
            "36:8: services.b.environments.prod.bake: \"2 hours\" is not a duration; write \"2h\"",
            "46:14: services.c.environments.prod.codedeploy.deployment_group: missing; name the CodeDeploy deployment group",
        ]
    );
}

#[test]
fn broken_toml_and_wrong_types_are_placed_and_named() {
    assert_eq!(
        problems("[pipeline\nenvironments = 1"),
        ["1:10: not a valid pipeline file: unclosed table, expected `]`"]
    );
    assert_eq!(
        problems("[pipeline]\nenvironments = \"dev\"\n"),
        [
            "2:16: pipeline.environments: not a valid pipeline file: invalid type: string \"dev\", expected a sequence"
        ]
    );
    assert_eq!(
        problems("[pipeline]\nenvironments = [\"dev\"]\n[services.api]\nport = \"80\"\n"),
        [
            "4:8: services.api.port: not a valid pipeline file: invalid type: string \"80\", expected i64"
        ]
    );
}

#[test]
fn a_service_that_skips_an_environment_others_stop_in_says_so() {
    let checked = Pipeline::check(EXAMPLE).unwrap();
    let p = &checked.pipeline;
    let routes: Vec<String> = p
        .services
        .values()
        .map(|s| format!("{}: {}", s.name, p.route(s)))
        .collect();
    assert_eq!(
        routes,
        [
            "api: dev → staging → prod",
            "etl: dev → prod (no staging)",
            "tiles: dev → prod (no staging)",
        ]
    );
    let warnings: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "110:1: services.tiles: dev → prod skips staging, which api goes through; add [services.tiles.environments.staging] if tiles should stop there too",
            "125:1: services.etl: dev → prod skips staging, which api goes through; add [services.etl.environments.staging] if etl should stop there too",
        ]
    );

    // Ending early is not skipping, and nobody else stops in qa.
    let source = MINIMAL.replace("[\"dev\", \"prod\"]", "[\"dev\", \"qa\", \"prod\"]");
    let checked = Pipeline::check(&source).unwrap();
    assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
    let api = &checked.pipeline.services["api"];
    assert_eq!(checked.pipeline.route(api).to_string(), "dev (no qa, prod)");
}

#[test]
fn restarts_name_another_rolling_service_of_the_same_environment() {
    let source = r#"
[pipeline]
environments = ["dev", "prod"]

[defaults.prod]
restarts = ["tiles"]

[services.api]
repository = "team/api"
kind = "rolling"
container = "app"
[services.api.environments.dev]
cluster = "c"
service = "api"
restarts = ["api", "nope", "jobs", "tiles", "broken"]
[services.api.environments.prod]
cluster = "c"
service = "api"

[services.tiles]
repository = "team/tiles"
kind = "rolling"
container = "t"
[services.tiles.environments.dev]
cluster = "c"
service = "tiles"

[services.jobs]
repository = "team/jobs"
kind = "task"
[services.jobs.environments.dev]
task_families = ["f"]

[services.broken]
repository = "team/broken"
kind = "rolling"
"#;
    let got = problems(source);
    let restarts: Vec<_> = got.iter().filter(|p| p.contains("restarts")).collect();
    assert_eq!(
        restarts,
        [
            "6:13: defaults.prod.restarts.0: services.tiles has no prod environment to restart; add services.tiles.environments.prod",
            "15:13: services.api.environments.dev.restarts.0: \"api\" is this service; a release of it starts new tasks already",
            "15:20: services.api.environments.dev.restarts.1: no service \"nope\" in this file; name a [services.<name>] table",
            "15:28: services.api.environments.dev.restarts.2: services.jobs is a task service; only a rolling service is restarted in place",
        ],
        "{got:#?}"
    );
    // A service with problems of its own is reported there, not again here.
    assert!(
        got.iter().any(|p| p.contains("services.broken.container")),
        "{got:#?}"
    );
}

#[test]
fn keep_is_a_number_of_revisions_from_one_to_a_hundred() {
    let file = |keep: &str| {
        format!(
            "[pipeline]\nenvironments = [\"dev\"]\n[defaults.dev]\ncluster = \"c\"\nkeep = {keep}\n[services.jobs]\nrepository = \"team/jobs\"\nkind = \"task\"\n[services.jobs.environments.dev]\ntask_families = [\"f\"]\n"
        )
    };
    let kept = Pipeline::from_toml(&file("2")).unwrap();
    assert_eq!(kept.services["jobs"].stage("dev").unwrap().keep, 2);
    for bad in ["0", "-1", "101"] {
        assert_eq!(
            problems(&file(bad)),
            [format!(
                "5:8: defaults.dev.keep: {bad} is not a number of revisions to keep; write 1 to 100 (default 5)"
            )]
        );
    }
}

#[test]
fn impossible_combinations_are_errors() {
    let source = r#"
[pipeline]
environments = ["dev", "prod"]

[services.jobs]
repository = "team/jobs"
kind = "task"
[services.jobs.environments.dev]
service = "nope"
codedeploy = { application = "a", deployment_group = "g" }
migration = { family = "m", command = ["x"] }
restart_on_release = true
[[services.jobs.environments.dev.checks]]
hook = "after_install"
http = "http://x"

[services.web]
repository = "team/web"
kind = "rolling"
container = "web"
[services.web.environments.dev]
cluster = "c"
service = "s"
task_families = ["f"]
[services.web.environments.prod]
cluster = "c"
service = "s"
hold_while_alarms_in = ["dev", "prod", "qa"]

[services.bg]
repository = "team/bg"
kind = "blue-green"
[services.bg.environments.dev]
cluster = "c"
"#;
    let got = problems(source).join("\n");
    for expected in [
        "services.jobs.environments.dev.codedeploy: does not apply to a task service",
        "services.jobs.environments.dev.service: does not apply to a task service",
        "services.jobs.environments.dev.checks: does not apply to a task service",
        "services.jobs.environments.dev.migration: does not apply to a task service",
        "services.jobs.environments.dev.task_families: missing",
        "services.jobs.environments.dev.restart_on_release: restart_on_release was removed: every release of jobs already starts new tasks; to restart it when another service is released (a schema it reads on start), remove this line and add `restarts = [\"jobs\"]` to that service's environment",
        "services.web.environments.dev.task_families: does not apply to a rolling service",
        "services.web.environments.prod.hold_while_alarms_in.1: a gate into \"prod\" cannot watch \"prod\" itself",
        "services.web.environments.prod.hold_while_alarms_in.2: environment \"qa\" is not defined",
        "services.web.environments.prod.hold_while_alarms_in: the gate watches alarms in \"dev\", but services.web.environments.dev has no alarms",
        "services.bg.container: missing",
        "services.bg.port: missing",
        "services.bg.environments.dev.codedeploy.application: missing",
        "services.bg.environments.dev.codedeploy.deployment_group: missing",
        "services.bg.environments.dev.service: missing",
    ] {
        assert!(got.contains(expected), "missing {expected:?} in:\n{got}");
    }
}

#[test]
fn structural_and_value_errors_are_reported() {
    let source = r#"
[pipeline]
environments = ["dev", "dev", "Prod"]
[defaults.qa]
bake = "1m"
[services.Bad_Name]
repository = "Team/API"
kind = "blue_green"
tags = { regex = "([" , semver = ">=1" }
[services.Bad_Name.environments.dev]
[services.ok]
repository = "team/ok"
kind = "rolling"
container = "c"
port = 70000
tags = { semver = "one" }
[services.ok.environments.dev]
cluster = "c"
service = "s"
migration = { family = "", command = [] }
"#;
    let got = problems(source).join("\n");
    for expected in [
        "pipeline.environments.1: \"dev\" is listed twice",
        "pipeline.environments.2: \"Prod\" is not an environment name",
        "defaults.qa: environment \"qa\" is not in pipeline.environments",
        "services.Bad_Name: service name \"Bad_Name\" must be lowercase",
        "services.Bad_Name.repository: \"Team/API\" is not an ECR repository name",
        "services.Bad_Name.kind: \"blue_green\" is not a service kind; write \"blue-green\", \"rolling\" or \"task\"",
        "services.Bad_Name.tags: set either regex or semver, not both",
        "services.ok.port: 70000 is not a port",
        "services.ok.tags.semver: \"one\" is not a semver range",
        "services.ok.environments.dev.migration.family: must not be empty",
        "services.ok.environments.dev.migration.command: must be a non-empty list",
    ] {
        assert!(got.contains(expected), "missing {expected:?} in:\n{got}");
    }
}

#[test]
fn checks_are_validated() {
    let source = r#"
[pipeline]
environments = ["dev"]
[services.api]
repository = "team/api"
kind = "blue-green"
container = "app"
port = 80
tags = { regex = "([" }
[services.api.environments.dev]
cluster = "c"
service = "s"
codedeploy = { application = "a", deployment_group = "g" }
[[services.api.environments.dev.checks]]
hook = "during_lunch"
http = "ftp://x"
expect_status = 42
timeout = "soon"
[[services.api.environments.dev.checks]]
"#;
    let got = problems(source).join("\n");
    for expected in [
        "services.api.tags.regex: \"([\" is not a valid regex",
        "services.api.environments.dev.checks.0.hook: \"during_lunch\" is not a lifecycle hook; write one of before_install,",
        "services.api.environments.dev.checks.0.http: \"ftp://x\" is not an http(s) URL",
        "services.api.environments.dev.checks.0.expect_status: 42 is not an HTTP status",
        "services.api.environments.dev.checks.0.timeout: \"soon\" is not a duration",
        "services.api.environments.dev.checks.1.hook: missing",
        "services.api.environments.dev.checks.1.http: missing",
    ] {
        assert!(got.contains(expected), "missing {expected:?} in:\n{got}");
    }
}

#[test]
fn an_empty_file_says_what_is_missing_without_a_place() {
    assert_eq!(
        problems(""),
        [
            "pipeline.environments: missing; list the environments in promotion order, e.g. [\"dev\", \"staging\", \"prod\"]",
            "services: no services; add at least one [services.<name>] table",
        ]
    );
}

#[test]
fn tag_policies() {
    let semver = TagPolicy::Semver {
        range: semver::VersionReq::parse(">=1.0.0, <2").unwrap(),
        prereleases: false,
    };
    for (tag, ok) in [
        ("1.0.0", true),
        ("v1.4.2", true),
        ("2.0.0", false),
        ("0.9.0", false),
        ("1.2.0-rc.1", false),
        ("latest", false),
    ] {
        assert_eq!(semver.accepts(tag), ok, "{tag}");
    }
    let with_pre = TagPolicy::Semver {
        range: semver::VersionReq::parse(">=1.0.0, <2").unwrap(),
        prereleases: true,
    };
    assert!(with_pre.accepts("1.2.0-rc.1"));
    assert!(!with_pre.accepts("2.1.0-rc.1"));
    let re = TagPolicy::Regex(regex::Regex::new("^main-[0-9a-f]{7}$").unwrap());
    assert!(re.accepts("main-abc1234"));
    assert!(!re.accepts("feature-abc1234"));
    assert!(TagPolicy::Any.accepts("anything"));
}

const WITH_CHECKS: &str = r#"
[pipeline]
environments = ["dev"]
[services.api]
repository = "team/api"
kind = "blue-green"
container = "app"
port = 80
[services.api.environments.dev]
cluster = "c"
service = "s"
codedeploy = { application = "a", deployment_group = "g" }
alarms = ["api-5xx"]
"#;

#[test]
fn checks_of_every_kind_mean_what_they_say() {
    let source = format!(
        r#"{WITH_CHECKS}
[[services.api.environments.dev.checks]]
name = "orders"
hook = "after_allow_test_traffic"
http = "http://test.internal:8080/orders"
method = "post"
headers = {{ "content-type" = "application/json", "x-smoke" = "1" }}
expect_status = 201
body_contains = "created"
json_pointer = "/order/state"
json_equals = "open"
latency = "800ms"
retries = 2
interval = "3s"
[[services.api.environments.dev.checks]]
hook = "before_allow_traffic"
alarms = true
[[services.api.environments.dev.checks]]
hook = "after_install"
ecs_steady = true
[[services.api.environments.dev.checks]]
hook = "after_allow_test_traffic"
lambda = "api-smoke-tests"
"#
    );
    let p = Pipeline::from_toml(&source).unwrap();
    let checks = p.services["api"]
        .stage("dev")
        .unwrap()
        .target
        .checks()
        .to_vec();
    assert_eq!(checks.len(), 4);
    let Probe::Http(h) = &checks[0].probe else {
        panic!("{:?}", checks[0])
    };
    assert_eq!(checks[0].name, "orders");
    assert_eq!((h.method.as_str(), h.expect_status), ("POST", 201));
    assert_eq!(h.headers["x-smoke"], "1");
    assert_eq!(h.body_contains.as_deref(), Some("created"));
    assert_eq!(
        h.json_pointer,
        Some(("/order/state".into(), serde_json::json!("open")))
    );
    assert_eq!(
        (h.latency_budget, h.retries, h.interval),
        (Duration::from_millis(800), 2, Duration::from_secs(3))
    );
    assert_eq!(
        checks[0].timeout,
        Duration::from_millis(3 * 800 + 2 * 3000),
        "by default a check may take all its attempts"
    );
    assert_eq!(checks[1].probe, Probe::Alarms);
    assert_eq!(checks[1].name, "check-1");
    assert_eq!(checks[2].probe, Probe::EcsSteady);
    assert_eq!(
        checks[3].probe,
        Probe::Lambda {
            function: "api-smoke-tests".into()
        }
    );
}

#[test]
fn a_check_is_exactly_one_kind_and_http_settings_belong_to_http_checks() {
    let source = format!(
        r#"{WITH_CHECKS}
[[services.api.environments.dev.checks]]
hook = "after_install"
alarms = true
ecs_steady = true
[[services.api.environments.dev.checks]]
hook = "after_install"
lambda = "smoke"
expect_status = 200
[[services.api.environments.dev.checks]]
hook = "after_install"
http = "http://x/"
method = "FETCH"
json_pointer = "status"
json_equals = 1
retries = 99
[[services.api.environments.dev.checks]]
hook = "after_install"
http = "http://x/"
json_equals = 1
"#
    );
    let got = problems(&source).join("\n");
    for expected in [
        "services.api.environments.dev.checks.0: more than one of http, alarms, ecs_steady and lambda",
        "services.api.environments.dev.checks.1.expect_status: applies to http checks only",
        "services.api.environments.dev.checks.2.method: \"FETCH\" is not an HTTP method",
        "services.api.environments.dev.checks.2.json_pointer: \"status\" is not a JSON pointer",
        "services.api.environments.dev.checks.2.retries: 99 is not 0-20",
        "services.api.environments.dev.checks.3.json_pointer: missing",
    ] {
        assert!(got.contains(expected), "missing {expected:?} in:\n{got}");
    }
}

mod diff;
mod tags;

#[test]
fn a_watch_that_is_not_a_duration_is_an_error_where_it_is_written() {
    let source = EXAMPLE.replace("watch = \"24h\"", "watch = \"a day\"");
    let got = problems(&source);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("defaults.prod.watch: \"a day\" is not a duration"),
        "{got:?}"
    );
}

/// A blue-green service `a` in dev and prod, prod's codedeploy table ending with `extra`.
fn group_opt_outs(defaults: &str, extra: &str) -> String {
    format!(
        r#"
[pipeline]
environments = ["dev", "prod"]
[defaults.prod]
cluster = "c"
{defaults}
[services.a]
repository = "team/a"
kind = "blue-green"
container = "app"
port = 8080
[services.a.environments.dev]
cluster = "c"
service = "a-dev"
codedeploy = {{ application = "a", deployment_group = "a-dev" }}
[services.a.environments.prod]
service = "a-prod"
codedeploy = {{ application = "a", deployment_group = "a-prod"{extra} }}
"#
    )
}

fn group_of(p: &Pipeline, env: &str) -> GroupExpectation {
    match &p.services["a"].stage(env).unwrap().target {
        Target::BlueGreen { codedeploy, .. } => codedeploy.group,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_group_is_expected_to_roll_back_and_terminate_blue_unless_the_file_says_otherwise() {
    let p = Pipeline::from_toml(&group_opt_outs("", "")).unwrap();
    assert_eq!(group_of(&p, "prod"), GroupExpectation::default());
    assert_eq!(
        GroupExpectation::default(),
        GroupExpectation {
            blue: BlueAfterSuccess::Terminate,
            rollback: GroupRollback::Required
        }
    );

    let p = Pipeline::from_toml(&group_opt_outs(
        "",
        ", keep_blue = true, group_rollback = false",
    ))
    .unwrap();
    assert_eq!(
        group_of(&p, "prod"),
        GroupExpectation {
            blue: BlueAfterSuccess::Keep,
            rollback: GroupRollback::Off
        }
    );
    assert_eq!(group_of(&p, "dev"), GroupExpectation::default());

    // Said the default way out loud: the same as not said.
    let p = Pipeline::from_toml(&group_opt_outs(
        "",
        ", keep_blue = false, group_rollback = true",
    ))
    .unwrap();
    assert_eq!(group_of(&p, "prod"), GroupExpectation::default());

    // From the environment's defaults, under the stage's own application and group.
    let p = Pipeline::from_toml(&group_opt_outs("codedeploy = { keep_blue = true }", "")).unwrap();
    assert_eq!(group_of(&p, "prod").blue, BlueAfterSuccess::Keep);
    assert_eq!(group_of(&p, "prod").rollback, GroupRollback::Required);
}

#[test]
fn a_group_opt_out_that_is_not_a_boolean_or_misspelt_is_an_error() {
    let got = problems(&group_opt_outs("", ", keep_blue = \"yes\"")).join("\n");
    assert!(
        got.contains("services.a.environments.prod.codedeploy.keep_blue")
            && got.contains("expected a boolean"),
        "{got}"
    );
    let got = problems(&group_opt_outs("", ", group_rollbak = false")).join("\n");
    assert!(
        got.contains(
            "services.a.environments.prod.codedeploy.group_rollbak: unknown key \"group_rollbak\"; did you mean \"group_rollback\"?"
        ),
        "{got}"
    );
}

#[test]
fn a_stop_first_migration_is_for_rolling_services_and_online_is_the_default() {
    let source = r#"
[pipeline]
environments = ["dev", "prod"]

[services.web]
repository = "team/web"
kind = "rolling"
container = "web"
[services.web.environments.dev]
cluster = "c"
service = "s"
migration = { family = "m", command = ["x"] }
[services.web.environments.prod]
cluster = "c"
service = "s"
migration = { family = "m", command = ["x"], mode = "stop-first" }
"#;
    let p = Pipeline::from_toml(source).unwrap();
    let mode = |env: &str| {
        p.services["web"]
            .stages
            .iter()
            .find(|s| s.environment == env)
            .and_then(|s| s.migration.as_ref())
            .map(|m| m.mode)
    };
    assert_eq!(mode("dev"), Some(MigrationMode::Online));
    assert_eq!(mode("prod"), Some(MigrationMode::StopFirst));

    let refused = r#"
[pipeline]
environments = ["dev", "prod"]

[services.bg]
repository = "team/bg"
kind = "blue-green"
container = "app"
port = 80
[services.bg.environments.dev]
cluster = "c"
service = "s"
codedeploy = { application = "a", deployment_group = "g" }
migration = { family = "m", command = ["x"], mode = "stop-first" }
[services.bg.environments.prod]
cluster = "c"
service = "s"
codedeploy = { application = "a", deployment_group = "g" }
migration = { family = "m", command = ["x"], mode = "offline" }
"#;
    let got = problems(refused).join("\n");
    assert!(
        got.contains(
            "services.bg.environments.dev.migration.mode: \"stop-first\" needs a rolling service"
        ),
        "{got}"
    );
    assert!(
        got.contains("services.bg.environments.prod.migration.mode: unknown mode \"offline\""),
        "{got}"
    );
}

#[test]
fn data_jobs_sharing_a_family_must_name_different_clusters() {
    let file = |dev: &str, prod: &str| {
        format!(
            "[pipeline]\nenvironments = [\"dev\", \"prod\"]\n[services.etl]\nrepository = \"team/etl\"\nkind = \"task\"\n[services.etl.environments.dev]\ntask_families = [\"nightly\"]\n{dev}\n[services.etl.environments.prod]\ntask_families = [\"nightly\", \"backfill\"]\n{prod}\n"
        )
    };
    for (dev, prod) in [
        ("", ""),
        ("cluster = \"jobs\"", ""),
        ("cluster = \"jobs\"", "cluster = \"jobs\""),
    ] {
        let got = problems(&file(dev, prod)).join("\n");
        assert!(
            got.contains("services.etl.environments.prod.cluster: nightly is also updated by services.etl.environments.dev, and both could move the same triggers; give each environment its own cluster"),
            "{dev:?} {prod:?}: {got}"
        );
    }
    let p =
        Pipeline::from_toml(&file("cluster = \"jobs-dev\"", "cluster = \"jobs-prod\"")).unwrap();
    assert_eq!(
        p.services["etl"].stage("prod").unwrap().target,
        Target::Task {
            families: vec!["nightly".into(), "backfill".into()],
            cluster: Some("jobs-prod".into()),
        }
    );
}
