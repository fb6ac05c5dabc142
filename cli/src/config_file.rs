//! `shiplane config validate | diff | apply`: the pipeline file against what is stored.
//!
//! Before anything is stored a person sees every problem at its `FILE:LINE:COLUMN`, each
//! service's route, what the new file changes lane by lane, and which live releases it
//! would leave behind; `apply` refuses to drop a lane with a live release unless forced.

use std::path::Path;

use serde::Serialize;
use serde_json::json;
use shiplane::pipeline::{Change, Checked, Pipeline, PipelineDiff, Problem, SettingChange};
use shiplane::release::{ReleaseId, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore, StoreError, StoredPipeline};

use crate::commands::actor_name;
use crate::output::{errln, outln};
use crate::{Failure, account};

/// The file's pipeline, validated (its problems printed as `config validate` prints them).
pub fn pipeline_of(file: &Path, json: bool) -> Result<Pipeline, Failure> {
    Ok(check(file, json, "")?.1.pipeline)
}

/// `config validate FILE`: problems, or each service's route and the warnings.
pub fn validate(file: &Path, json: bool) -> Result<(), Failure> {
    let (_, checked) = check(file, json, "")?;
    let p = &checked.pipeline;
    if json {
        print_json(&json!({
            "valid": true,
            "environments": p.environments,
            "services": p.services.keys().collect::<Vec<_>>(),
            "routes": routes(p),
            "warnings": problems_json(&checked.warnings),
        }));
        return Ok(());
    }
    let n = p.services.len();
    outln!(
        "valid: {n} service{} ({}) through {}",
        if n == 1 { "" } else { "s" },
        p.services.keys().cloned().collect::<Vec<_>>().join(", "),
        p.environments.join(" → ")
    );
    for service in p.services.values() {
        outln!("  {}: {}", service.name, p.route(service));
    }
    print_warnings(file, &checked.warnings);
    Ok(())
}

/// `config diff FILE`: what applying the file would change; [`Failure::Differs`] when it
/// changes anything, so a script can ask "is the stored pipeline this file?".
pub async fn diff(store: &DynamoStore, file: &Path, json: bool) -> Result<(), Failure> {
    let (_, checked) = check(file, json, "")?;
    let stored = stored(store).await?;
    let d = PipelineDiff::between(stored.pipeline.as_ref(), &checked.pipeline);
    let live = live_releases(store, &d).await?;
    if json {
        print_json(&json!({
            "equal": d.is_empty(),
            "stored_version": stored.file.as_ref().map(|f| f.version),
            "diff": d,
            "live_in_dropped_lanes": live,
            "warnings": problems_json(&checked.warnings),
        }));
    } else {
        print_diff(file, &stored, &d);
        for l in &live {
            outln!(
                "! {}/{} has live release {}: `shiplane config apply` refuses to drop it without --force",
                l.service,
                l.environment,
                l.release_text()
            );
        }
        print_warnings(file, &checked.warnings);
    }
    if d.is_empty() {
        Ok(())
    } else {
        Err(Failure::Differs)
    }
}

/// How `config apply` is asked to store a file.
pub struct Apply {
    /// Drop lanes with live releases anyway.
    pub force: bool,
    /// Read the blue-green stages' deployment groups first ([`account::apply_gate`]).
    pub check_account: bool,
    /// Who applies it; the AWS identity when `None`.
    pub actor: Option<String>,
    pub json: bool,
}

