"""Shiplane's additions to moto 5.2.5, registered before the server starts.

moto lacks the CodeDeploy operations Shiplane drives, and never moves a deployment on its
own. This module adds, as AWS behaves:

- PutLifecycleEventHookExecutionStatus: recorded per hook execution; a second report for
  the same execution fails with LifecycleEventAlreadyCompletedException.
- StopDeployment: records whether autoRollbackEnabled was asked for; the deployment becomes
  Stopped. A completed deployment fails with DeploymentAlreadyCompletedException. With
  autoRollbackEnabled, CodeDeploy's rollback deployment is created as AWS creates it:
  creator codeDeployRollback, InProgress, and each deployment's rollbackInfo naming the
  other (GetDeployment answers it; moto leaves it empty).
- ContinueDeployment: recorded.
- CreateDeployment: refused with DeploymentLimitExceededException while the group has an
  active deployment (Created, Queued, InProgress, Baking, Ready).
- UpdateDeploymentGroup: the settings `shiplane doctor` checks and names in its fixes
  (autoRollbackConfiguration, blueGreenDeploymentConfiguration, deploymentStyle,
  deploymentConfigName, serviceRoleArn), each replaced whole when given, as CodeDeploy does; a group or
  application that does not exist answers as GetDeploymentGroup does (moto lacks the
  operation).

- TransactWriteItems: the same semantics as moto's (and DynamoDB's: every condition is
  checked against the state before the transaction; all writes or none), but undone item by
  item. moto backs up by deep-copying every table the transaction names, once per action,
  so each transaction costs time and memory in proportion to the whole table: a benchmark
  of 1,000 pushes grew the emulator past 13 GB.

- CloudWatch DescribeAlarms, PutMetricData and GetMetricStatistics in the Smithy RPC v2
  CBOR protocol, which the current AWS SDKs (Rust's among them) speak to CloudWatch and
  moto 5.2.5 does not: the request is decoded from CBOR, answered from moto's alarms
  (names, prefix, state, alarm types) or metric data, and encoded back
  (`cbor_cloudwatch`, called by the emulator's front).
- ECS ListTaskDefinitions: `familyPrefix` a prefix, `sort` (ASC by family and revision,
  or DESC) and `maxResults`, as ECS answers them (moto lists one family exactly, in
  registration order, all of it).
- ECS UpdateService with a new task definition starts a new deployment, as ECS does: a
  PRIMARY one with its own id and that task definition, the one before kept as ACTIVE (moto
  keeps one deployment and leaves its task definition as it was).
- ECS ListTasks with `serviceName`: only the service's tasks (group `service:<name>`), as
  ECS lists them; moto ignores the filter and lists every task of the cluster, so a
  migration's task would be counted as the service's (a `stop-first` migration would wait
  for itself).
- ECS RunTask with a clientToken: idempotent, as in ECS. A second RunTask with the same
  token returns the tasks the first one started instead of starting more (moto ignores the
  token, so two concurrent attempts would start two migrations).
- ECS DescribeTaskDefinition of a family without a revision answers its newest ACTIVE
  revision, as ECS does (moto answers the newest, deregistered or not): what a data-job
  trigger naming the family unpinned runs, and what a data-job stage that failed puts
  back by deregistering the revisions it registered.

- ECR images record when they were pushed to the microsecond, as ECR does, so that
  DescribeImages answers `imagePushedAt` to the millisecond (moto keeps whole seconds,
  and the image-push function asks ECR exactly to order two pushes in one second).

- EventBridge Scheduler: CreateSchedule in a group that does not exist answers
  ResourceNotFoundException (moto fails with a KeyError, an HTTP 500 the SDK retries), and
  an expression that is neither `at(yyyy-mm-ddThh:mm:ss)`, `rate(...)` nor `cron(...)`
  answers ValidationException, as Scheduler does. Every schedule created and deleted is
  recorded.

- SNS message signing: one signing key per emulator process, made when the extension is
  registered, as SNS signs with one certificate per region. moto makes a new 2048-bit RSA
  key per subscription inside the first Publish that reaches it: 20 to 200 ms, at random
  (a prime search), charged to whichever function published first to a new topic.

and control routes for tests and the demo (AWS needs none: its deployments move and its
tasks exit by themselves):

- POST /moto-api/shiplane/codedeploy/deployment-status  {"deploymentId", "status"}
  moves a deployment to Succeeded, Failed, Stopped, InProgress, Baking or Ready.
- GET  /moto-api/shiplane/codedeploy/reports
  returns {"hookReports": [...], "stops": [...], "continues": [...]}.
- POST /moto-api/shiplane/lambda/answer  {"function", "payload", "error"?}
  scripts what Lambda Invoke of that function returns (moto needs Docker to run one):
  the payload, and with `error` the X-Amz-Function-Error header of a failed function.
- POST /moto-api/shiplane/ecs/task-set  {"taskSetArn", "running", "desired", "stability"?}
  gives a task set the counts ECS reports as a replacement scales up (moto's have none).
- POST /moto-api/shiplane/ecs/task-exit  {"taskArn", "exitCode", "container"?, "reason"?}
  stops a task as ECS does when its container exits, with that exit code (moto's tasks
  always report 0), so DescribeTasks tells what the task's stop event told.

- GET  /moto-api/shiplane/scheduler/log
  returns {"log": [{"op": "created"|"deleted"|"fired", "name", "group", ...}],
  "schedules": [{"name", "group", "expression", "target", "input", "actionAfterCompletion"}]}.
- POST /moto-api/shiplane/scheduler/fire  {"now": "2026-11-24T12:00:00Z"} or {"all": true}
  fires what Scheduler would have fired by then (one-time `at()` schedules that are due):
  returns {"fired": [{"name", "group", "target", "input"}]} for the caller to deliver to
  the target, and deletes those with ActionAfterCompletion DELETE, as Scheduler does.

- POST /moto-api/shiplane/refuse  {"operation": "UpdateSchedule"|"PutTargets", "name"}
  makes every later UpdateSchedule of the schedule `name` (any group), or PutTargets on
  the rule `name` (any bus), answer AccessDeniedException, as AWS does when the caller may
  not pass the trigger's role (iam:PassRole): a data-job trigger that cannot be moved.

Records live on the CodeDeploy, Scheduler and EventBridge backends, so POST
/moto-api/reset clears them.
"""

