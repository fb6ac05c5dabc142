//! AWS calls per event, by step of a release: the built functions behind a Lambda Runtime
//! API (image-push's pushes, deployment-events' migration stop, the Python peer's push),
//! and the engine as each later function runs it.

use serde_json::Value;
use shiplane::store::ReleaseStore;
use shiplane_e2e::push_event;
use shiplane_e2e::round_trips::{Step, counted};
use shiplane_e2e::runtime_api::RuntimeApi;

use crate::figures::Calls;
use crate::harness::{Subjects, World, started, timed, world};

/// The AWS calls one event makes, by operation and in sequential round trips (see
/// `shiplane_e2e::round_trips::counted`: every answer waits as a network's would).
async fn calls_for(api: &RuntimeApi, answered: &mut usize, event: Value) -> (Calls, Value) {
    let ((_, answer), cost) = counted(timed(api, answered, event)).await;
    (Calls::from(cost), answer)
}

/// The labelled calls of each event the built functions handle, in a world of their own:
/// image-push's pushes, then the migration's task stopping (deployment-events), then the
/// Python peer's first push in another world.
pub async fn per_event(s: &Subjects) -> Vec<(String, Calls)> {
    let w5 = world().await;
    let mut steps = image_push_calls(s, &w5).await;
    steps.push(migration_stopped_calls(s, &w5).await);
    steps.push(peer_calls(s).await);
    steps
}

/// One process of image-push, the events of a release's start in turn: the first push,
/// one that queues, one that supersedes it, the first again, a service with a migration,
/// data jobs.
async fn image_push_calls(s: &Subjects, w5: &World) -> Vec<(String, Calls)> {
    let p5 = &w5.p;
    let (api, _f) = started(&s.image_push, &w5.env).await;
    let mut answered = 0;
    let mut steps: Vec<(String, Calls)> = Vec::new();
    let push1 = push_event(&format!("{p5}/api"), "v1.0.0");
    // Each push is made when its turn comes, in a later second than the push before it,
    // as pushes of one repository are: one in the same second as the lane's newest asks
    // ECR for the push times that order them (one DescribeImages more).
    let later = |tag: &'static str| {
        move || {
            next_second();
            push_event(&format!("{p5}/api"), tag)
        }
    };
    let steps_of: [(&str, MakeEvent<'_>); 6] = [
        (
            "image-push: push, free lane → blue-green deployment",
            Box::new(|| push1.clone()),
        ),
        (
            "image-push: push while one is in flight, a second or more after it → queued",
            Box::new(later("v1.0.1")),
        ),
        (
            "image-push: another push, a second or more later → the queued one superseded",
            Box::new(later("v1.0.2")),
        ),
        (
            "image-push: the first push delivered again (replay)",
            Box::new(|| push1.clone()),
        ),
        (
            "image-push: push of a service with a migration → RunTask",
            Box::new(|| push_event(&format!("{p5}/db"), "v1")),
        ),
        (
            "image-push: push of data jobs → two revisions, succeeded",
            Box::new(|| push_event(&format!("{p5}/etl"), "20261116-abc1234")),
        ),
    ];
    for (label, event) in steps_of {
        let (calls, answer) = calls_for(&api, &mut answered, event()).await;
        assert!(answer.get("error").is_none(), "{label}: {answer}");
        steps.push((label.to_string(), calls));
    }
    steps
}

/// An event made when its turn comes.
type MakeEvent<'a> = Box<dyn Fn() -> Value + 'a>;

/// Waits until the wall clock's second changes: a push made after it is in a later second
/// (ECR's events say when a push happened to the second).
fn next_second() {
    let second = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let now = second();
    while second() == now {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The migration image-push started (in `w5`) stops: deployment-events starts the
/// deployment.
async fn migration_stopped_calls(s: &Subjects, w5: &World) -> (String, Calls) {
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
        .started()
        .expect("migration task")
        .to_string();
    let stopped = shiplane_e2e::provision(&[
        "task-stopped",
        "--cluster",
        &format!("{}-dev", w5.p),
        "--task-arn",
        &task_arn,
        "--exit-code",
        "0",
    ]);
    let (api, _f) = started(&s.deployment_events, &w5.env).await;
    let mut answered = 0;
    let (calls, answer) = calls_for(&api, &mut answered, stopped).await;
    assert!(answer.get("error").is_none(), "task stopped: {answer}");
    (
        "deployment-events: migration task stopped, exit 0 → deployment".into(),
        calls,
    )
}

/// The Python peer's first push, in a world of its own.
async fn peer_calls(s: &Subjects) -> (String, Calls) {
    let w6 = world().await;
    let (api, _f) = started(&s.peer, &w6.env).await;
    let mut answered = 0;
    let (calls, answer) = calls_for(
        &api,
        &mut answered,
        push_event(&format!("{}/api", w6.p), "v1.0.0"),
    )
    .await;
    assert!(answer.get("error").is_none(), "peer: {answer}");
    (
        "Python peer: push, free lane → blue-green deployment".into(),
        calls,
    )
}

/// A step of a release's life ([`shiplane_e2e::round_trips::release_steps`]) as a row of
/// calls per event, labelled `function: what`.
pub fn of_step(step: &Step) -> (String, Calls) {
    (
        format!("{}: {}", step.function, step.what),
        Calls::from(step.cost.clone()),
    )
}
