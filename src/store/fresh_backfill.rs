//! The first backfill of a store that holds no orders yet, written the fast way.
//!
//! Applied page by page ([`Store::apply_orders`]), a backfill reads and rewrites a customer's
//! whole order value once per order, and each 2,000-order page touches customers all over the
//! key space: at a million customers and 8M orders that took 11.6 minutes on one core, the
//! main database passing 4.9 GB on disk mid-way (BENCHMARKS.md, "First sync").
//!
//! Here the orders stay in memory as compact rows (the customer's number, the order in the
//! index's own encoding: about 40 bytes an order) while the result streams in, and only the
//! order map is written on the way: its keys arrive in id order, so those writes are
//! sequential. They go on a thread of their own ([`MapWriter`]): sled's inserts were 40% of
//! the backfill's CPU time and parsing the result most of the rest, so the two share the
//! cores instead of taking turns. At the end the rows are sorted by customer and each
//! customer's order value, dirty mark and email entries are written once, in key order. Then
//! the cursor moves.
//!
//! Crash safety: the map is written ahead of the main store here, which the page path never
//! allows (an order the map knows is skipped when seen again). So [`Store::begin_fresh_backfill`]
//! first records a mark in `meta`, and the cursor and the mark's removal commit together at the
//! end. A store found with the mark ([`Store::abandon_unfinished_backfill`], at the start of
//! every ingest) lost its run part-way: its orders, index, dirty marks, email index and map are
//! cleared and the backfill starts over, as a first backfill without a cursor would anyway.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::codec::{
    decode_customer_orders, encode, encode_customer_orders, encode_seen_order, order_key,
    IndexedOrder, SeenOrder,
};
use super::meta::KEY_ORDERS_CURSOR;
use super::{map_sled, OrderRecord, Store, StoreError};

/// The mark of a fresh backfill under way (its value is empty).
const KEY_FRESH_BACKFILL: &[u8] = b"backfill/fresh";
/// Entries per sled batch while writing (sled keeps the node versions a batch replaced until
/// it ends; see `TX_CUSTOMERS`).
const BATCH: usize = 1_000;

/// A customer met in the backfill.
struct Customer {
    id: Box<str>,
    /// The email of the customer's last order read (what the dirty mark carries).
    latest_email: Option<Box<str>>,
}

/// One order: its customer (index into `customers`) and where its encoding lies in `arena`.
struct Row {
    customer: u32,
    start: u64,
    len: u32,
}

/// Map entries (order key, encoded [`SeenOrder`]) of one chunk.
type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;
/// Chunks queued for the map's thread: enough to ride out a slow insert, a few hundred KB.
const MAP_QUEUE: usize = 8;
/// Map entries written on the backfill's own thread before the writer thread takes over:
/// a store of up to about 40,000 customers is written by one thread only.
const INLINE_ENTRIES: usize = 250_000;

/// Writes the order map's entries, in the order given: the first [`INLINE_ENTRIES`] on the
/// caller's thread, the rest on a thread of its own.
///
/// The entries go one insert at a time, not as a batch: sled holds every node version a batch
/// replaces until it ends, and 2,000-entry batches took a 10,000-customer first pass from 83
/// to 190 MiB.
///
/// Why not the thread from the start: each insert replaces a sled node, and the replaced
/// versions are freed only once every thread inside sled has moved on (epoch-based
/// reclamation). With a second thread inserting while the backfill's thread and sled's
/// flusher also work in sled, a thread descheduled inside sled for a few milliseconds holds
/// back tens of MiB of old versions: a 10,000-customer first pass peaked above 100 MiB in 6
/// runs of 50 (up to 123 MiB), and at most 96 MiB with the inserts in line (BENCHMARKS.md,
/// "Memory"). A small store's inserts take a fraction of a second; a big store's take minutes
/// and overlap the parsing on a thread of their own.
struct MapWriter {
    tree: sled::Tree,
    path: std::path::PathBuf,
    /// Entries left to write in line before the thread starts.
    inline_left: usize,
    queue: Option<std::sync::mpsc::SyncSender<MapEntries>>,
    thread: Option<std::thread::JoinHandle<Result<(), sled::Error>>>,
}

