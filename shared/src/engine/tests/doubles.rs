//! Test doubles around the fakes, for what the engine does while something else goes
//! on: a store that answers nothing, one that lands another writer's commit first, and a
//! deployer that lets something happen at each deploy.

use super::*;
use crate::aws::DeployRequest;
use crate::store::{Commit, DeploymentRef, Reads, Snapshot, StoreError, Versioned};
use std::sync::{Arc, Mutex};

/// A store that answers nothing (throttled past the SDK's retries).
pub(super) struct Down;

fn down() -> crate::store::StoreError {
    crate::store::StoreError::Unavailable {
        message: "DynamoDB: ProvisionedThroughputExceededException".into(),
    }
}

impl ReleaseStore for Down {
    async fn commit(&self, _: crate::store::Commit) -> Result<(), crate::store::StoreError> {
        Err(down())
    }
    async fn release(
        &self,
        _: &ReleaseId,
    ) -> Result<Option<crate::store::Versioned<Release>>, crate::store::StoreError> {
        Err(down())
    }
    async fn lane(
        &self,
        _: &str,
        _: &str,
    ) -> Result<crate::store::Versioned<crate::release::Lane>, crate::store::StoreError> {
        Err(down())
    }
    async fn lanes(
        &self,
        _: &str,
    ) -> Result<Vec<crate::store::Versioned<crate::release::Lane>>, crate::store::StoreError> {
        Err(down())
    }
    async fn releases_of_service(
        &self,
        _: &str,
        _: usize,
    ) -> Result<Vec<Release>, crate::store::StoreError> {
        Err(down())
    }
    async fn history_of_release(
        &self,
        _: &ReleaseId,
    ) -> Result<Vec<Transition>, crate::store::StoreError> {
        Err(down())
    }
    async fn history_of_service(
        &self,
        _: &str,
        _: usize,
    ) -> Result<Vec<Transition>, crate::store::StoreError> {
        Err(down())
    }
    async fn read(
        &self,
        _: &crate::store::Reads,
        _: Timestamp,
    ) -> Result<crate::store::Snapshot, crate::store::StoreError> {
        Err(down())
    }
    fn cached_pipeline(&self) -> Option<std::sync::Arc<StoredPipeline>> {
        None
    }
    async fn settle_claim(
        &self,
        _: &str,
        _: &str,
        _: Timestamp,
    ) -> Result<(), crate::store::StoreError> {
        Err(down())
    }
    async fn claimed(
        &self,
        _: &str,
        _: Timestamp,
    ) -> Result<Option<String>, crate::store::StoreError> {
        Err(down())
    }
    async fn deployment(
        &self,
        _: &str,
    ) -> Result<Option<crate::store::DeploymentRef>, crate::store::StoreError> {
        Err(down())
    }
    async fn pipeline(&self) -> Result<Option<StoredPipeline>, crate::store::StoreError> {
        Err(down())
    }
    async fn put_pipeline(&self, _: StoredPipeline) -> Result<(), crate::store::StoreError> {
        Err(down())
    }
}

/// A store that lands `first` (another invocation's commit) just before the first
/// commit it is asked for: a write between a decision's read and its commit. It can
/// also fail every read of one deployment's reference (`unreadable`: throttled).
pub(super) struct Interleaved {
    pub(super) inner: MemoryStore,
    pub(super) first: Mutex<Option<Commit>>,
    pub(super) unreadable: Option<String>,
}

