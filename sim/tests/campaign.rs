//! The bounded campaign `make test` runs: 200 seeds (about 15 s in a debug build).
//!
//! Invariants 1, 2 and 4-7 (truth, no bad release kept, nothing stuck, order, hooks,
//! history) hold for every seed. Invariant 3 ("once") still fails for some seeds: a
//! deployment resumed after an earlier one ended unrecorded, and a restore that registers
//! a revision again when the first one's record was lost (RELIABILITY.md, "Open"). Until
//! those are fixed this test is a ratchet: no other invariant may fail, and no more seeds
//! may fail "once" than were measured when it was written.

use shiplane_sim::{Config, run_seed};

const SEEDS: u64 = 200;
/// Seeds of 0..200 that failed "once" when this was written (14); it may only go down.
const ONCE_AT_MOST: usize = 14;

#[test]
fn two_hundred_seeds_hold_every_invariant_but_the_open_once_findings() {
    let config = Config::default();
    let mut once = Vec::new();
    let mut broken = Vec::new();
    for seed in 0..SEEDS {
        let outcome = run_seed(seed, &config);
        for v in &outcome.violations {
            if v.invariant == "once" {
                once.push(seed);
            } else {
                broken.push(format!(
                    "seed {seed}: {v} (replay: cargo run -p shiplane-sim --release -- --seed {seed})"
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    once.dedup();
    assert!(
        once.len() <= ONCE_AT_MOST,
        "{} seeds fail 'once' (at most {ONCE_AT_MOST}): {once:?}",
        once.len()
    );
}
