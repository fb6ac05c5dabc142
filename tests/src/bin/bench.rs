//! `make bench`: cold start, first-event and steady-state latency, peak RSS, AWS calls per
//! event, artifact sizes, release-profile variants and core decision time, measured in one
//! run beside a hello-world `lambda_runtime` binary (the floor) and a Python/boto3 peer,
//! written to BENCHMARKS.md. Runs under `infra/local/with-emulator.sh`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use shiplane::release::Timestamp;
use shiplane::store::ReleaseStore;
use shiplane_e2e::round_trips::{ROUND_TRIP_MS, counted, release_steps};
use shiplane_e2e::runtime_api::{Function, RuntimeApi};
use shiplane_e2e::{deployed_world, push_event, python, workspace};

const WAIT: Duration = Duration::from_secs(300);

#[derive(Clone)]
enum Subject {
    Binary(PathBuf),
    PythonPeer,
}

struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn spawn(api: &RuntimeApi, subject: &Subject, env: &Env) -> Function {
    match subject {
        Subject::Binary(path) => api.spawn(path, "bench", &env.pairs()),
        Subject::PythonPeer => {
            let mut cmd = Command::new(python());
            cmd.args(["-m", "awslambdaric", "image_push.handler"])
                .current_dir(workspace().join("bench/python-peer"));
            api.spawn_command(cmd, "bench", &env.pairs())
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn stats(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    (percentile(&xs, 0.5), percentile(&xs, 0.9))
}

/// Process start → first poll for work, `runs` times for each subject, taken in turns
/// (one start of each, then again) so that drift in the machine's load falls on every
/// subject alike. One list of milliseconds per subject, in order.
async fn cold_starts(subjects: &[&Subject], env: &Env, runs: usize) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); subjects.len()];
    for _ in 0..runs {
        for (i, subject) in subjects.iter().enumerate() {
            let api = RuntimeApi::start().await;
            let t0 = tokio::time::Instant::now();
            let f = spawn(&api, subject, env);
            let polled = api.first_poll(Duration::from_secs(60)).await;
            out[i].push((polled - t0).as_secs_f64() * 1000.0);
            drop(f);
        }
    }
    out
}

const CLIENTS: [&str; 4] = ["DynamoDB", "ECS", "CodeDeploy", "SNS"];

/// The child side of [`client_construction`]: in this fresh process, builds the SDK
/// configuration as the functions do, then each client once, and prints the milliseconds
/// each took.
async fn client_construction_child() {
    let settings = shiplane::settings::Settings {
        table: "bench".into(),
        topic_arn: "arn:aws:sns:us-east-1:123456789012:bench".into(),
        chatbot_topic_arn: None,
        hook_function: "bench".into(),
        schedule_group: "bench".into(),
        promote_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
        scheduler_role_arn: "arn:aws:iam::123456789012:role/bench".into(),
        region: "us-east-1".into(),
        native_tls_roots: false,
        aws_attempt_timeout: shiplane::settings::DEFAULT_AWS_ATTEMPT_TIMEOUT,
    };
    let config = shiplane::sdk::lambda_sdk_config(&settings).await;
    let mut ms = Vec::new();
    let t = Instant::now();
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    ms.push(t.elapsed());
    let t = Instant::now();
    let ecs = aws_sdk_ecs::Client::new(&config);
    ms.push(t.elapsed());
    let t = Instant::now();
    let codedeploy = aws_sdk_codedeploy::Client::new(&config);
    ms.push(t.elapsed());
    let t = Instant::now();
    let sns = aws_sdk_sns::Client::new(&config);
    ms.push(t.elapsed());
    drop((dynamodb, ecs, codedeploy, sns));
    let out: Vec<String> = ms
        .iter()
        .map(|d| format!("{:.4}", d.as_secs_f64() * 1000.0))
        .collect();
    println!("{}", out.join(" "));
}

/// What a function's clients cost to build, the first time in a process (the work
/// `OnFirstUse` leaves to the first event that calls each service): median milliseconds per
/// client, in [`CLIENTS`] order, and of all four together, over `runs` fresh processes.
fn client_construction(runs: usize) -> (Vec<f64>, f64) {
    let exe = std::env::current_exe().expect("the bench binary's own path");
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); CLIENTS.len()];
    let mut totals = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&exe)
            .arg("--client-construction")
            .output()
            .expect("re-running the bench binary");
        let line = String::from_utf8_lossy(&out.stdout);
        let ms: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert_eq!(
            ms.len(),
            CLIENTS.len(),
            "client construction printed {line:?}"
        );
        for (i, x) in ms.iter().enumerate() {
            per[i].push(*x);
        }
        totals.push(ms.iter().sum());
    }
    (
        per.into_iter().map(|xs| stats(xs).0).collect(),
        stats(totals).0,
    )
}

/// Median microseconds of aws-lc's first random draw in a fresh process, over `runs`
/// runs of the probe that `bench/profiles.sh` built in `<target dir>/entropy-probe/<mode>/`;
/// None when it was not built.
fn first_random_draw(mode: &str, runs: usize) -> Option<f64> {
    let probe = target_dir()
        .join("entropy-probe")
        .join(mode)
        .join("entropy-probe");
    if !probe.exists() {
        return None;
    }
    let mut xs = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&probe).output().ok()?;
        xs.push(String::from_utf8_lossy(&out.stdout).trim().parse().ok()?);
    }
    Some(stats(xs).0)
}

/// Invokes `event` and returns the milliseconds until the answer.
async fn timed(api: &RuntimeApi, answered: &mut usize, event: Value) -> (f64, Value) {
    let t = Instant::now();
    api.invoke(event);
    *answered += 1;
    let out = api.wait_for(*answered, WAIT).await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let o = &out[*answered - 1];
    (ms, o.result.clone().unwrap_or_else(|e| json!({"error": e})))
}

fn synthetic_push(p: &str, service: &str, n: usize) -> Value {
    json!({
        "version": "0", "id": format!("bench-{n}"), "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": "2026-11-16T01:54:34Z", "region": "us-east-1", "resources": [],
        "detail": {
            "result": "SUCCESS", "repository-name": format!("{p}/{service}"),
            "image-digest": format!("sha256:{n:064x}"), "action-type": "PUSH", "image-tag": format!("v1.0.{n}"),
            "manifest-media-type": "application/vnd.docker.distribution.manifest.v2+json",
            "artifact-media-type": "application/vnd.docker.container.image.v1+json"
        }
    })
}

