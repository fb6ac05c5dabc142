//! One seed's story: a pipeline of a blue/green service with migrations and a rolling
//! service, a first release shipped everywhere, then pushes (good and bad), operators,
//! the reconciler and every kind of fault at once; then the world is left to go quiet,
//! and the invariants are checked.

use std::sync::Arc;
use std::time::Duration;

use shiplane::engine::{Deps, Engine, EngineError, Report};
use shiplane::inbound::Inbound;
use shiplane::pipeline::{LifecycleHook, Pipeline};
use shiplane::release::intake::ImagePush;
use shiplane::release::{AlarmState, Event, LaneEvent, ReleaseId, StageState, Timestamp};
use shiplane::store::{MemoryStore, ReleaseStore, StoredPipeline};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::ports::{
    SimAlarms, SimChecker, SimDeployer, SimHooks, SimNotifier, SimPushClock, SimStore, SimTimer,
    alarms_evaluate, digest,
};
use crate::world::{Bad, EcsService, Emitted, Image, LaneSpec, Revision};
use crate::{Config, Outcome, Sim, Stats, Violation, invariants, take_trace};

/// The pipeline every seed runs: `api`, blue/green through dev, staging and prod with a
/// migration in dev and prod, checks in every environment, approval into prod and prod
/// held by staging's alarms; `tiles`, rolling through dev and prod, prod held by dev's,
/// with a `stop-first` migration in prod (the service stopped while it runs); `jobs`, data
/// jobs in dev and prod whose triggers ([`triggers`]) move with each release.
/// Every stage bakes 10 minutes and stays watched 30 minutes after. Which pushes go where:
/// feature branches (`feature-N`) only to dev; hotfixes (`hotfix-N`) would be taken by
/// prod but not by api's staging, so api's stop in dev as well, and tiles' go on; release
/// tags (`vN`) everywhere.
pub const PIPELINE: &str = r#"
[pipeline]
environments = ["dev", "staging", "prod"]

[defaults.prod]
tags = { regex = "^(v|hotfix-)[0-9]+$" }

[services.api]
repository = "sim/api"
kind = "blue-green"
container = "app"
port = 8080

[services.api.environments.dev]
cluster = "sim-dev"
service = "api-dev"
codedeploy = { application = "api", deployment_group = "api-dev" }
alarms = ["api-dev-5xx"]
bake = "10m"
watch = "30m"
migration = { family = "api-migrate", command = ["./migrate"] }
restarts = ["tiles"]
keep = 2
[[services.api.environments.dev.checks]]
name = "health"
hook = "before_allow_traffic"
http = "http://api-dev.internal/health"

[services.api.environments.staging]
cluster = "sim-staging"
service = "api-staging"
codedeploy = { application = "api", deployment_group = "api-staging" }
alarms = ["api-staging-5xx"]
bake = "10m"
watch = "30m"
tags = { regex = "^v[0-9]+$" }
[[services.api.environments.staging.checks]]
name = "health"
hook = "before_allow_traffic"
http = "http://api-staging.internal/health"

[services.api.environments.prod]
cluster = "sim-prod"
service = "api-prod"
codedeploy = { application = "api", deployment_group = "api-prod" }
alarms = ["api-prod-5xx"]
bake = "10m"
watch = "30m"
approval = "manual"
hold_while_alarms_in = ["staging"]
migration = { family = "api-migrate", command = ["./migrate"] }
restarts = ["tiles"]
[[services.api.environments.prod.checks]]
name = "health"
hook = "before_allow_traffic"
http = "http://api-prod.internal/health"

[services.tiles]
repository = "sim/tiles"
kind = "rolling"
container = "app"

[services.tiles.environments.dev]
cluster = "sim-dev"
service = "tiles-dev"
alarms = ["tiles-dev-5xx"]
bake = "10m"
watch = "30m"
keep = 1

