//! Release metrics as CloudWatch Embedded Metric Format (EMF) records: one JSON line on
//! stdout per committed transition that measures something, which Lambda's log pipeline
//! turns into metrics with no AWS call of Shiplane's own.
//!
//! What is measured ([`of_decision`]), in namespace [`NAMESPACE`], each with the dimension
//! sets `[Service, Environment]` and `[Environment]`:
//!
//! | metric | unit | when |
//! |---|---|---|
//! | `DeploymentsStarted` | Count | a release starts its migration or deployment in an environment |
//! | `DeploymentsSucceeded` | Count | a release succeeds in an environment (deployed and baked) |
//! | `DeploymentsFailed` | Count | a release's stage fails |
//! | `DeploymentsRolledBack` | Count | a release is rolled back |
//! | `LeadTime` | Seconds | push → deployed in an environment (its deployment succeeded; restores of the last known good excluded) |
//! | `BakeTime` | Seconds | how long a bake lasted, however it ended |
//! | `ApprovalWait` | Seconds | how long a release waited for its approval |
//! | `CheckDuration` | Milliseconds | one lifecycle-hook check (its name in the `check` property) |
//!
//! Where records go is set once per process ([`set_sink`]): the functions write them to
//! stdout; the CLI keeps them ([`Sink::Buffer`]) and sends what its commands measured (an
//! approval, the deployment it starts) with PutMetricData, having no Lambda log to write
//! to. A process that sets nothing computes none: tests and the simulation.

pub mod dora;
mod emf;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;

pub use emf::{Metric, Record, Unit};

use crate::checks::CheckResult;
use crate::release::{
    Cause, Decision, LaneView, Release, ReleaseId, StageState, Timestamp, Transition,
};

/// The CloudWatch namespace of every Shiplane metric.
pub const NAMESPACE: &str = "Shiplane";

/// Where this process's metric records go.
pub enum Sink {
    /// One EMF JSON line each on stdout: a Lambda function's log becomes metrics.
    Stdout,
    /// Kept until [`take_buffered`]: a process with no Lambda log sends them itself.
    Buffer(std::sync::Mutex<Vec<Record>>),
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets where records go, once per process; false when it was already set.
pub fn set_sink(sink: Sink) -> bool {
    SINK.set(sink).is_ok()
}

/// Whether anything receives records: when not, none are computed.
pub fn enabled() -> bool {
    SINK.get().is_some()
}

/// Sends records where this process's sink says. Best effort: a metric never fails a
/// release, so a write that fails is dropped.
pub fn emit(records: Vec<Record>) {
    match SINK.get() {
        None => {}
        Some(Sink::Stdout) => {
            let mut out = std::io::stdout().lock();
            for r in &records {
                let _ = writeln!(out, "{}", r.to_emf(NAMESPACE));
            }
            let _ = out.flush();
        }
        Some(Sink::Buffer(kept)) => kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(records),
    }
}

/// The records a [`Sink::Buffer`] kept since the last call, oldest first (none for any
/// other sink).
pub fn take_buffered() -> Vec<Record> {
    match SINK.get() {
        Some(Sink::Buffer(kept)) => std::mem::take(
            &mut *kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ),
        _ => Vec::new(),
    }
}

/// The engine's hook: the records of a committed decision, sent to the sink.
pub fn emit_decision(before: &LaneView, decision: &Decision) {
    if enabled() {
        emit(of_decision(before, decision));
    }
}

/// What a committed decision measured: `before` is the lane as loaded (when each stage
/// entered its state), `decision` what the decision made of it.
pub fn of_decision(before: &LaneView, decision: &Decision) -> Vec<Record> {
    // When each (release, environment) entered the state it is in, as the transitions go.
    let mut since: BTreeMap<(ReleaseId, String), (StageState, Timestamp)> = BTreeMap::new();
    for (id, r) in &before.releases {
        for (env, stage) in &r.stages {
            since.insert((id.clone(), env.clone()), (stage.state(), stage.since));
        }
    }
    let mut out = Vec::new();
    for t in &decision.transitions {
        let Some(id) = &t.release else { continue };
        let key = (id.clone(), t.environment.clone());
        let entered = since
            .get(&key)
            .filter(|(state, _)| Some(*state) == t.from)
            .map(|(_, at)| *at);
        let release = decision
            .view
            .releases
            .get(id)
            .or_else(|| before.releases.get(id));
        let mut metrics = Vec::new();
        if t.from != t.to {
            metrics = stage_metrics(t, release, entered);
            since.insert(key, (t.to.unwrap_or(StageState::Queued), t.at));
        }
        let mut properties = serde_json::Map::new();
        if matches!(t.cause, Cause::CheckPassed | Cause::CheckFailed)
            && let Some((name, passed, ms)) =
                t.detail.as_deref().and_then(CheckResult::parse_record)
        {
            metrics.push(Metric::new("CheckDuration", Unit::Milliseconds, ms as f64));
            properties.insert("check".into(), name.into());
            properties.insert("passed".into(), passed.into());
        }
        if metrics.is_empty() {
            continue;
        }
        properties.insert("release".into(), id.as_str().into());
        properties.insert("cause".into(), t.cause.as_str().into());
        if let Some(r) = release {
            properties.insert("label".into(), r.label().into());
        }
        out.push(Record {
            timestamp: t.at,
            dimensions: vec![
                ("Service".into(), t.service.clone()),
                ("Environment".into(), t.environment.clone()),
            ],
            metrics,
            properties,
        });
    }
    out
}

/// The metrics of transition `t`, which changed a stage's state: deployments started and
/// ended, lead time, and how long the stage baked or waited for approval (`entered`:
/// when it entered the state it leaves).
fn stage_metrics(
    t: &Transition,
    release: Option<&Release>,
    entered: Option<Timestamp>,
) -> Vec<Metric> {
    let waited = |at: Option<Timestamp>| at.map(|a| t.at.0.saturating_sub(a.0) as f64 / 1000.0);
    let mut metrics = Vec::new();
    use StageState as S;
    match (t.from, t.to) {
        (None | Some(S::Queued | S::AwaitingApproval), Some(S::Migrating | S::Deploying)) => {
            metrics.push(Metric::count("DeploymentsStarted"));
        }
        (_, Some(S::Succeeded)) => metrics.push(Metric::count("DeploymentsSucceeded")),
        (_, Some(S::Failed)) => metrics.push(Metric::count("DeploymentsFailed")),
        (_, Some(S::RolledBack)) => metrics.push(Metric::count("DeploymentsRolledBack")),
        _ => {}
    }
    let deployed = matches!(t.from, Some(S::Deploying | S::Validating))
        && matches!(t.to, Some(S::Baking | S::Succeeded));
    let restore = release
        .and_then(|r| r.stages.get(&t.environment))
        .is_some_and(|s| s.redeploy);
    if deployed
        && !restore
        && let Some(r) = release
    {
        metrics.push(Metric::new(
            "LeadTime",
            Unit::Seconds,
            t.at.0.saturating_sub(r.pushed_at.0) as f64 / 1000.0,
        ));
    }
    if t.from == Some(S::Baking)
        && let Some(s) = waited(entered)
    {
        metrics.push(Metric::new("BakeTime", Unit::Seconds, s));
    }
    if t.from == Some(S::AwaitingApproval)
        && t.cause == Cause::Approved
        && let Some(s) = waited(entered)
    {
        metrics.push(Metric::new("ApprovalWait", Unit::Seconds, s));
    }
    metrics
}

#[cfg(test)]
mod tests;
