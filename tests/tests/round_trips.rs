//! Round trips per event, as the emulator counts them with a network's delay on every
//! answer (calls in flight together share one round trip): the targets `make bench`
//! reports, held by a test. The engine runs over the real adapters and a store that has
//! cached nothing, as in a fresh Lambda process.
//!
//! The emulator's call counter is global: the tests here take turns ([`COUNTING`]).

use std::future::Future;

use shiplane::aws::EcrPushClock;
use shiplane::engine::PushOutcome;
use shiplane::release::{StageState, Timestamp};
use shiplane::store::DynamoStore;
use shiplane_e2e::round_trips::{COUNTING, release_steps};
use shiplane_e2e::{aws_adapters, aws_config, deployed_world, image_push};

/// What `work` returns, and its AWS calls in sequential round trips.
async fn counted<T>(work: impl Future<Output = T>) -> (T, Vec<Vec<String>>) {
    let (out, cost) = shiplane_e2e::round_trips::counted(work).await;
    eprintln!("{} round trips: {:?}", cost.trips.len(), cost.trips);
    (out, cost.trips)
}

fn count_in(trips: &[Vec<String>], op: &str) -> usize {
    trips.iter().flatten().filter(|c| *c == op).count()
}

fn created(outcome: &PushOutcome) -> Option<StageState> {
    match outcome {
        PushOutcome::Created { state, .. } => *state,
        other => panic!("not a new release: {other:?}"),
    }
}

#[tokio::test]
async fn pushes_take_at_most_eight_round_trips_to_deploy_four_to_queue_and_one_to_replay() {
    let _alone = COUNTING.lock().await;
    let (p, account, setup) = deployed_world().await;
    let aws = aws_adapters(&account).await;
    // A new store on the same table: nothing cached, as in a fresh process.
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws_config().await),
        setup.table(),
    );
    let engine = aws.engine(&store);
    // As image-push runs it: ECR says when an image was pushed, if the event's second
    // cannot.
    let ecr = EcrPushClock::from_config(&aws_config().await);
    let repository = format!("{p}/api");
    let mut pushes: Vec<_> = ["v1.0.0", "v1.0.1", "v1.0.2", "v1.0.3"]
        .iter()
        .map(|tag| image_push(&repository, tag))
        .collect();
    // The first three a second apart, as consecutive builds push; the last in the third's
    // second, measured apart.
    let base = pushes[0].pushed_at.0;
    for (n, push) in pushes.iter_mut().enumerate() {
        push.pushed_at = Timestamp(base + 1000 * (n as u64).min(2));
    }

    let (first, trips) = counted(engine.on_push_with(&pushes[0], &ecr, Timestamp::now())).await;
    let first = first.expect("first push");
    assert_eq!(created(&first), Some(StageState::Deploying), "{first:?}");
    assert!(
        trips.len() <= 8,
        "a first push to a free blue/green lane: {} round trips: {trips:?}",
        trips.len()
    );
    // The deployment's reads overlap the commit that decides it, and are made once.
    let wave_of = |op: &str| trips.iter().position(|w| w.iter().any(|c| c == op));
    let count = |op: &str| trips.iter().flatten().filter(|c| *c == op).count();
    assert_eq!(count("ecs.DescribeServices"), 1, "{trips:?}");
    assert_eq!(
        wave_of("ecs.DescribeServices"),
        wave_of("dynamodb.TransactWriteItems"),
        "{trips:?}"
    );
    // Calls none of the guarantees needs are not made.
    assert_eq!(
        count("ecs.DescribeTaskDefinition"),
        1,
        "a release minted by this push has no earlier revision to look for: {trips:?}"
    );
    assert_eq!(
        (count("dynamodb.Query"), count("dynamodb.BatchGetItem")),
        (1, 1),
        "a cold process reads the pipeline, then the claim with the lane: {trips:?}"
    );
    assert_eq!(
        count("dynamodb.UpdateItem"),
        0,
        "the claim is settled by the last commit: {trips:?}"
    );
    assert_eq!(
        (count("sns.PublishBatch"), count("sns.Publish")),
        (1, 0),
        "every notification in one call, at the end: {trips:?}"
    );

    let (queued, trips) = counted(engine.on_push_with(&pushes[1], &ecr, Timestamp::now())).await;
    assert_eq!(
        created(&queued.expect("second push")),
        Some(StageState::Queued)
    );
    assert!(
        trips.len() <= 4,
        "a push that queues: {} round trips: {trips:?}",
        trips.len()
    );

    let (superseding, trips) =
        counted(engine.on_push_with(&pushes[2], &ecr, Timestamp::now())).await;
    assert_eq!(
        created(&superseding.expect("third push")),
        Some(StageState::Queued)
    );
    assert!(
        trips.len() <= 4,
        "a push that supersedes the queued one: {} round trips: {trips:?}",
        trips.len()
    );

    // A push in the same second as the newest one here: ECR is asked for both images'
    // push times, in one call, one round trip more; pushed last, it is the newest.
    let (tied, trips) = counted(engine.on_push_with(&pushes[3], &ecr, Timestamp::now())).await;
    assert_eq!(
        created(&tied.expect("fourth push")),
        Some(StageState::Queued)
    );
    assert_eq!(count_in(&trips, "ecr.DescribeImages"), 1, "{trips:?}");
    assert!(
        trips.len() <= 5,
        "a push that shares its second: {} round trips: {trips:?}",
        trips.len()
    );

    let PushOutcome::Created { release, .. } = first else {
        unreachable!()
    };
    let (replay, trips) = counted(engine.on_push_with(&pushes[0], &ecr, Timestamp::now())).await;
    assert_eq!(
        replay.expect("replay"),
        PushOutcome::Replayed {
            release,
            tag_added: false
        }
    );
    assert_eq!(
        trips,
        vec![vec!["dynamodb.BatchGetItem".to_string()]],
        "a replay of a handled push is one read"
    );

    // Data jobs: every family's latest read together, then their revisions registered
    // together.
    let jobs = image_push(&format!("{p}/etl"), "20261116-abc1234");
    let (made, trips) = counted(engine.on_push_with(&jobs, &ecr, Timestamp::now())).await;
    assert_eq!(
        created(&made.expect("data jobs push")),
        Some(StageState::Succeeded)
    );
    let together = |op: &str| {
        trips
            .iter()
            .any(|w| w.iter().filter(|c| *c == op).count() == 2)
    };
    assert!(
        together("ecs.DescribeTaskDefinition") && together("ecs.RegisterTaskDefinition"),
        "two families in two round trips: {trips:?}"
    );
}