[services.tiles.environments.prod]
cluster = "sim-prod"
service = "tiles-prod"
alarms = ["tiles-prod-5xx"]
bake = "10m"
watch = "30m"
hold_while_alarms_in = ["dev"]
migration = { family = "tiles-migrate", command = ["./migrate"], mode = "stop-first" }

[services.jobs]
repository = "sim/jobs"
kind = "task"

[services.jobs.environments.dev]
cluster = "sim-dev"
task_families = ["jobs-nightly", "jobs-hourly"]
keep = 2

[services.jobs.environments.prod]
cluster = "sim-prod"
task_families = ["jobs-nightly", "jobs-hourly"]
"#;

/// The engine's ports over the world.
pub type SimPorts = (SimStore, SimDeployer, SimNotifier, SimTimer);

/// The clients an invocation reuses, over the world.
pub type SimDeps = Deps<SimPorts>;

/// Everything an invocation needs besides the engine's ports.
pub struct Rig {
    pub sim: Arc<Sim>,
    pub deps: SimDeps,
    pub alarms: SimAlarms,
    pub hooks: SimHooks,
    pub checker: SimChecker,
    pub clock: SimPushClock,
    pub pipeline: Arc<Pipeline>,
}

impl Rig {
    fn engine(&self) -> Engine<'_, SimPorts> {
        self.deps.engine()
    }

    /// Invocations and deliveries not yet finished, and AWS work still moving.
    fn busy(&self) -> bool {
        let now = self.sim.now();
        let w = self.sim.world();
        // A bad image that serves and whose alarm is still to fire: not quiet until it has.
        let alarm_to_come = w.services.values().any(|s| {
            w.image_of(&s.serving).is_some_and(|i| {
                matches!(i.bad, Bad::Alarm | Bad::LateAlarm)
                    && s.since
                        .get(&s.serving)
                        .is_some_and(|at| at.after(i.alarm_delay) > now)
            })
        });
        alarm_to_come
            || *self.sim.pending() > 0
            || w.codedeploy.iter().any(|d| d.status.is_active())
            || w.services.values().any(|s| {
                s.partial.is_some()
                    || s.deployments
                        .iter()
                        .any(|d| d.rollout == crate::world::Rollout::InProgress)
            })
            || w.tasks.iter().any(|t| t.running)
            || !w.schedules.is_empty()
    }
}

