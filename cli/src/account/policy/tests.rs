use serde_json::json;

use super::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/codedeploy";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:CodeDeployHook_shop";
const INVOKE: &str = "lambda:InvokeFunction";

fn alias(name: &str) -> String {
    format!("{FUNCTION}:{name}")
}

fn policy(name: &str, statements: serde_json::Value) -> Policy {
    Policy::parse(
        name,
        &json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
    )
}

fn allow(action: serde_json::Value, resource: serde_json::Value) -> serde_json::Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

fn role(policies: Vec<Policy>) -> RolePolicies {
    RolePolicies {
        role_arn: ROLE.into(),
        policies,
        boundary: None,
    }
}

/// The role's verdict on invoking the hook's AfterAllowTestTraffic alias.
fn on_alias(policies: Vec<Policy>) -> Access {
    access(
        &role(policies),
        None,
        INVOKE,
        &alias("AfterAllowTestTraffic"),
    )
}

/// AWS's managed policy AWSCodeDeployRoleForECSLimited, as IAM answers it (the statement
/// that matters, and one about something else).
fn ecs_limited() -> Policy {
    policy(
        "arn:aws:iam::aws:policy/AWSCodeDeployRoleForECSLimited",
        json!([
            allow(
                json!(["ecs:DescribeServices", "ecs:CreateTaskSet"]),
                json!("*")
            ),
            allow(
                json!(["lambda:InvokeFunction"]),
                json!("arn:aws:lambda:*:*:function:CodeDeployHook_*")
            ),
        ]),
    )
}

/// The stack's DeployHookInvokePolicy: exactly the five aliases.
fn stack_policy() -> Policy {
    let aliases: Vec<String> = [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ]
    .iter()
    .map(|a| alias(a))
    .collect();
    policy(
        "DeployHookInvokePolicy",
        json!([allow(json!(INVOKE), json!(aliases))]),
    )
}

#[test]
fn allowed_by_the_exact_alias_arn_a_codedeployhook_wildcard_or_lambda_star() {
    assert_eq!(on_alias(vec![stack_policy()]), Access::Allowed);
    assert_eq!(on_alias(vec![ecs_limited()]), Access::Allowed);
    let everything = policy("all", json!([allow(json!("lambda:*"), json!("*"))]));
    assert_eq!(on_alias(vec![everything]), Access::Allowed);
    let admin = policy("admin", json!([allow(json!("*"), json!("*"))]));
    assert_eq!(on_alias(vec![admin]), Access::Allowed);
    let one_char = policy(
        "q",
        json!(allow(
            json!("lambda:Invoke?unction"),
            json!("arn:aws:lambda:us-east-?:123456789012:function:CodeDeployHook_shop:*")
        )),
    );
    assert_eq!(
        on_alias(vec![one_char]),
        Access::Allowed,
        "a single statement object, ? wildcards"
    );
}

#[test]
fn actions_match_whatever_their_case_resources_only_in_theirs() {
    let shouted = policy(
        "p",
        json!([allow(
            json!("LAMBDA:invokefunction"),
            json!(alias("AfterAllowTestTraffic"))
        )]),
    );
    assert_eq!(on_alias(vec![shouted]), Access::Allowed);
    let lower = policy(
        "p",
        json!([allow(
            json!(INVOKE),
            json!(alias("AfterAllowTestTraffic").to_lowercase())
        )]),
    );
    assert_eq!(on_alias(vec![lower]), Access::NotGranted);
}

#[test]
fn the_function_arn_alone_does_not_cover_its_aliases() {
    let bare = policy("bare", json!([allow(json!(INVOKE), json!(FUNCTION))]));
    assert_eq!(on_alias(vec![bare.clone()]), Access::NotGranted);
    assert_eq!(
        access(&role(vec![bare]), None, INVOKE, FUNCTION),
        Access::Allowed,
        "it covers the function itself"
    );
    let one_alias = policy(
        "one",
        json!([allow(json!(INVOKE), json!(alias("BeforeInstall")))]),
    );
    assert_eq!(on_alias(vec![one_alias.clone()]), Access::NotGranted);
    assert_eq!(
        access(
            &role(vec![one_alias]),
            None,
            INVOKE,
            &alias("BeforeInstall")
        ),
        Access::Allowed
    );
}

