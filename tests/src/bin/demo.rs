//! `make demo`: the whole release story against the local AWS, with the real function
//! binaries behind local Lambda Runtime APIs and the real `shiplane` CLI.
//!
//! Where the emulator cannot do what AWS does (run a CodeDeploy deployment and call its
//! hooks, run ECS deployments, emit EventBridge events, fire Scheduler schedules), this
//! driver plays that part with the real payload shapes. Every step checks what it scripted
//! and the demo exits 1 at the first that did not happen. `SHIPLANE_DEMO_BREAK=v1-health`
//! breaks the first version's health on purpose (the test of that exit).
//! `SHIPLANE_DEMO_WORLD=FILE` writes where the story happens (table, topic, schedule group,
//! function and role ARNs) to FILE as JSON, so a test can look at it afterwards (the
//! dashboard's browser test does).

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use serde_json::{Value, json};
use shiplane::release::{ReleaseId, StageState, Timestamp, Transition};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::check_server::CheckServer;
use shiplane_e2e::runtime_api::{Function, RuntimeApi};
use shiplane_e2e::{Account, TempDir, account, fresh_store, provision, push_event, workspace};

const WAIT: Duration = Duration::from_secs(60);
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

type Step<T> = Result<T, String>;

/// A function binary behind its own Runtime API.
struct Lambda {
    api: RuntimeApi,
    _function: Function,
    name: String,
    invoked: usize,
}

impl Lambda {
    async fn start(bin: &Path, crate_name: &str, env: &[(&str, &str)]) -> Lambda {
        let api = RuntimeApi::start().await;
        let name = format!("shiplane-{crate_name}");
        let function = api.spawn(&bin.join(crate_name), &name, env);
        Lambda {
            api,
            _function: function,
            name,
            invoked: 0,
        }
    }

    /// Delivers one event (through `qualifier`'s alias when given) and waits for the answer.
    async fn call(&mut self, event: Value, qualifier: Option<&str>) -> Step<Value> {
        let arn = format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}{}",
            self.name,
            qualifier.map(|q| format!(":{q}")).unwrap_or_default()
        );
        self.api.invoke_as(event, &arn, Duration::from_secs(30));
        self.invoked += 1;
        let out = self.api.wait_for(self.invoked, WAIT).await;
        match out.last().map(|o| o.result.clone()) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(format!("{} returned an error: {e}", self.name)),
            None => Err(format!("{} did not answer", self.name)),
        }
    }
}

struct Demo {
    p: String,
    bin: PathBuf,
    store: DynamoStore,
    account: Account,
    check: CheckServer,
    image_push: Lambda,
    events: Lambda,
    hook: Lambda,
    promote: Lambda,
    alarm: Lambda,
    printed: HashSet<String>,
    labels: BTreeMap<ReleaseId, String>,
    _dir: TempDir,
}

