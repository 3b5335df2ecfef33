//! The program's data (customers, points ledger, VIP tiers) and its JSON as Smile prints it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::wire::{millis, prepare_customer, timestamp};
use super::{SmileCustomer, SmilePointsTransaction, SmileState, SmileVipTier};
use crate::data::StoreData;

/// Smile ids are large integers; the fake counts up from here.
const FIRST_CUSTOMER_ID: u64 = 304_169_001;
const FIRST_TRANSACTION_ID: u64 = 825_673_001;

#[derive(Debug)]
pub struct Store {
    customers: BTreeMap<u64, SmileCustomer>,
    transactions: BTreeMap<u64, SmilePointsTransaction>,
    /// Sorted by milestone.
    tiers: Vec<SmileVipTier>,
    next_customer_id: u64,
    next_transaction_id: u64,
}

/// Why a points transaction was refused.
#[derive(Debug, PartialEq)]
pub enum PointsError {
    UnknownCustomer,
    NegativeBalance { balance: i64 },
}

impl Store {
    pub fn new(mut tiers: Vec<SmileVipTier>) -> Self {
        tiers.sort_by_key(|tier| tier.milestone);
        Store {
            customers: BTreeMap::new(),
            transactions: BTreeMap::new(),
            tiers,
            next_customer_id: FIRST_CUSTOMER_ID,
            next_transaction_id: FIRST_TRANSACTION_ID,
        }
    }

    pub fn tiers(&self) -> &[SmileVipTier] {
        &self.tiers
    }

    fn tier_by_name(&self, name: &str) -> Option<&SmileVipTier> {
        self.tiers.iter().find(|tier| tier.name == name)
    }

    fn tier(&self, id: u64) -> Option<&SmileVipTier> {
        self.tiers.iter().find(|tier| tier.id == id)
    }

    pub fn customers(&self) -> Vec<SmileCustomer> {
        self.customers.values().cloned().collect()
    }

    pub fn customer(&self, id: u64) -> Option<&SmileCustomer> {
        self.customers.get(&id)
    }

    pub fn by_email(&self, email: &str) -> Vec<SmileCustomer> {
        let email = email.trim().to_lowercase();
        self.customers
            .values()
            .filter(|c| c.email == email)
            .cloned()
            .collect()
    }

    pub fn transactions(&self) -> Vec<SmilePointsTransaction> {
        self.transactions.values().cloned().collect()
    }

    pub fn upsert(&mut self, mut customer: SmileCustomer) -> SmileCustomer {
        prepare_customer(
            &mut customer.id,
            &mut self.next_customer_id,
            &mut customer.email,
            [&mut customer.created_at, &mut customer.updated_at],
        );
        self.customers.insert(customer.id, customer.clone());
        customer
    }

    pub fn load(&mut self, store: &StoreData, members: &[(String, i64, Option<String>)]) {
        let shopify = store.customers_by_email();
        for (email, points, tier) in members {
            let source = shopify.get(&email.to_lowercase());
            let (first_name, last_name, created_at, updated_at) = source.map_or_else(
                || (String::new(), String::new(), Utc::now(), Utc::now()),
                |c| {
                    (
                        c.first_name.clone(),
                        c.last_name.clone(),
                        c.created_at,
                        c.updated_at,
                    )
                },
            );
            let vip_tier_id = tier
                .as_deref()
                .and_then(|name| self.tier_by_name(name))
                .map(|tier| tier.id);
            self.upsert(SmileCustomer {
                id: 0,
                first_name,
                last_name,
                email: email.clone(),
                state: SmileState::Member,
                date_of_birth: None,
                points_balance: *points,
                vip_tier_id,
                created_at,
                updated_at,
            });
        }
    }

    fn ids_by_email(&self, email: &str) -> Vec<u64> {
        let email = email.trim().to_lowercase();
        self.customers
            .values()
            .filter(|c| c.email == email)
            .map(|c| c.id)
            .collect()
    }

    pub fn set_points(&mut self, email: &str, points: i64, now: DateTime<Utc>) -> bool {
        let ids = self.ids_by_email(email);
        for id in &ids {
            let balance = self.customers[id].points_balance;
            if balance != points {
                let note = Some("Balance set by test".to_owned());
                self.record_transaction(
                    *id,
                    points - balance,
                    Some("Points adjustment".into()),
                    note,
                    now,
                );
            }
        }
        !ids.is_empty()
    }

    pub fn set_tier(&mut self, email: &str, tier_name: Option<&str>, now: DateTime<Utc>) -> bool {
        let tier_id = match tier_name {
            None => None,
            Some(name) => match self.tier_by_name(name) {
                Some(tier) => Some(tier.id),
                None => return false,
            },
        };
        let ids = self.ids_by_email(email);
        for id in &ids {
            if let Some(customer) = self.customers.get_mut(id) {
                customer.vip_tier_id = tier_id;
                customer.updated_at = millis(now);
            }
        }
        !ids.is_empty()
    }

