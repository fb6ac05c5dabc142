"""The Python peer of Shiplane's image-push, for the benchmarks: an ECR push becomes a
release and a CodeDeploy deployment, with boto3, the way most teams write it.

It does the happy path of the same job (validate, read the pipeline, claim the push,
register the digest-pinned revision, create the deployment or note it queued, record the
release, notify) and none of Shiplane's lane logic, so it does less work per event.
Clients are built at import time, as Lambda guidance recommends.
"""

import json
import os
import re
import tomllib
import uuid

import boto3
from botocore.config import Config

_config = Config(retries={"max_attempts": 5, "mode": "standard"})
dynamodb = boto3.client("dynamodb", config=_config)
ecs = boto3.client("ecs", config=_config)
codedeploy = boto3.client("codedeploy", config=_config)
sns = boto3.client("sns", config=_config)

TABLE = os.environ["SHIPLANE_TABLE"]
TOPIC = os.environ["SHIPLANE_TOPIC_ARN"]
HOOK = os.environ["SHIPLANE_HOOK_FUNCTION"]
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def handler(event, context):
    detail = event.get("detail", {})
    if event.get("source") != "aws.ecr" or detail.get("action-type") != "PUSH" or detail.get("result") != "SUCCESS":
        return {"ignored": "not a successful push"}
    repository, digest, tag = detail["repository-name"], detail["image-digest"], detail.get("image-tag")
    if not DIGEST.match(digest):
        raise ValueError(f"image-digest: {digest!r} is not sha256 + 64 hex")
    if not tag:
        return {"ignored": "untagged"}
    if not TAG.match(tag):
        raise ValueError(f"image-tag: {tag!r} is not a Docker tag")

    items = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "PIPELINE"}},
        ScanIndexForward=False,
        Limit=1,
    )["Items"]
    # The newest version's head (one part) or its last part; a large file spans parts.
    head = items[0]
    if "#PART#" in head["sk"]["S"] or head.get("parts", {}).get("N", "1") != "1":
        items = dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": {"S": "PIPELINE"}, ":v": {"S": head["sk"]["S"].split("#PART#")[0]}},
        )["Items"]
    pipeline = tomllib.loads("".join(i["chunk"]["S"] for i in items))
    name = next((n for n, s in pipeline["services"].items() if s["repository"] == repository), None)
    if name is None:
        return {"ignored": f"repository {repository} is not tracked"}
    service = pipeline["services"][name]
    environment = next(e for e in pipeline["pipeline"]["environments"] if e in service["environments"])
    stage = {**pipeline.get("defaults", {}).get(environment, {}), **service["environments"][environment]}

    release = uuid.uuid4().hex
    try:
        dynamodb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": f"PEER#CLAIM#{repository}#{digest}"}, "sk": {"S": "CLAIM"}, "value": {"S": release}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return {"replayed": True}

    current = ecs.describe_services(cluster=stage["cluster"], services=[stage["service"]])["services"][0]["taskDefinition"]
    base = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    image = f"{event['account']}.dkr.ecr.{event['region']}.amazonaws.com/{repository}@{digest}"
    containers = base["containerDefinitions"]
    for c in containers:
        if c["name"] == service["container"]:
            c["image"] = image
    keep = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "volumes", "placementConstraints",
            "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode", "ephemeralStorage", "runtimePlatform")
    revision = ecs.register_task_definition(
        containerDefinitions=containers, tags=[{"key": "shiplane:release", "value": release}], **{k: base[k] for k in keep if k in base}
    )["taskDefinition"]["taskDefinitionArn"]

    target = stage["codedeploy"]
    appspec = {
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
            "TaskDefinition": revision,
            "LoadBalancerInfo": {"ContainerName": service["container"], "ContainerPort": service["port"]}}}}],
        "Hooks": [{"AfterAllowTestTraffic": HOOK}],
    }
    try:
        deployment = codedeploy.create_deployment(
            applicationName=target["application"],
            deploymentGroupName=target["deployment_group"],
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
        )["deploymentId"]
        state = "deploying"
    except codedeploy.exceptions.DeploymentLimitExceededException:
        deployment, state = None, "queued"

    doc = {"release": release, "service": name, "digest": digest, "tags": [tag], "environment": environment,
           "state": state, "deployment": deployment, "revision": revision}
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": f"PEER#{release}"}, "sk": {"S": "RELEASE"}, "doc": {"S": json.dumps(doc)}})
    sns.publish(
        TopicArn=TOPIC,
        Subject=f"shiplane: {name} {tag} in {environment}: {state}",
        Message=json.dumps(doc),
        MessageAttributes={
            "service": {"DataType": "String", "StringValue": name},
            "environment": {"DataType": "String", "StringValue": environment},
            "state": {"DataType": "String", "StringValue": state},
        },
    )
    return doc
