//! The checkpoint store: the one module that talks to sled.
//!
//! Trees:
//! - `meta`: schema version, the orders cursor, the shop time zone, the day's population
//!   parameters (fitted CLV model, RFM breakpoints, percentile cutoffs);
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
//!   and `events\0<customer GID>\0<seq>` → [`EventEntry`].
//!
//! Invariants the rest of the daemon relies on: a page of orders, the customers it dirties and
//! the cursor that covers it commit in one transaction; a customer's new tier state, its
//! outbox entry, its transitions and the removal of its dirty mark commit in one transaction
//! (a record whose only change is derived values commits on its own, see
//! [`Store::commit_evaluations`]); an acknowledgement and the removal of the outbox
//! entry it settles commit in one transaction. [`Store::flush`] makes all of it durable and is
//! called before a pass reports anything done.

mod codec;
mod error;
mod key_ranges;
mod order_map;
mod records;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

pub use error::StoreError;

use crate::model::{
    Destination, DestinationState, OrderFacts, Population, ProfileState, StorefrontState,
};
pub use records::{
    Acknowledged, AuditEntry, CustomerRecord, EventEntry, LoyaltyRecord, OrderRecord, OutboxEntry,
    TierCheckpoint,
};

use codec::{
    decode, decode_customer_facts, decode_customer_orders, decode_seen_order, encode,
    encode_customer_orders, encode_seen_order, order_key, remove_order, upsert_order, IndexedOrder,
    SeenOrder,
};

/// sled's page cache when the configuration does not say (`store.cache_mb`).
pub const DEFAULT_CACHE_MB: u64 = 64;

/// The format this build reads and writes. Bump it when a record's encoding changes.
pub const SCHEMA_VERSION: u32 = 6;

/// Customers per chunk of [`Store::scan_customers`]'s result.
pub const SCAN_CHUNK: usize = 16_384;

const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_ORDERS_CURSOR: &[u8] = b"cursor/shopify/orders";
const KEY_POPULATION: &[u8] = b"model/population";
const KEY_TIMEZONE: &[u8] = b"shop/timezone";
const KEY_LOYALTY_CURSOR: &[u8] = b"cursor/loyalty/customers";
const KEY_LAST_RECONCILE: &[u8] = b"reconcile/last";
/// When the storefront was first read back, before tiersync's first write to it.
const KEY_STOREFRONT_SEEDED: &[u8] = b"storefront/seeded";
const KEY_PARTIAL_HISTORY: &[u8] = b"shop/partial_history_since";

/// What a customer's evaluation does to its pending write at one destination.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxChange<S = ProfileState> {
    /// Nothing to change (already pending with the same payload, or nothing to send).
    Keep,
    /// Enqueue (or replace the pending entry with) this write.
    Put(Box<OutboxEntry<S>>),
    /// The destination already holds the desired state: drop any pending write.
    Remove,
}

/// One evaluated customer, ready to commit.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub record: CustomerRecord,
    pub klaviyo: OutboxChange<ProfileState>,
    pub storefront: OutboxChange<StorefrontState>,
    pub audit: Vec<AuditEntry>,
    /// Events the transitions trigger (their `seq` is assigned at commit).
    pub events: Vec<EventEntry>,
    /// Whether the customer had a dirty mark when the evaluation read them (only then is
    /// there a mark to clear).
    pub dirty: bool,
    /// How `record` differs from the stored record.
    pub change: RecordChange,
}

/// How a newly evaluated customer record differs from the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordChange {
    /// Equal but for `evaluated_at`: nothing to write.
    Unchanged,
    /// Same tier state and email; only what is derived from the orders, loyalty points, the
    /// day's population and the date (inputs, placement, next level…) moved. Evaluating the
    /// customer again from the stored record derives it again, so it need not commit with
    /// anything else.
    Derived,
    /// A new customer, or a new tier state or email.
    State,
}

impl RecordChange {
    /// Compares a new record (and its fingerprint) with the stored one's checkpoint.
    pub fn between(
        previous: Option<&TierCheckpoint>,
        record: &CustomerRecord,
        fingerprint: u64,
    ) -> RecordChange {
        let Some(previous) = previous else {
            return RecordChange::State;
        };
        if previous.tier != record.tier || previous.email != record.email {
            return RecordChange::State;
        }
        if previous.fingerprint == fingerprint && previous.historic == record.inputs.historic {
            RecordChange::Unchanged
        } else {
            RecordChange::Derived
        }
    }
}

/// Outbox totals for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: usize,
    pub failed: usize,
}

/// The open checkpoint store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    meta: Tree,
    orders: Tree,
    customer_orders: Tree,
    dirty: Tree,
    customers: Tree,
    checkpoints: Tree,
    audit: Tree,
    loyalty: Tree,
    emails: Tree,
    ack_klaviyo: Tree,
    ack_storefront: Tree,
    outbox: Tree,
    order_map: Arc<order_map::OrderMap>,
}

