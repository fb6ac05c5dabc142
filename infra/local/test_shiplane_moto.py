"""Tests of Shiplane's moto extension, against a real server over HTTP with boto3."""

import json
import threading
import time
import urllib.request

import boto3
import botocore.config
import urllib.error
import pytest
from botocore.exceptions import ClientError

import emulator


@pytest.fixture(scope="module")
def endpoint():
    server = emulator.make(0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)


def client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def reset(endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))


@pytest.fixture
def codedeploy(endpoint):
    reset(endpoint)
    client_ = client(endpoint, "codedeploy")
    client_.create_application(applicationName="api", computePlatform="ECS")
    for group in ("api-dev", "api-prod"):
        client_.create_deployment_group(
            applicationName="api",
            deploymentGroupName=group,
            serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        )
    return client_


def deploy(client, group="api-dev"):
    appspec = {"version": 0.0, "Resources": []}
    return client.create_deployment(
        applicationName="api",
        deploymentGroupName=group,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
    )["deploymentId"]


def control(endpoint, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{endpoint}/moto-api/shiplane/codedeploy/{path}", data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_hook_status_is_recorded_once_per_execution(codedeploy, endpoint):
    d = deploy(codedeploy)
    out = codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=d, lifecycleEventHookExecutionId="hook-1", status="Succeeded"
    )
    assert out["lifecycleEventHookExecutionId"] == "hook-1"
    with pytest.raises(ClientError) as e:
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=d, lifecycleEventHookExecutionId="hook-1", status="Failed"
        )
    assert code(e) == "LifecycleEventAlreadyCompletedException"
    _, reports = control(endpoint, "reports")
    assert [(r["deploymentId"], r["lifecycleEventHookExecutionId"], r["status"]) for r in reports["hookReports"]] == [
        (d, "hook-1", "Succeeded")
    ]


def test_hook_status_for_unknown_deployment_or_bad_status_is_refused(codedeploy):
    with pytest.raises(ClientError) as e:
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId="d-NOPE", lifecycleEventHookExecutionId="h", status="Succeeded"
        )
    assert code(e) == "DeploymentDoesNotExistException"
    d = deploy(codedeploy)
    with pytest.raises(ClientError) as e:
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=d, lifecycleEventHookExecutionId="h", status="Great"
        )
    assert code(e) == "InvalidLifecycleEventHookExecutionStatusException"


def test_stop_records_rollback_and_stops(codedeploy, endpoint):
    d = deploy(codedeploy)
    out = codedeploy.stop_deployment(deploymentId=d, autoRollbackEnabled=True)
    assert out["status"] == "Succeeded"
    assert codedeploy.get_deployment(deploymentId=d)["deploymentInfo"]["status"] == "Stopped"
    with pytest.raises(ClientError) as e:
        codedeploy.stop_deployment(deploymentId=d)
    assert code(e) == "DeploymentAlreadyCompletedException"
    # The rollback is CodeDeploy's own deployment, and each names the other.
    stopped = codedeploy.get_deployment(deploymentId=d)["deploymentInfo"]
    rollback = stopped["rollbackInfo"]["rollbackDeploymentId"]
    info = codedeploy.get_deployment(deploymentId=rollback)["deploymentInfo"]
    assert (info["creator"], info["status"]) == ("codeDeployRollback", "InProgress")
    assert info["rollbackInfo"] == {"rollbackTriggeringDeploymentId": d}
    # It keeps the group busy until it ends.
    with pytest.raises(ClientError) as e:
        deploy(codedeploy)
    assert code(e) == "DeploymentLimitExceededException"
    control(endpoint, "deployment-status", {"deploymentId": rollback, "status": "Succeeded"})
    d2 = deploy(codedeploy)
    assert codedeploy.get_deployment(deploymentId=d2)["deploymentInfo"]["creator"] == "user"
    codedeploy.stop_deployment(deploymentId=d2)
    _, reports = control(endpoint, "reports")
    assert [(s["deploymentId"], s["autoRollbackEnabled"]) for s in reports["stops"]] == [(d, True), (d2, False)]
    assert reports["stops"][0]["rollbackDeploymentId"] == rollback
    assert "rollbackDeploymentId" not in reports["stops"][1]


