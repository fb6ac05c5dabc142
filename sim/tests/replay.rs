//! The simulation is only a proof if a failing seed can be replayed: the same seed must
//! give the same run, step for step.

use shiplane_sim::{Config, run_seed};

#[test]
fn a_seed_replays_step_for_step_and_another_seed_runs_another_story() {
    let config = Config::default();
    let first = run_seed(11, &config);
    let again = run_seed(11, &config);
    assert!(
        first.trace.len() > 100,
        "a seed runs a story: {} steps",
        first.trace.len()
    );
    assert_eq!(first.trace, again.trace);
    assert_eq!(first.stats, again.stats);
    assert_eq!(first.violations, again.violations);
    let other = run_seed(12, &config);
    assert_ne!(first.trace, other.trace);
}

#[test]
fn the_hostile_phase_drops_duplicates_crashes_and_faults() {
    let config = Config::default();
    let mut total = shiplane_sim::Stats::default();
    for seed in 0..5 {
        total.add(&run_seed(seed, &config).stats);
    }
    assert!(total.crashes > 0, "{total:?}");
    assert!(total.duplicated > 0, "{total:?}");
    assert!(total.faults > 0, "{total:?}");
    assert!(total.dropped.values().sum::<u64>() > 0, "{total:?}");
    assert!(total.max_concurrency > 1, "{total:?}");
    assert!(
        total.bad_pushes > 0 && total.operator_actions > 0,
        "{total:?}"
    );
}
