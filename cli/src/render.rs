//! Human tables by default, JSON with `--json`. Nothing here talks to AWS.

use std::collections::BTreeMap;

use comfy_table::{ColumnConstraint, ContentArrangement, Table, Width, presets};
use serde::Serialize;
use serde_json::{Value, json};
use shiplane::release::{
    Down, Lane, Release, ReleaseId, Schema, StageState, Timestamp, Transition,
};
use shiplane::store::StoredPipeline;

use crate::output::{errln, out, outln};

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.to_vec());
    t
}

/// A table in the CLI's one style (no borders), for other modules' views.
pub fn plain_table(header: &[&str]) -> Table {
    table(header)
}

/// The narrowest a wrapped column gets: on a terminal too narrow for the other columns and
/// this, the table runs wider than the terminal rather than leave a word per line.
const WRAPPED_MIN: u16 = 30;

/// Fits `t` into `width` by wrapping its last column only (a detail, a reason); every other
/// column keeps its content's width. No width: lines as long as they need.
pub fn wrap_last_column(t: &mut Table, width: Option<u16>) {
    let Some(width) = width else {
        return;
    };
    t.set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    let last = t.column_count().saturating_sub(1);
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_constraint(if i == last {
            ColumnConstraint::LowerBoundary(Width::Fixed(WRAPPED_MIN))
        } else {
            ColumnConstraint::ContentWidth
        });
    }
}

/// `value` as one line of JSON, its times in RFC 3339: one document per line, for
/// commands that print more than one (`watch --json`).
pub fn json_line(value: &impl Serialize) {
    match serde_json::to_value(value).and_then(|v| serde_json::to_string(&rfc3339_times(v))) {
        Ok(text) => outln!("{text}"),
        Err(e) => errln!("error: cannot render JSON: {e}"),
    }
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
    /// Why it goes no further than this environment, when the next does not accept its
    /// tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_promoted: Option<String>,
}

impl ReleaseSummary {
    fn cell(&self) -> String {
        format!("{} ({})", self.label, &self.id.as_str()[..10])
    }

    /// The cell with the release's own state after it, so a state is never read as
    /// another release's (`v4 (01M87NPKS0) awaiting_approval`).
    fn cell_with_state(&self) -> String {
        match (self.state, &self.not_promoted) {
            (Some(state), Some(why)) => format!("{} {state}, goes no further: {why}", self.cell()),
            (Some(state), None) => format!("{} {state}", self.cell()),
            (None, _) => self.cell(),
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
    /// The service is stopped for a `stop-first` migration: the outage in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Down>,
    /// The release whose `stop-first` migration last completed here: the releases pushed
    /// before it are not put back automatically (`status` marks the last known good).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// The last known good was pushed before it: a rollback must name a release.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub last_known_good_predates_schema: bool,
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
                    not_promoted: r
                        .stages
                        .get(&env)
                        .and_then(|s| s.not_promoted())
                        .map(str::to_string),
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
        let last_known_good_predates_schema = lane
            .schema
            .as_ref()
            .zip(
                lane.last_known_good
                    .as_ref()
                    .and_then(|id| releases.get(id)),
            )
            .is_some_and(|(s, r)| s.predates(r));
        LaneStatus {
            stopped: lane.down.clone(),
            schema: lane.schema.clone(),
            last_known_good_predates_schema,
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

fn cell(r: Option<&ReleaseSummary>) -> String {
    r.map_or_else(|| "-".to_string(), ReleaseSummary::cell)
}

/// The last known good, marked when a stop-first migration since moved the schema past it.
fn good_cell(r: &LaneStatus) -> String {
    let good = cell(r.last_known_good.as_ref());
    match &r.schema {
        Some(s) if r.last_known_good_predates_schema => {
            format!("{good} (predates {}'s schema)", s.release)
        }
        _ => good,
    }
}

fn cell_with_state(r: Option<&ReleaseSummary>) -> String {
    r.map_or_else(|| "-".to_string(), ReleaseSummary::cell_with_state)
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
        if let Some(down) = &r.stopped {
            holds.push(stopped_hold(down));
        }
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
            cell_with_state(r.current.as_ref()),
            cell_with_state(r.in_flight.as_ref()),
            cell_with_state(r.queued.as_ref()),
            good_cell(r),
            hold,
            alarms,
        ]);
    }
    outln!("{t}");
}

/// A lane's outage as `status` shows it: the one thing an on-call engineer must see first.
fn stopped_hold(down: &Down) -> String {
    let was = down.desired.map_or_else(
        || "the stop not yet confirmed".to_string(),
        |n| format!("was {n} tasks"),
    );
    format!(
        "STOPPED since {} for {}'s stop-first migration ({was})",
        down.since, down.release
    )
}

/// How wide a table may be: the terminal's width when stdout is one, else unbounded (a
/// file or a pipe gets whole lines, for grep).
pub fn table_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crate::terminal::width()
}

