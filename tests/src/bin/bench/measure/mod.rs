//! Measuring: every section's figures, taken in one run and returned as plain data
//! ([`crate::figures`]); nothing here writes Markdown.

mod calls;
mod events;
mod files;
mod processes;
mod reconciler;

use std::path::Path;

use shiplane_e2e::round_trips::{ROUND_TRIP_MS, release_steps};

use crate::figures::{Entropy, Figures};
use crate::harness::{Subjects, world};

pub use events::first_push_ms;
pub use files::machine;
pub use processes::client_construction_child;
pub use reconciler::reconciler_pass;

/// What one run measures, and its sizes.
pub struct Plan<'a> {
    pub subjects: &'a Subjects,
    /// The artifacts as `make build` makes them.
    pub lambda: &'a Path,
    pub runs: usize,
    pub events: usize,
    pub reconcile_lanes: usize,
}

/// Every figure of BENCHMARKS.md, section by section, each announced on stderr as it
/// starts: cold starts in turns, client construction, latency, first pushes, peak RSS, AWS
/// calls per event and per step of a release, a reconciler pass; then what needs no
/// emulator: artifacts, release-profile variants, aws-lc's first random draw, criterion's
/// core decision.
pub async fn everything(plan: &Plan<'_>) -> Figures {
    let (s, runs, events) = (plan.subjects, plan.runs, plan.events);
    let w = world().await;
    eprintln!("cold start × {runs}, in turns");
    let cold = processes::subjects_cold(s, &w.env, runs).await;
    eprintln!("client construction × {runs}");
    let clients = processes::client_construction(runs);
    eprintln!("latency");
    let latency = events::latencies(s, &w).await;
    eprintln!("first push × 5, without and with {ROUND_TRIP_MS} ms per AWS answer");
    let first_push = events::first_pushes(s).await;
    eprintln!("peak RSS over {events} events");
    let rss = events::peak_rss_of(s, &w, events).await;
    eprintln!("AWS calls per event");
    let mut calls = calls::per_event(s).await;
    // A release's later steps, one per function (the engine as each function runs it).
    eprintln!("AWS calls per step of a release, per function");
    let life = Box::pin(release_steps()).await;
    calls.extend(life.iter().map(calls::of_step));
    eprintln!("a reconciler pass over {} lanes", plan.reconcile_lanes);
    let reconciler = Box::pin(reconciler_pass(plan.reconcile_lanes)).await;
    let artifacts = files::artifacts(plan.lambda);
    let variants = processes::variants(&w.env, runs).await;
    let entropy = Entropy {
        jitter: processes::first_random_draw("jitter", runs),
        os: processes::first_random_draw("os", runs),
    };
    Figures {
        runs,
        events,
        cold,
        clients,
        latency,
        first_push,
        rss,
        calls,
        release_steps: life,
        reconciler,
        artifacts,
        variants,
        entropy,
        decision: files::decision(),
    }
}
