//! Round trips per event, as the emulator counts them: the critical path of the AWS calls
//! an event causes, with a network's delay on every answer so that calls sent together
//! surely overlap. `tests/round_trips.rs` holds each step to its target; `make bench`
//! reports them.
//!
//! The emulator's counter is global: whoever counts must be alone ([`COUNTING`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use shiplane::aws::CodeDeployHooks;
use shiplane::checks::ScriptedChecker;
use shiplane::engine::HookInvocation;
use shiplane::facts::AlarmChange;
use shiplane::facts::BakeTimer;
use shiplane::inbound::Inbound;
use shiplane::pipeline::LifecycleHook;
use shiplane::release::AlarmState;
use shiplane::release::{Event, ReleaseId, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};

use crate::{
    Account, account, aws_adapters, aws_config, aws_round_trips, deployment_of, deployment_success,
    fire_schedules, fresh_store, image_push, reset_aws_calls, set_aws_latency, three_environments,
    unique_prefix,
};

/// Held while calls are counted.
pub static COUNTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The delay given every AWS answer while calls are counted.
pub const ROUND_TRIP_MS: u64 = 10;

/// What one event cost.
#[derive(Debug, Clone)]
pub struct Counted {
    /// The calls, grouped in sequential round trips.
    pub trips: Vec<Vec<String>>,
}

impl Counted {
    /// Calls by operation.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for op in self.trips.iter().flatten() {
            *out.entry(op.clone()).or_insert(0) += 1;
        }
        out
    }
}

/// What `work` returns, and what it cost in AWS calls. Hold [`COUNTING`] around it.
pub async fn counted<T>(work: impl Future<Output = T>) -> (T, Counted) {
    reset_aws_calls();
    set_aws_latency(ROUND_TRIP_MS);
    // On the heap: the engine's futures are large, the test thread's stack is not.
    let out = Box::pin(work).await;
    set_aws_latency(0);
    (
        out,
        Counted {
            trips: aws_round_trips(),
        },
    )
}

/// One step of a release, handled by one function, with its target.
#[derive(Debug, Clone)]
pub struct Step {
    pub function: &'static str,
    pub what: &'static str,
    /// At most this many sequential round trips.
    pub target: usize,
    /// Why the target is what it is: the reads and writes that depend on each other.
    pub why: &'static str,
    pub cost: Counted,
}

/// The functions' own clients over `account`, with nothing cached: each function runs as
/// a fresh process.
struct Fresh {
    store: DynamoStore,
    aws: crate::AwsAdapters,
}

impl Fresh {
    async fn new(account: &Account, table: &str) -> Fresh {
        Fresh {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws_config().await), table),
            aws: aws_adapters(account).await,
        }
    }
}

async fn state(store: &DynamoStore, release: &ReleaseId, env: &str) -> Option<StageState> {
    store.release(release).await.ok()??.item.state_in(env)
}