/// A span of time as people read it in a table: `850ms`, `42s`, `3m12s`, `1h05m`, `2d3h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s == 0 {
        format!("{ms}ms")
    } else if m == 0 {
        format!("{s}s")
    } else if h == 0 {
        format!("{m}m{:02}s", s % 60)
    } else if d == 0 {
        format!("{h}h{:02}m", m % 60)
    } else {
        format!("{d}d{}h", h % 24)
    }
}

/// How a table names the release of a transition: its tag and the start of its id, when
/// the release is known; else its id.
pub type Labels = BTreeMap<ReleaseId, String>;

/// The label cell of a release, as `status` shows it: `v1.2.0 (01JD2B3C4D)`.
pub fn label_cell(release: &Release) -> String {
    format!("{} ({})", release.label(), &release.id.as_str()[..10])
}

/// Transitions as a table: each with the time since the one before (STEP), its detail
/// wrapped to `width` when given.
fn transitions_table(
    transitions: &[Transition],
    labels: Option<&Labels>,
    width: Option<u16>,
) -> Table {
    let mut header = vec!["TIME", "STEP", "ENVIRONMENT"];
    if labels.is_some() {
        header.push("RELEASE");
    }
    header.extend(["FROM", "TO", "CAUSE", "ACTOR", "DETAIL"]);
    let mut t = table(&header);
    let mut previous: Option<Timestamp> = None;
    for tr in transitions {
        let state = |s: &Option<StageState>| s.map_or_else(|| "-".to_string(), |s| s.to_string());
        let step = previous.map_or_else(
            || "-".to_string(),
            |p| format!("+{}", duration(tr.at.0.saturating_sub(p.0))),
        );
        previous = Some(tr.at);
        let mut row = vec![tr.at.to_string(), step, tr.environment.clone()];
        if let Some(labels) = labels {
            row.push(tr.release.as_ref().map_or_else(
                || "-".to_string(),
                |r| labels.get(r).cloned().unwrap_or_else(|| r.to_string()),
            ));
        }
        row.extend([
            state(&tr.from),
            state(&tr.to),
            tr.cause.to_string(),
            tr.actor.clone().unwrap_or_else(|| "-".to_string()),
            detail_cell(tr),
        ]);
        t.add_row(row);
    }
    wrap_last_column(&mut t, width);
    t
}

/// A change's detail, led by its alert when a person had to act on it.
fn detail_cell(tr: &Transition) -> String {
    let detail = tr.detail.as_deref().unwrap_or("-");
    match tr.alert {
        Some(alert) => format!("ALERT ({alert}): {detail}"),
        None => detail.to_string(),
    }
}

/// The line under a history: how long from its first step to its last.
fn total(transitions: &[Transition]) -> Option<String> {
    let (first, last) = (transitions.first()?, transitions.last()?);
    Some(format!(
        "total {} from the first step ({}) to the last ({})",
        duration(last.at.0.saturating_sub(first.at.0)),
        first.at,
        last.at
    ))
}

