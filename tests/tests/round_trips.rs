//! Round trips per event, as the emulator counts them with a network's delay on every
//! answer (calls in flight together share one round trip): the targets `make bench`
//! reports, held by a test. The engine runs over the real adapters and a store that has
//! cached nothing, as in a fresh Lambda process.
//!
//! One test in this binary: the emulator's call counter is global, so nothing else may
//! call it meanwhile.

use std::future::Future;

use shiplane::engine::PushOutcome;
use shiplane::release::{StageState, Timestamp};
use shiplane::store::DynamoStore;
use shiplane_e2e::{
    aws_adapters, aws_config, aws_round_trips, deployed_world, image_push, reset_aws_calls,
    set_aws_latency,
};

/// What `work` returns, and its AWS calls in sequential round trips.
async fn counted<T>(work: impl Future<Output = T>) -> (T, Vec<Vec<String>>) {
    reset_aws_calls();
    set_aws_latency(10);
    let out = work.await;
    set_aws_latency(0);
    let trips = aws_round_trips();
    eprintln!("{} round trips: {trips:?}", trips.len());
    (out, trips)
}

fn created(outcome: &PushOutcome) -> Option<StageState> {
    match outcome {
        PushOutcome::Created { state, .. } => *state,
        other => panic!("not a new release: {other:?}"),
    }
}

#[tokio::test]
async fn pushes_take_at_most_eight_round_trips_to_deploy_four_to_queue_and_one_to_replay() {
    let (p, account, setup) = deployed_world().await;
    let aws = aws_adapters(&account).await;
    // A new store on the same table: nothing cached, as in a fresh process.
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws_config().await),
        setup.table(),
    );
    let engine = aws.engine(&store);
    let repository = format!("{p}/api");
    let pushes: Vec<_> = ["v1.0.0", "v1.0.1", "v1.0.2"]
        .iter()
        .map(|tag| image_push(&repository, tag))
        .collect();

    let (first, trips) = counted(engine.on_push(&pushes[0], Timestamp::now())).await;
    let first = first.expect("first push");
    assert_eq!(created(&first), Some(StageState::Deploying), "{first:?}");
    assert!(
        trips.len() <= 8,
        "a first push to a free blue/green lane: {} round trips: {trips:?}",
        trips.len()
    );
    assert!(
        trips.iter().any(|wave| wave.len() > 1),
        "independent calls overlap: {trips:?}"
    );

    let (queued, trips) = counted(engine.on_push(&pushes[1], Timestamp::now())).await;
    assert_eq!(
        created(&queued.expect("second push")),
        Some(StageState::Queued)
    );
    assert!(
        trips.len() <= 4,
        "a push that queues: {} round trips: {trips:?}",
        trips.len()
    );

    let (superseding, trips) = counted(engine.on_push(&pushes[2], Timestamp::now())).await;
    assert_eq!(
        created(&superseding.expect("third push")),
        Some(StageState::Queued)
    );
    assert!(
        trips.len() <= 4,
        "a push that supersedes the queued one: {} round trips: {trips:?}",
        trips.len()
    );

    let PushOutcome::Created { release, .. } = first else {
        unreachable!()
    };
    let (replay, trips) = counted(engine.on_push(&pushes[0], Timestamp::now())).await;
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
}