def test_update_deployment_group_replaces_the_settings_it_is_given(codedeploy):
    group = lambda: codedeploy.get_deployment_group(applicationName="api", deploymentGroupName="api-dev")[
        "deploymentGroupInfo"
    ]
    assert group()["autoRollbackConfiguration"] == {}
    codedeploy.update_deployment_group(
        applicationName="api",
        currentDeploymentGroupName="api-dev",
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]},
        blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"},
        },
    )
    info = group()
    assert info["autoRollbackConfiguration"] == {
        "enabled": True,
        "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"],
    }
    assert info["blueGreenDeploymentConfiguration"]["terminateBlueInstancesOnDeploymentSuccess"] == {"action": "KEEP_ALIVE"}
    assert info["deploymentStyle"]["deploymentType"] == "BLUE_GREEN", "what is not given is kept"
    # Given again, a setting is replaced whole.
    codedeploy.update_deployment_group(
        applicationName="api",
        currentDeploymentGroupName="api-dev",
        autoRollbackConfiguration={"enabled": False},
    )
    assert group()["autoRollbackConfiguration"] == {"enabled": False}
    assert group()["blueGreenDeploymentConfiguration"]["terminateBlueInstancesOnDeploymentSuccess"]["action"] == "KEEP_ALIVE"
    assert group()["serviceRoleArn"] == "arn:aws:iam::123456789012:role/codedeploy"
    codedeploy.update_deployment_group(
        applicationName="api",
        currentDeploymentGroupName="api-dev",
        serviceRoleArn="arn:aws:iam::123456789012:role/other",
    )
    assert group()["serviceRoleArn"] == "arn:aws:iam::123456789012:role/other"
    assert group()["autoRollbackConfiguration"] == {"enabled": False}, "kept"
    with pytest.raises(ClientError) as e:
        codedeploy.update_deployment_group(applicationName="api", currentDeploymentGroupName="nope")
    assert e.value.response["Error"]["Code"] == "DeploymentGroupDoesNotExistException"
    with pytest.raises(ClientError) as e:
        codedeploy.update_deployment_group(applicationName="nope", currentDeploymentGroupName="api-dev")
    assert e.value.response["Error"]["Code"] == "ApplicationDoesNotExistException"


