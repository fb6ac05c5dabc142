//! The release store: one port ([`ReleaseStore`]), a DynamoDB adapter and an in-memory fake,
//! both held to the same contract suite.
//!
//! Every change is a [`Commit`]: releases and lanes written only if their version is still
//! the one that was read, with their history items, an optional idempotency claim and
//! deployment references, all or nothing.

pub mod dynamodb;
pub mod memory;

#[cfg(any(test, feature = "testing"))]
pub mod contract;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::release::{Decision, Lane, LaneView, Release, ReleaseId, Timestamp, Transition};

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

/// An item and the version it was read at (0: it does not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub item: T,
    pub version: u64,
}

/// A stored pipeline file: the source text, so `config show` returns exactly what was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPipeline {
    pub version: u64,
    pub source: String,
    pub applied_at: Timestamp,
    pub applied_by: String,
}

/// An idempotency record: `key` is a business key (repository + digest, deployment id +
/// hook execution id, alarm + state timestamp), `value` what processing it produced. The
/// store keeps `value` as the string it is given and never reads it: the engine makes and
/// reads each kind in one place (`engine/claims.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    pub value: String,
    /// When the claim is made; an expired claim may be claimed again.
    pub at: Timestamp,
    /// When DynamoDB's TTL may delete it.
    pub expires: Timestamp,
}

/// An unexpired idempotency claim as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// What the first processing recorded (for a push: its release id), as [`Claim::value`].
    pub value: String,
    /// Tags of pushes of this digest whose processing ran to its end ([`ReleaseStore::settle_claim`]):
    /// a replay of one of them has nothing left to do.
    pub settled: Vec<String>,
}

/// A lane's key: service, then environment. Named fields instead of a pair, so that a
/// service is never taken for an environment; ordered by service first, as maps of lanes
/// are iterated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaneKey {
    pub service: String,
    pub environment: String,
}

impl LaneKey {
    pub fn new(service: impl Into<String>, environment: impl Into<String>) -> LaneKey {
        LaneKey {
            service: service.into(),
            environment: environment.into(),
        }
    }

    /// The key of `lane`.
    pub fn of(lane: &Lane) -> LaneKey {
        LaneKey::new(&lane.service, &lane.environment)
    }
}

/// `service/environment`, as messages name a lane.
impl std::fmt::Display for LaneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.service, self.environment)
    }
}

/// Items one decision needs, read together: in one round trip where the store can
/// (DynamoDB: one consistent `BatchGetItem`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// An idempotency claim, by business key.
    pub claim: Option<String>,
    /// The current pipeline: the one this store cached, revalidated against a small pointer
    /// item read in the same round trip, and loaded only when it changed.
    pub pipeline: bool,
    pub lanes: Vec<LaneKey>,
    pub releases: Vec<ReleaseId>,
}

impl Reads {
    /// Nothing to read: no round trip is made for it.
    pub fn is_empty(&self) -> bool {
        self.claim.is_none() && !self.pipeline && self.lanes.is_empty() && self.releases.is_empty()
    }
}

/// What a [`Reads`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The claim, if one is held and unexpired.
    pub claim: Option<ClaimRecord>,
    /// The current pipeline, when asked for and one was ever applied.
    pub pipeline: Option<Arc<StoredPipeline>>,
    /// Every lane asked for; one never written comes back empty at version 0.
    pub lanes: BTreeMap<LaneKey, Versioned<Lane>>,
    /// The releases asked for that exist.
    pub releases: BTreeMap<ReleaseId, Versioned<Release>>,
}

impl Snapshot {
    /// Adds the lanes and releases of `other` (a later read wins).
    pub fn absorb(&mut self, other: Snapshot) {
        self.lanes.extend(other.lanes);
        self.releases.extend(other.releases);
    }

