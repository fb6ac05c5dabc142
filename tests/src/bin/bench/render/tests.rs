//! BENCHMARKS.md's format, held: fixed figures rendered, compared with the Markdown the
//! bench wrote for them before its measuring and rendering were split (`testdata/`, taken
//! from that code with these figures). A change to the format shows here first.

use shiplane::release::Timestamp;
use shiplane_e2e::round_trips::{Counted, Step};

use super::{KEPT, benchmarks_md, section};
use crate::figures::*;

fn calls(trips: &[&[&str]]) -> Calls {
    Calls::from(counted(trips))
}

fn counted(trips: &[&[&str]]) -> Counted {
    Counted {
        trips: trips
            .iter()
            .map(|wave| wave.iter().map(|op| op.to_string()).collect())
            .collect(),
    }
}

fn latency(first: f64, steady: (f64, f64), steady_path: &'static str) -> Latency {
    Latency {
        first,
        steady,
        steady_path,
    }
}

fn run(seconds: f64) -> Run {
    Run {
        written: Timestamp(1_796_900_123_456),
        seconds,
        machine: "Test CPU @ 2.00GHz, 2 cores, 23.4 GiB; Linux 6.1.0; rustc 1.90.0; Python 3.11.2"
            .into(),
    }
}

fn latencies() -> Latencies {
    let replay = "the same push again (replay: claim found)";
    Latencies {
        image_push: latency(95.25, (3.125, 4.875), replay),
        peer: latency(410.0, (21.5, 30.25), replay),
        deployment_events: latency(
            4.44,
            (0.555, 0.995),
            "a task Shiplane did not start (ignored)",
        ),
        hello: latency(0.75, (0.125, 0.2), "echo"),
    }
}

/// image-push's first three pushes: a deployment, one queued, one superseding it (with
/// two operations `why` does not know).
fn image_push_calls() -> Vec<(String, Calls)> {
    vec![
        (
            "image-push: push, free lane → blue-green deployment".into(),
            calls(&[
                &["dynamodb.BatchGetItem", "dynamodb.Query"],
                &["ecs.DescribeServices"],
                &["ecs.RegisterTaskDefinition"],
                &["codedeploy.CreateDeployment"],
                &["dynamodb.TransactWriteItems"],
                &["sns.PublishBatch", "dynamodb.UpdateItem"],
            ]),
        ),
        (
            "image-push: push while one is in flight → queued".into(),
            calls(&[
                &["dynamodb.BatchGetItem"],
                &["dynamodb.TransactWriteItems"],
                &["sns.Publish", "dynamodb.UpdateItem"],
            ]),
        ),
        (
            "image-push: another push → the queued one superseded".into(),
            calls(&[
                &["dynamodb.BatchGetItem"],
                &["dynamodb.TransactWriteItems"],
                &["sns.PublishBatch", "dynamodb.UpdateItem"],
                &["unknown.Operation"],
                &["x.One"],
            ]),
        ),
    ]
}

fn release_steps() -> Vec<Step> {
    vec![
        Step {
            function: "deploy-hook",
            what: "the lifecycle hook, deployment healthy",
            target: 3,
            why: "unused",
            cost: counted(&[
                &["dynamodb.GetItem"],
                &["dynamodb.BatchGetItem"],
                &["codedeploy.PutLifecycleEventHookExecutionStatus"],
            ]),
        },
        Step {
            function: "promote",
            what: "the bake timer fires",
            target: 2,
            why: "unused",
            cost: counted(&[
                &["dynamodb.BatchGetItem"],
                &["dynamodb.TransactWriteItems"],
                &["scheduler.DELETE", "sns.Publish"],
            ]),
        },
    ]
}

/// Rows of calls per event: image-push's four, `release_steps`', then the Python peer's
/// (rendered in the order given).
fn full_calls(release_steps: &[Step]) -> Vec<(String, Calls)> {
    let mut calls_per_event = image_push_calls();
    calls_per_event.push((
        "image-push: the first push delivered again (replay)".into(),
        calls(&[&["dynamodb.BatchGetItem"]]),
    ));
    calls_per_event.extend(release_steps.iter().map(|step| {
        (
            format!("{}: {}", step.function, step.what),
            Calls::from(step.cost.clone()),
        )
    }));
    calls_per_event.push((
        "Python peer: push, free lane → blue-green deployment".into(),
        calls(&[
            &["dynamodb.PutItem"],
            &["ecs.DescribeServices"],
            &["ecs.DescribeTaskDefinition"],
            &["ecs.RegisterTaskDefinition"],
            &["codedeploy.CreateDeployment"],
            &["dynamodb.PutItem"],
            &["sns.Publish"],
        ]),
    ));
    calls_per_event
}

