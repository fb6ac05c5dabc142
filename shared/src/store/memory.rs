//! An in-memory [`ReleaseStore`] with the same conditional semantics as the DynamoDB one,
//! for unit tests of handlers and the core loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use std::sync::Arc;

use super::{
    ClaimRecord, Commit, DeploymentRef, ItemKey, LaneKey, Reads, ReleaseStore, Snapshot,
    StoreError, StoredPipeline, Versioned,
};
use crate::release::{Lane, Release, ReleaseId, Timestamp, Transition};

#[derive(Default)]
struct Inner {
    releases: HashMap<ReleaseId, (u64, Release)>,
    lanes: BTreeMap<LaneKey, (u64, Lane)>,
    history: Vec<Transition>,
    /// Key → (value, expires, settled tags).
    claims: HashMap<String, (String, Timestamp, Vec<String>)>,
    deployments: HashMap<String, DeploymentRef>,
    pipelines: Vec<StoredPipeline>,
    /// Writes that landed, of any kind.
    writes: u64,
}

/// A store in a mutex; each commit checks every condition before writing anything.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock can only come from a bug in this file; the data
        // is plain values and stays usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many writes landed (commits, settled claims, pipelines): a test's way to see
    /// that an input changed nothing.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

fn version_ok(current: Option<u64>, expected: u64) -> bool {
    current.unwrap_or(0) == expected
}

