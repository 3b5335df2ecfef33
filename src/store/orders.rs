//! Orders: applying pages of orders (the order map's overlay, each customer's order facts,
//! the dirty marks and the orders cursor in one transaction), settling the order map, and
//! the scans the evaluation reads the order facts with.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::codec::{
    decode, decode_customer_facts, decode_customer_orders, decode_seen_order, encode,
    encode_customer_orders, encode_seen_order, order_key, remove_order, upsert_order, IndexedOrder,
    SeenOrder,
};
use super::meta::KEY_ORDERS_CURSOR;
use super::{abort, key_ranges, map_sled, OrderRecord, Store, StoreError, TierCheckpoint};
use crate::model::OrderFacts;

/// Customers per chunk of [`Store::scan_customers`]'s result.
pub const SCAN_CHUNK: usize = 16_384;

impl Store {
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
                // (a page usually holds several orders of the same customer), in key order:
                // sled then walks its leaves once instead of jumping between them, which on a
                // backfill of millions of orders (every customer somewhere in every page) is
                // most of the cost.
                let mut entries: BTreeMap<String, Vec<IndexedOrder>> = BTreeMap::new();
                let mut rewritten: BTreeSet<&str> = BTreeSet::new();
                let mut dirty_marks: BTreeMap<String, Option<&String>> = BTreeMap::new();
                // Each email's customer: that of the page's last order with it.
                let mut email_owners: BTreeMap<&str, &str> = BTreeMap::new();
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
                let mut named: Vec<&str> = page
                    .iter()
                    .filter_map(|o| o.customer_id.as_deref())
                    .collect();
                named.sort_unstable();
                named.dedup();
                for customer in named {
                    load(customer)?;
                }
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
                                dirty_marks.entry(old_customer.clone()).or_insert(None);
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
                        dirty_marks.insert(customer.clone(), order.customer_email.as_ref());
                        if let Some(email) = &order.customer_email {
                            email_owners.insert(email, customer);
                        }
                    }
                }
                for (order_id, upsert, removed_from) in &touched {
                    if let Some(old_customer) = removed_from {
                        if let Some(entry) = entries.get_mut(old_customer) {
                            if remove_order(entry, order_id) {
                                rewritten.insert(old_customer);
                            }
                        }
                    }
                    if let Some((customer, facts)) = upsert {
                        if let Some(entry) = entries.get_mut(customer) {
                            if upsert_order(entry, order_id, *facts) {
                                rewritten.insert(customer);
                            }
                        }
                    }
                }
                for customer in rewritten {
                    match entries.get(customer) {
                        Some(entry) if !entry.is_empty() => {
                            index.insert(customer.as_bytes(), encode_customer_orders(entry))?;
                        }
                        _ => {
                            index.remove(customer.as_bytes())?;
                        }
                    }
                }
                for (customer, email) in dirty_marks {
                    dirty.insert(customer.as_bytes(), encode(&email).map_err(abort)?)?;
                }
                for (email, customer) in email_owners {
                    emails.insert(email.as_bytes(), customer.as_bytes())?;
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

    /// Every customer's order facts, one customer at a time in key order, in a single scan
    /// (the daily recalculation reads the whole store this way).
    pub fn scan_customer_orders(
        &self,
        mut visit: impl FnMut(&str, &[OrderFacts]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut facts: Vec<OrderFacts> = Vec::new();
        for item in self.customer_orders.iter() {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let id = String::from_utf8_lossy(&key);
            let id: &str = &id;
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
            let id = String::from_utf8_lossy(&key);
            let id: &str = &id;
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
}

/// One order's change to the index within a page: the order GID, its new customer and facts,
/// and the customer it moved away from.
type IndexChange = (String, Option<(String, OrderFacts)>, Option<String>);
