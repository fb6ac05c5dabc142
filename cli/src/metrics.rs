//! `shiplane metrics [SERVICE] --since 30d`: the four DORA figures of each service, from
//! its history in the table (definitions in `shiplane::metrics::dora` and
//! docs/metrics.md), as a table or `--json`.

use std::collections::HashMap;
use std::time::Duration;

use comfy_table::{Table, presets};
use serde_json::json;
use shiplane::metrics::dora::{self, Figures};
use shiplane::pipeline::Pipeline;
use shiplane::release::{ReleaseId, Timestamp, Transition};
use shiplane::store::{DynamoStore, ReleaseStore};

use crate::Failure;
use crate::output::errln;

/// The DORA figures of one service or all, over a window ending now.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// One service; every service of the pipeline when omitted.
    service: Option<String>,
    /// How far back the window reaches: 30d, 12h, 90m.
    #[arg(long, default_value = "30d")]
    since: String,
}

/// History is read newest first in pages of this many transitions, doubling, until the
/// window is covered.
const FIRST_PAGE: usize = 1_000;
/// At most this many transitions of one service are read for one window.
const MOST: usize = 256_000;

pub async fn run(
    store: &DynamoStore,
    pipeline: &Pipeline,
    args: &MetricsArgs,
    json: bool,
) -> Result<(), Failure> {
    let window = humantime::parse_duration(args.since.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::BadInput(format!(
                "--since: {:?} is not a duration; write one such as 30d, 12h or 90m",
                args.since
            ))
        })?;
    let until = Timestamp::now();
    let since = Timestamp(until.0.saturating_sub(window.as_millis() as u64));
    let services: Vec<&shiplane::pipeline::Service> = match &args.service {
        Some(name) => vec![
            pipeline
                .services
                .get(name.as_str())
                .ok_or_else(|| crate::commands::unknown_service(pipeline, name))?,
        ],
        None => pipeline.services.values().collect(),
    };
    let mut all = Vec::new();
    for service in services {
        let Some(production) = service.stages.last().map(|s| s.environment.clone()) else {
            continue;
        };
        let history = history_since(store, &service.name, since).await?;
        let mut pushed_at: HashMap<ReleaseId, Timestamp> = HashMap::new();
        for t in history.iter().filter(|t| t.environment == production) {
            if let Some(id) = &t.release
                && !pushed_at.contains_key(id)
                && let Some(r) = store.release(id).await?
            {
                pushed_at.insert(id.clone(), r.item.pushed_at);
            }
        }
        all.push(dora::figures(
            &service.name,
            &production,
            &history,
            &pushed_at,
            since,
            until,
        ));
    }
    if json {
        render_json(&all);
    } else {
        render_table(&all, &args.since);
    }
    Ok(())
}

/// A service's transitions from `since` on (and a few before: a page's worth), oldest first.
async fn history_since(
    store: &DynamoStore,
    service: &str,
    since: Timestamp,
) -> Result<Vec<Transition>, Failure> {
    let mut limit = FIRST_PAGE;
    loop {
        let history = store.history_of_service(service, limit).await?;
        let covered = history.first().is_none_or(|t| t.at < since);
        if history.len() < limit || covered || limit >= MOST {
            if history.len() >= MOST && !covered {
                eprintln!(
                    "note: {service}: only its newest {MOST} transitions were read; the figures start at {}",
                    history
                        .first()
                        .map(|t| t.at.to_string())
                        .unwrap_or_default()
                );
            }
            return Ok(history);
        }
        limit = (limit * 2).min(MOST);
    }
}

/// Seconds as people read them: `2h 5m`, `40s`.
fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) => {
            let s = s.round() as u64;
            let rounded = if s >= 3_600 { s - s % 60 } else { s };
            humantime::format_duration(Duration::from_secs(rounded)).to_string()
        }
    }
}

