//! A hook of a stage's own deployment: the stage's checks of that hook run, within the
//! invocation's budget, and their outcome is recorded on the release.

use std::sync::Arc;

use serde_json::json;
use tokio::time::Instant;
use tracing::{info, warn};

use super::owner::HookTarget;
use super::{HookInvocation, RECORD_RESERVE, Verdict, recorded_verdict};
use crate::aws::HookStatus;
use crate::checks::{CheckContext, CheckResult, Checker};
use crate::engine::claims::ClaimValue;
use crate::engine::run::Work;
use crate::engine::{Engine, EngineError, Ports, parsed, stage_of};
use crate::pipeline::{LifecycleHook, Pipeline, StageConfig};
use crate::release::{Event, ReleaseId, Timestamp};
use crate::store::{DeploymentRef, StoreError, StoredPipeline};

impl<P: Ports> Engine<'_, P> {
    /// The verdict on a hook of a stage's deployment: the stage's checks of that hook run
    /// (none for a restore) and their outcome is recorded on the release.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn stage_verdict<C: Checker>(
        &self,
        checker: &C,
        hook: &HookInvocation,
        (key, target): (String, HookTarget),
        stored: Option<&Arc<StoredPipeline>>,
        restore: bool,
        checks_end: Instant,
        now: Timestamp,
    ) -> Verdict {
        let (release, service_name, env, found) = target;
        let restore = restore || found.as_ref().is_some_and(|(r, _)| r.restore);
        let Some(which) = hook.hook else {
            let what = format!(
                "the deploy-hook was invoked for deployment {} without a hook alias; name it as <function>:<Hook> in the AppSpec",
                hook.deployment_id
            );
            self.alert(
                Some(&service_name),
                &what,
                json!({"deploymentId": hook.deployment_id}),
            )
            .await;
            return Verdict::failed(what, Some(release));
        };
        let pipeline = match parsed(stored) {
            Ok(p) => p,
            Err(e) => return Verdict::failed(e.to_string(), Some(release)),
        };
        let Some((service, stage)) = stage_of(&pipeline, &service_name, &env) else {
            return Verdict::failed(
                format!("services.{service_name}.environments.{env} is no longer in the pipeline"),
                Some(release),
            );
        };
        let ctx = CheckContext {
            pipeline: &pipeline,
            service,
            stage,
            deployment_id: &hook.deployment_id,
        };
        let (records, failure) = run_checks(checker, which, stage, &ctx, checks_end, restore).await;
        let outcome = ChecksRun {
            records,
            failure,
            found,
            restore,
        };
        self.record_checks(
            hook,
            (key, which),
            (release, service_name, env),
            outcome,
            &pipeline,
            now,
        )
        .await
    }

    /// Records the checks' outcome on the release (with the deployment's reference when
    /// the hook found it by its description) and answers as the record says.
    pub(super) async fn record_checks(
        &self,
        hook: &HookInvocation,
        (key, which): (String, LifecycleHook),
        (release, service_name, env): (ReleaseId, String, String),
        outcome: ChecksRun,
        pipeline: &Pipeline,
        now: Timestamp,
    ) -> Verdict {
        let ChecksRun {
            records,
            failure,
            found,
            restore,
        } = outcome;
        let status = if failure.is_some() {
            HookStatus::Failed
        } else {
            HookStatus::Succeeded
        };
        let (found, task_definition) = found.map_or((None, None), |(r, t)| (Some(r), t));
        let work = Work {
            claim: Some(ClaimValue::Verdict(status).claim(key, now)),
            // Found by its description: the reference its creator never wrote.
            deployments: found.into_iter().collect(),
            ..Work::event(
                &service_name,
                &env,
                &release,
                Event::HookCompleted {
                    deployment_id: hook.deployment_id.clone(),
                    task_definition,
                    hook: which.appspec_name().to_string(),
                    checks: records,
                    failure: failure.clone(),
                },
            )
        };
        match self.run_unannounced(pipeline, work, now).await {
            (Ok(report), notes) if report.refused.is_empty() => Verdict {
                status,
                reason: failure,
                release: Some(release),
                notes,
            },
            (Ok(report), notes) => Verdict {
                notes,
                ..Verdict::failed(
                    format!(
                        "the release cannot take the hook's outcome: {}",
                        report.refused.join("; ")
                    ),
                    Some(release),
                )
            },
            // A concurrent invocation of the same hook recorded first: answer as it did.
            (Err(EngineError::Store(StoreError::AlreadyClaimed { value, .. })), _) => {
                recorded_verdict(&value)
            }
            // A restore is never held back, recorded or not: what it replaces is worse.
            (Err(e), _) if restore => {
                warn!(deployment = ?hook.deployment_id, error = ?e, "a restore's hook could not be recorded; answered Succeeded");
                Verdict::succeeded(Some(release))
            }
            (Err(e), _) => Verdict::failed(
                format!("the checks could not be recorded: {e}"),
                Some(release),
            ),
        }
    }
}

/// What a hook's checks found, with what the record of them needs.
pub(super) struct ChecksRun {
    records: Vec<(bool, String)>,
    failure: Option<String>,
    found: Option<(DeploymentRef, Option<String>)>,
    restore: bool,
}

/// Runs the stage's checks of hook `which` in order, each within its timeout and the
/// hook's budget, until the first failure (none for a restore); returns each check's
/// record and the failure.
pub(super) async fn run_checks<C: Checker>(
    checker: &C,
    which: LifecycleHook,
    stage: &StageConfig,
    ctx: &CheckContext<'_>,
    checks_end: Instant,
    restore: bool,
) -> (Vec<(bool, String)>, Option<String>) {
    let mut records = Vec::new();
    let mut failure = None;
    let run_end = checks_end.checked_sub(RECORD_RESERVE).unwrap_or(checks_end);
    let checks = stage.target.checks().iter().filter(|c| c.hook == which);
    for check in checks.filter(|_| !restore) {
        let budget = check
            .timeout
            .min(run_end.saturating_duration_since(Instant::now()));
        let result = tokio::time::timeout(budget, checker.run(check, ctx))
            .await
            .unwrap_or_else(|_| {
                CheckResult::failed(
                    budget,
                    format!("no result within {} ms", budget.as_millis()),
                )
            });
        let record = result.record(&check.name);
        info!(check = %check.name, passed = result.passed, latency_ms = result.latency.as_millis() as u64, "check");
        records.push((result.passed, record.clone()));
        if !result.passed {
            // The first failure decides; later checks would only spend the budget.
            failure = Some(record);
            break;
        }
    }
    (records, failure)
}