/// A release's history: its name and tags, then its transitions with their durations.
pub fn release_history(
    release: &Release,
    transitions: &[Transition],
    json: bool,
    width: Option<u16>,
) {
    if json {
        print_json(&json!({"release": release, "history": transitions}));
        return;
    }
    outln!(
        "release {} ({}) of {}: tags {}; image {}@{}",
        crate::names::display(release),
        release.id,
        release.service,
        if release.tags.is_empty() {
            "none".to_string()
        } else {
            release.tags.join(", ")
        },
        release.repository,
        release.digest
    );
    outln!("{}", transitions_table(transitions, None, width));
    if let Some(total) = total(transitions) {
        outln!("{total}");
    }
}

/// A service's history, each release named by its tag.
pub fn service_history(
    service: &str,
    transitions: &[Transition],
    labels: &Labels,
    json: bool,
    width: Option<u16>,
) {
    if json {
        print_json(&json!({"service": service, "history": transitions}));
        return;
    }
    if transitions.is_empty() {
        outln!("no history yet for {service}");
        return;
    }
    outln!("{}", transitions_table(transitions, Some(labels), width));
    if let Some(total) = total(transitions) {
        outln!("{total}");
    }
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
    outln!(
        "{}",
        transitions_table(transitions, Some(&Labels::new()), table_width())
    );
}

/// The release `shiplane deploy` made: the name to type next, and its state in the first
/// environment.
pub fn deployed(release: &ReleaseId, name: &str, environment: &str, state: &str, json: bool) {
    if json {
        outln!(
            "{}",
            json!({"release": release, "name": name, "environment": environment, "state": state})
        );
    } else {
        outln!("release {name} ({release}): {state} in {environment}");
    }
}

#[cfg(test)]
mod tests {
    use shiplane::release::Cause;

    use super::*;

    #[test]
    fn a_current_release_that_goes_no_further_says_why_in_its_status_cell() {
        let why = "tag feature-x not accepted by staging (tags = { regex = \"^release-\" })";
        let summary = ReleaseSummary {
            id: ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap(),
            label: "feature-x".into(),
            digest: "sha256:aa".into(),
            state: Some(StageState::Succeeded),
            not_promoted: Some(why.into()),
        };
        assert_eq!(
            summary.cell_with_state(),
            format!("feature-x (01JD2B3C4D) succeeded, goes no further: {why}")
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["not_promoted"], why);
        let on = ReleaseSummary {
            not_promoted: None,
            ..summary
        };
        assert_eq!(on.cell_with_state(), "feature-x (01JD2B3C4D) succeeded");
        assert!(
            serde_json::to_value(&on)
                .unwrap()
                .get("not_promoted")
                .is_none()
        );
    }

