//! The `webhooks` tree: the ids of the Shopify webhook deliveries received lately, so a
//! delivery Shopify sends again (a retry after a lost answer, or the same event twice) is
//! recognized and does nothing.
//!
//! Key: the `X-Shopify-Webhook-Id`; value: when it was first received (Unix milliseconds,
//! big-endian). Entries older than the receiver's retention are removed by
//! [`Store::expire_webhooks`]. The tree is opened on use, not with the store, so the
//! read-only commands never create it.

use chrono::{DateTime, Utc};
use sled::Tree;

use super::{Store, StoreError};

const TREE: &str = "webhooks";

impl Store {
    /// Records a delivery's id; `false` when it was recorded before (a replay). Atomic: of two
    /// deliveries with one id arriving together, one is new.
    pub fn record_webhook(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let received = at.timestamp_millis().to_be_bytes();
        let swapped = self
            .webhooks()?
            .compare_and_swap(id.as_bytes(), None::<&[u8]>, Some(&received[..]))
            .map_err(|e| self.err(e))?;
        Ok(swapped.is_ok())
    }

    /// Removes the ids received before `before`; returns how many.
    pub fn expire_webhooks(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let tree = self.webhooks()?;
        let cutoff = before.timestamp_millis();
        let mut removed = 0;
        for entry in tree.iter() {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let received = <[u8; 8]>::try_from(value.as_ref()).map(i64::from_be_bytes);
            // A value that is not a time cannot be trusted to expire: removed too.
            if received.map_or(true, |at| at < cutoff) {
                tree.remove(key).map_err(|e| self.err(e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn webhooks(&self) -> Result<Tree, StoreError> {
        self.db.open_tree(TREE).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use crate::store::Store;

    #[test]
    fn a_delivery_id_is_new_once_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let now = chrono::Utc::now();
        assert!(store
            .record_webhook("a", now - Duration::hours(50))
            .unwrap());
        assert!(store.record_webhook("b", now).unwrap());
        assert!(!store.record_webhook("a", now).unwrap(), "a replay");
        assert_eq!(store.expire_webhooks(now - Duration::hours(48)).unwrap(), 1);
        assert!(!store.record_webhook("b", now).unwrap(), "kept");
        assert!(store.record_webhook("a", now).unwrap(), "expired");
    }
}
