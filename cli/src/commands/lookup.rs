//! What an operator's words name, checked against the table: the stored pipeline, a
//! service, a service's stage, a release.

use shiplane::pipeline::Pipeline;
use shiplane::release::Release;
use shiplane::store::{DynamoStore, ReleaseStore, StoredPipeline};

use crate::Failure;
use crate::output::errln;

/// A service the pipeline does not have, as bad input naming the services it has.
pub(crate) fn unknown_service(pipeline: &Pipeline, name: &str) -> Failure {
    Failure::BadInput(format!(
        "no service \"{name}\" in the pipeline; services: {}",
        service_names(pipeline)
    ))
}

/// The pipeline's services, as a list for a message: "api, web".
pub(super) fn service_names(pipeline: &Pipeline) -> String {
    pipeline
        .services
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the pipeline releases `service` to `environment`; bad input naming the
/// service's environments when not.
pub(crate) fn known_stage(
    pipeline: &Pipeline,
    service: &str,
    environment: &str,
) -> Result<(), Failure> {
    let s = pipeline
        .services
        .get(service)
        .ok_or_else(|| unknown_service(pipeline, service))?;
    if s.stage(environment).is_none() {
        return Err(Failure::BadInput(format!(
            "{service} is not released to \"{environment}\"; its environments: {}",
            s.stages
                .iter()
                .map(|st| st.environment.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// The stored pipeline, validated.
pub(super) async fn stored_pipeline(store: &DynamoStore) -> Result<Pipeline, Failure> {
    Ok(valid_pipeline(store).await?.1)
}

/// The pipeline file as last applied; none yet is a failure that says how to store one.
pub(super) async fn current_pipeline(store: &DynamoStore) -> Result<StoredPipeline, Failure> {
    store.pipeline().await?.ok_or_else(|| {
        Failure::Failed(format!(
            "no pipeline in table {}; store one with `shiplane config apply FILE`",
            store.table()
        ))
    })
}

/// The release an operator named (`SERVICE@TAG`, an id or its start), with a note on
/// stderr when the name was not exact (a re-pushed tag: the newest is taken).
pub(crate) async fn named<S: ReleaseStore>(store: &S, name: &str) -> Result<Release, Failure> {
    let found = crate::names::resolve(store, name).await?;
    if let Some(note) = &found.note {
        errln!("{note}");
    }
    Ok(found.release)
}

/// The stored pipeline and what it parses to; a stored file that no longer validates is a
/// failure naming its version (what `status`, `metrics` and the dashboard read).
pub(crate) async fn valid_pipeline(
    store: &DynamoStore,
) -> Result<(StoredPipeline, Pipeline), Failure> {
    let stored = current_pipeline(store).await?;
    let pipeline = Pipeline::from_toml(&stored.source).map_err(|e| {
        Failure::Failed(format!(
            "the stored pipeline (version {}) no longer validates: {e}",
            stored.version
        ))
    })?;
    Ok((stored, pipeline))
}
