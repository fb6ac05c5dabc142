"""Tests of Shiplane's moto extension, against a real server over HTTP with boto3."""

import json
import threading
import urllib.request

import boto3
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
    d2 = deploy(codedeploy)
    codedeploy.stop_deployment(deploymentId=d2)
    _, reports = control(endpoint, "reports")
    assert [(s["deploymentId"], s["autoRollbackEnabled"]) for s in reports["stops"]] == [(d, True), (d2, False)]


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