impl Sim {
    pub(crate) fn pending(&self) -> std::sync::MutexGuard<'_, u64> {
        self.pending_deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// The world's lanes, as the pipeline names them.
fn lanes(pipeline: &Pipeline) -> Vec<LaneSpec> {
    let mut out = Vec::new();
    for service in pipeline.services.values() {
        for stage in &service.stages {
            let Some((cluster, ecs)) = stage.target.ecs_service() else {
                continue;
            };
            let group = match &stage.target {
                shiplane::pipeline::Target::BlueGreen { codedeploy, .. } => Some((
                    codedeploy.application.clone(),
                    codedeploy.deployment_group.clone(),
                )),
                _ => None,
            };
            let hooks: Vec<LifecycleHook> = stage.target.checks().iter().map(|c| c.hook).collect();
            out.push(LaneSpec {
                service: service.name.clone(),
                environment: stage.environment.clone(),
                blue_green: group.is_some(),
                ecs: format!("{cluster}/{ecs}"),
                family: ecs.to_string(),
                alarm: stage.alarms.first().cloned().unwrap_or_default(),
                group,
                hooks,
                migration_family: stage.migration.as_ref().map(|m| m.family.clone()),
                stop_first: stage.stops_first(),
            });
        }
    }
    out
}

/// The data jobs' families, their first revisions and their triggers in each cluster: a
/// schedule and a rule target pinned to a revision, and a schedule naming its family
/// unpinned (left as it is).
fn triggers(w: &mut crate::world::World) {
    use shiplane::aws::{Trigger, TriggerId};
    let td = |name: &str| format!("arn:aws:ecs:eu-west-1:111122223333:task-definition/{name}");
    for family in ["jobs-nightly", "jobs-hourly"] {
        w.revisions.push(Revision {
            arn: td(&format!("{family}:1")),
            family: family.into(),
            release: None,
            environment: None,
            attempt: 0,
            digest: None,
            active: true,
        });
    }
    for env in ["dev", "prod"] {
        let cluster = format!("arn:aws:ecs:eu-west-1:111122223333:cluster/sim-{env}");
        let schedule = |name: &str| TriggerId::Schedule {
            group: "jobs".into(),
            name: format!("{name}-{env}"),
        };
        let rule = TriggerId::RuleTarget {
            bus: "default".into(),
            rule: format!("hourly-{env}"),
            target: "run".into(),
        };
        for (id, task_definition) in [
            (schedule("nightly"), td("jobs-nightly:1")),
            (rule, td("jobs-hourly:1")),
            (schedule("follows"), td("jobs-nightly")),
        ] {
            w.triggers.push(Trigger {
                id,
                cluster: cluster.clone(),
                task_definition,
            });
        }
    }
}

/// Runs one seed: set-up, a first release everywhere, the hostile part, quiet, checks.
pub async fn run(seed: u64, config: Config) -> Outcome {
    let sim = Sim::new(seed, config);
    let violation = |invariant: &'static str, detail: String| Violation { invariant, detail };
    let pipeline = match Pipeline::from_toml(PIPELINE) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            return Outcome {
                seed,
                stats: Stats::default(),
                violations: vec![violation("setup", format!("the pipeline: {e}"))],
                trace: Vec::new(),
            };
        }
    };
    let (tx, rx) = unbounded_channel();
    {
        let mut w = sim.world();
        w.outbox = Some(tx);
        w.lanes = lanes(&pipeline);
        triggers(&mut w);
        let specs = w.lanes.clone();
        for lane in specs {
            let arn = format!(
                "arn:aws:ecs:eu-west-1:111122223333:task-definition/{}:1",
                lane.family
            );
            w.revisions.push(Revision {
                arn: arn.clone(),
                family: lane.family.clone(),
                release: None,
                environment: None,
                attempt: 0,
                digest: None,
                active: true,
            });
            let mut svc = EcsService {
                serving: arn.clone(),
                ..EcsService::default()
            };
            svc.since.insert(arn, sim.now());
            w.services.insert(lane.ecs.clone(), svc);
            w.alarms.insert(
                lane.alarm.clone(),
                (shiplane::release::AlarmState::Ok, sim.now()),
            );
        }
    }
    let store = MemoryStore::new();
    if let Err(e) = store
        .put_pipeline(StoredPipeline {
            version: 1,
            source: PIPELINE.into(),
            applied_at: sim.now(),
            applied_by: "sim".into(),
        })
        .await
    {
        return Outcome {
            seed,
            stats: Stats::default(),
            violations: vec![violation("setup", format!("store the pipeline: {e}"))],
            trace: Vec::new(),
        };
    }
    let rig = Arc::new(Rig {
        deps: Deps {
            store: SimStore {
                inner: store,
                sim: sim.clone(),
                pipeline: pipeline.clone(),
            },
            deployer: SimDeployer { sim: sim.clone() },
            notifier: SimNotifier { sim: sim.clone() },
            timer: SimTimer { sim: sim.clone() },
        },
        alarms: SimAlarms { sim: sim.clone() },
        hooks: SimHooks { sim: sim.clone() },
        checker: SimChecker { sim: sim.clone() },
        clock: SimPushClock { sim: sim.clone() },
        pipeline: pipeline.clone(),
        sim: sim.clone(),
    });
    tokio::spawn(dispatch(rig.clone(), rx));
    tokio::spawn(alarms_evaluate(sim.clone()));
    tokio::spawn(reconciler(rig.clone()));

    let mut violations = Vec::new();
    // A first, good release of every service, shipped everywhere: every lane then has a
    // last known good to return to.
    let services: Vec<String> = pipeline.services.keys().cloned().collect();
    for service in &services {
        push(&rig, service, Some(Bad::No));
    }
    let genesis_by = tokio::time::Instant::now() + Duration::from_secs(12 * 3600);
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        close_out(&rig).await;
        if everywhere_good(&rig).await {
            break;
        }
        if tokio::time::Instant::now() > genesis_by {
            violations.push(violation(
                "setup",
                "the first release did not reach every environment within 12 h, with no faults"
                    .into(),
            ));
            return finish(&rig, violations);
        }
    }
    sim.trace("---- hostile phase ----");
    sim.set_chaos(true);
    let active_until = tokio::time::Instant::now() + sim.config.active;
    for service in &services {
        tokio::spawn(pusher(rig.clone(), service.clone(), active_until));
    }
    tokio::spawn(operator(rig.clone(), active_until));
    tokio::time::sleep_until(active_until).await;
    sim.set_chaos(false);
    sim.trace("---- quiet phase ----");
    // The operators close out the day (approve what waits, resume what is paused) while
    // the reconciler runs, until nothing moves.
    let quiet_by = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
    let mut still = 0;
    loop {
        tokio::time::sleep(sim.config.reconcile_every).await;
        let moved = close_out(&rig).await;
        let passes = *sim.moving();
        // A stage in flight waits for AWS or for its deadline: not quiet yet.
        if rig.busy() || moved || passes > 0 || in_flight(&rig).await {
            still = 0;
        } else {
            still += 1;
        }
        *sim.moving() = 0;
        if still >= 3 {
            break;
        }
        if tokio::time::Instant::now() > quiet_by {
            violations.push(violation(
                "nothing stuck",
                "the world did not go quiet within 24 h of the last push".into(),
            ));
            break;
        }
    }
    violations.extend(rig.sim.flagged());
    violations.extend(invariants::check(&rig).await);
    finish(&rig, violations)
}

