//! Items and their attributes: the store's types written as DynamoDB items (a JSON `doc`,
//! a `version`, key and GSI attributes) and read back, with a corrupt item reported as
//! such rather than read as something else.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{self, Key};
use crate::release::{Lane, Release, Timestamp, Transition};
use crate::store::{Claim, ClaimRecord, StoreError, StoredPipeline, Versioned};

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item holding only `key`, as GetItem, BatchGetItem and a new item start.
pub(super) fn keyed((pk, sk): Key) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn to_doc<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| StoreError::Failed {
            message: format!("cannot serialise item: {e}"),
        })
}

pub(super) fn from_doc<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
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

pub(super) fn number(item: &Item, name: &str, what: &str) -> Result<u64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            what: what.to_string(),
            message: format!("no numeric {name} attribute"),
        })
}

/// A release or lane item: its document at the version it carries.
pub(super) fn versioned<T: DeserializeOwned>(
    item: &Item,
    what: &str,
) -> Result<Versioned<T>, StoreError> {
    Ok(Versioned {
        item: from_doc(item, what)?,
        version: number(item, "version", what)?,
    })
}

/// A release's item, written at the version after the one it was read at.
pub(super) fn release_item(r: &Versioned<Release>) -> Result<Item, StoreError> {
    let mut item = keyed(keys::release(&r.item.id));
    item.insert("gsi1pk".into(), s(keys::releases_of(&r.item.service)));
    item.insert("gsi1sk".into(), s(r.item.id.as_str()));
    item.insert("version".into(), n(r.version + 1));
    item.insert("doc".into(), to_doc(&r.item)?);
    Ok(item)
}

/// A lane's item, written at the version after the one it was read at.
pub(super) fn lane_item(l: &Versioned<Lane>) -> Result<Item, StoreError> {
    let mut item = keyed(keys::lane(&l.item.service, &l.item.environment));
    item.insert("version".into(), n(l.version + 1));
    item.insert("doc".into(), to_doc(&l.item)?);
    Ok(item)
}

/// A history item: in its release's partition, else its lane's, at `order`
/// ([`keys::history_order`]).
pub(super) fn history_item(t: &Transition, order: String) -> Result<Item, StoreError> {
    let pk = match &t.release {
        Some(id) => keys::release_pk(id),
        None => keys::lane_history_pk(&t.service, &t.environment),
    };
    let mut item = keyed(keys::history(pk, &order));
    item.insert("gsi1pk".into(), s(keys::history_of(&t.service)));
    item.insert("gsi1sk".into(), s(order));
    item.insert("doc".into(), to_doc(t)?);
    Ok(item)
}

/// A claim's item: `expires_ms` for exact expiry checks, `ttl` (seconds) for DynamoDB's
/// TTL, and the tag of a delivery settled in the same write.
pub(super) fn claim_item(c: &Claim, settled: Option<&str>) -> Item {
    let mut item = keyed(keys::claim(&c.key));
    item.insert("value".into(), s(c.value.as_str()));
    item.insert("expires_ms".into(), n(c.expires.0));
    item.insert("ttl".into(), n(c.expires.0 / 1000));
    if let Some(tag) = settled {
        item.insert("settled".into(), AttributeValue::Ss(vec![tag.to_string()]));
    }
    item
}

/// A claim as read, unless it expired before `now`.
pub(super) fn claim_record(
    item: &Item,
    what: String,
    now: Timestamp,
) -> Result<Option<ClaimRecord>, StoreError> {
    if number(item, "expires_ms", &what)? < now.0 {
        return Ok(None);
    }
    Ok(Some(ClaimRecord {
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
    }))
}

/// Part `k` of a pipeline version, holding `chunk` of its source; the head (part 0) also
/// carries the version, the number of parts and who applied it when.
pub(super) fn pipeline_part_item(
    pipeline: &StoredPipeline,
    k: usize,
    chunk: &str,
    parts: usize,
) -> Item {
    let mut item = keyed(keys::pipeline_part(pipeline.version, k));
    item.insert("chunk".into(), s(chunk));
    if k == 0 {
        item.insert("version".into(), n(pipeline.version));
        item.insert("parts".into(), n(parts as u64));
        item.insert("applied_at".into(), n(pipeline.applied_at.0));
        item.insert("applied_by".into(), s(pipeline.applied_by.as_str()));
    }
    item
}

/// A pipeline version from its head item and parts, in sort-key order.
pub(super) fn pipeline_from_parts(items: &[Item]) -> Result<StoredPipeline, StoreError> {
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
