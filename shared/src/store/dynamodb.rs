//! The DynamoDB adapter: one table, string keys `pk`/`sk`, one GSI (`gsi1`).
//!
//! | item        | pk                          | sk                                  | gsi1pk                      | gsi1sk            |
//! |-------------|-----------------------------|-------------------------------------|-----------------------------|-------------------|
//! | release     | `RELEASE#<id>`              | `RELEASE`                           | `SERVICE#<svc>#RELEASES`    | `<id>`            |
//! | lane        | `SERVICE#<svc>`             | `LANE#<env>`                        |                             |                   |
//! | history     | `RELEASE#<id>` or `LANE#<svc>#<env>` | `HISTORY#<at>#<commit>#<n>` | `SERVICE#<svc>#HISTORY`     | `<at>#<commit>#<n>` |
//! | claim       | `CLAIM#<business key>`      | `CLAIM`                             |                             |                   |
//! | deployment  | `DEPLOYMENT#<id>`           | `DEPLOYMENT`                        |                             |                   |
//! | pipeline    | `PIPELINE`                  | `VERSION#<0000000001>` (+ `#PART#<k>`) |                          |                   |
//! | pointer     | `PIPELINE`                  | `CURRENT`                           |                             |                   |
//!
//! The pointer holds the current pipeline's `version` only: a reader that cached that
//! version revalidates it with a key read in the batch it makes anyway (see [`Reads`]).
//! Releases and lanes carry `version` (N) and are written only with `version = :read`
//! (or `attribute_not_exists(pk)` for version 0). Documents are JSON in `doc`. Claims carry
//! `ttl` (epoch seconds) for DynamoDB's TTL and `expires_ms` for exact expiry checks.
//! Every read is a GetItem, a BatchGetItem or a Query; nothing scans.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    ClaimRecord, Commit, DeploymentRef, ItemKey, LaneKey, Reads, ReleaseStore, Settle, Snapshot,
    StoreError, StoredPipeline, Versioned,
};
use crate::release::{Lane, Release, ReleaseId, Timestamp, Transition};

const GSI1: &str = "gsi1";
/// Bytes of pipeline source per item: well under DynamoDB's 400 KB item limit.
const PIPELINE_PART_BYTES: usize = 300_000;
/// Parts of one pipeline version, all written in one transaction (at most 100 items).
const MAX_PIPELINE_PARTS: usize = 90;
/// Keys per BatchGetItem (DynamoDB's limit).
const BATCH_KEYS: usize = 100;
/// Calls of one BatchGetItem while DynamoDB leaves keys unprocessed (throttling).
const BATCH_ATTEMPTS: u32 = 6;
/// The sort key of the pipeline pointer item.
const POINTER_SK: &str = "CURRENT";

/// A delivery is settled only on a claim still held and unexpired (`:now`).
const SETTLE_CONDITION: &str = "attribute_exists(pk) AND expires_ms >= :now";

/// Whether a cancelled transaction failed on the item at `index` alone (a condition of its
/// own), every other item having passed.
fn only_failed_at(
    e: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
    index: usize,
) -> bool {
    let failed = |code: Option<&str>| !matches!(code, None | Some("None"));
    e.cancellation_reasons()
        .iter()
        .enumerate()
        .all(|(i, r)| (i == index) == failed(r.code()))
        && e.cancellation_reasons().len() > index
}

/// `text` in pieces of at most `max` bytes, cut on character boundaries.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    out.push(rest);
    out
}

/// A pipeline version from its head item and parts, in sort-key order.
fn pipeline_from_parts(items: &[Item]) -> Result<StoredPipeline, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        what: "pipeline".into(),
        message: message.to_string(),
    };
    let head = items.first().ok_or_else(|| corrupt("no head item"))?;
    let parts = usize::try_from(number(head, "parts", "pipeline")?).unwrap_or(usize::MAX);
    if items.len() != parts {
        return Err(corrupt(&format!("{} of {parts} parts found", items.len())));
    }
    let mut source = String::new();
    for item in items {
        source.push_str(
            item.get("chunk")
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| corrupt("a part without its chunk"))?,
        );
    }
    Ok(StoredPipeline {
        version: number(head, "version", "pipeline")?,
        source,
        applied_at: Timestamp(number(head, "applied_at", "pipeline")?),
        applied_by: head
            .get("applied_by")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default(),
    })
}
type Item = HashMap<String, AttributeValue>;

