#!/usr/bin/env bash
# The Shiplane demo, run by `make demo` under infra/local/with-emulator.sh (the local AWS is
# up and AWS_ENDPOINT_URL points at it). The real function binaries run behind a local
# Lambda Runtime API and receive the events AWS would send. Exits non-zero if any step
# does not happen.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/debug
py=${SHIPLANE_PYTHON:-.venv/bin/python}
export SHIPLANE_TABLE=shiplane-demo SHIPLANE_ACTOR=demo RUST_LOG=warn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '  %s\n' "$*"; }
fail() { printf '\n\033[31mdemo failed: %s\033[0m\n' "$*" >&2; exit 1; }
get() { "$py" -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$1" "$2"; }
provision() { "$py" infra/local/provision.py "$@"; }
function_env() { # what the stack sets for every function, as lambda-invoke flags
  printf -- '--env\n%s\n' SHIPLANE_TABLE="$SHIPLANE_TABLE" SHIPLANE_TOPIC_ARN="$topic" \
    SHIPLANE_HOOK_FUNCTION=shiplane-deploy-hook SHIPLANE_SCHEDULE_GROUP="$SHIPLANE_SCHEDULE_GROUP" \
    SHIPLANE_PROMOTE_FUNCTION_ARN="$SHIPLANE_PROMOTE_FUNCTION_ARN" \
    SHIPLANE_SCHEDULER_ROLE_ARN="$SHIPLANE_SCHEDULER_ROLE_ARN" RUST_LOG=warn
}
invoke() { # FUNCTION EVENT_FILE OUT_FILE [extra lambda-invoke flags]
  local fn=$1 event=$2 out=$3; shift 3
  mapfile -t envs < <(function_env)
  "$bin/lambda-invoke" --function "$bin/$fn" --name "shiplane-$fn" "${envs[@]}" "$@" "$event" >"$out" \
    || fail "$fn returned an error: $(cat "$out")"
}
state_of() { # RELEASE ENV
  "$bin/shiplane" --json history "$1" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["release"]["stages"][sys.argv[1]]["state"])' "$2"
}

bold "▶ The local AWS is up at $AWS_ENDPOINT_URL"
say "Creating what a real account has: ECR repositories, ECS clusters and services (api with"
say "the CODE_DEPLOY controller, in a VPC), task definitions, CodeDeploy application and groups,"
say "the SNS topic with an SQS subscription to read notifications back, and the table."
provision account --pipeline infra/pipeline.example.toml --topic shiplane-releases >"$work/account.json"
topic=$(get "$work/account.json" topic_arn)
queue=$(get "$work/account.json" queue_url)
# Where bake timers go, as the stack's outputs say (the CLI reads them too).
export SHIPLANE_SCHEDULE_GROUP SHIPLANE_PROMOTE_FUNCTION_ARN SHIPLANE_SCHEDULER_ROLE_ARN
SHIPLANE_SCHEDULE_GROUP=$(get "$work/account.json" schedule_group)
SHIPLANE_PROMOTE_FUNCTION_ARN=$(get "$work/account.json" promote_function_arn)
SHIPLANE_SCHEDULER_ROLE_ARN=$(get "$work/account.json" scheduler_role_arn)
"$bin/shiplane" table create

bold "▶ Validate and apply the pipeline file"
"$bin/shiplane" config validate infra/pipeline.example.toml
say "Applied with dev's bake shortened from 10 minutes to 5 seconds, so the demo need not wait:"
sed -E 's/^bake = "10m"/bake = "5s" /' infra/pipeline.example.toml >"$work/pipeline.toml"
"$bin/shiplane" config apply "$work/pipeline.toml"
say "A file with mistakes is refused, every problem listed, nothing stored:"
sed -e 's/bake = "10m"/bake = "10 minutes"/' -e 's/kind = "rolling"/kind = "rollin"/' infra/pipeline.example.toml >"$work/bad.toml"
if "$bin/shiplane" config apply "$work/bad.toml" 2>"$work/bad.out"; then fail "the bad file was accepted"; fi
sed 's/^/    /' "$work/bad.out"

