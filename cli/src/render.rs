//! Human tables by default, JSON with `--json`. Nothing here talks to AWS.

use std::collections::BTreeMap;

use comfy_table::{Table, presets};
use serde::Serialize;
use serde_json::{Value, json};
use shiplane::release::{Lane, Release, ReleaseId, StageState, Timestamp, Transition};
use shiplane::store::StoredPipeline;

use crate::output::{errln, out, outln};

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.to_vec());
    t
}

/// Prints `value` as JSON, its times in RFC 3339 ([`rfc3339_times`]).
fn print_json(value: &impl Serialize) {
    match serde_json::to_value(value).and_then(|v| serde_json::to_string_pretty(&rfc3339_times(v)))
    {
        Ok(text) => outln!("{text}"),
        Err(e) => errln!("error: cannot render JSON: {e}"),
    }
}

/// The keys under which the release model keeps a time (a `Timestamp`, epoch
/// milliseconds in the store).
const TIME_KEYS: [&str; 11] = [
    "at",
    "since",
    "created",
    "pushed_at",
    "succeeded_at",
    "deadline",
    "bake_until",
    "not_before",
    "lease",
    "newest_pushed_at",
    "applied_at",
];

/// A time as `--json` prints every time: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: Timestamp) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.0))
        .to_string()
}

/// `value` with every time (a number under one of [`TIME_KEYS`]) in RFC 3339, so scripts
/// read one time format everywhere.
pub(crate) fn rfc3339_times(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match v.as_u64() {
                    Some(ms) if TIME_KEYS.contains(&k.as_str()) => {
                        (k, Value::String(rfc3339(Timestamp(ms))))
                    }
                    _ => (k, rfc3339_times(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rfc3339_times).collect()),
        other => other,
    }
}

/// A release as one status cell: its label and the start of its id.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    pub id: ReleaseId,
    pub label: String,
    pub digest: String,
    /// Its state in the lane's environment.
    pub state: Option<StageState>,
}

impl ReleaseSummary {
    fn cell(&self) -> String {
        format!("{} ({})", self.label, &self.id.as_str()[..10])
    }

    /// The cell with the release's own state after it, so a state is never read as
    /// another release's (`v4 (01M87NPKS0) awaiting_approval`).
    fn cell_with_state(&self) -> String {
        match self.state {
            Some(state) => format!("{} {state}", self.cell()),
            None => self.cell(),
        }
    }
}

/// One row of `shiplane status`.
#[derive(Debug, Clone, Serialize)]
pub struct LaneStatus {
    pub service: String,
    pub environment: String,
    pub current: Option<ReleaseSummary>,
    /// The state of the release the lane is busiest with: in flight, else waiting, else current.
    pub state: Option<StageState>,
    pub in_flight: Option<ReleaseSummary>,
    pub queued: Option<ReleaseSummary>,
    pub last_known_good: Option<ReleaseSummary>,
    pub paused_by: Option<String>,
    pub frozen: bool,
    /// The lane's own watched alarms now in ALARM.
    pub alarms_firing: Vec<String>,
    /// Alarms in ALARM in the environments this one's gate watches: what holds it.
    pub held_by: Vec<String>,
}

impl LaneStatus {
    pub fn new(
        lane: Lane,
        frozen: bool,
        held_by: Vec<String>,
        releases: &BTreeMap<ReleaseId, Release>,
    ) -> LaneStatus {
        let env = lane.environment.clone();
        let summary = |id: &Option<ReleaseId>| {
            id.as_ref()
                .and_then(|id| releases.get(id))
                .map(|r| ReleaseSummary {
                    id: r.id.clone(),
                    label: r.label(),
                    digest: r.digest.to_string(),
                    state: r.state_in(&env),
                })
        };
        let in_flight = summary(&lane.in_flight);
        let queued = summary(&lane.queued);
        let current = summary(&lane.current);
        let state = [&in_flight, &queued, &current]
            .into_iter()
            .flatten()
            .find_map(|r| r.state);
        let alarms_firing = lane.firing_alarms();
        LaneStatus {
            alarms_firing,
            held_by,
            service: lane.service,
            environment: lane.environment,
            current,
            state,
            in_flight,
            queued,
            last_known_good: summary(&lane.last_known_good),
            paused_by: lane.paused.map(|p| p.actor),
            frozen,
        }
    }
}

