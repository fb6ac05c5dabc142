//! Following a release: `shiplane watch` (a live view of each environment's stage, until
//! the release ends everywhere it is going) and `shiplane wait` (an exit code for a CI job,
//! like `aws deploy wait`). Both poll the store; neither changes anything.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use shiplane::pipeline::{Pipeline, Service};
use shiplane::release::{Lane, Release, ReleaseId, StageState, Timestamp, Transition};
use shiplane::store::ReleaseStore;

use crate::output::{errln, out, outln};
use crate::render;
use crate::{Failure, names};

/// How often `watch` reads the store unless told.
pub const WATCH_EVERY: &str = "2s";
/// How often `wait` reads the store unless told.
pub const WAIT_EVERY: &str = "5s";

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

/// What `wait --until` waits for, in the release's stage in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// Succeeded there: deployed and baked.
    Succeeded,
    /// Deployed there (baking, or already succeeded).
    Baking,
    /// Waiting for a person's approval there (or already past it).
    AwaitingApproval,
}

/// `shiplane wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The release: SERVICE@TAG, a release id or its start.
    release: String,
    /// The environment; default: the last of the service's route (production).
    #[arg(long)]
    env: Option<String>,
    #[arg(long, value_enum, default_value_t = Until::Succeeded)]
    until: Until,
    /// How long to wait before giving up (exit 6), e.g. 30m, 1h30m.
    #[arg(long, default_value = "30m", value_parser = positive_duration)]
    timeout: Duration,
    /// How often to read the store.
    #[arg(long, default_value = WAIT_EVERY, value_parser = positive_duration)]
    every: Duration,
}

/// A duration flag: `90s`, `15m`, `1h30m`, `500ms`; never zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("give a duration above zero, e.g. 2s".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "{e}; write a duration such as 500ms, 2s, 15m or 1h30m"
        )),
    }
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

fn service_of<'p>(pipeline: &'p Pipeline, release: &Release) -> Result<&'p Service, Failure> {
    pipeline.services.get(&release.service).ok_or_else(|| {
        Failure::Failed(format!(
            "{} is a release of {}, which the stored pipeline no longer has",
            release.id, release.service
        ))
    })
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
        state: stage.map(|s| s.state),
        since: stage.map(|s| s.since),
        deployment_id: stage.and_then(|s| s.deployment_id.clone()),
        bake_until: stage
            .filter(|s| s.state == StageState::Baking)
            .and_then(|s| s.bake_until),
        reason: stage
            .filter(|s| s.state.is_terminal())
            .and_then(|s| s.reason.clone()),
        queued,
        latest,
        hold: (!holds.is_empty()).then(|| holds.join("; ")),
    }
}

/// How a release ended everywhere it was going, or None while any stage of it can still
/// move (in flight, waiting, or a success owed its promotion to the next environment).
pub fn release_end(release: &Release, service: &Service) -> Option<String> {
    if release.stages.is_empty() || release.stages.values().any(|s| !s.state.is_terminal()) {
        return None;
    }
    let owed = release.stages.values().any(|s| {
        s.state == StageState::Succeeded
            && s.promote_to
                .as_ref()
                .is_some_and(|next| !release.stages.contains_key(next))
    });
    if owed {
        return None;
    }
    let ends: Vec<String> = service
        .stages
        .iter()
        .filter_map(|st| {
            let s = release.stages.get(&st.environment)?;
            Some(format!("{} in {}", words(s.state), st.environment))
        })
        .collect();
    Some(ends.join(", "))
}

fn words(state: StageState) -> String {
    state.as_str().replace('_', " ")
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

/// How a wait stands after one read of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Reached,
    /// It ended without reaching the state: why, in words.
    Ended(String),
    /// Not yet: where it is now, in words.
    Waiting(String),
}