bold "▶ Push shiplane/api:v1.4.0 to ECR; EventBridge delivers the push to image-push"
provision push --repository shiplane/api --tag v1.4.0 >"$work/push1.json"
digest1=$(get "$work/push1.json" detail.image-digest)
invoke image-push "$work/push1.json" "$work/out1.json"
r1=$(get "$work/out1.json" response.release)
[ "$(get "$work/out1.json" response.state)" = migrating ] || fail "v1.4.0 did not start its migration"
say "release $r1 created for $digest1"
say "dev runs a database migration first: one-off task of api-migrate with the new image."
task=$("$bin/shiplane" --json history "$r1" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["release"]["stages"]["dev"]["deployment_id"])')
say "migration task $task"

bold "▶ The migration task exits 0; ECS reports it stopped to deployment-events"
provision task-stopped --cluster shiplane-dev --task-arn "$task" --exit-code 0 >"$work/stopped.json"
invoke deployment-events "$work/stopped.json" "$work/out-stopped.json"
[ "$(state_of "$r1" dev)" = deploying ] || fail "v1.4.0 did not start deploying after its migration"
deployment=$("$bin/shiplane" --json history "$r1" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["release"]["stages"]["dev"]["deployment_id"])')
"$py" - "$deployment" "$digest1" <<'PY' || fail "the deployment is not pinned to the digest"
import json, os, sys
import boto3
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
d = boto3.client("codedeploy", **kw).get_deployment(deploymentId=sys.argv[1])["deploymentInfo"]
spec = json.loads(d["revision"]["appSpecContent"]["content"])
td_arn = spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
td = boto3.client("ecs", **kw).describe_task_definition(taskDefinition=td_arn)["taskDefinition"]
image = td["containerDefinitions"][0]["image"]
print(f"  revision registered: {td_arn.split('/')[-1]}, image {image}")
print(f"  CodeDeploy deployment {d['deploymentId']} ({d['deploymentConfigName']}), hooks: {[list(h)[0] for h in spec['Hooks']]}")
assert image.endswith("@" + sys.argv[2]), image
PY

