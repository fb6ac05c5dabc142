//! What the dashboard shows, read from the table on every request: the rows `shiplane
//! status` prints, with what a person watching a release needs besides (the stage's times,
//! the bake's end, each watched alarm's state, the checks from history), and one release's
//! timeline. The JSON endpoints serve exactly these structures.

use std::collections::BTreeMap;

use serde::Serialize;
use shiplane::checks::CheckResult;
use shiplane::release::{Cause, Release, ReleaseId, Stage, Timestamp, Transition};
use shiplane::store::{DynamoStore, ReleaseStore};

use crate::Failure;
use crate::commands::{service_lanes, valid_pipeline};
use crate::render::LaneStatus;

/// Every service of the pipeline, lane by lane.
#[derive(Debug, Serialize)]
pub struct Board {
    pub table: String,
    pub pipeline_version: u64,
    /// The pipeline's environments in promotion order: the page's columns.
    pub environments: Vec<String>,
    pub services: Vec<ServiceBoard>,
    pub at: Timestamp,
}

/// One service's row: its lanes in promotion order.
#[derive(Debug, Serialize)]
pub struct ServiceBoard {
    pub name: String,
    pub kind: &'static str,
    /// Its stages in promotion order (a service may skip an environment).
    pub lanes: Vec<LaneBoard>,
}

/// One service in one environment.
#[derive(Debug, Serialize)]
pub struct LaneBoard {
    #[serde(flatten)]
    pub status: LaneStatus,
    /// Why it is paused, when it is.
    pub paused_reason: Option<String>,
    /// The stage of the release in flight here: since when, the bake's end, the deadline.
    pub in_flight_stage: Option<Stage>,
    /// Each alarm the stage watches, with the state the lane last saw it in.
    pub alarms: Vec<AlarmView>,
    /// The newest checks of the release in flight here (else of the one running), from
    /// its history's check records.
    pub checks: Vec<CheckView>,
}

/// A watched alarm as the lane last saw it (the state the engine's gates act on).
#[derive(Debug, Serialize)]
pub struct AlarmView {
    pub name: String,
    /// OK, ALARM, INSUFFICIENT_DATA, or None when no change has been seen yet.
    pub state: Option<&'static str>,
    pub since: Option<Timestamp>,
}

/// One lifecycle-hook check, read back from its history record.
#[derive(Debug, Serialize)]
pub struct CheckView {
    pub at: Timestamp,
    pub release: ReleaseId,
    pub name: String,
    pub passed: bool,
    pub millis: Option<u64>,
    /// The record as history holds it (the check's answer, excerpted).
    pub detail: String,
}

/// How many of a lane's newest check records the board shows.
const CHECKS_SHOWN: usize = 3;

/// Reads the whole board.
pub async fn board(store: &DynamoStore) -> Result<Board, Failure> {
    let (stored, pipeline) = valid_pipeline(store).await?;
    let mut cache: BTreeMap<ReleaseId, Release> = BTreeMap::new();
    let mut histories: BTreeMap<ReleaseId, Vec<Transition>> = BTreeMap::new();
    let mut services = Vec::new();
    for service in pipeline.services.values() {
        let mut lanes = Vec::new();
        for (lane, status) in service_lanes(store, service, &mut cache).await? {
            let stage_config = service.stage(&lane.environment);
            let mut names: Vec<String> = stage_config.map(|s| s.alarms.clone()).unwrap_or_default();
            names.extend(
                lane.alarms
                    .keys()
                    .filter(|n| !names.contains(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            let alarms = names
                .into_iter()
                .map(|name| {
                    let seen = lane.alarms.get(&name);
                    AlarmView {
                        state: seen.map(|s| s.state.as_str()),
                        since: seen.map(|s| s.at),
                        name,
                    }
                })
                .collect();
            let in_flight_stage = lane
                .in_flight
                .as_ref()
                .and_then(|id| cache.get(id))
                .and_then(|r| r.stages.get(&lane.environment))
                .cloned();
            let watched = lane.in_flight.clone().or_else(|| lane.current.clone());
            let mut checks = Vec::new();
            if let Some(id) = watched {
                if !histories.contains_key(&id) {
                    histories.insert(id.clone(), store.history_of_release(&id).await?);
                }
                checks = histories[&id]
                    .iter()
                    .filter(|t| {
                        t.environment == lane.environment
                            && matches!(t.cause, Cause::CheckPassed | Cause::CheckFailed)
                    })
                    .map(|t| check_view(&id, t))
                    .collect();
                let skip = checks.len().saturating_sub(CHECKS_SHOWN);
                checks.drain(..skip);
            }
            lanes.push(LaneBoard {
                paused_reason: lane.paused.as_ref().map(|p| p.reason.clone()),
                status,
                in_flight_stage,
                alarms,
                checks,
            });
        }
        services.push(ServiceBoard {
            name: service.name.clone(),
            kind: service.kind.as_str(),
            lanes,
        });
    }
    Ok(Board {
        table: store.table().to_string(),
        pipeline_version: stored.version,
        environments: pipeline.environments.clone(),
        services,
        at: Timestamp::now(),
    })
}

fn check_view(release: &ReleaseId, t: &Transition) -> CheckView {
    let detail = t.detail.clone().unwrap_or_default();
    let parsed = CheckResult::parse_record(&detail);
    CheckView {
        at: t.at,
        release: release.clone(),
        name: parsed
            .as_ref()
            .map_or_else(|| "check".to_string(), |(name, _, _)| name.clone()),
        passed: t.cause == Cause::CheckPassed,
        millis: parsed.map(|(_, _, ms)| ms),
        detail,
    }
}

/// One release and its whole history: the timeline page.
#[derive(Debug, Serialize)]
pub struct ReleaseTimeline {
    pub release: Release,
    /// Its service's environments in promotion order.
    pub environments: Vec<String>,
    pub history: Vec<Transition>,
}

/// Reads one release's timeline; an unknown id is bad input naming where ids are found.
pub async fn timeline(store: &DynamoStore, id: &str) -> Result<ReleaseTimeline, Failure> {
    let id = ReleaseId::parse(id).map_err(|e| Failure::BadInput(e.to_string()))?;
    let release = store.release(&id).await?.ok_or_else(|| {
        Failure::BadInput(format!(
            "no release {id} in table {}; pick one on the board",
            store.table()
        ))
    })?;
    let history = store.history_of_release(&id).await?;
    let environments = match valid_pipeline(store).await {
        Ok((_, pipeline)) => pipeline
            .services
            .get(&release.item.service)
            .map(|s| s.stages.iter().map(|st| st.environment.clone()).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    Ok(ReleaseTimeline {
        release: release.item,
        environments,
        history,
    })
}
