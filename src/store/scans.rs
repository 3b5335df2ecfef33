//! Whole-store walks for reports: every customer with their record and order facts, and
//! every recorded transition, each in one pass over sled's trees with constant memory (a
//! report at a million customers holds one customer at a time, never every order).

use std::cmp::Ordering;

use super::codec::{decode, decode_customer_facts};
use super::{AuditEntry, CustomerRecord, Store, StoreError};
use crate::model::OrderFacts;

impl Store {
    /// Every customer in key order — their record (`None`: orders read, not yet evaluated)
    /// and their order facts (empty: a record whose orders all moved to another customer) —
    /// from one walk of `customers` and `customer_orders` side by side.
    pub fn scan_records_with_orders(
        &self,
        mut visit: impl FnMut(&str, Option<&CustomerRecord>, &[OrderFacts]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut records = self.customers.iter().peekable();
        let mut orders = self.customer_orders.iter().peekable();
        let mut facts: Vec<OrderFacts> = Vec::new();
        loop {
            let order = match (records.peek(), orders.peek()) {
                (None, None) => return Ok(()),
                (Some(Err(_)), _) | (_, Some(Err(_))) => Ordering::Equal,
                (Some(Ok(_)), None) => Ordering::Less,
                (None, Some(Ok(_))) => Ordering::Greater,
                (Some(Ok((r, _))), Some(Ok((o, _)))) => r.as_ref().cmp(o.as_ref()),
            };
            let record = match order {
                Ordering::Greater => None,
                _ => records.next().transpose().map_err(|e| self.err(e))?,
            };
            let indexed = match order {
                Ordering::Less => None,
                _ => orders.next().transpose().map_err(|e| self.err(e))?,
            };
            let key = match (&record, &indexed) {
                (Some((key, _)), _) | (None, Some((key, _))) => key.clone(),
                (None, None) => return Ok(()),
            };
            let id = String::from_utf8_lossy(&key);
            facts.clear();
            if let Some((_, bytes)) = &indexed {
                decode_customer_facts(&id, bytes, &mut facts)?;
            }
            let record: Option<CustomerRecord> = record
                .map(|(_, bytes)| decode("customers", &id, &bytes))
                .transpose()?;
            visit(&id, record.as_ref(), &facts)?;
        }
    }

    /// Every recorded transition, customer by customer (oldest first within a customer).
    pub fn scan_audit(
        &self,
        mut visit: impl FnMut(&AuditEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.audit.iter() {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let entry = decode("audit", &String::from_utf8_lossy(&key), &value)?;
            visit(&entry)?;
        }
        Ok(())
    }
}
