use super::*;

const AT: At<'static> = At {
    environment: Some("prod"),
    service: Some("api"),
};

fn stage(expect: GroupExpectation) -> GroupStage<'static> {
    GroupStage {
        at: AT,
        application: "api",
        group: "api-prod",
        cluster: "prod",
        service: "api-prod",
        expect,
    }
}

/// A group set as `provision.py` sets one up: what the checks want.
fn good() -> GroupSettings {
    GroupSettings {
        rollback_enabled: true,
        rollback_events: [FAILURE, STOP_ON_ALARM, STOP_ON_REQUEST]
            .map(String::from)
            .to_vec(),
        blue_action: Some("TERMINATE".into()),
        termination_wait_minutes: 5,
        ready_option: Some(("CONTINUE_DEPLOYMENT".into(), 0)),
        style: Some(("BLUE_GREEN".into(), "WITH_TRAFFIC_CONTROL".into())),
        ecs_services: vec![("prod".into(), "api-prod".into())],
        stops_on_alarms: false,
    }
}

fn summary(findings: &[Finding]) -> Vec<(Severity, Check)> {
    findings.iter().map(|f| (f.severity, f.check)).collect()
}

#[test]
fn a_group_set_as_it_should_be_has_no_finding() {
    assert_eq!(
        group_findings(&stage(GroupExpectation::default()), &good()),
        []
    );
    let keep_and_off = GroupExpectation {
        blue: BlueAfterSuccess::Keep,
        rollback: GroupRollback::Off,
    };
    assert_eq!(
        group_findings(&stage(keep_and_off), &good()),
        [],
        "an opt-out allows, it does not require"
    );
}

#[test]
fn a_kept_blue_task_set_and_no_rollback_are_errors_with_the_command_that_fixes_them() {
    let broken = GroupSettings {
        rollback_enabled: false,
        rollback_events: Vec::new(),
        blue_action: Some("KEEP_ALIVE".into()),
        termination_wait_minutes: 0,
        ..good()
    };
    let found = group_findings(&stage(GroupExpectation::default()), &broken);
    assert_eq!(
        summary(&found),
        [
            (Severity::Error, Check::GroupRollback),
            (Severity::Error, Check::GroupBlue)
        ]
    );
    assert!(found[0].problem.starts_with("has its auto-rollback off"));
    assert!(
        found[0].fix.starts_with(
            "aws deploy update-deployment-group --application-name api --current-deployment-group-name api-prod --auto-rollback-configuration enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_ALARM,DEPLOYMENT_STOP_ON_REQUEST "
        ),
        "{}",
        found[0].fix
    );
    assert!(
        found[0]
            .fix
            .ends_with("write group_rollback = false in services.api.environments.prod.codedeploy"),
        "{}",
        found[0].fix
    );
    assert!(
        found[1]
            .problem
            .contains("terminateBlueInstancesOnDeploymentSuccess KEEP_ALIVE")
    );
    assert!(
        found[1].fix.contains(
            "--blue-green-deployment-configuration 'terminateBlueInstancesOnDeploymentSuccess={action=TERMINATE,terminationWaitTimeInMinutes=5},deploymentReadyOption={actionOnTimeout=CONTINUE_DEPLOYMENT,waitTimeInMinutes=0}'"
        ),
        "the group's ready option is kept: {}",
        found[1].fix
    );
    assert!(
        found[1]
            .fix
            .ends_with("write keep_blue = true in services.api.environments.prod.codedeploy")
    );
    assert_eq!(found[1].thing, "CodeDeploy deployment group api/api-prod");
    assert_eq!(found[1].environment.as_deref(), Some("prod"));
}

