//! `sim`: runs a campaign of seeds, prints a summary, and for a failing seed the command
//! that replays it and the trace that led there.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use shiplane_sim::{Config, Stats, run_seed, tail};

/// A deterministic simulation of Shiplane in AWS.
#[derive(Parser, Debug)]
#[command(name = "sim")]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Replay one seed and print its whole trace.
    #[arg(long)]
    seed: Option<u64>,
    /// Trace lines shown for a failing seed.
    #[arg(long, default_value_t = 80)]
    trace: usize,
    /// Stop at the first failing seed.
    #[arg(long)]
    fail_fast: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config::default();
    if let Some(seed) = args.seed {
        let outcome = run_seed(seed, &config);
        for line in &outcome.trace {
            println!("{line}");
        }
        println!("{:?}", outcome.stats);
        for v in &outcome.violations {
            println!("VIOLATION {v}");
        }
        return if outcome.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let started = Instant::now();
    let mut total = Stats::default();
    let mut failed = 0u64;
    for seed in args.from..args.from + args.seeds {
        let outcome = run_seed(seed, &config);
        total.add(&outcome.stats);
        if !outcome.violations.is_empty() {
            failed += 1;
            println!("seed {seed} FAILED:");
            for v in &outcome.violations {
                println!("  {v}");
            }
            for line in tail(&outcome.trace, args.trace) {
                println!("    {line}");
            }
            println!("  replay: cargo run -p shiplane-sim --release -- --seed {seed}");
            if args.fail_fast {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{} seeds from {} in {:.1} s ({:.1} ms a seed): {} passed, {} failed",
        args.seeds,
        args.from,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / args.seeds.max(1) as f64,
        args.seeds - failed,
        failed
    );
    println!("{total:?}");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