impl ReleaseStore for Interleaved {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let first = self.first.lock().unwrap().take();
        if let Some(first) = first {
            self.inner.commit(first).await.unwrap();
        }
        self.inner.commit(commit).await
    }
    async fn release(&self, id: &ReleaseId) -> Result<Option<Versioned<Release>>, StoreError> {
        self.inner.release(id).await
    }
    async fn lane(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Versioned<crate::release::Lane>, StoreError> {
        self.inner.lane(service, environment).await
    }
    async fn lanes(
        &self,
        service: &str,
    ) -> Result<Vec<Versioned<crate::release::Lane>>, StoreError> {
        self.inner.lanes(service).await
    }
    async fn releases_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Release>, StoreError> {
        self.inner.releases_of_service(service, limit).await
    }
    async fn history_of_release(&self, id: &ReleaseId) -> Result<Vec<Transition>, StoreError> {
        self.inner.history_of_release(id).await
    }
    async fn history_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        self.inner.history_of_service(service, limit).await
    }
    async fn read(&self, reads: &Reads, now: Timestamp) -> Result<Snapshot, StoreError> {
        self.inner.read(reads, now).await
    }
    fn cached_pipeline(&self) -> Option<Arc<StoredPipeline>> {
        self.inner.cached_pipeline()
    }
    async fn settle_claim(&self, key: &str, tag: &str, now: Timestamp) -> Result<(), StoreError> {
        self.inner.settle_claim(key, tag, now).await
    }
    async fn claimed(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        self.inner.claimed(key, now).await
    }
    async fn deployment(&self, deployment_id: &str) -> Result<Option<DeploymentRef>, StoreError> {
        if self.unreadable.as_deref() == Some(deployment_id) {
            return Err(StoreError::Unavailable {
                message: "DynamoDB GetItem: ProvisionedThroughputExceededException".into(),
            });
        }
        self.inner.deployment(deployment_id).await
    }
    async fn pipeline(&self) -> Result<Option<StoredPipeline>, StoreError> {
        self.inner.pipeline().await
    }
    async fn put_pipeline(&self, pipeline: StoredPipeline) -> Result<(), StoreError> {
        self.inner.put_pipeline(pipeline).await
    }
}

/// What happens at a deploy before the fake deploys: another writer's commit, or a wait
/// for the test's signal.
pub(super) trait AtDeploy: Send + Sync {
    fn at_deploy(&self, world: &World) -> impl Future<Output = ()> + Send;
}

/// A [`FakeDeployer`] of its own whose every `deploy` lets `at` happen first; everything
/// else it forwards. Its [`Meanwhile::engine`] is the world's engine deploying through it.
pub(super) struct Meanwhile<'a, A> {
    inner: FakeDeployer,
    world: &'a World,
    pub(super) at: A,
}

impl<'a, A: AtDeploy> Meanwhile<'a, A> {
    pub(super) fn new(world: &'a World, at: A) -> Meanwhile<'a, A> {
        Meanwhile {
            inner: FakeDeployer::default(),
            world,
            at,
        }
    }

    /// The world's engine, deploying through this.
    pub(super) fn engine(&self) -> Engine<'_, (MemoryStore, Self, RecordingNotifier, FakeTimer)> {
        Engine::new(
            &self.world.store,
            self,
            &self.world.notifier,
            &self.world.timer,
        )
    }

    /// How many deploys reached the fake.
    pub(super) fn deploys(&self) -> usize {
        self.inner.deploys().len()
    }
}

impl<A: AtDeploy> Deployer for Meanwhile<'_, A> {
    async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
        self.at.at_deploy(self.world).await;
        self.inner.deploy(req).await
    }

    async fn run_migration(&self, req: DeployRequest<'_>) -> Result<MigrationRun, DeployError> {
        self.inner.run_migration(req).await
    }

    async fn migration_status(
        &self,
        req: DeployRequest<'_>,
        task_arn: &str,
    ) -> Result<MigrationRun, DeployError> {
        self.inner.migration_status(req, task_arn).await
    }

    async fn deployment_status(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
    ) -> Result<DeploymentStatus, DeployError> {
        self.inner.deployment_status(req, deployment_id).await
    }

    async fn stop_deployment(
        &self,
        req: DeployRequest<'_>,
        deployment_id: &str,
        rollback: bool,
    ) -> Result<(), DeployError> {
        self.inner
            .stop_deployment(req, deployment_id, rollback)
            .await
    }

    async fn clean_up(
        &self,
        req: DeployRequest<'_>,
        keep: u32,
        protect: &[crate::release::ReleaseId],
    ) -> crate::aws::CleanUp {
        self.inner.clean_up(req, keep, protect).await
    }

    async fn restart(
        &self,
        cluster: &str,
        service: &str,
        since: crate::release::Timestamp,
    ) -> Result<String, DeployError> {
        self.inner.restart(cluster, service, since).await
    }

    async fn stop_app(&self, req: DeployRequest<'_>) -> Result<crate::aws::AppStop, DeployError> {
        self.inner.stop_app(req).await
    }

    async fn start_app(
        &self,
        req: DeployRequest<'_>,
        desired: Option<u32>,
    ) -> Result<Option<String>, DeployError> {
        self.inner.start_app(req, desired).await
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<crate::aws::Origin>, DeployError> {
        self.inner.origin(deployment_id).await
    }

    async fn ecs_origin(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> Result<Option<crate::aws::Tagged>, DeployError> {
        self.inner.ecs_origin(cluster, service, deployment_id).await
    }
}