#[test]
fn with_the_opt_outs_the_same_group_gets_notes() {
    let broken = GroupSettings {
        rollback_enabled: false,
        blue_action: Some("KEEP_ALIVE".into()),
        ..good()
    };
    let keep_and_off = GroupExpectation {
        blue: BlueAfterSuccess::Keep,
        rollback: GroupRollback::Off,
    };
    assert_eq!(
        summary(&group_findings(&stage(keep_and_off), &broken)),
        [
            (Severity::Note, Check::GroupRollback),
            (Severity::Note, Check::GroupBlue)
        ]
    );
    // One opt-out covers its own setting only.
    let keep_only = GroupExpectation {
        blue: BlueAfterSuccess::Keep,
        rollback: GroupRollback::Required,
    };
    assert_eq!(
        summary(&group_findings(&stage(keep_only), &broken)),
        [
            (Severity::Error, Check::GroupRollback),
            (Severity::Note, Check::GroupBlue)
        ]
    );
}

#[test]
fn rollback_events_each_matter_where_they_apply() {
    let events = |list: &[&str], alarms: bool| GroupSettings {
        rollback_events: list.iter().map(ToString::to_string).collect(),
        stops_on_alarms: alarms,
        ..good()
    };
    let check =
        |s: GroupSettings| summary(&group_findings(&stage(GroupExpectation::default()), &s));
    assert_eq!(
        check(events(&[STOP_ON_REQUEST], false)),
        [(Severity::Error, Check::GroupRollback)],
        "no rollback on failure"
    );
    assert_eq!(
        check(events(&[FAILURE, STOP_ON_REQUEST], false)),
        [],
        "no alarms on the group: stop-on-alarm does not apply"
    );
    assert_eq!(
        check(events(&[FAILURE, STOP_ON_REQUEST], true)),
        [(Severity::Error, Check::GroupRollback)],
        "the group's alarms stop it without a rollback"
    );
    assert_eq!(
        check(events(&[FAILURE], false)),
        [(Severity::Warning, Check::GroupRollback)],
        "a stop from the console is not rolled back"
    );
    let no_terminate = GroupSettings {
        blue_action: None,
        ..good()
    };
    assert_eq!(check(no_terminate), [(Severity::Error, Check::GroupBlue)]);
}

#[test]
fn a_group_of_another_style_or_service_is_an_error() {
    let check =
        |s: GroupSettings| summary(&group_findings(&stage(GroupExpectation::default()), &s));
    let in_place = GroupSettings {
        style: Some(("IN_PLACE".into(), "WITHOUT_TRAFFIC_CONTROL".into())),
        ..good()
    };
    assert_eq!(check(in_place), [(Severity::Error, Check::DeploymentGroup)]);
    let other = GroupSettings {
        ecs_services: vec![("prod".into(), "web-prod".into())],
        ..good()
    };
    assert_eq!(check(other), [(Severity::Error, Check::DeploymentGroup)]);
    let by_arn = GroupSettings {
        ecs_services: vec![(
            "arn:aws:ecs:us-east-1:1:cluster/prod".into(),
            "api-prod".into(),
        )],
        ..good()
    };
    assert_eq!(
        check(by_arn),
        [],
        "a cluster named by ARN is the same cluster"
    );
}

#[test]
fn the_deployment_controller_must_match_the_kind() {
    let c = |kind, controller| {
        controller_finding(AT, kind, "prod", "api-prod", controller).map(|f| f.check)
    };
    assert_eq!(c(ServiceKind::BlueGreen, Some("CODE_DEPLOY")), None);
    assert_eq!(
        c(ServiceKind::BlueGreen, Some("ECS")),
        Some(Check::DeploymentController)
    );
    assert_eq!(
        c(ServiceKind::BlueGreen, None),
        Some(Check::DeploymentController),
        "no controller is ECS's"
    );
    assert_eq!(c(ServiceKind::Rolling, None), None);
    assert_eq!(c(ServiceKind::Rolling, Some("ECS")), None);
    assert_eq!(
        c(ServiceKind::Rolling, Some("CODE_DEPLOY")),
        Some(Check::DeploymentController)
    );
    assert_eq!(
        c(ServiceKind::Rolling, Some("EXTERNAL")),
        Some(Check::DeploymentController)
    );
}

