//! `make bench`: cold start, first-event and steady-state latency, peak RSS, AWS calls per
//! event, artifact sizes, release-profile variants and core decision time, measured in one
//! run beside a hello-world `lambda_runtime` binary (the floor) and a Python/boto3 peer,
//! written to BENCHMARKS.md. Runs under `infra/local/with-emulator.sh`.
//!
//! [`measure`] takes the figures as plain data ([`figures`]), [`render`] writes them as
//! Markdown; this file parses the arguments and runs one, then the other.

mod figures;
mod harness;
mod measure;
mod render;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use shiplane::release::Timestamp;
use shiplane_e2e::round_trips::ROUND_TRIP_MS;

use crate::figures::Run;
use crate::harness::{Subjects, stats, target_dir};

/// Measures Shiplane's functions as Lambda runs them, beside a hello-world `lambda_runtime`
/// binary (the floor) and a Python/boto3 peer, and rewrites BENCHMARKS.md with the figures.
/// Run it under `infra/local/with-emulator.sh`, as `make bench` does.
#[derive(Debug, Parser)]
#[command(name = "bench", long_about = None, after_help = AFTER_HELP)]
struct Args {
    /// Fresh processes per figure: cold starts of each function and variant, client
    /// construction, aws-lc's first random draw; first pushes with --first-push-only.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Events sent to one process of each function for its peak RSS.
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// The Markdown written; the sections it keeps are read from it first.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// The artifacts as `make build` makes them: <DIR>/<function>/bootstrap and
    /// <DIR>/<function>/<function>.zip, hello-world's bootstrap beside them.
    #[arg(long, value_name = "DIR", default_value_os_t = target_dir().join("lambda"))]
    lambda_dir: PathBuf,
    /// Lanes of the reconciler's pass (a third as many services, each in dev, staging and
    /// prod).
    #[arg(long, default_value_t = 3000)]
    reconcile_lanes: usize,
    /// Only the reconciler's pass over --reconcile-lanes lanes, printed; BENCHMARKS.md is not
    /// written.
    #[arg(long)]
    reconcile_only: bool,
    /// Only the first push against the Python peer's, the median of --runs fresh processes
    /// with and without a network's delay, printed; BENCHMARKS.md is not written.
    #[arg(long)]
    first_push_only: bool,
    /// The child side of the client-construction measurement (the bench runs itself so).
    #[arg(long, hide = true)]
    client_construction: bool,
}

/// What `--help` ends with: where the bench finds what it measures.
const AFTER_HELP: &str = "\
The target directory is the one this binary was built in: the release-profile variants
(profiles/, by bench/profiles.sh), the entropy probes (entropy-probe/) and criterion's
figures (criterion/, by `cargo bench -p shiplane --bench decision`) are read from it; the
rows of what is missing say so or are left out. The local AWS emulator is the one
AWS_ENDPOINT_URL names (set by infra/local/with-emulator.sh); SHIPLANE_PYTHON names the
Python that runs the peer (default: the project venv's).";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.client_construction {
        return measure::client_construction_child().await;
    }
    let started = Instant::now();
    if args.reconcile_only {
        let r = measure::reconciler_pass(args.reconcile_lanes).await;
        println!("{}", render::reconciler_md(&r));
        return;
    }
    // The artifacts as `make build` makes them; the floor built the same way.
    let subjects = Subjects::in_dir(&args.lambda_dir);
    if args.first_push_only {
        return first_push_only(&subjects, args.runs).await;
    }
    let plan = measure::Plan {
        subjects: &subjects,
        lambda: &args.lambda_dir,
        runs: args.runs,
        events: args.events,
        reconcile_lanes: args.reconcile_lanes,
    };
    let figures = Box::pin(measure::everything(&plan)).await;
    let run = Run {
        written: Timestamp::now(),
        seconds: started.elapsed().as_secs_f64(),
        machine: measure::machine(),
    };
    let old = std::fs::read_to_string(&args.out).ok();
    let md = render::benchmarks_md(&run, &figures, old.as_deref());
    let out = &args.out;
    std::fs::write(out, md).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    eprintln!(
        "wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}

/// `--first-push-only`: just the first push against the peer's, median of `runs` fresh
/// processes with and without a network's delay, each printed as it is measured
/// (BENCHMARKS.md is not written): to see the effect of a change in minutes.
async fn first_push_only(s: &Subjects, runs: usize) {
    for delay in [0, ROUND_TRIP_MS] {
        for (name, subject) in [("image-push", &s.image_push), ("peer", &s.peer)] {
            let mut xs = Vec::new();
            for _ in 0..runs {
                xs.push(measure::first_push_ms(subject, delay).await);
            }
            println!("{}", render::first_push_line(delay, name, stats(xs), runs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_are_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    /// What the Makefile (`make bench`), docs/testing.md and the bench itself (its
    /// client-construction child) pass.
    #[test]
    fn every_caller_s_arguments_parse() {
        let parse = |line: &str| Args::try_parse_from(line.split_whitespace());
        let make = parse("bench --events 1000 --lambda-dir target/lambda --out BENCHMARKS.md")
            .expect("make bench");
        assert_eq!((make.runs, make.events), (40, 1000));
        assert_eq!(make.lambda_dir, PathBuf::from("target/lambda"));
        assert_eq!(make.out, PathBuf::from("BENCHMARKS.md"));
        let first = parse("bench --first-push-only --runs 9").expect("--first-push-only");
        assert!(first.first_push_only && !first.reconcile_only);
        assert_eq!(first.runs, 9);
        let recon = parse("bench --reconcile-only --reconcile-lanes 300").expect("reconcile");
        assert!(recon.reconcile_only);
        assert_eq!(recon.reconcile_lanes, 300);
        let defaults = parse("bench --reconcile-only").expect("defaults");
        assert_eq!(defaults.reconcile_lanes, 3000);
        assert_eq!(defaults.lambda_dir, target_dir().join("lambda"));
        assert!(parse("bench --client-construction").is_ok_and(|a| a.client_construction));
    }
}
