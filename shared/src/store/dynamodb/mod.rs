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
//!
//! The key formats are spelled in `keys` only; items are made and read in `item`; a commit's
//! transaction is built and sent in `transact`, a decision's batch read in `read`, and the
//! pipeline's versions are written and read in `pipeline`.

mod item;
mod keys;
mod pipeline;
mod read;
mod transact;

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{
    Commit, DeploymentRef, Reads, ReleaseStore, Settle, Snapshot, StoreError, StoredPipeline,
    Versioned,
};
use crate::release::{Lane, Release, ReleaseId, Timestamp, Transition};
use item::{Item, from_doc, keyed, number, s, versioned};
use pipeline::PipelineCache;

const GSI1: &str = "gsi1";

/// A [`ReleaseStore`] on one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: crate::sdk::OnFirstUse<Client>,
    table: String,
    pipeline: PipelineCache,
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

/// A put as built, or why it could not be.
fn built(p: aws_sdk_dynamodb::types::builders::PutBuilder) -> Result<Put, StoreError> {
    p.build().map_err(|e| StoreError::Failed {
        message: e.to_string(),
    })
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
        match self.get(keyed(keys::release(id))).await? {
            Some(item) => Ok(Some(versioned(&item, &what)?)),
            None => Ok(None),
        }
    }

    async fn lane(&self, service: &str, environment: &str) -> Result<Versioned<Lane>, StoreError> {
        let what = format!("lane {service}/{environment}");
        match self.get(keyed(keys::lane(service, environment))).await? {
            Some(item) => versioned(&item, &what),
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
                    (":pk", s(keys::lanes_pk(service))),
                    (":lane", s(keys::LANE_PREFIX)),
                ],
                true,
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                let what = format!("lane of {service}");
                versioned(item, &what)
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
                &[(":pk", s(keys::releases_of(service)))],
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
                &[
                    (":pk", s(keys::release_pk(id))),
                    (":h", s(keys::HISTORY_PREFIX)),
                ],
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
                &[(":pk", s(keys::history_of(service)))],
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
        self.read_items(reads, now).await
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
        let Some(item) = self.get(keyed(keys::claim(key))).await? else {
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
        match self.get(keyed(keys::deployment(deployment_id))).await? {
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