fn task_stopped_unknown(n: usize) -> Value {
    json!({
        "version": "0", "id": format!("bench-task-{n}"), "detail-type": "ECS Task State Change", "source": "aws.ecs",
        "account": "123456789012", "time": "2026-11-16T01:54:34Z", "region": "us-east-1", "resources": [],
        "detail": {
            "taskArn": format!("arn:aws:ecs:us-east-1:123456789012:task/other/{n:032x}"),
            "lastStatus": "STOPPED", "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "app", "exitCode": 0}]
        }
    })
}

struct World {
    p: String,
    env: Env,
}

/// A fresh account, table and stored pipeline in the emulator.
async fn world() -> World {
    let (p, acct, store) = deployed_world().await;
    let env = Env {
        vars: acct
            .function_env(&store)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into())])
            .collect(),
    };
    World { p, env }
}

/// Environments of every service in the reconciler's world.
const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// `services` rolling services through dev (a 10-minute bake), staging and prod (approved
/// by a person, held while dev's or staging's alarms fire), each stage watching its alarm.
fn many_services(p: &str, services: usize) -> String {
    let mut toml = String::from("[pipeline]\nenvironments = [\"dev\", \"staging\", \"prod\"]\n");
    for i in 0..services {
        let s = format!("s{i:04}");
        let _ = write!(
            toml,
            "[services.{s}]\nrepository = \"{p}/{s}\"\nkind = \"rolling\"\ncontainer = \"app\"\n"
        );
        for env in ENVIRONMENTS {
            let extra = match env {
                "dev" => "bake = \"10m\"\n",
                "staging" => "approval = \"manual\"\n",
                _ => "approval = \"manual\"\nhold_while_alarms_in = [\"dev\", \"staging\"]\n",
            };
            let _ = write!(
                toml,
                "[services.{s}.environments.{env}]\ncluster = \"{p}-{env}\"\nservice = \"{p}-{s}-{env}\"\nalarms = [\"{p}-{s}-{env}-5xx\"]\n{extra}"
            );
        }
    }
    toml
}

/// What one reconciler pass over a large pipeline cost.
struct ReconcilerPass {
    lanes: usize,
    with_work: usize,
    /// With every AWS answer delayed [`ROUND_TRIP_MS`], and without.
    ms: f64,
    ms_alone: f64,
    calls: Calls,
    lanes_failed: usize,
}

/// A reconciler pass over `lanes` lanes (a third of as many services, three environments
/// each), against the emulator with every AWS answer delayed as a network's would be. Every
/// lane ran a release to success; in one service in ten a newer release bakes in dev (its
/// timer set again by the pass), in another one in ten one awaits approval for prod (its
/// gate's alarms read). The pass is run once unmeasured (it sets the bake timers the
/// populated lanes never had), then measured: a steady pass, as the scheduled reconciler
/// runs every few minutes.
async fn reconciler_pass(lanes: usize) -> ReconcilerPass {
    use shiplane::release::{Digest, Lane, Release, ReleaseId, Stage, StageState};
    use shiplane::store::{Commit, Versioned};

    let p = shiplane_e2e::unique_prefix();
    let services = lanes.div_ceil(ENVIRONMENTS.len());
    // The account's topic and bake-timer schedule group; the services need no resources of
    // their own (no lane has a deployment or migration in flight).
    let acct = shiplane_e2e::account(
        &shiplane_e2e::three_environments(&p),
        &format!("{p}-releases"),
    );
    let store = shiplane_e2e::fresh_store().await;
    shiplane_e2e::apply_pipeline(&store, many_services(&p, services)).await;
    let now = Timestamp::now();
    let earlier = Timestamp(now.0 - 3_600_000);
    let digest = |n: usize| {
        Digest::parse(&format!("sha256:{n:064x}")).unwrap_or_else(|e| panic!("digest: {e}"))
    };
    let mut with_work = 0;
    for i in 0..services {
        let s = format!("s{i:04}");
        let repository = format!("{p}/{s}");
        let mut good = Release::new(
            ReleaseId::new(earlier),
            &s,
            &repository,
            digest(2 * i),
            Some("v1"),
            earlier,
        );
        for env in ENVIRONMENTS {
            let mut stage = Stage::new(StageState::Succeeded, earlier);
            stage.succeeded_at = Some(earlier);
            good.stages.insert(env.to_string(), stage);
        }
        let mut lanes: Vec<Lane> = ENVIRONMENTS
            .iter()
            .map(|env| {
                let mut lane = Lane::new(&s, env);
                lane.current = Some(good.id.clone());
                lane.last_known_good = Some(good.id.clone());
                lane
            })
            .collect();
        let mut releases = vec![good];
        let newer = || {
            Release::new(
                ReleaseId::new(now),
                &s,
                &repository,
                digest(2 * i + 1),
                Some("v2"),
                now,
            )
        };
        match i % 10 {
            // A newer release bakes in dev.
            0 => {
                let mut r = newer();
                let mut stage = Stage::new(StageState::Baking, now);
                stage.bake_until = Some(now.after(Duration::from_secs(600)));
                r.stages.insert("dev".into(), stage);
                lanes[0].in_flight = Some(r.id.clone());
                releases.push(r);
                with_work += 1;
            }
            // One awaits approval for prod.
            5 => {
                let mut r = newer();
                let mut stage = Stage::new(StageState::AwaitingApproval, now);
                stage.deadline = Some(now.after(Duration::from_secs(14 * 24 * 3600)));
                r.stages.insert("prod".into(), stage);
                lanes[2].queued = Some(r.id.clone());
                releases.push(r);
                with_work += 1;
            }
            _ => {}
        }
        store
            .commit(Commit {
                releases: releases
                    .into_iter()
                    .map(|item| Versioned { item, version: 0 })
                    .collect(),
                lanes: lanes
                    .into_iter()
                    .map(|item| Versioned { item, version: 0 })
                    .collect(),
                ..Commit::default()
            })
            .await
            .unwrap_or_else(|e| panic!("populate {s}: {e}"));
    }
    let aws = shiplane_e2e::aws_adapters(&acct).await;
    let engine = aws.engine(&store);
    let cloudwatch =
        shiplane::aws::CloudWatchAlarms::from_config(&shiplane_e2e::aws_config().await);
    let pipeline = engine.pipeline().await.expect("the pipeline");
    let pass = || engine.reconcile_with_alarms(&cloudwatch, &pipeline, None, now);
    pass().await.expect("the first pass");
    let ((out, took), cost) = counted(async {
        let t = Instant::now();
        let out = pass().await;
        (out, t.elapsed())
    })
    .await;
    let ms = took.as_secs_f64() * 1000.0;
    let out = out.expect("the measured pass");
    // The same pass with no delay: the emulator's own time, one call at a time.
    let t = Instant::now();
    pass().await.expect("the pass without delay");
    let ms_alone = t.elapsed().as_secs_f64() * 1000.0;
    ReconcilerPass {
        lanes: services * ENVIRONMENTS.len(),
        with_work,
        ms,
        ms_alone,
        calls: Calls {
            by_operation: cost.by_operation(),
            round_trips: cost.trips,
        },
        lanes_failed: out.failed.len(),
    }
}

