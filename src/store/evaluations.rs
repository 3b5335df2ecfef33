//! Evaluations and tier state: the dirty marks, customer records and their checkpoints, the
//! audit trail, and the commit of an evaluated batch (record, transitions, events, outbox
//! changes and the dirty mark of each customer together).

use sled::Transactional;

use super::codec::{decode, encode};
use super::outbox::{event_key, outbox_key, OutboxChange};
use super::{
    AuditEntry, CustomerRecord, EventEntry, Store, StoreError, TierCheckpoint, TX_CUSTOMERS,
};
use crate::model::{Destination, ProfileState, StorefrontState};

/// One evaluated customer, ready to commit.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The customer's new record.
    pub record: CustomerRecord,
    /// What the plan does to the Klaviyo profile write.
    pub klaviyo: OutboxChange<ProfileState>,
    /// What the plan does to the storefront write.
    pub storefront: OutboxChange<StorefrontState>,
    /// The transitions to record.
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

impl Store {
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
        // Records whose derived values moved: (id, record, checkpoint).
        let mut derived: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();
        for e in batch {
            if !transactional(e) {
                if e.change == RecordChange::Derived {
                    derived.push((
                        e.record.id.as_str(),
                        encode(&e.record)?,
                        encode(&e.record.checkpoint())?,
                    ));
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
        // One transaction per chunk of customers ([`TX_CUSTOMERS`]); each customer's writes
        // stay atomic.
        for chunk in in_tx.chunks(TX_CUSTOMERS) {
            (
                &self.customers,
                &self.checkpoints,
                &self.dirty,
                &self.outbox,
                &self.audit,
            )
                .transaction(|(customers, checkpoints, dirty, outbox, audit)| {
                    for (evaluation, enc) in chunk {
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
        for chunk in derived.chunks(TX_CUSTOMERS) {
            // Record first: a crash between the two leaves a checkpoint whose fingerprint is
            // stale, so the next evaluation rewrites the record once more, nothing worse.
            let mut records = sled::Batch::default();
            let mut checkpoints = sled::Batch::default();
            for (id, record, checkpoint) in chunk {
                records.insert(id.as_bytes(), record.as_slice());
                checkpoints.insert(id.as_bytes(), checkpoint.as_slice());
            }
            self.customers
                .apply_batch(records)
                .map_err(|e| self.err(e))?;
            self.checkpoints
                .apply_batch(checkpoints)
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
}
