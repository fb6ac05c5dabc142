//! A seeded mutation campaign over event payloads, run against one function's handler in
//! process, its clients faked, exactly as the runtime calls it: the delivered bytes read by
//! `shiplane::lambda::read_payload`, then the handler.
//!
//! The corpus is every event fixture of the project (`tests/fixtures/events`) and of
//! aws_lambda_events (copied into `tests/fixtures/fuzz/corpus`), with a few of Shiplane's
//! own payloads. Each case takes one (three times in four one of the function's own), makes
//! up to three mutations of its JSON (a value replaced by one that has broken Shiplane
//! before, by a piece of another fixture, a key removed or added, a line break put in a
//! string, the value wrapped in an array, a part put in the whole's place) and, one case
//! in six, of its bytes (cut short, something after it, a byte changed). Every case must
//! hold:
//!
//! - no panic;
//! - an error has a stable `errorType`, never a Rust type name;
//! - an input refused (`InvalidEvent`) or ignored changes nothing: no store write, no call
//!   to a fake AWS client;
//! - every log record is one line in Lambda's text format.
//!
//! Before the random cases, every input of `tests/fixtures/fuzz/regressions/all` and
//! `…/<function>` (each once found to get through) must be an `InvalidEvent`, or ignored
//! where its name starts with `ignored-`.
//!
//! The campaign is deterministic: seed `s` makes the same cases on every machine, each seed
//! against fresh fakes, its cases one after another so that a case meets the state the ones
//! before it left. `SHIPLANE_FUZZ_SEEDS=from..to` and `SHIPLANE_FUZZ_CASES` (per seed) make
//! it longer (`make fuzz`); a failure names its seed and case and the command that replays
//! it.

use std::ops::Range;
use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use serde_json::{Value, json};
use shiplane::lambda::{HandlerError, read_payload};

/// Seeds and cases per seed of `make test`'s bounded campaign: ~1,000 cases a function.
pub const DEFAULT_SEEDS: Range<u64> = 0..25;
pub const DEFAULT_CASES: usize = 40;

/// What a case may have changed, counted: the store's writes and the fakes' calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    pub store_writes: u64,
    pub aws_calls: usize,
}

/// The function under test: fresh fakes, one invocation, what the fakes saw. (Async
/// methods: the campaign runs on one thread and never asks the futures to be `Send`.)
#[allow(async_fn_in_trait)]
pub trait Target {
    type Deps;
    /// The function's package name, for failures and their replay command.
    const NAME: &'static str;
    /// What the names of the function's own fixtures contain (`cloudwatch`, say): three
    /// cases in four start from one of them, so that mutations reach past the parser.
    const FAMILY: &'static [&'static str];
    async fn deps(&self) -> Self::Deps;
    async fn invoke(&self, deps: &Self::Deps, payload: Value) -> Result<Value, HandlerError>;
    fn effects(&self, deps: &Self::Deps) -> Effects;
}

/// [`Effects`] of the common fakes.
pub fn effects_of(deps: &shiplane::engine::testing::FakeDeps) -> Effects {
    Effects {
        store_writes: deps.store.writes(),
        aws_calls: deps.deployer.calls().len()
            + deps.timer.log().len()
            + deps.notifier.kinds().len(),
    }
}

/// Fakes that hold [`pipeline`] and a release of the `tagged-push` fixture deploying in dev
/// (the fake deployer's first deployment, `d-1`, which the `…-of-d-1` fixtures of the
/// corpus name): so that deployment events reach the engine.
pub async fn deps_with_a_release_deploying() -> shiplane::engine::testing::FakeDeps {
    let deps = shiplane::engine::testing::deps_with_pipeline(&pipeline()).await;
    let path = crate::workspace().join("tests/fixtures/events/ecr/tagged-push.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let now = shiplane::release::Timestamp::now();
    let push = match shiplane::inbound::ecr::parse_push(&event, now) {
        Ok(shiplane::inbound::Inbound::Accepted(push)) => push,
        other => panic!("the tagged-push fixture: {other:?}"),
    };
    deps.engine()
        .on_push(&push, now)
        .await
        .unwrap_or_else(|e| panic!("the tagged-push fixture: {e}"));
    assert_eq!(deps.deployer.deploys().len(), 1, "one deployment, d-1");
    deps
}

/// The pipeline the campaign's fakes hold: the fixtures' repository and alarm are tracked,
/// so that the events made of them reach the engine.
pub fn pipeline() -> String {
    shiplane::engine::testing::ONE_SERVICE_PIPELINE.replace(
        "service = \"s\"\n",
        "service = \"s\"\nalarms = [\"api-dev-5xx\"]\n",
    )
}

fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json" || e == "txt") {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path
                .strip_prefix(crate::workspace())
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((name, bytes));
        }
    }
}

