//! The order map: every order tiersync has seen → its customer and fingerprint (what
//! recognizes a replayed page and an order that moved to another customer). It lives in a
//! second sled database under `<store>/order-map`, open only while orders are applied.
//!
//! Why a second database: sled keeps in memory a page-table entry and cache metadata for
//! every page of every tree from the moment it opens, and at ten million orders this map
//! alone was about 380 MiB of the ~600 MiB resident after opening (BENCHMARKS.md). Only ingest reads it; the daily recalculation and the
//! operator commands never open it.
//!
//! Crash safety: two sled databases cannot commit together, so the map is never written
//! ahead of the main store. A page's order entries first commit to the main store's `orders`
//! tree (the *overlay*), in the same transaction as the index, the dirty marks and the
//! cursor. [`OrderMap::settle`] later flushes the main store, copies the overlay into the map,
//! flushes the map and only then removes what it copied from the overlay. A crash at any
//! point leaves every entry in the overlay, in the map, or in both with the same value, and
//! lookups read the overlay first.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use sled::Tree;

use super::{map_sled, StoreError};

/// Overlay entries after which applying orders settles them into the map (a backfill of
/// millions of orders keeps the overlay, and the main store's memory, small).
const SETTLE_AT: usize = 100_000;
/// Overlay entries per sled batch while settling (see [`OrderMap::settle`] for why small).
const SETTLE_CHUNK: usize = 1_000;
/// The key, in the main store's `meta` and in the map's own `meta`, of the id that ties a
/// map to its store: a map from another store, or none where one is expected, is refused.
pub(super) const KEY_MAP_ID: &[u8] = b"order_map/id";

pub(super) struct OrderMap {
    path: PathBuf,
    cache_mb: u64,
    open: Mutex<Option<Opened>>,
    /// Overlay entries written since the last settle (0 after a restart: the first settle,
    /// at the end of the next ingest, finds the rest).
    unsettled: AtomicUsize,
}

/// The map database while it is open.
pub(super) struct Opened {
    _db: sled::Db,
    /// The map's one tree, keyed and valued like the main store's `orders` overlay: read when
    /// the overlay has no entry for an order, written by [`OrderMap::settle`].
    pub orders: Tree,
}

impl OrderMap {
    pub fn new(store: &Path, cache_mb: u64) -> OrderMap {
        OrderMap {
            path: store.join("order-map"),
            cache_mb,
            open: Mutex::new(None),
            unsettled: AtomicUsize::new(0),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The main store's directory (the map lives inside it).
    fn store_path(&self) -> &Path {
        self.path.parent().unwrap_or(&self.path)
    }

    pub fn is_open(&self) -> bool {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The open map (opening it, and checking it belongs to the store whose `meta` is given,
    /// on first use). Holding the guard serializes applying and settling.
    pub fn lock(&self, meta: &Tree) -> Result<MapGuard<'_>, StoreError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.is_none() {
            *open = Some(self.open_checked(meta)?);
        }
        Ok(MapGuard { open })
    }

    fn open_checked(&self, meta: &Tree) -> Result<Opened, StoreError> {
        let err = |e| map_sled(&self.path, e);
        // Errors of the main store's `meta` name the main store.
        let store_err = |e| map_sled(self.store_path(), e);
        let db = super::open_db(&self.path, self.cache_mb, super::LOCK_WAIT)?;
        let orders = db.open_tree("orders").map_err(err)?;
        let map_meta = db.open_tree("meta").map_err(err)?;
        let ours = meta.get(KEY_MAP_ID).map_err(store_err)?;
        let theirs = map_meta.get(KEY_MAP_ID).map_err(err)?;
        match (ours, theirs) {
            (Some(a), Some(b)) if a == b => {}
            (None, Some(b)) => {
                // The map was created and the crash came before the store recorded its id.
                meta.insert(KEY_MAP_ID, b).map_err(store_err)?;
            }
            (None, None) => {
                let id = new_id();
                map_meta.insert(KEY_MAP_ID, &id).map_err(err)?;
                db.flush().map_err(err)?;
                meta.insert(KEY_MAP_ID, &id).map_err(store_err)?;
            }
            (Some(_), _) => {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: "the order map is missing or belongs to another store".into(),
                })
            }
        }
        Ok(Opened { _db: db, orders })
    }

    /// Counts overlay entries just written; true when it is time to settle.
    pub fn wrote(&self, entries: usize) -> bool {
        self.unsettled.fetch_add(entries, Ordering::Relaxed) + entries >= SETTLE_AT
    }

    /// Moves every overlay entry into the map (see the module docs for the order of the
    /// steps). Returns how many moved.
    ///
    /// Entries move in small batches: sled frees a node's replaced versions only after the
    /// batch that replaced them ends, so one batch of 50,000 entries held about 300 MiB of
    /// node copies at once (BENCHMARKS.md, "Memory"). The map is flushed once, after the
    /// last copy, and only then is anything removed from the overlay.
    pub fn settle(
        &self,
        map: &Opened,
        overlay: &Tree,
        flush_store: impl Fn() -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let err = |e| map_sled(&self.path, e);
        let store_err = |e| map_sled(self.store_path(), e);
        flush_store()?;
        let moved = for_each_chunk(overlay, store_err, |chunk| {
            let mut copy = sled::Batch::default();
            for (key, value) in chunk {
                copy.insert(key, value);
            }
            map.orders.apply_batch(copy).map_err(err)
        })?;
        map.orders.flush().map_err(err)?;
        for_each_chunk(overlay, store_err, |chunk| {
            let mut remove = sled::Batch::default();
            for (key, _) in chunk {
                remove.remove(key);
            }
            overlay.apply_batch(remove).map_err(store_err)
        })?;
        self.unsettled.store(0, Ordering::Relaxed);
        Ok(moved)
    }

    /// Closes the map, returning its memory (after [`OrderMap::settle`], nothing is lost by
    /// closing at any time).
    pub fn close(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        *open = None;
    }
}

/// The open map, held for one apply or settle.
pub(super) struct MapGuard<'a> {
    open: MutexGuard<'a, Option<Opened>>,
}

impl std::ops::Deref for MapGuard<'_> {
    type Target = Opened;
    fn deref(&self) -> &Opened {
        self.open.as_ref().expect("opened by OrderMap::lock")
    }
}

/// Calls `apply` with the overlay's entries, [`SETTLE_CHUNK`] at a time in key order, reading
/// each chunk after the previous one was applied; returns how many entries it saw.
fn for_each_chunk(
    overlay: &Tree,
    store_err: impl Fn(sled::Error) -> StoreError,
    mut apply: impl FnMut(&[(sled::IVec, sled::IVec)]) -> Result<(), StoreError>,
) -> Result<usize, StoreError> {
    let mut seen = 0;
    let mut after: Option<sled::IVec> = None;
    loop {
        let entries = match &after {
            None => overlay.iter(),
            Some(key) => {
                overlay.range::<&[u8], _>((Bound::Excluded(key.as_ref()), Bound::Unbounded))
            }
        };
        let chunk: Vec<(sled::IVec, sled::IVec)> = entries
            .take(SETTLE_CHUNK)
            .collect::<Result<_, _>>()
            .map_err(&store_err)?;
        let Some((last, _)) = chunk.last() else {
            return Ok(seen);
        };
        after = Some(last.clone());
        apply(&chunk)?;
        seen += chunk.len();
    }
}

/// An id unlikely to repeat: the time in nanoseconds mixed with the process id.
fn new_id() -> [u8; 8] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 48)).to_be_bytes()
}
