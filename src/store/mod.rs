//! The checkpoint store: the one module that talks to sled.
//!
//! Trees:
//! - `meta`: schema version, the orders cursor, the shop time zone, the day's population
//!   parameters (fitted CLV model, RFM breakpoints, percentile cutoffs), the storefront bulk
//!   write in flight (`bulk_writes`);
//! - `orders`: the overlay of the order map — order GID → the order's customer and
//!   fingerprint, for orders applied since the map was last settled (replays and customer
//!   changes are recognized without keeping the order itself; see `codec`). The settled
//!   entries live in a second database, `<store>/order-map`, open only while orders are
//!   applied (see `order_map`);
//! - `customer_orders`: customer GID → every order of that customer (order GID and
//!   [`OrderFacts`](crate::model::OrderFacts), sorted by order GID) in one compact value (see `codec`): evaluating a
//!   customer is one read, and the daily recalculation scans one entry per customer;
//! - `dirty`: customers whose orders changed since their last evaluation → latest email seen;
//! - `customers`: customer GID → [`CustomerRecord`] (inputs, placement and tier state);
//! - `checkpoints`: customer GID → [`TierCheckpoint`], the part of the record the next
//!   evaluation reads (written with every record; the daily recalculation scans it beside
//!   `customer_orders` instead of decoding every record);
//! - `audit`: customer GID `\0` sequence → [`AuditEntry`], every tier transition;
//! - `loyalty`: email → [`LoyaltyRecord`] (points and the loyalty app's tier);
//! - `emails`: email → customer GID, from orders (joins loyalty members to customers);
//! - `ack/<destination>` (`klaviyo`, `shopify`): customer GID → the state (and version) that
//!   destination acknowledged;
//! - `outbox`: `<destination>\0<customer GID>` → [`OutboxEntry`], the latest pending write,
//!   and `events\0<customer GID>\0<seq>` → [`EventEntry`];
//! - `webhooks`: Shopify webhook delivery id → when it was received, to ignore replays
//!   (opened on first use; see `webhooks`).
//!
//! Files, by family of trees: `orders` (the overlay, `customer_orders`, the order map's
//! settling, the scans), `evaluations` (`dirty`, `customers`, `checkpoints`, `audit`, the
//! batch commit), `outbox` (pending writes, events, `ack/…`), `meta` (cursors and the other
//! `meta` records), `loyalty` (`loyalty`, `emails`), `migrations` (format upgrades on open);
//! `scans` walks the whole store for reports, `forget` removes one customer (GDPR),
//! `webhooks` remembers recent webhook deliveries;
//! `records` and `codec` hold the values and their encodings, `key_ranges` cuts the key space
//! for the parallel scan, `blocking` runs long store work off the async workers.
//!
//! Invariants the rest of the daemon relies on: a page of orders, the customers it dirties and
//! the cursor that covers it commit in one transaction; a customer's new tier state, its
//! outbox entry, its transitions and the removal of its dirty mark commit in one transaction
//! (a record whose only change is derived values commits on its own, see
//! [`Store::commit_evaluations`]); an acknowledgement and the removal of the outbox
//! entry it settles commit in one transaction. [`Store::flush`] makes all of it durable and is
//! called before a pass reports anything done.

mod blocking;
mod bulk_writes;
mod codec;
mod error;
mod evaluations;
mod forget;
mod fresh_backfill;
mod key_ranges;
mod loyalty;
mod meta;
mod migrations;
mod order_map;
mod orders;
mod outbox;
mod records;
mod scans;
#[cfg(test)]
mod tests;
mod webhooks;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Tree;

pub use bulk_writes::{BulkWriteKind, BulkWriteOp, BulkWriteProgress, StorefrontBulk};
pub use error::StoreError;
pub use evaluations::{Evaluation, RecordChange};
pub use forget::Forgotten;
pub use fresh_backfill::FreshBackfill;
pub use orders::SCAN_CHUNK;
pub use outbox::{OutboxChange, OutboxCounts};

pub use records::{
    Acknowledged, AuditEntry, CustomerRecord, EventEntry, LoyaltyRecord, OrderRecord, OutboxEntry,
    TierCheckpoint,
};

use codec::decode;

/// sled's page cache when the configuration does not say (`store.cache_mb`).
pub const DEFAULT_CACHE_MB: u64 = 64;

/// Customers per sled transaction (or batch) when many commit at once: a first sync's
/// evaluations, a bulk job's acknowledgements, reconcile's repairs. Each customer's writes
/// stay in one transaction; the chunk is small because sled frees the node versions a
/// transaction replaced only when it ends, so 10,000 customers in one transaction held
/// tens of MiB of copies (BENCHMARKS.md, "Memory").
const TX_CUSTOMERS: usize = 256;

/// The format this build reads and writes. Bump it when a record's encoding changes.
pub const SCHEMA_VERSION: u32 = 6;