    /// Applies a points change, refusing one that would leave a negative balance.
    pub fn create_transaction(
        &mut self,
        customer_id: u64,
        points_change: i64,
        description: Option<String>,
        internal_note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<SmilePointsTransaction, PointsError> {
        let customer = self
            .customers
            .get(&customer_id)
            .ok_or(PointsError::UnknownCustomer)?;
        let balance = customer.points_balance;
        if balance.saturating_add(points_change) < 0 {
            return Err(PointsError::NegativeBalance { balance });
        }
        Ok(self.record_transaction(customer_id, points_change, description, internal_note, now))
    }

    fn record_transaction(
        &mut self,
        customer_id: u64,
        points_change: i64,
        description: Option<String>,
        internal_note: Option<String>,
        now: DateTime<Utc>,
    ) -> SmilePointsTransaction {
        let now = millis(now);
        if let Some(customer) = self.customers.get_mut(&customer_id) {
            customer.points_balance += points_change;
            customer.updated_at = now;
        }
        let transaction = SmilePointsTransaction {
            id: self.next_transaction_id,
            customer_id,
            points_change,
            description,
            internal_note,
            created_at: now,
            updated_at: now,
        };
        self.next_transaction_id += 1;
        self.transactions
            .insert(transaction.id, transaction.clone());
        transaction
    }

    /// The VIP tier object (`GET /vip_tiers`, `include=vip_status.vip_tier`).
    pub fn tier_json(tier: &SmileVipTier) -> Value {
        json!({
            "id": tier.id,
            "name": tier.name,
            "image_url": tier.image_url,
            "milestone": tier.milestone,
        })
    }

    /// A customer object; `include` holds the requested `include` values.
    pub fn customer_json(&self, customer: &SmileCustomer, include: &[String]) -> Value {
        let mut value = json!({
            "id": customer.id,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "email": customer.email,
            "state": customer.state.as_str(),
            "date_of_birth": customer.date_of_birth,
            "points_balance": customer.points_balance,
            "referral_url": format!("http://i.refs.cc/{:x}", customer.id),
            "vip_tier_id": customer.vip_tier_id,
            "created_at": timestamp(customer.created_at),
            "updated_at": timestamp(customer.updated_at),
        });
        let wants = |name: &str| include.iter().any(|i| i == name);
        if wants("vip_status") || wants("vip_status.vip_tier") || wants("vip_status.next_vip_tier")
        {
            value["vip_status"] = self.vip_status(customer, &wants);
        }
        value
    }

    /// `vip_status`; the fake's programs progress by points balance.
    fn vip_status(&self, customer: &SmileCustomer, wants: &dyn Fn(&str) -> bool) -> Value {
        let current = customer.vip_tier_id.and_then(|id| self.tier(id));
        let floor = current.map_or(i64::MIN, |tier| tier.milestone);
        let next = self.tiers.iter().find(|tier| tier.milestone > floor);
        let progress = customer.points_balance;
        let mut status = json!({
            "vip_tier_id": customer.vip_tier_id,
            "vip_tier_expires_at": null,
            "progress_value": progress,
            "current_vip_period_end": null,
            "delta_to_retain_vip_tier": null,
            "next_vip_tier_id": next.map(|tier| tier.id),
            "delta_to_next_vip_tier": next.map(|tier| (tier.milestone - progress).max(0)),
        });
        if wants("vip_status.vip_tier") {
            status["vip_tier"] = current.map_or(Value::Null, Self::tier_json);
        }
        if wants("vip_status.next_vip_tier") {
            status["next_vip_tier"] = next.map_or(Value::Null, Self::tier_json);
        }
        status
    }

    pub fn transaction_json(transaction: &SmilePointsTransaction) -> Value {
        json!({
            "id": transaction.id,
            "customer_id": transaction.customer_id,
            "points_change": transaction.points_change,
            "description": transaction.description,
            "internal_note": transaction.internal_note,
            "created_at": timestamp(transaction.created_at),
            "updated_at": timestamp(transaction.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smile::SmileOptions;

    fn store_with(email: &str, points: i64) -> Store {
        let mut store = Store::new(SmileOptions::default().vip_tiers);
        store.upsert(SmileCustomer {
            email: email.to_owned(),
            points_balance: points,
            state: SmileState::Member,
            ..SmileCustomer::default()
        });
        store
    }

    #[test]
    fn negative_balances_are_refused_and_nothing_changes() {
        let mut store = store_with("A@X.com", 50);
        let id = store.by_email("a@x.com")[0].id;
        let refused = store.create_transaction(id, -51, None, None, Utc::now());
        assert_eq!(refused, Err(PointsError::NegativeBalance { balance: 50 }));
        assert!(store.transactions().is_empty());
        let done = store.create_transaction(id, -50, None, None, Utc::now());
        assert!(done.is_ok());
        assert_eq!(store.by_email("a@x.com")[0].points_balance, 0);
    }

    #[test]
    fn set_points_records_the_difference() {
        let mut store = store_with("a@x.com", 50);
        assert!(store.set_points("a@x.com", 80, Utc::now()));
        assert_eq!(store.transactions()[0].points_change, 30);
        assert!(!store.set_points("nobody@x.com", 1, Utc::now()));
    }

    #[test]
    fn vip_status_names_current_and_next_tier() {
        let mut store = store_with("a@x.com", 600);
        assert!(store.set_tier("a@x.com", Some("Silver"), Utc::now()));
        assert!(!store.set_tier("a@x.com", Some("Platinum"), Utc::now()));
        let customer = &store.by_email("a@x.com")[0];
        let include = vec!["vip_status.vip_tier".to_owned()];
        let json = store.customer_json(customer, &include);
        assert_eq!(json["vip_status"]["vip_tier"]["name"], "Silver");
        assert_eq!(json["vip_status"]["next_vip_tier_id"], 426_715_803);
        assert_eq!(json["vip_status"]["delta_to_next_vip_tier"], 400);
        assert!(store
            .customer_json(customer, &[])
            .get("vip_status")
            .is_none());
    }
}