impl ReleaseStore for MemoryStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for c in &commit.checks {
            let current = match &c.item {
                ItemKey::Release(id) => inner.releases.get(id).map(|(v, _)| *v),
                ItemKey::Lane(key) => inner.lanes.get(key).map(|(v, _)| *v),
            };
            if !version_ok(current, c.version) {
                return Err(StoreError::Conflict {
                    what: c.item.to_string(),
                });
            }
        }
        for r in &commit.releases {
            let current = inner.releases.get(&r.item.id).map(|(v, _)| *v);
            if !version_ok(current, r.version) {
                return Err(StoreError::Conflict {
                    what: format!("release {}", r.item.id),
                });
            }
        }
        for l in &commit.lanes {
            let key = LaneKey::of(&l.item);
            if !version_ok(inner.lanes.get(&key).map(|(v, _)| *v), l.version) {
                return Err(StoreError::Conflict {
                    what: format!("lane {key}"),
                });
            }
        }
        if let Some(c) = &commit.claim
            && let Some((value, expires, _)) = inner.claims.get(&c.key)
            && *expires >= c.at
        {
            return Err(StoreError::AlreadyClaimed {
                key: c.key.clone(),
                value: value.clone(),
            });
        }
        for d in &commit.deployments {
            if let Some(existing) = inner.deployments.get(&d.deployment_id)
                && !existing.same_stage(d)
            {
                return Err(StoreError::Conflict {
                    what: format!("deployment {}", d.deployment_id),
                });
            }
        }
        for r in commit.releases {
            inner
                .releases
                .insert(r.item.id.clone(), (r.version + 1, r.item));
        }
        for l in commit.lanes {
            let key = LaneKey::of(&l.item);
            inner.lanes.insert(key, (l.version + 1, l.item));
        }
        inner.history.extend(commit.history);
        if let Some(c) = commit.claim {
            inner.claims.insert(c.key, (c.value, c.expires, Vec::new()));
        }
        if let Some(s) = commit.settle
            && let Some((_, expires, settled)) = inner.claims.get_mut(&s.key)
            && *expires >= s.at
            && !settled.contains(&s.tag)
        {
            settled.push(s.tag);
        }
        for d in commit.deployments {
            inner.deployments.insert(d.deployment_id.clone(), d);
        }
        inner.writes += 1;
        Ok(())
    }

    async fn read(&self, reads: &Reads, now: Timestamp) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot::default();
        for key in &reads.lanes {
            snapshot.lanes.insert(
                key.clone(),
                self.lane(&key.service, &key.environment).await?,
            );
        }
        for id in &reads.releases {
            if let Some(r) = self.release(id).await? {
                snapshot.releases.insert(id.clone(), r);
            }
        }
        let inner = self.lock();
        snapshot.claim = reads.claim.as_ref().and_then(|key| {
            inner
                .claims
                .get(key)
                .filter(|(_, expires, _)| *expires >= now)
                .map(|(value, _, settled)| ClaimRecord {
                    value: value.clone(),
                    settled: settled.clone(),
                })
        });
        if reads.pipeline {
            snapshot.pipeline = inner.pipelines.last().cloned().map(Arc::new);
        }
        Ok(snapshot)
    }

    fn cached_pipeline(&self) -> Option<Arc<StoredPipeline>> {
        // Nothing to save: reading is free here, so "cached" is simply the current one.
        self.lock().pipelines.last().cloned().map(Arc::new)
    }

    async fn settle_claim(&self, key: &str, tag: &str, now: Timestamp) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some((_, expires, settled)) = inner.claims.get_mut(key)
            && *expires >= now
            && !settled.iter().any(|t| t == tag)
        {
            settled.push(tag.to_string());
            inner.writes += 1;
        }
        Ok(())
    }

    async fn release(&self, id: &ReleaseId) -> Result<Option<Versioned<Release>>, StoreError> {
        Ok(self.lock().releases.get(id).map(|(v, r)| Versioned {
            item: r.clone(),
            version: *v,
        }))
    }

    async fn lane(&self, service: &str, environment: &str) -> Result<Versioned<Lane>, StoreError> {
        let key = LaneKey::new(service, environment);
        Ok(match self.lock().lanes.get(&key) {
            Some((v, l)) => Versioned {
                item: l.clone(),
                version: *v,
            },
            None => Versioned {
                item: Lane::new(service, environment),
                version: 0,
            },
        })
    }

    async fn lanes(&self, service: &str) -> Result<Vec<Versioned<Lane>>, StoreError> {
        Ok(self
            .lock()
            .lanes
            .iter()
            .filter(|(key, _)| key.service == service)
            .map(|(_, (v, l))| Versioned {
                item: l.clone(),
                version: *v,
            })
            .collect())
    }

    async fn releases_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Release>, StoreError> {
        let mut out: Vec<Release> = self
            .lock()
            .releases
            .values()
            .filter(|(_, r)| r.service == service)
            .map(|(_, r)| r.clone())
            .collect();
        out.sort_by(|a, b| b.id.cmp(&a.id));
        out.truncate(limit);
        Ok(out)
    }

    async fn history_of_release(&self, id: &ReleaseId) -> Result<Vec<Transition>, StoreError> {
        let mut out: Vec<Transition> = self
            .lock()
            .history
            .iter()
            .filter(|t| t.release.as_ref() == Some(id))
            .cloned()
            .collect();
        out.sort_by_key(|t| t.at);
        Ok(out)
    }

    async fn history_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        let mut out: Vec<Transition> = self
            .lock()
            .history
            .iter()
            .filter(|t| t.service == service)
            .cloned()
            .collect();
        out.sort_by_key(|t| t.at);
        let skip = out.len().saturating_sub(limit);
        Ok(out.split_off(skip))
    }

    async fn claimed(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .claims
            .get(key)
            .filter(|(_, expires, _)| *expires >= now)
            .map(|(v, _, _)| v.clone()))
    }

    async fn deployment(&self, deployment_id: &str) -> Result<Option<DeploymentRef>, StoreError> {
        Ok(self.lock().deployments.get(deployment_id).cloned())
    }

    async fn pipeline(&self) -> Result<Option<StoredPipeline>, StoreError> {
        Ok(self.lock().pipelines.last().cloned())
    }

    async fn put_pipeline(&self, pipeline: StoredPipeline) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let current = inner.pipelines.last().map_or(0, |p| p.version);
        if pipeline.version != current + 1 {
            return Err(StoreError::Conflict {
                what: format!("pipeline version {}", pipeline.version),
            });
        }
        inner.pipelines.push(pipeline);
        inner.writes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod contract {
    use super::MemoryStore;

    crate::store_contract_tests!(async { MemoryStore::new() });
}