#[test]
fn a_missing_container_names_those_there_are() {
    let has = ["app".to_string(), "log-router".to_string()];
    let f = |name| {
        container_finding(
            AT,
            Check::Migration,
            "api-migrate",
            name,
            &has,
            "services.api.environments.prod.migration.container",
        )
    };
    assert_eq!(f("app"), None);
    let found = f("migrator").expect("a finding");
    assert_eq!(found.thing, "task definition api-migrate");
    assert!(
        found
            .problem
            .starts_with("has no container \"migrator\" (it has: app, log-router)"),
        "{}",
        found.problem
    );
    assert!(found.fix.starts_with(
        "set services.api.environments.prod.migration.container to one of its containers"
    ));
}

#[test]
fn a_missing_alarm_is_an_error_and_an_empty_prefix_a_warning() {
    let existing: BTreeSet<String> = ["api-prod-5xx".to_string(), "api-prod-latency".to_string()]
        .into_iter()
        .collect();
    let names = |n: &[&str]| n.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        alarm_findings(
            AT,
            &names(&["api-prod-5xx"]),
            &names(&["api-prod-"]),
            &existing
        ),
        []
    );
    let found = alarm_findings(
        AT,
        &names(&["api-prod-5xx", "api-prod-errors"]),
        &names(&["api-prd-"]),
        &existing,
    );
    assert_eq!(
        summary(&found),
        [
            (Severity::Error, Check::Alarm),
            (Severity::Warning, Check::Alarm)
        ]
    );
    assert_eq!(found[0].thing, "CloudWatch alarm api-prod-errors");
    assert!(
        found[0]
            .fix
            .ends_with("or fix the name in services.api.environments.prod.alarms")
    );
    assert_eq!(found[1].thing, "CloudWatch alarms named api-prd-*");
}

#[test]
fn a_hook_function_codedeploy_may_not_invoke_is_a_warning() {
    assert_eq!(hook_name_finding("CodeDeployHook_shiplane"), None);
    assert_eq!(
        hook_name_finding("arn:aws:lambda:us-east-1:1:function:CodeDeployHook_x:AfterInstall"),
        None
    );
    let f = hook_name_finding("shiplane-deploy-hook").expect("a warning");
    assert_eq!((f.severity, f.environment), (Severity::Warning, None));
    assert!(f.fix.contains("DeployHookInvokePolicy"));
}

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/service-role/shop-codedeploy";
const HOOK_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:CodeDeployHook_shop";

fn used(environment: &str, service: &str, hooks: &[LifecycleHook]) -> RoleUse {
    RoleUse {
        environment: environment.into(),
        service: service.into(),
        group: format!("{service}/{service}-{environment}"),
        hooks: hooks.iter().copied().collect(),
    }
}

fn verdicts(pairs: &[(&str, Access)]) -> Vec<(String, Access)> {
    pairs
        .iter()
        .map(|(alias, a)| (format!("{HOOK_ARN}:{alias}"), a.clone()))
        .collect()
}

#[test]
fn a_role_that_may_invoke_every_alias_has_no_finding() {
    let uses = [used("prod", "api", &[LifecycleHook::AfterAllowTestTraffic])];
    let all = verdicts(&[("AfterAllowTestTraffic", Access::Allowed)]);
    assert_eq!(invoke_finding(ROLE_ARN, &uses, HOOK_ARN, &all), None);
    assert_eq!(invoke_finding(ROLE_ARN, &uses, HOOK_ARN, &[]), None);
}

