//! CodeDeploy lifecycle hooks: run the hook's checks and always answer, before the
//! invocation's deadline, whatever fails inside (fail closed). CodeDeploy would otherwise
//! wait an hour for the answer, then fail the deployment.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::run::Work;
use super::{Engine, EngineError, parsed, stage_of};
use crate::aws::{Deployer, HookReporter, HookStatus, Notification, Notifier, Origin, Timer};
use crate::checks::{CheckContext, CheckResult, Checker};
use crate::pipeline::LifecycleHook;
use crate::release::{Event, ReleaseId, Timestamp};
use crate::store::{Claim, Commit, DeploymentRef, Reads, ReleaseStore, StoreError};

/// Time kept back from the invocation's deadline to record and report the verdict.
pub const REPORT_RESERVE: Duration = Duration::from_secs(3);
/// Time kept back from the checks' budget to record their outcome.
const RECORD_RESERVE: Duration = Duration::from_secs(1);
/// How long past an earlier attempt's answer time its verdict is still waited for.
const ATTEMPT_GRACE: Duration = Duration::from_secs(5);
/// How often a later attempt looks for an earlier attempt's verdict.
const ATTEMPT_POLL: Duration = Duration::from_millis(250);
/// How long a hook's verdict is kept for duplicate invocations.
const HOOK_CLAIM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often a hook asks CodeDeploy who made a deployment before it takes the answer it
/// got: a throttled GetDeployment must not fail a restore, or CodeDeploy's own rollback,
/// closed.
const ORIGIN_TRIES: u32 = 3;

/// One invocation of the deploy-hook by CodeDeploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInvocation {
    pub deployment_id: String,
    pub execution_id: String,
    /// Which hook, from the alias the AppSpec named; None when invoked without one.
    pub hook: Option<LifecycleHook>,
}

/// What the hook answered, and whether the answer reached CodeDeploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookAnswer {
    pub status: HookStatus,
    /// Why it failed.
    pub reason: Option<String>,
    pub release: Option<ReleaseId>,
    /// Err: the report could not be made before the deadline, with why.
    pub reported: Result<(), String>,
}

struct Verdict {
    status: HookStatus,
    reason: Option<String>,
    release: Option<ReleaseId>,
    /// What recording it committed, announced while CodeDeploy is told.
    notes: Vec<Notification>,
}

impl Verdict {
    fn succeeded(release: Option<ReleaseId>) -> Verdict {
        Verdict {
            status: HookStatus::Succeeded,
            reason: None,
            release,
            notes: Vec::new(),
        }
    }