impl MapWriter {
    fn new(tree: sled::Tree, path: std::path::PathBuf, inline_entries: usize) -> MapWriter {
        MapWriter {
            tree,
            path,
            inline_left: inline_entries,
            queue: None,
            thread: None,
        }
    }

    /// Writes a chunk in line while within [`INLINE_ENTRIES`], else queues it for the thread
    /// (started on first use); an insert that failed meanwhile is returned here.
    fn write(&mut self, entries: MapEntries) -> Result<(), StoreError> {
        if self.thread.is_none() && entries.len() <= self.inline_left {
            self.inline_left -= entries.len();
            for (key, value) in entries {
                self.tree
                    .insert(key, value)
                    .map_err(|e| map_sled(&self.path, e))?;
            }
            return Ok(());
        }
        if self.thread.is_none() {
            self.start()?;
        }
        let queue = self.queue.as_ref().expect("the writer is running");
        if queue.send(entries).is_err() {
            // The thread ended early: only an insert error does that.
            return self.finish();
        }
        Ok(())
    }

    fn start(&mut self) -> Result<(), StoreError> {
        let (queue, chunks) = std::sync::mpsc::sync_channel::<MapEntries>(MAP_QUEUE);
        let map = self.tree.clone();
        let thread = std::thread::Builder::new()
            .name("order-map-writer".into())
            .spawn(move || {
                for chunk in chunks {
                    for (key, value) in chunk {
                        map.insert(key, value)?;
                    }
                }
                Ok(())
            })
            .map_err(|e| {
                StoreError::Write(format!(
                    "cannot start a thread to write the order map ({e}); the system or the \
                     service's task limit (systemd `TasksMax`) allows no more threads: raise it \
                     or stop other processes of this user, then run tiersync again"
                ))
            })?;
        self.queue = Some(queue);
        self.thread = Some(thread);
        Ok(())
    }

    /// Waits until every queued entry is written.
    fn finish(&mut self) -> Result<(), StoreError> {
        self.queue = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Err(e))) => Err(map_sled(&self.path, e)),
            Some(Err(_)) => Err(StoreError::Write(
                "the order map's writer thread panicked (a bug: please report it with the log); \
                 the next run starts the backfill over"
                    .into(),
            )),
            Some(Ok(Ok(()))) | None => Ok(()),
        }
    }
}

impl Drop for MapWriter {
    /// A backfill dropped part-way (an error, a stop) still lets the queued inserts end
    /// before the map can be closed; the mark makes the next ingest clear them.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The backfill's orders, held until [`FreshBackfill::finish`] writes them.
pub struct FreshBackfill<'a> {
    store: &'a Store,
    map: MapWriter,
    numbers: HashMap<Box<str>, u32>,
    customers: Vec<Customer>,
    /// Each email's customer: the one of the last order read with it, as page by page.
    email_owners: HashMap<Box<str>, u32>,
    rows: Vec<Row>,
    /// Each order as a one-entry customer value (`encode_customer_orders`), back to back.
    arena: Vec<u8>,
    /// Orders read (every one is new: the store had none).
    orders: usize,
}