/// The reconciler's pass as printed by `--reconcile-only` and written to BENCHMARKS.md.
fn reconciler_md(r: &ReconcilerPass) -> String {
    let total: u64 = r.calls.by_operation.values().sum();
    let trips = r.calls.round_trips.len();
    let mut md = format!(
        "A steady reconciler pass over {} lanes ({} services × dev, staging, prod; {} lanes with work: a release baking in dev or awaiting approval for prod), {} services at a time: {total} calls in **{trips} sequential round trips**, {} lanes failed. With every AWS answer delayed {ROUND_TRIP_MS} ms it took {:.1} s, and {:.1} s with no delay: the emulator serves one call at a time (single-threaded Python, {:.1} ms a call here), so most of the time is its own; the round trips are what AWS's latency multiplies ({trips} × 20 ms = {:.1} s).\n\n| call | count |\n|---|---|\n",
        r.lanes,
        r.lanes / ENVIRONMENTS.len(),
        r.with_work,
        shiplane::engine::SERVICES_AT_ONCE,
        r.lanes_failed,
        r.ms / 1000.0,
        r.ms_alone / 1000.0,
        r.ms_alone / total.max(1) as f64,
        trips as f64 * 0.02,
    );
    for (op, n) in &r.calls.by_operation {
        let _ = writeln!(md, "| {op} | {n} |");
    }
    md
}

#[derive(Default)]
struct Latency {
    first: f64,
    steady: (f64, f64),
    steady_path: &'static str,
}

/// First event on a fresh process, then `n` more of the steady path.
async fn latency(
    subject: &Subject,
    env: &Env,
    first: Value,
    steady: impl Fn(usize) -> Value,
    n: usize,
    path: &'static str,
) -> Latency {
    let api = RuntimeApi::start().await;
    let _f = spawn(&api, subject, env);
    api.first_poll(Duration::from_secs(60)).await;
    let mut answered = 0;
    let (first_ms, answer) = timed(&api, &mut answered, first).await;
    assert!(
        answer.get("error").is_none(),
        "first event failed: {answer}"
    );
    let mut xs = Vec::new();
    for i in 0..n {
        let (ms, answer) = timed(&api, &mut answered, steady(i)).await;
        assert!(
            answer.get("error").is_none(),
            "steady event failed: {answer}"
        );
        xs.push(ms);
    }
    Latency {
        first: first_ms,
        steady: stats(xs),
        steady_path: path,
    }
}

/// Milliseconds to the answer of the first event of a fresh process, with every AWS answer
/// delayed `delay_ms` as a network's would be (0: the emulator's own time only).
async fn first_event(subject: &Subject, env: &Env, event: Value, delay_ms: u64) -> f64 {
    let api = RuntimeApi::start().await;
    let _f = spawn(&api, subject, env);
    api.first_poll(Duration::from_secs(60)).await;
    let mut answered = 0;
    shiplane_e2e::set_aws_latency(delay_ms);
    let (ms, answer) = timed(&api, &mut answered, event).await;
    shiplane_e2e::set_aws_latency(0);
    assert!(
        answer.get("error").is_none(),
        "first event failed: {answer}"
    );
    ms
}

/// Milliseconds to the answer of a first push of `api`, made in a fresh world to a fresh
/// process of `subject` (see [`first_event`]).
async fn first_push_ms(subject: &Subject, delay_ms: u64) -> f64 {
    let w = world().await;
    let event = push_event(&format!("{}/api", w.p), "v1.0.0");
    first_event(subject, &w.env, event, delay_ms).await
}

/// Peak RSS (MiB) of one process over `n` events.
async fn peak_rss(subject: &Subject, env: &Env, event: impl Fn(usize) -> Value, n: usize) -> f64 {
    let api = RuntimeApi::start().await;
    let f = spawn(&api, subject, env);
    api.first_poll(Duration::from_secs(60)).await;
    let batch = 50;
    let mut sent = 0;
    while sent < n {
        for i in sent..(sent + batch).min(n) {
            api.invoke(event(i));
        }
        sent = (sent + batch).min(n);
        api.wait_for(sent, WAIT).await;
    }
    let rss = f.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    drop(f);
    rss
}

/// What one event costs in AWS calls.
struct Calls {
    by_operation: BTreeMap<String, u64>,
    /// The calls in sequential round trips (calls in flight together share one).
    round_trips: Vec<Vec<String>>,
}

/// The AWS calls one event makes, by operation and in sequential round trips (see
/// `shiplane_e2e::round_trips::counted`: every answer waits as a network's would).
async fn calls_for(api: &RuntimeApi, answered: &mut usize, event: Value) -> (Calls, Value) {
    let ((_, answer), cost) = counted(timed(api, answered, event)).await;
    let calls = Calls {
        by_operation: cost.by_operation(),
        round_trips: cost.trips,
    };
    (calls, answer)
}