/// The open checkpoint store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    /// The directory, for error messages and the order map beside it.
    path: PathBuf,
    /// The main database: flushes and ids for audit and event keys.
    db: sled::Db,
    /// Format version, cursors and the day's population (`meta.rs`).
    meta: Tree,
    /// The order map's overlay: orders applied since the map was last settled.
    orders: Tree,
    /// Every customer's order facts in one value: what evaluation reads.
    customer_orders: Tree,
    /// Customers to evaluate, with the latest email their changed orders carried.
    dirty: Tree,
    /// Full customer records, for reports and `explain`.
    customers: Tree,
    /// What the next evaluation needs of a record, so the recalculation decodes no records.
    checkpoints: Tree,
    /// Every transition, for `explain`.
    audit: Tree,
    /// Loyalty members by email.
    loyalty: Tree,
    /// Email → customer, to join loyalty members to customers.
    emails: Tree,
    /// What Klaviyo acknowledged per customer.
    ack_klaviyo: Tree,
    /// What the storefront acknowledged per customer.
    ack_storefront: Tree,
    /// Pending writes and events (`outbox.rs`).
    outbox: Tree,
    /// The second database (order GID → customer), opened only while orders are applied.
    order_map: Arc<order_map::OrderMap>,
}
impl Store {
    /// Opens (or creates) the store at `path`, checking its format version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_MB)
    }

    /// Opens the store with a page cache of `cache_mb` MiB (`store.cache_mb`).
    pub fn open_with_cache(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        // Mode 0700: the store holds customers' emails and spend (`tiersync check` says so
        // of a directory others can read).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let store = Self::with_trees(path, cache_mb, open_db(path, cache_mb, LOCK_WAIT)?)?;
        store.check_version()?;
        Ok(store)
    }

    /// Opens an existing store for a command that only reads it (`status`, `explain`,
    /// `calibrate`): nothing is created or migrated, and a store held by another process is
    /// [`StoreError::Locked`] at once, so `status` can ask the daemon instead. (sled itself
    /// has no read-only mode; opening an existing store of the current format writes none of
    /// tiersync's records.)
    pub fn open_to_read(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        if !path.join("conf").is_file() {
            return Err(StoreError::Absent {
                path: path.to_path_buf(),
            });
        }
        let store = Self::with_trees(path, cache_mb, open_db(path, cache_mb, Duration::ZERO)?)?;
        match store.schema_version()? {
            Some(SCHEMA_VERSION) => Ok(store),
            Some(found) if found < SCHEMA_VERSION => Err(StoreError::NotMigrated {
                path: path.to_path_buf(),
                found,
                current: SCHEMA_VERSION,
            }),
            Some(found) => Err(StoreError::UnknownVersion {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            }),
            None => Err(StoreError::Absent {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The store's handles on an open database.
    fn with_trees(path: &Path, cache_mb: u64, db: sled::Db) -> Result<Store, StoreError> {
        let map = |e| map_sled(path, e);
        Ok(Store {
            path: path.to_path_buf(),
            meta: db.open_tree("meta").map_err(map)?,
            orders: db.open_tree("orders").map_err(map)?,
            customer_orders: db.open_tree("customer_orders").map_err(map)?,
            dirty: db.open_tree("dirty").map_err(map)?,
            customers: db.open_tree("customers").map_err(map)?,
            checkpoints: db.open_tree("checkpoints").map_err(map)?,
            audit: db.open_tree("audit").map_err(map)?,
            loyalty: db.open_tree("loyalty").map_err(map)?,
            emails: db.open_tree("emails").map_err(map)?,
            ack_klaviyo: db.open_tree("ack/klaviyo").map_err(map)?,
            // The storefront's older name, kept in the format (see `outbox::key_name`).
            ack_storefront: db.open_tree("ack/shopify").map_err(map)?,
            outbox: db.open_tree("outbox").map_err(map)?,
            order_map: Arc::new(order_map::OrderMap::new(path, cache_mb)),
            db,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every committed change durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    fn err(&self, e: sled::Error) -> StoreError {
        map_sled(&self.path, e)
    }

    fn tx_err(&self, e: TransactionError<StoreError>) -> StoreError {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.err(e),
        }
    }

    /// The values at `prefix + id` for each of `ids`, in order. Strictly increasing ids are
    /// merge-joined with one range scan from the first key to the last; otherwise each is
    /// looked up.
    fn get_many<T: serde::de::DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &'static str,
        prefix: &[u8],
        ids: &[&str],
    ) -> Result<Vec<Option<T>>, StoreError> {
        let key = |id: &str| {
            let mut key = Vec::with_capacity(prefix.len() + id.len());
            key.extend_from_slice(prefix);
            key.extend_from_slice(id.as_bytes());
            key
        };
        let decode_value = |id: &str, bytes: &[u8]| decode(name, id, bytes);
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(Vec::new());
        };
        if ids.len() < 2 || !ids.windows(2).all(|w| w[0] < w[1]) {
            return ids
                .iter()
                .map(|id| {
                    tree.get(key(id))
                        .map_err(|e| self.err(e))?
                        .map(|v| decode_value(id, &v))
                        .transpose()
                })
                .collect();
        }
        let mut found = Vec::with_capacity(ids.len());
        for item in tree.range(key(first)..=key(last)) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let k = &k[prefix.len()..];
            while found.len() < ids.len() && ids[found.len()].as_bytes() < k {
                found.push(None);
            }
            if let Some(id) = ids.get(found.len()).filter(|id| id.as_bytes() == k) {
                found.push(Some(decode_value(id, &v)?));
            }
        }
        found.resize_with(ids.len(), || None);
        Ok(found)
    }
}

/// How long a writer waits for a process that just exited to release the store's lock.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Opens sled, waiting up to `wait` if a process that just exited still holds the
/// directory's lock; a lock still held then is [`StoreError::Locked`].
fn open_db(path: &Path, cache_mb: u64, wait: Duration) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb * 1024 * 1024)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Locked {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(map_sled(path, e)),
        }
    }
}

/// Whether opening sled failed on the directory's lock (sled reports it as an `Other` error
/// whose text says "could not acquire lock").
fn is_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
}

fn index_key(customer_id: &str, order_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(customer_id.len() + order_id.len() + 1);
    key.extend_from_slice(customer_id.as_bytes());
    key.push(0);
    key.extend_from_slice(order_id.as_bytes());
    key
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn map_sled(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(source) => StoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("sled reports corruption at {at:?}"),
        },
        other => StoreError::Write(other.to_string()),
    }
}