/// The corpus, in a stable order.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    files(&crate::workspace().join("tests/fixtures/events"), &mut out);
    files(
        &crate::workspace().join("tests/fixtures/fuzz/corpus"),
        &mut out,
    );
    out
}

/// The regression inputs for `function`.
pub fn regressions(function: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let dir = crate::workspace().join("tests/fixtures/fuzz/regressions");
    files(&dir.join("all"), &mut out);
    files(&dir.join(function), &mut out);
    out
}

/// The campaign's seeds and cases per seed, from the environment or the defaults.
pub fn campaign() -> (Range<u64>, usize) {
    let seeds = std::env::var("SHIPLANE_FUZZ_SEEDS")
        .ok()
        .map(|v| {
            let (from, to) = v.split_once("..").unwrap_or_else(|| {
                panic!("SHIPLANE_FUZZ_SEEDS={v:?}: write from..to, e.g. 0..2000")
            });
            let n = |t: &str| {
                t.trim()
                    .parse::<u64>()
                    .unwrap_or_else(|e| panic!("SHIPLANE_FUZZ_SEEDS={v:?}: {e}"))
            };
            n(from)..n(to)
        })
        .unwrap_or(DEFAULT_SEEDS);
    let cases = std::env::var("SHIPLANE_FUZZ_CASES")
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("SHIPLANE_FUZZ_CASES={v:?}: {e}"))
        })
        .unwrap_or(DEFAULT_CASES);
    (seeds, cases)
}

/// How a campaign's cases ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Refused (`InvalidEvent`) or ignored.
    pub refused: usize,
    /// Answered otherwise: applied, or an engine error.
    pub answered: usize,
    /// How many of those changed something.
    pub changed: usize,
}

/// Runs the regressions, then the campaign; panics at the first case that breaks a rule.
pub fn run<T: Target>(target: &T) -> Tally {
    let block_on = |f| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
            .block_on(f)
    };
    let deps = block_on(target.deps());
    let mut tally = Tally::default();
    for (name, bytes) in regressions(T::NAME) {
        let ended = case(target, &deps, &bytes, &format!("regression {name}"));
        let expected = if name.contains("/ignored-") {
            Ended::Ignored
        } else {
            Ended::Invalid
        };
        assert_eq!(
            ended,
            expected,
            "{}: regression {name}:\n{}",
            T::NAME,
            shown(&bytes)
        );
    }
    let corpus = corpus();
    let donors: Vec<Value> = corpus
        .iter()
        .filter_map(|(_, b)| serde_json::from_slice(b).ok())
        .collect();
    let family: Vec<usize> = (0..corpus.len())
        .filter(|&i| T::FAMILY.iter().any(|f| corpus[i].0.contains(f)))
        .collect();
    assert!(
        !family.is_empty(),
        "{}: no fixture of {:?}",
        T::NAME,
        T::FAMILY
    );
    let (seeds, cases) = campaign();
    for seed in seeds {
        let deps = block_on(target.deps());
        let mut rng = XorShiftRng::seed_from_u64(seed);
        for i in 0..cases {
            let pick = if rng.random_bool(0.75) {
                family[rng.random_range(0..family.len())]
            } else {
                rng.random_range(0..corpus.len())
            };
            let (_, original) = &corpus[pick];
            let bytes = mutated(&mut rng, original, &donors);
            let replay = format!(
                "seed {seed}, case {i}; replay: SHIPLANE_FUZZ_SEEDS={seed}..{} SHIPLANE_FUZZ_CASES={} cargo test -p {} --bins fuzz",
                seed + 1,
                i + 1,
                T::NAME
            );
            match case(target, &deps, &bytes, &replay) {
                Ended::Invalid | Ended::Ignored => tally.refused += 1,
                Ended::Answered => tally.answered += 1,
                Ended::Changed => {
                    tally.answered += 1;
                    tally.changed += 1;
                }
            }
        }
    }
    println!("{}: {tally:?}", T::NAME);
    tally
}

