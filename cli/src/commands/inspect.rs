//! The commands that read and change nothing: `status`, `history`, `watch`, `wait` and
//! `metrics`.

use std::collections::BTreeMap;

use shiplane::pipeline::Pipeline;
use shiplane::release::{Lane, Release, ReleaseId};
use shiplane::store::{DynamoStore, ReleaseStore};

use super::Context;
use super::lookup::{named, service_names, stored_pipeline, valid_pipeline};
use crate::Failure;
use crate::follow::{WaitArgs, WatchArgs};
use crate::metrics::MetricsArgs;
use crate::render::{self, LaneStatus};

/// `shiplane status [SERVICE]`: per environment, what runs, what is in flight, what waits.
pub(super) async fn status(cx: &Context<'_>, only: Option<&str>) -> Result<(), Failure> {
    let store = &cx.store();
    let (stored, pipeline) = valid_pipeline(store).await?;
    let services: Vec<&shiplane::pipeline::Service> = match only {
        Some(name) => vec![pipeline.services.get(name).ok_or_else(|| {
            Failure::BadInput(format!(
                "no service \"{name}\" in pipeline version {}; services: {}",
                stored.version,
                service_names(&pipeline)
            ))
        })?],
        None => pipeline.services.values().collect(),
    };
    let mut rows = Vec::new();
    let mut cache: BTreeMap<ReleaseId, Release> = BTreeMap::new();
    for service in services {
        rows.extend(
            service_lanes(store, service, &mut cache)
                .await?
                .into_iter()
                .map(|(_, row)| row),
        );
    }
    render::status(&rows, cx.json());
    Ok(())
}

/// A service's lanes in promotion order, each as stored (an empty one where nothing has
/// arrived yet) with its status row; the releases they name are read once into `cache`.
/// What `shiplane status` prints and the dashboard draws.
pub(crate) async fn service_lanes(
    store: &DynamoStore,
    service: &shiplane::pipeline::Service,
    cache: &mut BTreeMap<ReleaseId, Release>,
) -> Result<Vec<(Lane, LaneStatus)>, Failure> {
    let lanes = store.lanes(&service.name).await?;
    let mut rows = Vec::new();
    for stage in &service.stages {
        let lane = lanes
            .iter()
            .find(|l| l.item.environment == stage.environment)
            .map(|l| l.item.clone())
            .unwrap_or_else(|| Lane::new(&service.name, &stage.environment));
        for id in shiplane::release::LaneView::referenced(&lane) {
            if !cache.contains_key(&id)
                && let Some(r) = store.release(&id).await?
            {
                cache.insert(id, r.item);
            }
        }
        let mut held_by = Vec::new();
        for watched in &stage.hold_while_alarms_in {
            for l in lanes.iter().filter(|l| &l.item.environment == watched) {
                held_by.extend(
                    l.item
                        .firing_alarms()
                        .into_iter()
                        .map(|name| format!("{name} ({watched})")),
                );
            }
        }
        let row = LaneStatus::new(lane.clone(), stage.freeze, held_by, cache);
        rows.push((lane, row));
    }
    Ok(rows)
}

/// `shiplane history SERVICE | RELEASE`: a service's newest transitions, or one release's.
pub(super) async fn history(cx: &Context<'_>, target: &str, limit: usize) -> Result<(), Failure> {
    let (store, json) = (&cx.store(), cx.json());
    let width = render::table_width();
    if crate::names::is_release_name(target) {
        return release_history(store, target, json, width).await;
    }
    let transitions = store.history_of_service(target, limit).await?;
    if transitions.is_empty() {
        let pipeline = store.pipeline().await?;
        let services: Vec<String> = pipeline
            .and_then(|p| Pipeline::from_toml(&p.source).ok())
            .map(|p| p.services.keys().cloned().collect())
            .unwrap_or_default();
        if !services.iter().any(|s| s == target) {
            if crate::names::may_be_id_prefix(target) {
                return release_history(store, target, json, width).await;
            }
            return Err(Failure::BadInput(format!(
                "no service or release \"{}\"; give a service ({}), SERVICE@TAG, or a release id (or its start) from `shiplane status`",
                shiplane::release::escaped(target),
                if services.is_empty() {
                    "none in the pipeline yet".to_string()
                } else {
                    services.join(", ")
                }
            )));
        }
    }
    let mut labels = render::Labels::new();
    for r in store.releases_of_service(target, limit.max(100)).await? {
        labels.insert(r.id.clone(), render::label_cell(&r));
    }
    for id in transitions.iter().filter_map(|t| t.release.as_ref()) {
        if !labels.contains_key(id)
            && let Some(r) = store.release(id).await?
        {
            labels.insert(id.clone(), render::label_cell(&r.item));
        }
    }
    render::service_history(target, &transitions, &labels, json, width);
    Ok(())
}

/// The history of the release an operator named.
async fn release_history(
    store: &DynamoStore,
    name: &str,
    json: bool,
    width: Option<u16>,
) -> Result<(), Failure> {
    let release = named(store, name).await?;
    let transitions = store.history_of_release(&release.id).await?;
    render::release_history(&release, &transitions, json, width);
    Ok(())
}

/// `shiplane watch`: see [`crate::follow`].
pub(super) async fn watch(cx: &Context<'_>, args: &WatchArgs) -> Result<(), Failure> {
    let store = cx.store();
    let pipeline = stored_pipeline(&store).await?;
    crate::follow::watch(&store, &pipeline, args, cx.json()).await
}

/// `shiplane wait`: see [`crate::follow`].
pub(super) async fn wait(cx: &Context<'_>, args: &WaitArgs) -> Result<(), Failure> {
    let store = cx.store();
    let pipeline = stored_pipeline(&store).await?;
    crate::follow::wait(&store, &pipeline, args, cx.json()).await
}

/// `shiplane metrics`: see [`crate::metrics`].
pub(super) async fn metrics(cx: &Context<'_>, args: &MetricsArgs) -> Result<(), Failure> {
    let store = cx.store();
    let pipeline = stored_pipeline(&store).await?;
    crate::metrics::run(&store, &pipeline, args, cx.json()).await
}