/// The pipeline a process read last, shared by the clones of one store.
#[derive(Clone, Default)]
struct PipelineCache(Arc<Mutex<Option<Arc<StoredPipeline>>>>);

impl PipelineCache {
    fn get(&self) -> Option<Arc<StoredPipeline>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, pipeline: Option<Arc<StoredPipeline>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = pipeline;
    }
}

impl std::fmt::Debug for PipelineCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PipelineCache({:?})", self.get().map(|p| p.version))
    }
}

/// A [`ReleaseStore`] on one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: crate::sdk::OnFirstUse<Client>,
    table: String,
    pipeline: PipelineCache,
}

/// What an item of a batch read was asked for as.
enum Wanted {
    Claim,
    Pointer,
    Lane(LaneKey),
    Release(ReleaseId),
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn release_pk(id: &ReleaseId) -> String {
    format!("RELEASE#{id}")
}

fn keys(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn to_doc<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| StoreError::Failed {
            message: format!("cannot serialise item: {e}"),
        })
}

fn from_doc<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        what: what.to_string(),
        message,
    };
    let doc = item
        .get("doc")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| corrupt("no doc attribute".into()))?;
    serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))
}

fn number(item: &Item, name: &str, what: &str) -> Result<u64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            what: what.to_string(),
            message: format!("no numeric {name} attribute"),
        })
}

/// Maps an SDK failure to a store error with the classification every adapter shares,
/// separating what a retry can fix from what it cannot.
fn sdk_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let f = crate::sdk::classify("DynamoDB", &err);
    match f.code.as_deref() {
        Some("ConditionalCheckFailedException" | "TransactionConflictException") => {
            StoreError::Conflict { what: f.message }
        }
        _ if f.retryable => StoreError::Unavailable { message: f.message },
        _ => StoreError::Failed { message: f.message },
    }
}

/// Whether an item written at `read_version` may be written now.
fn version_condition(
    put: aws_sdk_dynamodb::types::builders::PutBuilder,
    read_version: u64,
) -> aws_sdk_dynamodb::types::builders::PutBuilder {
    if read_version == 0 {
        put.condition_expression("attribute_not_exists(pk)")
    } else {
        put.condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(read_version))
    }
}