fn finish(rig: &Rig, violations: Vec<Violation>) -> Outcome {
    let mut stats = rig.sim.stats().clone();
    stats.virtual_ms = rig.sim.now().0 - crate::EPOCH_MS;
    Outcome {
        seed: rig.sim.seed,
        stats,
        violations,
        trace: take_trace(&rig.sim),
    }
}

/// Whether a lane holds a release in flight (waiting for AWS, or for its deadline), or a
/// watch whose alarm fires (the lane owes the watch's rollback once the alarm has gone on
/// firing long enough to be the watched release's own).
async fn in_flight(rig: &Rig) -> bool {
    for service in rig.pipeline.services.keys() {
        let lanes = rig
            .deps
            .store
            .inner
            .lanes(service)
            .await
            .unwrap_or_default();
        // Only while the watched release runs (not when a release after it that ran a
        // stop-first migration keeps running in its place).
        let watch_owes = |l: &shiplane::release::Lane| {
            l.watch.as_ref().is_some_and(|w| {
                l.current.as_ref() == Some(&w.release)
                    && l.alarms
                        .values()
                        .any(|seen| seen.state == AlarmState::Alarm && w.covers(seen.at))
            })
        };
        if lanes
            .iter()
            .any(|l| l.item.in_flight.is_some() || watch_owes(&l.item))
        {
            return true;
        }
    }
    false
}

/// Whether every lane of every service has a last known good release.
async fn everywhere_good(rig: &Rig) -> bool {
    for service in rig.pipeline.services.values() {
        let Ok(lanes) = rig.deps.store.inner.lanes(&service.name).await else {
            return false;
        };
        let good = service.stages.iter().all(|s| {
            lanes
                .iter()
                .any(|l| l.item.environment == s.environment && l.item.last_known_good.is_some())
        });
        if !good {
            return false;
        }
    }
    true
}

