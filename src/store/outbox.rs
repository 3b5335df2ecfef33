//! The outbox and the acknowledgements: each destination's latest pending write per customer
//! (`<destination>\0<customer>`), the events (`events\0<customer>\0<seq>`), and what each
//! destination acknowledged (`ack/<destination>`), with the transactions that settle, park,
//! repair and adopt them.

use std::collections::HashMap;

use sled::{Transactional, Tree};

use super::codec::{decode, encode};
use super::{index_key, Acknowledged, EventEntry, OutboxEntry, Store, StoreError, TX_CUSTOMERS};
use crate::model::{Destination, DestinationState, ProfileState, StorefrontState};

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

/// Outbox totals for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Writes waiting for the next delivery.
    pub pending: usize,
    /// Writes the destination refused for good (parked until the state changes or `retry`).
    pub failed: usize,
}

impl Store {
    /// Events waiting to be sent (not parked), per customer in the order they happened.
    pub fn pending_events(&self) -> Result<Vec<EventEntry>, StoreError> {
        Ok(self
            .events()?
            .into_iter()
            .filter(|e| e.failed.is_none())
            .collect())
    }

    pub(super) fn events(&self) -> Result<Vec<EventEntry>, StoreError> {
        self.outbox_section(EVENTS_PREFIX)
    }

