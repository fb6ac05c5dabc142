//! Faults injected, measured: 100 releases over three services, pushes delivered out of
//! order and twice, migrations, queue and supersede, with 20 % of AWS calls failing
//! transiently (throttled, refused, or done with the answer lost) and 10 % of outcome
//! events dropped; then the reconciler runs until quiet. Every release must end where it
//! should, with one revision, deployment and migration task at most per (release,
//! environment), no lane stuck, and history agreeing with the end state.
//!
//! Seeded: the same seeds give the same deliveries and the same faults.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use shiplane::aws::{AwsDeployer, SchedulerTimer, SnsNotifier, started_by};
use shiplane::engine::Engine;
use shiplane::facts::{ContainerExit, TaskStopped};
use shiplane::release::intake::ImagePush;
use shiplane::release::{Digest, LEASE, Release, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::{Account, deployed_world, provision, set_deployment_status};

const RELEASES: usize = 100;
const SERVICES: [&str; 3] = ["api", "db", "etl"];
const FAULTS: &str = r#"{"*": {"throttle": 0.1, "error": 0.05, "lost": 0.05}}"#;
const DROP_PERCENT: u64 = 10;

/// A small seeded generator (xorshift64*): repeatable runs without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn push(p: &str, service: &str, n: usize, base: Timestamp) -> ImagePush {
    ImagePush {
        registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
        repository: format!("{p}/{service}"),
        digest: Digest::parse(&format!("sha256:{:064x}", n * 7919 + 1)).expect("digest"),
        tag: match service {
            "etl" => format!("{n:08}-abc1234"),
            _ => format!("v1.0.{n}"),
        },
        pushed_at: Timestamp(base.0 + n as u64 * 1000),
    }
}

/// The retry policy of the functions (5 attempts, exponential backoff), with shorter
/// waits so the run stays short.
fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(std::time::Duration::from_millis(5))
        .with_max_backoff(std::time::Duration::from_millis(50))
}