/// An image pushed to ECR (bad as asked, or as the dice say), and its event.
fn push(rig: &Rig, service: &str, bad: Option<Bad>) {
    let sim = &rig.sim;
    let Some(svc) = rig.pipeline.services.get(service) else {
        return;
    };
    let migrates = svc.stages.iter().any(|s| s.migration.is_some());
    let bad_given = bad.is_some();
    // Data jobs run nothing on release: nothing in the world could tell a bad one.
    let jobs = svc.kind == shiplane::pipeline::ServiceKind::Task;
    let bad = bad.unwrap_or_else(|| {
        if jobs {
            Bad::No
        } else if sim.chance(sim.config.alarm_bad) {
            Bad::Alarm
        } else if sim.chance(sim.config.late_alarm_bad) {
            Bad::LateAlarm
        } else if sim.chance(sim.config.check_bad) {
            Bad::Check
        } else if migrates && sim.chance(sim.config.migration_bad) {
            Bad::Migration
        } else {
            Bad::No
        }
    });
    // A first release (asked for good) is a release tag, so that it goes everywhere.
    let branch = if bad_given {
        "v"
    } else if sim.chance(sim.config.feature_branch) {
        "feature-"
    } else if sim.chance(sim.config.hotfix) {
        "hotfix-"
    } else {
        "v"
    };
    let now = sim.now();
    let image = {
        let mut w = sim.world();
        let n = w.fresh_id();
        let image = Image {
            service: service.to_string(),
            tag: format!("{branch}{n}"),
            digest: digest(n),
            bad,
            // A late alarm fires after the 10-minute bake, within the 30-minute watch.
            alarm_delay: if bad == Bad::LateAlarm {
                sim.ms(12 * 60_000, 25 * 60_000)
            } else {
                sim.ms(30_000, 180_000)
            },
            seq: n,
            pushed: now,
        };
        w.images.push(image.clone());
        image
    };
    {
        let mut stats = sim.stats();
        stats.pushes += 1;
        if bad != Bad::No {
            stats.bad_pushes += 1;
        }
        if branch != "v" {
            stats.branch_pushes += 1;
        }
    }
    sim.trace(format!("push {service}:{} ({bad:?})", image.tag));
    let event = ImagePush {
        registry: "111122223333.dkr.ecr.eu-west-1.amazonaws.com".into(),
        repository: svc.repository.clone(),
        digest: image.digest,
        tag: image.tag,
        // EventBridge's `time`: whole seconds.
        pushed_at: Timestamp(now.0 / 1000 * 1000),
    };
    sim.world().emit(Emitted::Push(event));
}

async fn pusher(rig: Arc<Rig>, service: String, until: tokio::time::Instant) {
    loop {
        tokio::time::sleep(rig.sim.gap(rig.sim.config.push_every)).await;
        if tokio::time::Instant::now() >= until {
            return;
        }
        push(&rig, &service, None);
        // A build that pushes twice at once (two commits merged together, a re-run):
        // both in the same second, the event's whole-second times tied.
        if rig.sim.chance(rig.sim.config.burst) {
            tokio::time::sleep(rig.sim.ms(1, 400)).await;
            push(&rig, &service, None);
        }
    }
}

/// EventBridge and Lambda: every event is delivered after a while, sometimes twice,
/// sometimes never; each delivery is retried twice by Lambda when it fails or dies.
async fn dispatch(rig: Arc<Rig>, mut rx: UnboundedReceiver<Emitted>) {
    while let Some(event) = rx.recv().await {
        let sim = &rig.sim;
        // CodeDeploy invokes the deploy-hook itself (Lambda retries it); the rest travels
        // through EventBridge and Scheduler, and may be lost.
        if let Emitted::SecondThoughts { .. } = event {
            // An operator at the console: within moments, while the call is in flight.
            *sim.pending() += 1;
            tokio::spawn(deliver(rig.clone(), event, sim.ms(0, 40)));
            continue;
        }
        let droppable = !matches!(event, Emitted::Hook(_));
        if droppable && sim.hostile(sim.config.drop) {
            sim.count_drop(event.kind());
            sim.trace(format!("lost: {} event", event.kind()));
            continue;
        }
        let copies = if sim.hostile(sim.config.duplicate) {
            sim.stats().duplicated += 1;
            2
        } else {
            1
        };
        // A duplicate arrives close behind the first copy: the two run at once.
        let delay = if sim.hostile(0.05) {
            sim.ms(120_000, 600_000)
        } else {
            sim.ms(200, 20_000)
        };
        for copy in 0..copies {
            *sim.pending() += 1;
            let delay = delay + sim.ms(0, 3_000 * copy);
            tokio::spawn(deliver(rig.clone(), event.clone(), delay));
        }
    }
}