/// `config apply FILE`: validate, show the diff, refuse to strand a live release unless
/// forced, refuse a deployment group whose rollback cannot happen unless unchecked, then
/// store the file as the next version.
pub async fn apply(
    config: &aws_config::SdkConfig,
    store: &DynamoStore,
    file: &Path,
    how: Apply,
) -> Result<(), Failure> {
    let Apply {
        force,
        check_account,
        actor,
        json,
    } = how;
    let (source, checked) = check(file, json, "\nnothing was stored")?;
    let stored = stored(store).await?;
    if let Some(current) = stored.file.as_ref().filter(|c| c.source == source) {
        applied(current, &checked, Applied::default(), false, json);
        return Ok(());
    }
    let d = PipelineDiff::between(stored.pipeline.as_ref(), &checked.pipeline);
    let live = live_releases(store, &d).await?;
    if !live.is_empty() && !force {
        return Err(Failure::Refused(refusal(&live)));
    }
    let account = if check_account {
        account::apply_gate(config, &checked.pipeline).await?
    } else {
        Vec::new()
    };
    if !json {
        print_account(file, &account);
        print_diff(file, &stored, &d);
        print_warnings(file, &checked.warnings);
        for l in &live {
            outln!(
                "! dropped with --force: {}/{} and its live release {}; Shiplane no longer acts on it",
                l.service,
                l.environment,
                l.release_text()
            );
        }
    }
    let next = StoredPipeline {
        version: stored.file.as_ref().map_or(1, |c| c.version + 1),
        source,
        applied_at: Timestamp::now(),
        applied_by: actor_name(config, actor).await?,
    };
    match store.put_pipeline(next.clone()).await {
        Ok(()) => {
            let ours = Applied {
                diff: Some(&d),
                dropped_live: &live,
                account: check_account.then_some(account.as_slice()),
            };
            applied(&next, &checked, ours, true, json);
            Ok(())
        }
        Err(StoreError::Conflict { .. }) => Err(Failure::Failed(format!(
            "someone applied version {} at the same time; check `shiplane config diff {}` and apply again",
            next.version,
            file.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// What the account check found that does not stop the apply, said as a warning (an error
/// included: a group not made yet fails the release there until it is) or a note.
fn print_account(file: &Path, found: &[account::Finding]) {
    for f in found {
        let label = match f.severity {
            account::Severity::Note => "note",
            _ => "warning",
        };
        errln!("{}", f.labelled(label));
    }
    if !found.is_empty() {
        errln!(
            "(`shiplane doctor {}` checks the whole account)",
            file.display()
        );
    }
}

/// Reads and validates the file; every problem goes out (`FILE:LINE:COLUMN: path:
/// message`, or JSON), followed by `after` in text.
fn check(file: &Path, json: bool, after: &str) -> Result<(String, Checked), Failure> {
    let source = read_file(file)?;
    match Pipeline::check(&source) {
        Ok(checked) => Ok((source, checked)),
        Err(e) if json => {
            print_json(&json!({"valid": false, "problems": problems_json(&e.problems)}));
            Err(Failure::BadInput(String::new()))
        }
        Err(e) => {
            let n = e.problems.len();
            let mut out: Vec<String> = e.problems.iter().map(|p| placed(file, p)).collect();
            out.push(format!(
                "{}: {n} problem{}{after}",
                file.display(),
                if n == 1 { "" } else { "s" }
            ));
            Err(Failure::BadInput(out.join("\n")))
        }
    }
}

/// The file's text; one that cannot be read is bad input naming it.
fn read_file(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::BadInput(format!("{}: cannot read: {e}", file.display())))
}

/// `FILE:LINE:COLUMN: path: message`, the form editors and terminals jump from.
fn placed(file: &Path, p: &Problem) -> String {
    format!("{}:{p}", file.display())
}

fn print_warnings(file: &Path, warnings: &[Problem]) {
    for w in warnings {
        errln!("warning: {}", placed(file, w));
    }
}

fn problems_json(problems: &[Problem]) -> Vec<serde_json::Value> {
    problems
        .iter()
        .map(|p| {
            json!({
                "path": p.path,
                "message": p.message,
                "line": p.at.map(|a| a.line),
                "column": p.at.map(|a| a.column),
            })
        })
        .collect()
}

fn routes(p: &Pipeline) -> serde_json::Map<String, serde_json::Value> {
    p.services
        .values()
        .map(|s| (s.name.clone(), p.route(s).to_string().into()))
        .collect()
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(e) => errln!("error: cannot render JSON: {e}"),
    }
}

/// What is stored: the file, and its pipeline when it still validates (an older
/// Shiplane's file may not; a diff against nothing then shows the new file whole).
struct Stored {
    file: Option<StoredPipeline>,
    pipeline: Option<Pipeline>,
    /// Why `pipeline` is missing although `file` is there.
    invalid: Option<String>,
}

async fn stored(store: &DynamoStore) -> Result<Stored, Failure> {
    let file = store.pipeline().await?;
    let (pipeline, invalid) = match file.as_ref().map(|f| Pipeline::from_toml(&f.source)) {
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    Ok(Stored {
        file,
        pipeline,
        invalid,
    })
}

/// A release Shiplane is still carrying in a lane the new file drops.
#[derive(Debug, Serialize)]
struct Live {
    service: String,
    environment: String,
    release: ReleaseId,
    label: Option<String>,
    state: Option<StageState>,
}

impl Live {
    fn release_text(&self) -> String {
        let state = self.state.map(|s| format!(" {s}")).unwrap_or_default();
        match &self.label {
            Some(label) => format!("{label} ({}){state}", self.release),
            None => format!("{}{state}", self.release),
        }
    }
}

/// The releases in flight, stopping, queued or awaiting approval in each dropped lane,
/// read from the lanes in the store.
async fn live_releases(store: &DynamoStore, d: &PipelineDiff) -> Result<Vec<Live>, Failure> {
    let mut out = Vec::new();
    let mut by_service: Vec<(&str, Vec<&str>)> = Vec::new();
    for (service, env) in d.dropped_lanes() {
        match by_service.last_mut() {
            Some((s, envs)) if *s == service => envs.push(env),
            _ => by_service.push((service, vec![env])),
        }
    }
    for (service, envs) in by_service {
        for lane in store.lanes(service).await? {
            let lane = lane.item;
            if !envs.contains(&lane.environment.as_str()) {
                continue;
            }
            let mut ids = vec![&lane.in_flight, &lane.stopping, &lane.queued];
            ids.dedup();
            for id in ids.into_iter().flatten() {
                let release = store.release(id).await?.map(|r| r.item);
                out.push(Live {
                    service: lane.service.clone(),
                    environment: lane.environment.clone(),
                    release: id.clone(),
                    label: release.as_ref().map(shiplane::release::Release::label),
                    state: release.and_then(|r| r.state_in(&lane.environment)),
                });
            }
        }
    }
    Ok(out)
}

fn refusal(live: &[Live]) -> String {
    let mut out =
        String::from("the file drops lanes that have live releases, so nothing was stored:");
    for l in live {
        out.push_str(&format!(
            "\n  {}/{}: {}",
            l.service,
            l.environment,
            l.release_text()
        ));
    }
    out.push_str(
        "\nLet them finish, or end each with `shiplane cancel RELEASE ENVIRONMENT --reason TEXT`, then apply again; \
         or apply with --force to drop the lanes anyway (their deployments are not stopped, and Shiplane no longer acts on them)",
    );
    out
}

/// The diff as a person reads it: `+` added, `-` removed, `~` changed, by service and
/// environment, each service with its route.
fn print_diff(file: &Path, stored: &Stored, d: &PipelineDiff) {
    match (&stored.file, &stored.invalid) {
        (Some(f), None) => outln!(
            "--- stored pipeline version {}, applied {} by {}",
            f.version,
            f.applied_at,
            f.applied_by
        ),
        (Some(f), Some(why)) => outln!(
            "--- stored pipeline version {} no longer validates, so it is shown as nothing: {}",
            f.version,
            why.replace('\n', " ")
        ),
        (None, _) => outln!("--- nothing stored yet"),
    }
    outln!("+++ {}", file.display());
    if d.is_empty() {
        outln!("no changes");
        return;
    }
    if let Some(envs) = &d.environments {
        outln!("{}", setting_line(envs));
    }
    for s in &d.services {
        let route = match (s.change, &s.route_before, &s.route_after) {
            (Change::Removed, Some(before), _) => format!("was {before}"),
            (_, Some(before), Some(after)) if before != after => {
                format!("{after} (was {before})")
            }
            (_, _, Some(after)) => after.clone(),
            _ => String::new(),
        };
        outln!("{} {}: {route}", mark(s.change), s.service);
        // A first pipeline is all new: its routes say what it does, `--json` has the rest.
        if s.change == Change::Removed || stored.pipeline.is_none() {
            continue;
        }
        for setting in &s.settings {
            outln!("    {}", setting_line(setting));
        }
        for e in &s.environments {
            outln!("  {} {}", mark(e.change), e.environment);
            if e.change == Change::Removed {
                continue;
            }
            for setting in &e.settings {
                outln!("      {}", setting_line(setting));
            }
        }
    }
}

fn mark(change: Change) -> char {
    match change {
        Change::Added => '+',
        Change::Removed => '-',
        Change::Changed => '~',
    }
}

fn setting_line(s: &SettingChange) -> String {
    let none = String::new();
    match s.change() {
        Change::Added => format!("+ {} = {}", s.key, s.after.as_ref().unwrap_or(&none)),
        Change::Removed => format!("- {} = {}", s.key, s.before.as_ref().unwrap_or(&none)),
        Change::Changed => format!(
            "~ {}: {} → {}",
            s.key,
            s.before.as_ref().unwrap_or(&none),
            s.after.as_ref().unwrap_or(&none)
        ),
    }
}

/// What one apply did besides storing: the diff, the live releases it dropped, and what
/// the account check found (`None`: not checked).
#[derive(Default)]
struct Applied<'a> {
    diff: Option<&'a PipelineDiff>,
    dropped_live: &'a [Live],
    account: Option<&'a [account::Finding]>,
}

fn applied(
    stored: &StoredPipeline,
    checked: &Checked,
    ours: Applied<'_>,
    changed: bool,
    json: bool,
) {
    let services = &checked.pipeline.services;
    if json {
        print_json(&json!({
            "version": stored.version,
            "changed": changed,
            "applied_at": stored.applied_at.to_string(),
            "applied_by": stored.applied_by,
            "services": services.keys().collect::<Vec<_>>(),
            "routes": routes(&checked.pipeline),
            "diff": ours.diff,
            "dropped_live_releases": ours.dropped_live,
            "warnings": problems_json(&checked.warnings),
            "account_checked": ours.account.is_some(),
            "account_findings": ours.account.unwrap_or_default(),
        }));
    } else if changed {
        outln!(
            "applied pipeline version {} ({} services) as {}",
            stored.version,
            services.len(),
            stored.applied_by
        );
    } else {
        outln!(
            "unchanged: the file is pipeline version {}, applied {} by {}",
            stored.version,
            stored.applied_at,
            stored.applied_by
        );
    }
}
