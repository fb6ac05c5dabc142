//! Rendering: BENCHMARKS.md from one run's figures ([`crate::figures`]), section by
//! section, each a function of plain data to Markdown; nothing here measures.

mod sections;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use shiplane_e2e::round_trips::ROUND_TRIP_MS;

use crate::figures::{Figures, Run};

pub use sections::reconciler_md;

/// BENCHMARKS.md: the header, the targets, every measured section, then the sections of
/// `old` (the file as it was, if any) that this run does not measure ([`KEPT`]).
pub fn benchmarks_md(run: &Run, f: &Figures, old: Option<&str>) -> String {
    [
        header_md(run),
        targets_md(f),
        sections::cold_start_md(f),
        sections::latency_md(&f.latency),
        sections::rss_md(&f.rss, f.events),
        sections::calls_md(&f.calls),
        format!("## Reconciler pass\n\n{}\n", reconciler_md(&f.reconciler)),
        sections::artifacts_md(&f.artifacts),
        sections::decision_md(&f.decision),
        sections::profile_md(&f.variants, f.runs, old),
        sections::entropy_md(&f.entropy, f.runs),
        old.map(kept_md).unwrap_or_default(),
    ]
    .concat()
}

/// A line of `--first-push-only`: the first push of `name` over `runs` fresh processes,
/// every AWS answer delayed `delay` ms, (median, p90) milliseconds.
pub fn first_push_line(delay: u64, name: &str, (median, p90): (f64, f64), runs: usize) -> String {
    format!(
        "first push, {delay} ms per AWS answer: {name} median {median:.1} ms, p90 {p90:.1} ms ({runs} fresh processes)"
    )
}

fn check(ok: bool) -> &'static str {
    if ok { "✅ met" } else { "❌ not met" }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0)
}

fn header_md(run: &Run) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `make bench` on {} in {:.0} s. Machine: {}.\n",
        run.written, run.seconds, run.machine
    );
    let _ = writeln!(
        md,
        "Every figure below comes from this one run, but for the sections and rows that say they are kept from another; ratios compare against the hello-world `lambda_runtime` binary (the floor: same tokio runtime, same log subscriber, echoes its event) and a Python 3.11 peer doing the same job with boto3 on `awslambdaric`, Lambda's own Python runtime client (`bench/python-peer/image_push.py`; it does only the happy path, none of Shiplane's lane logic). Functions run as Lambda runs them: behind a local Lambda Runtime API on 127.0.0.1, against the local AWS emulator (moto), release builds linked as `make build` links them (non-PIE; the floor too).\n"
    );
    md
}

/// The targets table: each target, what this run measured, met or not.
fn targets_md(f: &Figures) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Targets\n\n| target | measured | |\n|---|---|---|");
    md.push_str(&footprint_rows(f));
    md.push_str(&round_trip_rows(f));
    md.push_str(&first_push_and_decision_rows(f));
    md
}

/// Targets on cold start, peak RSS and zip size.
fn footprint_rows(f: &Figures) -> String {
    let mut md = String::new();
    let (floor, peer_cold) = (f.cold.floor.0, f.cold.peer.0);
    let push_cold = f.cold.image_push.0;
    let events_cold = f.cold.deployment_events.0;
    let worst_cold = push_cold.max(events_cold);
    let _ = writeln!(
        md,
        "| cold start ≤ 1.25× hello-world | {:.2}× (image-push), {:.2}× (deployment-events); {:.2}× with all four SDK clients built (see Cold start) | {} |",
        push_cold / floor,
        events_cold / floor,
        (push_cold + f.clients.total) / floor,
        check(worst_cold <= 1.25 * floor)
    );
    let _ = writeln!(
        md,
        "| cold start ≥ 5× faster than the Python peer | {:.1}× (image-push), {:.1}× (deployment-events) | {} |",
        peer_cold / push_cold,
        peer_cold / events_cold,
        check(peer_cold >= 5.0 * worst_cold)
    );
    let (rss_push, rss_events) = (f.rss.image_push, f.rss.deployment_events);
    let worst_rss = rss_push.max(rss_events);
    let _ = writeln!(
        md,
        "| peak RSS ≤ 24 MB over {} events | {:.1} MiB (image-push), {:.1} MiB (deployment-events) | {} |",
        f.events,
        rss_push,
        rss_events,
        check(worst_rss * 1.048_576 <= 24.0)
    );
    let zips = &f.artifacts;
    let worst_zip = zips.iter().filter_map(|z| z.zip).max().unwrap_or(u64::MAX);
    let _ = writeln!(
        md,
        "| each zip ≤ 4 MB (every function) | largest {} ({}) | {} |",
        mib(worst_zip),
        zips.iter()
            .max_by_key(|z| z.zip)
            .map_or("-", |z| z.function.as_str()),
        check(worst_zip as f64 <= 4_000_000.0)
    );
    md
}

