//! The figures one run of the bench measures: plain data, made by `measure` and turned into
//! Markdown by `render`.

use std::collections::BTreeMap;

use shiplane::release::Timestamp;
use shiplane_e2e::round_trips::{Counted, Step};

/// The SDK clients a function builds, in the order [`Clients::each`] holds them.
pub const CLIENTS: [&str; 4] = ["DynamoDB", "ECS", "CodeDeploy", "SNS"];

/// Environments of every service in the reconciler's world.
pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// Everything BENCHMARKS.md reports from one run, but for the run itself ([`Run`]).
pub struct Figures {
    /// Fresh processes per figure (`--runs`).
    pub runs: usize,
    /// Events per peak-RSS figure (`--events`).
    pub events: usize,
    pub cold: ColdStarts,
    pub clients: Clients,
    pub latency: Latencies,
    pub first_push: FirstPush,
    pub rss: PeakRss,
    /// AWS calls per event, one entry per step of a release: the image-push, migration and
    /// Python peer rows, then [`Figures::release_steps`]'s, labelled.
    pub calls: Vec<(String, Calls)>,
    /// A release's later steps, one per function, each with its target.
    pub release_steps: Vec<Step>,
    pub reconciler: ReconcilerPass,
    /// Every function the stack deploys, in name order.
    pub artifacts: Vec<Artifact>,
    /// The release-profile variants `bench/profiles.sh` built, in name order (none when it
    /// has not run).
    pub variants: Vec<Variant>,
    pub entropy: Entropy,
    pub decision: Decision,
}

/// When and where the figures were measured, and how long it took.
pub struct Run {
    pub written: Timestamp,
    pub seconds: f64,
    /// CPU, cores, memory, kernel, rustc and Python.
    pub machine: String,
}

/// Process start → first poll for work, (median, p90) milliseconds of each subject.
pub struct ColdStarts {
    /// The hello-world `lambda_runtime` binary.
    pub floor: (f64, f64),
    pub image_push: (f64, f64),
    pub deployment_events: (f64, f64),
    /// The Python/boto3 peer.
    pub peer: (f64, f64),
}

/// What a function's clients cost to build the first time in a process: median
/// milliseconds of each (in [`CLIENTS`] order), and of all four together.
pub struct Clients {
    pub each: Vec<f64>,
    pub total: f64,
}

/// A fresh process's first event, then its steady path.
#[derive(Default)]
pub struct Latency {
    /// Milliseconds to the first event's answer.
    pub first: f64,
    /// (median, p90) milliseconds of the steady path.
    pub steady: (f64, f64),
    pub steady_path: &'static str,
}

/// [`Latency`] of each subject against the emulator.
pub struct Latencies {
    pub image_push: Latency,
    pub peer: Latency,
    pub deployment_events: Latency,
    pub hello: Latency,
}

/// Median milliseconds to the answer of a first push, each in a fresh world and process.
pub struct FirstPush {
    /// Every AWS answer delayed [`shiplane_e2e::round_trips::ROUND_TRIP_MS`].
    pub delayed_push: f64,
    pub delayed_peer: f64,
    /// The emulator's own time only.
    pub plain_push: f64,
    pub plain_peer: f64,
}

/// Peak RSS (MiB) of one process of each subject over [`Figures::events`] events.
pub struct PeakRss {
    pub image_push: f64,
    pub deployment_events: f64,
    pub peer: f64,
    pub hello: f64,
}

/// What one event costs in AWS calls.
pub struct Calls {
    pub by_operation: BTreeMap<String, u64>,
    /// The calls in sequential round trips (calls in flight together share one).
    pub round_trips: Vec<Vec<String>>,
}

impl From<Counted> for Calls {
    fn from(cost: Counted) -> Calls {
        Calls {
            by_operation: cost.by_operation(),
            round_trips: cost.trips,
        }
    }
}

/// What one reconciler pass over a large pipeline cost.
pub struct ReconcilerPass {
    pub lanes: usize,
    pub with_work: usize,
    /// With every AWS answer delayed [`shiplane_e2e::round_trips::ROUND_TRIP_MS`], and without.
    pub ms: f64,
    pub ms_alone: f64,
    pub calls: Calls,
    pub lanes_failed: usize,
}

/// One function's artifacts as `make build` made them: sizes in bytes, None when not built.
pub struct Artifact {
    pub function: String,
    pub bootstrap: Option<u64>,
    pub zip: Option<u64>,
}

/// One release-profile variant: its binaries' sizes (bytes) and cold starts ((median, p90)
/// milliseconds), image-push and hello-world measured in turns.
pub struct Variant {
    pub name: String,
    pub image_push_size: Option<u64>,
    pub hello_size: Option<u64>,
    pub image_push_cold: (f64, f64),
    pub hello_cold: (f64, f64),
}

/// Median microseconds of aws-lc's first random draw in a fresh process, built with CPU
/// jitter entropy and seeded from the kernel; None when the probe was not built.
pub struct Entropy {
    pub jitter: Option<f64>,
    pub os: Option<f64>,
}

/// Criterion's medians (nanoseconds) of the core decision, as `make bench` ran it before
/// the bench; None (or left out) when not run.
pub struct Decision {
    /// A push to a free lane in a 1,000-service pipeline.
    pub push: Option<f64>,
    /// The parts of it that were measured, by benchmark name (`decision_part_…`).
    pub parts: Vec<(&'static str, f64)>,
    /// Parsing and validating the 1,000-service pipeline.
    pub parse: Option<f64>,
}
