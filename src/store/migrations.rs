//! Format migrations, run when the store opens: each older format the build still reads is
//! brought up to [`SCHEMA_VERSION`] in place, resumably; any other version is refused.

use super::codec::{decode, encode, encode_seen_order, order_key, SeenOrder};
use super::{OrderRecord, Store, StoreError, SCHEMA_VERSION};

/// The `meta` key of the format version (4 bytes, big-endian).
const KEY_SCHEMA: &[u8] = b"schema_version";

impl Store {
    /// The format version recorded in the store; `None` in a store just created.
    pub(super) fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        self.meta
            .get(KEY_SCHEMA)
            .map_err(|e| self.err(e))?
            .map(|bytes| {
                <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        path: self.path.clone(),
                        detail: "the schema version record is not 4 bytes".into(),
                    })
            })
            .transpose()
    }

    pub(super) fn check_version(&self) -> Result<(), StoreError> {
        match self.schema_version()? {
            Some(found) => {
                if found == 3 {
                    self.add_checkpoints()?;
                }
                if found == 3 || found == 4 {
                    self.compact_orders()?;
                }
                if (3..=5).contains(&found) {
                    self.move_orders_to_map()?;
                } else if found != SCHEMA_VERSION {
                    return Err(StoreError::UnknownVersion {
                        path: self.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                self.meta
                    .insert(KEY_SCHEMA, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| self.err(e))?;
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Format 3 had no `checkpoints` tree: derive it from the customer records. Rewriting a
    /// checkpoint is idempotent, so an interrupted migration simply runs again.
    fn add_checkpoints(&self) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut migrated = 0usize;
        for record in self.customers() {
            let record = record?;
            batch.insert(record.id.as_bytes(), encode(&record.checkpoint())?);
            migrated += 1;
        }
        self.checkpoints
            .apply_batch(batch)
            .map_err(|e| self.err(e))?;
        self.set_schema_version(4)?;
        tracing::info!(path = %self.path.display(), customers = migrated, "store migrated to format 4 (tier checkpoints)");
        Ok(())
    }

    /// Formats up to 4 kept every order whole under its id; format 5 keeps the customer and
    /// a fingerprint under a compact key. New keys start with byte 0 or 1 and old ones (text)
    /// above, so an interrupted migration resumes where it stopped.
    fn compact_orders(&self) -> Result<(), StoreError> {
        const CHUNK: usize = 10_000;
        let mut migrated = 0usize;
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for item in self.orders.range([2u8]..).take(CHUNK) {
                let (key, value) = item.map_err(|e| self.err(e))?;
                let id = String::from_utf8_lossy(&key).into_owned();
                let order: OrderRecord = decode("orders", &id, &value)?;
                batch.remove(key);
                let seen = SeenOrder {
                    customer_id: order.customer_id.clone(),
                    fingerprint: order.fingerprint(),
                };
                batch.insert(order_key(&order.id), encode_seen_order(&seen));
                n += 1;
            }
            if n == 0 {
                break;
            }
            self.orders.apply_batch(batch).map_err(|e| self.err(e))?;
            migrated += n;
        }
        self.set_schema_version(5)?;
        tracing::info!(path = %self.path.display(), orders = migrated, "store migrated to format 5 (compact order entries)");
        Ok(())
    }

    /// Formats up to 5 kept every order entry in the main database; format 6 keeps them in
    /// the order map. Settling moves them (resumably: entries not yet moved stay in the
    /// overlay, which is read first).
    fn move_orders_to_map(&self) -> Result<(), StoreError> {
        let moved = self.settle_orders()?;
        self.order_map.close();
        self.set_schema_version(6)?;
        tracing::info!(path = %self.path.display(), orders = moved, "store migrated to format 6 (order map)");
        Ok(())
    }

    pub(super) fn set_schema_version(&self, version: u32) -> Result<(), StoreError> {
        self.flush()?;
        self.meta
            .insert(KEY_SCHEMA, &version.to_be_bytes())
            .map_err(|e| self.err(e))?;
        self.flush()
    }
}
