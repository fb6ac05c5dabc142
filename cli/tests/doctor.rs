//! `shiplane doctor` and `config apply`'s account check against the local AWS: an account
//! made as the pipeline says, then broken the ways that would break a release.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use aws_sdk_codedeploy::types::{
    AutoRollbackConfiguration, AutoRollbackEvent, BlueGreenDeploymentConfiguration,
    BlueInstanceTerminationOption, InstanceAction,
};
use serde_json::{Value, json};
use shiplane::store::ReleaseStore;
use shiplane_e2e::{
    TempDir, account, aws_config, fresh_store, pipeline_for, provision, unique_prefix,
};

/// [`pipeline_for`] with api's dev stage watching an alarm and baking (so the schedule
/// group is needed too).
fn pipeline(p: &str) -> String {
    let source = pipeline_for(p);
    let dev = format!("service = \"{p}-api-dev\"\n");
    assert!(source.contains(&dev));
    source.replace(
        &dev,
        &format!("{dev}alarms = [\"{p}-api-dev-5xx\"]\nbake = \"10m\"\n"),
    )
}

/// An account made from [`pipeline`], with its alarm and the deploy-hook function.
fn correct_account(p: &str) -> shiplane_e2e::Account {
    let made = account(&pipeline(p), &format!("{p}-releases"));
    provision(&[
        "alarm",
        "--name",
        &format!("{p}-api-dev-5xx"),
        "--state",
        "OK",
    ]);
    provision(&["hook-function", "--name", &format!("CodeDeployHook_{p}")]);
    made
}

/// The built CLI against `table`, with the account's hook function and schedule group.
fn shiplane(p: &str, made: &shiplane_e2e::Account, table: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .arg("--table")
        .arg(table)
        .args(args)
        .env("SHIPLANE_ACTOR", "ana")
        .env("SHIPLANE_HOOK_FUNCTION", format!("CodeDeployHook_{p}"))
        .env("SHIPLANE_SCHEDULE_GROUP", &made.schedule_group)
        .output()
        .expect("run shiplane")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn codedeploy() -> aws_sdk_codedeploy::Client {
    aws_sdk_codedeploy::Client::new(&aws_config().await)
}

/// Sets a group's rollback and what it does with the blue task set, as
/// `aws deploy update-deployment-group` does.
async fn set_group(p: &str, group: &str, rollback: bool, blue: InstanceAction) {
    let mut auto = AutoRollbackConfiguration::builder().enabled(rollback);
    if rollback {
        for e in [
            AutoRollbackEvent::DeploymentFailure,
            AutoRollbackEvent::DeploymentStopOnAlarm,
            AutoRollbackEvent::DeploymentStopOnRequest,
        ] {
            auto = auto.events(e);
        }
    }
    codedeploy()
        .await
        .update_deployment_group()
        .application_name(format!("{p}-api"))
        .current_deployment_group_name(group)
        .auto_rollback_configuration(auto.build())
        .blue_green_deployment_configuration(
            BlueGreenDeploymentConfiguration::builder()
                .terminate_blue_instances_on_deployment_success(
                    BlueInstanceTerminationOption::builder()
                        .action(blue)
                        .termination_wait_time_in_minutes(5)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("update the deployment group");
}

async fn iam() -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&aws_config().await)
}

/// The deploy-hook function [`correct_account`] makes, and its alias for `hook`.
fn hook_arn(p: &str, alias: Option<&str>) -> String {
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:CodeDeployHook_{p}");
    alias.map_or_else(|| arn.clone(), |a| format!("{arn}:{a}"))
}

/// A service role of `p`'s own, `{p}-codedeploy`, with one inline policy; its ARN.
async fn service_role(p: &str, policy: Value) -> String {
    let iam = iam().await;
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "codedeploy.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = iam
        .create_role()
        .role_name(format!("{p}-codedeploy"))
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create the role");
    iam.put_role_policy()
        .role_name(format!("{p}-codedeploy"))
        .policy_name("invoke")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put its policy");
    role.role().unwrap().arn().to_string()
}

/// Points a group at another service role, as `aws deploy update-deployment-group
/// --service-role-arn` does.
async fn set_service_role(p: &str, group: &str, role: &str) {
    codedeploy()
        .await
        .update_deployment_group()
        .application_name(format!("{p}-api"))
        .current_deployment_group_name(group)
        .service_role_arn(role)
        .send()
        .await
        .expect("update the deployment group");
}

/// The findings of a `--json` doctor run, as (check, environment, thing) with the fix.
fn findings(out: &Output) -> Vec<(String, String, String, String, String)> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)));
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("-").to_string();
            (
                s("severity"),
                s("check"),
                s("environment"),
                s("thing"),
                s("fix"),
            )
        })
        .collect()
}