import copy
import json
import re
import threading
import urllib.parse
import uuid
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from moto.codedeploy import models as cd_models
from moto.codedeploy.exceptions import CodeDeployException
from moto.codedeploy import responses as cd_responses
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.ecr import models as ecr_models
from moto.ecs import models as ecs_models
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.events import models as events_models
from moto.moto_api._internal import urls as moto_api_urls
from moto.scheduler import models as scheduler_models
from moto.scheduler.exceptions import ScheduleGroupNotFound, ValidationException
from moto.sns import models as sns_models

ACTIVE = {"Created", "Queued", "InProgress", "Baking", "Ready"}
SETTABLE = {"Succeeded", "Failed", "Stopped", "InProgress", "Baking", "Ready"}
HOOK_STATUSES = {"Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown"}


class _Error(CodeDeployException):
    code = 400

    def __init__(self, error_type: str, message: str):
        super().__init__(error_type, message)


def _records(backend: Any) -> dict[str, list[dict[str, Any]]]:
    if not hasattr(backend, "shiplane_records"):
        backend.shiplane_records = {"hookReports": [], "stops": [], "continues": []}
    return backend.shiplane_records


def _deployment(backend: Any, deployment_id: str | None) -> Any:
    if not deployment_id or deployment_id not in backend.deployments:
        raise _Error(
            "DeploymentDoesNotExistException",
            f"The deployment {deployment_id} could not be found.",
        )
    return backend.deployments[deployment_id]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def put_lifecycle_event_hook_execution_status(self: CodeDeployResponse) -> ActionResult:
    backend = self.codedeploy_backend
    deployment_id = self._get_param("deploymentId")
    execution_id = self._get_param("lifecycleEventHookExecutionId")
    status = self._get_param("status")
    _deployment(backend, deployment_id)
    if not execution_id:
        raise _Error(
            "InvalidLifecycleEventHookExecutionIdException",
            "A lifecycle event hook execution id is required.",
        )
    if status not in HOOK_STATUSES:
        raise _Error(
            "InvalidLifecycleEventHookExecutionStatusException",
            f"The status {status} is not valid.",
        )
    reports = _records(backend)["hookReports"]
    if any(
        r["lifecycleEventHookExecutionId"] == execution_id
        and r["status"] in ("Succeeded", "Failed")
        for r in reports
    ):
        raise _Error(
            "LifecycleEventAlreadyCompletedException",
            f"The lifecycle event hook execution {execution_id} has already completed.",
        )
    reports.append(
        {
            "deploymentId": deployment_id,
            "lifecycleEventHookExecutionId": execution_id,
            "status": status,
            "at": _now(),
        }
    )
    return ActionResult({"lifecycleEventHookExecutionId": execution_id})