    /// Every outbox value under `<section>\0`, in key order.
    pub(super) fn outbox_section<T: serde::de::DeserializeOwned>(
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

    pub(super) fn ack_tree(&self, destination: Destination) -> &Tree {
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
        let mut prefix = key_name(S::DESTINATION).as_bytes().to_vec();
        prefix.push(0);
        self.get_many(&self.outbox, "outbox", &prefix, ids)
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

    /// Pending (not parked) writes for a destination in key order, from the first after
    /// customer `after` (from the very first with `None`), for as long as `take` accepts
    /// them; the first one it refuses is left for the next call. A delivery reads its work
    /// this way a job at a time instead of holding every pending write (a million at a
    /// first sync) while it sends them.
    pub fn pending_after<S: DestinationState>(
        &self,
        after: Option<&str>,
        mut take: impl FnMut(&OutboxEntry<S>) -> bool,
    ) -> Result<Vec<OutboxEntry<S>>, StoreError> {
        let section = outbox_key(S::DESTINATION, "");
        // The smallest key after `<section><after>` is that key with a 0 byte appended.
        let start = after.map_or_else(
            || section.clone(),
            |id| {
                let mut key = outbox_key(S::DESTINATION, id);
                key.push(0);
                key
            },
        );
        let mut taken = Vec::new();
        for item in self.outbox.range(start..) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.starts_with(&section) {
                break;
            }
            let entry: OutboxEntry<S> = decode("outbox", &String::from_utf8_lossy(&key), &value)?;
            if entry.failed.is_some() {
                continue;
            }
            if !take(&entry) {
                break;
            }
            taken.push(entry);
        }
        Ok(taken)
    }

    fn outbox_entries<S: DestinationState>(&self) -> Result<Vec<OutboxEntry<S>>, StoreError> {
        self.outbox_section(key_name(S::DESTINATION))
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

    /// Pending and parked writes for a destination, counted without holding them.
    pub fn outbox_counts<S: DestinationState>(&self) -> Result<OutboxCounts, StoreError> {
        let section = outbox_key(S::DESTINATION, "");
        let mut counts = OutboxCounts::default();
        for item in self.outbox.scan_prefix(&section) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let entry: OutboxEntry<S> = decode("outbox", &String::from_utf8_lossy(&key), &value)?;
            match entry.failed {
                Some(_) => counts.failed += 1,
                None => counts.pending += 1,
            }
        }
        Ok(counts)
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
        for (delivered, encoded) in delivered
            .chunks(TX_CUSTOMERS)
            .zip(encoded.chunks(TX_CUSTOMERS))
        {
            self.acknowledge_chunk::<S>(delivered, encoded)?;
        }
        Ok(())
    }

    /// One transaction of [`Store::acknowledge`].
    fn acknowledge_chunk<S: DestinationState>(
        &self,
        delivered: &[OutboxEntry<S>],
        encoded: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        (self.ack_tree(S::DESTINATION), &self.outbox)
            .transaction(|(acks, outbox)| {
                for (entry, (ack, whole)) in delivered.iter().zip(encoded) {
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
    /// the desired state is enqueued, each customer's in one transaction, so the next delivery
    /// repairs it. A value already stored is not written again: the first write to a
    /// storefront finds most repairs already planned by the evaluation just before, with no
    /// acknowledgement to drop, and sled's copy-on-write inserts are what a write costs.
    pub fn enqueue_repairs<S: DestinationState>(
        &self,
        repairs: &[(OutboxEntry<S>, Option<Acknowledged<S>>)],
    ) -> Result<(), StoreError> {
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = repairs
            .iter()
            .map(|(entry, seen)| Ok((encode(entry)?, seen.as_ref().map(encode).transpose()?)))
            .collect::<Result<_, StoreError>>()?;
        for (repairs, encoded) in repairs
            .chunks(TX_CUSTOMERS)
            .zip(encoded.chunks(TX_CUSTOMERS))
        {
            self.enqueue_repairs_chunk(repairs, encoded)?;
        }
        Ok(())
    }

    /// One transaction of [`Store::enqueue_repairs`].
    fn enqueue_repairs_chunk<S: DestinationState>(
        &self,
        repairs: &[(OutboxEntry<S>, Option<Acknowledged<S>>)],
        encoded: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        (self.ack_tree(S::DESTINATION), &self.outbox)
            .transaction(|(acks, outbox)| {
                for ((entry, _), (whole, seen)) in repairs.iter().zip(encoded) {
                    let id = entry.customer_id.as_bytes();
                    let held = acks.get(id)?;
                    match seen {
                        Some(seen) if held.as_deref() != Some(seen.as_slice()) => {
                            acks.insert(id, seen.as_slice())?;
                        }
                        None if held.is_some() => {
                            acks.remove(id)?;
                        }
                        Some(_) | None => {}
                    }
                    let key = outbox_key(S::DESTINATION, &entry.customer_id);
                    if outbox.get(&key)?.as_deref() != Some(whole.as_slice()) {
                        outbox.insert(key, whole.as_slice())?;
                    }
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
    /// acknowledged (with the current version) and drop any pending write for it, each
    /// customer's in one transaction. This is how a lost store's acknowledgements are rebuilt without writing
    /// every customer again.
    pub fn adopt<S: DestinationState>(
        &self,
        seen: &[(String, Acknowledged<S>)],
    ) -> Result<(), StoreError> {
        let encoded: Vec<Vec<u8>> = seen
            .iter()
            .map(|(_, ack)| encode(ack))
            .collect::<Result<_, _>>()?;
        for (seen, encoded) in seen.chunks(TX_CUSTOMERS).zip(encoded.chunks(TX_CUSTOMERS)) {
            self.adopt_chunk::<S>(seen, encoded)?;
        }
        Ok(())
    }

    /// One transaction of [`Store::adopt`]; an outbox entry is removed only if there is one.
    fn adopt_chunk<S: DestinationState>(
        &self,
        seen: &[(String, Acknowledged<S>)],
        encoded: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        (self.ack_tree(S::DESTINATION), &self.outbox)
            .transaction(|(acks, outbox)| {
                for ((id, _), ack) in seen.iter().zip(encoded) {
                    acks.insert(id.as_bytes(), ack.as_slice())?;
                    let key = outbox_key(S::DESTINATION, id);
                    if outbox.get(&key)?.is_some() {
                        outbox.remove(key)?;
                    }
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

/// Events live in the outbox under `events\0<customer>\0<seq>`: in order per customer.
const EVENTS_PREFIX: &str = "events";

pub(super) fn event_key(customer_id: &str, seq: u64) -> Vec<u8> {
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

pub(super) fn outbox_key(destination: Destination, customer_id: &str) -> Vec<u8> {
    index_key(key_name(destination), customer_id)
}

/// The storefront's name in store keys (`shopify\0<customer>` in the outbox,
/// `stopped/shopify` in `meta`, the `ack/shopify` tree): from before the destination was
/// called the storefront, and part of the store format, so it stays.
const STOREFRONT_KEY: &str = "shopify";

/// A destination's name in store keys.
pub(super) fn key_name(destination: Destination) -> &'static str {
    match destination {
        Destination::Klaviyo => "klaviyo",
        Destination::Storefront => STOREFRONT_KEY,
    }
}