#[test]
fn not_allowed_when_the_resource_or_the_action_does_not_match() {
    let other_function = policy(
        "p",
        json!([allow(
            json!(INVOKE),
            json!("arn:aws:lambda:*:*:function:shiplane-*")
        )]),
    );
    assert_eq!(on_alias(vec![other_function]), Access::NotGranted);
    let other_action = policy("p", json!([allow(json!("lambda:GetFunction"), json!("*"))]));
    assert_eq!(on_alias(vec![other_action]), Access::NotGranted);
    assert_eq!(
        on_alias(vec![]),
        Access::NotGranted,
        "a role without policies"
    );
    // A wildcard does not run across a segment of the ARN: `us-*` is a region.
    let region_runs_on = policy(
        "p",
        json!([allow(
            json!(INVOKE),
            json!("arn:aws:lambda:us-*:function:CodeDeployHook_shop:*")
        )]),
    );
    assert_eq!(on_alias(vec![region_runs_on]), Access::NotGranted);
    let other_account = policy(
        "p",
        json!([allow(
            json!(INVOKE),
            json!("arn:aws:lambda:*:999999999999:function:*")
        )]),
    );
    assert_eq!(on_alias(vec![other_account]), Access::NotGranted);
    // Ending early, the last wildcard covers the rest.
    let short = policy(
        "p",
        json!([allow(json!(INVOKE), json!("arn:aws:lambda:*"))]),
    );
    assert_eq!(on_alias(vec![short]), Access::Allowed);
}

#[test]
fn an_explicit_deny_wins_over_any_allow() {
    let deny = policy(
        "deny-hooks",
        json!([{"Effect": "Deny", "Action": "lambda:*", "Resource": "arn:aws:lambda:*:*:function:CodeDeployHook_*"}]),
    );
    assert_eq!(
        on_alias(vec![ecs_limited(), deny]),
        Access::Denied {
            policy: "deny-hooks".into()
        }
    );
    let deny_elsewhere = policy(
        "deny-other",
        json!([{"Effect": "Deny", "Action": INVOKE, "Resource": "arn:aws:lambda:*:*:function:prod-*"}]),
    );
    assert_eq!(
        on_alias(vec![ecs_limited(), deny_elsewhere]),
        Access::Allowed
    );
}

#[test]
fn not_action_and_not_resource_cover_what_they_do_not_name() {
    let but_iam = policy(
        "p",
        json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]),
    );
    assert_eq!(on_alias(vec![but_iam]), Access::Allowed);
    let but_invoke = policy(
        "p",
        json!([{"Effect": "Allow", "NotAction": ["lambda:Invoke*"], "Resource": "*"}]),
    );
    assert_eq!(on_alias(vec![but_invoke]), Access::NotGranted);
    let deny_all_but_prod = policy(
        "fence",
        json!([
            allow(json!("*"), json!("*")),
            {"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:lambda:*:*:function:prod-*"}
        ]),
    );
    assert_eq!(
        on_alias(vec![deny_all_but_prod]),
        Access::Denied {
            policy: "fence".into()
        }
    );
    let deny_all_but_hooks = policy(
        "fence",
        json!([
            allow(json!("*"), json!("*")),
            {"Effect": "Deny", "NotAction": INVOKE, "Resource": "*"}
        ]),
    );
    assert_eq!(on_alias(vec![deny_all_but_hooks]), Access::Allowed);
}

