//! What events cost a running process: the first event's latency and the steady path's,
//! the first push with and without a network's delay, and peak RSS over many events.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shiplane_e2e::push_event;
use shiplane_e2e::round_trips::ROUND_TRIP_MS;

use crate::figures::{FirstPush, Latencies, Latency, PeakRss};
use crate::harness::{
    Env, Subject, Subjects, WAIT, World, started, stats, synthetic_push, task_stopped_unknown,
    timed, world,
};

/// First event on a fresh process, then `n` more of the steady path.
async fn latency(
    subject: &Subject,
    env: &Env,
    first: Value,
    steady: impl Fn(usize) -> Value,
    n: usize,
    path: &'static str,
) -> Latency {
    let (api, _f) = started(subject, env).await;
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

/// [`latency`] of each subject against the emulator, 50 events of the steady path each:
/// image-push's and the peer's first push (each in a world of its own) then its replay,
/// deployment-events' task stops it did not start, hello-world's echo.
pub async fn latencies(s: &Subjects, w: &World) -> Latencies {
    let image_push = push_latency(&s.image_push, w).await;
    let peer = push_latency(&s.peer, &world().await).await;
    let deployment_events = latency(
        &s.deployment_events,
        &w.env,
        task_stopped_unknown(0),
        task_stopped_unknown,
        50,
        "a task Shiplane did not start (ignored)",
    )
    .await;
    let hello = latency(
        &s.hello,
        &w.env,
        json!({"hello": 0}),
        |i| json!({"hello": i}),
        50,
        "echo",
    )
    .await;
    Latencies {
        image_push,
        peer,
        deployment_events,
        hello,
    }
}

/// [`latency`] of a first push of `api` in `w`, then of the same push again.
async fn push_latency(subject: &Subject, w: &World) -> Latency {
    let first = push_event(&format!("{}/api", w.p), "v1.0.0");
    let replay = first.clone();
    latency(
        subject,
        &w.env,
        first,
        move |_| replay.clone(),
        50,
        "the same push again (replay: claim found)",
    )
    .await
}

/// Milliseconds to the answer of the first event of a fresh process, with every AWS answer
/// delayed `delay_ms` as a network's would be (0: the emulator's own time only).
async fn first_event(subject: &Subject, env: &Env, event: Value, delay_ms: u64) -> f64 {
    let (api, _f) = started(subject, env).await;
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
pub async fn first_push_ms(subject: &Subject, delay_ms: u64) -> f64 {
    let w = world().await;
    let event = push_event(&format!("{}/api", w.p), "v1.0.0");
    first_event(subject, &w.env, event, delay_ms).await
}

/// The first push again, in fresh worlds and processes, five times each (a single first
/// event is noisy): with the emulator's own time only, and with a network's delay on
/// every answer, where round trips count as they do in AWS.
pub async fn first_pushes(s: &Subjects) -> FirstPush {
    let mut firsts: BTreeMap<(&str, u64), Vec<f64>> = BTreeMap::new();
    for _ in 0..5 {
        for delay in [0, ROUND_TRIP_MS] {
            for (name, subject) in [("image-push", &s.image_push), ("peer", &s.peer)] {
                let ms = first_push_ms(subject, delay).await;
                firsts.entry((name, delay)).or_default().push(ms);
            }
        }
    }
    let first = |name: &str, delay: u64| stats(firsts[&(name, delay)].clone()).0;
    FirstPush {
        delayed_push: first("image-push", ROUND_TRIP_MS),
        delayed_peer: first("peer", ROUND_TRIP_MS),
        plain_push: first("image-push", 0),
        plain_peer: first("peer", 0),
    }
}

/// Peak RSS (MiB) of one process over `n` events.
async fn peak_rss(subject: &Subject, env: &Env, event: impl Fn(usize) -> Value, n: usize) -> f64 {
    let (api, f) = started(subject, env).await;
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

/// [`peak_rss`] of each subject over `events` events: distinct pushes to image-push and
/// the peer (each in a world of its own), task stops to deployment-events, echoes.
pub async fn peak_rss_of(s: &Subjects, w: &World, events: usize) -> PeakRss {
    let image_push = pushes_rss(&s.image_push, events).await;
    let peer = pushes_rss(&s.peer, events).await;
    let deployment_events =
        peak_rss(&s.deployment_events, &w.env, task_stopped_unknown, events).await;
    let hello = peak_rss(&s.hello, &w.env, |i| json!({"hello": i}), events).await;
    PeakRss {
        image_push,
        deployment_events,
        peer,
        hello,
    }
}

/// [`peak_rss`] of `subject` over `events` distinct pushes of `api`, in a world of its own.
async fn pushes_rss(subject: &Subject, events: usize) -> f64 {
    let w = world().await;
    let p = w.p.clone();
    peak_rss(
        subject,
        &w.env,
        move |i| synthetic_push(&p, "api", i),
        events,
    )
    .await
}