/// Every section measured, some targets missed: the replay, the release steps and the
/// Python peer's calls, the variants, both entropy probes and criterion's figures present.
fn full() -> Figures {
    let release_steps = release_steps();
    Figures {
        runs: 40,
        events: 1000,
        cold: ColdStarts {
            floor: (10.25, 12.5),
            image_push: (11.875, 14.04),
            deployment_events: (12.0625, 13.3),
            peer: (254.75, 301.2),
        },
        clients: Clients {
            each: vec![0.5125, 1.2345, 0.875, 0.333],
            total: 2.955,
        },
        latency: latencies(),
        first_push: FirstPush {
            delayed_push: 180.25,
            delayed_peer: 420.5,
            plain_push: 60.05,
            plain_peer: 310.0,
        },
        rss: PeakRss {
            image_push: 14.25,
            deployment_events: 12.5,
            peer: 61.75,
            hello: 6.125,
        },
        calls: full_calls(&release_steps),
        release_steps,
        reconciler: ReconcilerPass {
            lanes: 3000,
            with_work: 200,
            ms: 61_234.5,
            ms_alone: 48_765.25,
            calls: calls(&[
                &["dynamodb.Query", "dynamodb.Query"],
                &["cloudwatch.DescribeAlarms", "scheduler.POST"],
                &["dynamodb.BatchGetItem"],
            ]),
            lanes_failed: 0,
        },
        artifacts: vec![
            artifact("deployment-events", Some(9_123_456), Some(3_456_789)),
            artifact("image-push", Some(10_000_000), Some(3_900_001)),
            artifact("reconciler", None, None),
        ],
        variants: vec![
            Variant {
                name: "1-default".into(),
                image_push_size: Some(12_345_678),
                hello_size: Some(2_345_678),
                image_push_cold: (14.25, 16.0),
                hello_cold: (9.5, 10.0),
            },
            Variant {
                name: "7-non-pie-shipped".into(),
                image_push_size: Some(9_876_543),
                hello_size: None,
                image_push_cold: (11.125, 12.0),
                hello_cold: (8.75, 9.0),
            },
        ],
        entropy: Entropy {
            jitter: Some(21_345.6),
            os: Some(12.25),
        },
        decision: Decision {
            push: Some(12_345.67),
            parts: vec![
                ("decision_part_parse_event", 3_210.5),
                ("decision_part_new_release_and_apply", 1_005.0),
            ],
            parse: Some(4_567_890.0),
        },
    }
}

/// Most targets missed and what can be missing missing: no replay, release step or peer
/// row, no zip built, no variant, one entropy probe, no criterion figures, a reconciler
/// pass that made no call.
fn sparse() -> Figures {
    Figures {
        runs: 7,
        events: 120,
        cold: ColdStarts {
            floor: (8.0, 9.0),
            image_push: (10.5, 11.0),
            deployment_events: (9.75, 10.0),
            peer: (40.0, 44.0),
        },
        clients: Clients {
            each: vec![1.0, 2.0, 3.0, 4.0],
            total: 10.0,
        },
        latency: latencies(),
        first_push: FirstPush {
            delayed_push: 500.0,
            delayed_peer: 420.5,
            plain_push: 60.05,
            plain_peer: 31.0,
        },
        rss: PeakRss {
            image_push: 23.0,
            deployment_events: 12.5,
            peer: 61.75,
            hello: 5.0,
        },
        calls: image_push_calls(),
        release_steps: Vec::new(),
        reconciler: ReconcilerPass {
            lanes: 30,
            with_work: 2,
            ms: 1234.0,
            ms_alone: 1000.0,
            calls: calls(&[]),
            lanes_failed: 1,
        },
        artifacts: vec![
            artifact("image-push", None, None),
            artifact("promote", Some(5_000_000), None),
        ],
        variants: Vec::new(),
        entropy: Entropy {
            jitter: Some(20_000.0),
            os: None,
        },
        decision: Decision {
            push: None,
            parts: Vec::new(),
            parse: None,
        },
    }
}

fn artifact(function: &str, bootstrap: Option<u64>, zip: Option<u64>) -> Artifact {
    Artifact {
        function: function.into(),
        bootstrap,
        zip,
    }
}