/// The pipeline a process cached is revalidated by the pointer item inside the batch it
/// reads anyway: no Query while it is current, the new version as soon as another process
/// applies one, and a table whose pipeline predates the pointer still read right.
#[tokio::test]
async fn a_cached_pipeline_costs_no_query_until_another_process_applies_a_new_one() {
    use shiplane::store::{Reads, ReleaseStore, StoredPipeline};
    let _alone = COUNTING.lock().await;
    let config = aws_config().await;
    let writer = shiplane_e2e::fresh_store().await;
    let reader = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), writer.table());
    let version = |v: u64| StoredPipeline {
        version: v,
        source: format!("[pipeline]\n# version {v}\n"),
        applied_at: Timestamp(v),
        applied_by: "ana".into(),
    };
    let reads = Reads {
        claim: Some("push#x#sha256:0".into()),
        pipeline: true,
        ..Reads::default()
    };
    writer.put_pipeline(version(1)).await.unwrap();
    let (cold, _) = counted(reader.read(&reads, Timestamp::now())).await;
    assert_eq!(cold.unwrap().pipeline.unwrap().version, 1);

    let (warm, trips) = counted(reader.read(&reads, Timestamp::now())).await;
    assert_eq!(warm.unwrap().pipeline.unwrap().version, 1);
    assert_eq!(trips, vec![vec!["dynamodb.BatchGetItem".to_string()]]);

    writer.put_pipeline(version(2)).await.unwrap();
    let (changed, trips) = counted(reader.read(&reads, Timestamp::now())).await;
    assert_eq!(changed.unwrap().pipeline.as_deref(), Some(&version(2)));
    assert_eq!(
        trips.len(),
        2,
        "the pointer, then the new version: {trips:?}"
    );

    // A pipeline applied before the pointer existed: read again each time, never stale.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    dynamodb
        .delete_item()
        .table_name(writer.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("PIPELINE".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CURRENT".into()),
        )
        .send()
        .await
        .unwrap();
    let without = reader.read(&reads, Timestamp::now()).await.unwrap();
    assert_eq!(without.pipeline.unwrap().version, 2);
    writer.put_pipeline(version(3)).await.unwrap();
    let after = reader.read(&reads, Timestamp::now()).await.unwrap();
    assert_eq!(after.pipeline.unwrap().version, 3);
}

#[tokio::test]
async fn each_function_handles_its_step_of_a_release_within_its_target() {
    let _alone = COUNTING.lock().await;
    let mut over = Vec::new();
    for step in Box::pin(release_steps()).await {
        let trips = &step.cost.trips;
        let line = format!(
            "{}: {}: {} round trips (target {}): {trips:?}",
            step.function,
            step.what,
            trips.len(),
            step.target
        );
        eprintln!("{line}");
        if trips.len() > step.target {
            over.push(line);
        }
    }
    assert!(over.is_empty(), "over target:\n{}", over.join("\n"));
}