def test_iam_serves_aws_managed_policies_to_attach_and_read(endpoint):
    reset(endpoint)
    iam = client(endpoint, "iam")
    iam.create_role(RoleName="codedeploy", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    arn = "arn:aws:iam::aws:policy/AWSCodeDeployRoleForECSLimited"
    iam.attach_role_policy(RoleName="codedeploy", PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName="codedeploy")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    invoke = [s for s in document["Statement"] if "lambda:InvokeFunction" in s["Action"]]
    assert [s["Resource"] for s in invoke] == ["arn:aws:lambda:*:*:function:CodeDeployHook_*"]


def test_continue_is_recorded(codedeploy, endpoint):
    d = deploy(codedeploy)
    codedeploy.continue_deployment(deploymentId=d, deploymentWaitType="TERMINATION_WAIT")
    _, reports = control(endpoint, "reports")
    assert reports["continues"][0]["deploymentId"] == d
    assert reports["continues"][0]["deploymentWaitType"] == "TERMINATION_WAIT"


def test_second_deployment_in_a_busy_group_is_refused_until_the_first_ends(codedeploy, endpoint):
    d = deploy(codedeploy)
    with pytest.raises(ClientError) as e:
        deploy(codedeploy)
    assert code(e) == "DeploymentLimitExceededException"
    assert d in e.value.response["Error"]["Message"]
    deploy(codedeploy, group="api-prod")  # another group is not affected
    status, body = control(endpoint, "deployment-status", {"deploymentId": d, "status": "Succeeded"})
    assert (status, body["status"]) == (200, "Succeeded")
    assert codedeploy.get_deployment(deploymentId=d)["deploymentInfo"]["status"] == "Succeeded"
    deploy(codedeploy)  # the group is free again


def test_deployment_status_control_validates(codedeploy, endpoint):
    d = deploy(codedeploy)
    assert control(endpoint, "deployment-status", {"deploymentId": d, "status": "Done"})[0] == 400
    assert control(endpoint, "deployment-status", {"deploymentId": "d-NOPE", "status": "Failed"})[0] == 404
    for status in ("InProgress", "Failed"):
        assert control(endpoint, "deployment-status", {"deploymentId": d, "status": status})[0] == 200
        assert codedeploy.get_deployment(deploymentId=d)["deploymentInfo"]["status"] == status


def test_reset_clears_records(codedeploy, endpoint):
    d = deploy(codedeploy)
    codedeploy.stop_deployment(deploymentId=d)
    reset(endpoint)
    assert control(endpoint, "reports")[1] == {"hookReports": [], "stops": [], "continues": []}


def test_calls_are_counted_by_service_and_operation(codedeploy, endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/shiplane/calls/reset", method="POST"))
    d = deploy(codedeploy)
    codedeploy.get_deployment(deploymentId=d)
    codedeploy.get_deployment(deploymentId=d)
    sns = client(endpoint, "sns")
    sns.create_topic(Name="t")  # the query protocol: counted by its Action
    with urllib.request.urlopen(f"{endpoint}/moto-api/shiplane/calls") as resp:
        calls = json.loads(resp.read())
    assert calls == {"codedeploy.CreateDeployment": 1, "codedeploy.GetDeployment": 2, "sns.CreateTopic": 1}


def test_a_trace_line_per_call_says_how_long_it_waited_and_was_served(codedeploy, endpoint, monkeypatch, capsys):
    monkeypatch.setattr(emulator, "TRACE", True)
    codedeploy.list_applications()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("call ")]
    assert len(lines) == 1, lines
    words = lines[0].split()
    assert words[1] == "codedeploy.ListApplications"
    assert (words[2], words[4], words[5], words[7]) == ("waited", "ms", "served", "ms")
    assert float(words[3]) >= 0 and float(words[6]) > 0


def test_calls_in_flight_together_are_one_round_trip_and_calls_one_after_another_are_several(codedeploy, endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/shiplane/calls/reset", method="POST"))
    # With a network's latency, calls sent together surely overlap.
    post(endpoint, "/moto-api/shiplane/latency", {"ms": 100})
    d = deploy(codedeploy)
    # Three reads sent at once: one round trip, however the emulator serves them.
    clients = [client(endpoint, "codedeploy") for _ in range(3)]
    barrier = threading.Barrier(3)

    def read(c):
        barrier.wait()
        c.get_deployment(deploymentId=d)

    threads = [threading.Thread(target=read, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codedeploy.get_deployment(deploymentId=d)
    post(endpoint, "/moto-api/shiplane/latency", {"ms": 0})
    with urllib.request.urlopen(f"{endpoint}/moto-api/shiplane/calls/waves") as resp:
        out = json.loads(resp.read())
    assert out["calls"] == 5
    assert out["waves"] == [
        ["codedeploy.CreateDeployment"],
        ["codedeploy.GetDeployment"] * 3,
        ["codedeploy.GetDeployment"],
    ]


def test_round_trips_are_the_critical_path_of_the_calls():
    import emulator as e
    assert e.round_trips([]) == []
    assert e.round_trips([(0, 1, "a"), (2, 3, "b")]) == [["a"], ["b"]]
    # c waits for b, d for c: a chain beside a long call counts each of its links.
    assert e.round_trips([(0, 5, "a"), (1, 2, "b"), (3, 4, "c"), (6, 7, "d")]) == [["a", "b"], ["c"], ["d"]]
    assert e.round_trips([(0, 1, "a"), (0.5, 1.5, "b"), (1.2, 2, "c")]) == [["a", "b"], ["c"]]
    assert e.round_trips([(2, 3, "b"), (0, 1, "a")]) == [["a"], ["b"]], "sorted by arrival"


@pytest.fixture
def dynamodb(endpoint):
    reset(endpoint)
    client_ = client(endpoint, "dynamodb")
    client_.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client_.put_item(TableName="t", Item={"pk": {"S": "lane"}, "sk": {"S": "dev"}, "version": {"N": "1"}, "name": {"S": "x"}})
    return client_


def item(client, pk, sk):
    return client.get_item(TableName="t", Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True).get("Item")


def put_new(pk, sk):
    return {"Put": {"TableName": "t", "Item": {"pk": {"S": pk}, "sk": {"S": sk}},
                    "ConditionExpression": "attribute_not_exists(pk)"}}


def bump(expected, update="SET version = :next"):
    return {"Update": {"TableName": "t", "Key": {"pk": {"S": "lane"}, "sk": {"S": "dev"}},
                       "UpdateExpression": update,
                       "ConditionExpression": "version = :expected",
                       "ExpressionAttributeValues": {":expected": {"N": str(expected)}, ":next": {"N": str(expected + 1)}},
                       "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}


def test_transaction_applies_every_write(dynamodb):
    dynamodb.transact_write_items(TransactItems=[put_new("history", "1"), bump(1)])
    assert item(dynamodb, "history", "1") is not None
    assert item(dynamodb, "lane", "dev")["version"] == {"N": "2"}


def test_failed_condition_cancels_the_whole_transaction_and_names_the_item(dynamodb):
    with pytest.raises(ClientError) as e:
        dynamodb.transact_write_items(TransactItems=[put_new("history", "1"), bump(7)])
    assert code(e) == "TransactionCanceledException"
    reasons = e.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["version"] == {"N": "1"}, "ALL_OLD returns the item as it was"
    assert item(dynamodb, "history", "1") is None
    assert item(dynamodb, "lane", "dev")["version"] == {"N": "1"}


def test_conditions_see_the_state_before_the_transaction(dynamodb):
    check = {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "lane"}, "sk": {"S": "other"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}}
    dynamodb.transact_write_items(TransactItems=[check, put_new("lane", "new")])
    assert item(dynamodb, "lane", "new") is not None


def test_a_write_failing_after_others_were_applied_undoes_them(dynamodb):
    # The conditions hold; the update then fails (adding a number to a string), after the
    # put and the delete before it were applied: both are undone.
    delete = {"Delete": {"TableName": "t", "Key": {"pk": {"S": "lane"}, "sk": {"S": "dev"}}}}
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "lane"}, "sk": {"S": "prod"}, "version": {"N": "1"}})
    broken = {"Update": {"TableName": "t", "Key": {"pk": {"S": "lane"}, "sk": {"S": "prod"}},
                         "UpdateExpression": "SET version = #n + :one",
                         "ExpressionAttributeNames": {"#n": "pk"},
                         "ExpressionAttributeValues": {":one": {"N": "1"}}}}
    with pytest.raises(ClientError) as e:
        dynamodb.transact_write_items(TransactItems=[put_new("history", "1"), delete, broken])
    assert code(e) in ("ValidationException", "TransactionCanceledException")
    assert item(dynamodb, "history", "1") is None
    assert item(dynamodb, "lane", "dev") == {"pk": {"S": "lane"}, "sk": {"S": "dev"}, "version": {"N": "1"}, "name": {"S": "x"}}
    assert item(dynamodb, "lane", "prod")["version"] == {"N": "1"}


def test_two_actions_on_one_item_are_refused_and_nothing_is_written(dynamodb):
    with pytest.raises(ClientError) as e:
        dynamodb.transact_write_items(TransactItems=[put_new("history", "1"), put_new("history", "1")])
    assert code(e) == "ValidationException"
    assert item(dynamodb, "history", "1") is None


def test_a_transaction_never_copies_a_table(dynamodb, monkeypatch):
    # What makes the extension necessary: moto deep-copies each table a transaction names,
    # so a transaction on a table of N items costs O(N). The server runs in this process.
    from moto.dynamodb.models.table import Table

    def refuse(self, memo):
        raise AssertionError("a table was deep-copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    dynamodb.transact_write_items(TransactItems=[put_new("history", "1"), bump(1)])
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[put_new("history", "2"), bump(1)])
    assert item(dynamodb, "lane", "dev")["version"] == {"N": "2"}


def post(endpoint, path, body):
    req = urllib.request.Request(f"{endpoint}{path}", data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def ecs(endpoint):
    reset(endpoint)
    ecs_ = client(endpoint, "ecs")
    ec2 = client(endpoint, "ec2")
    ecs_.create_cluster(clusterName="c")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="m5.large")["Instances"][0]
    ecs_.register_container_instance(cluster="c", instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]}))
    ecs_.register_task_definition(
        family="migrate",
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[{"name": "app", "image": "r/app:1", "memory": 128}],
    )
    return ecs_


