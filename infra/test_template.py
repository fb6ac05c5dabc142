"""template.yaml: parses, and declares the table exactly as the DynamoDB adapter uses it."""

import glob
import json
import math
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


def rust_sources(path):
    """The text of a Rust module: one file, or every .rs file of a directory module."""
    full = os.path.join(ROOT, path)
    files = [full] if full.endswith(".rs") else sorted(glob.glob(os.path.join(full, "**", "*.rs"), recursive=True))
    assert files, f"{path}: no Rust source there (moved? update this test)"
    texts = []
    for name in files:
        with open(name) as f:
            texts.append(f.read())
    return "\n".join(texts)


def template():
    with open(os.path.join(ROOT, "template.yaml")) as f:
        return yaml.load(f, Loader=CfnLoader)


def sam_builds():
    """The Makefile's SAM_FUNCTIONS: each function's logical id → the crate it is built from."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        makefile = f.read()
    listed = re.search(r"^SAM_FUNCTIONS := ((?:.*\\\n)*.*)$", makefile, re.M).group(1)
    return dict(pair.split(":") for pair in listed.replace("\\\n", " ").split())


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
    adapter = rust_sources("shared/src/store/dynamodb")
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
        "SHIPLANE_CHATBOT_TOPIC_ARN",
        "SHIPLANE_HOOK_FUNCTION",
        "SHIPLANE_SCHEDULE_GROUP",
        "SHIPLANE_PROMOTE_FUNCTION_ARN",
        "SHIPLANE_SCHEDULER_ROLE_ARN",
    }
    with open(os.path.join(ROOT, "shared/src/settings.rs")) as f:
        settings = f.read()
    required = set(re.findall(r'required\(\s*vars,\s*"(SHIPLANE_[A-Z_]+)"', settings))
    optional = {"SHIPLANE_CHATBOT_TOPIC_ARN"}
    assert f'"{next(iter(optional))}"' in settings
    assert required | optional == set(env), "settings and stack agree"
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
    # sam build runs the Makefile's build-<LogicalId>, which copies `make build`'s bootstrap
    # of that function's crate: every function has one, and every crate is deployed.
    built = sam_builds()
    assert set(built) == set(functions)
    assert sorted(built.values()) == sorted(os.listdir(os.path.join(ROOT, "functions")))
    for name, f in functions.items():
        assert f["Metadata"]["BuildMethod"] == "makefile", name
        assert f["Properties"]["CodeUri"] == ".", name
        assert os.path.isfile(os.path.join(ROOT, "functions", built[name], "Cargo.toml")), name
    aliases = {r["Properties"]["Name"] for r in t["Resources"].values() if r["Type"] == "AWS::Lambda::Alias"}
    assert aliases == {"BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"}
    invoke = t["Resources"]["DeployHookInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [st["Action"] for st in invoke] == ["lambda:InvokeFunction"]
    assert len(invoke[0]["Resource"]) == 5, "exactly the five aliases"
    reconcile = functions["ReconcileFunction"]["Properties"]
    assert built["ReconcileFunction"] == "reconcile"
    (schedule,) = reconcile["Events"].values()
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert reconcile["ReservedConcurrentExecutions"] == 1, "one pass at a time"
    # Every function: a dead-letter queue and an on-failure destination for async events.
    g = t["Globals"]["Function"]
    assert g["DeadLetterQueue"]["Type"] == "SQS"
    assert g["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    for name, (crate, source, detail_type) in expected.items():
        props = functions[name]["Properties"]
        assert built[name] == crate
        event = next(iter(props["Events"].values()))
        assert event["Type"] == "EventBridgeRule"
        assert event["Properties"]["Pattern"]["source"] == [source]
        assert event["Properties"]["Pattern"]["detail-type"] == [detail_type]


# Each function's own reserved-concurrency parameter (reconcile: one pass at a time).
CONCURRENCY = {
    "ImagePushFunction": ("ImagePushConcurrency", "ImagePush"),
    "DeploymentEventsFunction": ("DeploymentEventsConcurrency", "DeploymentEvents"),
    "PromoteFunction": ("PromoteConcurrency", "Promote"),
    "AlarmFunction": ("AlarmConcurrency", "Alarm"),
    "DeployHookFunction": ("DeployHookConcurrency", "DeployHook"),
}


def test_each_function_reserves_concurrency_for_its_own_demand():
    t = template()
    params = t["Parameters"]
    capacity = t["Metadata"]["Capacity"]
    functions = {n: r for n, r in t["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert "ReservedConcurrentExecutions" not in t["Globals"]["Function"], "no shared setting"
    assert set(functions) == set(CONCURRENCY) | {"ReconcileFunction"}
    used = []
    for name, (param, load) in CONCURRENCY.items():
        reserved = functions[name]["Properties"]["ReservedConcurrentExecutions"]
        condition, value, otherwise = reserved["If"]
        assert value == {"Ref": param}, name
        assert otherwise == {"Ref": "AWS::NoValue"}, name
        assert t["Conditions"][condition] == {"Not": [{"Equals": [{"Ref": param}, 0]}]}, name
        assert params[param]["MinValue"] == 0, "0 reserves none, for small accounts"
        used.append(param)
        # Little's law: events a minute / 60 x seconds each, concurrent executions.
        demand = math.ceil(capacity[load]["PerMinute"] / 60 * capacity[load]["Ms"] / 1000)
        assert params[param]["Default"] >= demand, (name, params[param]["Default"], demand)
        assert len(capacity[load]["Why"]) > 20, load
    assert len(set(used)) == len(used), "every function has its own setting"
    # The hook's figure is the issue's: 100 pushes a minute, checks of 30 s on 1 to 5 hooks.
    hook = capacity["DeployHook"]
    assert hook["PerMinute"] >= 100 and hook["Ms"] >= 5 * 30 * 1000
    assert params["DeployHookConcurrency"]["Default"] >= 250
    # Pushes cannot take the hook's or the alarm's share: each is reserved on its own, and
    # image-push is capped at its own reservation.
    assert params["ImagePushConcurrency"]["Default"] > 0
    assert params["AlarmConcurrency"]["Default"] >= params["ImagePushConcurrency"]["Default"]
    assert functions["ReconcileFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1
    # The defaults fit an account at Lambda's default limit (1,000), which keeps 100 unreserved.
    total = sum(params[p]["Default"] for p, _ in CONCURRENCY.values()) + 1
    assert total <= 900, total


def statements(policy):
    """A policy's statements, each conditional one (`!If [Cond, statement, !Ref
    AWS::NoValue]`) as granted when its condition holds."""
    out = []
    for st in policy["Properties"]["PolicyDocument"]["Statement"]:
        if "If" in st:  # the loader spells `!If` and `Fn::If` as "If"
            _, granted, otherwise = st["If"]
            assert otherwise == {"Ref": "AWS::NoValue"}, st
            st = granted
        out.append(st)
    return out


def actions(statement):
    a = statement["Action"]
    return [a] if isinstance(a, str) else a


def test_least_privilege_every_call_allowed_no_wildcard_action_roles_passed_only_to_ecs():
    t = template()
    resources = t["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    stage = statements(resources["StageActionsPolicy"])
    allowed = {a for st in stage for a in actions(st)}
    # Every ECS, CodeDeploy, Scheduler and EventBridge call the deployer makes
    # (shared/src/aws/deployer/, the data jobs' triggers included).
    deployer = rust_sources("shared/src/aws/deployer")
    pattern = r"\b(ecs|codedeploy|scheduler|events)\s*\.\s*([a-z_]+)\(\)"
    calls = {c for c in re.findall(pattern, deployer) if c[1] != "into"}
    assert ("ecs", "describe_services") in calls and ("codedeploy", "create_deployment") in calls
    assert ("scheduler", "update_schedule") in calls and ("events", "put_targets") in calls
    for service, call in calls:
        action = f"{service}:" + "".join(w.capitalize() for w in call.split("_"))
        assert action in allowed, action
    for name, f in functions.items():
        assert {"Ref": "StageActionsPolicy"} in f["Properties"]["Policies"], name
        assert {"Ref": "DataKeyPolicy"} in f["Properties"]["Policies"], name
    # No wildcard action anywhere.
    everything = []
    for r in resources.values():
        if r["Type"] == "AWS::IAM::ManagedPolicy":
            everything += statements(r)
        if r["Type"] == "AWS::IAM::Role":
            for p in r["Properties"].get("Policies", []):
                everything += p["PolicyDocument"]["Statement"]
        if r["Type"] == "AWS::Serverless::Function":
            for p in r["Properties"]["Policies"]:
                if isinstance(p, dict) and "Statement" in p:
                    everything += p["Statement"]
    for st in everything:
        for a in actions(st):
            assert a != "*" and not a.endswith(":*"), a
    # PassRole: only the named task roles, only to ECS tasks; the scheduler role, only to
    # Scheduler; the named trigger roles (when given), only to Scheduler and EventBridge.
    passes = [st for st in everything if "iam:PassRole" in actions(st)]
    assert len(passes) == 4
    by_service = sorted(
        (st["Condition"]["StringEquals"]["iam:PassedToService"], json.dumps(st["Resource"])) for st in passes
    )
    assert by_service == [
        ("ecs-tasks.amazonaws.com", json.dumps({"Ref": "TaskRoleArns"})),
        ("events.amazonaws.com", json.dumps({"Ref": "JobTriggerRoleArns"})),
        ("scheduler.amazonaws.com", json.dumps({"GetAtt": "BakeTimerRole.Arn"})),
        ("scheduler.amazonaws.com", json.dumps({"Ref": "JobTriggerRoleArns"})),
    ]
    # CodeDeploy writes only on the named applications' deployment groups.
    (deploy,) = [st for st in stage if "codedeploy:CreateDeployment" in actions(st)]
    assert "deploymentgroup:${CodeDeployApplicationPrefix}*" in deploy["Resource"]["Sub"]


def test_data_is_encrypted_with_shiplanes_key_and_shiplane_watches_itself():
    t = template()
    resources = t["Resources"]
    key = resources["Key"]["Properties"]
    assert key["EnableKeyRotation"] is True
    table = resources["Table"]["Properties"]
    assert table["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "Key"}}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resources["Table"]["DeletionPolicy"] == "Retain"
    assert resources["Topic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}
    assert resources["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}
    assert t["Globals"]["Function"]["KmsKeyArn"] == {"GetAtt": "Key.Arn"}
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms if a["MetricName"] == "Errors"}
    assert watched == set(functions), "an errors alarm per function"
    (dlq,) = [a for a in alarms if a["Namespace"] == "AWS/SQS"]
    assert dlq["Dimensions"][0]["Value"] == {"GetAtt": "DeadLetterQueue.QueueName"}
    for a in alarms:
        assert a["AlarmActions"] == [{"Ref": "Topic"}], a["AlarmName"]
        assert a["OKActions"] == [{"Ref": "Topic"}], a["AlarmName"]
    # Beside errors: throttles and dropped asynchronous events of every function, the
    # deploy-hook nearing its timeout, and a reconciler that stopped running.
    for metric in ("Throttles", "AsyncEventsDropped"):
        on = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms if a["MetricName"] == metric}
        assert on == set(functions), (metric, set(functions) - on)
    (duration,) = [a for a in alarms if a["MetricName"] == "Duration"]
    assert duration["Dimensions"][0]["Value"] == {"Ref": "DeployHookFunction"}
    hook_timeout_ms = resources["DeployHookFunction"]["Properties"]["Timeout"] * 1000
    assert 0.5 * hook_timeout_ms <= duration["Threshold"] < hook_timeout_ms
    (silent,) = [a for a in alarms if a["MetricName"] == "Invocations"]
    assert silent["Dimensions"][0]["Value"] == {"Ref": "ReconcileFunction"}
    assert silent["ComparisonOperator"] == "LessThanThreshold" and silent["TreatMissingData"] == "breaching"
    # Silent only when no run can have happened: the whole window is longer than the
    # longest interval the stack allows.
    window_min = silent["Period"] * silent["EvaluationPeriods"] / 60
    assert window_min > t["Parameters"]["ReconcileEveryMinutes"]["MaxValue"]
    assert silent["DatapointsToAlarm"] == silent["EvaluationPeriods"]
    # Every checkov suppression says why.
    for name, r in resources.items():
        for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, (name, skip)


def test_bake_timers_have_their_group_a_role_that_invokes_only_promote_and_a_policy_for_every_function():
    t = template()
    resources = t["Resources"]
    assert resources["BakeTimerGroup"]["Type"] == "AWS::Scheduler::ScheduleGroup"
    # One default everywhere: the CLI's (shared's constant) and the local AWS's are the stack's.
    group = resources["BakeTimerGroup"]["Properties"]["Name"]
    with open(os.path.join(ROOT, "shared/src/aws/timer.rs")) as f:
        assert f'pub const DEFAULT_SCHEDULE_GROUP: &str = "{group}";' in f.read()
    with open(os.path.join(ROOT, "infra/local/provision.py")) as f:
        assert f'"--schedule-group", default="{group}"' in f.read()
    env = t["Globals"]["Function"]["Environment"]["Variables"]
    assert env["SHIPLANE_SCHEDULE_GROUP"] == {"Ref": "BakeTimerGroup"}
    promote = resources["PromoteFunction"]["Properties"]
    assert promote["FunctionName"] == "shiplane-promote"
    assert sam_builds()["PromoteFunction"] == "promote"
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


# What SAM's DynamoDBCrudPolicy template grants on the table (its published definition in
# aws-sam-translator's policy_templates.json).
# TransactWriteItems is authorized item by item: a Put needs PutItem, an Update
# UpdateItem, a ConditionCheck ConditionCheckItem. Creating the table is for the emulator
# and accounts without the stack.
STORE_CALL_ACTIONS = {
    "transact_write_items": set(),
    "create_table": set(),
    "update_time_to_live": set(),
}
TRANSACT_ITEM_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
                         "ConditionCheck": "dynamodb:ConditionCheckItem", "Delete": "dynamodb:DeleteItem"}


def test_every_function_may_make_exactly_the_calls_the_store_makes():
    t = template()
    store = rust_sources("shared/src/store/dynamodb")
    calls = set(re.findall(r"\.\s*(get_item|batch_get_item|query|update_item|put_item|delete_item|"
                           r"transact_write_items|scan|batch_write_item|create_table|update_time_to_live)\(\)", store))
    assert {"batch_get_item", "update_item", "transact_write_items", "get_item", "query"} <= calls
    needed = set()
    for call in calls:
        needed |= STORE_CALL_ACTIONS.get(call, {"dynamodb:" + "".join(w.capitalize() for w in call.split("_"))})
    items = set(re.findall(r"\b(Put|Update|Delete|ConditionCheck)::builder\(\)", store))
    assert {"Put", "ConditionCheck"} <= items
    needed |= {TRANSACT_ITEM_ACTIONS[i] for i in items}
    (grant,) = statements(t["Resources"]["TableAccessPolicy"])
    assert set(actions(grant)) == needed, set(actions(grant)) ^ needed
    assert grant["Resource"] == [{"GetAtt": "Table.Arn"}, {"Sub": "${Table.Arn}/index/*"}]
    for name, r in t["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            policies = r["Properties"]["Policies"]
            assert {"Ref": "TableAccessPolicy"} in policies, name
            assert not any(isinstance(p, dict) and "DynamoDBCrudPolicy" in p for p in policies), name


def test_each_function_logs_to_its_own_group_kept_for_the_retention_and_encrypted():
    t = template()
    resources = t["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 6
    for name, f in functions.items():
        logging = f["Properties"]["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        group = resources[logging["LogGroup"]["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup", name
        assert group["DeletionPolicy"] == "Delete", name
        props = group["Properties"]
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert props["KmsKeyId"] == {"GetAtt": "Key.Arn"}, name
        # The group Lambda writes to: /aws/lambda/<the function's name>.
        fn = f["Properties"]["FunctionName"]
        fn = "${DeployHookFunctionName}" if fn == {"Ref": "DeployHookFunctionName"} else fn
        assert props["LogGroupName"] == {"Sub": f"/aws/lambda/{fn}"}, name
    assert t["Parameters"]["LogRetentionDays"]["Default"] == 365
    # The key lets CloudWatch Logs use it for those groups only.
    (logs,) = [st for st in resources["Key"]["Properties"]["KeyPolicy"]["Statement"] if st["Sid"] == "LogsUseIt"]
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]["Sub"].endswith(
        ":log-group:/aws/lambda/*")


def test_image_push_may_read_the_push_times_it_asks_ecr_for_and_nothing_else_may():
    t = template()
    with open(os.path.join(ROOT, "shared/src/aws/push_clock/sdk.rs")) as f:
        clock = f.read()
    calls = set(re.findall(r"\.\s*([a-z_]+_images)\(\)", clock))
    assert calls == {"describe_images"}, calls
    granted = {}
    for name, r in t["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            for p in r["Properties"]["Policies"]:
                if isinstance(p, dict) and "Statement" in p:
                    for st in p["Statement"]:
                        if any(a.startswith("ecr:") for a in actions(st)):
                            granted[name] = (actions(st), st["Resource"])
    assert list(granted) == ["ImagePushFunction"], granted
    acts, resource = granted["ImagePushFunction"]
    assert acts == ["ecr:DescribeImages"]
    assert ":repository/" in resource["Sub"]


def _dashboard():
    """The dashboard's body as JSON, each ${...} of its !Sub kept as the name it refers to."""
    body = template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Sub"]
    refs = re.findall(r"\$\{([^}]*)\}", body)
    return json.loads(re.sub(r"\$\{([^}]*)\}", r"\1", body)), refs


def test_dashboard_shows_every_release_metric_and_each_functions_health():
    t = template()
    dashboard, refs = _dashboard()
    resources = t["Resources"]
    for ref in refs:
        name = ref.split(".")[0]
        assert name.startswith("AWS::") or name in resources, f"${{{ref}}} names nothing"
    text = json.dumps(dashboard)

    # Every metric the functions emit (shared/src/metrics/mod.rs) is on the dashboard.
    with open(os.path.join(ROOT, "shared/src/metrics/mod.rs")) as f:
        emitted = set(re.findall(r'Metric::(?:count|new)\(\s*"(\w+)"', f.read()))
    assert len(emitted) == 8, emitted
    for name in emitted:
        assert f'MetricName=\\"{name}\\"' in text, f"{name} is not on the dashboard"

    # Shiplane's own health: errors, throttles and duration of every function, DLQ depth.
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 6
    for metric in ("Errors", "Throttles", "Duration"):
        (widget,) = [
            w for w in dashboard["widgets"]
            if w["type"] == "metric" and any(m[:2] == ["AWS/Lambda", metric] for m in w["properties"]["metrics"])
        ]
        shown = {m[3] for m in widget["properties"]["metrics"]}
        assert shown == {f"{f}" for f in functions}, (metric, shown)
    assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "DeadLetterQueue.QueueName"] in [
        m[:4] for w in dashboard["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]
    ]
    for w in dashboard["widgets"]:
        assert w["x"] + w["width"] <= 24, w


def test_init_reads_outputs_the_stack_has():
    """`shiplane init --stack` (cli/src/commands/init.rs STACK_OUTPUTS) and the local stand-in
    stack (provision.py stack) name exactly the outputs template.yaml declares for the CLI."""
    outputs = set(template()["Outputs"])
    with open(os.path.join(ROOT, "cli/src/commands/init.rs")) as f:
        cli = f.read()
    listed = re.search(r"const STACK_OUTPUTS: \[&str; \d+\] = \[(.*?)\];", cli, re.S).group(1)
    wanted = set(re.findall(r'"([A-Za-z]+)"', listed))
    assert wanted <= outputs, wanted - outputs
    with open(os.path.join(ROOT, "infra/local/provision.py")) as f:
        provision = f.read()
    for key in wanted:
        assert f'"{key}":' in provision, key


def test_every_role_the_stack_creates_carries_the_permissions_boundary_when_given():
    t = template()
    boundary = {"If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]}
    assert t["Conditions"]["HasPermissionsBoundary"] == {"Not": [{"Equals": [{"Ref": "PermissionsBoundaryArn"}, ""]}]}
    assert t["Parameters"]["PermissionsBoundaryArn"]["Default"] == ""
    # The functions' roles (SAM makes one per function from the Globals).
    assert t["Globals"]["Function"]["PermissionsBoundary"] == boundary
    resources = t["Resources"]
    roles = [n for n, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert roles, "the bake timers' role at least"
    for name in roles:
        assert resources[name]["Properties"]["PermissionsBoundary"] == boundary, name
    # The roles SAM makes for events: a ScheduleV2 schedule's.
    for name, r in resources.items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        assert "PermissionsBoundary" not in r["Properties"], f"{name}: the Globals' setting, not its own"
        for event in r["Properties"].get("Events", {}).values():
            if event["Type"] == "ScheduleV2":
                assert event["Properties"]["PermissionsBoundary"] == boundary, name
