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


@pytest.fixture
def codedeploy(endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    client = boto3.client(
        "codedeploy",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_application(applicationName="api", computePlatform="ECS")
    for group in ("api-dev", "api-prod"):
        client.create_deployment_group(
            applicationName="api",
            deploymentGroupName=group,
            serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        )
    return client


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
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    assert control(endpoint, "reports")[1] == {"hookReports": [], "stops": [], "continues": []}


def test_calls_are_counted_by_service_and_operation(codedeploy, endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/shiplane/calls/reset", method="POST"))
    d = deploy(codedeploy)
    codedeploy.get_deployment(deploymentId=d)
    codedeploy.get_deployment(deploymentId=d)
    sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    sns.create_topic(Name="t")  # the query protocol: counted by its Action
    with urllib.request.urlopen(f"{endpoint}/moto-api/shiplane/calls") as resp:
        calls = json.loads(resp.read())
    assert calls == {"codedeploy.CreateDeployment": 1, "codedeploy.GetDeployment": 2, "sns.CreateTopic": 1}