/// Targets on sequential round trips per step (issue: "Fewer round trips per event"), and
/// on the reconciler's pass.
fn round_trip_rows(f: &Figures) -> String {
    let mut md = String::new();
    let trips = |prefix: &str| {
        f.calls
            .iter()
            .find(|(label, _)| label.starts_with(prefix))
            .map(|(_, c)| c.round_trips.len())
    };
    for (target, prefix, most) in [
        (
            "first push to a free blue/green lane ≤ 8 sequential round trips",
            "image-push: push, free lane",
            8,
        ),
        (
            "push that queues, a second or more after the push in flight, ≤ 4 sequential round trips",
            "image-push: push while one is in flight",
            4,
        ),
        (
            "push that supersedes, a second or more after the one before, ≤ 4 sequential round trips",
            "image-push: another push",
            4,
        ),
        (
            "replay of a handled push: 1 round trip",
            "image-push: the first push delivered again",
            1,
        ),
    ] {
        if let Some(n) = trips(prefix) {
            let peer = if prefix.starts_with("image-push: push, free lane") {
                trips("Python peer")
                    .map(|p| format!(" (Python peer: {p})"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let _ = writeln!(md, "| {target} | {n}{peer} | {} |", check(n <= most));
        }
    }
    for step in &f.release_steps {
        let n = step.cost.trips.len();
        let _ = writeln!(
            md,
            "| {}: {} ≤ {} sequential round trips | {n} | {} |",
            step.function,
            step.what,
            step.target,
            check(n <= step.target)
        );
    }
    let recon = &f.reconciler;
    let _ = writeln!(
        md,
        "| reconciler: a pass over {} lanes ≤ 1,200 sequential round trips (a fifth of its 300 s timeout at 50 ms each) | {} ({:.1} s against the emulator, {ROUND_TRIP_MS} ms per AWS answer) | {} |",
        recon.lanes,
        recon.calls.round_trips.len(),
        recon.ms / 1000.0,
        check(recon.calls.round_trips.len() <= 1200 && recon.lanes_failed == 0)
    );
    md
}

/// Targets on the first push against the peer's, and on the core decision.
fn first_push_and_decision_rows(f: &Figures) -> String {
    let mut md = String::new();
    let p = &f.first_push;
    let (delayed_push, delayed_peer) = (p.delayed_push, p.delayed_peer);
    let (plain_push, plain_peer) = (p.plain_push, p.plain_peer);
    let _ = writeln!(
        md,
        "| first push: first-event latency ≤ the Python peer's, {ROUND_TRIP_MS} ms per AWS answer (as a network; median of 5 fresh processes) | {delayed_push:.1} ms (peer {delayed_peer:.1} ms) | {} |",
        check(delayed_push <= delayed_peer)
    );
    let _ = writeln!(
        md,
        "| first push: first-event latency ≤ the Python peer's, emulator alone (no delay; median of 5 fresh processes) | {plain_push:.1} ms (peer {plain_peer:.1} ms) | {} |",
        check(plain_push <= plain_peer)
    );
    match f.decision.push {
        Some(ns) => {
            let _ = writeln!(
                md,
                "| core decision ≤ 50 µs | {:.1} µs | {} |",
                ns / 1000.0,
                check(ns <= 50_000.0)
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| core decision ≤ 50 µs | not measured (run `cargo bench -p shiplane --bench decision`) | |"
            );
        }
    }
    md
}

/// Headings of BENCHMARKS.md sections written by hand or by another script, which a run
/// of `make bench` keeps.
const KEPT: [&str; 2] = [
    "## First run from a clean clone",
    "## Concurrency each function is sized for",
];

/// Sections this run does not measure, kept as they were written in `old`: the first run
/// from a clean clone (`bench/first-run.sh` builds from nothing, twice) and the capacity
/// model.
fn kept_md(old: &str) -> String {
    let mut md = String::new();
    for heading in KEPT {
        if let Some(kept) = section(old, heading) {
            let _ = write!(md, "\n{kept}");
        }
    }
    md
}

/// The section under `heading` in an earlier BENCHMARKS.md: from its heading to the next
/// one (or the end), trailing blank lines dropped.
fn section(old: &str, heading: &str) -> Option<String> {
    let start = old.find(heading)?;
    let rest = &old[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| i + heading.len() + 1);
    Some(format!("{}\n", rest[..end].trim_end()))
}