    fn failed(reason: impl Into<String>, release: Option<ReleaseId>) -> Verdict {
        Verdict {
            status: HookStatus::Failed,
            reason: Some(reason.into()),
            release,
            notes: Vec::new(),
        }
    }
}

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Engine<'_, S, D, N, T> {
    /// Runs the hook's checks, records them, and reports Succeeded or Failed to CodeDeploy
    /// before `deadline` (the invocation's, from the Lambda context). A second invocation
    /// for the same hook execution reports the recorded answer again and does nothing else.
    pub async fn on_hook<C: Checker, R: HookReporter>(
        &self,
        checker: &C,
        reporter: &R,
        hook: &HookInvocation,
        deadline: Instant,
        now: Timestamp,
    ) -> HookAnswer {
        let checks_end = deadline
            .checked_sub(REPORT_RESERVE)
            .unwrap_or(deadline)
            .max(Instant::now());
        let verdict = match tokio::time::timeout_at(
            checks_end,
            self.hook_verdict(checker, reporter, hook, checks_end, now),
        )
        .await
        {
            Ok(v) => v,
            Err(_) => Verdict::failed(
                "the hook ran out of time before its checks were recorded",
                None,
            ),
        };
        if let Some(why) = &verdict.reason {
            warn!(deployment = %hook.deployment_id, reason = ?why, "hook failed");
        }
        // CodeDeploy first: the announcement goes out meanwhile and never delays the answer.
        let (reported, ()) = tokio::join!(
            report_before(reporter, hook, verdict.status, deadline),
            async {
                let notes = verdict.notes;
                if tokio::time::timeout_at(deadline, self.publish(notes))
                    .await
                    .is_err()
                {
                    warn!(deployment = %hook.deployment_id, "the hook's notifications were cut off by the deadline");
                }
            }
        );
        match &reported {
            Ok(()) => {
                info!(deployment = %hook.deployment_id, execution = %hook.execution_id, status = verdict.status.as_str(), "hook answered")
            }
            Err(e) => {
                error!(deployment = %hook.deployment_id, error = ?e, "hook answer not delivered")
            }
        }
        HookAnswer {
            status: verdict.status,
            reason: verdict.reason,
            release: verdict.release,
            reported,
        }
    }

    async fn hook_verdict<C: Checker, R: HookReporter>(
        &self,
        checker: &C,
        reporter: &R,
        hook: &HookInvocation,
        checks_end: Instant,
        now: Timestamp,
    ) -> Verdict {
        let key = format!("hook#{}#{}", hook.deployment_id, hook.execution_id);
        // One round trip: the recorded answer (if any) and the pipeline, the deployment's
        // reference, and this attempt's claim on the hook execution.
        let reads = Reads {
            claim: Some(key.clone()),
            pipeline: true,
            ..Reads::default()
        };
        let (snapshot, reference, attempt) = tokio::join!(
            self.store.read(&reads, now),
            self.store.deployment(&hook.deployment_id),
            self.store.commit(attempt_claim(&key, checks_end, now))
        );
        let unavailable = |e: StoreError| format!("the release store is unavailable: {e}");
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                return self
                    .failed_unless_restore(reporter, hook, unavailable(e))
                    .await;
            }
        };
        if let Some(recorded) = &snapshot.claim {
            info!(deployment = %hook.deployment_id, recorded = %recorded.value, "hook already answered; answering the same");
            return recorded_verdict(&recorded.value);
        }
        // A restore of the last known good is never held back: no checks, and an earlier
        // attempt that died is not waited for.
        let restore = matches!(&reference, Ok(Some(r)) if r.restore);
        match attempt {
            Ok(()) => {}
            Err(StoreError::AlreadyClaimed { .. }) if restore => {}
            // Nor is CodeDeploy's own rollback (no reference, or none read: CodeDeploy
            // made it).
            Err(StoreError::AlreadyClaimed { .. })
                if !matches!(reference, Ok(Some(_)))
                    && matches!(
                        origin_of(reporter, &hook.deployment_id).await,
                        Ok(Some(Origin::RollbackOf(_)))
                    ) => {}
            Err(StoreError::AlreadyClaimed { value, .. }) => {
                let earlier_by = Timestamp(value.parse().unwrap_or(0));
                return self
                    .earlier_attempt(hook, &key, earlier_by, checks_end, now)
                    .await;
            }
            Err(e) => {
                return self
                    .failed_unless_restore(reporter, hook, unavailable(e))
                    .await;
            }
        }
        let target = match self
            .hook_target(reporter, &hook.deployment_id, reference)
            .await
        {
            Ok(HookOwner::Stage(t)) => t,
            // CodeDeploy's automatic rollback of a Shiplane deployment is a deployment of
            // its own: its hooks are answered Succeeded, never holding a rollback back.
            Ok(HookOwner::RollbackOf(original)) => {
                match self.store.deployment(&original).await {
                    Ok(Some(r)) => return self.rollback_hook(hook, key, &original, r, now).await,
                    Ok(None) => return self.foreign_hook(hook).await,
                    Err(e) => {
                        // A rollback all the same: not held back because the store cannot
                        // say whose deployment it rolls back.
                        warn!(deployment = %hook.deployment_id, original = %original, error = %e, "the hook of CodeDeploy's rollback without the store; answered Succeeded");
                        return Verdict::succeeded(None);
                    }
                }
            }
            Ok(HookOwner::Other) => return self.foreign_hook(hook).await,
            Err(e) => return self.failed_unless_restore(reporter, hook, e).await,
        };
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
        let pipeline = match parsed(snapshot.pipeline.as_ref()) {
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
        let mut records = Vec::new();
        let mut failure = None;
        let run_end = checks_end.checked_sub(RECORD_RESERVE).unwrap_or(checks_end);
        let checks = stage.target.checks().iter().filter(|c| c.hook == which);
        for check in checks.filter(|_| !restore) {
            let budget = check
                .timeout
                .min(run_end.saturating_duration_since(Instant::now()));
            let result = tokio::time::timeout(budget, checker.run(check, &ctx))
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
        let status = if failure.is_some() {
            HookStatus::Failed
        } else {
            HookStatus::Succeeded
        };
        let (found, task_definition) = found.map_or((None, None), |(r, t)| (Some(r), t));
        let work = Work {
            claim: Some(Claim {
                key,
                value: status.as_str().to_string(),
                at: now,
                expires: now.after(HOOK_CLAIM_TTL),
            }),
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
        match self.run_unannounced(&pipeline, work, now).await {
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
                warn!(deployment = %hook.deployment_id, error = %e, "a restore's hook could not be recorded; answered Succeeded");
                Verdict::succeeded(Some(release))
            }
            (Err(e), _) => Verdict::failed(
                format!("the checks could not be recorded: {e}"),
                Some(release),
            ),
        }
    }

    /// The answer when the store cannot be read or written: Failed (the checks cannot
    /// run or be recorded), unless CodeDeploy's description of the deployment says it
    /// restores the last known good, or CodeDeploy says it is its own rollback of another:
    /// neither is ever held back (simulation seed 18424: a restore failed closed three
    /// times while the store was throttled, and the bad release kept running).
    async fn failed_unless_restore<R: HookReporter>(
        &self,
        reporter: &R,
        hook: &HookInvocation,
        why: String,
    ) -> Verdict {
        match origin_of(reporter, &hook.deployment_id).await {
            Ok(Some(Origin::Release {
                release,
                restore: true,
                ..
            })) => {
                warn!(deployment = %hook.deployment_id, reason = %why, "a restore's hook without the store; answered Succeeded");
                Verdict::succeeded(Some(release))
            }
            Ok(Some(Origin::RollbackOf(original))) => {
                warn!(deployment = %hook.deployment_id, original = %original, reason = %why, "the hook of CodeDeploy's rollback without the store; answered Succeeded");
                Verdict::succeeded(None)
            }
            _ => Verdict::failed(why, None),
        }
    }

    /// A hook of CodeDeploy's rollback deployment of `original`: answered Succeeded (a
    /// rollback is never held back by checks of the version it removes), once per hook
    /// execution, and recorded on the release that was rolled back.
    async fn rollback_hook(
        &self,
        hook: &HookInvocation,
        key: String,
        original: &str,
        r: DeploymentRef,
        now: Timestamp,
    ) -> Verdict {
        let which = hook.hook.map_or("a", |h| h.appspec_name());
        let work = Work {
            claim: Some(Claim {
                key,
                value: HookStatus::Succeeded.as_str().to_string(),
                at: now,
                expires: now.after(HOOK_CLAIM_TTL),
            }),
            ..Work::event(
                &r.service,
                &r.environment,
                &r.release,
                Event::RollbackReported {
                    deployment_id: hook.deployment_id.clone(),
                    detail: format!(
                        "{which} hook of CodeDeploy's rollback deployment {} (of {original}) answered Succeeded: a rollback is never held back",
                        hook.deployment_id
                    ),
                    failed: false,
                },
            )
        };
        let mut verdict = Verdict::succeeded(Some(r.release));
        let recorded = match self.pipeline().await {
            Ok(pipeline) => match self.run_unannounced(&pipeline, work, now).await {
                (Ok(_), notes) => {
                    verdict.notes = notes;
                    Ok(())
                }
                (Err(e), _) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            warn!(deployment = %hook.deployment_id, error = %e, "the rollback's hook is answered; recording it failed");
        }
        verdict
    }

    /// A hook of a deployment neither Shiplane nor CodeDeploy's rollback of Shiplane's
    /// made: answered Failed, and a person told.
    async fn foreign_hook(&self, hook: &HookInvocation) -> Verdict {
        let what = format!(
            "a lifecycle hook ran for deployment {}, which Shiplane did not start; answered Failed",
            hook.deployment_id
        );
        self.alert(None, &what, json!({"deploymentId": hook.deployment_id}))
            .await;
        Verdict::failed(what, None)
    }

    /// An earlier attempt holds this hook execution (Lambda retries an invocation that
    /// crashed or timed out; CodeDeploy may invoke twice) and answers by `earlier_by`:
    /// waits for its verdict until this attempt's own answer time has passed, then fails
    /// closed: a check that kills its process is not run again and again while CodeDeploy
    /// waits an hour.
    async fn earlier_attempt(
        &self,
        hook: &HookInvocation,
        key: &str,
        earlier_by: Timestamp,
        checks_end: Instant,
        now: Timestamp,
    ) -> Verdict {
        warn!(deployment = %hook.deployment_id, execution = %hook.execution_id, "an earlier attempt of this hook exists; waiting for its verdict");
        let started = Instant::now();
        loop {
            let current = now.after(started.elapsed());
            match self.store.claimed(key, current).await {
                Ok(Some(recorded)) => return recorded_verdict(&recorded),
                Ok(None) => {}
                Err(e) => {
                    return Verdict::failed(format!("the release store is unavailable: {e}"), None);
                }
            }
            let waited_enough = current > earlier_by.after(ATTEMPT_GRACE);
            if waited_enough || Instant::now() + ATTEMPT_POLL >= checks_end {
                return Verdict::failed(
                    "an earlier attempt of this hook ended without answering (it crashed or ran out of time); its checks are not run again",
                    None,
                );
            }
            tokio::time::sleep(ATTEMPT_POLL).await;
        }
    }

    /// Whom a deployment belongs to: a release stage, by its recorded reference or by the
    /// description Shiplane gave it (the function that created it may have died before
    /// recording the reference: the reference to write is returned); CodeDeploy's rollback
    /// of another deployment; or someone else. GetDeployment is asked once.
    async fn hook_target<R: HookReporter>(
        &self,
        reporter: &R,
        deployment_id: &str,
        reference: Result<Option<DeploymentRef>, StoreError>,
    ) -> Result<HookOwner, String> {
        let unavailable = |e: StoreError| format!("the release store is unavailable: {e}");
        if let Some(r) = reference.map_err(unavailable)? {
            return Ok(HookOwner::Stage((
                r.release,
                r.service,
                r.environment,
                None,
            )));
        }
        let origin = origin_of(reporter, deployment_id)
            .await
            .map_err(|e| format!("CodeDeploy could not be asked about {deployment_id}: {e}"))?;
        let (id, env, task_definition) = match origin {
            Some(Origin::Release {
                release,
                environment,
                task_definition,
                ..
            }) => (release, environment, task_definition),
            Some(Origin::RollbackOf(original)) => return Ok(HookOwner::RollbackOf(original)),
            None => return Ok(HookOwner::Other),
        };
        let Some(release) = self.store.release(&id).await.map_err(unavailable)? else {
            return Ok(HookOwner::Other);
        };
        let known = release
            .item
            .stages
            .get(&env)
            .and_then(|s| s.deployment_id.as_deref());
        if known.is_some_and(|k| k != deployment_id) {
            return Ok(HookOwner::Other); // the release runs another deployment there
        }
        let found = DeploymentRef {
            deployment_id: deployment_id.to_string(),
            release: id.clone(),
            service: release.item.service.clone(),
            environment: env.clone(),
            restore: release.item.stages.get(&env).is_some_and(|s| s.redeploy),
        };
        Ok(HookOwner::Stage((
            id,
            release.item.service,
            env,
            Some((found, task_definition)),
        )))
    }

    async fn alert(&self, service: Option<&str>, what: &str, body: serde_json::Value) {
        error!(alert = ?what, "alert");
        self.publish(vec![Notification::alert(service, what, body)])
            .await;
    }
}

/// Whom a hook's deployment belongs to ([`Engine::hook_target`]).
enum HookOwner {
    Stage(HookTarget),
    /// CodeDeploy's automatic rollback of the deployment named.
    RollbackOf(String),
    /// Neither Shiplane's nor a rollback of Shiplane's.
    Other,
}

/// A release stage a hook's deployment belongs to: release, service, environment, and the reference
/// (and the revision it deploys) to record when it was found by its description only.
type HookTarget = (
    ReleaseId,
    String,
    String,
    Option<(DeploymentRef, Option<String>)>,
);

/// The claim that holds a hook execution for one attempt, until the time it must answer
/// by: a second attempt finds it taken.
fn attempt_claim(key: &str, checks_end: Instant, now: Timestamp) -> Commit {
    let answer_by = now.after(checks_end.saturating_duration_since(Instant::now()));
    Commit {
        claim: Some(Claim {
            key: format!("{key}#attempt"),
            value: answer_by.0.to_string(),
            at: now,
            expires: now.after(HOOK_CLAIM_TTL),
        }),
        ..Commit::default()
    }
}

fn recorded_verdict(recorded: &str) -> Verdict {
    match HookStatus::parse(recorded) {
        Some(HookStatus::Succeeded) => Verdict::succeeded(None),
        _ => Verdict::failed(
            "the checks failed (recorded by an earlier invocation)",
            None,
        ),
    }
}

/// Reports, retrying transient failures while time is left before `deadline`.
async fn report_before<R: HookReporter>(
    reporter: &R,
    hook: &HookInvocation,
    status: HookStatus,
    deadline: Instant,
) -> Result<(), String> {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let sent = tokio::time::timeout(
            left,
            reporter.report(&hook.deployment_id, &hook.execution_id, status),
        )
        .await;
        let pause = Duration::from_millis(100 * u64::from(attempt.min(10)));
        match sent {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if e.retryable && Instant::now() + pause < deadline => {
                warn!(attempt, error = ?e.message, "hook report failed; trying again");
                tokio::time::sleep(pause).await;
            }
            Ok(Err(e)) => return Err(e.message),
            Err(_) => return Err("no answer from CodeDeploy before the deadline".into()),
        }
    }
}

/// [`HookReporter::origin`], asked again (after 0.2 s, then 0.4 s) while CodeDeploy is
/// throttled or unreachable.
async fn origin_of<R: HookReporter>(
    reporter: &R,
    deployment_id: &str,
) -> Result<Option<Origin>, crate::aws::DeployError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match reporter.origin(deployment_id).await {
            Err(e) if e.retryable && tries < ORIGIN_TRIES => {
                warn!(deployment = %deployment_id, error = ?e.message, "CodeDeploy could not say who made the deployment; asking again");
                tokio::time::sleep(Duration::from_millis(100 << tries)).await;
            }
            answer => return answer,
        }
    }
}