/// Whether `release` has reached `until` in `env`, ended another way, or may still.
pub fn judge(release: &Release, service: &Service, env: &str, until: Until) -> Verdict {
    let name = names::display(release);
    let Some(stage) = release.stages.get(env) else {
        return match release_end(release, service) {
            Some(how) => Verdict::Ended(format!("{name} will not reach {env}: it ended {how}")),
            None => Verdict::Waiting(match release.stages.iter().max_by_key(|(_, s)| s.since) {
                Some((at, s)) => format!(
                    "{name} has not reached {env}; it is {} in {at}",
                    words(s.state)
                ),
                None => format!("{name} has not reached {env}"),
            }),
        };
    };
    let reached = match until {
        Until::Succeeded => stage.state == StageState::Succeeded,
        Until::Baking => matches!(stage.state, StageState::Baking | StageState::Succeeded),
        Until::AwaitingApproval => {
            stage.state == StageState::AwaitingApproval
                || stage.state == StageState::Succeeded
                || stage.state.is_in_flight()
                || (stage.state == StageState::Queued && stage.approved_by.is_some())
        }
    };
    if reached {
        return Verdict::Reached;
    }
    if stage.state.is_terminal() {
        let why = stage
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Verdict::Ended(format!(
            "{name} {} in {env}{why}; see `shiplane history {name}`",
            words(stage.state)
        ));
    }
    Verdict::Waiting(format!("{name} is {} in {env}", words(stage.state)))
}

pub async fn wait<S: ReleaseStore>(
    store: &S,
    pipeline: &Pipeline,
    args: &WaitArgs,
    json: bool,
) -> Result<(), Failure> {
    let release = crate::commands::named(store, &args.release).await?;
    let service = service_of(pipeline, &release)?;
    let env = match &args.env {
        Some(env) => {
            crate::commands::known_stage(pipeline, &service.name, env)?;
            env.clone()
        }
        None => service
            .stages
            .last()
            .map(|s| s.environment.clone())
            .ok_or_else(|| Failure::Failed(format!("{} has no environments", service.name)))?,
    };
    let started = Instant::now();
    let mut said = String::new();
    let mut current = release;
    loop {
        let verdict = judge(&current, service, &env, args.until);
        if let Verdict::Waiting(now) = &verdict
            && *now != said
            && !json
        {
            errln!("waiting: {now}");
            said.clone_from(now);
        }
        let waited = started.elapsed();
        let outcome = match verdict {
            Verdict::Reached => Ok(()),
            Verdict::Ended(why) => Err(Failure::Ended(why)),
            Verdict::Waiting(now) if waited >= args.timeout => Err(Failure::TimedOut(format!(
                "{now} after {}; it has not reached {} there",
                humantime::format_duration(Duration::from_secs(waited.as_secs())),
                until_words(args.until)
            ))),
            Verdict::Waiting(_) => {
                tokio::time::sleep(args.every.min(args.timeout - waited)).await;
                current = store
                    .release(&current.id)
                    .await?
                    .map(|r| r.item)
                    .ok_or_else(|| {
                        Failure::Failed(format!("release {} is gone from the table", current.id))
                    })?;
                continue;
            }
        };
        return finish(&current, &env, args.until, waited, outcome, json);
    }
}

fn until_words(until: Until) -> &'static str {
    match until {
        Until::Succeeded => "succeeded",
        Until::Baking => "baking",
        Until::AwaitingApproval => "awaiting approval",
    }
}

/// Says how the wait ended: with `--json` the final state as one document (the failure's
/// message in it, not printed again), else a line for success (the failure's message is
/// printed by its report).
fn finish(
    release: &Release,
    env: &str,
    until: Until,
    waited: Duration,
    outcome: Result<(), Failure>,
    json: bool,
) -> Result<(), Failure> {
    let name = names::display(release);
    let stage = release.stages.get(env);
    if json {
        let (result, message, code) = match &outcome {
            Ok(()) => ("reached", String::new(), 0),
            Err(f) => (f.kind(), f.message().to_string(), f.exit_code()),
        };
        render::json_line(&serde_json::json!({
            "release": release.id,
            "name": name,
            "environment": env,
            "until": until,
            "outcome": result,
            "message": message,
            "exit_code": code,
            "waited_ms": u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            "stage": stage,
        }));
        return outcome.map_err(|f| f.said());
    }
    if outcome.is_ok() {
        let now = stage.map(|s| words(s.state)).unwrap_or_default();
        let until = until_words(until);
        outln!(
            "{name} reached {until} in {env}{} (waited {})",
            if now == until {
                String::new()
            } else {
                format!(": it is {now} there")
            },
            humantime::format_duration(Duration::from_secs(waited.as_secs()))
        );
    }
    outcome
}