impl Store {
    /// Opens (or creates) the store at `path`, checking its format version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_MB)
    }

    /// Opens the store with a page cache of `cache_mb` MiB (`store.cache_mb`).
    pub fn open_with_cache(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        let map = |e| map_sled(path, e);
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let db = open_db(path, cache_mb)?;
        let store = Store {
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
            ack_storefront: db.open_tree("ack/shopify").map_err(map)?,
            outbox: db.open_tree("outbox").map_err(map)?,
            order_map: Arc::new(order_map::OrderMap::new(path, cache_mb)),
            db,
        };
        store.check_version()?;
        Ok(store)
    }

    fn check_version(&self) -> Result<(), StoreError> {
        match self.meta.get(KEY_SCHEMA).map_err(|e| self.err(e))? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        path: self.path.clone(),
                        detail: "the schema version record is not 4 bytes".into(),
                    })?;
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

    /// Moves the order entries applied since the last settle into the order map.
    pub fn settle_orders(&self) -> Result<usize, StoreError> {
        let map = self.order_map.lock(&self.meta)?;
        self.order_map.settle(&map, &self.orders, || self.flush())
    }

    /// Settles the order map and closes it, returning its memory: the daemon calls this after
    /// each ingest, so the daily recalculation runs without it.
    pub fn release_order_map(&self) -> Result<(), StoreError> {
        // An ingest that applied no orders (and left nothing from before a crash) has not
        // opened the map: opening it only to settle nothing would cost seconds at 10M orders.
        let empty = self.orders.is_empty();
        if !empty || self.order_map.is_open() {
            self.settle_orders()?;
        }
        self.order_map.close();
        Ok(())
    }

    fn set_schema_version(&self, version: u32) -> Result<(), StoreError> {
        self.flush()?;
        self.meta
            .insert(KEY_SCHEMA, &version.to_be_bytes())
            .map_err(|e| self.err(e))?;
        self.flush()
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

    // ---- orders ----------------------------------------------------------------------------

    /// The `updated_at` up to which every order has been stored.
    pub fn orders_cursor(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta
            .get(KEY_ORDERS_CURSOR)
            .map_err(|e| self.err(e))?
            .map(|v| decode("meta", "orders cursor", &v))
            .transpose()
    }

    /// Upserts a page of orders, dirties the customers whose facts changed and, when given,
    /// moves the cursor forward — all in one transaction. Replaying a page changes nothing.
    /// Returns how many orders were new or changed.
    pub fn apply_orders(
        &self,
        page: &[OrderRecord],
        cursor: Option<DateTime<Utc>>,
    ) -> Result<usize, StoreError> {
        let seen: Vec<(Vec<u8>, SeenOrder)> = page
            .iter()
            .map(|order| {
                (
                    order_key(&order.id),
                    SeenOrder {
                        customer_id: order.customer_id.clone(),
                        fingerprint: order.fingerprint(),
                    },
                )
            })
            .collect();
        let cursor = cursor
            .map(|c| Ok::<_, StoreError>((c, encode(&c)?)))
            .transpose()?;
        let map = if page.is_empty() {
            None
        } else {
            Some(self.order_map.lock(&self.meta)?)
        };
        // What the map holds for each order; the overlay, read in the transaction, is newer.
        let settled: Vec<Option<sled::IVec>> = match &map {
            Some(map) => seen
                .iter()
                .map(|(key, _)| map.orders.get(key))
                .collect::<Result<_, _>>()
                .map_err(|e| map_sled(self.order_map.path(), e))?,
            None => Vec::new(),
        };
        let changed = (
            &self.orders,
            &self.customer_orders,
            &self.dirty,
            &self.meta,
            &self.emails,
        )
            .transaction(|(orders, index, dirty, meta, emails)| {
                // The index entries this page changes, read once and written once at the end
                // (a page usually holds several orders of the same customer).
                let mut entries: HashMap<String, Vec<IndexedOrder>> = HashMap::new();
                let mut load =
                    |customer: &str| -> Result<(), ConflictableTransactionError<StoreError>> {
                        if !entries.contains_key(customer) {
                            let current = match index.get(customer.as_bytes())? {
                                Some(bytes) => {
                                    decode_customer_orders(customer, &bytes).map_err(abort)?
                                }
                                None => Vec::new(),
                            };
                            entries.insert(customer.to_string(), current);
                        }
                        Ok(())
                    };
                // In page order: (order, new customer and facts, customer it moved away from).
                let mut touched: Vec<IndexChange> = Vec::new();
                let mut changed = 0;
                for (i, (order, (key, seen))) in page.iter().zip(&seen).enumerate() {
                    let previous = orders
                        .get(key.as_slice())?
                        .or_else(|| settled[i].clone())
                        .map(|bytes| decode_seen_order(&order.id, &bytes))
                        .transpose()
                        .map_err(abort)?;
                    if previous.as_ref() == Some(seen) {
                        continue;
                    }
                    changed += 1;
                    if let Some(previous) = previous {
                        if let Some(old_customer) = &previous.customer_id {
                            if previous.customer_id != order.customer_id {
                                load(old_customer)?;
                                touched.push((order.id.clone(), None, Some(old_customer.clone())));
                                dirty.insert(
                                    old_customer.as_bytes(),
                                    encode(&None::<String>).map_err(abort)?,
                                )?;
                            }
                        }
                    }
                    orders.insert(key.as_slice(), encode_seen_order(seen))?;
                    if let Some(customer) = &order.customer_id {
                        load(customer)?;
                        touched.push((
                            order.id.clone(),
                            Some((customer.clone(), order.facts())),
                            None,
                        ));
                        dirty.insert(
                            customer.as_bytes(),
                            encode(&order.customer_email).map_err(abort)?,
                        )?;
                        if let Some(email) = &order.customer_email {
                            emails.insert(email.as_bytes(), customer.as_bytes())?;
                        }
                    }
                }
                for (order_id, upsert, removed_from) in touched {
                    if let Some(old_customer) = removed_from {
                        if let Some(entry) = entries.get_mut(&old_customer) {
                            remove_order(entry, &order_id);
                        }
                    }
                    if let Some((customer, facts)) = upsert {
                        if let Some(entry) = entries.get_mut(&customer) {
                            upsert_order(entry, &order_id, facts);
                        }
                    }
                }
                for (customer, entry) in &entries {
                    if entry.is_empty() {
                        index.remove(customer.as_bytes())?;
                    } else {
                        index.insert(customer.as_bytes(), encode_customer_orders(entry))?;
                    }
                }
                if let Some((cursor, cursor_bytes)) = &cursor {
                    let newer = match meta.get(KEY_ORDERS_CURSOR)? {
                        Some(old) => {
                            let old: DateTime<Utc> =
                                decode("meta", "orders cursor", &old).map_err(abort)?;
                            cursor > &old
                        }
                        None => true,
                    };
                    if newer {
                        meta.insert(KEY_ORDERS_CURSOR, cursor_bytes.as_slice())?;
                    }
                }
                Ok(changed)
            })
            .map_err(|e| self.tx_err(e))?;
        if let Some(map) = map {
            if self.order_map.wrote(changed) {
                self.order_map.settle(&map, &self.orders, || self.flush())?;
            }
        }
        Ok(changed)
    }

    /// The facts of every order of one customer, sorted by order GID.
    pub fn customer_orders(&self, customer_id: &str) -> Result<Vec<OrderFacts>, StoreError> {
        let mut facts = Vec::new();
        if let Some(bytes) = self
            .customer_orders
            .get(customer_id.as_bytes())
            .map_err(|e| self.err(e))?
        {
            decode_customer_facts(customer_id, &bytes, &mut facts)?;
        }
        Ok(facts)
    }

    // ---- customers -------------------------------------------------------------------------

    /// Customers to evaluate (their orders changed since their last evaluation), in key order.
    pub fn dirty_customers(&self) -> Result<Vec<String>, StoreError> {
        self.dirty
            .iter()
            .keys()
            .map(|key| {
                let key = key.map_err(|e| self.err(e))?;
                Ok(String::from_utf8_lossy(&key).into_owned())
            })
            .collect()
    }

    /// For each of `ids` (sorted: one range scan), `None` when the customer is not dirty,
    /// else the latest email their changed orders carried.
    pub fn dirty_emails_sorted(
        &self,
        ids: &[&str],
    ) -> Result<Vec<Option<Option<String>>>, StoreError> {
        self.get_many(&self.dirty, "dirty", b"", ids)
    }

    pub fn customer(&self, id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        self.customers
            .get(id)
            .map_err(|e| self.err(e))?
            .map(|v| decode("customers", id, &v))
            .transpose()
    }

    /// The checkpoints of many customers at once, in the order of `ids`. Sorted ids are read
    /// with one range scan instead of a lookup each.
    pub fn checkpoints_sorted(
        &self,
        ids: &[&str],
    ) -> Result<Vec<Option<TierCheckpoint>>, StoreError> {
        self.get_many(&self.checkpoints, "checkpoints", b"", ids)
    }

    /// Every customer record (reports).
    pub fn customers(&self) -> impl Iterator<Item = Result<CustomerRecord, StoreError>> + '_ {
        self.customers.iter().map(move |item| {
            let (key, value) = item.map_err(|e| self.err(e))?;
            decode("customers", &String::from_utf8_lossy(&key), &value)
        })
    }

    /// Commits evaluated customers.
    ///
    /// Every customer with a transition, an outbox change, a dirty mark or a new tier state
    /// (or email) commits its record, outbox change, audit entries and the removal of its
    /// mark in one transaction (one for the whole batch). The others only had derived values
    /// move ([`RecordChange::Derived`]): their records are written afterwards with one
    /// `sled::Batch` (atomic, without a transaction's bookkeeping); records that did not
    /// change at all ([`RecordChange::Unchanged`]) are not written.
    ///
    /// A crash between the transaction and the batch loses only derived values of customers
    /// whose tier state, outbox entry and audit trail are already right: the next evaluation
    /// of those customers derives the same values from the stored record (no transition is
    /// lost or recorded twice, since their stored tier state is already current), and the
    /// outbox is planned from desired versus acknowledged state either way. Audit keys come
    /// from sled's monotonic id generator only for transitions actually committed.
    pub fn commit_evaluations(&self, batch: &[Evaluation]) -> Result<(), StoreError> {
        struct Encoded {
            /// The record and its checkpoint.
            record: Option<(Vec<u8>, Vec<u8>)>,
            put: Option<Vec<u8>>,
            storefront: Option<Vec<u8>>,
            audit: Vec<(Vec<u8>, Vec<u8>)>,
            events: Vec<(Vec<u8>, Vec<u8>)>,
        }
        let transactional = |e: &Evaluation| {
            e.dirty
                || !e.audit.is_empty()
                || !e.events.is_empty()
                || e.klaviyo != OutboxChange::Keep
                || e.storefront != OutboxChange::Keep
                || e.change == RecordChange::State
        };
        let mut in_tx: Vec<(&Evaluation, Encoded)> = Vec::new();
        let mut derived = sled::Batch::default();
        let mut derived_checkpoints = sled::Batch::default();
        let mut derived_count = 0usize;
        for e in batch {
            if !transactional(e) {
                if e.change == RecordChange::Derived {
                    derived.insert(e.record.id.as_bytes(), encode(&e.record)?);
                    derived_checkpoints
                        .insert(e.record.id.as_bytes(), encode(&e.record.checkpoint())?);
                    derived_count += 1;
                }
                continue;
            }
            let put = match &e.klaviyo {
                OutboxChange::Put(entry) => Some(encode(entry)?),
                _ => None,
            };
            let storefront = match &e.storefront {
                OutboxChange::Put(entry) => Some(encode(entry)?),
                _ => None,
            };
            let audit = e
                .audit
                .iter()
                .map(|entry| {
                    let seq = self.db.generate_id().map_err(|e| self.err(e))?;
                    let mut key = e.record.id.as_bytes().to_vec();
                    key.push(0);
                    key.extend_from_slice(&seq.to_be_bytes());
                    Ok((key, encode(entry)?))
                })
                .collect::<Result<_, StoreError>>()?;
            let events = e
                .events
                .iter()
                .map(|event| {
                    let seq = self.db.generate_id().map_err(|e| self.err(e))?;
                    let event = EventEntry {
                        seq,
                        ..event.clone()
                    };
                    Ok((event_key(&event.customer_id, seq), encode(&event)?))
                })
                .collect::<Result<_, StoreError>>()?;
            let record = match e.change {
                RecordChange::Unchanged => None,
                _ => Some((encode(&e.record)?, encode(&e.record.checkpoint())?)),
            };
            in_tx.push((
                e,
                Encoded {
                    record,
                    put,
                    storefront,
                    audit,
                    events,
                },
            ));
        }
        if !in_tx.is_empty() {
            (
                &self.customers,
                &self.checkpoints,
                &self.dirty,
                &self.outbox,
                &self.audit,
            )
                .transaction(|(customers, checkpoints, dirty, outbox, audit)| {
                    for (evaluation, enc) in &in_tx {
                        let id = evaluation.record.id.as_str();
                        if let Some((record, checkpoint)) = &enc.record {
                            customers.insert(id.as_bytes(), record.as_slice())?;
                            checkpoints.insert(id.as_bytes(), checkpoint.as_slice())?;
                        }
                        if evaluation.dirty {
                            dirty.remove(id.as_bytes())?;
                        }
                        for (destination, removes, put) in [
                            (
                                Destination::Klaviyo,
                                evaluation.klaviyo == OutboxChange::Remove,
                                &enc.put,
                            ),
                            (
                                Destination::Storefront,
                                evaluation.storefront == OutboxChange::Remove,
                                &enc.storefront,
                            ),
                        ] {
                            let key = outbox_key(destination, id);
                            if let Some(bytes) = put {
                                outbox.insert(key, bytes.as_slice())?;
                            } else if removes {
                                outbox.remove(key)?;
                            }
                        }
                        for (key, value) in &enc.audit {
                            audit.insert(key.as_slice(), value.as_slice())?;
                        }
                        for (key, value) in &enc.events {
                            outbox.insert(key.as_slice(), value.as_slice())?;
                        }
                    }
                    Ok(())
                })
                .map_err(|e| self.tx_err(e))?;
        }
        if derived_count > 0 {
            // Record first: a crash between the two leaves a checkpoint whose fingerprint is
            // stale, so the next evaluation rewrites the record once more, nothing worse.
            self.customers
                .apply_batch(derived)
                .map_err(|e| self.err(e))?;
            self.checkpoints
                .apply_batch(derived_checkpoints)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// A customer's recorded transitions, oldest first.
    pub fn audit(&self, customer_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let mut prefix = customer_id.as_bytes().to_vec();
        prefix.push(0);
        self.audit
            .scan_prefix(&prefix)
            .map(|item| {
                let (_, value) = item.map_err(|e| self.err(e))?;
                decode("audit", customer_id, &value)
            })
            .collect()
    }

    /// Every customer's order facts, one customer at a time in key order, in a single scan
    /// (the daily recalculation reads the whole store this way).
    pub fn scan_customer_orders(
        &self,
        mut visit: impl FnMut(&str, &[OrderFacts]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut facts: Vec<OrderFacts> = Vec::new();
        for item in self.customer_orders.iter() {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let lossy;
            let id = match std::str::from_utf8(&key) {
                Ok(id) => id,
                Err(_) => {
                    lossy = String::from_utf8_lossy(&key).into_owned();
                    &lossy
                }
            };
            decode_customer_facts(id, &value, &mut facts)?;
            visit(id, &facts)?;
        }
        Ok(())
    }

    /// Every customer with orders — their order facts and last checkpoint — in key order: the
    /// daily recalculation's one read of the store. The key space is cut into up to `parts`
    /// ranges (see `key_ranges`), each scanned on its own thread with `visit` applied there; the
    /// results come back in key order as chunks of at most [`SCAN_CHUNK`] (never one growing
    /// `Vec`: at a million customers its doublings copied hundreds of MiB and the copies'
    /// fresh pages were a third of the scan's time).
    pub fn scan_customers<R: Send>(
        &self,
        parts: usize,
        visit: impl Fn(&str, &[OrderFacts], Option<TierCheckpoint>) -> R + Sync,
    ) -> Result<Vec<Vec<R>>, StoreError> {
        let bounds = |item: Option<Result<(sled::IVec, sled::IVec), sled::Error>>| {
            item.transpose()
                .map_err(|e| self.err(e))
                .map(|kv| kv.map(|(k, _)| k))
        };
        let (Some(first), Some(last)) = (
            bounds(self.customer_orders.iter().next())?,
            bounds(self.customer_orders.iter().next_back())?,
        ) else {
            return Ok(Vec::new());
        };
        let ranges = key_ranges::key_ranges(&first, &last, parts);
        let visit = &visit;
        let per_range: Vec<Result<Vec<Vec<R>>, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .into_iter()
                .map(|range| scope.spawn(move || self.scan_range(range, visit)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a store scan thread panicked"))
                .collect()
        });
        let mut chunks = Vec::new();
        for range in per_range {
            chunks.extend(range?);
        }
        Ok(chunks)
    }

    /// [`Store::scan_customers`] over one key range: `customer_orders` and `checkpoints`
    /// walked side by side.
    fn scan_range<R>(
        &self,
        range: key_ranges::KeyRange,
        visit: &impl Fn(&str, &[OrderFacts], Option<TierCheckpoint>) -> R,
    ) -> Result<Vec<Vec<R>>, StoreError> {
        let mut checkpoints = self.checkpoints.range(range.clone()).peekable();
        let mut facts: Vec<OrderFacts> = Vec::new();
        let mut chunks: Vec<Vec<R>> = Vec::new();
        let mut out: Vec<R> = Vec::with_capacity(SCAN_CHUNK);
        for item in self.customer_orders.range(range) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let lossy;
            let id = match std::str::from_utf8(&key) {
                Ok(id) => id,
                Err(_) => {
                    lossy = String::from_utf8_lossy(&key).into_owned();
                    &lossy
                }
            };
            decode_customer_facts(id, &value, &mut facts)?;
            let mut checkpoint = None;
            while let Some(next) = checkpoints.peek() {
                let at = match next {
                    Ok((k, _)) => k.as_ref().cmp(key.as_ref()),
                    Err(_) => std::cmp::Ordering::Less,
                };
                if at == std::cmp::Ordering::Greater {
                    break;
                }
                let (_, bytes) = checkpoints
                    .next()
                    .expect("peeked")
                    .map_err(|e| self.err(e))?;
                if at == std::cmp::Ordering::Equal {
                    checkpoint = Some(decode("checkpoints", id, &bytes)?);
                    break;
                }
            }
            if out.len() == SCAN_CHUNK {
                chunks.push(std::mem::replace(&mut out, Vec::with_capacity(SCAN_CHUNK)));
            }
            out.push(visit(id, &facts, checkpoint));
        }
        if !out.is_empty() {
            chunks.push(out);
        }
        Ok(chunks)
    }

    /// The population parameters of the last daily recalculation.
    pub fn population(&self) -> Result<Option<Population>, StoreError> {
        self.meta_get(KEY_POPULATION, "population")
    }

    pub fn set_population(&self, population: &Population) -> Result<(), StoreError> {
        self.meta_set(KEY_POPULATION, population)
    }

    /// The shop's IANA time zone, once learned from Shopify.
    /// Why a destination is stopped (its credential was refused), if it is.
    pub fn destination_stopped(
        &self,
        destination: Destination,
    ) -> Result<Option<String>, StoreError> {
        self.meta_get(&stopped_key(destination), "destination stop")
    }

    /// Records (or, with `None`, clears) a destination's stop.
    pub fn set_destination_stopped(
        &self,
        destination: Destination,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        match why {
            Some(why) => self.meta_set(&stopped_key(destination), &why.to_string()),
            None => self
                .meta
                .remove(stopped_key(destination))
                .map(|_| ())
                .map_err(|e| self.err(e)),
        }
    }

    /// When the daemon last ran its scheduled reconcile.
    pub fn last_reconcile(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_LAST_RECONCILE, "last reconcile")
    }

    pub fn set_last_reconcile(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta_set(KEY_LAST_RECONCILE, &at)
    }

    /// When the storefront's existing tags and metafields were read into the acknowledged
    /// state (`None`: not yet — the first pass of this store must read them before writing).
    pub fn storefront_seeded(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_STOREFRONT_SEEDED, "storefront seeding")
    }

    pub fn set_storefront_seeded(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta_set(KEY_STOREFRONT_SEEDED, &at)
    }

    /// When the store's order history starts, if the first backfill ran without
    /// `read_all_orders` (only the last 60 days were visible). Kept until `tiersync rebuild`,
    /// since getting the scope later does not bring the older orders in by itself.
    pub fn partial_history_since(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_PARTIAL_HISTORY, "partial history")
    }

    pub fn set_partial_history_since(&self, since: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta_set(KEY_PARTIAL_HISTORY, &since)
    }

    pub fn shop_timezone(&self) -> Result<Option<String>, StoreError> {
        self.meta_get(KEY_TIMEZONE, "shop time zone")
    }

    pub fn set_shop_timezone(&self, name: &str) -> Result<(), StoreError> {
        self.meta_set(KEY_TIMEZONE, &name.to_string())
    }

    fn meta_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        self.meta
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| decode("meta", what, &v))
            .transpose()
    }

    fn meta_set<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.meta
            .insert(key, encode(value)?)
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    // ---- events ----------------------------------------------------------------------------

    /// Events waiting to be sent (not parked), per customer in the order they happened.
    pub fn pending_events(&self) -> Result<Vec<EventEntry>, StoreError> {
        Ok(self
            .events()?
            .into_iter()
            .filter(|e| e.failed.is_none())
            .collect())
    }

    fn events(&self) -> Result<Vec<EventEntry>, StoreError> {
        self.outbox_section(EVENTS_PREFIX)
    }

    /// Every outbox value under `<section>\0`, in key order.
    fn outbox_section<T: serde::de::DeserializeOwned>(
        &self,
        section: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut prefix = section.as_bytes().to_vec();
        prefix.push(0);
        self.outbox
            .scan_prefix(&prefix)
            .map(|item| {
                let (key, value) = item.map_err(|e| self.err(e))?;
                decode("outbox", &String::from_utf8_lossy(&key), &value)
            })
            .collect()
    }

    /// Pending and parked events.
    pub fn event_counts(&self) -> Result<OutboxCounts, StoreError> {
        let events = self.events()?;
        let failed = events.iter().filter(|e| e.failed.is_some()).count();
        Ok(OutboxCounts {
            pending: events.len() - failed,
            failed,
        })
    }

    /// Klaviyo accepted the event: it leaves the outbox.
    pub fn acknowledge_event(&self, event: &EventEntry) -> Result<(), StoreError> {
        self.outbox
            .remove(event_key(&event.customer_id, event.seq))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Klaviyo refused the event for good: it stays, parked, with the error detail.
    pub fn park_event(&self, event: &EventEntry, detail: &str) -> Result<(), StoreError> {
        let parked = EventEntry {
            failed: Some(detail.to_string()),
            ..event.clone()
        };
        self.outbox
            .insert(event_key(&event.customer_id, event.seq), encode(&parked)?)
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    // ---- loyalty ---------------------------------------------------------------------------

    /// The `updated_at` up to which every loyalty member has been stored.
    pub fn loyalty_cursor(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_LOYALTY_CURSOR, "loyalty cursor")
    }

    /// Upserts loyalty members, dirties the customers whose points or app tier changed, and
    /// moves the cursor, in one transaction. Returns how many members changed.
    pub fn apply_loyalty(
        &self,
        members: &[(String, LoyaltyRecord)],
        cursor: Option<DateTime<Utc>>,
    ) -> Result<usize, StoreError> {
        let encoded: Vec<Vec<u8>> = members
            .iter()
            .map(|(_, r)| encode(r))
            .collect::<Result<_, _>>()?;
        let cursor = cursor.map(|c| encode(&c)).transpose()?;
        (&self.loyalty, &self.emails, &self.dirty, &self.meta)
            .transaction(|(loyalty, emails, dirty, meta)| {
                let mut changed = 0;
                for ((email, _), bytes) in members.iter().zip(&encoded) {
                    if loyalty.get(email.as_bytes())?.as_deref() == Some(bytes.as_slice()) {
                        continue;
                    }
                    changed += 1;
                    loyalty.insert(email.as_bytes(), bytes.as_slice())?;
                    if let Some(customer) = emails.get(email.as_bytes())? {
                        dirty.insert(customer, encode(&Some(email.clone())).map_err(abort)?)?;
                    }
                }
                if let Some(cursor) = &cursor {
                    meta.insert(KEY_LOYALTY_CURSOR, cursor.as_slice())?;
                }
                Ok(changed)
            })
            .map_err(|e| self.tx_err(e))
    }

    pub fn loyalty_for_email(&self, email: &str) -> Result<Option<LoyaltyRecord>, StoreError> {
        self.loyalty
            .get(email.as_bytes())
            .map_err(|e| self.err(e))?
            .map(|v| decode("loyalty", email, &v))
            .transpose()
    }

    /// Every loyalty member that matches a customer, by customer GID.
    pub fn loyalty_by_customer(
        &self,
    ) -> Result<std::collections::HashMap<String, LoyaltyRecord>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for item in self.loyalty.iter() {
            let (email, value) = item.map_err(|e| self.err(e))?;
            if let Some(customer) = self.emails.get(&email).map_err(|e| self.err(e))? {
                let record = decode("loyalty", &String::from_utf8_lossy(&email), &value)?;
                out.insert(String::from_utf8_lossy(&customer).into_owned(), record);
            }
        }
        Ok(out)
    }

    // ---- destinations ----------------------------------------------------------------------

    fn ack_tree(&self, destination: Destination) -> &Tree {
        match destination {
            Destination::Klaviyo => &self.ack_klaviyo,
            Destination::Storefront => &self.ack_storefront,
        }
    }

    /// What the destination last acknowledged for a customer.
    pub fn acknowledged<S: DestinationState>(
        &self,
        customer_id: &str,
    ) -> Result<Option<Acknowledged<S>>, StoreError> {
        self.ack_tree(S::DESTINATION)
            .get(customer_id)
            .map_err(|e| self.err(e))?
            .map(|v| decode("ack", customer_id, &v))
            .transpose()
    }

    /// What the destination last acknowledged for many customers, in the order of `ids` (one
    /// range scan when `ids` are sorted).
    pub fn acknowledged_sorted<S: DestinationState>(
        &self,
        ids: &[&str],
    ) -> Result<Vec<Option<Acknowledged<S>>>, StoreError> {
        self.get_many(self.ack_tree(S::DESTINATION), "ack", b"", ids)
    }

    /// Every acknowledgement of a destination, by customer GID (reconcile, status).
    pub fn acknowledgements<S: DestinationState>(
        &self,
    ) -> Result<HashMap<String, Acknowledged<S>>, StoreError> {
        self.ack_tree(S::DESTINATION)
            .iter()
            .map(|item| {
                let (key, value) = item.map_err(|e| self.err(e))?;
                let id = String::from_utf8_lossy(&key).into_owned();
                let ack = decode("ack", &id, &value)?;
                Ok((id, ack))
            })
            .collect()
    }

    /// The pending entries of many customers, in the order of `ids` (one range scan when
    /// `ids` are sorted).
    pub fn pending_entries_sorted<S: DestinationState>(
        &self,
        ids: &[&str],
    ) -> Result<Vec<Option<OutboxEntry<S>>>, StoreError> {
        let mut prefix = S::DESTINATION.as_str().as_bytes().to_vec();
        prefix.push(0);
        self.get_many(&self.outbox, "outbox", &prefix, ids)
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

    pub fn pending_entry<S: DestinationState>(
        &self,
        customer_id: &str,
    ) -> Result<Option<OutboxEntry<S>>, StoreError> {
        self.outbox
            .get(outbox_key(S::DESTINATION, customer_id))
            .map_err(|e| self.err(e))?
            .map(|v| decode("outbox", customer_id, &v))
            .transpose()
    }

    /// Pending (not parked) writes for a destination, oldest key first.
    pub fn pending<S: DestinationState>(&self) -> Result<Vec<OutboxEntry<S>>, StoreError> {
        Ok(self
            .outbox_entries::<S>()?
            .into_iter()
            .filter(|e| e.failed.is_none())
            .collect())
    }

    fn outbox_entries<S: DestinationState>(&self) -> Result<Vec<OutboxEntry<S>>, StoreError> {
        self.outbox_section(S::DESTINATION.as_str())
    }

    /// Writes the destination refused for good, with the API's error detail.
    pub fn parked<S: DestinationState>(&self) -> Result<Vec<OutboxEntry<S>>, StoreError> {
        Ok(self
            .outbox_entries::<S>()?
            .into_iter()
            .filter(|e| e.failed.is_some())
            .collect())
    }

    /// Events Klaviyo refused for good.
    pub fn parked_events(&self) -> Result<Vec<EventEntry>, StoreError> {
        Ok(self
            .events()?
            .into_iter()
            .filter(|e| e.failed.is_some())
            .collect())
    }

    /// How many customers the destination has acknowledged.
    pub fn acknowledged_count(&self, destination: Destination) -> usize {
        self.ack_tree(destination).len()
    }

    pub fn outbox_counts<S: DestinationState>(&self) -> Result<OutboxCounts, StoreError> {
        let entries = self.outbox_entries::<S>()?;
        let failed = entries.iter().filter(|e| e.failed.is_some()).count();
        Ok(OutboxCounts {
            pending: entries.len() - failed,
            failed,
        })
    }

    /// Records that the destination now holds each entry's state (and version) and removes
    /// the entries that are still the latest desired state (a newer one enqueued meanwhile
    /// stays pending).
    pub fn acknowledge<S: DestinationState>(
        &self,
        delivered: &[OutboxEntry<S>],
    ) -> Result<(), StoreError> {
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = delivered
            .iter()
            .map(|e| {
                let ack = Acknowledged {
                    version: e.version,
                    state: e.state.clone(),
                };
                Ok((encode(&ack)?, encode(e)?))
            })
            .collect::<Result<_, StoreError>>()?;
        (self.ack_tree(S::DESTINATION), &self.outbox)
            .transaction(|(acks, outbox)| {
                for (entry, (ack, whole)) in delivered.iter().zip(&encoded) {
                    acks.insert(entry.customer_id.as_bytes(), ack.as_slice())?;
                    let key = outbox_key(S::DESTINATION, &entry.customer_id);
                    if outbox.get(&key)?.as_deref() == Some(whole.as_slice()) {
                        outbox.remove(key)?;
                    }
                }
                Ok(())
            })
            .map_err(|e| self.tx_err(e))
    }

    /// Reconcile found the destination holding something else than what it acknowledged (or
    /// nothing): its acknowledgement is replaced by what was read back (`None`: dropped) and
    /// the desired state is enqueued, in one transaction, so the next delivery repairs it.
    pub fn enqueue_repairs<S: DestinationState>(
        &self,
        repairs: &[(OutboxEntry<S>, Option<Acknowledged<S>>)],
    ) -> Result<(), StoreError> {
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = repairs
            .iter()
            .map(|(entry, seen)| Ok((encode(entry)?, seen.as_ref().map(encode).transpose()?)))
            .collect::<Result<_, StoreError>>()?;
        (self.ack_tree(S::DESTINATION), &self.outbox)
            .transaction(|(acks, outbox)| {
                for ((entry, _), (whole, seen)) in repairs.iter().zip(&encoded) {
                    let id = entry.customer_id.as_bytes();
                    match seen {
                        Some(seen) => acks.insert(id, seen.as_slice())?,
                        None => acks.remove(id)?,
                    };
                    outbox.insert(
                        outbox_key(S::DESTINATION, &entry.customer_id),
                        whole.as_slice(),
                    )?;
                }
                Ok(())
            })
            .map_err(|e| self.tx_err(e))
    }

    /// Un-parks every refused write and event (`tiersync retry`): they go out again with the
    /// next delivery. Returns how many.
    pub fn unpark_all(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        for item in self.outbox.iter() {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let retried = if key.starts_with(b"events\0") {
                let event: EventEntry = decode("outbox", &name, &value)?;
                event.failed.is_some().then(|| {
                    encode(&EventEntry {
                        failed: None,
                        ..event
                    })
                })
            } else if key.starts_with(b"klaviyo\0") {
                unparked::<ProfileState>(&name, &value)?
            } else {
                unparked::<StorefrontState>(&name, &value)?
            };
            if let Some(bytes) = retried {
                // Only if unchanged meanwhile: a newer desired state wins.
                if self
                    .outbox
                    .compare_and_swap(&key, Some(value), Some(bytes?))
                    .map_err(|e| self.err(e))?
                    .is_ok()
                {
                    count += 1;
                }
            }
        }
        self.flush()?;
        Ok(count)
    }

    /// Reconcile found the destination already showing the desired state: record that as
    /// acknowledged (with the current version) and drop any pending write for it, in one
    /// transaction. This is how a lost store's acknowledgements are rebuilt without writing
    /// every customer again.
    pub fn adopt<S: DestinationState>(
        &self,
        seen: &[(String, Acknowledged<S>)],
    ) -> Result<(), StoreError> {
        let encoded: Vec<Vec<u8>> = seen
            .iter()
            .map(|(_, ack)| encode(ack))
            .collect::<Result<_, _>>()?;
        (self.ack_tree(S::DESTINATION), &self.outbox)
            .transaction(|(acks, outbox)| {
                for ((id, _), ack) in seen.iter().zip(&encoded) {
                    acks.insert(id.as_bytes(), ack.as_slice())?;
                    outbox.remove(outbox_key(S::DESTINATION, id))?;
                }
                Ok(())
            })
            .map_err(|e| self.tx_err(e))
    }

    /// Parks a write the destination refused for good, with the API's error detail, unless a
    /// newer desired state replaced it meanwhile.
    pub fn park<S: DestinationState>(
        &self,
        entry: &OutboxEntry<S>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let key = outbox_key(S::DESTINATION, &entry.customer_id);
        let current = encode(entry)?;
        let parked = encode(&OutboxEntry {
            failed: Some(detail.to_string()),
            ..entry.clone()
        })?;
        self.outbox
            .compare_and_swap(key, Some(current), Some(parked))
            .map_err(|e| self.err(e))?
            .ok();
        Ok(())
    }
}