impl DynamoStore {
    pub fn new(
        client: impl Into<crate::sdk::OnFirstUse<Client>>,
        table: impl Into<String>,
    ) -> DynamoStore {
        DynamoStore {
            client: client.into(),
            table: table.into(),
            pipeline: PipelineCache::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its keys, GSI and TTL: for the local emulator and for accounts
    /// not deployed with `template.yaml` (which declares the same table).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let build_err = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Failed {
            message: e.to_string(),
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk").map_err(build_err)?)
            .attribute_definitions(attr("sk").map_err(build_err)?)
            .attribute_definitions(attr("gsi1pk").map_err(build_err)?)
            .attribute_definitions(attr("gsi1sk").map_err(build_err)?)
            .key_schema(key("pk", KeyType::Hash).map_err(build_err)?)
            .key_schema(key("sk", KeyType::Range).map_err(build_err)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(GSI1)
                    .key_schema(key("gsi1pk", KeyType::Hash).map_err(build_err)?)
                    .key_schema(key("gsi1sk", KeyType::Range).map_err(build_err)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
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

    /// The newest pipeline, read with a Query (and its parts), and cached.
    async fn load_pipeline(&self) -> Result<Option<Arc<StoredPipeline>>, StoreError> {
        let loaded = self.newest_pipeline().await?.map(Arc::new);
        self.pipeline.set(loaded.clone());
        Ok(loaded)
    }

    /// Runs a query to the end (or to `limit` items), following pagination.
    async fn query(
        &self,
        index: Option<&str>,
        condition: &str,
        values: &[(&str, AttributeValue)],
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(condition)
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take())
                .set_consistent_read(index.is_none().then_some(true));
            for (name, value) in values {
                q = q.expression_attribute_values(*name, value.clone());
            }
            if let Some(limit) = limit {
                q = q.limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX));
            }
            let out = q.send().await.map_err(sdk_error)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| items.len() >= l) {
                return Ok(items);
            }
        }
    }

    fn put(&self, item: Item) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        Put::builder().table_name(&self.table).set_item(Some(item))
    }

    /// The update that marks `st` settled on a claim written before: only while it is held
    /// and unexpired. A commit carries it in its transaction; [`ReleaseStore::settle_claim`]
    /// sends it alone, so the two can never drift apart.
    fn settle_update(&self, st: &Settle) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys(format!("CLAIM#{}", st.key), "CLAIM")))
            .update_expression("ADD settled :tag")
            .condition_expression(SETTLE_CONDITION)
            .expression_attribute_values(":tag", AttributeValue::Ss(vec![st.tag.clone()]))
            .expression_attribute_values(":now", n(st.at.0))
            .build()
            .map_err(|e| StoreError::Failed {
                message: e.to_string(),
            })
    }

    /// The failing item of a cancelled transaction, as a store error.
    async fn cancelled(
        &self,
        e: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
        what: &[String],
        claim_at: Option<(usize, &str, Timestamp)>,
    ) -> StoreError {
        for (i, reason) in e.cancellation_reasons().iter().enumerate() {
            match reason.code() {
                Some("ConditionalCheckFailed") => {
                    if let Some((at, key, now)) = claim_at
                        && at == i
                    {
                        return match self.claimed(key, now).await {
                            Ok(Some(value)) => StoreError::AlreadyClaimed {
                                key: key.to_string(),
                                value,
                            },
                            Ok(None) => StoreError::Conflict {
                                what: format!("claim {key}"),
                            },
                            Err(err) => err,
                        };
                    }
                    return StoreError::Conflict {
                        what: what.get(i).cloned().unwrap_or_else(|| "an item".into()),
                    };
                }
                Some("TransactionConflict") => {
                    return StoreError::Conflict {
                        what: what.get(i).cloned().unwrap_or_else(|| "an item".into()),
                    };
                }
                Some("ThrottlingError" | "ProvisionedThroughputExceeded") => {
                    return StoreError::Unavailable {
                        message: "throttled".into(),
                    };
                }
                _ => {}
            }
        }
        StoreError::Conflict {
            what: format!("transaction cancelled: {}", e.message().unwrap_or_default()),
        }
    }

    /// Writes `commit` in one transaction. `Ok(false)`: cancelled only because the claim
    /// it settles is gone or expired (written without the settle, it can succeed).
    async fn transact(&self, commit: &Commit) -> Result<bool, StoreError> {
        let mut checks: Vec<ConditionCheck> = Vec::new();
        let mut what: Vec<String> = Vec::new();
        for c in &commit.checks {
            let key = match &c.item {
                ItemKey::Release(id) => keys(release_pk(id), "RELEASE"),
                ItemKey::Lane {
                    service,
                    environment,
                } => keys(format!("SERVICE#{service}"), &format!("LANE#{environment}")),
            };
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key));
            let check = if c.version == 0 {
                check.condition_expression("attribute_not_exists(pk)")
            } else {
                check
                    .condition_expression("#v = :v")
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_values(":v", n(c.version))
            };
            checks.push(check.build().map_err(|e| StoreError::Failed {
                message: e.to_string(),
            })?);
            what.push(c.item.to_string());
        }
        let mut puts: Vec<Put> = Vec::new();
        let build = |p: aws_sdk_dynamodb::types::builders::PutBuilder| {
            p.build().map_err(|e| StoreError::Failed {
                message: e.to_string(),
            })
        };
        for r in &commit.releases {
            let mut item = keys(release_pk(&r.item.id), "RELEASE");
            item.insert(
                "gsi1pk".into(),
                s(format!("SERVICE#{}#RELEASES", r.item.service)),
            );
            item.insert("gsi1sk".into(), s(r.item.id.as_str()));
            item.insert("version".into(), n(r.version + 1));
            item.insert("doc".into(), to_doc(&r.item)?);
            puts.push(build(version_condition(self.put(item), r.version))?);
            what.push(format!("release {}", r.item.id));
        }
        for l in &commit.lanes {
            let mut item = keys(
                format!("SERVICE#{}", l.item.service),
                &format!("LANE#{}", l.item.environment),
            );
            item.insert("version".into(), n(l.version + 1));
            item.insert("doc".into(), to_doc(&l.item)?);
            puts.push(build(version_condition(self.put(item), l.version))?);
            what.push(format!("lane {}/{}", l.item.service, l.item.environment));
        }
        let commit_id = ulid::Ulid::generate().to_string();
        for (i, t) in commit.history.iter().enumerate() {
            let order = format!("{:013}#{commit_id}#{i:03}", t.at.0);
            let pk = match &t.release {
                Some(id) => release_pk(id),
                None => format!("LANE#{}#{}", t.service, t.environment),
            };
            let mut item = keys(pk, &format!("HISTORY#{order}"));
            item.insert("gsi1pk".into(), s(format!("SERVICE#{}#HISTORY", t.service)));
            item.insert("gsi1sk".into(), s(order));
            item.insert("doc".into(), to_doc(t)?);
            puts.push(build(
                self.put(item)
                    .condition_expression("attribute_not_exists(pk)"),
            )?);
            what.push("history item".into());
        }
        let mut claim_at = None;
        // A delivery settled on the claim this commit writes is written settled; on a claim
        // written before, it is an update of its own (see `settle_update`).
        let settle_own = commit
            .settle
            .as_ref()
            .filter(|st| commit.claim.as_ref().is_some_and(|c| c.key == st.key));
        if let Some(c) = &commit.claim {
            let mut item = keys(format!("CLAIM#{}", c.key), "CLAIM");
            item.insert("value".into(), s(c.value.as_str()));
            item.insert("expires_ms".into(), n(c.expires.0));
            item.insert("ttl".into(), n(c.expires.0 / 1000));
            if let Some(st) = settle_own {
                item.insert("settled".into(), AttributeValue::Ss(vec![st.tag.clone()]));
            }
            puts.push(build(
                self.put(item)
                    .condition_expression("attribute_not_exists(pk) OR expires_ms < :now")
                    .expression_attribute_values(":now", n(c.at.0)),
            )?);
            claim_at = Some((checks.len() + puts.len() - 1, c.key.as_str(), c.at));
            what.push(format!("claim {}", c.key));
        }
        for d in &commit.deployments {
            let mut item = keys(format!("DEPLOYMENT#{}", d.deployment_id), "DEPLOYMENT");
            let doc = to_doc(d)?;
            // The same stage's reference with the other restore mark (see
            // `DeploymentRef::same_stage`).
            let twin = to_doc(&DeploymentRef {
                restore: !d.restore,
                ..d.clone()
            })?;
            item.insert("doc".into(), doc.clone());
            puts.push(build(
                self.put(item)
                    .condition_expression("attribute_not_exists(pk) OR doc = :doc OR doc = :twin")
                    .expression_attribute_values(":doc", doc)
                    .expression_attribute_values(":twin", twin),
            )?);
            what.push(format!("deployment {}", d.deployment_id));
        }
        let settle_other = commit.settle.as_ref().filter(|_| settle_own.is_none());
        if puts.is_empty() {
            return match settle_other {
                Some(st) => self
                    .settle_claim(&st.key, &st.tag, st.at)
                    .await
                    .map(|()| true),
                None => Ok(true),
            };
        }
        let settle_at = settle_other.map(|_| checks.len() + puts.len());
        let mut items: Vec<TransactWriteItem> = checks
            .into_iter()
            .map(|c| TransactWriteItem::builder().condition_check(c).build())
            .chain(
                puts.into_iter()
                    .map(|p| TransactWriteItem::builder().put(p).build()),
            )
            .collect();
        if let Some(st) = settle_other {
            items.push(
                TransactWriteItem::builder()
                    .update(self.settle_update(st)?)
                    .build(),
            );
            what.push(format!("claim {} (settled)", st.key));
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service)) => match service.err() {
                TransactWriteItemsError::TransactionCanceledException(e)
                    if settle_at.is_some_and(|at| only_failed_at(e, at)) =>
                {
                    Ok(false)
                }
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    Err(self.cancelled(e, &what, claim_at).await)
                }
                _ => Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(other) => Err(sdk_error(other)),
        }
    }
}

