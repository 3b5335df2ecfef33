//! Loyalty members: points and the app's tier by email, joined to customers through the
//! `emails` tree; a changed member dirties their customer.

use chrono::{DateTime, Utc};
use sled::Transactional;

use super::codec::{decode, encode};
use super::meta::KEY_LOYALTY_CURSOR;
use super::{abort, LoyaltyRecord, Store, StoreError};

impl Store {
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
}