def test_run_task_with_a_client_token_starts_one_task_however_often_it_is_sent(ecs):
    first = ecs.run_task(cluster="c", taskDefinition="migrate", startedBy="s", clientToken="release-dev")["tasks"]
    again = ecs.run_task(cluster="c", taskDefinition="migrate", startedBy="s", clientToken="release-dev")["tasks"]
    assert [t["taskArn"] for t in first] == [t["taskArn"] for t in again]
    other = ecs.run_task(cluster="c", taskDefinition="migrate", startedBy="s", clientToken="release-prod")["tasks"]
    assert other[0]["taskArn"] != first[0]["taskArn"]
    untokened = ecs.run_task(cluster="c", taskDefinition="migrate", startedBy="s")["tasks"]
    assert untokened[0]["taskArn"] not in {first[0]["taskArn"], other[0]["taskArn"]}
    assert len(ecs.list_tasks(cluster="c", startedBy="s")["taskArns"]) == 3


def test_tasks_are_listed_by_service_only_when_they_are_the_services(ecs):
    started = ecs.run_task(cluster="c", taskDefinition="migrate", startedBy="s", group="service:web")["tasks"]
    other = ecs.run_task(cluster="c", taskDefinition="migrate", startedBy="s")["tasks"]
    listed = ecs.list_tasks(cluster="c", serviceName="web")["taskArns"]
    assert listed == [started[0]["taskArn"]]
    assert ecs.list_tasks(cluster="c", serviceName="api", desiredStatus="RUNNING")["taskArns"] == []
    everything = ecs.list_tasks(cluster="c")["taskArns"]
    assert set(everything) == {started[0]["taskArn"], other[0]["taskArn"]}


def test_task_definitions_are_listed_by_prefix_newest_first_and_bounded(ecs):
    for family in ["api", "api-migrate", "api", "api", "other"]:
        ecs.register_task_definition(family=family, containerDefinitions=[{"name": "app", "image": "i", "memory": 128}])
    names = lambda arns: [a.rsplit("/", 1)[1] for a in arns]
    listed = ecs.list_task_definitions(familyPrefix="api", sort="DESC", maxResults=3)["taskDefinitionArns"]
    assert names(listed) == ["api-migrate:1", "api:3", "api:2"]
    everything = ecs.list_task_definitions(familyPrefix="api")["taskDefinitionArns"]
    assert names(everything) == ["api:1", "api:2", "api:3", "api-migrate:1"]


def test_update_service_with_a_new_task_definition_or_forced_starts_a_primary_deployment(ecs):
    td = lambda: ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "app", "image": "i", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    first, second = td(), td()
    ecs.create_service(cluster="c", serviceName="web", taskDefinition=first, desiredCount=1)
    before = ecs.describe_services(cluster="c", services=["web"])["services"][0]["deployments"]
    ecs.update_service(cluster="c", service="web", taskDefinition=second)
    after = ecs.describe_services(cluster="c", services=["web"])["services"][0]["deployments"]
    primary = [d for d in after if d["status"] == "PRIMARY"]
    assert len(primary) == 1 and primary[0]["taskDefinition"] == second
    assert primary[0]["id"] != before[0]["id"]
    assert [d["taskDefinition"] for d in after if d["status"] == "ACTIVE"] == [first]

    ecs.update_service(cluster="c", service="web", taskDefinition=second)
    same = ecs.describe_services(cluster="c", services=["web"])["services"][0]["deployments"]
    assert [d["id"] for d in same] == [d["id"] for d in after], "the same revision again changes nothing"
    ecs.update_service(cluster="c", service="web", taskDefinition=second, forceNewDeployment=True)
    forced = ecs.describe_services(cluster="c", services=["web"])["services"][0]["deployments"]
    newest = [d for d in forced if d["status"] == "PRIMARY"]
    assert len(newest) == 1 and newest[0]["taskDefinition"] == second
    assert newest[0]["id"] not in {d["id"] for d in after}, "a forced deployment is a new one"
    # Forced with no revision (a restart): the one it replaces is listed as it was.
    ecs.update_service(cluster="c", service="web", forceNewDeployment=True)
    restarted = ecs.describe_services(cluster="c", services=["web"])["services"][0]["deployments"]
    [replaced] = [d for d in restarted if d["status"] == "ACTIVE"]
    assert (replaced["id"], replaced["createdAt"]) == (newest[0]["id"], newest[0]["createdAt"])
    [restart] = [d for d in restarted if d["status"] == "PRIMARY"]
    assert restart["taskDefinition"] == second and restart["id"] != newest[0]["id"]


