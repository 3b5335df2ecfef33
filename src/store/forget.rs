//! Forgetting one customer (a GDPR erasure request, Shopify's `customers/redact`): every
//! entry keyed by them or naming them leaves the store.
//!
//! What is removed, by tree: `customer_orders` (their orders), the order map's entries for
//! those orders (overlay and settled map: each names its customer), `customers`,
//! `checkpoints`, `dirty`, `audit` (every transition), `loyalty` (the member record of each of
//! their emails), `emails` (every email that points at them), `ack/klaviyo`, `ack/shopify`,
//! and the outbox (pending writes and events). `meta` holds only aggregates (cursors, the
//! fitted model, cut-offs), nothing of one customer.
//!
//! Crash safety: the settled order map is a second database, which cannot commit with the
//! main store, so it goes first; everything in the main store then goes in one transaction.
//! A crash between the two leaves the customer whole in the main store and only their
//! order-map entries gone, which ingest tolerates (an order it meets again is taken as new,
//! and re-applying an order a customer already holds changes nothing); running `forget`
//! again finishes the job. Every step only removes, so a re-run is always safe.

use std::collections::BTreeSet;

use sled::Transactional;

use super::codec::{decode, decode_customer_orders, order_key};
use super::outbox::outbox_key;
use super::{index_key, map_sled, Store, StoreError, TierCheckpoint};
use crate::model::Destination;

/// What [`Store::forget_customer`] removed, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// The emails found for the customer (record, checkpoint, dirty mark, email index, and
    /// the one asked for).
    pub emails: Vec<String>,
    /// Orders in their entry of `customer_orders`.
    pub orders: usize,
    /// Order-map entries (overlay and settled) of those orders.
    pub order_map_entries: usize,
    /// The customer record (with its checkpoint).
    pub record: bool,
    /// The mark of a customer waiting for evaluation.
    pub dirty: bool,
    /// Recorded transitions.
    pub transitions: usize,
    /// Loyalty-app member records (one per email).
    pub loyalty_members: usize,
    /// `emails` index entries pointing at the customer.
    pub email_index: usize,
    /// Pending (or parked) writes to Klaviyo and the storefront.
    pub pending_writes: usize,
    /// Pending (or parked) Klaviyo events.
    pub events: usize,
    /// What Klaviyo and the storefront acknowledged holding.
    pub acknowledgements: usize,
}

impl Forgotten {
    /// Whether there was nothing of the customer to remove.
    pub fn is_empty(&self) -> bool {
        *self
            == Forgotten {
                emails: self.emails.clone(),
                ..Forgotten::default()
            }
    }
}

impl Store {
    /// The customer an email belongs to, from the `emails` index or, for a customer whose
    /// orders carried no email of that spelling, their record.
    pub fn customer_by_email(&self, email: &str) -> Result<Option<String>, StoreError> {
        if let Some(id) = self.emails.get(email.as_bytes()).map_err(|e| self.err(e))? {
            return Ok(Some(String::from_utf8_lossy(&id).into_owned()));
        }
        for record in self.customers() {
            let record = record?;
            if record.email.as_deref() == Some(email) {
                return Ok(Some(record.id));
            }
        }
        Ok(None)
    }