#[cfg(test)]
mod tests {
    use shiplane::release::{Digest, Stage};

    use super::*;

    fn service() -> Service {
        Pipeline::from_toml(include_str!("../../infra/pipeline.example.toml"))
            .unwrap()
            .services
            .remove("api")
            .unwrap()
    }

    fn release(stages: &[(&str, StageState)]) -> Release {
        let mut r = Release::new(
            ReleaseId::new(Timestamp(1)),
            "api",
            "shiplane/api",
            Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(),
            Some("v1"),
            Timestamp(1),
        );
        for (i, (env, state)) in stages.iter().enumerate() {
            let mut stage = Stage::new(*state, Timestamp(10 + i as u64));
            if *state == StageState::Succeeded {
                let next = service().next_environment(env).map(str::to_string);
                stage.promote_to = next;
            }
            r.stages.insert((*env).to_string(), stage);
        }
        r
    }

    #[test]
    fn a_release_ends_when_no_stage_can_move_and_no_promotion_is_owed() {
        use StageState::*;
        let svc = service();
        assert_eq!(release_end(&release(&[]), &svc), None, "not started");
        assert_eq!(release_end(&release(&[("dev", Baking)]), &svc), None);
        assert_eq!(
            release_end(&release(&[("dev", Succeeded)]), &svc),
            None,
            "owed its promotion to staging"
        );
        assert_eq!(
            release_end(&release(&[("dev", Succeeded), ("staging", Failed)]), &svc).as_deref(),
            Some("succeeded in dev, failed in staging")
        );
        let everywhere = release(&[
            ("dev", Succeeded),
            ("staging", Succeeded),
            ("prod", Succeeded),
        ]);
        assert_eq!(
            release_end(&everywhere, &svc).as_deref(),
            Some("succeeded in dev, succeeded in staging, succeeded in prod")
        );
    }

    #[test]
    fn wait_reaches_ends_or_keeps_waiting() {
        use StageState::*;
        let svc = service();
        let judge =
            |stages: &[(&str, StageState)], env, until| judge(&release(stages), &svc, env, until);
        assert_eq!(
            judge(&[("dev", Succeeded)], "dev", Until::Succeeded),
            Verdict::Reached
        );
        assert_eq!(
            judge(&[("dev", Baking)], "dev", Until::Baking),
            Verdict::Reached
        );
        assert_eq!(
            judge(&[("dev", Baking)], "dev", Until::Succeeded),
            Verdict::Waiting("api@v1 is baking in dev".into())
        );
        assert_eq!(
            judge(
                &[("dev", Succeeded), ("staging", AwaitingApproval)],
                "staging",
                Until::AwaitingApproval
            ),
            Verdict::Reached
        );
        assert_eq!(
            judge(&[("dev", Deploying)], "prod", Until::Succeeded),
            Verdict::Waiting("api@v1 has not reached prod; it is deploying in dev".into())
        );
        let Verdict::Ended(why) = judge(&[("dev", RolledBack)], "dev", Until::Succeeded) else {
            panic!("a rollback ends the wait");
        };
        assert!(
            why.starts_with("api@v1 rolled back in dev") && why.contains("shiplane history api@v1"),
            "{why}"
        );
        let Verdict::Ended(why) = judge(&[("dev", Failed)], "prod", Until::Succeeded) else {
            panic!("a failure before prod ends a wait for prod");
        };
        assert_eq!(why, "api@v1 will not reach prod: it ended failed in dev");
        for ended in [Failed, RolledBack, Cancelled, Superseded, Rejected] {
            assert!(
                matches!(
                    judge(
                        &[("dev", Succeeded), ("staging", ended)],
                        "staging",
                        Until::Succeeded
                    ),
                    Verdict::Ended(_)
                ),
                "{ended}"
            );
        }
    }
}
