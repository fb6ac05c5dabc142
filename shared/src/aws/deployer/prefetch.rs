//! The reads a service deployment starts with (the ECS service, the task definition it
//! runs, its family's latest revision), and the few kept when made ahead by
//! [`Deployer::prefetch`], so that they overlap the commit that decides to deploy.
//!
//! [`Deployer::prefetch`]: super::Deployer::prefetch

use aws_sdk_ecs::types::{Tag, TaskDefinition};

use super::adapter::AwsDeployer;
use super::naming::attempt;
use super::revisions::family_of;
use super::{DeployError, DeployRequest};
use crate::release::Release;

/// What a service deployment reads before it acts: the ECS service, the task definition
/// it runs (the base of the next revision) and its family's latest revision with tags.
#[derive(Debug, Clone)]
pub(super) struct Revisions {
    pub(super) service: aws_sdk_ecs::types::Service,
    pub(super) base: TaskDefinition,
    pub(super) latest: Option<(TaskDefinition, Vec<Tag>)>,
}

/// Reads made ahead by [`Deployer::prefetch`] kept at most, by release, environment and
/// attempt; each is used once, and only while it is fresh (the commit it overlaps takes
/// milliseconds; one whose deploy never came must not be used minutes later).
///
/// [`Deployer::prefetch`]: super::Deployer::prefetch
const PREFETCHED: usize = 4;
const PREFETCH_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// The key a prefetch is kept under: one attempt of one release in one environment.
fn prefetch_key(release: &Release, environment: &str) -> String {
    format!(
        "{}@{environment}#{}",
        release.id,
        attempt(release, environment)
    )
}

impl AwsDeployer {
    /// Reads ahead what `deploy(req)` reads before it acts, and keeps it for that deploy
    /// ([`Deployer::prefetch`]).
    ///
    /// [`Deployer::prefetch`]: super::Deployer::prefetch
    pub(super) async fn read_ahead(&self, req: DeployRequest<'_>) {
        let Some((cluster, service)) = req.stage.target.ecs_service() else {
            return; // data jobs: nothing worth reading ahead
        };
        if let Ok(revisions) = self.revisions(cluster, service, req.fresh).await {
            let key = prefetch_key(req.release, &req.stage.environment);
            let mut kept = self.prefetched();
            kept.retain(|(k, at, _)| *k != key && at.elapsed() <= PREFETCH_FRESH);
            if kept.len() >= PREFETCHED {
                kept.remove(0);
            }
            kept.push((key, std::time::Instant::now(), revisions));
        }
    }

    fn prefetched(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<(String, std::time::Instant, Revisions)>> {
        self.prefetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The reads `req`'s deployment starts with: made ahead by `prefetch` (taken, once),
    /// else made now.
    pub(super) async fn revisions_for(
        &self,
        req: &DeployRequest<'_>,
        cluster: &str,
        service: &str,
    ) -> Result<Revisions, DeployError> {
        let key = prefetch_key(req.release, &req.stage.environment);
        let ahead = {
            let mut kept = self.prefetched();
            kept.iter()
                .position(|(k, _, _)| *k == key)
                .map(|i| kept.remove(i))
                .filter(|(_, at, _)| at.elapsed() <= PREFETCH_FRESH)
                .map(|(_, _, revisions)| revisions)
        };
        match ahead {
            Some(revisions) => Ok(revisions),
            None => self.revisions(cluster, service, req.fresh).await,
        }
    }

    /// The ECS service, the task definition it runs, and (at the same time as that one)
    /// its family's latest revision, unless `fresh` (none can be this release's yet).
    async fn revisions(
        &self,
        cluster: &str,
        service: &str,
        fresh: bool,
    ) -> Result<Revisions, DeployError> {
        let current = self.ecs_service(cluster, service).await?;
        let arn = current.task_definition.clone().ok_or_else(|| {
            DeployError::permanent(format!("ECS service {service} has no task definition"))
        })?;
        let (base, latest) = match family_of(&arn) {
            Some(family) if !fresh => {
                let (base, latest) =
                    tokio::join!(self.task_definition(&arn), self.task_definition(family));
                (base?.0, Some(latest?))
            }
            _ => (self.task_definition(&arn).await?.0, None),
        };
        Ok(Revisions {
            service: current,
            base,
            latest,
        })
    }
}
