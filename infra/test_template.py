"""template.yaml: parses, and declares the table exactly as the DynamoDB adapter uses it."""

import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub …) as plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


CfnLoader.add_multi_constructor("!", _tag)


def template():
    with open(os.path.join(ROOT, "template.yaml")) as f:
        return yaml.load(f, Loader=CfnLoader)


def test_template_is_a_sam_template():
    t = template()
    assert t["AWSTemplateFormatVersion"] == "2010-09-09"
    assert t["Transform"] == "AWS::Serverless-2016-10-31"
    for name, resource in t["Resources"].items():
        assert re.match(r"^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$", resource["Type"]), name
    assert t["Globals"]["Function"]["Runtime"] == "provided.al2023"


def test_table_matches_the_adapter():
    props = template()["Resources"]["Table"]["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert gsi["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"

    # The adapter's create_table must declare the same names (a drift here breaks one or the other).
    with open(os.path.join(ROOT, "shared/src/store/dynamodb.rs")) as f:
        adapter = f.read()
    for name in ("pk", "sk", "gsi1pk", "gsi1sk"):
        assert f'attr("{name}")' in adapter
    assert 'const GSI1: &str = "gsi1";' in adapter
    assert '.attribute_name("ttl")' in adapter


def test_functions_are_wired_to_their_events_settings_and_dead_letter_queue():
    t = template()
    env = t["Globals"]["Function"]["Environment"]["Variables"]
    # Exactly what shared/src/settings.rs requires (besides AWS_REGION, which Lambda sets).
    assert set(env) == {
        "SHIPLANE_TABLE",
        "SHIPLANE_TOPIC_ARN",
        "SHIPLANE_HOOK_FUNCTION",
        "SHIPLANE_SCHEDULE_GROUP",
        "SHIPLANE_PROMOTE_FUNCTION_ARN",
        "SHIPLANE_SCHEDULER_ROLE_ARN",
    }
    with open(os.path.join(ROOT, "shared/src/settings.rs")) as f:
        settings = f.read()
    assert set(re.findall(r'required\(\s*vars,\s*"(SHIPLANE_[A-Z_]+)"', settings)) == set(env), "settings and stack agree"
    functions = {n: r for n, r in t["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    expected = {
        "AlarmFunction": ("alarm", "aws.cloudwatch", "CloudWatch Alarm State Change"),
        "ImagePushFunction": ("image-push", "aws.ecr", "ECR Image Action"),
        "DeploymentEventsFunction": ("deployment-events", "aws.ecs", "ECS Task State Change"),
    }
    assert set(functions) == set(expected) | {"ReconcileFunction", "DeployHookFunction", "PromoteFunction"}
    permission = t["Resources"]["AlarmActionPermission"]["Properties"]
    assert permission["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"
    ended = functions["DeploymentEventsFunction"]["Properties"]["Events"]["DeploymentEnded"]["Properties"]["Pattern"]
    assert ended["source"] == ["aws.codedeploy"]
    assert ended["detail-type"] == ["CodeDeploy Deployment State-change Notification"]
    rolling = functions["DeploymentEventsFunction"]["Properties"]["Events"]["ServiceDeploymentEnded"]["Properties"]["Pattern"]
    assert rolling["detail-type"] == ["ECS Deployment State Change"]
    assert rolling["detail"]["eventName"] == ["SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"]
    hook = functions["DeployHookFunction"]["Properties"]
    assert hook["CodeUri"] == "target/lambda/deploy-hook/"
    aliases = {r["Properties"]["Name"] for r in t["Resources"].values() if r["Type"] == "AWS::Lambda::Alias"}
    assert aliases == {"BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"}
    invoke = t["Resources"]["DeployHookInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [st["Action"] for st in invoke] == ["lambda:InvokeFunction"]
    assert len(invoke[0]["Resource"]) == 5, "exactly the five aliases"
    reconcile = functions["ReconcileFunction"]["Properties"]
    assert reconcile["CodeUri"] == "target/lambda/reconcile/"
    (schedule,) = reconcile["Events"].values()
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert reconcile["DeadLetterQueue"]["Type"] == "SQS"
    for name, (crate, source, detail_type) in expected.items():
        props = functions[name]["Properties"]
        assert props["CodeUri"] == f"target/lambda/{crate}/"
        assert os.path.isdir(os.path.join(ROOT, "functions", crate)), crate
        assert props["DeadLetterQueue"]["Type"] == "SQS"
        event = next(iter(props["Events"].values()))
        assert event["Type"] == "EventBridgeRule"
        assert event["Properties"]["Pattern"]["source"] == [source]
        assert event["Properties"]["Pattern"]["detail-type"] == [detail_type]
        actions = {a for p in props["Policies"] if "Statement" in p for st in p["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
        # Every AWS call the deployer makes is allowed, and nothing broader than needed.
        for needed in ("ecs:RegisterTaskDefinition", "ecs:RunTask", "codedeploy:CreateDeployment", "iam:PassRole"):
            assert needed in actions, (name, needed)
        assert not any(a.endswith(":*") for a in actions), actions


def test_bake_timers_have_their_group_a_role_that_invokes_only_promote_and_a_policy_for_every_function():
    t = template()
    resources = t["Resources"]
    assert resources["BakeTimerGroup"]["Type"] == "AWS::Scheduler::ScheduleGroup"
    env = t["Globals"]["Function"]["Environment"]["Variables"]
    assert env["SHIPLANE_SCHEDULE_GROUP"] == {"Ref": "BakeTimerGroup"}
    promote = resources["PromoteFunction"]["Properties"]
    assert promote["FunctionName"] == "shiplane-promote"
    assert promote["CodeUri"] == "target/lambda/promote/"
    assert os.path.isdir(os.path.join(ROOT, "functions", "promote"))
    assert env["SHIPLANE_PROMOTE_FUNCTION_ARN"]["Sub"].endswith(":function:shiplane-promote")
    role = resources["BakeTimerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    (policy,) = role["Policies"]
    (invoke,) = policy["PolicyDocument"]["Statement"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"]["Sub"].endswith(":function:shiplane-promote"), "only the promote function"
    timers = resources["BakeTimerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert timers[0]["Action"] == ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    assert "schedule/${BakeTimerGroup}/*" in timers[0]["Resource"]["Sub"]
    assert timers[1]["Action"] == "iam:PassRole"
    assert timers[1]["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    for name, f in functions.items():
        assert {"Ref": "BakeTimerPolicy"} in f["Properties"]["Policies"], name
    outputs = t["Outputs"]
    for output in ("ScheduleGroupName", "PromoteFunctionArn", "SchedulerRoleArn"):
        assert output in outputs