def stop_deployment(self: CodeDeployResponse) -> ActionResult:
    backend = self.codedeploy_backend
    deployment_id = self._get_param("deploymentId")
    rollback = bool(self._get_param("autoRollbackEnabled", False))
    deployment = _deployment(backend, deployment_id)
    if deployment.status not in ACTIVE:
        raise _Error(
            "DeploymentAlreadyCompletedException",
            f"The deployment {deployment_id} has already completed ({deployment.status}).",
        )
    deployment.status = "Stopped"
    deployment.complete_time = cd_models.utcnow()
    record = {"deploymentId": deployment_id, "autoRollbackEnabled": rollback, "at": _now()}
    if rollback:
        # As CodeDeploy does: the rollback is a deployment of its own, created by
        # codeDeployRollback, and each names the other in rollbackInfo.
        rollback_id = backend.create_deployment(
            deployment.application_name, deployment.deployment_group_name, revision=deployment.revision
        )
        rolled = backend.deployments[rollback_id]
        rolled.creator = "codeDeployRollback"
        rolled.status = "InProgress"
        rolled.shiplane_rollback_info = {"rollbackTriggeringDeploymentId": deployment_id}
        deployment.shiplane_rollback_info = {
            "rollbackDeploymentId": rollback_id,
            "rollbackMessage": f"Deployment {deployment_id} was stopped; rolling back with {rollback_id}",
        }
        record["rollbackDeploymentId"] = rollback_id
    _records(backend)["stops"].append(record)
    return ActionResult({"status": "Succeeded", "statusMessage": "Deployment stopped"})


_original_deployment_info = cd_responses._deployment_info


def deployment_info(deployment: Any) -> dict[str, Any]:
    """moto's GetDeployment answer, with the rollbackInfo moto leaves empty."""
    info = _original_deployment_info(deployment)
    info["rollbackInfo"] = getattr(deployment, "shiplane_rollback_info", {})
    return info


def continue_deployment(self: CodeDeployResponse) -> EmptyResult:
    backend = self.codedeploy_backend
    deployment_id = self._get_param("deploymentId")
    wait_type = self._get_param("deploymentWaitType", "READY_WAIT")
    deployment = _deployment(backend, deployment_id)
    if deployment.status not in ACTIVE:
        raise _Error(
            "DeploymentAlreadyCompletedException",
            f"The deployment {deployment_id} has already completed ({deployment.status}).",
        )
    _records(backend)["continues"].append(
        {"deploymentId": deployment_id, "deploymentWaitType": wait_type, "at": _now()}
    )
    return EmptyResult()


_original_create_deployment = cd_models.CodeDeployBackend.create_deployment


def create_deployment(self: Any, application_name: str, deployment_group_name: str, *args: Any, **kwargs: Any) -> str:
    for d in self.deployments.values():
        if (
            d.application_name == application_name
            and d.deployment_group_name == deployment_group_name
            and d.status in ACTIVE
        ):
            raise _Error(
                "DeploymentLimitExceededException",
                f"The Deployment Group '{deployment_group_name}' already has an active "
                f"Deployment '{d.deployment_id}'",
            )
    return _original_create_deployment(
        self, application_name, deployment_group_name, *args, **kwargs
    )


def update_deployment_group(self: CodeDeployResponse) -> ActionResult:
    backend = self.codedeploy_backend
    group = backend.get_deployment_group(
        application_name=self._get_param("applicationName"),
        deployment_group_name=self._get_param("currentDeploymentGroupName"),
    )
    for param, attribute in (
        ("autoRollbackConfiguration", "auto_rollback_configuration"),
        ("blueGreenDeploymentConfiguration", "blue_green_deployment_configuration"),
        ("deploymentStyle", "deployment_style"),
        ("deploymentConfigName", "deployment_config_name"),
        ("serviceRoleArn", "service_role_arn"),
    ):
        value = self._get_param(param)
        if value is not None:
            setattr(group, attribute, value)
    return ActionResult({"hooksNotCleanedUp": []})


_original_run_task = EC2ContainerServiceResponse.run_task


def run_task(self: EC2ContainerServiceResponse) -> Any:
    token = self._get_param("clientToken")
    backend = self.ecs_backend
    cluster = self._get_param("cluster", "default").split("/")[-1]
    started: dict[str, list[str]] = backend.__dict__.setdefault("shiplane_client_tokens", {})
    if token and token in started:
        return ActionResult({"tasks": backend.describe_tasks(cluster, started[token]), "failures": []})
    before = set(backend.tasks.get(cluster, {}))
    result = _original_run_task(self)
    if token:
        # Requests are served one at a time, so the new tasks are this call's.
        started[token] = [arn for arn in backend.tasks.get(cluster, {}) if arn not in before]
    return result