    #[test]
    fn a_stopped_service_is_the_first_hold_status_shows() {
        let down = Down {
            release: ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap(),
            since: Timestamp(1_750_000_000_000),
            desired: Some(3),
        };
        let shown = stopped_hold(&down);
        assert!(shown.starts_with("STOPPED since 2025-06-15T"), "{shown}");
        assert!(
            shown.ends_with("for 01JD2B3C4D5E6F7G8H9J0KMNPQ's stop-first migration (was 3 tasks)"),
            "{shown}"
        );
        let mut lane = Lane::new("tiles", "prod");
        lane.down = Some(down);
        let row = LaneStatus::new(lane, false, Vec::new(), &BTreeMap::new());
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["stopped"]["desired"], 3);
        let up = LaneStatus::new(
            Lane::new("tiles", "prod"),
            false,
            Vec::new(),
            &BTreeMap::new(),
        );
        assert!(serde_json::to_value(&up).unwrap().get("stopped").is_none());
    }

    #[test]
    fn a_last_known_good_from_before_a_stop_first_migration_is_marked() {
        let release = |n: u8, at: u64| {
            let mut r = Release::new(
                ReleaseId::parse(&format!("01JD2B3C4D5E6F7G8H9J0KMNP{n}")).unwrap(),
                "tiles",
                "team/tiles",
                shiplane::release::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
                Some(&format!("v{n}")),
                Timestamp(at),
            );
            r.pushed_at = Timestamp(at);
            r
        };
        let (old, migrated) = (release(1, 1_000), release(2, 2_000));
        let mut lane = Lane::new("tiles", "prod");
        lane.last_known_good = Some(old.id.clone());
        lane.current = Some(migrated.id.clone());
        lane.schema = Some(Schema::of(&migrated));
        let releases: BTreeMap<ReleaseId, Release> = [old, migrated]
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let row = LaneStatus::new(lane.clone(), false, Vec::new(), &releases);
        assert!(row.last_known_good_predates_schema);
        let shown = good_cell(&row);
        assert!(
            shown.ends_with("(predates 01JD2B3C4D5E6F7G8H9J0KMNP2's schema)"),
            "{shown}"
        );
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["schema"]["release"], "01JD2B3C4D5E6F7G8H9J0KMNP2");
        // Once the migrated release is the last known good, nothing is marked.
        lane.last_known_good = lane.current.clone();
        let row = LaneStatus::new(lane, false, Vec::new(), &releases);
        assert!(!good_cell(&row).contains("predates"), "{}", good_cell(&row));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        for (ms, shown) in [
            (0, "0ms"),
            (850, "850ms"),
            (42_000, "42s"),
            (192_000, "3m12s"),
            (3_900_000, "1h05m"),
            (183_600_000, "2d3h"),
        ] {
            assert_eq!(duration(ms), shown, "{ms} ms");
        }
    }

    fn step(at: u64, detail: &str) -> Transition {
        Transition {
            at: Timestamp(1_750_000_000_000 + at),
            service: "api".into(),
            environment: "dev".into(),
            release: None,
            from: Some(StageState::Deploying),
            to: Some(StageState::Baking),
            cause: Cause::DeploymentSucceeded,
            actor: None,
            detail: Some(detail.into()),
            alert: None,
        }
    }

    #[test]
    fn each_step_says_how_long_after_the_one_before_and_the_total_is_under() {
        let steps = [step(0, "a"), step(1_500, "b"), step(62_000, "c")];
        let text = transitions_table(&steps, None, None).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("STEP"), "{text}");
        assert!(lines[1].contains(" - "), "{text}");
        assert!(lines[2].contains("+1s"), "{text}");
        assert!(lines[3].contains("+1m00s"), "{text}");
        assert!(total(&steps).unwrap().starts_with("total 1m02s"));
    }

    #[test]
    fn a_change_that_alerted_says_so_before_its_detail() {
        let alerted = Transition {
            alert: Some(shiplane::release::Alert::NothingToRestore),
            ..step(0, "cancelled; nothing to restore")
        };
        let text = transitions_table(&[step(0, "a"), alerted], None, None).to_string();
        assert!(
            text.contains("ALERT (nothing_to_restore): cancelled; nothing to restore"),
            "{text}"
        );
        assert_eq!(text.matches("ALERT").count(), 1, "{text}");
    }

    #[test]
    fn the_detail_wraps_to_the_width_and_stays_whole_without_one() {
        let long = "check orders failed: ".to_string() + &"the answer was not ok ".repeat(20);
        let steps = [step(0, &long)];
        let wrapped = transitions_table(&steps, None, Some(130)).to_string();
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 130),
            "{wrapped}"
        );
        assert!(wrapped.lines().count() > 3, "wrapped: {wrapped}");
        let words = |t: &str| t.split_whitespace().filter(|w| *w == "answer").count();
        assert_eq!(words(&wrapped), 20, "no word lost");
        let whole = transitions_table(&steps, None, None).to_string();
        assert_eq!(whole.lines().count(), 2, "one line per step: {whole}");
        let narrow = transitions_table(&steps, None, Some(40)).to_string();
        let detail_width = narrow
            .lines()
            .nth(1)
            .and_then(|l| l.split("  ").filter(|c| !c.trim().is_empty()).last())
            .map_or(0, |c| c.trim().chars().count());
        assert!(
            detail_width >= 20,
            "a terminal too narrow still leaves the detail readable: {narrow}"
        );
    }
}