#[test]
fn a_role_that_may_not_invoke_is_an_error_naming_the_role_function_aliases_and_the_fix() {
    let uses = [used(
        "prod",
        "api",
        &[
            LifecycleHook::BeforeInstall,
            LifecycleHook::AfterAllowTestTraffic,
        ],
    )];
    let found = verdicts(&[
        ("AfterAllowTestTraffic", Access::NotGranted),
        ("BeforeInstall", Access::Allowed),
    ]);
    let f = invoke_finding(ROLE_ARN, &uses, HOOK_ARN, &found).expect("an error");
    assert_eq!(
        (
            f.severity,
            f.check,
            f.environment.as_deref(),
            f.service.as_deref()
        ),
        (
            Severity::Error,
            Check::ServiceRole,
            Some("prod"),
            Some("api")
        )
    );
    assert_eq!(
        f.text(),
        format!(
            "error: api: IAM role shop-codedeploy (the service role of CodeDeploy group api/api-prod) may not invoke Lambda function CodeDeployHook_shop through its alias AfterAllowTestTraffic (none of its policies allows lambda:InvokeFunction on it): CodeDeploy fails every lifecycle hook with checks there, and the deployment with it\n    fix: attach the stack's DeployHookInvokePolicy output to it (aws iam attach-role-policy --role-name shop-codedeploy --policy-arn <the DeployHookInvokePolicy output>, or deploy the stack with CodeDeployServiceRoleName=shop-codedeploy), or add a statement to its policies allowing lambda:InvokeFunction on {HOOK_ARN}:AfterAllowTestTraffic"
        )
    );
}

#[test]
fn a_deny_or_a_boundary_gets_its_own_fix_and_comes_before_a_missing_allow() {
    let uses = [used("dev", "api", &[]), used("prod", "tiles", &[])];
    let found = verdicts(&[
        ("AfterAllowTraffic", Access::NotGranted),
        (
            "BeforeAllowTraffic",
            Access::Denied {
                policy: "inline policy fence".into(),
            },
        ),
        ("AfterInstall", Access::Allowed),
    ]);
    let f = invoke_finding(ROLE_ARN, &uses, HOOK_ARN, &found).expect("an error");
    assert_eq!((f.environment, f.service), (None, None), "two places");
    assert!(
        f.thing
            .ends_with("(the service role of CodeDeploy groups api/api-dev, tiles/tiles-prod)"),
        "{}",
        f.thing
    );
    assert!(f.problem.starts_with("may not invoke Lambda function CodeDeployHook_shop through its aliases AfterAllowTraffic, BeforeAllowTraffic (inline policy fence denies it"), "{}", f.problem);
    assert!(
        f.fix.starts_with("narrow the Deny in inline policy fence"),
        "{}",
        f.fix
    );
    let bounded = verdicts(&[(
        "AfterInstall",
        Access::OutsideBoundary {
            boundary: "permissions boundary arn:aws:iam::1:policy/b".into(),
        },
    )]);
    let f = invoke_finding(ROLE_ARN, &uses, HOOK_ARN, &bounded).expect("an error");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.problem
            .contains("(its permissions boundary arn:aws:iam::1:policy/b does not allow it)"),
        "{}",
        f.problem
    );
}

#[test]
fn a_condition_is_a_warning_that_could_not_tell() {
    let uses = [used("prod", "api", &[])];
    let found = verdicts(&[
        (
            "AfterAllowTestTraffic",
            Access::Unknown {
                policy: "managed policy arn:aws:iam::1:policy/tagged".into(),
                why: "a condition",
            },
        ),
        ("BeforeInstall", Access::Allowed),
    ]);
    let f = invoke_finding(ROLE_ARN, &uses, HOOK_ARN, &found).expect("a warning");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.problem.starts_with("may not be allowed to invoke Lambda function CodeDeployHook_shop through its alias AfterAllowTestTraffic (could not tell: a condition in managed policy arn:aws:iam::1:policy/tagged decides it): "),
        "{}",
        f.problem
    );
    // One alias that surely fails makes it an error, whatever the others.
    let mixed = verdicts(&[
        (
            "AfterAllowTestTraffic",
            Access::Unknown {
                policy: "p".into(),
                why: "a condition",
            },
        ),
        ("BeforeInstall", Access::NotGranted),
    ]);
    let f = invoke_finding(ROLE_ARN, &uses, HOOK_ARN, &mixed).expect("an error");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.problem.contains("through its alias BeforeInstall (none"),
        "{}",
        f.problem
    );
}

#[test]
fn a_missing_role_is_an_error() {
    let f = missing_role_finding(ROLE_ARN, &[used("prod", "api", &[])]);
    assert_eq!((f.severity, f.check), (Severity::Error, Check::ServiceRole));
    assert!(f.fix.contains("--service-role-arn"));
}