def list_task_definitions(self: EC2ContainerServiceResponse) -> ActionResult:
    prefix = self._get_param("familyPrefix") or ""
    status = self._get_param("status", "ACTIVE")
    descending = self._get_param("sort", "ASC") == "DESC"
    limit = self._get_param("maxResults")
    found = [
        td
        for revisions in self.ecs_backend.task_definitions.values()
        for td in revisions.values()
        if td.family.startswith(prefix) and td.status == status
    ]
    found.sort(key=lambda td: (td.family, td.revision), reverse=descending)
    arns = [td.arn for td in found]
    return ActionResult({"taskDefinitionArns": arns[:limit] if limit else arns})


def list_tasks(self: EC2ContainerServiceResponse) -> ActionResult:
    service = self._get_param("serviceName")
    if not service:
        return _original_list_tasks(self)
    # A service's tasks are those in its group, `service:<name>` (moto launches none for a
    # service, so none is listed; it ignored the filter and listed every task of the
    # cluster, a migration's too).
    cluster = self._get_param("cluster", "default")
    status = self._get_param("desiredStatus")
    group = f"service:{service.split('/')[-1]}"
    tasks = self.ecs_backend.list_tasks(cluster, None, None, None, None, status)
    return ActionResult({"taskArns": [t.task_arn for t in tasks if getattr(t, "group", None) == group]})


_original_list_tasks = EC2ContainerServiceResponse.list_tasks
_original_update_service = ecs_models.EC2ContainerServiceBackend.update_service


def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
    task_definition = service_properties.get("task_definition")
    cluster = service_properties.get("cluster", "default").split("/")[-1]
    name = service_properties.get("service", "").split("/")[-1]
    before = self.services.get(f"{cluster}:{name}")
    old = getattr(before, "task_definition", None)
    # moto's forced deployment renames its PRIMARY in place: the one it replaces is kept
    # as it was (its id, its creation time), as ECS lists it.
    was = copy.deepcopy((getattr(before, "deployments", None) or [None])[0])
    force = service_properties.get("force_new_deployment") in (True, "true")
    service = _original_update_service(self, service_properties)
    if (force or (task_definition and task_definition != old)) and service.deployments:
        task_definition = task_definition or old
        primary = copy.deepcopy(service.deployments[0])
        previous = dict(was or service.deployments[0], status="ACTIVE", taskDefinition=old)
        now = datetime.now(timezone.utc)
        primary.update(
            id=f"ecs-svc/{uuid.uuid4().int % 10**19:019d}",
            taskDefinition=task_definition,
            status="PRIMARY",
            rolloutState="IN_PROGRESS",
            createdAt=now,
            updatedAt=now,
        )
        service.deployments = [primary, previous]
    return service


def _ecs_backends() -> list[Any]:
    return [b for account in ecs_models.ecs_backends.values() for b in account.values()]


def task_exit(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "POST":
        return _json(405, {"error": "POST {\"taskArn\": ..., \"exitCode\": ...}"})
    try:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size) or b"{}")
    except ValueError:
        return _json(400, {"error": "body is not JSON"})
    arn, code = body.get("taskArn"), body.get("exitCode")
    if not isinstance(code, int):
        return _json(400, {"error": "exitCode must be an integer"})
    reason = body.get("reason") or "Essential container in task exited"
    for backend in _ecs_backends():
        for cluster, tasks in backend.tasks.items():
            task = tasks.get(str(arn).split("/")[-1]) or next(
                (t for t in tasks.values() if t.task_arn == arn), None
            )
            if task is None:
                continue
            backend.stop_task(cluster, task.task_arn, reason)
            for c in task.containers:
                if body.get("container") in (None, c.name):
                    c.exitCode = code
                c.last_status = "STOPPED"
            return _json(200, {"taskArn": task.task_arn, "exitCode": code})
    return _json(404, {"error": f"no task {arn}"})


CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"
INVOKE_PREFIX = "/2015-03-31/functions/"
LAMBDA_ANSWERS: dict[str, dict[str, Any]] = {}


def scripted_invoke(environ: Any, start_response: Any) -> list[bytes] | None:
    """Lambda Invoke of a function with a scripted answer; None for any other request."""
    path = environ.get("PATH_INFO", "")
    if not (path.startswith(INVOKE_PREFIX) and path.endswith("/invocations")):
        return None
    name = urllib.parse.unquote(path[len(INVOKE_PREFIX):-len("/invocations")])
    name = name.rsplit(":function:", 1)[-1].split(":")[0]  # an ARN, a name, a qualifier
    answer = LAMBDA_ANSWERS.get(name)
    if answer is None:
        return None
    data = json.dumps(answer.get("payload")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
               ("X-Amz-Executed-Version", "$LATEST")]
    if answer.get("error"):
        headers.append(("X-Amz-Function-Error", answer["error"]))
    start_response("200 OK", headers)
    return [data]


