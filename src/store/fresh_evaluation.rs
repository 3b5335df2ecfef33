//! The first evaluation of a store, written without transactions.
//!
//! Committed customer by customer ([`Store::commit_evaluations`]), a million-customer first
//! evaluation spent 42 of its 52 s in sled transactions (`first_sync`, 2026-12-06): their
//! commits take one process-wide lock, so they run one at a time however many cores wait.
//! When nothing evaluated is stored yet (no records, checkpoints, audit entries or outbox
//! entries), there is nothing a transaction could protect that a restart cannot rebuild, so
//! the writes go straight to the trees, records on one thread and outbox and audit entries on
//! another, and atomicity comes from a mark instead:
//!
//! 1. [`Store::begin_fresh_evaluation`] records `evaluation/fresh` = writing, then the batches
//!    are written ([`Store::write_fresh_evaluations`]); dirty marks stay, since they carry
//!    each customer's latest email.
//! 2. [`Store::finish_fresh_evaluation`] flushes, sets the mark to written, clears the dirty
//!    marks (every customer with a mark was just evaluated: a recalculation evaluates all),
//!    then stores the population and removes the mark in one batch.
//!
//! A run cut short is found by [`Store::abandon_unfinished_evaluation`], at the start of every
//! evaluation. While writing, the four trees it filled are cleared (they were empty before)
//! and the evaluation starts over with every dirty mark still there. Once written, only the
//! mark goes: with no population stored, the next evaluation recalculates everyone against
//! the records already there, the ordinary way.

use super::codec::encode;
use super::evaluations::EncodedCustomer;
use super::meta::KEY_POPULATION;
use super::{Evaluation, Store, StoreError};
use crate::model::Population;

/// The mark of a first evaluation under way: its value is [`WRITING`] or [`WRITTEN`].
const KEY_FRESH_EVALUATION: &[u8] = b"evaluation/fresh";
const WRITING: &[u8] = &[0];
const WRITTEN: &[u8] = &[1];

impl Store {
    /// Starts a first evaluation the fast way when nothing evaluated is stored; false (and
    /// the evaluation commits the ordinary way) otherwise.
    pub fn begin_fresh_evaluation(&self) -> Result<bool, StoreError> {
        let empty = [
            &self.customers,
            &self.checkpoints,
            &self.audit,
            &self.outbox,
        ]
        .iter()
        .all(|tree| tree.is_empty());
        if !empty {
            return Ok(false);
        }
        self.meta
            .insert(KEY_FRESH_EVALUATION, WRITING)
            .map_err(|e| self.err(e))?;
        self.flush()?;
        Ok(true)
    }

    /// Writes a batch of a first evaluation: records and checkpoints on one thread, outbox
    /// and audit entries on another.
    pub fn write_fresh_evaluations(&self, batch: &[Evaluation]) -> Result<(), StoreError> {
        let encoded = self.encode_evaluations(batch)?;
        let whole: &[(&Evaluation, EncodedCustomer)] = &encoded.whole;
        let (records, entries) = std::thread::scope(|scope| {
            let records = scope.spawn(|| -> Result<(), sled::Error> {
                for (evaluation, enc) in whole {
                    if let Some((record, checkpoint)) = &enc.record {
                        let id = evaluation.record.id.as_bytes();
                        self.customers.insert(id, record.as_slice())?;
                        self.checkpoints.insert(id, checkpoint.as_slice())?;
                    }
                }
                Ok(())
            });
            let entries = (|| -> Result<(), sled::Error> {
                for (evaluation, enc) in whole {
                    for (key, change) in enc.outbox(evaluation) {
                        match change {
                            Some(bytes) => self.outbox.insert(key, bytes)?,
                            None => self.outbox.remove(key)?,
                        };
                    }
                    for (key, value) in &enc.audit {
                        self.audit.insert(key.as_slice(), value.as_slice())?;
                    }
                }
                Ok(())
            })();
            (records.join().expect("the record writer panicked"), entries)
        });
        records.and(entries).map_err(|e| self.err(e))?;
        self.write_derived(&encoded.derived)
    }

    /// Ends a first evaluation (see the module docs): durable, dirty marks cleared, the
    /// population stored and the mark removed.
    pub fn finish_fresh_evaluation(&self, population: &Population) -> Result<(), StoreError> {
        self.flush()?;
        self.meta
            .insert(KEY_FRESH_EVALUATION, WRITTEN)
            .map_err(|e| self.err(e))?;
        self.flush()?;
        self.dirty.clear().map_err(|e| self.err(e))?;
        let mut done = sled::Batch::default();
        done.insert(KEY_POPULATION, encode(population)?);
        done.remove(KEY_FRESH_EVALUATION);
        self.meta.apply_batch(done).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Clears what a first evaluation cut short left (see the module docs); true when there
    /// was one. Safe to call on any store.
    pub fn abandon_unfinished_evaluation(&self) -> Result<bool, StoreError> {
        let Some(state) = self
            .meta
            .get(KEY_FRESH_EVALUATION)
            .map_err(|e| self.err(e))?
        else {
            return Ok(false);
        };
        if state.as_ref() == WRITING {
            tracing::warn!(
                "the first evaluation was cut short (a crash or a kill); it starts over"
            );
            for tree in [
                &self.customers,
                &self.checkpoints,
                &self.audit,
                &self.outbox,
            ] {
                tree.clear().map_err(|e| self.err(e))?;
            }
        }
        self.meta
            .remove(KEY_FRESH_EVALUATION)
            .map_err(|e| self.err(e))?;
        self.flush()?;
        Ok(true)
    }
}