/// How one case ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// An `InvalidEvent`.
    Invalid,
    Ignored,
    Answered,
    Changed,
}

/// The bytes, shown escaped and cut to a readable length.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let cut: String = text.chars().take(2_000).collect();
    format!("{cut:?}")
}

/// One case: its rules checked, panicking with `what` on a broken one.
fn case<T: Target>(target: &T, deps: &T::Deps, bytes: &[u8], what: &str) -> Ended {
    let before = target.effects(deps);
    let run = std::panic::AssertUnwindSafe(|| {
        crate::logs::captured_async(async {
            match read_payload(bytes) {
                Ok(payload) => target.invoke(deps, payload).await,
                Err(e) => Err(e),
            }
        })
    });
    let (outcome, logs) = match std::panic::catch_unwind(run) {
        Ok(done) => done,
        Err(_) => panic!("{}: panicked on {}\n{what}", T::NAME, shown(bytes)),
    };
    let context = || format!("{}: {}\n{what}\nanswer: {outcome:?}", T::NAME, shown(bytes));
    if let Err(e) = &outcome {
        assert!(!e.error_type().contains("::"), "{}", context());
    }
    let refused = match &outcome {
        Err(HandlerError::InvalidEvent(_)) => Some(Ended::Invalid),
        Ok(answer) if answer.get("ignored").is_some_and(Value::is_string) => Some(Ended::Ignored),
        _ => None,
    };
    let after = target.effects(deps);
    if refused.is_some() {
        assert_eq!(
            before,
            after,
            "refused or ignored, yet it changed something: {}",
            context()
        );
    }
    logs.assert_one_line_per_record(&context());
    match refused {
        Some(ended) => ended,
        None if before == after => Ended::Answered,
        None => Ended::Changed,
    }
}

/// Values that broke a parser or a rule before, or sit on a boundary.
fn interesting(rng: &mut XorShiftRng) -> Value {
    let pick = [
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e308),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(""),
        json!(" "),
        json!("ALARM"),
        json!("OK"),
        json!("INSUFFICIENT_DATA"),
        json!("aws.cloudwatch"),
        json!("aws.ecr"),
        json!("aws.ecs"),
        json!("aws.codedeploy"),
        json!("shiplane.bake-timer"),
        json!("my.app"),
        json!("CloudWatch Alarm State Change"),
        json!("ECR Image Action"),
        json!("ECS Task State Change"),
        json!("ECS Deployment State Change"),
        json!("CodeDeploy Deployment State-change Notification"),
        json!("PUSH"),
        json!("SUCCESS"),
        json!("STOPPED"),
        json!("SERVICE_DEPLOYMENT_COMPLETED"),
        json!("9999-12-31T23:59:59Z"),
        json!("9999-12-31T23:59:59.000+0000"),
        json!("+262143-01-01T00:00:00Z"),
        json!("1970-01-01T00:00:00Z"),
        json!("2026-11-16T04:00:00.000+0000"),
        json!(format!("sha256:{}", "a".repeat(64))),
        json!("v1\n2026-11-24T00:00:00Z  INFO shiplane: release approved by admin"),
        json!("d-7ZV2KGX1B\r\n2026-11-24T00:00:00Z  INFO forged"),
        json!("api-dev-5xx"),
        json!("shiplane/api"),
        json!("api"),
        json!("dev"),
        json!("01JD2B3C4D5E6F7G8H9J0KMNPQ"),
        json!("d-7ZV2KGX1B"),
        json!("x".repeat(5_000)),
        json!("\u{202e}\u{0}\u{1b}[31m"),
        json!({}),
        json!([]),
    ];
    pick[rng.random_range(0..pick.len())].clone()
}

/// Keys the parsers read.
const KEYS: [&str; 30] = [
    "source",
    "detail-type",
    "detail",
    "alarmData",
    "time",
    "state",
    "value",
    "timestamp",
    "alarmName",
    "repository-name",
    "image-digest",
    "image-tag",
    "action-type",
    "result",
    "account",
    "region",
    "DeploymentId",
    "LifecycleEventHookExecutionId",
    "service",
    "environment",
    "release",
    "attempt",
    "deploymentId",
    "eventName",
    "updatedAt",
    "taskArn",
    "startedBy",
    "lastStatus",
    "containers",
    "resources",
];

