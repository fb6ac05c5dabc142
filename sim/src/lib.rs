//! A deterministic simulation of Shiplane in AWS (DESIGN invariant 13).
//!
//! The real engine, state machine and store logic run against a simulated AWS
//! ([`world`]) that knows the truth: which task-definition revision each ECS service
//! serves, which CodeDeploy and ECS deployments and migration tasks exist, which alarms
//! fire. Every invocation of a Shiplane function is a task of its own; every call it makes
//! to the store or to AWS takes a seeded, virtual while, so invocations interleave at every
//! await, differently for every seed and the same way for the same seed. Invocations die
//! at random awaits (a Lambda timeout or crash) and are retried as Lambda retries; every
//! kind of event is delayed, duplicated, reordered or lost; AWS calls fail past the SDK's
//! retries, before or after their effect. When the world has gone quiet, [`invariants`]
//! checks Shiplane's records against the world's truth.
//!
//! `cargo run -p shiplane-sim --release -- --seeds 1000` runs a campaign; a failing seed
//! prints the command that replays it, with the trace that led there.

pub mod invariants;
pub mod ports;
pub mod scenario;
pub mod world;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use shiplane::release::Timestamp;

/// How hostile a run is; every probability is per event or per call.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How long pushes and operators act before the world is left to go quiet.
    pub active: Duration,
    /// Mean time between two pushes of one service.
    pub push_every: Duration,
    /// Share of pushes followed by another of the same service within the same second.
    pub burst: f64,
    /// Share of pushed images that are bad: their alarm fires once they serve.
    pub alarm_bad: f64,
    /// Share whose alarm fires only after their bake, within the watch after it.
    pub late_alarm_bad: f64,
    /// Share whose lifecycle-hook check fails (blue/green) or whose tasks crash (rolling).
    pub check_bad: f64,
    /// Share whose migration exits non-zero.
    pub migration_bad: f64,
    /// Share of pushes from a feature branch (`feature-N`): only dev accepts them.
    pub feature_branch: f64,
    /// Share of the others that are hotfixes (`hotfix-N`): prod accepts them, api's
    /// staging does not.
    pub hotfix: f64,
    /// An event (of any kind) is lost.
    pub drop: f64,
    /// An event is delivered twice.
    pub duplicate: f64,
    /// An AWS or store call fails after the SDK's retries.
    pub fault: f64,
    /// An invocation dies at a random await.
    pub crash: f64,
    /// Mean time between two operator actions.
    pub operator_every: Duration,
    /// Share of deployments an operator cancels while they are being created.
    pub second_thoughts: f64,
    /// How often the reconciler runs.
    pub reconcile_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            active: Duration::from_secs(3 * 3600),
            push_every: Duration::from_secs(10 * 60),
            burst: 0.1,
            alarm_bad: 0.2,
            late_alarm_bad: 0.05,
            check_bad: 0.1,
            migration_bad: 0.05,
            feature_branch: 0.2,
            hotfix: 0.05,
            drop: 0.05,
            duplicate: 0.1,
            fault: 0.02,
            crash: 0.05,
            operator_every: Duration::from_secs(30 * 60),
            second_thoughts: 0.02,
            reconcile_every: Duration::from_secs(5 * 60),
        }
    }
}

/// What a run did, for RELIABILITY.md and the campaign's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Invocations of Shiplane's functions (every delivery attempt, hook and pass).
    pub invocations: u64,
    /// The most invocations in flight at once.
    pub max_concurrency: u64,
    /// Invocations that died at an await.
    pub crashes: u64,
    /// Events lost, by kind.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Events delivered twice.
    pub duplicated: u64,
    /// Deliveries whose every Lambda attempt failed (the dead-letter queue).
    pub dead_letters: u64,
    /// AWS and store calls that failed past the SDK's retries (before or after their effect).
    pub faults: u64,
    pub pushes: u64,
    pub bad_pushes: u64,
    /// Pushes whose tag some environment does not accept (feature branches, hotfixes).
    pub branch_pushes: u64,
    pub operator_actions: u64,
    /// Virtual time from start to quiet.
    pub virtual_ms: u64,
}

impl Stats {
    /// Adds another run's figures (the maximum for concurrency).
    pub fn add(&mut self, other: &Stats) {
        self.invocations += other.invocations;
        self.max_concurrency = self.max_concurrency.max(other.max_concurrency);
        self.crashes += other.crashes;
        for (k, v) in &other.dropped {
            *self.dropped.entry(k).or_default() += v;
        }
        self.duplicated += other.duplicated;
        self.dead_letters += other.dead_letters;
        self.faults += other.faults;
        self.pushes += other.pushes;
        self.bad_pushes += other.bad_pushes;
        self.branch_pushes += other.branch_pushes;
        self.operator_actions += other.operator_actions;
        self.virtual_ms += other.virtual_ms;
    }
}

/// One invariant broken at the end of a seed, checked against the world's truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// A seed's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    pub stats: Stats,
    pub violations: Vec<Violation>,
    /// What happened, one line per step, in virtual time.
    pub trace: Vec<String>,
}

/// The virtual epoch every seed starts at (2027-01-15T08:00:00Z).
pub const EPOCH_MS: u64 = 1_800_000_000_000;

