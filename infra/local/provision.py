"""Makes the local AWS look like an account Shiplane is deployed to, for tests and the demo.

    provision.py account --pipeline FILE [--topic NAME --schedule-group NAME]
                                                           create what the pipeline names
    provision.py topic --name NAME                         a topic with an SQS inbox
    provision.py stack --name NAME --pipeline FILE         the account, and a stack NAME with template.yaml's outputs
    provision.py push --repository R --tag T               push an image; print the ECR event
    provision.py receive --queue-url URL                   print and delete SNS notifications
    provision.py task-stopped --cluster C --task-arn A --exit-code N
                                                           stop a task; print its ECS event
    provision.py deployment-status --id D --status S       move a CodeDeploy deployment
    provision.py calls [--reset | --waves | --latency MS]  AWS calls served, by operation, or in
                                                           sequential round trips; answers' delay
    provision.py reports                                   CodeDeploy hook reports, stops, continues
    provision.py schedules                                 Scheduler schedules created, fired, deleted
    provision.py fire-schedules [--now ISO]                fire the due one-time schedules; print them
    provision.py faults [--seed N --rates JSON --next JSON] inject transient faults; print those injected
    provision.py alarm --name N --state ALARM|OK           create a CloudWatch alarm if missing; set its state
    provision.py hook-function --name N [--hooks H ...]    the deploy-hook function and an alias per hook
    provision.py task-set --arn A --running N --desired N  give a task set ECS's running and desired counts
    provision.py lambda-answer --function F --payload JSON [--error E]
                                                           script what invoking F returns
    provision.py refuse --operation UpdateSchedule|PutTargets --name N
                                                           AccessDenied for that schedule's or rule's updates

Everything goes to $AWS_ENDPOINT_URL (the emulator); nothing here runs against real AWS.
Each command prints JSON on stdout.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tomllib
import urllib.request
import uuid
import zipfile
from datetime import datetime, timezone

import boto3
import botocore.config

REGION = os.environ.get("AWS_REGION", "us-east-1")
ACCOUNT = "123456789012"  # moto's default account
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role"


def endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    if not url.startswith("http://127.0.0.1:"):
        sys.exit("provision.py only talks to the local emulator: set AWS_ENDPOINT_URL=http://127.0.0.1:PORT")
    return url


def client(name: str):
    # Plenty of retries: while a test injects faults into the local AWS, this script plays
    # AWS's own part and must not be what fails.
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 12})
    return boto3.client(name, endpoint_url=endpoint(), region_name=REGION, config=config)


def stages(pipeline: dict):
    """Yields (service name, service table, environment, merged stage table)."""
    defaults = pipeline.get("defaults", {})
    for name, service in pipeline.get("services", {}).items():
        for env, own in service.get("environments", {}).items():
            yield name, service, env, {**defaults.get(env, {}), **own}


def container_definitions(name: str, repository: str, port: int | None, with_sidecar: bool = True):
    main = {
        "name": name,
        "image": f"{REGISTRY}/{repository}:bootstrap",
        "essential": True,
        "memory": 256,
        "environment": [{"name": "LOG_LEVEL", "value": "info"}],
        "secrets": [{"name": "DB_PASSWORD", "valueFrom": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/db-password"}],
    }
    if port:
        main["portMappings"] = [{"containerPort": port, "protocol": "tcp"}]
    defs = [main]
    if with_sidecar:
        defs.append({"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", "essential": False})
    return defs


def topic_with_inbox(name: str) -> dict:
    """An SNS topic and an SQS queue subscribed to it, to read what was published."""
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {"topic_arn": topic, "queue_url": queue}


def topic(args) -> dict:
    return topic_with_inbox(args.name)


def service_role(iam) -> str:
    """The deployment groups' service role, as an ECS blue/green group's should be: trusting
    CodeDeploy, with AWS's managed AWSCodeDeployRoleForECSLimited (which may invoke the
    deploy-hook when it is named CodeDeployHook_*, as `shiplane doctor` checks)."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "codedeploy.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        iam.create_role(RoleName="codedeploy", AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    iam.attach_role_policy(RoleName="codedeploy", PolicyArn="arn:aws:iam::aws:policy/AWSCodeDeployRoleForECSLimited")
    return f"{ROLE}/codedeploy"


def account(args) -> dict:
    with open(args.pipeline, "rb") as f:
        pipeline = tomllib.load(f)
    ec2, ecr, ecs, cd = (client(n) for n in ("ec2", "ecr", "ecs", "codedeploy"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=f"shiplane-{uuid.uuid4().hex[:8]}", Description="shiplane", VpcId=vpc)["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg], "assignPublicIp": "DISABLED"}}
    created = {"repositories": set(), "clusters": set(), "services": [], "families": set(), "groups": []}
    role = service_role(client("iam"))

    for name, service, env, stage in stages(pipeline):
        repository = service["repository"]
        if repository not in created["repositories"]:
            try:
                ecr.create_repository(repositoryName=repository)
            except ecr.exceptions.RepositoryAlreadyExistsException:
                pass
            created["repositories"].add(repository)
        kind = service["kind"]
        cluster = stage.get("cluster")
        if cluster and cluster not in created["clusters"]:
            ecs.create_cluster(clusterName=cluster)
            created["clusters"].add(cluster)
        if kind in ("blue-green", "rolling"):
            family = stage["service"]
            blue_green = kind == "blue-green"
            ecs.register_task_definition(
                family=family,
                taskRoleArn=f"{ROLE}/{name}-task",
                executionRoleArn=f"{ROLE}/{name}-execution",
                networkMode="awsvpc" if blue_green else "bridge",
                requiresCompatibilities=["FARGATE"] if blue_green else ["EC2"],
                cpu="256",
                memory="512",
                containerDefinitions=container_definitions(service["container"], repository, service.get("port")),
            )
            created["families"].add(family)
            params = dict(cluster=cluster, serviceName=stage["service"], taskDefinition=family, desiredCount=1)
            if blue_green:
                params.update(
                    launchType="FARGATE",
                    deploymentController={"type": "CODE_DEPLOY"},
                    networkConfiguration=network,
                )
            ecs.create_service(**params)
            created["services"].append(f"{cluster}/{stage['service']}")
            if blue_green:
                target = stage["codedeploy"]
                try:
                    cd.create_application(applicationName=target["application"], computePlatform="ECS")
                except cd.exceptions.ApplicationAlreadyExistsException:
                    pass
                # As an ECS blue/green group should be (what `shiplane doctor` and `config
                # apply` check): rolled back on failure and on a stop, the blue task set
                # terminated after a success.
                cd.create_deployment_group(
                    applicationName=target["application"],
                    deploymentGroupName=target["deployment_group"],
                    serviceRoleArn=role,
                    deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                    ecsServices=[{"serviceName": stage["service"], "clusterName": cluster}],
                    autoRollbackConfiguration={
                        "enabled": True,
                        "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"],
                    },
                    blueGreenDeploymentConfiguration={
                        "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5},
                        "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
                    },
                )
                created["groups"].append(f"{target['application']}/{target['deployment_group']}")
        if "migration" in stage and stage["migration"]["family"] not in created["families"]:
            m = stage["migration"]
            # moto forces awsvpc on Fargate families and then cannot run them, so migrations
            # here are EC2 tasks in bridge mode, placed on a registered container instance.
            instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="m5.large")["Instances"][0]
            ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]}))
            ecs.register_task_definition(
                family=m["family"],
                networkMode="bridge",
                requiresCompatibilities=["EC2"],
                cpu="256",
                memory="512",
                containerDefinitions=container_definitions(m.get("container") or service.get("container") or "app", repository, None, with_sidecar=False),
            )
            created["families"].add(m["family"])
        for family in stage.get("task_families", []):
            if family not in created["families"]:
                ecs.register_task_definition(family=family, cpu="256", memory="512", containerDefinitions=container_definitions("job", repository, None))
                created["families"].add(family)

    # Bake timers: the stack's schedule group, and the promote function and role the
    # timers name (the tests deliver a fired timer to the function themselves).
    group = args.schedule_group
    client("scheduler").create_schedule_group(Name=group)
    inbox = topic_with_inbox(args.topic)
    topic, queue = inbox["topic_arn"], inbox["queue_url"]
    return {
        "registry": REGISTRY,
        "topic_arn": topic,
        "queue_url": queue,
        "schedule_group": group,
        "promote_function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shiplane-promote",
        "scheduler_role_arn": f"{ROLE}/shiplane-scheduler",
        "vpc": vpc,
        "subnet": subnet,
        "security_group": sg,
        **{k: sorted(v) if isinstance(v, set) else v for k, v in created.items()},
    }


