//! `shiplane doctor [FILE]`: the deployed account against the pipeline file (or the stored
//! pipeline), per environment: what is missing or set wrong, with the fix for each.

use std::path::Path;

use serde_json::json;
use shiplane::pipeline::Pipeline;

use super::Context;
use super::lookup::valid_pipeline;
use crate::account::{AccountCheck, Finding, Reach, Report, Severity};
use crate::output::outln;
use crate::{Failure, config_file, diagnose};

/// Checks the account; [`Failure::Failed`] when anything would break a release.
pub(super) async fn doctor(
    cx: &Context<'_>,
    file: Option<&Path>,
    reach: Reach<'_>,
) -> Result<(), Failure> {
    let (pipeline, against) = match file {
        Some(file) => (
            config_file::pipeline_of(file, cx.json())?,
            file.display().to_string(),
        ),
        None => {
            let (stored, pipeline) = valid_pipeline(&cx.store()).await?;
            (
                pipeline,
                format!("stored pipeline version {}", stored.version),
            )
        }
    };
    // Without a region or credentials every read fails alike: say that once.
    if let Some(setup) = diagnose::explain_setup(cx.config).await {
        return Err(Failure::Failed(setup));
    }
    let region = cx
        .config
        .region()
        .map(ToString::to_string)
        .unwrap_or_default();
    let report = AccountCheck::new(cx.config)
        .everything(&pipeline, reach)
        .await;
    let errors = report.count(Severity::Error);
    if cx.json() {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "pipeline": against,
                "region": region,
                "ok": errors == 0,
                "checked": report.total_checked(),
                "errors": errors,
                "warnings": report.count(Severity::Warning),
                "findings": report.findings,
            }))
            .unwrap_or_default()
        );
    } else {
        print_report(&pipeline, &against, &region, &report);
    }
    if errors == 0 {
        Ok(())
    } else if cx.json() {
        Err(Failure::Failed(String::new()).said())
    } else {
        Err(Failure::Failed(format!(
            "{errors} problem{} above would break a release or keep a rollback from happening; fix each, then run `shiplane doctor` again",
            if errors == 1 { "" } else { "s" }
        )))
    }
}

/// Per environment (those of every environment first), each finding and its fix; a line
/// for an environment where nothing was found.
fn print_report(pipeline: &Pipeline, against: &str, region: &str, report: &Report) {
    outln!("checking {region} against {against}");
    let mut places: Vec<Option<&str>> = vec![None];
    places.extend(pipeline.environments.iter().map(|e| Some(e.as_str())));
    for place in places {
        let checked = report
            .checked
            .get(&place.map(str::to_string))
            .copied()
            .unwrap_or_default();
        let mut found: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.environment.as_deref() == place)
            .collect();
        found.sort_by_key(|f| f.severity);
        if checked == 0 && found.is_empty() {
            continue;
        }
        let name = place.unwrap_or("every environment");
        if found.is_empty() {
            outln!("{name}: ok ({checked} checked)");
            continue;
        }
        let counts: Vec<String> = [Severity::Error, Severity::Warning, Severity::Note]
            .into_iter()
            .filter_map(|s| {
                let n = found.iter().filter(|f| f.severity == s).count();
                (n > 0).then(|| format!("{n} {}{}", s.as_str(), if n == 1 { "" } else { "s" }))
            })
            .collect();
        outln!("{name}: {} ({checked} checked)", counts.join(", "));
        for f in found {
            outln!("  {}", f.text().replace('\n', "\n  "));
        }
    }
    let (errors, warnings) = (
        report.count(Severity::Error),
        report.count(Severity::Warning),
    );
    if errors == 0 {
        outln!(
            "ok: nothing would break a release ({} checked, {warnings} warning{})",
            report.total_checked(),
            if warnings == 1 { "" } else { "s" }
        );
    }
}
