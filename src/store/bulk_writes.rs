//! The storefront bulk write in flight (`meta` key `storefront/bulk`): the outbox entries it
//! covers, each bulk mutation operation's lines, staged file and Shopify id, and every line's
//! outcome so far. Kept from before the first upload until its outcomes are settled, so a
//! crash or a stop anywhere in between is resumed by the next run instead of writing again.

use serde::{Deserialize, Serialize};

use sled::Transactional;

use super::codec::encode;
use super::outbox::outbox_key;
use super::{Acknowledged, OutboxEntry, Store, StoreError};
use crate::model::{Destination, StorefrontState};

const KEY_STOREFRONT_BULK: &[u8] = b"storefront/bulk";

/// Which mutation a bulk operation runs (one root field per operation, as Shopify requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BulkWriteKind {
    TagsAdd,
    TagsRemove,
    Metafields,
}

/// One bulk mutation operation of a [`StorefrontBulk`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkWriteOp {
    pub kind: BulkWriteKind,
    /// Each line: the index of its customer in [`StorefrontBulk::entries`] and its variables
    /// (JSON text).
    pub lines: Vec<(u32, String)>,
    /// Per line: `None` not done yet, `Some(None)` done, `Some(Some(detail))` refused.
    pub outcomes: Vec<Option<Option<String>>>,
    /// The lines (indices into `lines`) of the file last submitted, in file order: the
    /// result's `__lineNumber` counts in it.
    pub submitted: Vec<u32>,
    /// The uploaded file's `stagedUploadPath`, once uploaded.
    pub staged_path: Option<String>,
    /// When `bulkOperationRunMutation` was sent (before its answer: a crash right after it
    /// finds the operation by `currentBulkOperation`).
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
            outcomes: vec![None; lines.len()],
            lines,
            submitted: Vec::new(),
            staged_path: None,
            submitted_at: None,
            operation_id: None,
            attempts: 0,
        }
    }

    /// Lines without an outcome.
    pub fn undone(&self) -> Vec<u32> {
        (0..self.lines.len() as u32)
            .filter(|&i| self.outcomes[i as usize].is_none())
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
    /// The storefront bulk write left in flight, if any.
    pub fn storefront_bulk(&self) -> Result<Option<StorefrontBulk>, StoreError> {
        self.meta_get(KEY_STOREFRONT_BULK, "storefront bulk write")
    }

    /// Records the bulk write's progress, durably (it is what a restart resumes from).
    pub fn set_storefront_bulk(&self, bulk: &StorefrontBulk) -> Result<(), StoreError> {
        self.meta_set(KEY_STOREFRONT_BULK, bulk)?;
        self.flush()
    }

    /// Ends the bulk write in one transaction: `accepted` are acknowledged (their outbox entry
    /// removed unless replaced meanwhile), `refused` parked with Shopify's detail (unless
    /// replaced meanwhile), and the record dropped — so a crash settles all or nothing, and
    /// nothing is counted twice.
    pub fn settle_storefront_bulk(
        &self,
        accepted: &[&OutboxEntry<StorefrontState>],
        refused: &[(&OutboxEntry<StorefrontState>, String)],
    ) -> Result<(), StoreError> {
        let acks: Vec<(Vec<u8>, Vec<u8>)> = accepted
            .iter()
            .map(|e| {
                let ack = Acknowledged {
                    version: e.version,
                    state: e.state.clone(),
                };
                Ok((encode(&ack)?, encode(*e)?))
            })
            .collect::<Result<_, StoreError>>()?;
        let parks: Vec<(Vec<u8>, Vec<u8>)> = refused
            .iter()
            .map(|(e, detail)| {
                let parked = OutboxEntry {
                    failed: Some(detail.clone()),
                    ..(*e).clone()
                };
                Ok((encode(*e)?, encode(&parked)?))
            })
            .collect::<Result<_, StoreError>>()?;
        (&self.ack_storefront, &self.outbox, &self.meta)
            .transaction(|(ack_tree, outbox, meta)| {
                for (entry, (ack, whole)) in accepted.iter().zip(&acks) {
                    ack_tree.insert(entry.customer_id.as_bytes(), ack.as_slice())?;
                    let key = outbox_key(Destination::Storefront, &entry.customer_id);
                    if outbox.get(&key)?.as_deref() == Some(whole.as_slice()) {
                        outbox.remove(key)?;
                    }
                }
                for ((entry, _), (whole, parked)) in refused.iter().zip(&parks) {
                    let key = outbox_key(Destination::Storefront, &entry.customer_id);
                    if outbox.get(&key)?.as_deref() == Some(whole.as_slice()) {
                        outbox.insert(key, parked.as_slice())?;
                    }
                }
                meta.remove(KEY_STOREFRONT_BULK)?;
                Ok(())
            })
            .map_err(|e| self.tx_err(e))?;
        self.flush()
    }
}