    /// Takes in what a landed `commit` wrote, at the versions it wrote them.
    pub fn record(&mut self, commit: &Commit) {
        for r in &commit.releases {
            self.releases.insert(
                r.item.id.clone(),
                Versioned {
                    item: r.item.clone(),
                    version: r.version + 1,
                },
            );
        }
        for l in &commit.lanes {
            self.lanes.insert(
                LaneKey::of(&l.item),
                Versioned {
                    item: l.item.clone(),
                    version: l.version + 1,
                },
            );
        }
    }
}

/// `reads`, unless there is nothing to read (no round trip then).
pub async fn read_some<S: ReleaseStore>(store: &S, reads: &Reads) -> Result<Snapshot, StoreError> {
    if reads.is_empty() {
        return Ok(Snapshot::default());
    }
    // No claim is asked for, so the time does not matter.
    store.read(reads, Timestamp(0)).await
}

/// Which release and stage a CodeDeploy or ECS deployment belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRef {
    pub deployment_id: String,
    pub release: ReleaseId,
    pub service: String,
    pub environment: String,
    /// It restores the last known good: its hooks answer Succeeded without checks (it
    /// passed them when it shipped, and what it replaces is worse).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore: bool,
}

impl DeploymentRef {
    /// The same deployment of the same stage, restore or not: a restore that adopts a
    /// deployment the release already made records it again, marked as a restore.
    pub fn same_stage(&self, other: &DeploymentRef) -> bool {
        self.deployment_id == other.deployment_id
            && self.release == other.release
            && self.service == other.service
            && self.environment == other.environment
    }
}

/// An item a decision read, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKey {
    Release(ReleaseId),
    Lane(LaneKey),
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemKey::Release(id) => write!(f, "release {id}"),
            ItemKey::Lane(key) => write!(f, "lane {key}"),
        }
    }
}

/// An item a decision read but does not change: the commit lands only if it is still at
/// this version (0: still absent), so a decision never rests on a stale read (write skew).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCheck {
    pub item: ItemKey,
    pub version: u64,
}

/// Everything one decision writes, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// Items read and left unchanged, each still at the version read.
    pub checks: Vec<VersionCheck>,
    /// Releases with the version they were read at (0 for a new release).
    pub releases: Vec<Versioned<Release>>,
    /// Lanes with the version they were read at (0 for a lane never written).
    pub lanes: Vec<Versioned<Lane>>,
    pub history: Vec<Transition>,
    pub claim: Option<Claim>,
    pub deployments: Vec<DeploymentRef>,
    /// A delivery whose processing ends with this commit, marked settled on its claim in the
    /// same write ([`ReleaseStore::settle_claim`], without a call of its own). As there, a
    /// claim that is gone or expired is left alone: it never fails the commit.
    pub settle: Option<Settle>,
}

/// A delivery (the push of `tag`) settled on the claim `key`, as of `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    pub key: String,
    pub tag: String,
    pub at: Timestamp,
}

/// Why a store call failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed an item since it was read: reload and decide again.
    #[error("conflict: {what} changed since it was read; reload and retry")]
    Conflict { what: String },
    /// The business key was already processed; `value` is what that processing recorded.
    #[error("already processed: {key} (recorded {value})")]
    AlreadyClaimed { key: String, value: String },
    /// Throttling, a 5xx or the network: retry with backoff.
    #[error("store unavailable: {message}")]
    Unavailable { message: String },
    /// Permissions, a missing table, a malformed request: retrying will not help.
    #[error("store failed: {message}")]
    Failed { message: String },
    /// An item that cannot be read back (written by an incompatible version, or edited by hand).
    #[error("corrupt item {what}: {message}")]
    Corrupt { what: String, message: String },
}

impl StoreError {
    /// Whether the same call may succeed if tried again (after a reload, for conflicts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. } | StoreError::Unavailable { .. }
        )
    }
}

/// The port every handler and the CLI use to read and change release state.
pub trait ReleaseStore: Send + Sync {
    /// Writes everything in `commit` or nothing.
    fn commit(&self, commit: Commit) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn release(
        &self,
        id: &ReleaseId,
    ) -> impl Future<Output = Result<Option<Versioned<Release>>, StoreError>> + Send;