/// A node of `value`, reached by a random walk from the root.
fn node<'a>(rng: &mut XorShiftRng, value: &'a mut Value) -> &'a mut Value {
    if rng.random_bool(0.25) {
        return value;
    }
    let len = match &*value {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    if len == 0 {
        return value;
    }
    let i = rng.random_range(0..len);
    match value {
        Value::Object(m) => match m.values_mut().nth(i) {
            Some(child) => node(rng, child),
            None => unreachable!("i < len"),
        },
        Value::Array(a) => node(rng, &mut a[i]),
        _ => unreachable!("a scalar has no children"),
    }
}

/// A random node of a random donor.
fn donated(rng: &mut XorShiftRng, donors: &[Value]) -> Value {
    let mut donor = donors[rng.random_range(0..donors.len())].clone();
    node(rng, &mut donor).clone()
}

fn mutate(rng: &mut XorShiftRng, value: &mut Value, donors: &[Value]) {
    let at = node(rng, value);
    match rng.random_range(0..7) {
        0 | 1 => *at = interesting(rng),
        2 => *at = donated(rng, donors),
        3 => {
            if let Value::Object(m) = at
                && !m.is_empty()
            {
                let key = m.keys().nth(rng.random_range(0..m.len())).cloned();
                key.map(|k| m.remove(&k));
            }
        }
        4 => {
            if let Value::Object(m) = at {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                m.insert(key.to_string(), interesting(rng));
            }
        }
        5 => {
            if let Value::String(s) = at {
                s.push_str("\n2026-11-24T00:00:00Z  INFO shiplane: forged");
            } else {
                *at = json!([at.take()]);
            }
        }
        _ => {
            let inner = at.take();
            *value = inner;
        }
    }
}

/// `original` with up to three mutations of its JSON and, one case in six, of its bytes.
fn mutated(rng: &mut XorShiftRng, original: &[u8], donors: &[Value]) -> Vec<u8> {
    let mut bytes = match serde_json::from_slice::<Value>(original) {
        Ok(mut value) => {
            for _ in 0..rng.random_range(0..=3) {
                mutate(rng, &mut value, donors);
            }
            serde_json::to_vec(&value).unwrap_or_default()
        }
        Err(_) => original.to_vec(),
    };
    if rng.random_range(0..6) == 0 && !bytes.is_empty() {
        match rng.random_range(0..4) {
            0 => bytes.truncate(rng.random_range(0..bytes.len())),
            1 => bytes.extend_from_slice(b" junk"),
            2 => bytes.extend_from_slice(original),
            _ => {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random_range(0..=255u8);
            }
        }
    }
    bytes
}

/// The campaign's test in a function's crate: `fuzz_campaign!(Target)` defines
/// `fuzz_campaign` (the name `make fuzz` runs), which runs the campaign and asserts that
/// some inputs were refused and some answered: a campaign that refuses all, or none, of
/// its inputs reaches no handler, or no check.
#[macro_export]
macro_rules! fuzz_campaign {
    ($target:expr) => {
        /// The seeded mutation campaign over every event fixture (`shiplane_e2e::fuzz`):
        /// no panic, a stable error type, nothing changed by what is refused or ignored,
        /// one log line per record. `make fuzz` runs it longer.
        #[test]
        fn fuzz_campaign() {
            let tally = $crate::fuzz::run(&$target);
            assert!(tally.refused > 0 && tally.answered > 0, "{tally:?}");
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_cases() {
        let corpus = corpus();
        let donors: Vec<Value> = corpus
            .iter()
            .filter_map(|(_, b)| serde_json::from_slice(b).ok())
            .collect();
        let make = |seed| {
            let mut rng = XorShiftRng::seed_from_u64(seed);
            (0..50)
                .map(|_| {
                    let original = &corpus[rng.random_range(0..corpus.len())].1;
                    mutated(&mut rng, original, &donors)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
        assert!(corpus.len() > 40, "the corpus: {}", corpus.len());
    }
}