def test_a_task_exits_with_the_code_it_is_given(ecs, endpoint):
    arn = ecs.run_task(cluster="c", taskDefinition="migrate")["tasks"][0]["taskArn"]
    status, body = post(endpoint, "/moto-api/shiplane/ecs/task-exit", {"taskArn": arn, "exitCode": 3})
    assert status == 200, body
    task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED"
    assert task["containers"][0]["exitCode"] == 3
    assert post(endpoint, "/moto-api/shiplane/ecs/task-exit", {"taskArn": "arn:nope", "exitCode": 0})[0] == 404
    assert post(endpoint, "/moto-api/shiplane/ecs/task-exit", {"taskArn": arn, "exitCode": "x"})[0] == 400


def test_injected_faults_are_transient_errors_in_each_protocol_and_repeatable(ecs, endpoint):
    def run(seed):
        assert post(endpoint, "/moto-api/shiplane/faults", {"seed": seed, "rates": {"ecs.ListClusters": {"throttle": 0.3, "error": 0.2}}})[0] == 200
        raw = boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                           aws_secret_access_key="t", config=botocore.config.Config(retries={"total_max_attempts": 1}))
        outcomes = []
        for _ in range(40):
            try:
                raw.list_clusters()
                outcomes.append("ok")
            except ClientError as e:
                outcomes.append(e.response["Error"]["Code"])
        return outcomes

    try:
        a, b = run(7), run(7)
        assert a == b, "the same seed injects the same faults"
        assert {"ok", "ThrottlingException", "InternalFailure"} == set(a)
        status, injected = post(endpoint, "/moto-api/shiplane/faults", {"seed": 7, "rates": {}})
        assert sum(injected["ecs.ListClusters"].values()) == a.count("ThrottlingException") + a.count("InternalFailure")
        # Operations without a rate are never touched.
        client(endpoint, "ecs").describe_clusters(clusters=["c"])
        # SNS speaks XML: a throttled publish is a Throttling error there too.
        post(endpoint, "/moto-api/shiplane/faults", {"seed": 1, "rates": {"sns.CreateTopic": {"throttle": 1.0}}})
        sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                           aws_secret_access_key="t", config=botocore.config.Config(retries={"total_max_attempts": 1}))
        with pytest.raises(ClientError) as e:
            sns.create_topic(Name="t")
        assert e.value.response["Error"]["Code"] == "Throttling"
        # Scheduler speaks REST JSON: the error's type is a header there.
        post(endpoint, "/moto-api/shiplane/faults", {"seed": 1, "rates": {"scheduler.GET": {"throttle": 1.0}}})
        scheduler = boto3.client("scheduler", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                                 aws_secret_access_key="t", config=botocore.config.Config(retries={"total_max_attempts": 1}))
        with pytest.raises(ClientError) as e:
            scheduler.list_schedules()
        assert e.value.response["Error"]["Code"] == "ThrottlingException"
        assert "injected" in e.value.response["Error"]["Message"]
        assert post(endpoint, "/moto-api/shiplane/faults", {"rates": {"*": {"typo": 0.1}}})[0] == 400
    finally:
        post(endpoint, "/moto-api/shiplane/faults", {})


def test_a_lost_answer_still_did_the_work(ecs, endpoint):
    try:
        post(endpoint, "/moto-api/shiplane/faults", {"seed": 1, "rates": {"ecs.CreateCluster": {"lost": 1.0}}})
        raw = boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                           aws_secret_access_key="t", config=botocore.config.Config(retries={"total_max_attempts": 1}))
        with pytest.raises(ClientError) as e:
            raw.create_cluster(clusterName="lost-answer")
        assert e.value.response["Error"]["Code"] == "InternalFailure"
    finally:
        post(endpoint, "/moto-api/shiplane/faults", {})
    names = [a.split("/")[-1] for a in client(endpoint, "ecs").list_clusters()["clusterArns"]]
    assert "lost-answer" in names, "the work was done though the caller was told it failed"


def cbor_call(endpoint, operation, body):
    import cbor2

    req = urllib.request.Request(
        f"{endpoint}/service/GraniteServiceVersion20100801/operation/{operation}",
        data=cbor2.dumps(body),
        method="POST",
        headers={
            "Content-Type": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261124/us-east-1/monitoring/aws4_request",
        },
    )
    try:
        with urllib.request.urlopen(req) as resp:
            assert resp.headers["smithy-protocol"] == "rpc-v2-cbor"
            return resp.status, cbor2.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, cbor2.loads(e.read())