    /// Removes everything the store holds of customer `id` (see the module docs), plus the
    /// loyalty record of `email` when given (the address the request named). Returns what
    /// was removed; all zero when nothing was left.
    pub fn forget_customer(&self, id: &str, email: Option<&str>) -> Result<Forgotten, StoreError> {
        let key = id.as_bytes();
        let mut emails: BTreeSet<String> = email.map(str::to_string).into_iter().collect();
        let record = self.customer(id)?;
        emails.extend(record.as_ref().and_then(|r| r.email.clone()));
        if let Some(bytes) = self.checkpoints.get(key).map_err(|e| self.err(e))? {
            let checkpoint: TierCheckpoint = decode("checkpoints", id, &bytes)?;
            emails.extend(checkpoint.email);
        }
        let dirty = self.dirty.get(key).map_err(|e| self.err(e))?;
        if let Some(bytes) = &dirty {
            let email: Option<String> = decode("dirty", id, bytes)?;
            emails.extend(email);
        }
        let mut email_index = Vec::new();
        for item in self.emails.iter() {
            let (email, owner) = item.map_err(|e| self.err(e))?;
            if owner.as_ref() == key {
                emails.insert(String::from_utf8_lossy(&email).into_owned());
                email_index.push(email);
            }
        }
        let orders = match self.customer_orders.get(key).map_err(|e| self.err(e))? {
            Some(bytes) => decode_customer_orders(id, &bytes)?,
            None => Vec::new(),
        };
        let order_keys: Vec<Vec<u8>> = orders.iter().map(|(order, _)| order_key(order)).collect();
        let settled = self.forget_settled_orders(&order_keys)?;

        let prefix = |name: &str| {
            let mut prefix = index_key(name, id);
            prefix.push(0);
            prefix
        };
        let mut audit_prefix = key.to_vec();
        audit_prefix.push(0);
        let audit_keys = self.keys_with_prefix(&self.audit, &audit_prefix)?;
        let event_keys = self.keys_with_prefix(&self.outbox, &prefix("events"))?;
        let write_keys: Vec<Vec<u8>> = [Destination::Klaviyo, Destination::Storefront]
            .into_iter()
            .map(|d| outbox_key(d, id))
            .collect();
        let emails: Vec<String> = emails.into_iter().collect();

        let found = (
            &self.customer_orders,
            &self.orders,
            &self.customers,
            &self.checkpoints,
            &self.dirty,
            &self.audit,
            &self.loyalty,
            &self.emails,
            &self.ack_klaviyo,
            &self.ack_storefront,
            &self.outbox,
        )
            .transaction(
                |(
                    index,
                    overlay,
                    customers,
                    checkpoints,
                    dirty,
                    audit,
                    loyalty,
                    email_tree,
                    ack_klaviyo,
                    ack_storefront,
                    outbox,
                )| {
                    let mut found = Forgotten {
                        emails: emails.clone(),
                        order_map_entries: settled,
                        ..Forgotten::default()
                    };
                    if index.remove(key)?.is_some() {
                        found.orders = order_keys.len();
                    }
                    for order in &order_keys {
                        if overlay.remove(order.as_slice())?.is_some() {
                            found.order_map_entries += 1;
                        }
                    }
                    found.record = customers.remove(key)?.is_some();
                    found.record |= checkpoints.remove(key)?.is_some();
                    found.dirty = dirty.remove(key)?.is_some();
                    for k in &audit_keys {
                        found.transitions += usize::from(audit.remove(k)?.is_some());
                    }
                    for email in &emails {
                        found.loyalty_members +=
                            usize::from(loyalty.remove(email.as_bytes())?.is_some());
                    }
                    for email in &email_index {
                        found.email_index += usize::from(email_tree.remove(email)?.is_some());
                    }
                    for acks in [ack_klaviyo, ack_storefront] {
                        found.acknowledgements += usize::from(acks.remove(key)?.is_some());
                    }
                    for k in &write_keys {
                        found.pending_writes += usize::from(outbox.remove(k.as_slice())?.is_some());
                    }
                    for k in &event_keys {
                        found.events += usize::from(outbox.remove(k)?.is_some());
                    }
                    Ok(found)
                },
            )
            .map_err(|e| self.tx_err(e))?;
        self.flush()?;
        Ok(found)
    }

    /// Removes the given orders from the settled order map (a second database: before the
    /// main store's transaction, see the module docs) and makes that durable. Returns how
    /// many it held.
    fn forget_settled_orders(&self, keys: &[Vec<u8>]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let map = self.order_map.lock(&self.meta)?;
        let err = |e| map_sled(self.order_map.path(), e);
        let mut removed = 0;
        for key in keys {
            removed += usize::from(map.orders.remove(key).map_err(err)?.is_some());
        }
        map.orders.flush().map_err(err)?;
        drop(map);
        self.order_map.close();
        Ok(removed)
    }

    /// Every key of `tree` under `prefix`.
    fn keys_with_prefix(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> Result<Vec<sled::IVec>, StoreError> {
        tree.scan_prefix(prefix)
            .keys()
            .map(|k| k.map_err(|e| self.err(e)))
            .collect()
    }
}

impl Store {
    /// Removes the loyalty-app member record of an email that belongs to no customer (a
    /// member who never ordered). Returns whether there was one.
    pub fn forget_loyalty_member(&self, email: &str) -> Result<bool, StoreError> {
        let removed = self
            .loyalty
            .remove(email.as_bytes())
            .map_err(|e| self.err(e))?
            .is_some();
        self.flush()?;
        Ok(removed)
    }
}
