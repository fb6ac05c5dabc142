//! `shiplane watch`: a live view of a service's environments, or of one release's way
//! through them: redrawn on a terminal, elsewhere a line for each change.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use shiplane::pipeline::{Pipeline, Service};
use shiplane::release::{Lane, Release, ReleaseId, Stage, StageState, Timestamp, Transition};
use shiplane::store::ReleaseStore;

use super::{WATCH_EVERY, positive_duration, release_end, service_of, words};
use crate::output::{out, outln};
use crate::render;
use crate::{Failure, names};

/// `shiplane watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// A service (each environment's lane: the release in flight, else waiting, else
    /// current) or a release: SERVICE@TAG, a release id or its start.
    target: String,
    /// How often to read the store and redraw (e.g. 2s, 500ms).
    #[arg(long, default_value = WATCH_EVERY, value_parser = positive_duration)]
    every: Duration,
    /// Print one frame and exit.
    #[arg(long)]
    once: bool,
}

/// One environment's row of a frame. Everything in it is a fact of the store, so two
/// rows that compare equal need no new line (a countdown is derived when printed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub environment: String,
    pub release: Option<ReleaseId>,
    /// The release's tag and the start of its id, as `status` shows it.
    pub name: Option<String>,
    /// Its state there; none when it has not reached this environment.
    pub state: Option<StageState>,
    pub since: Option<Timestamp>,
    pub deployment_id: Option<String>,
    pub bake_until: Option<Timestamp>,
    /// Why the stage ended as it did.
    pub reason: Option<String>,
    /// The release waiting behind it in this environment, with its state.
    pub queued: Option<String>,
    /// The newest history entry in this environment: a check, a hook's answer, traffic.
    pub latest: Option<String>,
    /// A pause or alarms firing in this environment.
    pub hold: Option<String>,
}

/// What `watch` shows at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub service: String,
    /// The release followed, as `SERVICE@TAG` (or its id); none for a service's lanes.
    pub release: Option<String>,
    pub at: Timestamp,
    pub rows: Vec<Row>,
    /// Set when there is nothing left to follow: how it ended.
    pub ended: Option<String>,
}

/// What is followed.
enum Subject {
    Service,
    Release(ReleaseId, String),
}

pub async fn watch<S: ReleaseStore>(
    store: &S,
    pipeline: &Pipeline,
    args: &WatchArgs,
    json: bool,
) -> Result<(), Failure> {
    let (service, subject) = subject(store, pipeline, &args.target).await?;
    let live = !json && !args.once && render::table_width().is_some();
    let mut printed: BTreeMap<String, Row> = BTreeMap::new();
    loop {
        let frame = frame(store, service, &subject, Timestamp::now()).await?;
        if args.once {
            show(&frame, json, None);
            return Ok(());
        }
        if live {
            // Cursor home and clear: the frame redraws in place.
            out!("\x1b[H\x1b[2J");
            show(&frame, false, Some(args.every));
        } else if json {
            if frame
                .rows
                .iter()
                .any(|r| printed.get(&r.environment) != Some(r))
            {
                render::json_line(&frame);
            }
        } else {
            for row in &frame.rows {
                if printed.get(&row.environment) != Some(row) {
                    outln!("{}", line(&frame, row));
                }
            }
        }
        printed = frame
            .rows
            .iter()
            .map(|r| (r.environment.clone(), r.clone()))
            .collect();
        if let Some(ended) = &frame.ended {
            if !json {
                outln!("{ended}");
            }
            return Ok(());
        }
        tokio::time::sleep(args.every).await;
    }
}

/// The service and release `target` names: a service of the pipeline, else a release.
async fn subject<'p, S: ReleaseStore>(
    store: &S,
    pipeline: &'p Pipeline,
    target: &str,
) -> Result<(&'p Service, Subject), Failure> {
    if let Some(service) = pipeline.services.get(target)
        && !names::is_release_name(target)
    {
        return Ok((service, Subject::Service));
    }
    if !names::is_release_name(target) && !names::may_be_id_prefix(target) {
        return Err(crate::commands::unknown_service(pipeline, target));
    }
    let release = crate::commands::named(store, target).await?;
    let service = service_of(pipeline, &release)?;
    Ok((
        service,
        Subject::Release(release.id.clone(), names::display(&release)),
    ))
}

/// Reads what a frame shows: the lanes, the followed release, and the newest history.
async fn frame<S: ReleaseStore>(
    store: &S,
    service: &Service,
    subject: &Subject,
    now: Timestamp,
) -> Result<Frame, Failure> {
    let lanes = store.lanes(&service.name).await?;
    let mut cache: BTreeMap<ReleaseId, Release> = BTreeMap::new();
    let (followed, history) = match subject {
        Subject::Release(id, _) => {
            let release = store
                .release(id)
                .await?
                .ok_or_else(|| Failure::Failed(format!("release {id} is gone from the table")))?;
            cache.insert(id.clone(), release.item.clone());
            (Some(release.item), store.history_of_release(id).await?)
        }
        Subject::Service => (None, store.history_of_service(&service.name, 100).await?),
    };
    let mut rows = Vec::new();
    for stage in &service.stages {
        let env = stage.environment.as_str();
        let lane = lanes
            .iter()
            .find(|l| l.item.environment == env)
            .map_or_else(|| Lane::new(&service.name, env), |l| l.item.clone());
        let shown = match &followed {
            Some(r) => Some(r.id.clone()),
            None => lane
                .in_flight
                .clone()
                .or_else(|| lane.queued.clone())
                .or_else(|| lane.current.clone()),
        };
        for id in shown.iter().chain(lane.queued.iter()) {
            if !cache.contains_key(id)
                && let Some(r) = store.release(id).await?
            {
                cache.insert(id.clone(), r.item);
            }
        }
        rows.push(row(env, &lane, shown.as_ref(), &cache, &history));
    }
    let ended = match (&followed, subject) {
        (Some(release), Subject::Release(_, name)) => {
            release_end(release, service).map(|how| format!("{name} ended: {how}"))
        }
        _ => lanes
            .iter()
            .all(|l| l.item.in_flight.is_none() && l.item.queued.is_none())
            .then(|| {
                format!(
                    "{}: nothing in flight or waiting in any environment",
                    service.name
                )
            }),
    };
    Ok(Frame {
        service: service.name.clone(),
        release: match subject {
            Subject::Release(_, name) => Some(name.clone()),
            Subject::Service => None,
        },
        at: now,
        rows,
        ended,
    })
}