def test_cloudwatch_describe_alarms_answers_in_cbor_as_current_sdks_ask(endpoint):
    reset(endpoint)
    cw = client(endpoint, "cloudwatch")
    for name in ("api-dev-5xx", "api-dev-latency", "web-dev-5xx"):
        cw.put_metric_alarm(AlarmName=name, Namespace="N", MetricName="M", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="api-dev-5xx", StateValue="ALARM", StateReason="test")
    cw.set_alarm_state(AlarmName="web-dev-5xx", StateValue="ALARM", StateReason="test")

    def names(body):
        status, out = cbor_call(endpoint, "DescribeAlarms", body)
        assert status == 200, out
        return sorted(a["AlarmName"] for a in out["MetricAlarms"])

    assert names({"StateValue": "ALARM"}) == ["api-dev-5xx", "web-dev-5xx"]
    assert names({"AlarmNames": ["api-dev-5xx", "api-dev-latency"], "StateValue": "ALARM"}) == ["api-dev-5xx"]
    assert names({"AlarmNamePrefix": "api-", "StateValue": "ALARM"}) == ["api-dev-5xx"]
    assert names({"AlarmNamePrefix": "api-"}) == ["api-dev-5xx", "api-dev-latency"]
    assert names({"StateValue": "ALARM", "AlarmTypes": ["CompositeAlarm"]}) == []
    # Each alarm says when it entered its state (a CBOR epoch timestamp) and why.
    _, out = cbor_call(endpoint, "DescribeAlarms", {"AlarmNames": ["api-dev-5xx"]})
    (alarm,) = out["MetricAlarms"]
    assert alarm["StateReason"] == "test"
    updated = alarm["StateUpdatedTimestamp"]
    assert updated.tzinfo is not None and abs(updated.timestamp() - time.time()) < 60, updated
    status, out = cbor_call(endpoint, "DeleteAlarms", {})
    assert status == 400 and out["__type"] == "UnknownOperationException"


def test_cloudwatch_metric_data_is_put_and_read_back_in_cbor(endpoint):
    import cbor2
    reset(endpoint)
    now = time.time()
    dims = [{"Name": "Service", "Value": "api"}, {"Name": "Environment", "Value": "prod"}]
    datum = lambda value, dims: {"MetricName": "ApprovalWait", "Unit": "Seconds", "Value": value,
                                 "Timestamp": cbor2.CBORTag(1, now), "Dimensions": dims}
    status, out = cbor_call(endpoint, "PutMetricData", {"Namespace": "Shiplane", "MetricData": [
        datum(30.0, dims), datum(90.0, dims), datum(5.0, dims[1:])]})
    assert status == 200, out

    def stats(dimensions, namespace="Shiplane"):
        status, out = cbor_call(endpoint, "GetMetricStatistics", {
            "Namespace": namespace, "MetricName": "ApprovalWait", "Dimensions": dimensions,
            "StartTime": cbor2.CBORTag(1, now - 600), "EndTime": cbor2.CBORTag(1, now + 600),
            "Period": 3600, "Statistics": ["SampleCount", "Sum", "Maximum"]})
        assert status == 200, out
        return [(p["SampleCount"], p["Sum"], p["Maximum"]) for p in out["Datapoints"]]

    assert stats(dims) == [(2.0, 120.0, 90.0)], "the two values of api in prod, not the other's"
    assert stats(dims[1:]) == [(1.0, 5.0, 5.0)]
    assert stats(dims, namespace="Other") == []
    status, out = cbor_call(endpoint, "PutMetricData", {"MetricData": []})
    assert status == 400 and out["__type"] == "InvalidParameterValue", out


def test_the_next_calls_of_an_operation_can_be_made_to_fail_for_certain(ecs, endpoint):
    try:
        post(endpoint, "/moto-api/shiplane/faults", {"next": {"ecs.ListClusters": {"throttle": 2}}})
        raw = boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                           aws_secret_access_key="t", config=botocore.config.Config(retries={"total_max_attempts": 1}))
        outcomes = []
        for _ in range(4):
            try:
                raw.list_clusters()
                outcomes.append("ok")
            except ClientError as e:
                outcomes.append(e.response["Error"]["Code"])
        assert outcomes == ["ThrottlingException", "ThrottlingException", "ok", "ok"]
        assert post(endpoint, "/moto-api/shiplane/faults", {"next": {"x": {"throttle": -1}}})[0] == 400
    finally:
        post(endpoint, "/moto-api/shiplane/faults", {})


