//! The engine wired to in-memory fakes, for tests of the engine and of the handlers.

use crate::aws::fake::{FakeDeployer, FakeTimer, RecordingNotifier};

/// The smallest pipeline a handler test needs: one rolling service, `api` from repository
/// `shiplane/api`, in one environment, `dev`.
pub const ONE_SERVICE_PIPELINE: &str = r#"
[pipeline]
environments = ["dev"]
[services.api]
repository = "shiplane/api"
kind = "rolling"
container = "app"
[services.api.environments.dev]
cluster = "c"
service = "s"
"#;

/// The in-memory store and fakes a handler test runs against, with `pipeline` stored as
/// version 1.
pub async fn deps_with_pipeline(pipeline: &str) -> FakeDeps {
    use crate::store::ReleaseStore;
    let store = crate::store::MemoryStore::new();
    store
        .put_pipeline(crate::store::StoredPipeline {
            version: 1,
            source: pipeline.into(),
            applied_at: crate::release::Timestamp(0),
            applied_by: "test".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("store the pipeline: {e}"));
    super::Deps {
        store,
        deployer: FakeDeployer::default(),
        notifier: RecordingNotifier::default(),
        timer: FakeTimer::default(),
    }
}

/// The engine's ports, all in memory.
pub type FakePorts = (
    crate::store::MemoryStore,
    FakeDeployer,
    RecordingNotifier,
    FakeTimer,
);

/// The engine's dependencies, all in memory.
pub type FakeDeps = super::Deps<FakePorts>;
