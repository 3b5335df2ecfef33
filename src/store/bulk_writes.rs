//! The storefront bulk write in flight: the outbox entries it covers, each bulk mutation
//! operation's lines, staged file and Shopify id, and every line's outcome so far. Kept from
//! before the first upload until its outcomes are settled, so a crash or a stop anywhere in
//! between is resumed by the next run instead of writing again.
//!
//! The batch (entries and lines, tens of MB for a big batch) is written once, under `meta` key
//! `storefront/bulk`; each operation's progress, which changes at every step, under its own
//! key `storefront/bulk/op/<n>`, so a step rewrites a few hundred bytes, not the batch. A
//! progress key overrides the progress stored in the batch (a record written by a version
//! that kept everything in one value has none, and resumes as written). Every Shopify
//! operation id an operation is given is also kept, under `storefront/bulk/claimed`, until the
//! batch is settled: an operation whose start answer was lost must not take one of them.

use serde::{Deserialize, Serialize};

use super::codec::encode;
use super::{OutboxEntry, Store, StoreError};
use crate::model::StorefrontState;

const KEY_STOREFRONT_BULK: &[u8] = b"storefront/bulk";
/// The operation ids the batch has been given (see [`Store::claim_storefront_bulk_operation`]).
const KEY_CLAIMED: &[u8] = b"storefront/bulk/claimed";
const KEY_OPERATION_PREFIX: &str = "storefront/bulk/op/";

fn operation_key(n: usize) -> Vec<u8> {
    format!("{KEY_OPERATION_PREFIX}{n}").into_bytes()
}

/// Which mutation a bulk operation runs (one root field per operation, as Shopify requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BulkWriteKind {
    TagsAdd,
    TagsRemove,
    Metafields,
}

/// One bulk mutation operation of a [`StorefrontBulk`].
///
/// Stored as its fields in order (postcard): `progress` nested last encodes exactly as the
/// flat record of earlier versions did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkWriteOp {
    pub kind: BulkWriteKind,
    /// Each line: the index of its customer in [`StorefrontBulk::entries`] and its variables
    /// (JSON text).
    pub lines: Vec<(u32, String)>,
    /// How far the operation has got: what each step changes and records.
    pub progress: BulkWriteProgress,
}

/// The part of a [`BulkWriteOp`] that changes while it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkWriteProgress {
    /// Per line: `None` not done yet, `Some(None)` done, `Some(Some(detail))` refused.
    pub outcomes: Vec<Option<Option<String>>>,
    /// The lines (indices into `lines`) of the file last submitted, in file order: the
    /// result's `__lineNumber` counts in it.
    pub submitted: Vec<u32>,
    /// The uploaded file's `stagedUploadPath`, once uploaded.
    pub staged_path: Option<String>,
    /// When `bulkOperationRunMutation` was sent (before its answer: after a crash or a lost
    /// answer, the operation is looked for among the bulk mutations created since).
    pub submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The operation's GID, once Shopify answered.
    pub operation_id: Option<String>,
    /// Operations run for these lines so far (a failed one is run again for what it missed).
    pub attempts: u32,
}

impl BulkWriteOp {
    pub fn new(kind: BulkWriteKind, lines: Vec<(u32, String)>) -> BulkWriteOp {
        BulkWriteOp {
            kind,
            progress: BulkWriteProgress {
                outcomes: vec![None; lines.len()],
                ..BulkWriteProgress::default()
            },
            lines,
        }
    }

    /// Lines without an outcome.
    pub fn undone(&self) -> Vec<u32> {
        (0..self.lines.len() as u32)
            .filter(|&i| self.progress.outcomes[i as usize].is_none())
            .collect()
    }
}

/// A storefront bulk write: the entries as planned, and the operations that write them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorefrontBulk {
    pub entries: Vec<OutboxEntry<StorefrontState>>,
    pub operations: Vec<BulkWriteOp>,
}

