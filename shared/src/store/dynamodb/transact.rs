//! A [`Commit`] as one TransactWriteItems: version checks, conditional puts of releases,
//! lanes, history, the claim and deployment references, and the settle of a claim written
//! before; and a cancelled transaction told apart by the item that failed it.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};

use super::item::{claim_item, history_item, keyed, lane_item, n, release_item, to_doc};
use super::{DynamoStore, built, keys, sdk_error};
use crate::release::Timestamp;
use crate::store::{Commit, DeploymentRef, ItemKey, ReleaseStore, Settle, StoreError};

/// A delivery is settled only on a claim still held and unexpired (`:now`).
const SETTLE_CONDITION: &str = "attribute_exists(pk) AND expires_ms >= :now";

/// Where the claim a commit writes is among its transaction's items, its business key and
/// when it is made: a cancellation there is answered by who holds the claim.
type ClaimAt<'a> = Option<(usize, &'a str, Timestamp)>;

/// Whether a cancelled transaction failed on the item at `index` alone (a condition of its
/// own), every other item having passed.
fn only_failed_at(e: &TransactionCanceledException, index: usize) -> bool {
    let failed = |code: Option<&str>| !matches!(code, None | Some("None"));
    e.cancellation_reasons()
        .iter()
        .enumerate()
        .all(|(i, r)| (i == index) == failed(r.code()))
        && e.cancellation_reasons().len() > index
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
    /// The update that marks `st` settled on a claim written before: only while it is held
    /// and unexpired. A commit carries it in its transaction; [`ReleaseStore::settle_claim`]
    /// sends it alone, so the two can never drift apart.
    pub(super) fn settle_update(&self, st: &Settle) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(keyed(keys::claim(&st.key))))
            .update_expression("ADD settled :tag")
            .condition_expression(SETTLE_CONDITION)
            .expression_attribute_values(":tag", AttributeValue::Ss(vec![st.tag.clone()]))
            .expression_attribute_values(":now", n(st.at.0))
            .build()
            .map_err(|e| StoreError::Failed {
                message: e.to_string(),
            })
    }

    /// Writes `commit` in one transaction. `Ok(false)`: cancelled only because the claim
    /// it settles is gone or expired (written without the settle, it can succeed).
    pub(super) async fn transact(&self, commit: &Commit) -> Result<bool, StoreError> {
        let mut what: Vec<String> = Vec::new();
        let checks = self.version_checks(commit, &mut what)?;
        let mut puts: Vec<Put> = Vec::new();
        self.put_releases_and_lanes(commit, &mut puts, &mut what)?;
        self.put_history(commit, &mut puts, &mut what)?;
        let mut claim_at = None;
        // A delivery settled on the claim this commit writes is written settled; on a claim
        // written before, it is an update of its own (see `settle_update`).
        let settle_own = commit
            .settle
            .as_ref()
            .filter(|st| commit.claim.as_ref().is_some_and(|c| c.key == st.key));
        if let Some(c) = &commit.claim {
            let item = claim_item(c, settle_own.map(|st| st.tag.as_str()));
            puts.push(built(
                self.put(item)
                    .condition_expression("attribute_not_exists(pk) OR expires_ms < :now")
                    .expression_attribute_values(":now", n(c.at.0)),
            )?);
            claim_at = Some((checks.len() + puts.len() - 1, c.key.as_str(), c.at));
            what.push(format!("claim {}", c.key));
        }
        self.put_deployments(commit, &mut puts, &mut what)?;
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
        self.send_transaction(items, &what, settle_at, claim_at)
            .await
    }

    /// The checks that the items `commit` read and left unchanged are still at the version
    /// read.
    fn version_checks(
        &self,
        commit: &Commit,
        what: &mut Vec<String>,
    ) -> Result<Vec<ConditionCheck>, StoreError> {
        let mut checks: Vec<ConditionCheck> = Vec::new();
        for c in &commit.checks {
            let key = match &c.item {
                ItemKey::Release(id) => keyed(keys::release(id)),
                ItemKey::Lane(lane) => keyed(keys::lane(&lane.service, &lane.environment)),
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
        Ok(checks)
    }

    /// The puts of `commit`'s releases and lanes, each only at the version it was read at.
    fn put_releases_and_lanes(
        &self,
        commit: &Commit,
        puts: &mut Vec<Put>,
        what: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        for r in &commit.releases {
            let item = release_item(r)?;
            puts.push(built(version_condition(self.put(item), r.version))?);
            what.push(format!("release {}", r.item.id));
        }
        for l in &commit.lanes {
            let item = lane_item(l)?;
            puts.push(built(version_condition(self.put(item), l.version))?);
            what.push(format!("lane {}/{}", l.item.service, l.item.environment));
        }
        Ok(())
    }

    /// The puts of `commit`'s history items, ordered by when, this commit, and their place
    /// in it.
    fn put_history(
        &self,
        commit: &Commit,
        puts: &mut Vec<Put>,
        what: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let commit_id = ulid::Ulid::generate().to_string();
        for (i, t) in commit.history.iter().enumerate() {
            let order = keys::history_order(t.at, &commit_id, i);
            let item = history_item(t, order)?;
            puts.push(built(
                self.put(item)
                    .condition_expression("attribute_not_exists(pk)"),
            )?);
            what.push("history item".into());
        }
        Ok(())
    }

    /// The puts of `commit`'s deployment references: new, or the same stage's already.
    fn put_deployments(
        &self,
        commit: &Commit,
        puts: &mut Vec<Put>,
        what: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        for d in &commit.deployments {
            let mut item = keyed(keys::deployment(&d.deployment_id));
            let doc = to_doc(d)?;
            // The same stage's reference with the other restore mark (see
            // `DeploymentRef::same_stage`).
            let twin = to_doc(&DeploymentRef {
                restore: !d.restore,
                ..d.clone()
            })?;
            item.insert("doc".into(), doc.clone());
            puts.push(built(
                self.put(item)
                    .condition_expression("attribute_not_exists(pk) OR doc = :doc OR doc = :twin")
                    .expression_attribute_values(":doc", doc)
                    .expression_attribute_values(":twin", twin),
            )?);
            what.push(format!("deployment {}", d.deployment_id));
        }
        Ok(())
    }

    /// Sends the transaction; `Ok(false)` when only the settle at `settle_at` failed it.
    async fn send_transaction(
        &self,
        items: Vec<TransactWriteItem>,
        what: &[String],
        settle_at: Option<usize>,
        claim_at: ClaimAt<'_>,
    ) -> Result<bool, StoreError> {
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
                    Err(self.cancelled(e, what, claim_at).await)
                }
                _ => Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(other) => Err(sdk_error(other)),
        }
    }

    /// The failing item of a cancelled transaction, as a store error.
    async fn cancelled(
        &self,
        e: &TransactionCanceledException,
        what: &[String],
        claim_at: ClaimAt<'_>,
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
}