fn row(
    env: &str,
    lane: &Lane,
    shown: Option<&ReleaseId>,
    releases: &BTreeMap<ReleaseId, Release>,
    history: &[Transition],
) -> Row {
    let release = shown.and_then(|id| releases.get(id));
    let stage = release.and_then(|r| r.stages.get(env));
    let queued = lane
        .queued
        .as_ref()
        .filter(|q| Some(*q) != shown)
        .and_then(|q| releases.get(q))
        .map(|q| {
            let state = q.state_in(env).map(|s| format!(" {s}")).unwrap_or_default();
            format!("{}{state}", render::label_cell(q))
        });
    // The shown release's own newest entry here (or the lane's: a pause), never another
    // release's.
    let latest = history
        .iter()
        .rev()
        .find(|t| t.environment == env && (t.release.is_none() || t.release.as_ref() == shown))
        .map(|t| match t.detail.as_deref().filter(|d| !d.is_empty()) {
            Some(detail) => format!("{}: {detail}", t.cause),
            None => t.cause.to_string(),
        });
    let mut holds = Vec::new();
    if let Some(p) = &lane.paused {
        holds.push(format!("paused by {}", p.actor));
    }
    let firing = lane.firing_alarms();
    if !firing.is_empty() {
        holds.push(format!("{} in ALARM", firing.join(", ")));
    }
    Row {
        environment: env.to_string(),
        release: release.map(|r| r.id.clone()),
        name: release.map(render::label_cell),
        state: stage.map(Stage::state),
        since: stage.map(|s| s.since),
        deployment_id: stage.and_then(|s| s.started().map(str::to_string)),
        bake_until: stage.and_then(Stage::bake_until),
        reason: stage
            .filter(|s| s.state().is_terminal())
            .and_then(|s| s.reason.clone()),
        queued,
        latest,
        hold: (!holds.is_empty()).then(|| holds.join("; ")),
    }
}

/// A frame as a table (or one JSON document), with the time it was read.
fn show(frame: &Frame, json: bool, every: Option<Duration>) {
    if json {
        render::json_line(frame);
        return;
    }
    let what = frame.release.as_deref().unwrap_or(&frame.service);
    match every {
        Some(every) => outln!(
            "shiplane watch {what}: {} (every {}; Ctrl-C to stop)\n",
            frame.at,
            humantime::format_duration(every)
        ),
        None => outln!("{what} at {}\n", frame.at),
    }
    let mut t = render::plain_table(&[
        "ENVIRONMENT",
        "RELEASE",
        "STATE",
        "SINCE",
        "DEPLOYMENT",
        "BAKE",
        "NEXT",
        "HOLD",
        "LATEST",
    ]);
    for row in &frame.rows {
        let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
        t.add_row(vec![
            row.environment.clone(),
            dash(row.name.clone()),
            row.state.map_or_else(|| "not reached".to_string(), words),
            dash(
                row.since
                    .map(|s| render::duration(frame.at.0.saturating_sub(s.0))),
            ),
            dash(row.deployment_id.clone()),
            dash(row.bake_until.map(|u| bake_left(frame.at, u))),
            dash(row.queued.clone()),
            dash(row.hold.clone()),
            dash(row.latest.clone().or_else(|| row.reason.clone())),
        ]);
    }
    render::wrap_last_column(&mut t, render::table_width());
    outln!("{t}");
}

fn bake_left(now: Timestamp, until: Timestamp) -> String {
    if until > now {
        format!("{} left", render::duration(until.0 - now.0))
    } else {
        "over; promoting".to_string()
    }
}

/// A row that changed, as one line for a log or a pipe.
fn line(frame: &Frame, row: &Row) -> String {
    let mut parts = vec![format!(
        "{} {} {}: {} {}",
        frame.at,
        frame.service,
        row.environment,
        row.name.as_deref().unwrap_or("-"),
        row.state.map_or_else(|| "not reached".to_string(), words)
    )];
    if let Some(since) = row.since {
        parts.push(format!(
            "since {} ago",
            render::duration(frame.at.0.saturating_sub(since.0))
        ));
    }
    if let Some(d) = &row.deployment_id {
        parts.push(format!("deployment {d}"));
    }
    if let Some(until) = row.bake_until {
        parts.push(format!("bake {}", bake_left(frame.at, until)));
    }
    if let Some(reason) = &row.reason {
        parts.push(format!("why: {reason}"));
    }
    if let Some(q) = &row.queued {
        parts.push(format!("next: {q}"));
    }
    if let Some(h) = &row.hold {
        parts.push(format!("hold: {h}"));
    }
    if let Some(l) = &row.latest {
        parts.push(format!("latest: {l}"));
    }
    parts.join("; ")
}
