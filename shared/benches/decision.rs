//! Core decision time on a 1,000-service pipeline: parse the ECR event, look up the service
//! and its stage policy, apply the state machine. No I/O; what the CPU spends per event.

// A benchmark: a setup that fails should stop it where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use criterion::{Criterion, criterion_group, criterion_main};
use shiplane::inbound::Inbound;
use shiplane::inbound::ecr::{EcrImageAction, parse_push};
use shiplane::pipeline::Pipeline;
use shiplane::release::{Event, Lane, LaneView, Policy, Release, ReleaseId, Timestamp, apply};

const SERVICES: usize = 1000;

fn pipeline_source() -> String {
    shiplane::pipeline::example_pipeline(SERVICES)
}

fn event(i: usize) -> String {
    format!(
        r#"{{"version":"0","id":"13cde686-328b-6117-af20-0e5566167482","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012","time":"2026-11-16T01:54:34Z","region":"us-east-1","resources":[],"detail":{{"result":"SUCCESS","repository-name":"team/svc-{i}","image-digest":"sha256:{}","action-type":"PUSH","image-tag":"v1.4.0","manifest-media-type":"application/vnd.docker.distribution.manifest.v2+json","artifact-media-type":"application/vnd.docker.container.image.v1+json"}}}}"#,
        "ab".repeat(32)
    )
}

/// Everything image-push decides for one event, without I/O. Returns the action count so
/// the work cannot be optimised away.
fn decide(pipeline: &Pipeline, raw: &str, busy: &LaneView) -> usize {
    let parsed: EventBridgeEvent<EcrImageAction> = serde_json::from_str(raw).expect("event");
    let Ok(Inbound::Accepted(push)) = parse_push(&parsed, shiplane::release::Timestamp::now())
    else {
        panic!("not a push")
    };
    let service = pipeline
        .service_for_repository(&push.repository)
        .expect("service");
    assert!(service.tags.accepts(&push.tag));
    let stage = &service.stages[0];
    let policy = Policy::for_stage(service, stage);
    let now = Timestamp(1_760_000_000_000);
    let release = Release::new(
        ReleaseId::new(now),
        &service.name,
        &push.repository,
        push.digest,
        Some(&push.tag),
        now,
    );
    let mut view = busy.clone();
    view.lane.service = service.name.clone();
    let id = release.id.clone();
    view.releases.insert(id.clone(), release);
    let decision = apply(&view, &id, &Event::Arrived, &policy, now).expect("decision");
    decision.actions.len() + decision.transitions.len()
}

fn benches(c: &mut Criterion) {
    let source = pipeline_source();
    let pipeline = Pipeline::from_toml(&source).expect("pipeline");
    let last = event(SERVICES - 1); // the worst case for the repository lookup
    let free = LaneView {
        lane: Lane::new("svc-999", "dev"),
        releases: BTreeMap::new(),
    };

    c.bench_function("decision/push_to_free_lane_1000_services", |b| {
        b.iter(|| decide(black_box(&pipeline), black_box(&last), black_box(&free)))
    });
    // The parts, to see where the time goes.
    c.bench_function("decision/part/parse_event", |b| {
        b.iter(|| {
            let parsed: EventBridgeEvent<EcrImageAction> =
                serde_json::from_str(black_box(&last)).expect("event");
            parse_push(&parsed, shiplane::release::Timestamp::now()).expect("push")
        })
    });
    c.bench_function("decision/part/lookup_service_and_policy", |b| {
        b.iter(|| {
            let s = pipeline
                .service_for_repository(black_box("team/svc-999"))
                .expect("service");
            (s.tags.accepts("v1.4.0"), Policy::for_stage(s, &s.stages[0]))
        })
    });
    let now = Timestamp(1_760_000_000_000);
    c.bench_function("decision/part/new_release_and_apply", |b| {
        b.iter(|| {
            let digest = shiplane::release::Digest::parse(&format!("sha256:{}", "ab".repeat(32)))
                .expect("digest");
            let release = Release::new(
                ReleaseId::new(now),
                "svc-999",
                "team/svc-999",
                digest,
                Some("v1.4.0"),
                now,
            );
            let mut view = free.clone();
            let id = release.id.clone();
            view.releases.insert(id.clone(), release);
            let service = &pipeline.services["svc-999"];
            apply(
                &view,
                &id,
                &Event::Arrived,
                &Policy::for_stage(service, &service.stages[0]),
                now,
            )
            .expect("decision")
        })
    });
    c.bench_function("pipeline/parse_and_validate_1000_services", |b| {
        b.iter(|| Pipeline::from_toml(black_box(&source)).expect("pipeline"))
    });
}

criterion_group!(decision, benches);
criterion_main!(decision);