    /// A lane; one never written comes back empty at version 0.
    fn lane(
        &self,
        service: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Versioned<Lane>, StoreError>> + Send;

    /// Every written lane of a service (one query), sorted by environment name.
    fn lanes(
        &self,
        service: &str,
    ) -> impl Future<Output = Result<Vec<Versioned<Lane>>, StoreError>> + Send;

    /// A service's newest releases, newest first.
    fn releases_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Release>, StoreError>> + Send;

    /// A release's transitions, oldest first.
    fn history_of_release(
        &self,
        id: &ReleaseId,
    ) -> impl Future<Output = Result<Vec<Transition>, StoreError>> + Send;

    /// A service's newest `limit` transitions across releases and lanes, oldest first.
    fn history_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Transition>, StoreError>> + Send;

    /// Reads `reads` together (see [`Reads`]); `now` decides whether a claim has expired.
    fn read(
        &self,
        reads: &Reads,
        now: Timestamp,
    ) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;

    /// The pipeline this store last read, without I/O: lets a caller name the items of its
    /// first read before the pipeline is revalidated (by that same read).
    fn cached_pipeline(&self) -> Option<Arc<StoredPipeline>>;

    /// Records on an unexpired claim that the delivery with `tag` ran to its end, so that a
    /// replay of it answers from one read. A claim that is gone or expired is left alone.
    fn settle_claim(
        &self,
        key: &str,
        tag: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The value recorded under an unexpired idempotency key.
    fn claimed(
        &self,
        key: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    fn deployment(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<DeploymentRef>, StoreError>> + Send;

    /// The current pipeline file, if one was ever applied.
    fn pipeline(&self) -> impl Future<Output = Result<Option<StoredPipeline>, StoreError>> + Send;

    /// Stores `pipeline` as version `current + 1`; a concurrent apply makes this a Conflict.
    fn put_pipeline(
        &self,
        pipeline: StoredPipeline,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A lane view as loaded, with the versions needed to commit a decision about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedLane {
    pub view: LaneView,
    pub lane_version: u64,
    pub versions: BTreeMap<ReleaseId, u64>,
    /// The other lanes loaded with it (those a gate watches), as read. A decision reads
    /// them only from here, and its commit checks each is unchanged: a gate's alarm that
    /// fired between the read and the commit makes the decision conflict (write skew).
    pub also: BTreeMap<LaneKey, Versioned<Lane>>,
}

impl LoadedLane {
    /// Loads a lane, every release it references, and `extra` releases (the event's subject).
    pub async fn load<S: ReleaseStore>(
        store: &S,
        service: &str,
        environment: &str,
        extra: &[ReleaseId],
    ) -> Result<LoadedLane, StoreError> {
        Self::load_from(
            store,
            service,
            environment,
            extra,
            &[],
            &mut Snapshot::default(),
        )
        .await
    }

    /// Loads a lane like [`LoadedLane::load`], taking what `known` already holds (items read
    /// or written earlier in the same pass) and reading only the rest, with `also_lanes`, in
    /// at most two round trips: the lanes with the subjects, then the releases the lane
    /// references. Whatever is read is added to `known`.
    pub async fn load_from<S: ReleaseStore>(
        store: &S,
        service: &str,
        environment: &str,
        extra: &[ReleaseId],
        also_lanes: &[LaneKey],
        known: &mut Snapshot,
    ) -> Result<LoadedLane, StoreError> {
        let key = LaneKey::new(service, environment);
        let lanes: Vec<LaneKey> = std::iter::once(&key)
            .chain(also_lanes)
            .filter(|l| !known.lanes.contains_key(*l))
            .cloned()
            .collect();
        // Subjects asked for in the first read and not found are not asked for again.
        let mut asked: Vec<ReleaseId> = Vec::new();
        if !lanes.is_empty() {
            // The lanes first, with the subjects; the releases a lane references are
            // known only once it is read.
            asked = unknown(extra.iter(), known);
            let first = Reads {
                lanes,
                releases: asked.clone(),
                ..Reads::default()
            };
            known.absorb(read_some(store, &first).await?);
        }
        let lane = read_lane(known, &key)?;
        let mut also = BTreeMap::new();
        for other in also_lanes.iter().filter(|l| **l != key) {
            also.insert(other.clone(), read_lane(known, other)?);
        }
        let referenced = LaneView::referenced(&lane.item);
        let second = Reads {
            releases: unknown(referenced.iter().chain(extra), known)
                .into_iter()
                .filter(|id| !asked.contains(id))
                .collect(),
            ..Reads::default()
        };
        known.absorb(read_some(store, &second).await?);
        let mut releases = BTreeMap::new();
        let mut versions = BTreeMap::new();
        for id in referenced.iter().chain(extra) {
            match known.releases.get(id) {
                Some(r) => {
                    versions.insert(id.clone(), r.version);
                    releases.insert(id.clone(), r.item.clone());
                }
                None if extra.contains(id) => {} // a subject not stored yet: the caller adds it
                None => {
                    return Err(StoreError::Corrupt {
                        what: format!("lane {service}/{environment}"),
                        message: format!("references release {id}, which does not exist"),
                    });
                }
            }
        }
        Ok(LoadedLane {
            view: LaneView {
                lane: lane.item,
                releases,
            },
            lane_version: lane.version,
            versions,
            also,
        })
    }

    /// Adds a release not yet stored (version 0), e.g. one minted from a push.
    pub fn add_new(&mut self, release: Release) {
        self.versions.entry(release.id.clone()).or_insert(0);
        self.view.releases.insert(release.id.clone(), release);
    }

    /// The commit that records `decision`: changed releases and lane at their read versions,
    /// every other item read (the other lanes loaded with it included) checked to be
    /// unchanged, and the decision's transitions as history.
    pub fn commit_for(&self, decision: &Decision) -> Commit {
        let mut checks: Vec<VersionCheck> = self
            .versions
            .iter()
            .filter(|(id, _)| !decision.changed.contains(*id))
            .map(|(id, version)| VersionCheck {
                item: ItemKey::Release(id.clone()),
                version: *version,
            })
            .collect();
        if !decision.lane_changed {
            checks.push(VersionCheck {
                item: ItemKey::Lane(LaneKey::of(&self.view.lane)),
                version: self.lane_version,
            });
        }
        checks.extend(self.also.iter().map(|(key, read)| VersionCheck {
            item: ItemKey::Lane(key.clone()),
            version: read.version,
        }));
        let releases = decision
            .changed
            .iter()
            .filter_map(|id| {
                decision.view.releases.get(id).map(|r| Versioned {
                    item: r.clone(),
                    version: self.versions.get(id).copied().unwrap_or(0),
                })
            })
            .collect();
        let lanes = if decision.lane_changed {
            vec![Versioned {
                item: decision.view.lane.clone(),
                version: self.lane_version,
            }]
        } else {
            Vec::new()
        };
        Commit {
            checks,
            releases,
            lanes,
            history: decision.transitions.clone(),
            claim: None,
            deployments: Vec::new(),
            settle: None,
        }
    }
}
/// Lane `key` as `known` holds it after a read: a store that did not return it failed.
fn read_lane(known: &Snapshot, key: &LaneKey) -> Result<Versioned<Lane>, StoreError> {
    known
        .lanes
        .get(key)
        .cloned()
        .ok_or_else(|| StoreError::Failed {
            message: format!("the store did not return lane {key}"),
        })
}

/// The ids among `ids` that `known` does not hold, sorted, each once.
fn unknown<'a>(ids: impl Iterator<Item = &'a ReleaseId>, known: &Snapshot) -> Vec<ReleaseId> {
    let mut ids: Vec<ReleaseId> = ids
        .filter(|id| !known.releases.contains_key(*id))
        .cloned()
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