fn cell(r: &Option<ReleaseSummary>) -> String {
    r.as_ref()
        .map_or_else(|| "-".to_string(), ReleaseSummary::cell)
}

fn cell_with_state(r: &Option<ReleaseSummary>) -> String {
    r.as_ref()
        .map_or_else(|| "-".to_string(), ReleaseSummary::cell_with_state)
}

pub fn pipeline_source(stored: &StoredPipeline, json: bool) {
    if json {
        print_json(&json!({
            "version": stored.version,
            "applied_at": stored.applied_at,
            "applied_by": stored.applied_by,
            "source": stored.source,
        }));
    } else {
        errln!(
            "# pipeline version {}, applied {} by {}",
            stored.version,
            stored.applied_at,
            stored.applied_by
        );
        out!("{}", stored.source);
    }
}

pub fn status(rows: &[LaneStatus], json: bool) {
    if json {
        print_json(&rows);
        return;
    }
    let mut t = table(&[
        "SERVICE",
        "ENVIRONMENT",
        "CURRENT",
        "IN FLIGHT",
        "NEXT",
        "LAST KNOWN GOOD",
        "HOLD",
        "ALARMS",
    ]);
    for r in rows {
        let mut holds = Vec::new();
        if let Some(by) = &r.paused_by {
            holds.push(format!("paused by {by}"));
        }
        if r.frozen {
            holds.push("frozen".to_string());
        }
        if !r.held_by.is_empty() {
            holds.push(format!("held: {} in ALARM", r.held_by.join(", ")));
        }
        let hold = if holds.is_empty() {
            "-".to_string()
        } else {
            holds.join("; ")
        };
        let alarms = if r.alarms_firing.is_empty() {
            "-".to_string()
        } else {
            format!("{} in ALARM", r.alarms_firing.join(", "))
        };
        t.add_row(vec![
            r.service.clone(),
            r.environment.clone(),
            cell_with_state(&r.current),
            cell_with_state(&r.in_flight),
            cell_with_state(&r.queued),
            cell(&r.last_known_good),
            hold,
            alarms,
        ]);
    }
    outln!("{t}");
}

fn transitions_table(transitions: &[Transition], with_release: bool) -> Table {
    let mut header = vec!["TIME", "ENVIRONMENT"];
    if with_release {
        header.push("RELEASE");
    }
    header.extend(["FROM", "TO", "CAUSE", "ACTOR", "DETAIL"]);
    let mut t = table(&header);
    for tr in transitions {
        let state = |s: &Option<StageState>| s.map_or_else(|| "-".to_string(), |s| s.to_string());
        let mut row = vec![tr.at.to_string(), tr.environment.clone()];
        if with_release {
            row.push(
                tr.release
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |r| r.to_string()),
            );
        }
        row.extend([
            state(&tr.from),
            state(&tr.to),
            tr.cause.to_string(),
            tr.actor.clone().unwrap_or_else(|| "-".to_string()),
            tr.detail.clone().unwrap_or_else(|| "-".to_string()),
        ]);
        t.add_row(row);
    }
    t
}

pub fn release_history(release: &Release, transitions: &[Transition], json: bool) {
    if json {
        print_json(&json!({"release": release, "history": transitions}));
        return;
    }
    outln!(
        "release {} of {}: {} {}@{}",
        release.id,
        release.service,
        release.label(),
        release.repository,
        release.digest
    );
    outln!("{}", transitions_table(transitions, false));
}

pub fn service_history(service: &str, transitions: &[Transition], json: bool) {
    if json {
        print_json(&json!({"service": service, "history": transitions}));
        return;
    }
    if transitions.is_empty() {
        outln!("no history yet for {service}");
        return;
    }
    outln!("{}", transitions_table(transitions, true));
}

/// Transitions a command caused, newest last.
pub fn transitions(transitions: &[Transition], json: bool) {
    if json {
        print_json(&json!({ "transitions": transitions }));
        return;
    }
    if transitions.is_empty() {
        outln!("nothing to do");
        return;
    }
    outln!("{}", transitions_table(transitions, true));
}