/// Lines of `actual` and `expected` around their first difference, for a readable failure.
fn first_difference(actual: &str, expected: &str) -> String {
    let line = actual
        .lines()
        .zip(expected.lines())
        .position(|(a, e)| a != e)
        .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
    let show = |text: &str| {
        text.lines()
            .skip(line)
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {}:\n--- rendered\n{}\n--- expected\n{}",
        line + 1,
        show(actual),
        show(expected)
    )
}

#[test]
fn every_section_renders_as_before() {
    let old = format!(
        "# Benchmarks\n\nold header\n\n## Targets\n\nold\n\n{}\n\nMeasured by `bench/first-run.sh`: 7 min.\n\n| a | b |\n\n\n## Artifacts\n\nold\n\n{}\n\nA model.\n",
        KEPT[0], KEPT[1]
    );
    let md = benchmarks_md(&run(612.4), &full(), Some(&old));
    let expected = include_str!("testdata/full.md");
    assert!(md == expected, "{}", first_difference(&md, expected));
}

#[test]
fn what_was_not_measured_renders_as_before() {
    let md = benchmarks_md(&run(88.51), &sparse(), None);
    let expected = include_str!("testdata/sparse.md");
    assert!(md == expected, "{}", first_difference(&md, expected));
}

#[test]
fn a_kept_section_is_kept_whole_and_alone() {
    let first = KEPT[0];
    let old = format!(
        "# Benchmarks\n\n## Targets\n\nx\n\n{first}\n\nmeasured: 7 min\n\n| a | b |\n\n\n## Artifacts\n\ny\n"
    );
    assert_eq!(
        section(&old, first),
        Some(format!("{first}\n\nmeasured: 7 min\n\n| a | b |\n"))
    );
    let last = format!("# Benchmarks\n\n{}\n\nz (a model)\n", KEPT[1]);
    assert_eq!(
        section(&last, KEPT[1]),
        Some(format!("{}\n\nz (a model)\n", KEPT[1]))
    );
    assert_eq!(section("# Benchmarks\n\n## Targets\n", first), None);
}

#[test]
fn variants_this_run_did_not_build_keep_their_earlier_rows_marked_as_such() {
    let old = "# Benchmarks\n\n## Release profile, by measurement\n\nCumulative variants built by `bench/profiles.sh`; cold start median of 40 starts each, image-push and hello-world in turns, measured in this run.\n\n| variant | image-push size | hello-world size | image-push cold start | hello-world cold start |\n|---|---|---|---|---|\n| 1-cargo-default | 30.00 MiB | 5.00 MiB | 20.0 ms | 10.0 ms |\n| 7-non-pie-shipped | 7.00 MiB | 1.00 MiB | 1.5 ms | 1.0 ms |\n\n## TLS crypto: aws-lc's first random bytes\n\nx\n";
    // No variant built: every earlier row is kept, marked.
    let md = benchmarks_md(&run(88.51), &sparse(), Some(old));
    let kept = section(&md, "## Release profile, by measurement").unwrap();
    assert!(
        kept.contains("but for the rows marked *earlier run*"),
        "{kept}"
    );
    assert!(
        kept.contains(
            "| 1-cargo-default *(earlier run)* | 30.00 MiB | 5.00 MiB | 20.0 ms | 10.0 ms |"
        ),
        "{kept}"
    );
    assert!(
        kept.contains("| 7-non-pie-shipped *(earlier run)* | 7.00 MiB |"),
        "{kept}"
    );
    // Only the shipped variant built (make bench PROFILES=0): it is measured, the others
    // kept, and no variant appears twice; a kept row is kept again unmarked twice over.
    let mut figures = full();
    figures.variants.retain(|v| v.name == "7-non-pie-shipped");
    assert_eq!(
        figures.variants.len(),
        1,
        "the test data has the shipped variant"
    );
    let md = benchmarks_md(&run(88.51), &figures, Some(old));
    let table = section(&md, "## Release profile, by measurement").unwrap();
    assert!(
        table.contains("| 1-cargo-default *(earlier run)* |"),
        "{table}"
    );
    assert_eq!(table.matches("7-non-pie-shipped").count(), 1, "{table}");
    assert!(
        !table.contains("7-non-pie-shipped *(earlier run)*"),
        "{table}"
    );
    let again = benchmarks_md(&run(88.51), &figures, Some(&md));
    let table = section(&again, "## Release profile, by measurement").unwrap();
    assert_eq!(table.matches("*(earlier run)*").count(), 1, "{table}");
    // An earlier file without the table: nothing to keep, the run says so.
    let md = benchmarks_md(&run(88.51), &sparse(), Some("# Benchmarks\n"));
    assert!(md.contains("Not measured in this run: `bench/profiles.sh` builds the variants"));
}
