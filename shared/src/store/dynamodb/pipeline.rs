//! The pipeline file in the table: each version split over items that fit DynamoDB's item
//! limit and written once, in one transaction with the pointer readers revalidate against;
//! the newest version read back, and cached for the clones of one store.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;

use super::item::{from_doc, keyed, n, number, pipeline_from_parts, pipeline_part_item, s};
use super::{DynamoStore, built, keys, sdk_error};
use crate::store::{StoreError, StoredPipeline};

/// Bytes of pipeline source per item: well under DynamoDB's 400 KB item limit.
const PIPELINE_PART_BYTES: usize = 300_000;
/// Parts of one pipeline version, all written in one transaction (at most 100 items).
const MAX_PIPELINE_PARTS: usize = 90;

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

/// The pipeline a process read last, shared by the clones of one store.
#[derive(Clone, Default)]
pub(super) struct PipelineCache(Arc<Mutex<Option<Arc<StoredPipeline>>>>);

impl PipelineCache {
    pub(super) fn get(&self) -> Option<Arc<StoredPipeline>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, pipeline: Option<Arc<StoredPipeline>>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = pipeline;
    }
}

impl std::fmt::Debug for PipelineCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PipelineCache({:?})", self.get().map(|p| p.version))
    }
}

impl DynamoStore {
    /// The newest pipeline, read with a Query (and its parts), and cached.
    pub(super) async fn load_pipeline(&self) -> Result<Option<Arc<StoredPipeline>>, StoreError> {
        let loaded = self.newest_pipeline().await?.map(Arc::new);
        self.pipeline.set(loaded.clone());
        Ok(loaded)
    }

    async fn newest_pipeline(&self) -> Result<Option<StoredPipeline>, StoreError> {
        // The newest item sorts last: the newest version's head, or its last part.
        let newest = self
            .query(
                None,
                "pk = :pk AND begins_with(sk, :v)",
                &[(":pk", s(keys::PIPELINE)), (":v", s(keys::VERSION_PREFIX))],
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
        let head_sk = keys::pipeline_head(&sk).to_string();
        let items = if sk == head_sk && number(first, "parts", "pipeline")? == 1 {
            newest
        } else {
            self.query(
                None,
                "pk = :pk AND begins_with(sk, :v)",
                &[(":pk", s(keys::PIPELINE)), (":v", s(head_sk.as_str()))],
                true,
                None,
            )
            .await?
        };
        pipeline_from_parts(&items).map(Some)
    }

    pub(super) async fn write_pipeline(&self, pipeline: StoredPipeline) -> Result<(), StoreError> {
        // Version N may only be written once, and only when N-1 exists: two concurrent applies
        // that both read N-1 cannot both land. The source is split over items so that a
        // pipeline of any size fits DynamoDB's 400 KB item limit.
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
        for write in self.pipeline_writes(&pipeline, &chunks)? {
            tx = tx.transact_items(write);
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

    /// The writes of one pipeline version, in one transaction: its parts (each new), the
    /// pointer moved forward to it, and the check that the version before it exists.
    fn pipeline_writes(
        &self,
        pipeline: &StoredPipeline,
        chunks: &[&str],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut writes = Vec::new();
        for (k, chunk) in chunks.iter().enumerate() {
            let item = pipeline_part_item(pipeline, k, chunk, chunks.len());
            writes.push(
                TransactWriteItem::builder()
                    .put(built(
                        self.put(item)
                            .condition_expression("attribute_not_exists(pk)"),
                    )?)
                    .build(),
            );
        }
        // The pointer readers revalidate their cached pipeline with; it only moves forward.
        let mut pointer = keyed(keys::pointer());
        pointer.insert("version".into(), n(pipeline.version));
        writes.push(
            TransactWriteItem::builder()
                .put(built(
                    self.put(pointer)
                        .condition_expression("attribute_not_exists(pk) OR version < :v")
                        .expression_attribute_values(":v", n(pipeline.version)),
                )?)
                .build(),
        );
        if pipeline.version > 1 {
            writes.push(
                TransactWriteItem::builder()
                    .condition_check(
                        aws_sdk_dynamodb::types::ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(keyed(keys::pipeline_version(pipeline.version - 1))))
                            .condition_expression("attribute_exists(pk)")
                            .build()
                            .map_err(|e| StoreError::Failed {
                                message: e.to_string(),
                            })?,
                    )
                    .build(),
            );
        }
        Ok(writes)
    }
}