fn render_table(all: &[Figures], window: &str) {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(vec![
        "SERVICE",
        "PROD",
        "DEPLOYS",
        "PER DAY",
        "LEAD TIME (median)",
        "CHANGE FAILURE",
        "TIME TO RESTORE (median)",
        "UNRESTORED",
    ]);
    for f in all {
        t.add_row(vec![
            f.service.clone(),
            f.environment.clone(),
            f.deployments.to_string(),
            format!("{:.2}", f.deployments_per_day),
            duration(f.lead_time_median_s),
            f.change_failure_rate
                .map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0)),
            duration(f.time_to_restore_median_s),
            f.unrestored.to_string(),
        ]);
    }
    println!("DORA figures over the last {window} (definitions: docs/metrics.md)");
    println!("{t}");
}

fn render_json(all: &[Figures]) {
    let rows: Vec<serde_json::Value> = all
        .iter()
        .map(|f| {
            json!({
                "service": f.service,
                "environment": f.environment,
                "since": f.since.to_string(),
                "until": f.until.to_string(),
                "deployments": f.deployments,
                "deployments_per_day": f.deployments_per_day,
                "lead_time_median_seconds": f.lead_time_median_s,
                "lead_time_max_seconds": f.lead_time_max_s,
                "failed_deployments": f.failed_deployments,
                "change_failure_rate": f.change_failure_rate,
                "time_to_restore_median_seconds": f.time_to_restore_median_s,
                "unrestored": f.unrestored,
            })
        })
        .collect();
    match serde_json::to_string_pretty(&rows) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

/// The CloudWatch client the CLI's own transitions are measured through ([`start`]).
static CLOUDWATCH: std::sync::OnceLock<aws_sdk_cloudwatch::Client> = std::sync::OnceLock::new();

/// PutMetricData takes at most this many values a call.
const VALUES_PER_CALL: usize = 1_000;

/// Measures this run's transitions as the functions measure theirs (an approval's wait,
/// the deployment it starts): kept, then sent by [`publish`].
pub fn start(config: &aws_config::SdkConfig) {
    shiplane::metrics::set_sink(shiplane::metrics::Sink::Buffer(Default::default()));
    let _ = CLOUDWATCH.set(aws_sdk_cloudwatch::Client::new(config));
}

/// Sends what this run's transitions measured since the last call, in the functions'
/// namespace and dimensions. Best effort: a metric never fails an operator's command, so a
/// refusal (no `cloudwatch:PutMetricData`, say) is one warning line.
pub async fn publish() {
    let Some(client) = CLOUDWATCH.get() else {
        return;
    };
    let values = datums(&shiplane::metrics::take_buffered());
    for chunk in values.chunks(VALUES_PER_CALL) {
        let sent = client
            .put_metric_data()
            .namespace(shiplane::metrics::NAMESPACE)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await;
        if let Err(e) = sent {
            errln!(
                "warning: {} metric values not sent to CloudWatch ({}); the change is recorded. The operator needs cloudwatch:PutMetricData",
                chunk.len(),
                aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
            );
        }
    }
}

/// One PutMetricData value per metric and dimension set of each record (the sets an EMF
/// record names).
fn datums(records: &[shiplane::metrics::Record]) -> Vec<aws_sdk_cloudwatch::types::MetricDatum> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let mut out = Vec::new();
    for r in records {
        for set in r.dimension_sets() {
            let dimensions: Vec<Dimension> = r
                .dimensions
                .iter()
                .filter(|(name, _)| set.contains(name))
                .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                .collect();
            for m in &r.metrics {
                out.push(
                    MetricDatum::builder()
                        .metric_name(m.name)
                        .unit(StandardUnit::from(m.unit.as_str()))
                        .value(m.value)
                        .timestamp(DateTime::from_millis(r.timestamp.0 as i64))
                        .set_dimensions(Some(dimensions.clone()))
                        .build(),
                );
            }
        }
    }
    out
}