fn why(op: &str) -> &'static str {
    match op {
        "dynamodb.BatchGetItem" => {
            "what a decision reads, together: claim, pipeline pointer, lanes, releases (consistent)"
        }
        "dynamodb.GetItem" => "a deployment's reference (which release and stage it runs)",
        "dynamodb.Query" => {
            "the pipeline, in a process that has none cached yet (or after a new apply)"
        }
        "dynamodb.UpdateItem" => {
            "the push's claim marked settled, beside the last notification (its replay is one read)"
        }
        "scheduler.DELETE" => "the bake timer, deleted (DeleteSchedule)",
        "codedeploy.PutLifecycleEventHookExecutionStatus" => "the hook's answer to CodeDeploy",
        "dynamodb.TransactWriteItems" => {
            "commit: releases and lane at their versions, history, claim, deployment reference"
        }
        "ecs.DescribeServices" => "the service's current task definition (base of the revision)",
        "ecs.DescribeTaskDefinition" => {
            "the base revision, and the family's latest to reuse one already tagged with the release"
        }
        "ecs.RegisterTaskDefinition" => "the revision pinned to repo@sha256",
        "ecs.ListTasks" => "a migration task this release already started (replay)",
        "ecs.RunTask" => "the one-off migration task",
        "ecs.UpdateService" => "rolling deployment",
        "codedeploy.CreateDeployment" => "the blue/green deployment",
        "codedeploy.GetDeployment" => {
            "whose deployment blocks the group (after DeploymentLimitExceeded)"
        }
        "sns.Publish" => "a decision's only notification",
        "sns.PublishBatch" => "a decision's notifications, ten per call",
        "scheduler.POST" => "the bake timer (CreateSchedule)",
        "dynamodb.PutItem" => "the peer's claim on the push, and its release record",
        _ => "",
    }
}

/// Where cargo built this binary (`<target dir>/release/bench`): the target directory,
/// wherever CARGO_TARGET_DIR put it, holding the artifacts, variants and probes measured.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace().join("target"))
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0)
}

fn criterion_median_ns(name: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(name)
        .join("new/estimates.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let kernel = Command::new("uname")
        .arg("-sr")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let py = Command::new(python())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {:.1} GiB; {kernel}; {rustc}; {py}",
        mem as f64 / 1024.0 / 1024.0
    )
}

fn check(ok: bool) -> &'static str {
    if ok { "✅ met" } else { "❌ not met" }
}

/// Measures Shiplane's functions as Lambda runs them, beside a hello-world `lambda_runtime`
/// binary (the floor) and a Python/boto3 peer, and rewrites BENCHMARKS.md with the figures.
/// Run it under `infra/local/with-emulator.sh`, as `make bench` does.
#[derive(Debug, Parser)]
#[command(name = "bench", long_about = None, after_help = AFTER_HELP)]
struct Args {
    /// Fresh processes per figure: cold starts of each function and variant, client
    /// construction, aws-lc's first random draw; first pushes with --first-push-only.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Events sent to one process of each function for its peak RSS.
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// The Markdown written; the sections it keeps are read from it first.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// The artifacts as `make build` makes them: <DIR>/<function>/bootstrap and
    /// <DIR>/<function>/<function>.zip, hello-world's bootstrap beside them.
    #[arg(long, value_name = "DIR", default_value_os_t = target_dir().join("lambda"))]
    lambda_dir: PathBuf,
    /// Lanes of the reconciler's pass (a third as many services, each in dev, staging and
    /// prod).
    #[arg(long, default_value_t = 3000)]
    reconcile_lanes: usize,
    /// Only the reconciler's pass over --reconcile-lanes lanes, printed; BENCHMARKS.md is not
    /// written.
    #[arg(long)]
    reconcile_only: bool,
    /// Only the first push against the Python peer's, the median of --runs fresh processes
    /// with and without a network's delay, printed; BENCHMARKS.md is not written.
    #[arg(long)]
    first_push_only: bool,
    /// The child side of the client-construction measurement (the bench runs itself so).
    #[arg(long, hide = true)]
    client_construction: bool,
}

