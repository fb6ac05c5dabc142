//! The bounded campaign `make test` runs: 200 seeds (about 15 s in a debug build), every
//! invariant (truth, no bad release kept, once, nothing stuck, order, hooks, history)
//! holding for every seed. A failing seed is printed with the command that replays it.

use shiplane_sim::{Config, run_seed};

const SEEDS: u64 = 200;

#[test]
fn two_hundred_seeds_hold_every_invariant() {
    let config = Config::default();
    let mut broken = Vec::new();
    for seed in 0..SEEDS {
        let outcome = run_seed(seed, &config);
        for v in &outcome.violations {
            broken.push(format!(
                "seed {seed}: {v} (replay: cargo run -p shiplane-sim --release -- --seed {seed})"
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