impl Store {
    /// Starts a fresh backfill when the store holds no order at all (no cursor, no index, an
    /// empty overlay and map); `None` otherwise, and the backfill goes page by page.
    pub fn begin_fresh_backfill(&self) -> Result<Option<FreshBackfill<'_>>, StoreError> {
        if self.orders_cursor()?.is_some()
            || !self.customer_orders.is_empty()
            || !self.orders.is_empty()
        {
            return Ok(None);
        }
        let map = self.order_map.lock(&self.meta)?;
        if !map.orders.is_empty() {
            return Ok(None);
        }
        let writer = MapWriter::new(
            map.orders.clone(),
            self.order_map.path().to_owned(),
            INLINE_ENTRIES,
        );
        drop(map);
        self.meta
            .insert(KEY_FRESH_BACKFILL, &[])
            .map_err(|e| self.err(e))?;
        self.flush()?;
        Ok(Some(FreshBackfill {
            store: self,
            map: writer,
            numbers: HashMap::new(),
            customers: Vec::new(),
            email_owners: HashMap::new(),
            rows: Vec::new(),
            arena: Vec::new(),
            orders: 0,
        }))
    }

    /// Clears what a fresh backfill cut short left (see the module docs); true when there was
    /// one. Safe to call on any store.
    pub fn abandon_unfinished_backfill(&self) -> Result<bool, StoreError> {
        if !self
            .meta
            .contains_key(KEY_FRESH_BACKFILL)
            .map_err(|e| self.err(e))?
        {
            return Ok(false);
        }
        tracing::warn!("the first backfill was cut short (a crash or a kill); it starts over");
        let map = self.order_map.lock(&self.meta)?;
        map.orders
            .clear()
            .map_err(|e| map_sled(self.order_map.path(), e))?;
        map.orders
            .flush()
            .map_err(|e| map_sled(self.order_map.path(), e))?;
        drop(map);
        for tree in [
            &self.orders,
            &self.customer_orders,
            &self.dirty,
            &self.emails,
        ] {
            tree.clear().map_err(|e| self.err(e))?;
        }
        self.meta
            .remove(KEY_FRESH_BACKFILL)
            .map_err(|e| self.err(e))?;
        self.flush()?;
        Ok(true)
    }
}

