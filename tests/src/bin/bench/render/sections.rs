//! BENCHMARKS.md's measured sections after the targets: cold start, latency, peak RSS, AWS
//! calls per event, the reconciler's pass, artifacts, the core decision, release-profile
//! variants and aws-lc's first random draw.

use std::fmt::Write as _;

use shiplane_e2e::round_trips::ROUND_TRIP_MS;

use super::mib;
use crate::figures::{
    Artifact, CLIENTS, Calls, Decision, ENVIRONMENTS, Entropy, Figures, Latencies, PeakRss,
    ReconcilerPass, Variant,
};

/// Cold start of each subject against the floor and the peer, then what building the SDK
/// clients adds to it.
pub fn cold_start_md(f: &Figures) -> String {
    let mut md = String::new();
    let runs = f.runs;
    let (floor, peer_cold) = (f.cold.floor.0, f.cold.peer.0);
    let _ = writeln!(
        md,
        "\n## Cold start (process start → first poll for work, {runs} starts each)\n\n| function | median | p90 | × hello-world | Python peer ÷ this |\n|---|---|---|---|---|"
    );
    for (name, (m, p90)) in [
        ("hello-world (floor)", f.cold.floor),
        ("image-push", f.cold.image_push),
        ("deployment-events", f.cold.deployment_events),
        ("Python peer (boto3)", f.cold.peer),
    ] {
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
    for (name, ms) in CLIENTS.iter().zip(&f.clients.each) {
        let _ = writeln!(md, "| {name} | {ms:.2} ms |");
    }
    let (clients_total, push_cold) = (f.clients.total, f.cold.image_push.0);
    let _ = writeln!(
        md,
        "| all four | {clients_total:.2} ms |\n\nCold start plus all four clients, what a cold start followed by a push that deploys costs before its first AWS call: image-push {:.1} ms, {:.2}× the floor.",
        push_cold + clients_total,
        (push_cold + clients_total) / floor
    );
    md
}

/// First event and steady path of each subject against the emulator.
pub fn latency_md(l: &Latencies) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Latency against the local emulator\n\nFirst event: the first invocation of a fresh process (connection set-up included). Steady state: median and p90 of 50 further invocations of the path named. The emulator is single-threaded Python, so absolute figures are the emulator's more than the function's; compare the rows.\n\n| function | first event | steady path | steady median | steady p90 |\n|---|---|---|---|---|"
    );
    for (name, l) in [
        (
            "image-push (first push: release, revision, deployment, 3 notifications)",
            &l.image_push,
        ),
        ("Python peer (first push: same job)", &l.peer),
        ("deployment-events", &l.deployment_events),
        ("hello-world", &l.hello),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {:.1} ms | {} | {:.2} ms | {:.2} ms |",
            l.first, l.steady_path, l.steady.0, l.steady.1
        );
    }
    md
}

/// Peak RSS of each subject over `events` events, against the floor's.
pub fn rss_md(rss: &PeakRss, events: usize) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Peak RSS over {events} events (`VmHWM` of the process)\n\n| function | events | peak RSS | × hello-world |\n|---|---|---|---|"
    );
    for (name, mib, what) in [
        (
            "image-push",
            rss.image_push,
            "distinct pushes: one deployment, then queue and supersede",
        ),
        (
            "deployment-events",
            rss.deployment_events,
            "task stops Shiplane did not start",
        ),
        (
            "Python peer (boto3)",
            rss.peer,
            "distinct pushes: revision each, then queued",
        ),
        ("hello-world (floor)", rss.hello, "echo"),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {what} | {mib:.1} MiB | {:.2}× |",
            mib / rss.hello
        );
    }
    md
}

/// Each step's calls by operation, with why it makes them, and in round trips.
pub fn calls_md(steps: &[(String, Calls)]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## AWS calls per event, by step of a release\n\nCounted by the emulator for exactly one event each, every answer delayed {ROUND_TRIP_MS} ms as a network's would be. Sequential round trips are the critical path of the calls: a call's round trip is one more than the deepest of the calls answered before it was sent; calls in flight together share one (`∥` below). The image-push and migration rows are the built functions behind a Lambda Runtime API, in one process (the first push is its first event: nothing cached); the deploy-hook, deployment-events, promote, CLI approve and alarm rows run the engine in-process as each function does (same entry point, same adapters), each in a fresh process's state, along one release of a three-environment pipeline (`shiplane_e2e::round_trips::release_steps`; `tests/tests/round_trips.rs` holds every row to its target).\n"
    );
    for (label, calls) in steps {
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
    md
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
        "ecr.DescribeImages" => {
            "ECR's push times: this push shares a second with the lane's newest, so ECR orders them"
        }
        _ => "",
    }
}

