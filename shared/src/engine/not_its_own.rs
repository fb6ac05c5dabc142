//! Whether a deployment Shiplane holds no record of, found by its revision's tags, is the
//! stage's own: one made before the stage last started deploying is not (a restart of the
//! revision that ran, for another service's `restarts`, or a change by hand), and taking
//! it would end the stage on it (simulation seed 541 of the world with restarts).

use super::outcomes::Found;
use super::{Engine, EngineError, Ports};
use crate::release::{Stage, StageState};
use crate::store::ReleaseStore;

impl<P: Ports> Engine<'_, P> {
    /// Why deployment `id` is not `stage`'s own, when it is not: ECS made it (its creation
    /// time known) before the stage, which recorded none yet, last entered deploying.
    pub(super) async fn not_its_own(
        &self,
        id: &str,
        found: &Found,
        stage: &Stage,
    ) -> Result<Option<String>, EngineError> {
        let Some(created) = found.created.filter(|_| stage.started().is_none()) else {
            return Ok(None);
        };
        let history = self.store.history_of_release(&found.release).await?;
        let entered = history
            .iter()
            .rfind(|t| {
                t.environment == found.environment
                    && t.to == Some(StageState::Deploying)
                    && t.from != Some(StageState::Deploying)
            })
            .map(|t| t.at);
        // To the second, as a restart looks for its own: a clock (a laptop's, for the CLI)
        // a little ahead of ECS's does not refuse the stage its own deployment.
        Ok(entered.filter(|at| created.0 < at.0 / 1000 * 1000).map(|_| {
            format!(
                "ECS deployment {id} of release {}'s revision in {} was made before the stage last started deploying: not its own (a restart, or a change by hand)",
                found.release, found.environment
            )
        }))
    }
}