impl FreshBackfill<'_> {
    /// Takes a chunk of the result: its map entries are queued for writing, its orders kept.
    pub fn add(&mut self, chunk: &[OrderRecord]) -> Result<(), StoreError> {
        let entries = chunk
            .iter()
            .map(|order| {
                let seen = SeenOrder {
                    customer_id: order.customer_id.clone(),
                    fingerprint: order.fingerprint(),
                };
                (order_key(&order.id), encode_seen_order(&seen))
            })
            .collect();
        self.map.write(entries)?;
        for order in chunk {
            self.orders += 1;
            let Some(customer_id) = order.customer_id.as_deref() else {
                continue;
            };
            let customer = self.customer(customer_id);
            self.customers[customer as usize].latest_email =
                order.customer_email.as_deref().map(Box::from);
            if let Some(email) = order.customer_email.as_deref() {
                match self.email_owners.get_mut(email) {
                    Some(owner) => *owner = customer,
                    None => {
                        self.email_owners.insert(Box::from(email), customer);
                    }
                }
            }
            let encoded = encode_customer_orders(&[(order.id.clone(), order.facts())]);
            self.rows.push(Row {
                customer,
                start: self.arena.len() as u64,
                len: encoded.len() as u32,
            });
            self.arena.extend_from_slice(&encoded);
        }
        Ok(())
    }

    /// Forgets the orders taken so far: the download starts over from its first line (the map
    /// entries already written are written again, unchanged).
    pub fn restart(&mut self) {
        self.numbers.clear();
        self.customers.clear();
        self.email_owners.clear();
        self.rows.clear();
        self.arena.clear();
        self.orders = 0;
    }

    /// Orders taken so far.
    pub fn orders(&self) -> usize {
        self.orders
    }

    /// Writes every customer's orders, dirty mark and emails in key order, then moves the
    /// cursor to `until` and removes the mark in one step. Returns the orders stored.
    pub fn finish(mut self, until: DateTime<Utc>) -> Result<usize, StoreError> {
        let store = self.store;
        let err = |e| store.err(e);
        // Customers in key order, and each row's rank in it (then the rows in that order,
        // each customer's in the order read).
        let mut by_key: Vec<u32> = (0..self.customers.len() as u32).collect();
        by_key.sort_unstable_by(|a, b| {
            self.customers[*a as usize]
                .id
                .cmp(&self.customers[*b as usize].id)
        });
        let mut rank = vec![0u32; by_key.len()];
        for (r, c) in by_key.iter().enumerate() {
            rank[*c as usize] = r as u32;
        }
        self.rows
            .sort_unstable_by_key(|row| (rank[row.customer as usize], row.start));
        self.numbers = HashMap::new();
        let mut index = sled::Batch::default();
        let mut dirty = sled::Batch::default();
        let mut pending = 0;
        let mut orders: Vec<IndexedOrder> = Vec::new();
        let mut rows = self.rows.iter().peekable();
        while let Some(first) = rows.next() {
            let customer = &self.customers[first.customer as usize];
            orders.clear();
            let mut row = first;
            loop {
                let bytes = &self.arena[row.start as usize..row.start as usize + row.len as usize];
                orders.extend(decode_customer_orders(&customer.id, bytes)?);
                match rows.peek() {
                    Some(next) if next.customer == first.customer => {
                        row = rows.next().expect("peeked")
                    }
                    _ => break,
                }
            }
            // Sorted by order GID, as the index keeps them; an order read twice keeps its
            // last reading.
            orders.reverse();
            orders.sort_by(|a, b| a.0.cmp(&b.0));
            orders.dedup_by(|later, first| later.0 == first.0);
            index.insert(customer.id.as_bytes(), encode_customer_orders(&orders));
            dirty.insert(customer.id.as_bytes(), encode(&customer.latest_email)?);
            pending += 1;
            if pending == BATCH {
                store
                    .customer_orders
                    .apply_batch(std::mem::take(&mut index))
                    .map_err(err)?;
                store
                    .dirty
                    .apply_batch(std::mem::take(&mut dirty))
                    .map_err(err)?;
                pending = 0;
            }
        }
        store.customer_orders.apply_batch(index).map_err(err)?;
        store.dirty.apply_batch(dirty).map_err(err)?;
        drop(std::mem::take(&mut self.rows));
        drop(std::mem::take(&mut self.arena));
        let mut owners: Vec<(&str, &str)> = self
            .email_owners
            .iter()
            .map(|(email, c)| (&**email, &*self.customers[*c as usize].id))
            .collect();
        owners.sort_unstable();
        for chunk in owners.chunks(BATCH) {
            let mut emails = sled::Batch::default();
            for (email, customer) in chunk {
                emails.insert(email.as_bytes(), customer.as_bytes());
            }
            store.emails.apply_batch(emails).map_err(err)?;
        }
        self.map.finish()?;
        let map = store.order_map.lock(&store.meta)?;
        map.orders
            .flush()
            .map_err(|e| map_sled(store.order_map.path(), e))?;
        drop(map);
        store.flush()?;
        let mut done = sled::Batch::default();
        done.insert(KEY_ORDERS_CURSOR, encode(&until)?);
        done.remove(KEY_FRESH_BACKFILL);
        store.meta.apply_batch(done).map_err(err)?;
        store.flush()?;
        Ok(self.orders)
    }

    /// The customer's number, given on first sight.
    fn customer(&mut self, id: &str) -> u32 {
        if let Some(n) = self.numbers.get(id) {
            return *n;
        }
        let n = self.customers.len() as u32;
        let id: Box<str> = Box::from(id);
        self.numbers.insert(id.clone(), n);
        self.customers.push(Customer {
            id,
            latest_email: None,
        });
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (key.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    fn written(tree: &sled::Tree) -> Vec<(String, String)> {
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_map_is_written_in_line_up_to_the_limit_then_by_the_thread_in_the_order_given() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("map").unwrap();
        let mut writer = MapWriter::new(tree.clone(), "map".into(), 3);
        writer
            .write(vec![entry("a", "1"), entry("b", "1")])
            .unwrap();
        // In line: written before `write` returns, and no thread yet.
        assert!(writer.thread.is_none());
        assert_eq!(written(&tree).len(), 2);
        // Two entries do not fit the one left in line: the thread takes over, and keeps
        // every later chunk, however small, so that a key written again ends with its
        // last value.
        writer
            .write(vec![entry("a", "2"), entry("c", "1")])
            .unwrap();
        assert!(writer.thread.is_some());
        writer.write(vec![entry("a", "3")]).unwrap();
        writer.finish().unwrap();
        assert_eq!(
            written(&tree),
            [("a", "3"), ("b", "1"), ("c", "1")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn a_small_backfill_starts_no_thread() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("map").unwrap();
        let mut writer = MapWriter::new(tree.clone(), "map".into(), INLINE_ENTRIES);
        for n in 0..10 {
            writer.write(vec![entry(&format!("k{n}"), "v")]).unwrap();
        }
        assert!(writer.thread.is_none());
        writer.finish().unwrap();
        assert_eq!(written(&tree).len(), 10);
    }
}