def lambda_answer(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "POST":
        return _json(405, {"error": "POST {\"function\": ..., \"payload\": ..., \"error\"?: ...}"})
    try:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size) or b"{}")
    except ValueError:
        return _json(400, {"error": "body is not JSON"})
    if not body.get("function"):
        return _json(400, {"error": "name the function"})
    LAMBDA_ANSWERS[body["function"]] = {"payload": body.get("payload"), "error": body.get("error")}
    return _json(200, {"function": body["function"]})


def cbor_cloudwatch(environ: Any, start_response: Any, account: str, region: str) -> list[bytes]:
    """Answers a CloudWatch RPC v2 CBOR request: DescribeAlarms (the alarm reads),
    PutMetricData (the CLI's own metrics) and GetMetricStatistics (tests reading them)."""
    import cbor2
    from moto.cloudwatch.models import cloudwatch_backends

    def reply(status: str, body: dict[str, Any]) -> list[bytes]:
        data = cbor2.dumps(body)
        start_response(status, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                                ("Content-Length", str(len(data)))])
        return [data]

    operation = environ.get("PATH_INFO", "")[len(CBOR_PATH):]
    answer = {"DescribeAlarms": _cbor_describe_alarms, "PutMetricData": _cbor_put_metric_data,
              "GetMetricStatistics": _cbor_get_metric_statistics}.get(operation)
    if answer is None:
        return reply("400 Bad Request", {"__type": "UnknownOperationException",
                                         "message": "the local AWS answers only DescribeAlarms, PutMetricData and "
                                                    f"GetMetricStatistics in CBOR, not {operation}"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    request = cbor2.loads(raw) if raw else {}
    try:
        return reply("200 OK", answer(cloudwatch_backends[account][region], request))
    except (KeyError, TypeError, ValueError) as e:
        return reply("400 Bad Request", {"__type": "InvalidParameterValue", "message": f"{operation}: {e}"})


# The emulator serves requests on threads: a metric read sets data aside while it runs.
METRICS_LOCK = threading.Lock()


def _naive_utc(value: Any) -> datetime:
    """A CBOR timestamp (cbor2 decodes tag 1 to an aware datetime; a bare number is seconds)
    as the naive UTC datetime moto compares with."""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    if value.tzinfo:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _cbor_time(value: datetime) -> Any:
    """Smithy RPC v2 CBOR timestamps: tag 1, seconds since the epoch."""
    import cbor2
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return cbor2.CBORTag(1, aware.timestamp())


def _cbor_describe_alarms(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    names = request.get("AlarmNames")
    prefix = request.get("AlarmNamePrefix")
    state = request.get("StateValue")
    types = request.get("AlarmTypes") or ["MetricAlarm"]
    metric, composite = [], []
    for alarm in backend.alarms.values():
        if names and alarm.name not in names:
            continue
        if prefix and not alarm.name.startswith(prefix):
            continue
        if state and alarm.state_value != state:
            continue
        entry = {"AlarmName": alarm.name, "AlarmArn": alarm.alarm_arn, "StateValue": alarm.state_value,
                 "StateReason": alarm.state_reason}
        updated = getattr(alarm, "state_updated_timestamp", None)
        if updated is not None:
            entry["StateUpdatedTimestamp"] = _cbor_time(updated)
        if getattr(alarm, "rule", None):
            if "CompositeAlarm" in types:
                composite.append(entry)
        elif "MetricAlarm" in types:
            metric.append(entry)
    return {"MetricAlarms": metric, "CompositeAlarms": composite}


def _cbor_put_metric_data(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    data = []
    for datum in request.get("MetricData") or []:
        datum = dict(datum)
        if "Timestamp" in datum:
            datum["Timestamp"] = _naive_utc(datum["Timestamp"])
        data.append(datum)
    with METRICS_LOCK:
        backend.put_metric_data(request["Namespace"], data)
    return {}


def _cbor_get_metric_statistics(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    stats = request.get("Statistics") or []
    dimensions = request.get("Dimensions") or []
    # CloudWatch matches the exact set of dimensions; moto any superset: the others are
    # set aside for the call, under the lock every CBOR metric call takes.
    wanted = {(d["Name"], d["Value"]) for d in dimensions}
    with METRICS_LOCK:
        kept = backend.metric_data
        backend.metric_data = [m for m in kept if {(d.name, d.value) for d in m.dimensions} == wanted]
        try:
            points = backend.get_metric_statistics(
                request["Namespace"], request["MetricName"], _naive_utc(request["StartTime"]),
                _naive_utc(request["EndTime"]), int(request["Period"]), stats, dimensions,
                unit=request.get("Unit"))
        finally:
            backend.metric_data = kept
    datapoints = []
    for point in points:
        entry: dict[str, Any] = {"Timestamp": _cbor_time(point.timestamp)}
        for stat in stats:
            value = point.get_statistics_for_type(stat)
            if value is not None:
                entry[stat] = float(value)
        if point.unit:
            entry["Unit"] = point.unit
        datapoints.append(entry)
    return {"Label": request["MetricName"], "Datapoints": datapoints}


def task_set_counts(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "POST":
        return _json(405, {"error": "POST {\"taskSetArn\": ..., \"running\": N, \"desired\": N}"})
    try:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size) or b"{}")
    except ValueError:
        return _json(400, {"error": "body is not JSON"})
    running, desired = body.get("running"), body.get("desired")
    if not isinstance(running, int) or not isinstance(desired, int):
        return _json(400, {"error": "running and desired must be integers"})
    for backend in _ecs_backends():
        for service in backend.services.values():
            for task_set in getattr(service, "task_sets", []):
                if task_set.task_set_arn == body.get("taskSetArn"):
                    task_set.runningCount = running
                    task_set.computedDesiredCount = desired
                    task_set.pendingCount = max(desired - running, 0)
                    task_set.stabilityStatus = body.get("stability") or (
                        "STEADY_STATE" if running == desired else "STABILIZING")
                    return _json(200, {"taskSetArn": task_set.task_set_arn, "running": running,
                                       "desired": desired, "stability": task_set.stabilityStatus})
    return _json(404, {"error": f"no task set {body.get('taskSetArn')}"})


TRANSACT_OPS = ("ConditionCheck", "Put", "Delete", "Update")


def _transact_key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    item = op["Item"]
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    actions = []
    for entry in transact_items:
        if len(entry) != 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in TRANSACT_OPS:
            raise MockValidationException(f"Unsupported transaction operation {op_type}")
        actions.append((op_type, op, _transact_key(self, op_type, op)))

    seen = set()
    for _, op, key in actions:
        target = (op["TableName"], str(sorted(key.items())))
        if target in seen:
            raise MultipleTransactionsException()
        seen.add(target)

    # Every condition against the state before the transaction.
    errors: list[tuple[Any, Any, Any]] = []
    before = []
    for _, op, key in actions:
        current = self.get_item(op["TableName"], key)
        before.append(copy.deepcopy(current.to_json()["Attributes"]) if current else None)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current):
            old = (
                before[-1]
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                else None
            )
            errors.append(("ConditionalCheckFailed", str(ConditionalCheckFailed().message), old))
        else:
            errors.append((None, None, None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # All writes or none: undo the applied ones if a later one fails.
    applied: list[int] = []
    at = 0
    try:
        for at, (op_type, op, key) in enumerate(actions):
            table_name = op["TableName"]
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table_name, op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)
            if op_type != "ConditionCheck":
                applied.append(at)
    except Exception as failure:
        for index in reversed(applied):
            _, op, key = actions[index]
            if before[index] is None:
                self.delete_item(op["TableName"], key)
            else:
                self.put_item(op["TableName"], before[index])
        if isinstance(failure, MockValidationException):
            raise
        raise TransactionCanceledException(
            [(type(failure).__name__, str(failure), None) if i == at else (None, None, None)
             for i in range(len(actions))]
        ) from failure


def _all_backends() -> list[Any]:
    found = []
    for account in cd_models.codedeploy_backends.values():
        for backend in account.values():
            found.append(backend)
    return found


def _json(status: int, body: Any) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps(body)


def set_deployment_status(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "POST":
        return _json(405, {"error": "POST {\"deploymentId\": ..., \"status\": ...}"})
    try:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size) or b"{}")
    except ValueError:
        return _json(400, {"error": "body is not JSON"})
    deployment_id, status = body.get("deploymentId"), body.get("status")
    if status not in SETTABLE:
        return _json(400, {"error": f"status must be one of {sorted(SETTABLE)}"})
    for backend in _all_backends():
        deployment = backend.deployments.get(deployment_id)
        if deployment is not None:
            deployment.status = status
            if status in ("Succeeded", "Failed", "Stopped"):
                deployment.complete_time = cd_models.utcnow()
            return _json(200, {"deploymentId": deployment_id, "status": status})
    return _json(404, {"error": f"no deployment {deployment_id}"})


def reports(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    merged: dict[str, list[Any]] = {"hookReports": [], "stops": [], "continues": []}
    for backend in _all_backends():
        for kind, items in _records(backend).items():
            merged[kind].extend(items)
    return _json(200, merged)


AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_original_create_schedule = scheduler_models.EventBridgeSchedulerBackend.create_schedule
_original_delete_schedule = scheduler_models.EventBridgeSchedulerBackend.delete_schedule


def _schedule_log(backend: Any) -> list[dict[str, Any]]:
    if not hasattr(backend, "shiplane_log"):
        backend.shiplane_log = []
    return backend.shiplane_log


def create_schedule(self: Any, **kwargs: Any) -> Any:
    group = kwargs.get("group_name") or "default"
    if group not in self.schedule_groups:
        raise ScheduleGroupNotFound(group)
    expression = kwargs.get("schedule_expression") or ""
    if not (AT.match(expression) or expression.startswith(("rate(", "cron("))):
        raise ValidationException(f"Invalid Schedule Expression {expression}.")
    schedule = _original_create_schedule(self, **kwargs)
    _schedule_log(self).append(
        {"op": "created", "name": schedule.name, "group": group, "expression": expression, "at": _now()}
    )
    return schedule


def delete_schedule(self: Any, group_name: str | None, name: str) -> None:
    _original_delete_schedule(self, group_name, name)
    _schedule_log(self).append({"op": "deleted", "name": name, "group": group_name or "default", "at": _now()})


def _scheduler_backends() -> list[Any]:
    return [b for account in scheduler_models.scheduler_backends.values() for b in account.values()]


def _schedule_view(s: Any) -> dict[str, Any]:
    return {
        "name": s.name,
        "group": s.group_name,
        "expression": s.schedule_expression,
        "target": s.target.get("Arn"),
        "input": s.target.get("Input"),
        "actionAfterCompletion": s.action_after_completion,
    }


def scheduler_log(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    log: list[dict[str, Any]] = []
    schedules: list[dict[str, Any]] = []
    for backend in _scheduler_backends():
        log.extend(_schedule_log(backend))
        for group in backend.schedule_groups.values():
            schedules.extend(_schedule_view(s) for s in group.schedules.values())
    return _json(200, {"log": log, "schedules": schedules})


def fire_schedules(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "POST":
        return _json(405, {"error": 'POST {"now": "<ISO 8601>"} or {"all": true}'})
    try:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size) or b"{}")
        now = None if body.get("all") else datetime.fromisoformat(body["now"].replace("Z", "+00:00"))
    except (ValueError, KeyError, AttributeError):
        return _json(400, {"error": 'body must be {"now": "<ISO 8601>"} or {"all": true}'})
    fired = []
    for backend in _scheduler_backends():
        for group in list(backend.schedule_groups.values()):
            for s in list(group.schedules.values()):
                m = AT.match(s.schedule_expression)
                if not m or s.state != "ENABLED":
                    continue
                due = datetime.fromisoformat(m.group(1)).replace(tzinfo=timezone.utc)
                if now is not None and due > now:
                    continue
                fired.append(_schedule_view(s))
                _schedule_log(backend).append({"op": "fired", "name": s.name, "group": group.name, "at": _now()})
                if s.action_after_completion == "DELETE":
                    delete_schedule(backend, group.name, s.name)
    return _json(200, {"fired": fired})


_original_describe_task_definition = ecs_models.EC2ContainerServiceBackend.describe_task_definition


def describe_task_definition(self: Any, task_definition_str: str) -> Any:
    """A family named without a revision is its newest ACTIVE revision, as in ECS (moto
    answers the newest, deregistered or not): what a trigger naming the family runs."""
    name = task_definition_str.split("/")[-1]
    if ":" not in name and name in self.task_definitions:
        active = [r for r, td in self.task_definitions[name].items() if td.status == "ACTIVE"]
        if active:
            return self.task_definitions[name][max(active)]
    return _original_describe_task_definition(self, task_definition_str)


REFUSABLE = {"UpdateSchedule", "PutTargets"}
_original_update_schedule = scheduler_models.EventBridgeSchedulerBackend.update_schedule
_original_put_targets = events_models.EventsBackend.put_targets


class AccessDenied(JsonRESTError):
    code = 403

    def __init__(self, message: str):
        super().__init__("AccessDeniedException", message)


def _refused(backend: Any) -> set[str]:
    if not hasattr(backend, "shiplane_refused"):
        backend.shiplane_refused = set()
    return backend.shiplane_refused


def _denied(operation: str, name: str) -> AccessDenied:
    return AccessDenied(
        f"User: arn:aws:sts::123456789012:assumed-role/shiplane-deploy is not authorized to perform: "
        f"iam:PassRole ({operation} {name})"
    )


def update_schedule(self: Any, **kwargs: Any) -> Any:
    if kwargs.get("name") in _refused(self):
        raise _denied("scheduler:UpdateSchedule", kwargs["name"])
    return _original_update_schedule(self, **kwargs)


def put_targets(self: Any, name: str, event_bus_arn: str | None, targets: list[dict[str, Any]]) -> None:
    if name in _refused(self):
        raise _denied("events:PutTargets", name)
    _original_put_targets(self, name, event_bus_arn, targets)


def _events_backends() -> list[Any]:
    return [b for account in events_models.events_backends.values() for b in account.values()]


def refuse(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "POST":
        return _json(405, {"error": 'POST {"operation": "UpdateSchedule"|"PutTargets", "name": ...}'})
    try:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size) or b"{}")
    except ValueError:
        return _json(400, {"error": "body is not JSON"})
    operation, name = body.get("operation"), body.get("name")
    if operation not in REFUSABLE or not isinstance(name, str) or not name:
        return _json(400, {"error": f"operation must be one of {sorted(REFUSABLE)}, with a name"})
    backends = _scheduler_backends() if operation == "UpdateSchedule" else _events_backends()
    for backend in backends:
        _refused(backend).add(name)
    return _json(200, {"operation": operation, "name": name, "backends": len(backends)})


_IMAGE_INIT = ecr_models.Image.__init__


def image_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """moto's Image, pushed now to the microsecond (moto truncates to the second)."""
    _IMAGE_INIT(self, *args, **kwargs)
    self.image_pushed_at = datetime.now(timezone.utc)


_SIGNING_KEY: list[Any] = []


def signing_key(_subscription: Any = None) -> Any:
    """The one key this process signs SNS messages with (see the module's docstring)."""
    if not _SIGNING_KEY:
        _SIGNING_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _SIGNING_KEY[0]


def register() -> None:
    """Installs the additions; call once, before the server app is created."""
    sns_models.Subscription.private_key = signing_key
    signing_key()
    CodeDeployResponse.put_lifecycle_event_hook_execution_status = (
        put_lifecycle_event_hook_execution_status
    )
    CodeDeployResponse.stop_deployment = stop_deployment
    cd_responses._deployment_info = deployment_info
    CodeDeployResponse.continue_deployment = continue_deployment
    CodeDeployResponse.update_deployment_group = update_deployment_group
    cd_models.CodeDeployBackend.create_deployment = create_deployment
    DynamoDBBackend.transact_write_items = transact_write_items
    ecr_models.Image.__init__ = image_init
    moto_api_urls.url_paths["{0}/moto-api/shiplane/codedeploy/deployment-status$"] = (
        set_deployment_status
    )
    moto_api_urls.url_paths["{0}/moto-api/shiplane/codedeploy/reports$"] = reports
    EC2ContainerServiceResponse.run_task = run_task
    EC2ContainerServiceResponse.list_task_definitions = list_task_definitions
    EC2ContainerServiceResponse.list_tasks = list_tasks
    ecs_models.EC2ContainerServiceBackend.update_service = update_service
    ecs_models.EC2ContainerServiceBackend.describe_task_definition = describe_task_definition
    moto_api_urls.url_paths["{0}/moto-api/shiplane/ecs/task-exit$"] = task_exit
    moto_api_urls.url_paths["{0}/moto-api/shiplane/ecs/task-set$"] = task_set_counts
    moto_api_urls.url_paths["{0}/moto-api/shiplane/lambda/answer$"] = lambda_answer
    scheduler_models.EventBridgeSchedulerBackend.create_schedule = create_schedule
    scheduler_models.EventBridgeSchedulerBackend.delete_schedule = delete_schedule
    moto_api_urls.url_paths["{0}/moto-api/shiplane/scheduler/log$"] = scheduler_log
    moto_api_urls.url_paths["{0}/moto-api/shiplane/scheduler/fire$"] = fire_schedules
    scheduler_models.EventBridgeSchedulerBackend.update_schedule = update_schedule
    events_models.EventsBackend.put_targets = put_targets
    moto_api_urls.url_paths["{0}/moto-api/shiplane/refuse$"] = refuse