/// What `--help` ends with: where the bench finds what it measures.
const AFTER_HELP: &str = "\
The target directory is the one this binary was built in: the release-profile variants
(profiles/, by bench/profiles.sh), the entropy probes (entropy-probe/) and criterion's
figures (criterion/, by `cargo bench -p shiplane --bench decision`) are read from it; the
rows of what is missing say so or are left out. The local AWS emulator is the one
AWS_ENDPOINT_URL names (set by infra/local/with-emulator.sh); SHIPLANE_PYTHON names the
Python that runs the peer (default: the project venv's).";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.client_construction {
        return client_construction_child().await;
    }
    let (runs, events, out) = (args.runs, args.events, args.out);
    // The artifacts as `make build` makes them; the floor built the same way.
    let lambda = args.lambda_dir;
    let started = Instant::now();
    let reconcile_lanes = args.reconcile_lanes;

    // `--reconcile-only`: just the reconciler's pass over `--reconcile-lanes` lanes,
    // printed (BENCHMARKS.md is not written).
    if args.reconcile_only {
        let r = reconciler_pass(reconcile_lanes).await;
        println!("{}", reconciler_md(&r));
        return;
    }

    let w = world().await;
    let bootstrap = |name: &str| Subject::Binary(lambda.join(name).join("bootstrap"));
    let hello = bootstrap("hello-world");
    let image_push = bootstrap("image-push");
    let deployment_events = bootstrap("deployment-events");
    let peer = Subject::PythonPeer;
    let subjects: Vec<(&str, &Subject)> = vec![
        ("hello-world (floor)", &hello),
        ("image-push", &image_push),
        ("deployment-events", &deployment_events),
        ("Python peer (boto3)", &peer),
    ];

    // `--first-push-only`: just the first push against the peer's, median of `--runs`
    // fresh processes with and without a network's delay, printed (BENCHMARKS.md is not
    // written): to see the effect of a change in minutes.
    if args.first_push_only {
        for delay in [0, ROUND_TRIP_MS] {
            for (name, subject) in [("image-push", &image_push), ("peer", &peer)] {
                let mut xs = Vec::new();
                for _ in 0..runs {
                    xs.push(first_push_ms(subject, delay).await);
                }
                let (median, p90) = stats(xs);
                println!(
                    "first push, {delay} ms per AWS answer: {name} median {median:.1} ms, p90 {p90:.1} ms ({runs} fresh processes)"
                );
            }
        }
        return;
    }

    // Cold start.
    let mut cold = BTreeMap::new();
    eprintln!("cold start × {runs}, in turns");
    let all: Vec<&Subject> = subjects.iter().map(|(_, s)| *s).collect();
    for ((name, _), xs) in subjects.iter().zip(cold_starts(&all, &w.env, runs).await) {
        cold.insert(*name, stats(xs));
    }

    eprintln!("client construction × {runs}");
    let (clients, clients_total) = client_construction(runs);

    // Latency against the emulator.
    eprintln!("latency");
    let p = w.p.clone();
    let first_push = push_event(&format!("{p}/api"), "v1.0.0");
    let replay = first_push.clone();
    let lat_push = latency(
        &image_push,
        &w.env,
        first_push,
        move |_| replay.clone(),
        50,
        "the same push again (replay: claim found)",
    )
    .await;
    let w2 = world().await;
    let first_peer = push_event(&format!("{}/api", w2.p), "v1.0.0");
    let replay = first_peer.clone();
    let lat_peer = latency(
        &peer,
        &w2.env,
        first_peer,
        move |_| replay.clone(),
        50,
        "the same push again (replay: claim found)",
    )
    .await;
    let lat_events = latency(
        &deployment_events,
        &w.env,
        task_stopped_unknown(0),
        task_stopped_unknown,
        50,
        "a task Shiplane did not start (ignored)",
    )
    .await;
    let lat_hello = latency(
        &hello,
        &w.env,
        json!({"hello": 0}),
        |i| json!({"hello": i}),
        50,
        "echo",
    )
    .await;

    // The first push again, in fresh worlds and processes, five times each (a single first
    // event is noisy): with the emulator's own time only, and with a network's delay on
    // every answer, where round trips count as they do in AWS.
    eprintln!("first push × 5, without and with {ROUND_TRIP_MS} ms per AWS answer");
    let mut firsts: BTreeMap<(&str, u64), Vec<f64>> = BTreeMap::new();
    for _ in 0..5 {
        for delay in [0, ROUND_TRIP_MS] {
            for (name, subject) in [("image-push", &image_push), ("peer", &peer)] {
                let ms = first_push_ms(subject, delay).await;
                firsts.entry((name, delay)).or_default().push(ms);
            }
        }
    }
    let first = |name: &str, delay: u64| stats(firsts[&(name, delay)].clone()).0;
    let (delayed_push, delayed_peer) = (
        first("image-push", ROUND_TRIP_MS),
        first("peer", ROUND_TRIP_MS),
    );
    let (plain_push, plain_peer) = (first("image-push", 0), first("peer", 0));

    // Peak RSS over `events` events each.
    eprintln!("peak RSS over {events} events");
    let w3 = world().await;
    let p3 = w3.p.clone();
    let rss_push = peak_rss(
        &image_push,
        &w3.env,
        move |i| synthetic_push(&p3, "api", i),
        events,
    )
    .await;
    let w4 = world().await;
    let p4 = w4.p.clone();
    let rss_peer = peak_rss(
        &peer,
        &w4.env,
        move |i| synthetic_push(&p4, "api", i),
        events,
    )
    .await;
    let rss_events = peak_rss(&deployment_events, &w.env, task_stopped_unknown, events).await;
    let rss_hello = peak_rss(&hello, &w.env, |i| json!({"hello": i}), events).await;

    // AWS calls per event, per step of a release.
    eprintln!("AWS calls per event");
    let w5 = world().await;
    let p5 = w5.p.clone();
    let api = RuntimeApi::start().await;
    let _f = spawn(&api, &image_push, &w5.env);
    api.first_poll(Duration::from_secs(60)).await;
    let mut answered = 0;
    let mut steps: Vec<(String, Calls)> = Vec::new();
    let push1 = push_event(&format!("{p5}/api"), "v1.0.0");
    for (label, event) in [
        (
            "image-push: push, free lane → blue-green deployment",
            push1.clone(),
        ),
        (
            "image-push: push while one is in flight → queued",
            push_event(&format!("{p5}/api"), "v1.0.1"),
        ),
        (
            "image-push: another push → the queued one superseded",
            push_event(&format!("{p5}/api"), "v1.0.2"),
        ),
        ("image-push: the first push delivered again (replay)", push1),
        (
            "image-push: push of a service with a migration → RunTask",
            push_event(&format!("{p5}/db"), "v1"),
        ),
        (
            "image-push: push of data jobs → two revisions, succeeded",
            push_event(&format!("{p5}/etl"), "20261116-abc1234"),
        ),
    ] {
        let (calls, answer) = calls_for(&api, &mut answered, event).await;
        assert!(answer.get("error").is_none(), "{label}: {answer}");
        steps.push((label.to_string(), calls));
    }
    drop(_f);
    // The migration's task stops: deployment-events starts the deployment.
    let store = shiplane::store::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&shiplane_e2e::aws_config().await),
        w5.env.vars[0].1.clone(),
    );
    let db = store
        .releases_of_service("db", 1)
        .await
        .expect("releases")
        .remove(0);
    let task_arn = db.stages["dev"]
        .deployment_id
        .clone()
        .expect("migration task");
    let stopped = shiplane_e2e::provision(&[
        "task-stopped",
        "--cluster",
        &format!("{p5}-dev"),
        "--task-arn",
        &task_arn,
        "--exit-code",
        "0",
    ]);
    let api = RuntimeApi::start().await;
    let _f = spawn(&api, &deployment_events, &w5.env);
    api.first_poll(Duration::from_secs(60)).await;
    let mut answered = 0;
    let (calls, answer) = calls_for(&api, &mut answered, stopped).await;
    assert!(answer.get("error").is_none(), "task stopped: {answer}");
    steps.push((
        "deployment-events: migration task stopped, exit 0 → deployment".into(),
        calls,
    ));
    drop(_f);
    let w6 = world().await;
    let api = RuntimeApi::start().await;
    let _f = spawn(&api, &peer, &w6.env);
    api.first_poll(Duration::from_secs(60)).await;
    let mut answered = 0;
    let (calls, answer) = calls_for(
        &api,
        &mut answered,
        push_event(&format!("{}/api", w6.p), "v1.0.0"),
    )
    .await;
    assert!(answer.get("error").is_none(), "peer: {answer}");
    steps.push((
        "Python peer: push, free lane → blue-green deployment".into(),
        calls,
    ));
    drop(_f);

    // A release's later steps, one per function (the engine as each function runs it).
    eprintln!("AWS calls per step of a release, per function");
    let life = Box::pin(release_steps()).await;
    for step in &life {
        steps.push((
            format!("{}: {}", step.function, step.what),
            Calls {
                by_operation: step.cost.by_operation(),
                round_trips: step.cost.trips.clone(),
            },
        ));
    }

    // The reconciler's pass over a large pipeline.
    eprintln!("a reconciler pass over {reconcile_lanes} lanes");
    let recon = Box::pin(reconciler_pass(reconcile_lanes)).await;

    // Artifacts.
    // Every function the stack deploys (functions/<name>), each held to the zip target.
    let mut functions: Vec<String> = std::fs::read_dir(workspace().join("functions"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    functions.sort();
    let zips: Vec<(String, Option<u64>, Option<u64>)> = functions
        .iter()
        .map(|f| {
            (
                f.to_string(),
                file_size(&lambda.join(f).join("bootstrap")),
                file_size(&lambda.join(f).join(format!("{f}.zip"))),
            )
        })
        .collect();

    // Release-profile variants, if bench/profiles.sh built them.
    let mut variants = Vec::new();
    let profiles = target_dir().join("profiles");
    if let Ok(dir) = std::fs::read_dir(&profiles) {
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let bin = profiles.join(&name).join("image-push");
            let hello_bin = profiles.join(&name).join("hello-world");
            if !bin.exists() {
                continue;
            }
            eprintln!("profile variant {name}");
            let pair = [
                Subject::Binary(bin.clone()),
                Subject::Binary(hello_bin.clone()),
            ];
            let mut xs = cold_starts(&[&pair[0], &pair[1]], &w.env, runs).await;
            let h = stats(xs.pop().unwrap_or_default());
            let c = stats(xs.pop().unwrap_or_default());
            variants.push((name, file_size(&bin), file_size(&hello_bin), c, h));
        }
    }

    let jitter = first_random_draw("jitter", runs);
    let os_entropy = first_random_draw("os", runs);

    // Core decision (criterion, run by `make bench` before this).
    let decision = criterion_median_ns("decision_push_to_free_lane_1000_services");
    let parse = criterion_median_ns("pipeline_parse_and_validate_1000_services");

    // ---- BENCHMARKS.md ----
    let floor = cold["hello-world (floor)"].0;
    let peer_cold = cold["Python peer (boto3)"].0;
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `make bench` on {} in {:.0} s. Machine: {}.\n",
        Timestamp::now(),
        started.elapsed().as_secs_f64(),
        machine()
    );
    let _ = writeln!(
        md,
        "Every figure below comes from this one run; ratios compare against the hello-world `lambda_runtime` binary (the floor: same tokio runtime, same log subscriber, echoes its event) and a Python 3.11 peer doing the same job with boto3 on `awslambdaric`, Lambda's own Python runtime client (`bench/python-peer/image_push.py`; it does only the happy path, none of Shiplane's lane logic). Functions run as Lambda runs them: behind a local Lambda Runtime API on 127.0.0.1, against the local AWS emulator (moto), release builds linked as `make build` links them (non-PIE; the floor too).\n"
    );
    let _ = writeln!(md, "## Targets\n\n| target | measured | |\n|---|---|---|");
    let push_cold = cold["image-push"].0;
    let events_cold = cold["deployment-events"].0;
    let worst_cold = push_cold.max(events_cold);
    let _ = writeln!(
        md,
        "| cold start ≤ 1.25× hello-world | {:.2}× (image-push), {:.2}× (deployment-events); {:.2}× with all four SDK clients built (see Cold start) | {} |",
        push_cold / floor,
        events_cold / floor,
        (push_cold + clients_total) / floor,
        check(worst_cold <= 1.25 * floor)
    );
    let _ = writeln!(
        md,
        "| cold start ≥ 5× faster than the Python peer | {:.1}× (image-push), {:.1}× (deployment-events) | {} |",
        peer_cold / push_cold,
        peer_cold / events_cold,
        check(peer_cold >= 5.0 * worst_cold)
    );
    let worst_rss = rss_push.max(rss_events);
    let _ = writeln!(
        md,
        "| peak RSS ≤ 24 MB over {events} events | {:.1} MiB (image-push), {:.1} MiB (deployment-events) | {} |",
        rss_push,
        rss_events,
        check(worst_rss * 1.048_576 <= 24.0)
    );
    let worst_zip = zips.iter().filter_map(|z| z.2).max().unwrap_or(u64::MAX);
    let _ = writeln!(
        md,
        "| each zip ≤ 4 MB (every function) | largest {} ({}) | {} |",
        mib(worst_zip),
        zips.iter()
            .max_by_key(|z| z.2)
            .map_or("-", |z| z.0.as_str()),
        check(worst_zip as f64 <= 4_000_000.0)
    );
    // Sequential round trips per step (issue: "Fewer round trips per event").
    let trips = |prefix: &str| {
        steps
            .iter()
            .find(|(label, _)| label.starts_with(prefix))
            .map(|(_, c)| c.round_trips.len())
    };
    for (target, prefix, most) in [
        (
            "first push to a free blue/green lane ≤ 8 sequential round trips",
            "image-push: push, free lane",
            8,
        ),
        (
            "push that queues ≤ 4 sequential round trips",
            "image-push: push while one is in flight",
            4,
        ),
        (
            "push that supersedes ≤ 4 sequential round trips",
            "image-push: another push",
            4,
        ),
        (
            "replay of a handled push: 1 round trip",
            "image-push: the first push delivered again",
            1,
        ),
    ] {
        if let Some(n) = trips(prefix) {
            let peer = if prefix.starts_with("image-push: push, free lane") {
                trips("Python peer")
                    .map(|p| format!(" (Python peer: {p})"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let _ = writeln!(md, "| {target} | {n}{peer} | {} |", check(n <= most));
        }
    }
    for step in &life {
        let n = step.cost.trips.len();
        let _ = writeln!(
            md,
            "| {}: {} ≤ {} sequential round trips | {n} | {} |",
            step.function,
            step.what,
            step.target,
            check(n <= step.target)
        );
    }
    let _ = writeln!(
        md,
        "| reconciler: a pass over {} lanes ≤ 1,200 sequential round trips (a fifth of its 300 s timeout at 50 ms each) | {} ({:.1} s against the emulator, {ROUND_TRIP_MS} ms per AWS answer) | {} |",
        recon.lanes,
        recon.calls.round_trips.len(),
        recon.ms / 1000.0,
        check(recon.calls.round_trips.len() <= 1200 && recon.lanes_failed == 0)
    );
    let _ = writeln!(
        md,
        "| first push: first-event latency ≤ the Python peer's, {ROUND_TRIP_MS} ms per AWS answer (as a network; median of 5 fresh processes) | {delayed_push:.1} ms (peer {delayed_peer:.1} ms) | {} |",
        check(delayed_push <= delayed_peer)
    );
    let _ = writeln!(
        md,
        "| first push: first-event latency ≤ the Python peer's, emulator alone (no delay; median of 5 fresh processes) | {plain_push:.1} ms (peer {plain_peer:.1} ms) | {} |",
        check(plain_push <= plain_peer)
    );
    match decision {
        Some(ns) => {
            let _ = writeln!(
                md,
                "| core decision ≤ 50 µs | {:.1} µs | {} |",
                ns / 1000.0,
                check(ns <= 50_000.0)
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| core decision ≤ 50 µs | not measured (run `cargo bench -p shiplane --bench decision`) | |"
            );
        }
    }

    let _ = writeln!(
        md,
        "\n## Cold start (process start → first poll for work, {runs} starts each)\n\n| function | median | p90 | × hello-world | Python peer ÷ this |\n|---|---|---|---|---|"
    );
    for (name, _) in &subjects {
        let (m, p90) = cold[name];
        let _ = writeln!(
            md,
            "| {name} | {m:.1} ms | {p90:.1} ms | {:.2}× | {:.1}× |",
            m / floor,
            peer_cold / m
        );
    }
    let _ = writeln!(
        md,
        "\nThe functions build each SDK client when an event first calls its service (`OnFirstUse` in `shared/src/sdk.rs`), not at start-up: events that call none (the untagged children and attestations of a multi-arch push, a task Shiplane did not start) never pay for them, and an event that calls all four pays once per process. Building a client is mostly its SDK crate parsing the endpoint partition table and compiling the region patterns, once per crate. Measured in fresh processes, {runs} each, median:\n\n| client | first build in a process |\n|---|---|"
    );
    for (name, ms) in CLIENTS.iter().zip(&clients) {
        let _ = writeln!(md, "| {name} | {ms:.2} ms |");
    }
    let _ = writeln!(
        md,
        "| all four | {clients_total:.2} ms |\n\nCold start plus all four clients, what a cold start followed by a push that deploys costs before its first AWS call: image-push {:.1} ms, {:.2}× the floor.",
        push_cold + clients_total,
        (push_cold + clients_total) / floor
    );

    let _ = writeln!(
        md,
        "\n## Latency against the local emulator\n\nFirst event: the first invocation of a fresh process (connection set-up included). Steady state: median and p90 of 50 further invocations of the path named. The emulator is single-threaded Python, so absolute figures are the emulator's more than the function's; compare the rows.\n\n| function | first event | steady path | steady median | steady p90 |\n|---|---|---|---|---|"
    );
    for (name, l) in [
        (
            "image-push (first push: release, revision, deployment, 3 notifications)",
            &lat_push,
        ),
        ("Python peer (first push: same job)", &lat_peer),
        ("deployment-events", &lat_events),
        ("hello-world", &lat_hello),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {:.1} ms | {} | {:.2} ms | {:.2} ms |",
            l.first, l.steady_path, l.steady.0, l.steady.1
        );
    }

    let _ = writeln!(
        md,
        "\n## Peak RSS over {events} events (`VmHWM` of the process)\n\n| function | events | peak RSS | × hello-world |\n|---|---|---|---|"
    );
    for (name, rss, what) in [
        (
            "image-push",
            rss_push,
            "distinct pushes: one deployment, then queue and supersede",
        ),
        (
            "deployment-events",
            rss_events,
            "task stops Shiplane did not start",
        ),
        (
            "Python peer (boto3)",
            rss_peer,
            "distinct pushes: revision each, then queued",
        ),
        ("hello-world (floor)", rss_hello, "echo"),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {what} | {rss:.1} MiB | {:.2}× |",
            rss / rss_hello
        );
    }

    let _ = writeln!(
        md,
        "\n## AWS calls per event, by step of a release\n\nCounted by the emulator for exactly one event each, every answer delayed {ROUND_TRIP_MS} ms as a network's would be. Sequential round trips are the critical path of the calls: a call's round trip is one more than the deepest of the calls answered before it was sent; calls in flight together share one (`∥` below). The image-push and migration rows are the built functions behind a Lambda Runtime API, in one process (the first push is its first event: nothing cached); the deploy-hook, deployment-events, promote, CLI approve and alarm rows run the engine in-process as each function does (same entry point, same adapters), each in a fresh process's state, along one release of a three-environment pipeline (`shiplane_e2e::round_trips::release_steps`; `tests/tests/round_trips.rs` holds every row to its target).\n"
    );
    for (label, calls) in &steps {
        let total: u64 = calls.by_operation.values().sum();
        let _ = writeln!(
            md,
            "**{label}**: {total} calls in {} sequential round trips\n\n| call | count | why |\n|---|---|---|",
            calls.round_trips.len()
        );
        for (op, n) in &calls.by_operation {
            let _ = writeln!(md, "| {op} | {n} | {} |", why(op));
        }
        let path: Vec<String> = calls
            .round_trips
            .iter()
            .map(|wave| wave.join(" ∥ "))
            .collect();
        let _ = writeln!(md, "\nRound trips, in order: {}\n", path.join(" → "));
    }

    let _ = writeln!(md, "## Reconciler pass\n\n{}", reconciler_md(&recon));
    let _ = writeln!(
        md,
        "## Artifacts (`make build`)\n\n| function | bootstrap | zip |\n|---|---|---|"
    );
    for (f, bin, zip) in &zips {
        let _ = writeln!(
            md,
            "| {f} | {} | {} |",
            bin.map(mib).unwrap_or_else(|| "not built".into()),
            zip.map(mib).unwrap_or_else(|| "not built".into())
        );
    }

    let _ = writeln!(
        md,
        "\n## Core decision (criterion)\n\nParse the ECR event, look the service up in a 1,000-service pipeline, build its stage policy, apply the state machine; no I/O.\n\n| benchmark | median |\n|---|---|"
    );
    if let Some(ns) = decision {
        let _ = writeln!(
            md,
            "| push to a free lane, 1,000-service pipeline | {:.1} µs |",
            ns / 1000.0
        );
    }
    for part in [
        "decision_part_parse_event",
        "decision_part_lookup_service_and_policy",
        "decision_part_new_release_and_apply",
    ] {
        if let Some(ns) = criterion_median_ns(part) {
            let _ = writeln!(
                md,
                "| … of which {} | {:.2} µs |",
                part.trim_start_matches("decision_part_").replace('_', " "),
                ns / 1000.0
            );
        }
    }
    if let Some(ns) = parse {
        let _ = writeln!(
            md,
            "| parse and validate the 1,000-service pipeline (cold invocation only; warm ones reuse it) | {:.1} ms |",
            ns / 1e6
        );
    }

    let _ = writeln!(md, "\n## Release profile, by measurement\n");
    if variants.is_empty() {
        let _ = writeln!(
            md,
            "Not measured in this run: `bench/profiles.sh` builds the variants (one full release build each), then `make bench` measures them."
        );
    } else {
        let _ = writeln!(
            md,
            "Cumulative variants built by `bench/profiles.sh`; cold start median of {} starts each, image-push and hello-world in turns, measured in this run.\n\n| variant | image-push size | hello-world size | image-push cold start | hello-world cold start |\n|---|---|---|---|---|",
            runs
        );
        for (name, size, hsize, c, h) in &variants {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {:.1} ms | {:.1} ms |",
                size.map(mib).unwrap_or_default(),
                hsize.map(mib).unwrap_or_default(),
                c.0,
                h.0
            );
        }
    }
    let _ = writeln!(
        md,
        "\n## TLS crypto: aws-lc's first random bytes\n\nThe SDK's TLS (rustls on aws-lc) draws random bytes at the first handshake after every cold start; aws-lc seeds its generator on that first draw. By default it gathers CPU jitter entropy for the seed; built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1` (set in `.cargo/config.toml`) it seeds from the kernel (`getrandom`), as ring and BoringSSL do. `bench/entropy-probe`, built both ways by `bench/profiles.sh`, times that first draw in fresh processes ({runs} each, median). The emulator speaks plain HTTP, so the latency rows above never include it; against AWS every cold start does.\n"
    );
    match (jitter, os_entropy) {
        (Some(j), Some(o)) => {
            let _ = writeln!(
                md,
                "| aws-lc built | first random draw |\n|---|---|\n| with CPU jitter entropy (aws-lc's default) | {:.1} ms |\n| seeded from the kernel (shipped) | {:.3} ms |\n\nShipping without jitter entropy takes {:.1} ms off the first AWS call after each cold start.",
                j / 1000.0,
                o / 1000.0,
                (j - o) / 1000.0
            );
        }
        _ => {
            let _ = writeln!(
                md,
                "Not measured in this run: `bench/profiles.sh` builds the probe both ways."
            );
        }
    }
    // Sections this run does not measure are kept as they were written: the first run from
    // a clean clone (`bench/first-run.sh` builds from nothing, twice) and the capacity model.
    if let Ok(old) = std::fs::read_to_string(&out) {
        for heading in KEPT {
            if let Some(kept) = section(&old, heading) {
                let _ = write!(md, "\n{kept}");
            }
        }
    }
    std::fs::write(&out, md).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    eprintln!(
        "wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Headings of BENCHMARKS.md sections written by hand or by another script, which a run
/// of `make bench` keeps.
const KEPT: [&str; 2] = [
    "## First run from a clean clone",
    "## Concurrency each function is sized for",
];

/// The section under `heading` in an earlier BENCHMARKS.md: from its heading to the next
/// one (or the end), trailing blank lines dropped.
fn section(old: &str, heading: &str) -> Option<String> {
    let start = old.find(heading)?;
    let rest = &old[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| i + heading.len() + 1);
    Some(format!("{}\n", rest[..end].trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_are_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    /// What the Makefile (`make bench`), docs/testing.md and the bench itself (its
    /// client-construction child) pass.
    #[test]
    fn every_caller_s_arguments_parse() {
        let parse = |line: &str| Args::try_parse_from(line.split_whitespace());
        let make = parse("bench --events 1000 --lambda-dir target/lambda --out BENCHMARKS.md")
            .expect("make bench");
        assert_eq!((make.runs, make.events), (40, 1000));
        assert_eq!(make.lambda_dir, PathBuf::from("target/lambda"));
        assert_eq!(make.out, PathBuf::from("BENCHMARKS.md"));
        let first = parse("bench --first-push-only --runs 9").expect("--first-push-only");
        assert!(first.first_push_only && !first.reconcile_only);
        assert_eq!(first.runs, 9);
        let recon = parse("bench --reconcile-only --reconcile-lanes 300").expect("reconcile");
        assert!(recon.reconcile_only);
        assert_eq!(recon.reconcile_lanes, 300);
        let defaults = parse("bench --reconcile-only").expect("defaults");
        assert_eq!(defaults.reconcile_lanes, 3000);
        assert_eq!(defaults.lambda_dir, target_dir().join("lambda"));
        assert!(parse("bench --client-construction").is_ok_and(|a| a.client_construction));
    }

    #[test]
    fn a_kept_section_is_kept_whole_and_alone() {
        let first = KEPT[0];
        let old = format!(
            "# Benchmarks\n\n## Targets\n\nx\n\n{first}\n\nmeasured: 7 min\n\n| a | b |\n\n\n## Artifacts\n\ny\n"
        );
        assert_eq!(
            section(&old, first),
            Some(format!("{first}\n\nmeasured: 7 min\n\n| a | b |\n"))
        );
        let last = format!("# Benchmarks\n\n{}\n\nz (a model)\n", KEPT[1]);
        assert_eq!(
            section(&last, KEPT[1]),
            Some(format!("{}\n\nz (a model)\n", KEPT[1]))
        );
        assert_eq!(section("# Benchmarks\n\n## Targets\n", first), None);
    }
}