/// The shared state of one run: the seeded randomness, the clock, the world, the trace.
pub struct Sim {
    pub seed: u64,
    pub config: Config,
    start: tokio::time::Instant,
    rng: Mutex<XorShiftRng>,
    pub world: Mutex<world::World>,
    trace: Mutex<Vec<String>>,
    stats: Mutex<Stats>,
    in_flight: Mutex<u64>,
    /// Faults, crashes and losses happen only while this is on (the active phase).
    chaos: Mutex<bool>,
    /// Deliveries not yet finished (with their retries).
    pending_deliveries: Mutex<u64>,
    /// Reconciler passes that moved something (or failed) since last asked.
    moving: Mutex<u64>,
    /// Invariants found broken while the run goes (at a commit), not only at its end.
    flagged: Mutex<Vec<Violation>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sim {
    pub fn new(seed: u64, config: Config) -> Arc<Sim> {
        Arc::new(Sim {
            seed,
            config,
            start: tokio::time::Instant::now(),
            rng: Mutex::new(XorShiftRng::seed_from_u64(seed)),
            world: Mutex::new(world::World::default()),
            trace: Mutex::new(Vec::new()),
            stats: Mutex::new(Stats::default()),
            in_flight: Mutex::new(0),
            chaos: Mutex::new(false),
            pending_deliveries: Mutex::new(0),
            moving: Mutex::new(0),
            flagged: Mutex::new(Vec::new()),
        })
    }

    /// The virtual time, as the engine's [`Timestamp`].
    pub fn now(&self) -> Timestamp {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Timestamp(EPOCH_MS + elapsed)
    }

    pub fn world(&self) -> MutexGuard<'_, world::World> {
        lock(&self.world)
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    /// Records one step of the trace, stamped with the virtual time since the start.
    pub fn trace(&self, line: impl Into<String>) {
        let t = self.start.elapsed();
        let line = format!("{:>8.1}s {}", t.as_secs_f64(), line.into());
        lock(&self.trace).push(line);
    }

    pub(crate) fn moving(&self) -> MutexGuard<'_, u64> {
        lock(&self.moving)
    }

    pub fn chaos(&self) -> bool {
        *lock(&self.chaos)
    }

    /// Records an invariant broken at a moment of the run (checked when it happens).
    pub fn flag(&self, invariant: &'static str, detail: String) {
        self.trace(format!("VIOLATION {invariant}: {detail}"));
        lock(&self.flagged).push(Violation { invariant, detail });
    }

    /// The invariants flagged while the run went.
    pub fn flagged(&self) -> Vec<Violation> {
        lock(&self.flagged).clone()
    }

    pub fn set_chaos(&self, on: bool) {
        *lock(&self.chaos) = on;
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && lock(&self.rng).random_bool(p.min(1.0))
    }

    /// True with probability `p` while chaos is on.
    pub fn hostile(&self, p: f64) -> bool {
        self.chaos() && self.chance(p)
    }

    /// A whole number in `lo..=hi`.
    pub fn between(&self, lo: u64, hi: u64) -> u64 {
        lock(&self.rng).random_range(lo..=hi)
    }

    /// A duration in `lo..=hi` milliseconds.
    pub fn ms(&self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.between(lo, hi))
    }

    /// One of `items`.
    pub fn pick<'a, T>(&self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = self.between(0, items.len() as u64 - 1);
        items.get(usize::try_from(i).unwrap_or(0))
    }

    /// An exponentially distributed wait with this mean (a Poisson process's gaps).
    pub fn gap(&self, mean: Duration) -> Duration {
        let u: f64 = lock(&self.rng).random_range(0.0001..1.0);
        mean.mul_f64(-u.ln()).min(mean * 8)
    }

    /// The network's share of a call: a seeded while, so that other invocations run
    /// meanwhile.
    pub async fn hop(&self) {
        // Now and then a slow answer (a cold connection, a throttled retry inside the SDK):
        // the windows where other invocations overtake this one.
        let d = if self.chance(0.1) {
            self.ms(200, 3_000)
        } else {
            self.ms(1, 40)
        };
        tokio::time::sleep(d).await;
    }

    fn started(&self) -> u64 {
        let mut n = lock(&self.in_flight);
        *n += 1;
        let mut stats = lock(&self.stats);
        stats.invocations += 1;
        stats.max_concurrency = stats.max_concurrency.max(*n);
        stats.invocations
    }

    fn ended(&self) {
        *lock(&self.in_flight) -= 1;
    }

    pub fn count_drop(&self, kind: &'static str) {
        *lock(&self.stats).dropped.entry(kind).or_default() += 1;
    }

    /// Runs one invocation of a function, which may die at any await (a crash, or Lambda
    /// ending it): None then.
    pub async fn invoke<F: std::future::Future>(&self, name: &str, work: F) -> Option<F::Output> {
        let n = self.started();
        let dies = self.hostile(self.config.crash).then(|| self.ms(0, 1500));
        self.trace(format!("#{n} {name}"));
        let out = match dies {
            Some(after) => tokio::time::timeout(after, work).await.ok(),
            None => Some(work.await),
        };
        self.ended();
        if out.is_none() {
            lock(&self.stats).crashes += 1;
            self.trace(format!("#{n} {name} died"));
        }
        out
    }
}

/// Runs one seed to quiet and checks every invariant.
pub fn run_seed(seed: u64, config: &Config) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                seed,
                stats: Stats::default(),
                violations: vec![Violation {
                    invariant: "setup",
                    detail: format!("no runtime: {e}"),
                }],
                trace: Vec::new(),
            };
        }
    };
    shiplane::release::seeded::seed_ids(Some(seed));
    let outcome = runtime.block_on(scenario::run(seed, config.clone()));
    shiplane::release::seeded::seed_ids(None);
    outcome
}

/// The trace's last lines, for a failing seed's report.
pub fn tail(trace: &[String], lines: usize) -> &[String] {
    &trace[trace.len().saturating_sub(lines)..]
}

pub(crate) fn take_trace(sim: &Sim) -> Vec<String> {
    std::mem::take(&mut *lock(&sim.trace))
}