/// The reconciler's pass as printed by `--reconcile-only` and written to BENCHMARKS.md.
pub fn reconciler_md(r: &ReconcilerPass) -> String {
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

/// Each function's bootstrap and zip.
pub fn artifacts_md(artifacts: &[Artifact]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Artifacts (`make build`)\n\n| function | bootstrap | zip |\n|---|---|---|"
    );
    for a in artifacts {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            a.function,
            a.bootstrap.map(mib).unwrap_or_else(|| "not built".into()),
            a.zip.map(mib).unwrap_or_else(|| "not built".into())
        );
    }
    md
}

/// Criterion's medians of the core decision, its parts, and the pipeline's parse.
pub fn decision_md(d: &Decision) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Core decision (criterion)\n\nParse the ECR event, look the service up in a 1,000-service pipeline, build its stage policy, apply the state machine; no I/O.\n\n| benchmark | median |\n|---|---|"
    );
    if let Some(ns) = d.push {
        let _ = writeln!(
            md,
            "| push to a free lane, 1,000-service pipeline | {:.1} µs |",
            ns / 1000.0
        );
    }
    for (part, ns) in &d.parts {
        let _ = writeln!(
            md,
            "| … of which {} | {:.2} µs |",
            part.trim_start_matches("decision_part_").replace('_', " "),
            ns / 1000.0
        );
    }
    if let Some(ns) = d.parse {
        let _ = writeln!(
            md,
            "| parse and validate the 1,000-service pipeline (cold invocation only; warm ones reuse it) | {:.1} ms |",
            ns / 1e6
        );
    }
    md
}

/// The release-profile variants' sizes and cold starts, `runs` starts each. A variant this
/// run did not measure (`make bench PROFILES=0` builds none but the shipped one) keeps the
/// row `old` (the file as it was) recorded for it, marked as an earlier run's: the
/// variants change only with the release profile, and each costs a full release build.
pub fn profile_md(variants: &[Variant], runs: usize, old: Option<&str>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "\n## Release profile, by measurement\n");
    let earlier = earlier_variant_rows(variants, old);
    if variants.is_empty() && earlier.is_empty() {
        let _ = writeln!(
            md,
            "Not measured in this run: `bench/profiles.sh` builds the variants (one full release build each), then `make bench` measures them."
        );
        return md;
    }
    let _ = write!(
        md,
        "Cumulative variants built by `bench/profiles.sh`; cold start median of {runs} starts each, image-push and hello-world in turns, measured in this run"
    );
    if !earlier.is_empty() {
        let _ = write!(
            md,
            ", but for the rows marked *earlier run*: this run built no such variant, and they are kept as the file last recorded them"
        );
    }
    let _ = writeln!(
        md,
        ".\n\n| variant | image-push size | hello-world size | image-push cold start | hello-world cold start |\n|---|---|---|---|---|"
    );
    let mut rows: Vec<(String, String)> = earlier;
    for v in variants {
        let row = format!(
            "| {} | {} | {} | {:.1} ms | {:.1} ms |",
            v.name,
            v.image_push_size.map(mib).unwrap_or_default(),
            v.hello_size.map(mib).unwrap_or_default(),
            v.image_push_cold.0,
            v.hello_cold.0
        );
        rows.push((v.name.clone(), row));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, row) in rows {
        let _ = writeln!(md, "{row}");
    }
    md
}

/// The rows of `old`'s variants table for variants not in `measured`, each named as an
/// earlier run's: (variant name, row).
fn earlier_variant_rows(measured: &[Variant], old: Option<&str>) -> Vec<(String, String)> {
    let Some(section) = old.and_then(|o| super::section(o, PROFILE_HEADING)) else {
        return Vec::new();
    };
    section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| variant |"))
        .filter_map(|l| {
            let name = l.trim_start_matches("| ").split(" |").next()?.trim();
            let name = name.trim_end_matches(" *(earlier run)*").to_string();
            let rest = l.trim_start_matches("| ").split_once(" |")?.1;
            (!measured.iter().any(|v| v.name == name))
                .then(|| (name.clone(), format!("| {name} *(earlier run)* |{rest}")))
        })
        .collect()
}

/// The heading of the release-profile section.
const PROFILE_HEADING: &str = "## Release profile, by measurement";

/// aws-lc's first random draw, with jitter entropy and seeded from the kernel, `runs`
/// fresh processes each.
pub fn entropy_md(e: &Entropy, runs: usize) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## TLS crypto: aws-lc's first random bytes\n\nThe SDK's TLS (rustls on aws-lc) draws random bytes at the first handshake after every cold start; aws-lc seeds its generator on that first draw. By default it gathers CPU jitter entropy for the seed; built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1` (set in `.cargo/config.toml`) it seeds from the kernel (`getrandom`), as ring and BoringSSL do. `bench/entropy-probe`, built both ways by `bench/profiles.sh`, times that first draw in fresh processes ({runs} each, median). The emulator speaks plain HTTP, so the latency rows above never include it; against AWS every cold start does.\n"
    );
    match (e.jitter, e.os) {
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
    md
}
