//! CodeDeploy lifecycle hooks: run the hook's checks and always answer, before the
//! invocation's deadline, whatever fails inside (fail closed). CodeDeploy would otherwise
//! wait an hour for the answer, then fail the deployment.

mod owner;
mod stage;

use std::time::Duration;

use tokio::time::Instant;
use tracing::{error, info, warn};

use super::claims::ClaimValue;
use super::{Engine, Ports};
use crate::aws::{HookReporter, HookStatus, Notification, Origin};
use crate::checks::Checker;
use crate::pipeline::LifecycleHook;
use crate::release::{ReleaseId, Timestamp};
use crate::store::{Commit, DeploymentRef, Reads, ReleaseStore, StoreError};
use owner::{HookOwner, origin_of};

/// Time kept back from the invocation's deadline to record and report the verdict.
pub const REPORT_RESERVE: Duration = Duration::from_secs(3);
/// Time kept back from the checks' budget to record their outcome.
const RECORD_RESERVE: Duration = Duration::from_secs(1);
/// How long past an earlier attempt's answer time its verdict is still waited for.
const ATTEMPT_GRACE: Duration = Duration::from_secs(5);
/// How often a later attempt looks for an earlier attempt's verdict.
const ATTEMPT_POLL: Duration = Duration::from_millis(250);
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

impl<P: Ports> Engine<'_, P> {
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
            warn!(deployment = ?hook.deployment_id, reason = ?why, "hook failed");
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
                    warn!(deployment = ?hook.deployment_id, "the hook's notifications were cut off by the deadline");
                }
            }
        );
        match &reported {
            Ok(()) => {
                info!(deployment = ?hook.deployment_id, execution = ?hook.execution_id, status = verdict.status.as_str(), "hook answered")
            }
            Err(e) => {
                error!(deployment = ?hook.deployment_id, error = ?e, "hook answer not delivered")
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
            info!(deployment = ?hook.deployment_id, recorded = %recorded.value, "hook already answered; answering the same");
            return recorded_verdict(&recorded.value);
        }
        // A restore of the last known good is never held back: no checks, and an earlier
        // attempt that died is not waited for.
        let restore = matches!(&reference, Ok(Some(r)) if r.restore);
        if let Err(refused) = attempt {
            let attempt = (key.as_str(), refused, restore, &reference);
            if let Some(verdict) = self
                .claim_refused(reporter, hook, attempt, checks_end, now)
                .await
            {
                return verdict;
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
                return self.rollback_verdict(hook, key, &original, now).await;
            }
            Ok(HookOwner::Other) => return self.foreign_hook(hook).await,
            Err(e) => return self.failed_unless_restore(reporter, hook, e).await,
        };
        let stored = snapshot.pipeline.as_ref();
        self.stage_verdict(
            checker,
            hook,
            (key, target),
            stored,
            restore,
            checks_end,
            now,
        )
        .await
    }

    /// What a hook attempt whose claim was refused answers: None to go on (a restore, or
    /// CodeDeploy's own rollback, is never held back by an earlier attempt); else the
    /// earlier attempt's verdict, or Failed when the store failed.
    async fn claim_refused<R: HookReporter>(
        &self,
        reporter: &R,
        hook: &HookInvocation,
        (key, refused, restore, reference): (
            &str,
            StoreError,
            bool,
            &Result<Option<DeploymentRef>, StoreError>,
        ),
        checks_end: Instant,
        now: Timestamp,
    ) -> Option<Verdict> {
        let unavailable = |e: StoreError| format!("the release store is unavailable: {e}");
        match refused {
            StoreError::AlreadyClaimed { .. } if restore => None,
            // Nor is CodeDeploy's own rollback (no reference, or none read: CodeDeploy
            // made it).
            StoreError::AlreadyClaimed { .. }
                if !matches!(reference, Ok(Some(_)))
                    && matches!(
                        origin_of(reporter, &hook.deployment_id).await,
                        Ok(Some(Origin::RollbackOf(_)))
                    ) =>
            {
                None
            }
            StoreError::AlreadyClaimed { value, .. } => {
                let earlier_by = ClaimValue::answer_by(&value);
                Some(
                    self.earlier_attempt(hook, key, earlier_by, checks_end, now)
                        .await,
                )
            }
            e => Some(
                self.failed_unless_restore(reporter, hook, unavailable(e))
                    .await,
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
                warn!(deployment = ?hook.deployment_id, reason = ?why, "a restore's hook without the store; answered Succeeded");
                Verdict::succeeded(Some(release))
            }
            Ok(Some(Origin::RollbackOf(original))) => {
                warn!(deployment = ?hook.deployment_id, original = %original, reason = ?why, "the hook of CodeDeploy's rollback without the store; answered Succeeded");
                Verdict::succeeded(None)
            }
            _ => Verdict::failed(why, None),
        }
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
        warn!(deployment = ?hook.deployment_id, execution = ?hook.execution_id, "an earlier attempt of this hook exists; waiting for its verdict");
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

    async fn alert(&self, service: Option<&str>, what: &str, body: serde_json::Value) {
        error!(alert = ?what, "alert");
        self.publish(vec![Notification::alert(service, what, body)])
            .await;
    }
}

/// The claim that holds a hook execution for one attempt, until the time it must answer
/// by: a second attempt finds it taken.
fn attempt_claim(key: &str, checks_end: Instant, now: Timestamp) -> Commit {
    let answer_by = now.after(checks_end.saturating_duration_since(Instant::now()));
    Commit {
        claim: Some(ClaimValue::AnswerBy(answer_by).claim(format!("{key}#attempt"), now)),
        ..Commit::default()
    }
}

/// The answer an earlier invocation recorded (`recorded`, the hook execution's claim).
fn recorded_verdict(recorded: &str) -> Verdict {
    match ClaimValue::verdict(recorded) {
        HookStatus::Succeeded => Verdict::succeeded(None),
        HookStatus::Failed => Verdict::failed(
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