def test_a_task_set_reports_the_counts_it_is_given(ecs, endpoint):
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "app", "image": "r/app:1", "memory": 128}])
    ecs.create_service(cluster="c", serviceName="web", taskDefinition="web", desiredCount=2,
                       deploymentController={"type": "EXTERNAL"})
    arn = ecs.create_task_set(cluster="c", service="web", taskDefinition="web", externalId="d-1")["taskSet"]["taskSetArn"]
    status, body = post(endpoint, "/moto-api/shiplane/ecs/task-set", {"taskSetArn": arn, "running": 1, "desired": 2})
    assert status == 200 and body["stability"] == "STABILIZING", body
    (task_set,) = ecs.describe_services(cluster="c", services=["web"])["services"][0]["taskSets"]
    assert (task_set["runningCount"], task_set["computedDesiredCount"], task_set["stabilityStatus"]) == (1, 2, "STABILIZING")
    assert task_set["externalId"] == "d-1"
    post(endpoint, "/moto-api/shiplane/ecs/task-set", {"taskSetArn": arn, "running": 2, "desired": 2})
    (task_set,) = ecs.describe_services(cluster="c", services=["web"])["services"][0]["taskSets"]
    assert task_set["stabilityStatus"] == "STEADY_STATE"
    assert post(endpoint, "/moto-api/shiplane/ecs/task-set", {"taskSetArn": "arn:nope", "running": 1, "desired": 1})[0] == 404


def test_lambda_invoke_returns_the_scripted_answer(endpoint):
    reset(endpoint)
    lam = client(endpoint, "lambda")
    post(endpoint, "/moto-api/shiplane/lambda/answer", {"function": "api-smoke", "payload": {"passed": 12}})
    out = lam.invoke(FunctionName="api-smoke", Payload=b"{}")
    assert json.loads(out["Payload"].read()) == {"passed": 12}
    assert "FunctionError" not in out
    post(endpoint, "/moto-api/shiplane/lambda/answer", {"function": "api-smoke", "payload": {"errorMessage": "2 failed"}, "error": "Unhandled"})
    out = lam.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:api-smoke", Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    assert post(endpoint, "/moto-api/shiplane/lambda/answer", {"payload": 1})[0] == 400


def scheduler_control(endpoint, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{endpoint}/moto-api/shiplane/scheduler/{path}", data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def one_time(scheduler, name, at, group="shiplane"):
    return scheduler.create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=f"at({at})",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={"Arn": "arn:aws:lambda:us-east-1:123456789012:function:promote", "RoleArn": "arn:aws:iam::123456789012:role/s", "Input": json.dumps({"n": name})},
    )


def test_schedules_are_recorded_refused_as_scheduler_refuses_and_fired_when_due(endpoint):
    reset(endpoint)
    scheduler = client(endpoint, "scheduler")
    with pytest.raises(ClientError) as e:
        one_time(scheduler, "b1", "2026-11-24T12:00:00")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    scheduler.create_schedule_group(Name="shiplane")
    with pytest.raises(ClientError) as e:
        one_time(scheduler, "bad", "tomorrow")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    one_time(scheduler, "b1", "2026-11-24T12:00:00")
    one_time(scheduler, "b2", "2026-11-24T12:05:00")
    with pytest.raises(ClientError) as e:
        one_time(scheduler, "b1", "2026-11-24T12:00:00")
    assert e.value.response["Error"]["Code"] == "ConflictException"
    # Nothing is due before its minute; at it, the due one fires once and deletes itself.
    assert scheduler_control(endpoint, "fire", {"now": "2026-11-24T11:59:59Z"})["fired"] == []
    fired = scheduler_control(endpoint, "fire", {"now": "2026-11-24T12:00:00Z"})["fired"]
    assert [(f["name"], json.loads(f["input"])) for f in fired] == [("b1", {"n": "b1"})]
    assert fired[0]["target"].endswith(":function:promote")
    assert scheduler_control(endpoint, "fire", {"now": "2026-11-24T12:01:00Z"})["fired"] == []
    scheduler.delete_schedule(Name="b2", GroupName="shiplane")
    with pytest.raises(ClientError) as e:
        scheduler.delete_schedule(Name="b2", GroupName="shiplane")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    view = scheduler_control(endpoint, "log")
    assert [(r["op"], r["name"]) for r in view["log"]] == [
        ("created", "b1"), ("created", "b2"), ("fired", "b1"), ("deleted", "b1"), ("deleted", "b2"),
    ]
    assert view["schedules"] == []
    reset(endpoint)
    assert scheduler_control(endpoint, "log")["log"] == []


def test_sns_signs_every_subscription_with_one_key_made_at_start(endpoint):
    import shiplane_moto
    from moto.sns import models as sns_models

    made = shiplane_moto.signing_key()
    sns, sqs = client(endpoint, "sns"), client(endpoint, "sqs")
    for name in ("a", "b"):
        topic = sns.create_topic(Name=f"signed-{name}")["TopicArn"]
        queue = sqs.create_queue(QueueName=f"signed-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        sns.publish(TopicArn=topic, Message="hello")
        body = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
        assert body["Message"] == "hello" and body["Signature"], body
    backend = sns_models.sns_backends["123456789012"]["us-east-1"]
    subscriptions = list(backend.subscriptions.values())
    assert len(subscriptions) >= 2
    assert all(s.private_key() is made for s in subscriptions)


def test_describe_images_answers_push_times_to_the_millisecond_in_push_order(endpoint):
    reset(endpoint)
    ecr = client(endpoint, "ecr")
    ecr.create_repository(repositoryName="team/api")
    digests = []
    for n in range(2):
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": f"sha256:{n:064x}"},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": f"sha256:{n + 100:064x}"}],
            }
        )
        image = ecr.put_image(repositoryName="team/api", imageManifest=manifest, imageTag=f"v{n}")["image"]
        digests.append(image["imageId"]["imageDigest"])
        time.sleep(0.05)
    # Asked by digest, as Shiplane asks, raw: boto3 would hide the wire format.
    raw = []
    ecr.meta.events.register("after-call.ecr.DescribeImages", lambda http_response, **_: raw.append(json.loads(http_response.text)))
    details = ecr.describe_images(repositoryName="team/api", imageIds=[{"imageDigest": d} for d in digests])["imageDetails"]
    at = {d["imageDigest"]: d["imagePushedAt"] for d in details}
    assert at[digests[0]] < at[digests[1]], at
    assert (at[digests[1]] - at[digests[0]]).total_seconds() < 1, "both in one second, told apart"
    wire = [d["imagePushedAt"] for d in raw[0]["imageDetails"]]
    assert all(isinstance(t, float) for t in wire), f"seconds with a fraction: {wire}"


