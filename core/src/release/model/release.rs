//! One pushed image of one service (Release), its tags, and the order of pushes
//! (pushed_before): the stored item that carries a stage per environment, apart from the
//! stage itself and from the lane that names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, Phase, ReleaseId, Stage, StageState, Timestamp};

/// How many tags a release keeps: a digest re-pushed under a new tag on every build must
/// not grow its item towards DynamoDB's 400 KB limit.
pub const MAX_TAGS: usize = 16;

/// One pushed image of one service, and where it has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: ReleaseId,
    pub service: String,
    /// The ECR registry host, `<account>.dkr.ecr.<region>.amazonaws.com`.
    #[serde(default)]
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    /// Tags it was pushed under, oldest first; at most [`MAX_TAGS`] (the first is kept as
    /// its label, the oldest of the others make room).
    pub tags: Vec<String>,
    pub created: Timestamp,
    /// When the image was pushed, by the event's own clock (EventBridge `time`): what
    /// orders releases of a service, whatever order their events are processed in.
    #[serde(default)]
    pub pushed_at: Timestamp,
    /// Its stage in each environment it has reached.
    #[serde(default)]
    pub stages: BTreeMap<String, Stage>,
}

impl Release {
    /// A release that has reached no environment yet.
    pub fn new(
        id: ReleaseId,
        service: &str,
        repository: &str,
        digest: Digest,
        tag: Option<&str>,
        now: Timestamp,
    ) -> Release {
        Release {
            id,
            service: service.to_string(),
            registry: String::new(),
            repository: repository.to_string(),
            digest,
            tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            created: now,
            pushed_at: now,
            stages: BTreeMap::new(),
        }
    }

    /// Adds a tag it was pushed under again; false when it already has it. Keeps at most
    /// [`MAX_TAGS`]: the first (its label) and the newest others.
    pub fn add_tag(&mut self, tag: &str) -> bool {
        if self.tags.iter().any(|t| t == tag) {
            return false;
        }
        if self.tags.len() >= MAX_TAGS {
            self.tags.remove(1);
        }
        self.tags.push(tag.to_string());
        true
    }

    /// Its state in an environment, if it reached it.
    pub fn state_in(&self, environment: &str) -> Option<StageState> {
        self.stages.get(environment).map(Stage::state)
    }

    /// `registry/repository@sha256:…`: the only way Shiplane names an image, never by tag.
    pub fn image_ref(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }

    /// A short label for people: the first tag, or the short digest.
    pub fn label(&self) -> String {
        self.tags
            .first()
            .cloned()
            .unwrap_or_else(|| self.digest.short().to_string())
    }

    /// Puts its stage in `environment` in `state` at `now`: a state it was not in starts
    /// with nothing of its own ([`Phase::fresh`]); the state it is in keeps what it has.
    pub(in crate::release) fn set_stage(
        &mut self,
        environment: &str,
        state: StageState,
        now: Timestamp,
    ) -> &mut Stage {
        let stage = self
            .stages
            .entry(environment.to_string())
            .or_insert_with(|| Stage::new(state, now));
        if stage.state() != state {
            stage.phase = Phase::fresh(state, now);
        }
        stage.since = now;
        stage
    }
}

/// Whether push `a` (its time, its digest) came before push `b`: by push time, and at the
/// same instant by digest, the greater taken as the newer. The digest says nothing about
/// which image is newer; it only makes a tie come out the same whichever event is
/// processed first, so that every delivery order ends with the same release deployed.
/// Times are the event's whole second unless ECR was asked for the image's own time,
/// which the image-push function does when two pushes may share a second.
pub fn pushed_before(a: (Timestamp, &Digest), b: (Timestamp, &Digest)) -> bool {
    a < b
}