#[tokio::test]
async fn doctor_passes_a_correct_account_and_names_each_problem_of_a_broken_one_with_its_fix() {
    let p = unique_prefix();
    let made = correct_account(&p);
    let dir = TempDir::new("shiplane-doctor");
    let good = dir.file("good.toml", &pipeline(&p));
    let good = good.to_str().unwrap();

    let out = shiplane(&p, &made, "unused", &["doctor", good]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("\ndev: ok ("), "{stdout}");
    assert!(
        stdout.contains("\nok: nothing would break a release (") && stdout.contains(" 0 warnings)"),
        "{stdout}"
    );
    let out = shiplane(&p, &made, "unused", &["--json", "doctor", good]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(findings(&out), []);

    // Broken: prod's group keeps blue and has no rollback; the file names a service that
    // is not there, a migration container the family lacks, and an alarm nobody made.
    set_group(
        &p,
        &format!("{p}-api-prod"),
        false,
        InstanceAction::KeepAlive,
    )
    .await;
    let broken = pipeline(&p)
        .replace(
            &format!("\"{p}-tiles-dev\""),
            &format!("\"{p}-tiles-gone\""),
        )
        .replace(
            "command = [\"./migrate\", \"up\"] }",
            "command = [\"./migrate\", \"up\"], container = \"migrator\" }",
        )
        .replace(
            &format!("service = \"{p}-api-prod\"\n"),
            &format!("service = \"{p}-api-prod\"\nalarms = [\"{p}-api-prod-5xx\"]\n"),
        );
    let broken = dir.file("broken.toml", &broken);
    let broken = broken.to_str().unwrap();
    // dev's group (its stage has a check) acts as a role that may invoke the function, but
    // not the alias CodeDeploy invokes.
    let role = service_role(
        &p,
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": hook_arn(&p, None)}]}),
    )
    .await;
    set_service_role(&p, &format!("{p}-api-dev"), &role).await;
    let out = shiplane(&p, &made, "unused", &["--json", "doctor", broken]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let found = findings(&out);
    let expect = |check: &str, env: &str, thing: &str, fix: &str| {
        assert!(
            found.iter().any(|(sev, c, e, t, f)| sev == "error"
                && c == check
                && e == env
                && *t == thing
                && f.contains(fix)),
            "no {check} error for {thing} in {env} with a fix containing {fix:?}: {found:#?}"
        );
    };
    let group = format!("CodeDeploy deployment group {p}-api/{p}-api-prod");
    let update = format!(
        "aws deploy update-deployment-group --application-name {p}-api --current-deployment-group-name {p}-api-prod"
    );
    expect(
        "group_rollback",
        "prod",
        &group,
        &format!(
            "{update} --auto-rollback-configuration enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_ALARM,DEPLOYMENT_STOP_ON_REQUEST"
        ),
    );
    expect(
        "group_blue",
        "prod",
        &group,
        &format!(
            "{update} --blue-green-deployment-configuration 'terminateBlueInstancesOnDeploymentSuccess={{action=TERMINATE,terminationWaitTimeInMinutes=5}}'"
        ),
    );
    expect(
        "service",
        "dev",
        &format!("ECS service {p}-dev/{p}-tiles-gone"),
        "fix services.tiles.environments.dev.service",
    );
    expect(
        "migration",
        "dev",
        &format!("task definition {p}-db-migrate"),
        "set services.db.environments.dev.migration.container to one of its containers",
    );
    expect(
        "alarm",
        "prod",
        &format!("CloudWatch alarm {p}-api-prod-5xx"),
        "or fix the name in services.api.environments.prod.alarms",
    );
    expect(
        "service_role",
        "dev",
        &format!(
            "IAM role {p}-codedeploy (the service role of CodeDeploy group {p}-api/{p}-api-dev)"
        ),
        &format!(
            "attach the stack's DeployHookInvokePolicy output to it (aws iam attach-role-policy --role-name {p}-codedeploy --policy-arn <the DeployHookInvokePolicy output>, or deploy the stack with CodeDeployServiceRoleName={p}-codedeploy), or add a statement to its policies allowing lambda:InvokeFunction on {}",
            hook_arn(&p, Some("BeforeAllowTraffic"))
        ),
    );
    assert_eq!(found.len(), 6, "nothing else is wrong: {found:#?}");

    // In text: per environment, each problem and its fix; the exit says why.
    let out = shiplane(&p, &made, "unused", &["doctor", broken]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("\nprod: 3 errors ("), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  error: api: {group} keeps the blue (original) task set forever after a success (terminateBlueInstancesOnDeploymentSuccess KEEP_ALIVE)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("      fix: {update} --auto-rollback")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  error: api: IAM role {p}-codedeploy (the service role of CodeDeploy group {p}-api/{p}-api-dev) may not invoke Lambda function CodeDeployHook_{p} through its alias BeforeAllowTraffic (none of its policies allows lambda:InvokeFunction on it): CodeDeploy fails every lifecycle hook with checks there, and the deployment with it\n"
        )),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("error: 6 problems above would break a release"),
        "{}",
        text(&out.stderr)
    );

    // The fix it names, done through the same API: the correct file passes again.
    set_group(
        &p,
        &format!("{p}-api-prod"),
        true,
        InstanceAction::Terminate,
    )
    .await;
    // The fix for dev's role: the stack's DeployHookInvokePolicy, attached.
    let aliases = [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ]
    .map(|a| hook_arn(&p, Some(a)));
    let stack_policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": aliases}]});
    let iam = iam().await;
    let policy = iam
        .create_policy()
        .policy_name(format!("{p}-DeployHookInvokePolicy"))
        .policy_document(stack_policy.to_string())
        .send()
        .await
        .expect("create the stack's policy");
    iam.attach_role_policy()
        .role_name(format!("{p}-codedeploy"))
        .policy_arn(policy.policy().unwrap().arn().unwrap())
        .send()
        .await
        .expect("attach it");
    let out = shiplane(&p, &made, "unused", &["doctor", good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(" 0 warnings)"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn a_hook_function_the_roles_may_not_invoke_is_an_error_and_its_name_matters_only_unread() {
    let p = unique_prefix();
    let made = correct_account(&p);
    let other = format!("{p}-deploy-hook");
    provision(&["hook-function", "--name", &other]);
    let dir = TempDir::new("shiplane-doctor-role");
    let file = dir.file("p.toml", &pipeline(&p));
    let run = |iam: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shiplane"));
        cmd.args(["--json", "doctor", file.to_str().unwrap()])
            .env("SHIPLANE_HOOK_FUNCTION", &other)
            .env("SHIPLANE_SCHEDULE_GROUP", &made.schedule_group)
            .env("AWS_MAX_ATTEMPTS", "1");
        if let Some(endpoint) = iam {
            cmd.env("AWS_ENDPOINT_URL_IAM", endpoint);
        }
        let out = cmd.output().expect("run shiplane");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        findings(&out)
    };

    // The groups' role has AWSCodeDeployRoleForECSLimited: CodeDeployHook_* only.
    let found = run(None);
    let [(severity, check, env, thing, fix)] = &found[..] else {
        panic!("one finding: {found:#?}");
    };
    assert_eq!(
        (severity.as_str(), check.as_str(), env.as_str()),
        ("error", "service_role", "dev")
    );
    assert_eq!(
        thing,
        &format!("IAM role codedeploy (the service role of CodeDeploy group {p}-api/{p}-api-dev)")
    );
    assert!(
        fix.ends_with(&format!(
            "lambda:InvokeFunction on arn:aws:lambda:us-east-1:123456789012:function:{other}:BeforeAllowTraffic"
        )),
        "{fix}"
    );

    // IAM out of reach: the role cannot be told, so the function's name is all there is.
    let found = run(Some("http://127.0.0.1:9"));
    assert!(
        found
            .iter()
            .any(|(sev, check, _, thing, fix)| sev == "error"
                && check == "unreadable"
                && thing.starts_with("IAM role codedeploy ")
                && fix.starts_with("let your AWS identity call iam:GetRole")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|(sev, check, env, thing, _)| sev == "warning"
                && check == "hook_function"
                && env == "-"
                && *thing == format!("Lambda function {other}")),
        "{found:#?}"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[tokio::test]
async fn doctor_without_a_file_checks_the_stored_pipeline() {
    let p = unique_prefix();
    let made = correct_account(&p);
    let store = fresh_store().await;
    let table = store.table().to_string();
    let out = shiplane(&p, &made, &table, &["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("store one with `shiplane config apply FILE`"),
        "{}",
        text(&out.stderr)
    );
    shiplane_e2e::apply_pipeline(&store, pipeline(&p)).await;
    let out = shiplane(&p, &made, &table, &["doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).starts_with("checking us-east-1 against stored pipeline version 1\n"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn config_apply_refuses_a_group_that_would_not_roll_back_unless_the_file_says_so() {
    let p = unique_prefix();
    let made = correct_account(&p);
    let store = fresh_store().await;
    let table = store.table().to_string();
    set_group(
        &p,
        &format!("{p}-api-prod"),
        false,
        InstanceAction::KeepAlive,
    )
    .await;
    let dir = TempDir::new("shiplane-apply-check");
    let file = dir.file("p.toml", &pipeline(&p));
    let file = file.to_str().unwrap();

    let out = shiplane(&p, &made, &table, &["config", "apply", file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("refused: a deployment group would not roll back or keeps its blue task set forever, so nothing was stored:"),
        "{stderr}"
    );
    for fix in [
        "--auto-rollback-configuration enabled=true,events=DEPLOYMENT_FAILURE",
        "terminateBlueInstancesOnDeploymentSuccess={action=TERMINATE",
        "write keep_blue = true in services.api.environments.prod.codedeploy",
        "or apply with --no-check",
    ] {
        assert!(stderr.contains(fix), "missing {fix:?}: {stderr}");
    }
    assert!(
        !stderr.contains(&format!("{p}-api-dev")),
        "dev's group is right: {stderr}"
    );
    assert_eq!(store.pipeline().await.unwrap(), None, "nothing stored");
    let out = shiplane(&p, &made, &table, &["--json", "config", "apply", file]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "refused");

    // One opt-out covers its own setting only.
    let keep = pipeline(&p).replace(
        &format!("deployment_group = \"{p}-api-prod\" }}"),
        &format!("deployment_group = \"{p}-api-prod\", keep_blue = true }}"),
    );
    let keep = dir.file("keep.toml", &keep);
    let out = shiplane(
        &p,
        &made,
        &table,
        &["config", "apply", keep.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("has its auto-rollback off"));
    assert!(
        !text(&out.stderr).contains("KEEP_ALIVE"),
        "blue is kept on purpose: {}",
        text(&out.stderr)
    );

    // Both said: stored, the two settings noted.
    let both = pipeline(&p).replace(
        &format!("deployment_group = \"{p}-api-prod\" }}"),
        &format!(
            "deployment_group = \"{p}-api-prod\", keep_blue = true, group_rollback = false }}"
        ),
    );
    let both = dir.file("both.toml", &both);
    let out = shiplane(
        &p,
        &made,
        &table,
        &["config", "apply", both.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "note: api: CodeDeploy deployment group {p}-api/{p}-api-prod keeps the blue task set after a success (terminateBlueInstancesOnDeploymentSuccess KEEP_ALIVE), as the pipeline says (keep_blue = true)"
        )),
        "{stderr}"
    );
    assert!(text(&out.stdout).ends_with("applied pipeline version 1 (4 services) as ana\n"));
    let out = shiplane(&p, &made, &table, &["doctor"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "notes are no errors: {}",
        text(&out.stdout)
    );

    // Unchecked, the broken group is no obstacle.
    let out = shiplane(
        &p,
        &made,
        &table,
        &["--json", "config", "apply", file, "--no-check"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["version"].as_u64(), v["account_checked"].as_bool()),
        (Some(2), Some(false))
    );
}

#[tokio::test]
async fn what_aws_does_not_answer_is_no_pass_and_apply_stores_nothing_unless_unchecked() {
    let p = unique_prefix();
    let made = correct_account(&p);
    let store = fresh_store().await;
    let table = store.table().to_string();
    let dir = TempDir::new("shiplane-unreachable");
    let file = dir.file("p.toml", &pipeline(&p));
    let file = file.to_str().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shiplane"))
            .arg("--table")
            .arg(&table)
            .args(args)
            .env("SHIPLANE_ACTOR", "ana")
            .env("SHIPLANE_HOOK_FUNCTION", format!("CodeDeployHook_{p}"))
            .env("SHIPLANE_SCHEDULE_GROUP", &made.schedule_group)
            // CodeDeploy alone is out of reach (nothing listens there).
            .env("AWS_ENDPOINT_URL_CODEDEPLOY", "http://127.0.0.1:9")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .expect("run shiplane")
    };

    let out = run(&["--json", "doctor", file]);
    assert_eq!(out.status.code(), Some(1));
    let found = findings(&out);
    assert!(
        !found.is_empty()
            && found
                .iter()
                .all(|(sev, check, _, thing, fix)| sev == "error"
                    && check == "unreadable"
                    && thing.starts_with("CodeDeploy deployment group ")
                    && fix.starts_with("let your AWS identity call codedeploy:GetDeploymentGroup")),
        "{found:#?}"
    );

    let out = run(&["config", "apply", file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot check the deployment groups, so nothing was stored: ")
            && stderr.contains("or apply with --no-check"),
        "{stderr}"
    );
    assert_eq!(store.pipeline().await.unwrap(), None);
    let out = run(&["config", "apply", file, "--no-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(store.pipeline().await.unwrap().map(|s| s.version), Some(1));
}