HOOKS = ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"]


def hook_function(args) -> dict:
    """The deploy-hook function as the stack makes it: the function (its code a stand-in:
    tests run the real binary behind a local Runtime API) and one alias per lifecycle hook."""
    iam, lam = client("iam"), client("lambda")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        role = iam.create_role(RoleName=f"{args.name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName=f"{args.name}-role")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    try:
        arn = lam.create_function(FunctionName=args.name, Runtime="provided.al2023", Role=role, Handler="bootstrap",
                                  Code={"ZipFile": code.getvalue()})["FunctionArn"]
    except lam.exceptions.ResourceConflictException:
        arn = lam.get_function(FunctionName=args.name)["Configuration"]["FunctionArn"]
    for hook in args.hooks or HOOKS:
        try:
            lam.create_alias(FunctionName=args.name, Name=hook, FunctionVersion="$LATEST")
        except lam.exceptions.ResourceConflictException:
            pass
    return {"function": args.name, "arn": arn, "aliases": args.hooks or HOOKS}


def stack(args) -> dict:
    """What `sam deploy` leaves in an account, for trying the CLI by hand: the account's
    resources (as `account`), the deploy-hook function, and a CloudFormation stack named
    --name whose outputs are template.yaml's, so `shiplane init --stack NAME` reads them as
    it would from AWS. The table is left to `shiplane table create` (the real stack makes it)."""
    made = account(args)
    hook_function(argparse.Namespace(name="CodeDeployHook_shiplane", hooks=None))
    outputs = {
        "TableName": args.name,
        "TopicArn": made["topic_arn"],
        "ScheduleGroupName": made["schedule_group"],
        "PromoteFunctionArn": made["promote_function_arn"],
        "SchedulerRoleArn": made["scheduler_role_arn"],
        "HookFunctionName": "CodeDeployHook_shiplane",
        # The stack's second topic; here the same one, so the walk-through reads both.
        "ChatbotTopicArn": made["topic_arn"],
    }
    # A stack needs a resource: the topic again (creating an existing topic returns it).
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": args.topic}}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    client("cloudformation").create_stack(StackName=args.name, TemplateBody=json.dumps(template))
    return {"stack": args.name, "outputs": outputs, **made}


def push(args) -> dict:
    """Pushes a (tiny, unique) image manifest and returns the event ECR would send."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023,
                "digest": "sha256:" + hashlib.sha256(f"{args.repository}:{args.tag}:{args.seed}".encode()).hexdigest(),
            },
            # moto derives the digest from the layer digests, so each push gets its own layer.
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 1024,
                    "digest": "sha256:" + hashlib.sha256(f"layer:{args.repository}:{args.tag}:{args.seed}".encode()).hexdigest(),
                }
            ],
        }
    )
    image = client("ecr").put_image(repositoryName=args.repository, imageManifest=manifest, imageTag=args.tag)["image"]
    digest = image["imageId"]["imageDigest"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": args.repository,
            "image-digest": digest,
            "action-type": "PUSH",
            "image-tag": args.tag,
            "manifest-media-type": "application/vnd.docker.distribution.manifest.v2+json",
            "artifact-media-type": "application/vnd.docker.container.image.v1+json",
        },
    }


def receive(args) -> list:
    sqs = client("sqs")
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=args.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=m["ReceiptHandle"])


def task_stopped(args) -> dict:
    """Stops a task and returns the ECS Task State Change event AWS would send for it."""
    ecs = client("ecs")
    req = urllib.request.Request(
        f"{endpoint()}/moto-api/shiplane/ecs/task-exit",
        data=json.dumps({"taskArn": args.task_arn, "exitCode": args.exit_code}).encode(),
        method="POST",
    )
    urllib.request.urlopen(req).close()
    task = ecs.describe_tasks(cluster=args.cluster, tasks=[args.task_arn])["tasks"][0]
    container = task["containers"][0]["name"] if task.get("containers") else "app"
    detail = {
        "clusterArn": task["clusterArn"],
        "taskArn": task["taskArn"],
        "taskDefinitionArn": task["taskDefinitionArn"],
        "group": task.get("group"),
        "startedBy": task.get("startedBy"),
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "stoppedAt": datetime.now(timezone.utc).isoformat(),
        "containers": [{"name": container, "exitCode": args.exit_code, "lastStatus": "STOPPED", "taskArn": task["taskArn"]}],
        "version": 3,
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [task["taskArn"]],
        "detail": detail,
    }


def _control(path: str, body: dict) -> dict:
    """POSTs `body` to one of the emulator's control routes; its JSON answer."""
    req = urllib.request.Request(f"{endpoint()}/moto-api/shiplane/{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def deployment_status(args) -> dict:
    return _control("codedeploy/deployment-status", {"deploymentId": args.id, "status": args.status})


def refuse(args) -> dict:
    return _control("refuse", {"operation": args.operation, "name": args.name})


def schedules(args) -> dict:
    """Every schedule created, fired and deleted, and the schedules that exist now."""
    with urllib.request.urlopen(f"{endpoint()}/moto-api/shiplane/scheduler/log") as resp:
        return json.loads(resp.read())


def fire_schedules(args) -> dict:
    """Fires the one-time schedules due at --now (or all): returns each one's target and
    input, for the caller to deliver; those set to delete after completion are deleted."""
    body = {"all": True} if args.now is None else {"now": args.now}
    req = urllib.request.Request(
        f"{endpoint()}/moto-api/shiplane/scheduler/fire", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def calls(args) -> dict:
    """AWS calls the emulator served since the last reset, by service.Operation (with
    --waves: grouped into sequential round trips); --latency MS makes every answer wait."""
    if args.latency is not None:
        req = urllib.request.Request(
            f"{endpoint()}/moto-api/shiplane/latency", data=json.dumps({"ms": args.latency}).encode(), method="POST"
        )
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())
    path = "/moto-api/shiplane/calls/reset" if args.reset else "/moto-api/shiplane/calls"
    if args.waves:
        path = "/moto-api/shiplane/calls/waves"
    req = urllib.request.Request(f"{endpoint()}{path}", method="POST" if args.reset else "GET")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def alarm(args) -> dict:
    cw = client("cloudwatch")
    if not cw.describe_alarms(AlarmNames=[args.name])["MetricAlarms"]:
        cw.put_metric_alarm(
            AlarmName=args.name, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    cw.set_alarm_state(AlarmName=args.name, StateValue=args.state, StateReason="set by provision.py")
    return {"alarm": args.name, "state": args.state}


def task_set(args) -> dict:
    req = urllib.request.Request(
        f"{endpoint()}/moto-api/shiplane/ecs/task-set",
        data=json.dumps({"taskSetArn": args.arn, "running": args.running, "desired": args.desired}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def lambda_answer(args) -> dict:
    body = {"function": args.function, "payload": json.loads(args.payload), "error": args.error}
    req = urllib.request.Request(f"{endpoint()}/moto-api/shiplane/lambda/answer",
                                 data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def faults(args) -> dict:
    body = None
    if args.rates is not None or args.next is not None:
        body = json.dumps({"seed": args.seed, "rates": json.loads(args.rates or "{}"),
                           "next": json.loads(args.next or "{}")}).encode()
    req = urllib.request.Request(f"{endpoint()}/moto-api/shiplane/faults", data=body, method="POST" if body else "GET")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def reports(args) -> dict:
    with urllib.request.urlopen(f"{endpoint()}/moto-api/shiplane/codedeploy/reports") as resp:
        return json.loads(resp.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("account")
    a.add_argument("--pipeline", required=True)
    a.add_argument("--topic", default="shiplane-releases")
    tp = sub.add_parser("topic")
    tp.add_argument("--name", required=True)
    # The stack's group name (template.yaml's BakeTimerGroup); tests sharing one emulator give their own.
    a.add_argument("--schedule-group", default="shiplane-bake")
    st = sub.add_parser("stack")
    st.add_argument("--name", default="shiplane")
    st.add_argument("--pipeline", required=True)
    st.add_argument("--topic", default="shiplane-releases")
    st.add_argument("--schedule-group", default="shiplane-bake")
    p = sub.add_parser("push")
    p.add_argument("--repository", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--seed", default=uuid.uuid4().hex)
    r = sub.add_parser("receive")
    r.add_argument("--queue-url", required=True)
    t = sub.add_parser("task-stopped")
    t.add_argument("--cluster", required=True)
    t.add_argument("--task-arn", required=True)
    t.add_argument("--exit-code", type=int, default=0)
    c = sub.add_parser("calls")
    c.add_argument("--reset", action="store_true")
    c.add_argument("--waves", action="store_true", help="the calls in sequential round trips")
    c.add_argument("--latency", type=float, help="every AWS answer waits this many ms")
    sub.add_parser("reports")
    sub.add_parser("schedules")
    fs = sub.add_parser("fire-schedules")
    fs.add_argument("--now", help="ISO 8601 time; schedules due by then fire (default: all)")
    al = sub.add_parser("alarm")
    al.add_argument("--name", required=True)
    al.add_argument("--state", required=True, choices=["ALARM", "OK", "INSUFFICIENT_DATA"])
    hf = sub.add_parser("hook-function")
    hf.add_argument("--name", required=True)
    hf.add_argument("--hooks", nargs="*", help="the aliases to make (default: one per lifecycle hook)")
    ts = sub.add_parser("task-set")
    ts.add_argument("--arn", required=True)
    ts.add_argument("--running", type=int, required=True)
    ts.add_argument("--desired", type=int, required=True)
    la = sub.add_parser("lambda-answer")
    la.add_argument("--function", required=True)
    la.add_argument("--payload", required=True)
    la.add_argument("--error")
    f = sub.add_parser("faults")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--rates", help='e.g. {"*": {"throttle": 0.1, "error": 0.05, "lost": 0.05}}; {} stops')
    f.add_argument("--next", help='e.g. {"codedeploy.PutLifecycleEventHookExecutionStatus": {"throttle": 2}}')
    d = sub.add_parser("deployment-status")
    d.add_argument("--id", required=True)
    d.add_argument("--status", required=True)
    rf = sub.add_parser("refuse")
    rf.add_argument("--operation", required=True, choices=["UpdateSchedule", "PutTargets"])
    rf.add_argument("--name", required=True)
    args = parser.parse_args()
    handler = {
        "account": account,
        "topic": topic,
        "stack": stack,
        "push": push,
        "receive": receive,
        "task-stopped": task_stopped,
        "deployment-status": deployment_status,
        "calls": calls,
        "reports": reports,
        "schedules": schedules,
        "fire-schedules": fire_schedules,
        "faults": faults,
        "alarm": alarm,
        "hook-function": hook_function,
        "task-set": task_set,
        "lambda-answer": lambda_answer,
        "refuse": refuse,
    }[args.command]
    json.dump(handler(args), sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