#[test]
fn a_condition_or_a_policy_variable_cannot_be_told() {
    let conditional = policy(
        "tagged",
        json!([{"Effect": "Allow", "Action": INVOKE, "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "shop"}}}]),
    );
    assert_eq!(
        on_alias(vec![conditional.clone()]),
        Access::Unknown {
            policy: "tagged".into(),
            why: "a condition"
        }
    );
    // Another policy that allows outright settles it.
    assert_eq!(on_alias(vec![conditional, ecs_limited()]), Access::Allowed);
    let conditional_deny = policy(
        "mfa",
        json!([{"Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]),
    );
    assert_eq!(
        on_alias(vec![ecs_limited(), conditional_deny.clone()]),
        Access::Unknown {
            policy: "mfa".into(),
            why: "a condition"
        }
    );
    assert_eq!(
        on_alias(vec![conditional_deny]),
        Access::NotGranted,
        "a deny that may not apply cannot make up for no allow"
    );
    let variable = policy(
        "own",
        json!([allow(
            json!(INVOKE),
            json!("arn:aws:lambda:*:*:function:${aws:PrincipalTag/team}-*")
        )]),
    );
    assert!(matches!(on_alias(vec![variable]), Access::Unknown { .. }));
    let escaped = policy(
        "esc",
        json!([allow(
            json!(INVOKE),
            json!("arn:aws:lambda:*:*:function:${*}")
        )]),
    );
    assert_eq!(
        on_alias(vec![escaped]),
        Access::NotGranted,
        "${{*}} is a literal star"
    );
    let old = Policy::parse(
        "old",
        &json!({"Version": "2008-10-17", "Statement": [allow(json!(INVOKE), json!("arn:aws:lambda:*:*:function:${x}*"))]}).to_string(),
    );
    assert_eq!(
        on_alias(vec![old]),
        Access::NotGranted,
        "before 2012-10-17, ${{x}} is text"
    );
}

#[test]
fn what_cannot_be_read_cannot_be_told_either() {
    let garbled = Policy::parse("garbled", "not json");
    assert!(matches!(on_alias(vec![garbled]), Access::Unknown { .. }));
    let odd_effect = policy(
        "odd",
        json!([{"Effect": "Maybe", "Action": "*", "Resource": "*"}]),
    );
    assert!(matches!(
        on_alias(vec![odd_effect.clone()]),
        Access::Unknown { .. }
    ));
    assert!(
        matches!(
            on_alias(vec![ecs_limited(), odd_effect]),
            Access::Unknown { .. }
        ),
        "it may be a Deny"
    );
}

#[test]
fn the_permissions_boundary_must_allow_it_too() {
    let mut bounded = role(vec![ecs_limited()]);
    bounded.boundary = Some(policy(
        "boundary",
        json!([allow(json!("ecs:*"), json!("*"))]),
    ));
    assert_eq!(
        access(&bounded, None, INVOKE, &alias("AfterAllowTestTraffic")),
        Access::OutsideBoundary {
            boundary: "boundary".into()
        }
    );
    bounded.boundary = Some(policy(
        "boundary",
        json!([allow(json!("lambda:*"), json!("*"))]),
    ));
    assert_eq!(
        access(&bounded, None, INVOKE, &alias("AfterAllowTestTraffic")),
        Access::Allowed
    );
    let alone = RolePolicies {
        boundary: Some(policy("boundary", json!([allow(json!("*"), json!("*"))]))),
        ..role(vec![])
    };
    assert_eq!(
        access(&alone, None, INVOKE, &alias("AfterAllowTestTraffic")),
        Access::NotGranted,
        "a boundary grants nothing itself"
    );
}

#[test]
fn the_functions_own_policy_may_allow_the_role_by_name() {
    let target = alias("AfterAllowTestTraffic");
    let grant = |principal: serde_json::Value| {
        policy(
            "the alias's resource policy",
            json!([{"Effect": "Allow", "Principal": principal, "Action": INVOKE, "Resource": target}]),
        )
    };
    let verdict = |p: &Policy| access(&role(vec![]), Some(p), INVOKE, &target);
    assert_eq!(verdict(&grant(json!({"AWS": ROLE}))), Access::Allowed);
    assert_eq!(
        verdict(&grant(json!({"AWS": [ "arn:aws:iam::1:role/x", ROLE]}))),
        Access::Allowed
    );
    assert_eq!(verdict(&grant(json!("*"))), Access::Allowed);
    assert_eq!(
        verdict(&grant(json!({"AWS": "arn:aws:iam::123456789012:root"}))),
        Access::NotGranted,
        "the account defers to the role's own policies"
    );
    assert_eq!(
        verdict(&grant(json!({"Service": "codedeploy.amazonaws.com"}))),
        Access::NotGranted,
        "CodeDeploy invokes as the role, not as itself"
    );
    assert!(matches!(
        verdict(&grant(
            json!({"AWS": "arn:aws:sts::123456789012:assumed-role/codedeploy/one"})
        )),
        Access::Unknown { .. }
    ));
    // Its deny counts against the role's own allow.
    let deny = policy(
        "the alias's resource policy",
        json!([{"Effect": "Deny", "Principal": "*", "Action": "lambda:*", "Resource": "*"}]),
    );
    assert_eq!(
        access(&role(vec![ecs_limited()]), Some(&deny), INVOKE, &target),
        Access::Denied {
            policy: "the alias's resource policy".into()
        }
    );
}

#[test]
fn documents_come_url_encoded_from_iam_or_plain() {
    let plain = json!({"Version": "2012-10-17", "Statement": [allow(json!(INVOKE), json!("arn:aws:lambda:*:*:function:CodeDeployHook_*"))]}).to_string();
    let encoded: String =
        percent_encoding::utf8_percent_encode(&plain, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    assert!(encoded.starts_with("%7B"));
    for document in [&plain, &encoded] {
        let p = Policy::from_iam("p", document);
        assert_eq!(on_alias(vec![p]), Access::Allowed, "{document}");
    }
}

#[test]
fn glob_is_star_and_question_mark_only() {
    assert!(glob("a*c", "abbbc"));
    assert!(glob("a*", "a"));
    assert!(glob("*", ""));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "ac"));
    assert!(!glob("a*d", "abc"));
    assert!(glob("*b*b*", "abab"));
    assert!(!glob("a.c", "abc"), "a dot is a dot");
    assert!(glob(&format!("a{LITERAL_STAR}"), "a*"));
    assert!(!glob(&format!("a{LITERAL_STAR}"), "ab"));
}