bold "▶ CodeDeploy calls the AfterInstall lifecycle hook: deploy-hook checks the replacement"
say "The AppSpec names the deploy-hook through its AfterInstall alias; the check there is"
say "ecs_steady. The demo plays ECS: the replacement task set reaches 2 of 2 running tasks."
"$py" - "$deployment" >"$work/taskset.json" <<'PY' || fail "could not make the replacement task set"
import json, os, sys
import boto3
ecs = boto3.client("ecs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
t = ecs.create_task_set(cluster="shiplane-dev", service="api-dev", taskDefinition="api-dev", externalId=sys.argv[1])
print(json.dumps({"arn": t["taskSet"]["taskSetArn"]}))
PY
provision task-set --arn "$(get "$work/taskset.json" arn)" --running 2 --desired 2 >/dev/null
printf '{"DeploymentId": "%s", "LifecycleEventHookExecutionId": "demo-after-install"}' "$deployment" >"$work/hook.json"
invoke deploy-hook "$work/hook.json" "$work/hook-out.json" --qualifier AfterInstall
[ "$(get "$work/hook-out.json" response.status)" = Succeeded ] || fail "the AfterInstall hook did not succeed: $(cat "$work/hook-out.json")"
"$py" - <<'PY' || fail "CodeDeploy did not receive the hook's answer"
import json, os, urllib.request
reports = json.load(urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"] + "/moto-api/shiplane/codedeploy/reports"))
(r,) = [r for r in reports["hookReports"] if r["lifecycleEventHookExecutionId"] == "demo-after-install"]
print(f"  reported to CodeDeploy: {r['status']}")
assert r["status"] == "Succeeded"
PY
[ "$(state_of "$r1" dev)" = validating ] || fail "v1.4.0 is not validating"
say "release $r1: validating (check_passed, hook_succeeded in its history)"

bold "▶ Push v1.5.0 while v1.4.0 deploys: it queues (one deployment in flight per environment)"
provision push --repository shiplane/api --tag v1.5.0 >"$work/push2.json"
invoke image-push "$work/push2.json" "$work/out2.json"
r2=$(get "$work/out2.json" response.release)
[ "$(state_of "$r2" dev)" = queued ] || fail "v1.5.0 did not queue"
say "release $r2: queued"

bold "▶ Push v1.6.0: it supersedes the queued v1.5.0, which will never deploy"
provision push --repository shiplane/api --tag v1.6.0 >"$work/push3.json"
invoke image-push "$work/push3.json" "$work/out3.json"
r3=$(get "$work/out3.json" response.release)
[ "$(state_of "$r2" dev)" = superseded ] || fail "v1.5.0 was not superseded"
[ "$(state_of "$r3" dev)" = queued ] || fail "v1.6.0 did not queue"
say "release $r2: superseded; release $r3: queued"

bold "▶ The same push delivered again (EventBridge delivers at least once): nothing new"
invoke image-push "$work/push1.json" "$work/out1b.json"
[ "$(get "$work/out1b.json" response.replayed)" = True ] || fail "a replay made a new release"
say "replayed: release $(get "$work/out1b.json" response.release), no second deployment"

bold "▶ CodeDeploy finishes the deployment; nobody tells Shiplane (events are best effort)"
say "The emulator's CodeDeploy marks $deployment Succeeded. The reconciler (every 5 minutes in"
say "AWS; \`shiplane reconcile\` here) asks CodeDeploy and moves the release on:"
provision deployment-status --id "$deployment" --status Succeeded >/dev/null
SHIPLANE_TOPIC_ARN="$topic" "$bin/shiplane" reconcile api
[ "$(state_of "$r1" dev)" = baking ] || fail "the reconciler did not apply the finished deployment"
say "release $r1: baking in dev; its end is a one-time EventBridge Scheduler schedule:"
provision schedules >"$work/schedules.json"
"$py" - "$work/schedules.json" "$r1" <<'PY' || fail "no bake timer was set"
import json, sys
(s,) = [s for s in json.load(open(sys.argv[1]))["schedules"] if sys.argv[2] in s["name"]]
print(f"    {s['name']}  {s['expression']}  → {s['target'].split(':')[-1]}  (then {s['actionAfterCompletion']})")
PY

bold "▶ An operator cancels the queued v1.6.0, with a reason (recorded, announced)"
SHIPLANE_TOPIC_ARN="$topic" "$bin/shiplane" cancel "$r3" dev --reason "waiting for the schema fix" --actor demo
[ "$(state_of "$r3" dev)" = cancelled ] || fail "v1.6.0 was not cancelled"

bold "▶ The bake ends: Scheduler fires the timer and invokes promote with its payload"
say "(the emulator records schedules but runs nothing: the demo fires it as Scheduler would)"
for i in 5 4 3 2 1; do printf '\r  baking… %ss ' "$i"; sleep 1; done; printf '\r\033[K'
provision fire-schedules >"$work/fired.json"
"$py" - "$work/fired.json" "$r1" >"$work/timer.json" <<'PY' || fail "the bake timer did not fire"
import json, sys
(f,) = [f for f in json.load(open(sys.argv[1]))["fired"] if sys.argv[2] in f["name"]]
print(f["input"])
PY
invoke promote "$work/timer.json" "$work/promoted.json"
[ "$(state_of "$r1" dev)" = succeeded ] || fail "the bake did not end: $(cat "$work/promoted.json")"
[ "$(state_of "$r1" staging)" = awaiting_approval ] || fail "staging is not awaiting approval"
say "release $r1: succeeded in dev (last known good), awaiting approval in staging"

bold "▶ A person approves staging: the release migrates and deploys there"
SHIPLANE_TOPIC_ARN="$topic" "$bin/shiplane" approve "$r1" staging
case "$(state_of "$r1" staging)" in migrating|deploying) ;; *) fail "staging did not start after approval";; esac
say "release $r1: $(state_of "$r1" staging) in staging"

bold "▶ Notifications on the SNS topic (read back through the SQS subscription)"
provision receive --queue-url "$queue" >"$work/notes.json"
"$py" - "$work/notes.json" <<'PY' || fail "notifications missing"
import json, sys
notes = json.load(open(sys.argv[1]))
for n in notes:
    a = n["MessageAttributes"]
    print(f"  [{a['kind']['Value']:>18}] {n['Subject']}")
kinds = {n["MessageAttributes"]["kind"]["Value"] for n in notes}
need = {"release_created", "stage_started", "migration_succeeded", "deployment_created", "queued", "superseded",
        "cancelled", "timer_set", "succeeded", "awaiting_approval"}
assert need <= kinds, need - kinds
PY

bold "▶ shiplane status api"
"$bin/shiplane" status api

bold "▶ shiplane history api (the timeline)"
"$bin/shiplane" history api

bold "✔ Demo complete: every step happened"
