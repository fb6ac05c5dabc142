//! Harness for tests against the local AWS emulator.
//!
//! Tests run under `infra/local/with-emulator.sh` (as `make test` does), which exports
//! `AWS_ENDPOINT_URL` and dummy credentials. Each test makes its own table, so tests run
//! in parallel against one emulator without seeing each other's items.

pub mod bad_input;
pub mod check_server;
pub mod fuzz;
pub mod logs;
pub mod round_trips;
pub mod runtime_api;

use aws_config::{BehaviorVersion, SdkConfig};
use shiplane::store::DynamoStore;

/// The emulator's endpoint; panics with the way to provide one when it is missing.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.0.0.1:") => url,
        Ok(url) => panic!(
            "AWS_ENDPOINT_URL is {url}; these tests only talk to a local emulator on 127.0.0.1"
        ),
        Err(_) => panic!(
            "AWS_ENDPOINT_URL is not set: run these tests with `make test`, or under \
             infra/local/with-emulator.sh (e.g. `infra/local/with-emulator.sh cargo test`)"
        ),
    }
}

/// SDK configuration for the emulator, read from the environment as every binary does.
pub async fn aws_config() -> SdkConfig {
    endpoint();
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A unique table name for one test.
pub fn unique_table() -> String {
    format!(
        "shiplane-test-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    )
}

/// A store on a new, empty table in the emulator.
pub async fn fresh_store() -> DynamoStore {
    let config = aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique_table();
    DynamoStore::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("create table {table}: {e}"));
    DynamoStore::new(client, table)
}

/// The workspace root (for fixtures and scripts).
pub fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// The project venv's Python (`make` sets SHIPLANE_PYTHON to it).
pub fn python() -> std::path::PathBuf {
    std::env::var_os("SHIPLANE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// Runs `infra/local/provision.py` against the emulator and parses its JSON output.
pub fn provision(args: &[&str]) -> serde_json::Value {
    endpoint();
    let out = std::process::Command::new(python())
        .arg(workspace().join("infra/local/provision.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run provision.py with {}: {e}", python().display()));
    assert!(
        out.status.success(),
        "provision.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("provision.py {args:?} printed no JSON ({e})"))
}

/// What `provision.py account` made.
#[derive(Debug, Clone)]
pub struct Account {
    pub topic_arn: String,
    pub queue_url: String,
    /// Where bake timers go, and what they invoke with which role.
    pub schedule_group: String,
    pub promote_function_arn: String,
    pub scheduler_role_arn: String,
}

impl Account {
    /// The `SHIPLANE_*` environment a function binary runs with against this account and
    /// `store`'s table (the stack sets the same variables).
    pub fn function_env<'a>(&'a self, store: &'a DynamoStore) -> Vec<(&'static str, &'a str)> {
        vec![
            ("SHIPLANE_TABLE", store.table()),
            ("SHIPLANE_TOPIC_ARN", &self.topic_arn),
            ("SHIPLANE_HOOK_FUNCTION", "shiplane-deploy-hook"),
            ("SHIPLANE_SCHEDULE_GROUP", &self.schedule_group),
            ("SHIPLANE_PROMOTE_FUNCTION_ARN", &self.promote_function_arn),
            ("SHIPLANE_SCHEDULER_ROLE_ARN", &self.scheduler_role_arn),
        ]
    }
}

/// A directory in the system temp folder, removed with everything in it when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A new, empty directory named `<prefix>-<ulid>`.
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Writes `content` to `name` inside it; returns the file's path.
    pub fn file(&self, name: &str, content: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates every resource `pipeline` names, plus a topic with an SQS subscription and a
/// bake-timer schedule group of its own (`<topic>-bake`: tests share one emulator).
pub fn account(pipeline: &str, topic: &str) -> Account {
    let dir = TempDir::new("shiplane-e2e");
    let file = dir.file("pipeline.toml", pipeline);
    let group = format!("{topic}-bake");
    let v = provision(&[
        "account",
        "--pipeline",
        file.to_str().unwrap_or_default(),
        "--topic",
        topic,
        "--schedule-group",
        &group,
    ]);
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Account {
        topic_arn: text("topic_arn"),
        queue_url: text("queue_url"),
        schedule_group: text("schedule_group"),
        promote_function_arn: text("promote_function_arn"),
        scheduler_role_arn: text("scheduler_role_arn"),
    }
}

/// Pushes an image to the emulator's ECR; returns the EventBridge event ECR would send.
pub fn push_event(repository: &str, tag: &str) -> serde_json::Value {
    provision(&["push", "--repository", repository, "--tag", tag])
}

/// Pushes an image to the emulator's ECR and parses the event ECR sends, as image-push does.
pub fn image_push(repository: &str, tag: &str) -> shiplane::release::intake::ImagePush {
    use shiplane::inbound::{Inbound, ecr};
    let event: aws_lambda_events::eventbridge::EventBridgeEvent<ecr::EcrImageAction> =
        serde_json::from_value(push_event(repository, tag)).expect("an ECR event");
    match ecr::parse_push(&event, shiplane::release::Timestamp::now()) {
        Ok(Inbound::Accepted(p)) => p,
        other => panic!("push of {repository}:{tag} is no release: {other:?}"),
    }
}

/// The release a push made, through `engine` with ECR's push times (as image-push runs
/// it: pushes a test makes in one second are ordered by ECR); panics when the push made
/// none.
pub async fn release_from_push<P: shiplane::engine::Ports>(
    engine: &shiplane::engine::Engine<'_, P>,
    push: &shiplane::release::intake::ImagePush,
) -> shiplane::release::ReleaseId {
    let clock = shiplane::aws::EcrPushClock::from_config(&aws_config().await);
    match engine
        .on_push_with(push, &clock, shiplane::release::Timestamp::now())
        .await
    {
        Ok(shiplane::engine::PushOutcome::Created { release, .. }) => release,
        other => panic!(
            "the push of {}:{} made no release: {other:?}",
            push.repository, push.tag
        ),
    }
}

/// The deployment (or migration task) a release runs in an environment, as recorded.
pub async fn deployment_of(
    store: &DynamoStore,
    release: &shiplane::release::ReleaseId,
    environment: &str,
) -> String {
    stage_of(store, release, environment)
        .await
        .started()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("release {release} records no deployment in {environment}"))
}

/// A release's stage in one environment, as the store holds it.
pub async fn stage_of(
    store: &DynamoStore,
    release: &shiplane::release::ReleaseId,
    environment: &str,
) -> shiplane::release::Stage {
    shiplane::store::ReleaseStore::release(store, release)
        .await
        .unwrap_or_else(|e| panic!("read release {release}: {e}"))
        .and_then(|r| r.item.stages.get(environment).cloned())
        .unwrap_or_else(|| panic!("release {release} has no stage in {environment}"))
}

/// The real AWS adapters against the emulator, for `account`.
pub struct AwsAdapters {
    pub deployer: shiplane::aws::AwsDeployer,
    pub notifier: shiplane::aws::SnsNotifier,
    pub timer: shiplane::aws::SchedulerTimer,
}

/// The engine as the functions build it, over `store`.
pub type AwsEngine<'a> = shiplane::engine::Engine<'a, shiplane::lambda::AwsPorts>;

impl AwsAdapters {
    /// The engine over these adapters and `store`.
    pub fn engine<'a>(&'a self, store: &'a DynamoStore) -> AwsEngine<'a> {
        shiplane::engine::Engine::new(store, &self.deployer, &self.notifier, &self.timer)
    }
}

/// ECS + CodeDeploy, SNS on the account's topic, and Scheduler in its schedule group.
pub async fn aws_adapters(account: &Account) -> AwsAdapters {
    let config = aws_config().await;
    AwsAdapters {
        deployer: shiplane::aws::AwsDeployer::new(
            aws_sdk_ecs::Client::new(&config),
            aws_sdk_codedeploy::Client::new(&config),
            "shiplane-deploy-hook",
            shiplane::aws::AwsTriggers::from_config(&config),
        ),
        notifier: shiplane::aws::SnsNotifier::new(
            aws_sdk_sns::Client::new(&config),
            &account.topic_arn,
        ),
        timer: shiplane::aws::SchedulerTimer::new(
            aws_sdk_scheduler::Client::new(&config),
            &account.schedule_group,
            &account.promote_function_arn,
            &account.scheduler_role_arn,
        ),
    }
}

/// CodeDeploy's "Deployment State-change Notification" as EventBridge delivers it: a
/// deployment of `application`/`group` reached `state` (SUCCESS, FAILURE, STOP, ...).
pub fn codedeploy_event(
    application: &str,
    group: &str,
    deployment: &str,
    state: &str,
) -> serde_json::Value {
    serde_json::json!({
        "account": "123456789012",
        "region": "us-east-1",
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "version": "0",
        "time": shiplane::release::Timestamp::now().to_string(),
        "id": format!("evt-{deployment}-{state}"),
        "resources": [],
        "detail": {
            "region": "us-east-1",
            "application": application,
            "deploymentGroup": group,
            "deploymentId": deployment,
            "state": state,
        }
    })
}

/// CodeDeploy finishes the release's deployment in `environment` (the emulator's status
/// moved to Succeeded) and its SUCCESS state-change event, named with the stage's
/// application and deployment group, reaches `engine` at `now`; panics unless applied.
pub async fn deployment_succeeds(
    engine: &AwsEngine<'_>,
    release: &shiplane::release::ReleaseId,
    environment: &str,
    now: shiplane::release::Timestamp,
) {
    let change = deployment_success(engine, release, environment, now).await;
    let out = engine
        .on_deployment_state(&change, now)
        .await
        .unwrap_or_else(|e| panic!("the deployment's success: {e}"));
    assert!(
        matches!(out, shiplane::inbound::Inbound::Accepted(_)),
        "{out:?}"
    );
}

/// CodeDeploy finishes the deployment of `release` in `environment` (its status set to
/// Succeeded in the emulator): the state-change event it sends for that.
pub async fn deployment_success(
    engine: &AwsEngine<'_>,
    release: &shiplane::release::ReleaseId,
    environment: &str,
    now: shiplane::release::Timestamp,
) -> shiplane::inbound::codedeploy::DeploymentStateChange {
    use shiplane::inbound::codedeploy::{DeploymentState, DeploymentStateChange};
    let pipeline = engine.pipeline().await.expect("a pipeline is stored");
    let stored = shiplane::store::ReleaseStore::release(engine.store, release)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("release {release} is stored"));
    let target = pipeline
        .services
        .get(&stored.item.service)
        .and_then(|s| s.stage(environment))
        .map(|st| &st.target);
    let Some(shiplane::pipeline::Target::BlueGreen { codedeploy, .. }) = target else {
        panic!(
            "{}/{environment} is no blue/green stage",
            stored.item.service
        )
    };
    let deployment = deployment_of(engine.store, release, environment).await;
    set_deployment_status(&deployment, "Succeeded");
    DeploymentStateChange {
        deployment_id: deployment,
        application: codedeploy.application.clone(),
        deployment_group: codedeploy.deployment_group.clone(),
        state: DeploymentState::Success,
        at: now,
    }
}

/// What the emulator's Scheduler recorded: `log` (created, fired, deleted) and the
/// `schedules` that exist now.
pub fn schedules() -> serde_json::Value {
    provision(&["schedules"])
}

/// Fires the one-time schedules due at `now` as Scheduler would; returns the payloads
/// (their targets' input) for the caller to deliver to the promote function.
pub fn fire_schedules(now: shiplane::release::Timestamp) -> Vec<serde_json::Value> {
    provision(&["fire-schedules", "--now", &now.to_string()])["fired"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            serde_json::from_str(f["input"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("a schedule's input is not JSON ({e}): {f}"))
        })
        .collect()
}

/// What the emulator's CodeDeploy recorded: `hookReports`, `stops`, `continues`.
pub fn codedeploy_reports() -> serde_json::Value {
    provision(&["reports"])
}

/// The statuses CodeDeploy accepted for one lifecycle hook execution, in order.
pub fn hook_reports(execution: &str) -> Vec<String> {
    codedeploy_reports()["hookReports"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["lifecycleEventHookExecutionId"] == execution)
        .map(|r| r["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Notifications delivered to the account's queue so far (SNS envelopes), removed from it.
pub fn notifications(queue_url: &str) -> Vec<serde_json::Value> {
    provision(&["receive", "--queue-url", queue_url])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Moves a CodeDeploy deployment in the emulator (AWS moves its own).
pub fn set_deployment_status(deployment_id: &str, status: &str) {
    provision(&[
        "deployment-status",
        "--id",
        deployment_id,
        "--status",
        status,
    ]);
}

/// Makes the emulator refuse, as a missing iam:PassRole does, every later `operation`
/// (`UpdateSchedule` or `PutTargets`) on the schedule or rule `name`.
pub fn refuse(operation: &str, name: &str) {
    provision(&["refuse", "--operation", operation, "--name", name]);
}

/// A short unique lowercase prefix for resource names in one test.
pub fn unique_prefix() -> String {
    let id = ulid::Ulid::generate().to_string().to_lowercase();
    format!("t{}", &id[id.len() - 8..])
}

/// A pipeline (TOML) whose every name starts with `p`, for tests that share one emulator:
/// `api` (blue-green, dev → prod with manual approval), `db` (rolling, with a migration),
/// `tiles` (rolling, restarted each time a `db` release succeeds in dev) and `etl` (data
/// jobs).
pub fn pipeline_for(p: &str) -> String {
    format!(
        r#"
[pipeline]
environments = ["dev", "prod"]

[defaults.dev]
cluster = "{p}-dev"
[defaults.prod]
cluster = "{p}-prod"
approval = "manual"

[services.api]
repository = "{p}/api"
kind = "blue-green"
container = "app"
port = 8080
[services.api.environments.dev]
service = "{p}-api-dev"
codedeploy = {{ application = "{p}-api", deployment_group = "{p}-api-dev", deployment_config = "CodeDeployDefault.ECSCanary10Percent5Minutes" }}
[[services.api.environments.dev.checks]]
hook = "before_allow_traffic"
http = "http://127.0.0.1:9/health"
[services.api.environments.prod]
service = "{p}-api-prod"
codedeploy = {{ application = "{p}-api", deployment_group = "{p}-api-prod" }}

[services.db]
repository = "{p}/db"
kind = "blue-green"
container = "app"
port = 5000
[services.db.environments.dev]
service = "{p}-db-dev"
codedeploy = {{ application = "{p}-db", deployment_group = "{p}-db-dev" }}
migration = {{ family = "{p}-db-migrate", command = ["./migrate", "up"] }}
restarts = ["tiles"]

[services.tiles]
repository = "{p}/tiles"
kind = "rolling"
container = "tileserver"
[services.tiles.environments.dev]
service = "{p}-tiles-dev"

[services.etl]
repository = "{p}/etl"
kind = "task"
[services.etl.environments.dev]
task_families = ["{p}-etl-nightly", "{p}-etl-backfill"]
"#
    )
}

/// One blue/green service `web` through dev (a lifecycle-hook check, a 10-minute bake),
/// staging and prod (each approved by a person; prod held while alarms fire in dev or
/// staging), every stage watching its `<p>-web-<env>-5xx` alarm.
pub fn three_environments(p: &str) -> String {
    let stage = |env: &str, extra: &str| {
        format!(
            "[services.web.environments.{env}]\ncluster = \"{p}-{env}\"\nservice = \"{p}-web-{env}\"\n\
             codedeploy = {{ application = \"{p}-web\", deployment_group = \"{p}-web-{env}\" }}\n\
             alarms = [\"{p}-web-{env}-5xx\"]\n{extra}"
        )
    };
    format!(
        "[pipeline]\nenvironments = [\"dev\", \"staging\", \"prod\"]\n\n\
         [services.web]\nrepository = \"{p}/web\"\nkind = \"blue-green\"\ncontainer = \"app\"\nport = 8080\n{}\
         [[services.web.environments.dev.checks]]\nhook = \"before_allow_traffic\"\nhttp = \"http://127.0.0.1:9/health\"\n{}{}",
        stage("dev", "bake = \"10m\"\n"),
        stage("staging", "approval = \"manual\"\n"),
        stage(
            "prod",
            "approval = \"manual\"\nhold_while_alarms_in = [\"dev\", \"staging\"]\n"
        ),
    )
}

/// AWS calls the emulator served since the last reset, by `service.Operation`.
pub fn aws_calls() -> std::collections::BTreeMap<String, u64> {
    serde_json::from_value(provision(&["calls"])).unwrap_or_default()
}

/// Starts counting AWS calls from zero.
pub fn reset_aws_calls() {
    provision(&["calls", "--reset"]);
}

/// The AWS calls since the last reset, grouped into sequential round trips (calls in
/// flight together share one): what a client's latency is made of.
pub fn aws_round_trips() -> Vec<Vec<String>> {
    serde_json::from_value(provision(&["calls", "--waves"])["waves"].clone()).unwrap_or_default()
}

/// Makes every AWS answer of the emulator wait `ms` (0: none), as a network would.
pub fn set_aws_latency(ms: u64) {
    provision(&["calls", "--latency", &ms.to_string()]);
}

/// Stores `source` as the pipeline's next version, as `shiplane config apply` does.
pub async fn apply_pipeline(store: &DynamoStore, source: String) {
    use shiplane::store::ReleaseStore;
    let current = store
        .pipeline()
        .await
        .unwrap_or_else(|e| panic!("read the pipeline: {e}"));
    store
        .put_pipeline(shiplane::store::StoredPipeline {
            version: current.map_or(1, |c| c.version + 1),
            source,
            applied_at: shiplane::release::Timestamp::now(),
            applied_by: "test".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("store the pipeline: {e}"));
}

/// Edits the stored pipeline's text and applies it as the next version; panics when the
/// edit changes nothing (the harness pipeline no longer has what a test looks for).
pub async fn edit_pipeline(store: &DynamoStore, edit: impl FnOnce(&str) -> String) {
    use shiplane::store::ReleaseStore;
    let current = store
        .pipeline()
        .await
        .ok()
        .flatten()
        .expect("a pipeline is stored");
    let source = edit(&current.source);
    assert_ne!(source, current.source, "the edit changed nothing");
    apply_pipeline(store, source).await;
}

/// An account as [`pipeline_for`] describes it, a fresh table, and that pipeline stored:
/// what a deployed Shiplane sees. Returns the name prefix, the account and the store.
pub async fn deployed_world() -> (String, Account, DynamoStore) {
    let p = unique_prefix();
    let source = pipeline_for(&p);
    let account = account(&source, &format!("{p}-releases"));
    let store = fresh_store().await;
    apply_pipeline(&store, source).await;
    (p, account, store)
}

/// `release` arrives in its service's `environment` lane as a push would make it (no
/// approval, no migration, a 10-minute bake, `next` after it) and is committed there:
/// deploying on an idle lane, queued behind one in flight. For CLI tests that need a
/// release in a lane without running the functions.
pub async fn arrive(
    store: &DynamoStore,
    release: &shiplane::release::Release,
    environment: &str,
    next: Option<&str>,
) {
    use shiplane::release::{Event, Policy, apply};
    use shiplane::store::{LoadedLane, ReleaseStore};
    let mut loaded = LoadedLane::load(store, &release.service, environment, &[])
        .await
        .expect("load the lane");
    loaded.add_new(release.clone());
    let policy = Policy {
        approval: shiplane::pipeline::Approval::None,
        migration: false,
        stop_first: false,
        bake: std::time::Duration::from_secs(600),
        frozen: false,
        next_environment: next.map(Into::into),
        next_tags: shiplane::pipeline::TagPolicy::Any,
        deadlines: Default::default(),
        held_by: Vec::new(),
        undo_by_redeploy: false,
        data_jobs: false,
        watch: std::time::Duration::ZERO,
        restarts: Vec::new(),
        keep: 5,
    };
    let d = apply(
        &loaded.view,
        &release.id,
        &Event::Arrived,
        &policy,
        release.created,
    )
    .expect("a release arrives");
    store
        .commit(loaded.commit_for(&d))
        .await
        .expect("commit the arrival");
}