impl ReleaseStore for DynamoStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        if !self.transact(&commit).await? {
            // The claim to settle is gone or expired: nothing to settle; the rest is written.
            let rest = Commit {
                settle: None,
                ..commit
            };
            self.transact(&rest).await?;
        }
        Ok(())
    }

    async fn release(&self, id: &ReleaseId) -> Result<Option<Versioned<Release>>, StoreError> {
        let what = format!("release {id}");
        match self.get(keys(release_pk(id), "RELEASE")).await? {
            Some(item) => Ok(Some(Versioned {
                item: from_doc(&item, &what)?,
                version: number(&item, "version", &what)?,
            })),
            None => Ok(None),
        }
    }

    async fn lane(&self, service: &str, environment: &str) -> Result<Versioned<Lane>, StoreError> {
        let what = format!("lane {service}/{environment}");
        let key = keys(format!("SERVICE#{service}"), &format!("LANE#{environment}"));
        match self.get(key).await? {
            Some(item) => Ok(Versioned {
                item: from_doc(&item, &what)?,
                version: number(&item, "version", &what)?,
            }),
            None => Ok(Versioned {
                item: Lane::new(service, environment),
                version: 0,
            }),
        }
    }

    async fn lanes(&self, service: &str) -> Result<Vec<Versioned<Lane>>, StoreError> {
        let items = self
            .query(
                None,
                "pk = :pk AND begins_with(sk, :lane)",
                &[
                    (":pk", s(format!("SERVICE#{service}"))),
                    (":lane", s("LANE#")),
                ],
                true,
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                let what = format!("lane of {service}");
                Ok(Versioned {
                    item: from_doc(item, &what)?,
                    version: number(item, "version", &what)?,
                })
            })
            .collect()
    }

    async fn releases_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Release>, StoreError> {
        let items = self
            .query(
                Some(GSI1),
                "gsi1pk = :pk",
                &[(":pk", s(format!("SERVICE#{service}#RELEASES")))],
                false,
                Some(limit),
            )
            .await?;
        items
            .iter()
            .map(|item| from_doc(item, &format!("release of {service}")))
            .collect()
    }

    async fn history_of_release(&self, id: &ReleaseId) -> Result<Vec<Transition>, StoreError> {
        let items = self
            .query(
                None,
                "pk = :pk AND begins_with(sk, :h)",
                &[(":pk", s(release_pk(id))), (":h", s("HISTORY#"))],
                true,
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| from_doc(item, &format!("history of {id}")))
            .collect()
    }

    async fn history_of_service(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        let items = self
            .query(
                Some(GSI1),
                "gsi1pk = :pk",
                &[(":pk", s(format!("SERVICE#{service}#HISTORY")))],
                false,
                Some(limit),
            )
            .await?;
        let mut out: Vec<Transition> = items
            .iter()
            .map(|item| from_doc(item, &format!("history of {service}")))
            .collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn read(&self, reads: &Reads, now: Timestamp) -> Result<Snapshot, StoreError> {
        let mut wanted: HashMap<(String, String), Wanted> = HashMap::new();
        if let Some(key) = &reads.claim {
            wanted.insert((format!("CLAIM#{key}"), "CLAIM".into()), Wanted::Claim);
        }
        let cached = self.pipeline.get().filter(|_| reads.pipeline);
        if cached.is_some() {
            wanted.insert(("PIPELINE".into(), POINTER_SK.into()), Wanted::Pointer);
        }
        for (service, environment) in &reads.lanes {
            wanted.insert(
                (format!("SERVICE#{service}"), format!("LANE#{environment}")),
                Wanted::Lane((service.clone(), environment.clone())),
            );
        }
        for id in &reads.releases {
            wanted.insert(
                (release_pk(id), "RELEASE".into()),
                Wanted::Release(id.clone()),
            );
        }
        // Without a cached pipeline, the pipeline is loaded beside the batch, not after it.
        let load_beside = reads.pipeline && cached.is_none();
        let batch_keys: Vec<Item> = wanted.keys().map(|(pk, sk)| keys(pk.clone(), sk)).collect();
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
        for (service, environment) in &reads.lanes {
            snapshot.lanes.insert(
                (service.clone(), environment.clone()),
                Versioned {
                    item: Lane::new(service, environment),
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
            match what {
                Wanted::Claim => {
                    let what = format!("claim {}", reads.claim.as_deref().unwrap_or_default());
                    if number(&item, "expires_ms", &what)? < now.0 {
                        continue;
                    }
                    snapshot.claim = Some(ClaimRecord {
                        value: item
                            .get("value")
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .ok_or_else(|| StoreError::Corrupt {
                                what,
                                message: "no value attribute".into(),
                            })?,
                        settled: item
                            .get("settled")
                            .and_then(|v| v.as_ss().ok())
                            .cloned()
                            .unwrap_or_default(),
                    });
                }
                Wanted::Pointer => pointer = Some(number(&item, "version", "pipeline pointer")?),
                Wanted::Lane(key) => {
                    let what = format!("lane {}/{}", key.0, key.1);
                    snapshot.lanes.insert(
                        key.clone(),
                        Versioned {
                            item: from_doc(&item, &what)?,
                            version: number(&item, "version", &what)?,
                        },
                    );
                }
                Wanted::Release(id) => {
                    let what = format!("release {id}");
                    snapshot.releases.insert(
                        id.clone(),
                        Versioned {
                            item: from_doc(&item, &what)?,
                            version: number(&item, "version", &what)?,
                        },
                    );
                }
            }
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

    fn cached_pipeline(&self) -> Option<Arc<StoredPipeline>> {
        self.pipeline.get()
    }

    async fn settle_claim(&self, key: &str, tag: &str, now: Timestamp) -> Result<(), StoreError> {
        // The same update a transaction carries (`settle_update`), sent on its own.
        let update = self.settle_update(&Settle {
            key: key.to_string(),
            tag: tag.to_string(),
            at: now,
        })?;
        let result = self
            .client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await;
        match result.map_err(sdk_error) {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()), // gone or expired: nothing to settle
            Err(e) => Err(e),
        }
    }

    async fn claimed(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        let Some(item) = self.get(keys(format!("CLAIM#{key}"), "CLAIM")).await? else {
            return Ok(None);
        };
        let what = format!("claim {key}");
        if number(&item, "expires_ms", &what)? < now.0 {
            return Ok(None);
        }
        item.get("value")
            .and_then(|v| v.as_s().ok())
            .map(|v| Some(v.clone()))
            .ok_or_else(|| StoreError::Corrupt {
                what,
                message: "no value attribute".into(),
            })
    }

    async fn deployment(&self, deployment_id: &str) -> Result<Option<DeploymentRef>, StoreError> {
        let key = keys(format!("DEPLOYMENT#{deployment_id}"), "DEPLOYMENT");
        match self.get(key).await? {
            Some(item) => Ok(Some(from_doc(
                &item,
                &format!("deployment {deployment_id}"),
            )?)),
            None => Ok(None),
        }
    }

    async fn pipeline(&self) -> Result<Option<StoredPipeline>, StoreError> {
        Ok(self.load_pipeline().await?.map(|p| (*p).clone()))
    }

    async fn put_pipeline(&self, pipeline: StoredPipeline) -> Result<(), StoreError> {
        self.write_pipeline(pipeline).await
    }
}

impl DynamoStore {
    async fn newest_pipeline(&self) -> Result<Option<StoredPipeline>, StoreError> {
        // The newest item sorts last: the newest version's head, or its last part.
        let newest = self
            .query(
                None,
                "pk = :pk AND begins_with(sk, :v)",
                &[(":pk", s("PIPELINE")), (":v", s("VERSION#"))],
                false,
                Some(1),
            )
            .await?;
        let Some(first) = newest.first() else {
            return Ok(None);
        };
        if first.contains_key("doc") {
            return from_doc(first, "pipeline").map(Some); // one item, as first written
        }
        let sk = first
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let head_sk = sk.split("#PART#").next().unwrap_or_default().to_string();
        let items = if sk == head_sk && number(first, "parts", "pipeline")? == 1 {
            newest
        } else {
            self.query(
                None,
                "pk = :pk AND begins_with(sk, :v)",
                &[(":pk", s("PIPELINE")), (":v", s(head_sk.as_str()))],
                true,
                None,
            )
            .await?
        };
        pipeline_from_parts(&items).map(Some)
    }

    async fn write_pipeline(&self, pipeline: StoredPipeline) -> Result<(), StoreError> {
        // Version N may only be written once, and only when N-1 exists: two concurrent applies
        // that both read N-1 cannot both land. The source is split over items so that a
        // pipeline of any size fits DynamoDB's 400 KB item limit.
        let build = |p: aws_sdk_dynamodb::types::builders::PutBuilder| {
            p.build().map_err(|e| StoreError::Failed {
                message: e.to_string(),
            })
        };
        let head_sk = format!("VERSION#{:010}", pipeline.version);
        let chunks = chunks(&pipeline.source, PIPELINE_PART_BYTES);
        if chunks.len() > MAX_PIPELINE_PARTS {
            return Err(StoreError::Failed {
                message: format!(
                    "the pipeline file is {} bytes; at most {} are stored",
                    pipeline.source.len(),
                    MAX_PIPELINE_PARTS * PIPELINE_PART_BYTES
                ),
            });
        }
        let mut tx = self.client.transact_write_items();
        for (k, chunk) in chunks.iter().enumerate() {
            let sk = if k == 0 {
                head_sk.clone()
            } else {
                format!("{head_sk}#PART#{k:03}")
            };
            let mut item = keys("PIPELINE".into(), &sk);
            item.insert("chunk".into(), s(*chunk));
            if k == 0 {
                item.insert("version".into(), n(pipeline.version));
                item.insert("parts".into(), n(chunks.len() as u64));
                item.insert("applied_at".into(), n(pipeline.applied_at.0));
                item.insert("applied_by".into(), s(pipeline.applied_by.as_str()));
            }
            tx = tx.transact_items(
                TransactWriteItem::builder()
                    .put(build(
                        self.put(item)
                            .condition_expression("attribute_not_exists(pk)"),
                    )?)
                    .build(),
            );
        }
        // The pointer readers revalidate their cached pipeline with; it only moves forward.
        let mut pointer = keys("PIPELINE".into(), POINTER_SK);
        pointer.insert("version".into(), n(pipeline.version));
        tx = tx.transact_items(
            TransactWriteItem::builder()
                .put(build(
                    self.put(pointer)
                        .condition_expression("attribute_not_exists(pk) OR version < :v")
                        .expression_attribute_values(":v", n(pipeline.version)),
                )?)
                .build(),
        );
        if pipeline.version > 1 {
            tx = tx.transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        aws_sdk_dynamodb::types::ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(keys(
                                "PIPELINE".into(),
                                &format!("VERSION#{:010}", pipeline.version - 1),
                            )))
                            .condition_expression("attribute_exists(pk)")
                            .build()
                            .map_err(|e| StoreError::Failed {
                                message: e.to_string(),
                            })?,
                    )
                    .build(),
            );
        }
        match tx.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                Err(StoreError::Conflict {
                    what: format!("pipeline version {}", pipeline.version),
                })
            }
            Err(other) => Err(sdk_error(other)),
        }
    }
}