/// A release's life after its push, one counted step per function that handles it: the
/// lifecycle hook, CodeDeploy's success, the bake timer, an approval, an alarm. Each step
/// runs the engine as its function does (same entry point, same adapters), in a fresh
/// process's state. Panics if a step does not end where it should.
pub async fn release_steps() -> Vec<Step> {
    let p = unique_prefix();
    let account = account(&three_environments(&p), &format!("{p}-releases"));
    let setup = fresh_store().await;
    crate::apply_pipeline(&setup, three_environments(&p)).await;
    let table = setup.table().to_string();
    let mut steps = Vec::new();

    let push = image_push(&format!("{p}/web"), "v1");
    let base = push.pushed_at;
    let at = |minutes: u64| Timestamp(base.0 + minutes * 60_000);
    let f = Fresh::new(&account, &table).await;
    let release = crate::release_from_push(&f.aws.engine(&f.store), &push).await;
    let deployment = deployment_of(&f.store, &release, "dev").await;

    let f = Fresh::new(&account, &table).await;
    let hooks = CodeDeployHooks::new(aws_sdk_codedeploy::Client::new(&aws_config().await));
    let invocation = HookInvocation {
        deployment_id: deployment.clone(),
        execution_id: format!("{p}-e1"),
        hook: Some(LifecycleHook::BeforeAllowTraffic),
    };
    let checker = ScriptedChecker::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (answer, cost) =
        counted(
            f.aws
                .engine(&f.store)
                .on_hook(&checker, &hooks, &invocation, deadline, at(1)),
        )
        .await;
    assert_eq!(answer.reported, Ok(()), "{answer:?}");
    steps.push(Step {
        function: "deploy-hook",
        what: "BeforeAllowTraffic, checks pass → Succeeded reported, recorded",
        target: 4,
        why: "the recorded answer, the pipeline, the deployment's reference and this attempt's claim at once; the lane with the release; the checks (no AWS call here) then the commit; the report to CodeDeploy, once the outcome is recorded, with the notifications beside it",
        cost,
    });

    let f = Fresh::new(&account, &table).await;
    let engine = f.aws.engine(&f.store);
    let change = deployment_success(&engine, &release, "dev", at(2)).await;
    let (out, cost) = counted(engine.on_deployment_state(&change, at(2))).await;
    assert!(matches!(out, Ok(Inbound::Accepted(_))), "{out:?}");
    assert_eq!(
        state(&f.store, &release, "dev").await,
        Some(StageState::Baking)
    );
    steps.push(Step {
        function: "deployment-events",
        what: "CodeDeploy SUCCESS → the stage bakes, its timer set",
        target: 6,
        why: "the deployment's reference and the pipeline at once; the release with its lanes; the releases they reference; commit; the timer (CreateSchedule) beside the notifications; the timer recorded; its notification",
        cost,
    });

    let fired = fire_schedules(at(13));
    assert!(
        fired.iter().any(|t| t["release"] == release.as_str()),
        "the bake timer fires: {fired:?}"
    );
    let f = Fresh::new(&account, &table).await;
    let timer = BakeTimer::new("web", "dev", &release, 0);
    let (out, cost) = counted(f.aws.engine(&f.store).on_bake_timer(&timer, at(13))).await;
    assert!(matches!(out, Ok(Inbound::Accepted(_))), "{out:?}");
    assert_eq!(
        state(&f.store, &release, "staging").await,
        Some(StageState::AwaitingApproval)
    );
    steps.push(Step {
        function: "promote",
        what: "the bake timer fires → dev succeeds, staging awaits approval (Engine::on_bake_timer; the function first reads the pipeline and a stage's alarms from CloudWatch, not counted here)",
        target: 5,
        why: "the pipeline with the release and its lane (the timer names both); commit, reading the next environment's lane beside it; the timer deleted beside the notifications; the next environment's commit; its notifications",
        cost,
    });

    let f = Fresh::new(&account, &table).await;
    let engine = f.aws.engine(&f.store);
    let pipeline = engine.pipeline().await.expect("pipeline");
    let approve = Event::Approved {
        actor: "ana".into(),
    };
    let (out, cost) =
        counted(engine.on_event(&pipeline, "web", "staging", &release, approve, at(14))).await;
    out.expect("approval");
    assert_eq!(
        state(&f.store, &release, "staging").await,
        Some(StageState::Deploying)
    );
    steps.push(Step {
        function: "shiplane approve (CLI)",
        what: "staging approved → its deployment starts",
        target: 7,
        why: "the lane with its releases; commit beside the deployment's first read (DescribeServices); the base and latest task definitions; the revision beside the notifications; the deployment; its reference; the notification",
        cost,
    });

    let f = Fresh::new(&account, &table).await;
    let alarm = AlarmChange {
        alarm: format!("{p}-web-dev-5xx"),
        state: AlarmState::Alarm,
        at: at(15),
        reason: "Threshold Crossed".into(),
    };
    let (out, cost) = counted(f.aws.engine(&f.store).on_alarm(&alarm, at(15))).await;
    assert!(matches!(out, Ok(Inbound::Accepted(_))), "{out:?}");
    let lane = f.store.lane("web", "dev").await.expect("lane").item;
    assert_eq!(lane.firing_alarms(), vec![alarm.alarm.clone()]);
    steps.push(Step {
        function: "alarm",
        what: "a dev alarm fires (nothing in flight there) → recorded, prod's gate holds",
        target: 5,
        why: "the pipeline (which lanes watch the alarm); the lane; its releases; commit; the notification",
        cost,
    });
    steps
}