/// `text` in an ANSI style when the stream is a terminal and NO_COLOR (no-color.org) is
/// not set; plain otherwise, so a log file or a pipe gets no escape codes.
fn styled(code: &str, text: &str, terminal: bool) -> String {
    let wanted = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if wanted {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

fn bold(text: &str) {
    println!(
        "\n{}",
        styled("1", &format!("▶ {text}"), stdout_is_terminal())
    );
}

fn say(text: &str) {
    println!("  {text}");
}

/// One line saying the driver plays AWS here.
fn plays(text: &str) {
    println!(
        "  {}",
        styled("2", &format!("(local AWS: {text})"), stdout_is_terminal())
    );
}

/// `text` cut to at most `max` characters at a word's end, with "…" when cut.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let at_word = cut.rfind(' ').map_or(cut.as_str(), |i| &cut[..i]);
    format!("{}…", at_word.trim_end_matches([',', ':', ';']))
}

fn clock(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(11..19).unwrap_or(&s).to_string()
}

impl Demo {
    async fn setup(p: &str, bin: PathBuf) -> Step<Demo> {
        let check = CheckServer::start().await;
        let template = std::fs::read_to_string(workspace().join("infra/pipeline.demo.toml"))
            .map_err(|e| format!("infra/pipeline.demo.toml: {e}"))?;
        let source = template
            .replace("@P@", p)
            .replace("@CHECK_BASE@", &check.base);
        let dir = TempDir::new("shiplane-demo");
        let file = dir.file("pipeline.toml", &source);
        bold("The local AWS is up: creating what a real account has");
        say(
            "ECR repositories, ECS clusters and services (the api with the CODE_DEPLOY controller,",
        );
        say("in a VPC), task definitions, CodeDeploy application and groups per environment, the");
        say("bake-timer schedule group, the SNS topic with an SQS subscription, and the table.");
        let account = account(&source, &format!("{p}-releases"));
        let store = fresh_store().await;
        provision(&[
            "alarm",
            "--name",
            &format!("{p}-api-dev-5xx"),
            "--state",
            "OK",
        ]);
        if let Some(file) = std::env::var_os("SHIPLANE_DEMO_WORLD") {
            let world = json!({
                "table": store.table(),
                "topic_arn": account.topic_arn,
                "queue_url": account.queue_url,
                "schedule_group": account.schedule_group,
                "promote_function_arn": account.promote_function_arn,
                "scheduler_role_arn": account.scheduler_role_arn,
            });
            std::fs::write(&file, world.to_string())
                .map_err(|e| format!("SHIPLANE_DEMO_WORLD {}: {e}", Path::new(&file).display()))?;
        }
        let demo_env = account.function_env(&store);
        let env: Vec<(&str, &str)> = demo_env.iter().map(|(k, v)| (*k, *v)).collect();
        let demo = Demo {
            p: p.to_string(),
            image_push: Lambda::start(&bin, "image-push", &env).await,
            events: Lambda::start(&bin, "deployment-events", &env).await,
            hook: Lambda::start(&bin, "deploy-hook", &env).await,
            promote: Lambda::start(&bin, "promote", &env).await,
            alarm: Lambda::start(&bin, "alarm", &env).await,
            bin,
            store,
            account,
            check,
            printed: HashSet::new(),
            labels: BTreeMap::new(),
            _dir: dir,
        };
        bold("Apply the pipeline file (dev → staging → prod; infra/pipeline.demo.toml)");
        demo.cli(&["config", "apply", file.to_str().unwrap_or_default()])?;
        say(&format!(
            "the service under test answers its health check at {}",
            demo.check.base
        ));
        Ok(demo)
    }

    /// Runs the `shiplane` CLI; prints what it says; its stdout, or why it failed.
    fn cli(&self, args: &[&str]) -> Step<String> {
        let out = Command::new(self.bin.join("shiplane"))
            .arg("--table")
            .arg(self.store.table())
            .args(args)
            .env("SHIPLANE_TOPIC_ARN", &self.account.topic_arn)
            .env("SHIPLANE_HOOK_FUNCTION", "shiplane-deploy-hook")
            .env("SHIPLANE_SCHEDULE_GROUP", &self.account.schedule_group)
            .env(
                "SHIPLANE_PROMOTE_FUNCTION_ARN",
                &self.account.promote_function_arn,
            )
            .env(
                "SHIPLANE_SCHEDULER_ROLE_ARN",
                &self.account.scheduler_role_arn,
            )
            .env("SHIPLANE_ACTOR", "ana (on call)")
            .output()
            .map_err(|e| format!("run shiplane: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in stdout.lines() {
            println!("    {line}");
        }
        if !out.status.success() {
            return Err(format!(
                "shiplane {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(stdout)
    }

    /// Prints the transitions recorded since the last call: the live timeline.
    async fn timeline(&mut self) -> Step<()> {
        let mut all: Vec<Transition> = Vec::new();
        for service in ["api", "etl", "tiles"] {
            all.extend(
                self.store
                    .history_of_service(service, 1000)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        all.sort_by_key(|t| t.at);
        for t in all {
            let key = format!("{:?}", t);
            if !self.printed.insert(key) {
                continue;
            }
            let label = match &t.release {
                Some(id) => self.label(id).await,
                None => "-".into(),
            };
            let moved = match (t.from, t.to) {
                (from, Some(to)) if from != Some(to) => format!(
                    "{} → {}",
                    from.map(|f| f.as_str()).unwrap_or("new"),
                    to.as_str()
                ),
                _ => String::new(),
            };
            let why = [t.actor.clone(), t.detail.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            let why = short(&why, 90);
            println!(
                "  {}  {:<6} {:<8} {:<6} {:<28} {:<20} {}",
                clock(t.at),
                t.service,
                t.environment,
                label,
                moved,
                t.cause.as_str(),
                why
            );
        }
        Ok(())
    }

    async fn label(&mut self, id: &ReleaseId) -> String {
        if let Some(l) = self.labels.get(id) {
            return l.clone();
        }
        let label = match self.store.release(id).await {
            Ok(Some(r)) => r.item.label(),
            _ => id.as_str()[..10].to_string(),
        };
        self.labels.insert(id.clone(), label.clone());
        label
    }

    async fn state(&self, id: &ReleaseId, env: &str) -> Step<Option<StageState>> {
        Ok(self
            .store
            .release(id)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|r| r.item.state_in(env)))
    }

    async fn expect(&self, id: &ReleaseId, env: &str, want: StageState) -> Step<()> {
        match self.state(id, env).await? {
            Some(s) if s == want => Ok(()),
            other => Err(format!(
                "{} should be {} in {env}, but is {}",
                self.labels.get(id).map_or(id.as_str(), String::as_str),
                want.as_str(),
                other.map_or("not there", |s| s.as_str())
            )),
        }
    }

    async fn deployment(&self, id: &ReleaseId, env: &str) -> Step<String> {
        self.store
            .release(id)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|r| {
                r.item
                    .stages
                    .get(env)
                    .and_then(|s| s.started().map(str::to_string))
            })
            .ok_or_else(|| format!("release {id} has no deployment in {env}"))
    }

    /// tiles' dev service as ECS describes it: its desired count, and the tag a stop-first
    /// migration keeps the count it had in.
    async fn tiles_dev(&self) -> Step<(i32, Option<String>)> {
        let ecs = aws_sdk_ecs::Client::new(&shiplane_e2e::aws_config().await);
        let out = ecs
            .describe_services()
            .cluster(format!("{}-dev", self.p))
            .services(format!("{}-tiles-dev", self.p))
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .map_err(|e| format!("ECS DescribeServices: {e:?}"))?;
        let svc = out
            .services()
            .first()
            .ok_or("ECS does not know tiles' dev service")?;
        let tag = svc
            .tags()
            .iter()
            .find(|t| t.key() == Some("shiplane:stopped-from"))
            .and_then(|t| t.value().map(str::to_string));
        Ok((svc.desired_count, tag))
    }

    /// The detail of the newest `cause` in the release's dev history.
    async fn recorded(&self, id: &ReleaseId, cause: shiplane::release::Cause) -> Step<String> {
        let history = self
            .store
            .history_of_release(id)
            .await
            .map_err(|e| e.to_string())?;
        history
            .iter()
            .rev()
            .find(|t| t.environment == "dev" && t.cause == cause)
            .map(|t| t.detail.clone().unwrap_or_default())
            .ok_or_else(|| format!("{id}'s history in dev has no {cause}"))
    }

    /// Pushes an image; EventBridge delivers the push to image-push. The new release.
    async fn push(&mut self, service: &str, tag: &str) -> Step<ReleaseId> {
        let event = push_event(&format!("{}/{service}", self.p), tag);
        let answer = self.image_push.call(event, None).await?;
        let id = answer["release"]
            .as_str()
            .and_then(|r| ReleaseId::parse(r).ok())
            .ok_or_else(|| format!("the push of {service}:{tag} made no release: {answer}"))?;
        self.labels.insert(id.clone(), tag.to_string());
        Ok(id)
    }

    /// Plays CodeDeploy for the release's deployment in `env`: calls the hook (when the
    /// stage has checks), then ends the deployment as the hook's answer says and sends its
    /// state-change event. The hook's status.
    async fn codedeploy(&mut self, id: &ReleaseId, env: &str, with_hook: bool) -> Step<String> {
        let deployment = self.deployment(id, env).await?;
        let mut status = "Succeeded".to_string();
        if with_hook {
            let execution = format!("demo-{}", ulid::Ulid::generate());
            let answer = self
                .hook
                .call(
                    json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": execution}),
                    Some("AfterAllowTestTraffic"),
                )
                .await?;
            let reported = shiplane_e2e::hook_reports(&execution);
            status = reported.first().cloned().ok_or_else(|| {
                format!("the hook answered {answer} but reported nothing to CodeDeploy")
            })?;
            say(&format!(
                "AfterAllowTestTraffic hook → deploy-hook ran the checks; CodeDeploy was told {status}"
            ));
        }
        let (final_status, state) = if status == "Succeeded" {
            ("Succeeded", "SUCCESS")
        } else {
            ("Failed", "FAILURE")
        };
        shiplane_e2e::set_deployment_status(&deployment, final_status);
        let event = shiplane_e2e::codedeploy_event(
            &format!("{}-api", self.p),
            &format!("{}-api-{env}", self.p),
            &deployment,
            state,
        );
        self.events.call(event, None).await?;
        Ok(status)
    }

    /// Fires the due bake timers as Scheduler would (after the 5-second bake, with a
    /// countdown) and delivers each to promote. The answers.
    async fn bake_ends(&mut self) -> Step<Vec<Value>> {
        // A countdown on a terminal; one line in a file.
        let terminal = stdout_is_terminal();
        if !terminal {
            say("baking… 6s");
        }
        for left in (1..=6).rev() {
            if terminal {
                print!("\r  baking… {left}s ");
                let _ = std::io::stdout().flush();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if terminal {
            print!("\r\x1b[K");
        }
        plays("Scheduler fires the bake timer at its minute");
        let fired = shiplane_e2e::fire_schedules(Timestamp(Timestamp::now().0 + 60_000));
        if fired.is_empty() {
            return Err("no bake timer was set".into());
        }
        let mut answers = Vec::new();
        for timer in fired {
            answers.push(self.promote.call(timer, None).await?);
        }
        Ok(answers)
    }

    /// Sets the dev alarm in CloudWatch and delivers its EventBridge state change.
    async fn dev_alarm(&mut self, state: &str) -> Step<()> {
        let name = format!("{}-api-dev-5xx", self.p);
        provision(&["alarm", "--name", &name, "--state", state]);
        let at = chrono_like_now();
        let reason = if state == "ALARM" {
            "Threshold Crossed: 1 datapoint [37.0] was greater than or equal to the threshold (5.0)."
        } else {
            "Threshold Crossed: 1 datapoint [0.0] was not greater than or equal to the threshold (5.0)."
        };
        let event = json!({
            "version": "0", "id": format!("demo-{}", ulid::Ulid::generate()),
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": ACCOUNT, "time": Timestamp::now().to_string(), "region": REGION,
            "resources": [format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")],
            "detail": {
                "alarmName": name,
                "state": {"value": state, "reason": reason, "timestamp": at},
                "previousState": {"value": if state == "ALARM" {"OK"} else {"ALARM"}, "reason": "", "timestamp": at},
                "configuration": {"metrics": []}
            }
        });
        self.alarm.call(event, None).await?;
        Ok(())
    }
}

/// Now as CloudWatch writes timestamps (`2026-11-24T12:00:00.123+0000`).
fn chrono_like_now() -> String {
    let now = Timestamp::now();
    let s = now.to_string(); // 2026-11-24T12:00:00Z
    format!("{}.{:03}+0000", s.trim_end_matches('Z'), now.0 % 1000)
}

async fn run(demo: &mut Demo, broken: bool) -> Step<ReleaseId> {
    bold("1. Push api:v1: dev (blue/green, checked), a bake, then staging and prod by approval");
    if broken {
        say("(SHIPLANE_DEMO_BREAK: v1's health check is broken on purpose)");
        demo.check.set_unhealthy(true);
    }
    let v1 = demo.push("api", "v1").await?;
    demo.expect(&v1, "dev", StageState::Deploying).await?;
    plays("CodeDeploy runs the deployment and calls its hook; the demo plays CodeDeploy");
    demo.codedeploy(&v1, "dev", true).await?;
    demo.timeline().await?;
    demo.expect(&v1, "dev", StageState::Baking).await?;
    let schedules = shiplane_e2e::schedules();
    if let Some(s) = schedules["schedules"].as_array().and_then(|all| {
        all.iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.contains(v1.as_str())))
    }) {
        say(&format!(
            "bake timer: {} {} → {}",
            s["name"].as_str().unwrap_or_default(),
            s["expression"].as_str().unwrap_or_default(),
            s["target"]
                .as_str()
                .unwrap_or_default()
                .rsplit(':')
                .next()
                .unwrap_or_default()
        ));
    }
    demo.bake_ends().await?;
    demo.timeline().await?;
    demo.expect(&v1, "dev", StageState::Succeeded).await?;
    demo.expect(&v1, "staging", StageState::AwaitingApproval)
        .await?;
    say("a person approves staging:");
    demo.cli(&["approve", v1.as_str(), "staging"])?;
    demo.codedeploy(&v1, "staging", false).await?;
    demo.expect(&v1, "prod", StageState::AwaitingApproval)
        .await?;
    say("and prod:");
    demo.cli(&["approve", v1.as_str(), "prod"])?;
    demo.codedeploy(&v1, "prod", false).await?;
    demo.timeline().await?;
    demo.expect(&v1, "prod", StageState::Succeeded).await?;
    say("v1 runs in dev, staging and prod");

    bold(
        "2. Push api:v2, a broken version: its dev check fails, CodeDeploy rolls it back, v1 stays",
    );
    demo.check.set_unhealthy(true);
    let v2 = demo.push("api", "v2").await?;
    let status = demo.codedeploy(&v2, "dev", true).await?;
    demo.check.set_unhealthy(false);
    demo.timeline().await?;
    if status != "Failed" {
        return Err(format!(
            "v2's check should fail its hook, which said {status}"
        ));
    }
    demo.expect(&v2, "dev", StageState::Failed).await?;
    let lane = demo
        .store
        .lane("api", "dev")
        .await
        .map_err(|e| e.to_string())?
        .item;
    if lane.current.as_ref() != Some(&v1) {
        return Err("dev should still run v1".into());
    }
    say("dev still runs v1 (the last known good)");

    bold("3. Push api:v3 and api:v4 at once: v3 deploys, v4 waits in the queue");
    let v3 = demo.push("api", "v3").await?;
    let v4 = demo.push("api", "v4").await?;
    demo.timeline().await?;
    demo.expect(&v3, "dev", StageState::Deploying).await?;
    demo.expect(&v4, "dev", StageState::Queued).await?;

    bold("4. v3 bakes in dev; dev's 5xx alarm fires: v3 rolled back, v1 restored, prod held");
    demo.codedeploy(&v3, "dev", true).await?;
    demo.expect(&v3, "dev", StageState::Baking).await?;
    plays("CloudWatch's alarm changes state and EventBridge delivers it");
    demo.dev_alarm("ALARM").await?;
    demo.timeline().await?;
    demo.expect(&v3, "dev", StageState::RolledBack).await?;
    demo.expect(&v1, "dev", StageState::Deploying).await?;
    say("the restore of v1 is a new deployment of its pinned revision:");
    demo.codedeploy(&v1, "dev", true).await?;
    demo.timeline().await?;
    demo.expect(&v1, "dev", StageState::Succeeded).await?;
    say("while dev's alarm fires, nothing enters prod:");
    let status = demo.cli(&["status", "api"])?;
    if !status.contains("held:") {
        return Err("prod should show its gate held by dev's alarm".into());
    }
    say("the lane is free, but v4 does not start while dev's own alarm fires");
    demo.expect(&v4, "dev", StageState::Queued).await?;
    demo.dev_alarm("OK").await?;
    demo.timeline().await?;
    say("alarm OK: v4 starts");
    demo.expect(&v4, "dev", StageState::Deploying).await?;
    demo.codedeploy(&v4, "dev", true).await?;
    demo.expect(&v4, "dev", StageState::Baking).await?;
    demo.bake_ends().await?;
    demo.timeline().await?;
    demo.expect(&v4, "dev", StageState::Succeeded).await?;
    demo.expect(&v4, "staging", StageState::AwaitingApproval)
        .await?;
    say("v4's bake ends and it awaits approval in staging");

    bold(
        "5. Push etl:v1 (data jobs), then tiles:v1, whose migration the running version cannot survive: tiles is stopped first",
    );
    let etl = demo.push("etl", "v1").await?;
    demo.expect(&etl, "dev", StageState::Succeeded).await?;
    say("etl: new revisions of both job families, pinned to the digest; nothing runs");
    let tiles = stop_first_migration(demo).await?;
    let ecs_deployment = demo.deployment(&tiles, "dev").await?;
    plays("ECS finishes the rolling deployment and EventBridge says so");
    let event = json!({
        "version": "0", "id": format!("demo-{}", ulid::Ulid::generate()),
        "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
        "account": ACCOUNT, "time": Timestamp::now().to_string(), "region": REGION,
        "resources": [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{p}-dev/{p}-tiles-dev", p = demo.p)],
        "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
                   "deploymentId": ecs_deployment, "updatedAt": Timestamp::now().to_string(),
                   "reason": format!("ECS deployment {ecs_deployment} completed.")}
    });
    demo.events.call(event, None).await?;
    demo.timeline().await?;
    demo.expect(&tiles, "dev", StageState::Succeeded).await?;
    let (desired, _) = demo.tiles_dev().await?;
    let ended = demo
        .recorded(&tiles, shiplane::release::Cause::AppStarted)
        .await?;
    say(&format!(
        "the outage ends when v1's deployment completes ({desired} task running): \"{ended}\""
    ));

    bold("6. Push api:v5: once it succeeds in dev, the tile server that reads its schema restarts");
    let v5 = demo.push("api", "v5").await?;
    demo.codedeploy(&v5, "dev", true).await?;
    demo.bake_ends().await?;
    demo.timeline().await?;
    demo.expect(&v5, "dev", StageState::Succeeded).await?;
    let tiles_lane = demo
        .store
        .lane("tiles", "dev")
        .await
        .map_err(|e| e.to_string())?
        .item;
    match &tiles_lane.restarted {
        Some(r) if r.release == v5 && tiles_lane.current.as_ref() == Some(&tiles) => say(&format!(
            "tiles restarted for api v5: ECS deployment {} starts new tasks of the revision tiles v1 runs (recorded in both histories)",
            r.deployment_id
        )),
        other => {
            return Err(format!(
                "tiles should be restarted for api v5, and still run v1: {other:?}"
            ));
        }
    }

    bold(
        "7. The reconciler's pass cleans up: api's dev revisions beyond keep = 2 are deregistered",
    );
    demo.cli(&["reconcile", "api"])?;
    demo.timeline().await?;
    let history = demo
        .store
        .history_of_release(&v5)
        .await
        .map_err(|e| e.to_string())?;
    match history
        .iter()
        .find(|t| t.environment == "dev" && t.cause == shiplane::release::Cause::CleanedUp)
    {
        Some(t) => say(&format!(
            "{}; v5 and v4 (the newest two, and what dev runs and would roll back to) stay",
            t.detail.as_deref().unwrap_or_default()
        )),
        None => return Err("api's dev revisions should be cleaned up after v5's success".into()),
    }
    Ok(v1)
}

/// tiles:v1 is pushed; its migration is not backward compatible (`stop-first`): tiles is
/// scaled to zero before the migration runs, which ECS confirms. The driver plays the
/// migration task's exit; the release then deploys (its rolling deployment brings tiles
/// back up, on v1 alone). tiles:v1's id.
async fn stop_first_migration(demo: &mut Demo) -> Step<ReleaseId> {
    let tiles = demo.push("tiles", "v1").await?;
    demo.expect(&tiles, "dev", StageState::Migrating).await?;
    let (desired, tag) = demo.tiles_dev().await?;
    let Some(tag) = tag.filter(|_| desired == 0) else {
        return Err(format!(
            "tiles should be stopped, its count in a tag, before its migration: desired {desired}"
        ));
    };
    let stopped = demo
        .recorded(&tiles, shiplane::release::Cause::AppStopped)
        .await?;
    say(&format!(
        "tiles stopped before its migration: ECS desired count 0 (tag shiplane:stopped-from = {tag}); {stopped}"
    ));
    let task = demo.deployment(&tiles, "dev").await?;
    plays("the migration task exits 0 with nothing serving; EventBridge says so");
    let cluster = format!("{}-dev", demo.p);
    let event = provision(&[
        "task-stopped",
        "--cluster",
        &cluster,
        "--task-arn",
        &task,
        "--exit-code",
        "0",
    ]);
    demo.events.call(event, None).await?;
    demo.timeline().await?;
    demo.expect(&tiles, "dev", StageState::Deploying).await?;
    let (desired, tag) = demo.tiles_dev().await?;
    if desired == 0 || tag.is_some() {
        return Err(format!(
            "the deployment should bring tiles back up: desired {desired}, tag {tag:?}"
        ));
    }
    say(&format!(
        "one UpdateService: v1's revision at desired count {desired}, so the old version never starts again"
    ));
    Ok(tiles)
}

#[tokio::main]
async fn main() -> ExitCode {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace().join("target/debug"));
    let p = std::env::var("SHIPLANE_DEMO_PREFIX").unwrap_or_else(|_| "demo".into());
    let broken = std::env::var("SHIPLANE_DEMO_BREAK").is_ok_and(|b| b == "v1-health");
    let mut demo = match Demo::setup(&p, bin).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "\n{}",
                styled(
                    "31",
                    &format!("demo failed while setting up: {e}"),
                    std::io::stderr().is_terminal()
                )
            );
            return ExitCode::from(1);
        }
    };
    let v1 = match run(&mut demo, broken).await {
        Ok(v1) => v1,
        Err(e) => {
            let _ = demo.timeline().await;
            eprintln!(
                "\n{}",
                styled(
                    "31",
                    &format!("demo failed: {e}"),
                    std::io::stderr().is_terminal()
                )
            );
            return ExitCode::from(1);
        }
    };
    bold("Notifications on the SNS topic (read back through the SQS subscription)");
    let notes = shiplane_e2e::notifications(&demo.account.queue_url);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for n in &notes {
        let kind = n["MessageAttributes"]["kind"]["Value"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        *kinds.entry(kind).or_default() += 1;
    }
    say(&format!(
        "{} messages: {}",
        notes.len(),
        kinds
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // What a person on call reads: the approval's subject and the commands it suggests.
    if let Some(approval) = notes
        .iter()
        .find(|n| n["MessageAttributes"]["kind"]["Value"] == "awaiting_approval")
    {
        say(&format!(
            "e.g. \"{}\"",
            approval["Subject"].as_str().unwrap_or_default()
        ));
        let body: Value =
            serde_json::from_str(approval["Message"].as_str().unwrap_or("{}")).unwrap_or_default();
        for step in body["next_steps"].as_array().into_iter().flatten() {
            say(&format!("  next: {}", step.as_str().unwrap_or_default()));
        }
    }
    bold("shiplane status");
    let _ = demo.cli(&["status"]);
    bold("shiplane metrics --since 1d (the DORA figures from history)");
    let _ = demo.cli(&["metrics", "--since", "1d"]);
    bold(&format!("shiplane history {v1} (v1's whole story)"));
    let _ = demo.cli(&["history", v1.as_str()]);
    bold("✔ Demo complete: every step happened");
    ExitCode::SUCCESS
}