impl Store {
    /// The storefront bulk write left in flight, if any, with each operation's latest
    /// progress.
    pub fn storefront_bulk(&self) -> Result<Option<StorefrontBulk>, StoreError> {
        let Some(mut bulk) =
            self.meta_get::<StorefrontBulk>(KEY_STOREFRONT_BULK, "storefront bulk write")?
        else {
            return Ok(None);
        };
        for (n, op) in bulk.operations.iter_mut().enumerate() {
            if let Some(progress) = self.meta_get(&operation_key(n), "storefront bulk operation")? {
                op.progress = progress;
            }
        }
        Ok(Some(bulk))
    }

    /// Records a new (or resumed) bulk write as it stands, durably: what a restart resumes
    /// from. Progress keys of an earlier record are replaced in the same batch.
    pub fn set_storefront_bulk(&self, bulk: &StorefrontBulk) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for key in self.meta.scan_prefix(KEY_OPERATION_PREFIX).keys() {
            batch.remove(key.map_err(|e| self.err(e))?);
        }
        batch.insert(KEY_STOREFRONT_BULK, encode(bulk)?);
        self.meta.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Records operation `n`'s progress, durably: a step of one operation rewrites only it.
    pub fn set_storefront_bulk_progress(
        &self,
        n: usize,
        progress: &BulkWriteProgress,
    ) -> Result<(), StoreError> {
        self.meta_set(&operation_key(n), progress)?;
        self.flush()
    }

    /// The ids of every Shopify operation the batch's operations were given so far, including
    /// those whose results were already read.
    pub fn storefront_bulk_claimed(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .meta_get(KEY_CLAIMED, "storefront bulk operation ids")?
            .unwrap_or_default())
    }

    /// Records operation `n`'s progress with the Shopify operation `id` it was just given, and
    /// adds `id` to the batch's claimed ids in the same write. Callers serialize the calls
    /// (the list is read, extended and written back).
    pub fn claim_storefront_bulk_operation(
        &self,
        n: usize,
        progress: &BulkWriteProgress,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut claimed = self.storefront_bulk_claimed()?;
        claimed.push(id.to_owned());
        let mut batch = sled::Batch::default();
        batch.insert(operation_key(n), encode(progress)?);
        batch.insert(KEY_CLAIMED, encode(&claimed)?);
        self.meta.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Ends the bulk write: `accepted` are acknowledged ([`Store::acknowledge`]: their outbox
    /// entry removed unless replaced meanwhile), `refused` parked with Shopify's detail
    /// ([`Store::park`], unless replaced meanwhile), then the record of `operations`
    /// operations is dropped.
    ///
    /// The customers settle 256 to a transaction (`TX_CUSTOMERS`), each customer's
    /// acknowledgement and outbox change together, and the record goes last. A crash part-way
    /// leaves the record, so the next pass resumes the bulk write, finds every operation done
    /// and settles again: an acknowledgement written twice is the same, and an outbox entry
    /// already removed or parked no longer matches the one the bulk wrote, so it is left
    /// alone. One transaction for a whole batch (50,000 customers) held every node version it
    /// replaced to its end: the daemon's memory rose by about 300 MiB at each batch's end at a
    /// million customers.
    pub fn settle_storefront_bulk(
        &self,
        operations: usize,
        accepted: &[OutboxEntry<StorefrontState>],
        refused: &[(&OutboxEntry<StorefrontState>, String)],
    ) -> Result<(), StoreError> {
        self.acknowledge(accepted)?;
        for (entry, detail) in refused {
            self.park(*entry, detail)?;
        }
        let mut done = sled::Batch::default();
        done.remove(KEY_STOREFRONT_BULK);
        done.remove(KEY_CLAIMED);
        for n in 0..operations {
            done.remove(operation_key(n));
        }
        self.meta.apply_batch(done).map_err(|e| self.err(e))?;
        self.flush()
    }
}
