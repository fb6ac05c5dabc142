//! One decision's reads in one round trip ([`Reads`]): consistent BatchGetItems of the
//! claim, the pipeline pointer, lanes and releases, with the pipeline loaded beside them
//! when none is cached, and a cached one revalidated by its pointer.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::item::{Item, claim_record, keyed, number, versioned};
use super::keys::{self, Key};
use super::{DynamoStore, sdk_error};
use crate::release::{Lane, ReleaseId, Timestamp};
use crate::store::{LaneKey, Reads, Snapshot, StoreError, Versioned};

/// Keys per BatchGetItem (DynamoDB's limit).
const BATCH_KEYS: usize = 100;
/// Calls of one BatchGetItem while DynamoDB leaves keys unprocessed (throttling).
const BATCH_ATTEMPTS: u32 = 6;

/// What an item of a batch read was asked for as.
enum Wanted {
    Claim,
    Pointer,
    Lane(LaneKey),
    Release(ReleaseId),
}

/// The keys `reads` asks for, each with what it was asked for as; the pipeline pointer
/// only when a pipeline is cached (`pointer`).
fn wanted(reads: &Reads, pointer: bool) -> HashMap<Key, Wanted> {
    let mut wanted: HashMap<Key, Wanted> = HashMap::new();
    if let Some(key) = &reads.claim {
        wanted.insert(keys::claim(key), Wanted::Claim);
    }
    if pointer {
        wanted.insert(keys::pointer(), Wanted::Pointer);
    }
    for key in &reads.lanes {
        wanted.insert(
            keys::lane(&key.service, &key.environment),
            Wanted::Lane(key.clone()),
        );
    }
    for id in &reads.releases {
        wanted.insert(keys::release(id), Wanted::Release(id.clone()));
    }
    wanted
}

/// Puts `item`, read as `what`, in `snapshot` (the pointer's version in `pointer`).
fn record(
    snapshot: &mut Snapshot,
    pointer: &mut Option<u64>,
    what: &Wanted,
    item: &Item,
    reads: &Reads,
    now: Timestamp,
) -> Result<(), StoreError> {
    match what {
        Wanted::Claim => {
            let what = format!("claim {}", reads.claim.as_deref().unwrap_or_default());
            if let Some(claim) = claim_record(item, what, now)? {
                snapshot.claim = Some(claim);
            }
        }
        Wanted::Pointer => *pointer = Some(number(item, "version", "pipeline pointer")?),
        Wanted::Lane(key) => {
            let what = format!("lane {key}");
            snapshot.lanes.insert(key.clone(), versioned(item, &what)?);
        }
        Wanted::Release(id) => {
            let what = format!("release {id}");
            snapshot
                .releases
                .insert(id.clone(), versioned(item, &what)?);
        }
    }
    Ok(())
}

impl DynamoStore {
    /// [`ReleaseStore::read`]: every item `reads` asks for, in one round trip where it can.
    ///
    /// [`ReleaseStore::read`]: crate::store::ReleaseStore::read
    pub(super) async fn read_items(
        &self,
        reads: &Reads,
        now: Timestamp,
    ) -> Result<Snapshot, StoreError> {
        let cached = self.pipeline.get().filter(|_| reads.pipeline);
        let wanted = wanted(reads, cached.is_some());
        // Without a cached pipeline, the pipeline is loaded beside the batch, not after it.
        let load_beside = reads.pipeline && cached.is_none();
        let batch_keys: Vec<Item> = wanted.keys().map(|key| keyed(key.clone())).collect();
        let (items, loaded) = tokio::join!(
            async {
                if batch_keys.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.batch_get(batch_keys).await
                }
            },
            async {
                if load_beside {
                    self.load_pipeline().await
                } else {
                    Ok(None)
                }
            }
        );
        let (items, loaded) = (items?, loaded?);
        let mut snapshot = Snapshot {
            pipeline: loaded,
            ..Snapshot::default()
        };
        for key in &reads.lanes {
            snapshot.lanes.insert(
                key.clone(),
                Versioned {
                    item: Lane::new(&key.service, &key.environment),
                    version: 0,
                },
            );
        }
        let mut pointer = None;
        for item in items {
            let text = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            let Some(what) = wanted.get(&(text("pk"), text("sk"))) else {
                continue;
            };
            record(&mut snapshot, &mut pointer, what, &item, reads, now)?;
        }
        if let Some(cached) = cached {
            snapshot.pipeline = match pointer {
                Some(version) if version == cached.version => Some(cached),
                // Changed, or a table whose pipeline predates the pointer: read it again.
                _ => self.load_pipeline().await?,
            };
        }
        Ok(snapshot)
    }

    /// Reads `keys` with consistent BatchGetItems, at most [`BATCH_KEYS`] per call, calling
    /// again for the keys DynamoDB leaves unprocessed (it does under throttling).
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_KEYS) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                if attempt > BATCH_ATTEMPTS {
                    return Err(StoreError::Unavailable {
                        message: format!(
                            "DynamoDB left {} keys unprocessed after {BATCH_ATTEMPTS} BatchGetItem calls",
                            pending.len()
                        ),
                    });
                }
                if attempt > 1 {
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Failed {
                        message: e.to_string(),
                    })?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }
}