/// Opens sled, waiting briefly if a process that just exited still holds the directory's
/// lock, and naming the likely cause if another process keeps it.
fn open_db(path: &Path, cache_mb: u64) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb * 1024 * 1024)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
            {
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Io {
                        path: path.to_path_buf(),
                        source: std::io::Error::new(
                            e.kind(),
                            format!("{e}: another tiersync process (the daemon?) is using this store; stop it or point this command at another store.path"),
                        ),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(map_sled(path, e)),
        }
    }
}

/// One order's change to the index within a page: the order GID, its new customer and facts,
/// and the customer it moved away from.
type IndexChange = (String, Option<(String, OrderFacts)>, Option<String>);

fn index_key(customer_id: &str, order_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(customer_id.len() + order_id.len() + 1);
    key.extend_from_slice(customer_id.as_bytes());
    key.push(0);
    key.extend_from_slice(order_id.as_bytes());
    key
}

/// Events live in the outbox under `events\0<customer>\0<seq>`: in order per customer.
const EVENTS_PREFIX: &str = "events";

fn event_key(customer_id: &str, seq: u64) -> Vec<u8> {
    let mut key = index_key(EVENTS_PREFIX, customer_id);
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The entry with its refusal cleared, if it was parked.
fn unparked<S: DestinationState>(
    key: &str,
    value: &[u8],
) -> Result<Option<Result<Vec<u8>, StoreError>>, StoreError> {
    let entry: OutboxEntry<S> = decode("outbox", key, value)?;
    Ok(entry.failed.is_some().then(|| {
        encode(&OutboxEntry {
            failed: None,
            ..entry
        })
    }))
}

fn stopped_key(destination: Destination) -> Vec<u8> {
    format!("stopped/{}", destination.as_str()).into_bytes()
}

fn outbox_key(destination: Destination, customer_id: &str) -> Vec<u8> {
    index_key(destination.as_str(), customer_id)
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