async fn deliver(rig: Arc<Rig>, event: Emitted, delay: Duration) {
    let sim = &rig.sim;
    tokio::time::sleep(delay).await;
    for attempt in 0..3u32 {
        let name = format!("{} attempt {}", describe(&event), attempt + 1);
        match sim.invoke(&name, handle(&rig, &event)).await {
            Some(Ok(())) => break,
            Some(Err(e)) => sim.trace(format!("  error: {e}")),
            None => {}
        }
        if attempt == 2 {
            sim.stats().dead_letters += 1;
            sim.trace(format!("dead letter: {}", describe(&event)));
            if let Emitted::Hook(h) = &event
                && let Some(e) = sim
                    .world()
                    .deployment_mut(&h.deployment_id)
                    .and_then(|d| d.executions.iter_mut().find(|e| e.id == h.execution_id))
            {
                e.dead_lettered = true;
            }
            break;
        }
        tokio::time::sleep(Duration::from_secs(60 * u64::from(attempt + 1))).await;
    }
    *sim.pending() -= 1;
}

fn describe(event: &Emitted) -> String {
    match event {
        Emitted::Push(p) => format!("image-push {}:{}", p.repository, p.tag),
        Emitted::CodeDeploy(c) => format!("deployment-events {} {:?}", c.deployment_id, c.state),
        Emitted::Ecs(e) => format!(
            "deployment-events {} ended ok={}",
            e.deployment_id,
            e.outcome.is_ok()
        ),
        Emitted::TaskStopped(t) => format!("deployment-events task {}", t.task_arn),
        Emitted::Alarm(a) => format!("alarm {} {}", a.alarm, a.state.as_str()),
        Emitted::Timer(t) => format!(
            "promote {} {}/{} #{}",
            t.release, t.service, t.environment, t.attempt
        ),
        Emitted::Hook(h) => format!("deploy-hook {} {}", h.deployment_id, h.execution_id),
        Emitted::SecondThoughts {
            service,
            environment,
            release,
        } => format!("operator cancels {release} in {service}/{environment} (second thoughts)"),
    }
}