ECS_TARGET = {
    "Arn": "arn:aws:ecs:us-east-1:123456789012:cluster/jobs",
    "RoleArn": "arn:aws:iam::123456789012:role/jobs",
    "EcsParameters": {
        "TaskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/etl:3",
        "LaunchType": "FARGATE",
        "NetworkConfiguration": {"awsvpcConfiguration": {"Subnets": ["subnet-1"]}},
    },
}


def test_data_job_triggers_keep_their_ecs_target_and_a_refused_one_is_access_denied(endpoint):
    """What a data-job stage reads and writes: a schedule's and a rule target's whole ECS
    target kept through update; a trigger named to `refuse` refused as a missing
    iam:PassRole is, the others untouched; reset forgets the refusals."""
    reset(endpoint)
    scheduler, events = client(endpoint, "scheduler"), client(endpoint, "events")
    for name in ("nightly", "stuck"):
        scheduler.create_schedule(
            Name=name, ScheduleExpression="cron(0 3 * * ? *)", FlexibleTimeWindow={"Mode": "OFF"}, Target=ECS_TARGET
        )
    assert {s["Target"]["Arn"] for s in scheduler.list_schedules()["Schedules"]} == {ECS_TARGET["Arn"]}
    got = scheduler.get_schedule(Name="nightly")
    assert got["Target"]["EcsParameters"] == ECS_TARGET["EcsParameters"]
    moved = json.loads(json.dumps(ECS_TARGET))
    moved["EcsParameters"]["TaskDefinitionArn"] = moved["EcsParameters"]["TaskDefinitionArn"].replace(":3", ":4")
    scheduler.update_schedule(
        Name="nightly", ScheduleExpression=got["ScheduleExpression"], FlexibleTimeWindow=got["FlexibleTimeWindow"], Target=moved
    )
    assert scheduler.get_schedule(Name="nightly")["Target"]["EcsParameters"] == moved["EcsParameters"]

    events.put_rule(Name="hourly", ScheduleExpression="rate(1 hour)")
    events.put_targets(Rule="hourly", Targets=[{"Id": "etl", **ECS_TARGET}])
    assert events.list_targets_by_rule(Rule="hourly")["Targets"][0]["EcsParameters"] == ECS_TARGET["EcsParameters"]
    assert [b["Name"] for b in events.list_event_buses()["EventBuses"]] == ["default"]

    for operation, name in (("UpdateSchedule", "stuck"), ("PutTargets", "hourly")):
        assert post(endpoint, "/moto-api/shiplane/refuse", {"operation": operation, "name": name})[0] == 200
    with pytest.raises(ClientError) as e:
        scheduler.update_schedule(Name="stuck", ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"}, Target=moved)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "iam:PassRole" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        events.put_targets(Rule="hourly", Targets=[{"Id": "etl", **moved}])
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert events.list_targets_by_rule(Rule="hourly")["Targets"][0]["EcsParameters"] == ECS_TARGET["EcsParameters"]
    scheduler.update_schedule(Name="nightly", ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"}, Target=moved)
    assert post(endpoint, "/moto-api/shiplane/refuse", {"operation": "DeleteRule", "name": "x"})[0] == 400

    reset(endpoint)
    events.put_rule(Name="hourly", ScheduleExpression="rate(1 hour)")
    events.put_targets(Rule="hourly", Targets=[{"Id": "etl", **moved}])


def test_a_family_without_a_revision_is_its_newest_active_revision(endpoint):
    reset(endpoint)
    ecs = client(endpoint, "ecs")
    for n in range(3):
        ecs.register_task_definition(family="etl", containerDefinitions=[{"name": "job", "image": f"r/etl:{n}", "memory": 128}])
    assert ecs.describe_task_definition(taskDefinition="etl")["taskDefinition"]["revision"] == 3
    ecs.deregister_task_definition(taskDefinition="etl:3")
    assert ecs.describe_task_definition(taskDefinition="etl")["taskDefinition"]["revision"] == 2
    assert ecs.describe_task_definition(taskDefinition="etl:3")["taskDefinition"]["status"] == "INACTIVE"
    with pytest.raises(ClientError):
        ecs.describe_task_definition(taskDefinition="nothing")