/// The AWS adapters as a function builds them.
async fn adapters(
    account: &Account,
) -> (
    DynamoStore,
    AwsDeployer,
    SnsNotifier,
    aws_sdk_codedeploy::Client,
    aws_sdk_ecs::Client,
    SchedulerTimer,
) {
    shiplane_e2e::endpoint();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retries())
        .load()
        .await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let codedeploy = aws_sdk_codedeploy::Client::new(&config);
    (
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), ""),
        AwsDeployer::new(
            ecs.clone(),
            codedeploy.clone(),
            "shiplane-deploy-hook",
            shiplane::aws::AwsTriggers::from_config(&config),
        ),
        SnsNotifier::new(aws_sdk_sns::Client::new(&config), &account.topic_arn),
        codedeploy,
        ecs,
        SchedulerTimer::new(
            aws_sdk_scheduler::Client::new(&config),
            &account.schedule_group,
            &account.promote_function_arn,
            &account.scheduler_role_arn,
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_releases_under_faults_all_end_where_they_should() {
    let (p, account, plain_store) = deployed_world().await;
    let (_, deployer, notifier, codedeploy, ecs, timer) = adapters(&account).await;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retries())
        .load()
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), plain_store.table());
    let e = Engine::new(&store, &deployer, &notifier, &timer);
    let mut rng = Rng(0x5eed_5eed);
    let base = Timestamp::now();
    let pushes: Vec<ImagePush> = (0..RELEASES)
        .map(|n| push(&p, SERVICES[n % SERVICES.len()], n, base))
        .collect();
    // Every push once, a fifth of them twice, all in a shuffled order.
    let mut deliveries: Vec<usize> = (0..RELEASES).collect();
    deliveries.extend((0..RELEASES).filter(|n| n % 5 == 0));
    for i in (1..deliveries.len()).rev() {
        deliveries.swap(i, rng.below(i as u64 + 1) as usize);
    }

    provision(&["faults", "--seed", "7", "--rates", FAULTS]);
    let mut failed_deliveries = 0;
    for &n in &deliveries {
        // Lambda tries an event up to three times before its dead-letter queue.
        let mut tries = 0;
        while e.on_push(&pushes[n], Timestamp::now()).await.is_err() {
            tries += 1;
            if tries == 3 {
                failed_deliveries += 1;
                break;
            }
        }
    }

    // Play AWS until nothing moves: migrations exit 0, deployments succeed; ECS's stop
    // events reach the engine (a tenth are dropped); the reconciler does the rest.
    let mut passes = 0;
    let mut dropped = 0;
    // Each pass a lease later: an action whose invocation failed past its retries is
    // taken over only once its lease has run out, as in AWS, minutes later.
    let mut at = Timestamp::now();
    loop {
        passes += 1;
        at = at.after(LEASE);
        assert!(
            passes <= 40,
            "the pipeline did not settle in 40 reconciler passes"
        );
        let mut moved = false;
        for service in SERVICES {
            let lane = store.lane(service, "dev").await.expect("lane").item;
            let Some(id) = lane.in_flight else { continue };
            let r = store
                .release(&id)
                .await
                .expect("release")
                .expect("exists")
                .item;
            let stage = &r.stages["dev"];
            match (stage.state(), stage.started()) {
                (StageState::Migrating, Some(task)) => {
                    provision(&[
                        "task-stopped",
                        "--cluster",
                        &format!("{p}-dev"),
                        "--task-arn",
                        task,
                        "--exit-code",
                        "0",
                    ]);
                    if rng.below(100) >= DROP_PERCENT {
                        let stopped = TaskStopped {
                            task_arn: task.to_string(),
                            started_by: Some(started_by(&r, "dev")),
                            stopped_reason: "Essential container in task exited".into(),
                            containers: vec![ContainerExit {
                                name: "app".into(),
                                exit_code: Some(0),
                                reason: None,
                            }],
                        };
                        let _ = e.on_task_stopped(&stopped, at).await;
                    } else {
                        dropped += 1;
                    }
                    moved = true;
                }
                (StageState::Deploying | StageState::Validating, Some(deployment)) => {
                    set_deployment_status(deployment, "Succeeded");
                    moved = true;
                }
                _ => {}
            }
        }
        let pipeline = e.pipeline().await.expect("pipeline");
        let report = e.reconcile(&pipeline, None, at).await;
        let quiet =
            matches!(&report, Ok(r) if r.report.transitions.is_empty() && r.failed.is_empty());
        if quiet && !moved {
            break;
        }
    }
    let injected = provision(&["faults", "--rates", "{}"]);
    let faults: u64 = injected
        .as_object()
        .map(|ops| {
            ops.values()
                .flat_map(|k| k.as_object().into_iter().flat_map(|m| m.values()))
                .filter_map(|v| v.as_u64())
                .sum()
        })
        .unwrap_or(0);

    // Every release in its right end state.
    let mut releases: BTreeMap<String, Vec<Release>> = BTreeMap::new();
    for service in SERVICES {
        let mut rs = store
            .releases_of_service(service, 1000)
            .await
            .expect("releases");
        rs.sort_by_key(|r| r.pushed_at);
        releases.insert(service.to_string(), rs);
    }
    let total: usize = releases.values().map(Vec::len).sum();
    assert_eq!(total, RELEASES, "one release per pushed digest");
    let mut stuck = 0;
    for (service, rs) in &releases {
        let lane = store.lane(service, "dev").await.expect("lane").item;
        if lane.in_flight.is_some() || lane.queued.is_some() {
            stuck += 1;
        }
        let newest = rs.last().expect("releases");
        assert_eq!(
            newest.state_in("dev"),
            Some(StageState::Succeeded),
            "{service}: the newest push ends deployed: {:?}",
            newest.stages.get("dev")
        );
        assert_eq!(
            lane.current.as_ref(),
            Some(&newest.id),
            "{service}: and is what runs"
        );
        for r in rs {
            let state = r.state_in("dev").expect("arrived in dev");
            assert!(
                matches!(state, StageState::Succeeded | StageState::Superseded)
                    || (state == StageState::Failed
                        && r.stages["dev"]
                            .reason
                            .as_deref()
                            .is_some_and(|w| w.contains("injected"))),
                "{service} {}: ended {state} ({:?})",
                r.id,
                r.stages["dev"].reason
            );
            // History agrees with the end state.
            let history = store.history_of_release(&r.id).await.expect("history");
            let last = history
                .iter()
                .rev()
                .find(|t| t.environment == "dev" && t.to.is_some())
                .expect("history");
            assert_eq!(
                last.to,
                Some(state),
                "{service} {}: history ends where the release is",
                r.id
            );
        }
    }
    // api promotes to prod, where a person approves: only the newest waits there.
    let prod = store.lane("api", "prod").await.expect("lane").item;
    assert_eq!(
        prod.queued.as_ref(),
        Some(&releases["api"].last().expect("api").id)
    );
    assert_eq!(prod.in_flight, None);

    // At most one deployment, migration task and revision per (release, environment).
    let mut duplicates = 0;
    let mut per_release: BTreeMap<String, usize> = BTreeMap::new();
    for (app, group) in [
        (format!("{p}-api"), format!("{p}-api-dev")),
        (format!("{p}-db"), format!("{p}-db-dev")),
    ] {
        let ids = codedeploy
            .list_deployments()
            .application_name(&app)
            .deployment_group_name(&group)
            .send()
            .await
            .expect("list deployments")
            .deployments
            .unwrap_or_default();
        for chunk in ids.chunks(25) {
            let infos = codedeploy
                .batch_get_deployments()
                .set_deployment_ids(Some(chunk.to_vec()))
                .send()
                .await
                .expect("get deployments")
                .deployments_info
                .unwrap_or_default();
            for d in infos {
                *per_release
                    .entry(d.description.unwrap_or_default())
                    .or_default() += 1;
            }
        }
    }
    duplicates += per_release.values().filter(|n| **n > 1).count();
    for r in &releases["db"] {
        let mut tasks = 0;
        for status in [
            aws_sdk_ecs::types::DesiredStatus::Running,
            aws_sdk_ecs::types::DesiredStatus::Stopped,
        ] {
            tasks += ecs
                .list_tasks()
                .cluster(format!("{p}-dev"))
                .started_by(started_by(r, "dev"))
                .desired_status(status)
                .send()
                .await
                .expect("list tasks")
                .task_arns()
                .len();
        }
        if tasks > 1 {
            duplicates += 1;
        }
    }
    let mut revisions: BTreeMap<String, usize> = BTreeMap::new();
    for family in [
        format!("{p}-api-dev"),
        format!("{p}-db-dev"),
        format!("{p}-db-migrate"),
        format!("{p}-etl-nightly"),
    ] {
        let arns = ecs
            .list_task_definitions()
            .family_prefix(&family)
            .send()
            .await
            .expect("list revisions")
            .task_definition_arns
            .unwrap_or_default();
        for arn in arns {
            let tags = ecs
                .describe_task_definition()
                .task_definition(&arn)
                .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
                .send()
                .await
                .expect("describe revision")
                .tags
                .unwrap_or_default();
            if let Some(release) = tags
                .iter()
                .find(|t| t.key() == Some("shiplane:release"))
                .and_then(|t| t.value())
            {
                *revisions.entry(format!("{family} {release}")).or_default() += 1;
            }
        }
    }
    duplicates += revisions.values().filter(|n| **n > 1).count();

    println!(
        "faults: {RELEASES} releases, {} deliveries ({failed_deliveries} failed for good), {faults} AWS faults injected, {dropped} outcome events dropped, {passes} reconciler passes, stuck = {stuck}, duplicates = {duplicates}, {} deployments, {} revisions",
        deliveries.len(),
        per_release.len(),
        revisions.len()
    );
    assert_eq!(stuck, 0, "no lane stuck");
    assert_eq!(
        duplicates, 0,
        "one effect per (release, environment): {per_release:?} {revisions:?}"
    );
    assert!(faults > 100, "faults were injected: {injected}");
}