/// What the function serving `event` does with it.
async fn handle(rig: &Rig, event: &Emitted) -> Result<(), String> {
    let engine = rig.engine();
    let now = rig.sim.now();
    let accepted = |r: Result<Inbound<Report>, EngineError>| match r {
        Ok(Inbound::Accepted(report)) => {
            trace_report(&rig.sim, &report);
            Ok(())
        }
        Ok(Inbound::Ignored(why)) => {
            rig.sim.trace(format!("  ignored: {why}"));
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    };
    match event {
        Emitted::Push(p) => match engine.on_push_with(p, &rig.clock, now).await {
            Ok(outcome) => {
                rig.sim.trace(format!("  {outcome:?}"));
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
        Emitted::CodeDeploy(c) => accepted(engine.on_deployment_state(c, now).await),
        Emitted::Ecs(e) => accepted(engine.on_service_deployment(e, now).await),
        Emitted::TaskStopped(t) => accepted(engine.on_task_stopped(t, now).await),
        Emitted::Alarm(a) => accepted(engine.on_alarm(a, now).await),
        Emitted::Timer(t) => accepted(engine.on_bake_timer_reading(&rig.alarms, t, now).await),
        Emitted::SecondThoughts {
            service,
            environment,
            release,
        } => {
            rig.sim.stats().operator_actions += 1;
            rig.sim.world().operator_touched(service, environment, now);
            let cancel = Event::Cancelled {
                actor: "oncall".into(),
                reason: "second thoughts".into(),
            };
            let result = engine
                .on_event(&rig.pipeline, service, environment, release, cancel, now)
                .await;
            rig.sim
                .world()
                .operator_touched(service, environment, rig.sim.now());
            match result {
                Ok(report) => {
                    trace_report(&rig.sim, &report);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Emitted::Hook(h) => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            engine
                .on_hook(&rig.checker, &rig.hooks, h, deadline, now)
                .await;
            let mut w = rig.sim.world();
            if let Some(e) = w
                .deployment_mut(&h.deployment_id)
                .and_then(|d| d.executions.iter_mut().find(|e| e.id == h.execution_id))
            {
                e.completed += 1;
            }
            Ok(())
        }
    }
}

/// What a pass moved and refused, into the trace.
pub(crate) fn trace_report(sim: &Sim, report: &Report) {
    for t in &report.transitions {
        let release = t.release.as_ref().map_or("lane".into(), |r| r.to_string());
        sim.trace(format!(
            "  {release} {}/{}: {:?} -> {:?} ({})",
            t.service, t.environment, t.from, t.to, t.cause
        ));
    }
    for r in &report.refused {
        sim.trace(format!("  refused: {r}"));
    }
}

/// The scheduled reconciler, for ever.
async fn reconciler(rig: Arc<Rig>) {
    loop {
        tokio::time::sleep(rig.sim.config.reconcile_every).await;
        let work = async {
            let engine = rig.engine();
            let now = rig.sim.now();
            let pipeline = engine.pipeline().await.map_err(|e| e.to_string())?;
            engine
                .reconcile_with_alarms(&rig.alarms, &pipeline, None, now)
                .await
                .map_err(|e| e.to_string())
        };
        match rig.sim.invoke("reconcile", work).await {
            Some(Ok(pass)) => {
                trace_report(&rig.sim, &pass.report);
                for f in &pass.failed {
                    rig.sim.trace(format!("  reconcile: a lane failed: {f:?}"));
                }
                if !pass.report.transitions.is_empty() || !pass.failed.is_empty() {
                    *rig.sim.moving() += 1;
                }
            }
            Some(Err(e)) => {
                rig.sim.trace(format!("  reconcile failed: {e}"));
                *rig.sim.moving() += 1;
            }
            None => *rig.sim.moving() += 1,
        }
    }
}

/// An on-call engineer at random moments: approve, reject, cancel, pause, resume,
/// roll back, retry.
async fn operator(rig: Arc<Rig>, until: tokio::time::Instant) {
    let sim = &rig.sim;
    loop {
        tokio::time::sleep(sim.gap(sim.config.operator_every)).await;
        if tokio::time::Instant::now() >= until {
            return;
        }
        let lanes = sim.world().lanes.clone();
        let Some(lane) = sim.pick(&lanes).cloned() else {
            return;
        };
        let Ok(stored) = rig
            .deps
            .store
            .inner
            .lane(&lane.service, &lane.environment)
            .await
        else {
            continue;
        };
        let l = stored.item;
        let actor = "oncall".to_string();
        let reason = "simulated operator".to_string();
        let choice = sim.between(0, 6);
        let engine = rig.engine();
        let now = sim.now();
        let pipeline = rig.pipeline.clone();
        let (svc, env) = (lane.service.clone(), lane.environment.clone());
        let release_event = |id: ReleaseId, event: Event| {
            let (svc, env, pipeline) = (svc.clone(), env.clone(), pipeline.clone());
            let engine = rig.engine();
            async move {
                engine
                    .on_event(&pipeline, &svc, &env, &id, event, now)
                    .await
            }
        };
        let what = match choice {
            0 => l.queued.clone().map(|id| {
                (
                    id,
                    Event::Approved {
                        actor: actor.clone(),
                    },
                )
            }),
            1 => l.queued.clone().map(|id| {
                (
                    id,
                    Event::Rejected {
                        actor: actor.clone(),
                        reason: reason.clone(),
                    },
                )
            }),
            2 => l.in_flight.clone().or(l.queued.clone()).map(|id| {
                (
                    id,
                    Event::Cancelled {
                        actor: actor.clone(),
                        reason: reason.clone(),
                    },
                )
            }),
            6 => {
                let releases = rig
                    .deps
                    .store
                    .inner
                    .releases_of_service(&svc, 50)
                    .await
                    .unwrap_or_default();
                releases
                    .into_iter()
                    .find(|r| {
                        matches!(
                            r.state_in(&env),
                            Some(
                                StageState::Failed | StageState::RolledBack | StageState::Cancelled
                            )
                        )
                    })
                    .map(|r| {
                        (
                            r.id,
                            Event::Retry {
                                actor: actor.clone(),
                            },
                        )
                    })
            }
            _ => None,
        };
        sim.stats().operator_actions += 1;
        let name = format!("operator {choice} on {svc}/{env}");
        sim.world().operator_touched(&svc, &env, now);
        let result = match (choice, what) {
            (0..=2 | 6, Some((id, event))) => {
                sim.trace(format!("operator: {} {id} in {svc}/{env}", event.name()));
                sim.invoke(&name, release_event(id, event)).await
            }
            (3, _) => {
                let event = if l.paused.is_some() {
                    LaneEvent::Resume {
                        actor: actor.clone(),
                    }
                } else {
                    LaneEvent::Pause {
                        actor: actor.clone(),
                        reason: reason.clone(),
                    }
                };
                sim.trace(format!("operator: pause/resume {svc}/{env}"));
                sim.invoke(&name, async {
                    engine.on_lane(&pipeline, &svc, &env, event, now).await
                })
                .await
            }
            (4 | 5, _) => {
                let event = LaneEvent::Rollback {
                    actor: actor.clone(),
                    reason: reason.clone(),
                    to: None,
                };
                sim.trace(format!("operator: rollback {svc}/{env}"));
                sim.invoke(&name, async {
                    engine.on_lane(&pipeline, &svc, &env, event, now).await
                })
                .await
            }
            _ => continue,
        };
        // The lane counts as touched until the act's commit, not only from its start: a
        // push that landed meanwhile may be overtaken by it (seed 53441).
        sim.world().operator_touched(&svc, &env, sim.now());
        match result {
            Some(Err(e)) => sim.trace(format!("  refused or failed: {e}")),
            Some(Ok(report)) => trace_report(sim, &report),
            None => {}
        }
    }
}

/// The end of the day: every release awaiting approval is approved, every paused lane
/// resumed. True when it changed something.
async fn close_out(rig: &Rig) -> bool {
    let mut moved = false;
    let now = rig.sim.now();
    for service in rig.pipeline.services.values() {
        let Ok(lanes) = rig.deps.store.inner.lanes(&service.name).await else {
            continue;
        };
        for lane in lanes {
            let l = lane.item;
            let engine = rig.engine();
            if l.paused.is_some() {
                let event = LaneEvent::Resume {
                    actor: "closing".into(),
                };
                let done = rig
                    .sim
                    .invoke(
                        "closing resume",
                        engine.on_lane(&rig.pipeline, &l.service, &l.environment, event, now),
                    )
                    .await;
                moved |= matches!(done, Some(Ok(r)) if !r.transitions.is_empty());
            }
            if let Some(id) = l.queued.clone() {
                let waiting = rig
                    .deps
                    .store
                    .inner
                    .release(&id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.item.state_in(&l.environment))
                    == Some(StageState::AwaitingApproval);
                if waiting {
                    let event = Event::Approved {
                        actor: "closing".into(),
                    };
                    let done = rig
                        .sim
                        .invoke(
                            "closing approve",
                            engine.on_event(
                                &rig.pipeline,
                                &l.service,
                                &l.environment,
                                &id,
                                event,
                                now,
                            ),
                        )
                        .await;
                    moved |= matches!(done, Some(Ok(r)) if !r.transitions.is_empty());
                }
            }
        }
    }
    moved
}
