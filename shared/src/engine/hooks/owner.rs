//! Whose deployment a hook is for: a release stage's (by its recorded reference or by the
//! description Shiplane gave it), CodeDeploy's rollback of one (answered Succeeded, never
//! held back), or someone else's.

use std::time::Duration;

use serde_json::json;
use tracing::warn;

use super::{HookInvocation, ORIGIN_TRIES, Verdict};
use crate::aws::{HookReporter, HookStatus, Origin};
use crate::engine::claims::ClaimValue;
use crate::engine::run::Work;
use crate::engine::{Engine, Ports};
use crate::release::{Event, ReleaseId, Timestamp};
use crate::store::{DeploymentRef, ReleaseStore, StoreError};

impl<P: Ports> Engine<'_, P> {
    /// The verdict on a hook of CodeDeploy's automatic rollback of deployment `original`:
    /// a deployment of its own, whose hooks are answered Succeeded, never holding a
    /// rollback back (also when the store cannot say whose deployment it rolls back).
    pub(super) async fn rollback_verdict(
        &self,
        hook: &HookInvocation,
        key: String,
        original: &str,
        now: Timestamp,
    ) -> Verdict {
        match self.store.deployment(original).await {
            Ok(Some(r)) => self.rollback_hook(hook, key, original, r, now).await,
            Ok(None) => self.foreign_hook(hook).await,
            Err(e) => {
                // A rollback all the same: not held back because the store cannot
                // say whose deployment it rolls back.
                warn!(deployment = ?hook.deployment_id, original = %original, error = ?e, "the hook of CodeDeploy's rollback without the store; answered Succeeded");
                Verdict::succeeded(None)
            }
        }
    }

    /// A hook of CodeDeploy's rollback deployment of `original`: answered Succeeded (a
    /// rollback is never held back by checks of the version it removes), once per hook
    /// execution, and recorded on the release that was rolled back.
    pub(super) async fn rollback_hook(
        &self,
        hook: &HookInvocation,
        key: String,
        original: &str,
        r: DeploymentRef,
        now: Timestamp,
    ) -> Verdict {
        let which = hook.hook.map_or("a", |h| h.appspec_name());
        let work = Work {
            claim: Some(ClaimValue::Verdict(HookStatus::Succeeded).claim(key, now)),
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
            warn!(deployment = ?hook.deployment_id, error = ?e, "the rollback's hook is answered; recording it failed");
        }
        verdict
    }

    /// A hook of a deployment neither Shiplane nor CodeDeploy's rollback of Shiplane's
    /// made: answered Failed, and a person told.
    pub(super) async fn foreign_hook(&self, hook: &HookInvocation) -> Verdict {
        let what = format!(
            "a lifecycle hook ran for deployment {}, which Shiplane did not start; answered Failed",
            hook.deployment_id
        );
        self.alert(None, &what, json!({"deploymentId": hook.deployment_id}))
            .await;
        Verdict::failed(what, None)
    }

    /// Whom a deployment belongs to: a release stage, by its recorded reference or by the
    /// description Shiplane gave it (the function that created it may have died before
    /// recording the reference: the reference to write is returned); CodeDeploy's rollback
    /// of another deployment; or someone else. GetDeployment is asked once.
    pub(super) async fn hook_target<R: HookReporter>(
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
        let known = release.item.stages.get(&env).and_then(|s| s.started());
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
}

/// Whom a hook's deployment belongs to ([`Engine::hook_target`]).
pub(super) enum HookOwner {
    Stage(HookTarget),
    /// CodeDeploy's automatic rollback of the deployment named.
    RollbackOf(String),
    /// Neither Shiplane's nor a rollback of Shiplane's.
    Other,
}

/// A release stage a hook's deployment belongs to: release, service, environment, and the reference
/// (and the revision it deploys) to record when it was found by its description only.
pub(super) type HookTarget = (
    ReleaseId,
    String,
    String,
    Option<(DeploymentRef, Option<String>)>,
);

/// [`HookReporter::origin`], asked again (after 0.2 s, then 0.4 s) while CodeDeploy is
/// throttled or unreachable.
pub(super) async fn origin_of<R: HookReporter>(
    reporter: &R,
    deployment_id: &str,
) -> Result<Option<Origin>, crate::aws::DeployError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match reporter.origin(deployment_id).await {
            Err(e) if e.retryable && tries < ORIGIN_TRIES => {
                warn!(deployment = ?deployment_id, error = ?e.message, "CodeDeploy could not say who made the deployment; asking again");
                tokio::time::sleep(Duration::from_millis(100 << tries)).await;
            }
            answer => return answer,
        }
    }
}
