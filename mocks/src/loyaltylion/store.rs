//! The program's customers and tiers, and their JSON as LoyaltyLion prints it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::{LoyaltyLionCustomer, LoyaltyLionTier, LoyaltyLionTierMembership};
use crate::data::StoreData;
use crate::smile::wire::{millis, prepare_customer, timestamp};

const FIRST_CUSTOMER_ID: u64 = 1001;

#[derive(Debug)]
pub struct Store {
    customers: BTreeMap<u64, LoyaltyLionCustomer>,
    /// Lowest first.
    tiers: Vec<LoyaltyLionTier>,
    next_id: u64,
}

impl Store {
    pub fn new(mut tiers: Vec<LoyaltyLionTier>) -> Self {
        tiers.sort_by_key(|tier| tier.number);
        Store {
            customers: BTreeMap::new(),
            tiers,
            next_id: FIRST_CUSTOMER_ID,
        }
    }

    pub fn tiers(&self) -> &[LoyaltyLionTier] {
        &self.tiers
    }

    pub fn customers(&self) -> Vec<LoyaltyLionCustomer> {
        self.customers.values().cloned().collect()
    }

    pub fn by_merchant_id(&self, merchant_id: &str) -> Option<&LoyaltyLionCustomer> {
        self.customers
            .values()
            .find(|c| c.merchant_id == merchant_id)
    }

    pub fn by_merchant_id_mut(&mut self, merchant_id: &str) -> Option<&mut LoyaltyLionCustomer> {
        self.customers
            .values_mut()
            .find(|c| c.merchant_id == merchant_id)
    }

    pub fn upsert(&mut self, mut customer: LoyaltyLionCustomer) -> LoyaltyLionCustomer {
        prepare_customer(
            &mut customer.id,
            &mut self.next_id,
            &mut customer.email,
            [&mut customer.created_at, &mut customer.updated_at],
        );
        customer.enrolled_at = customer.enrolled_at.map(millis);
        if let Some(membership) = &mut customer.tier_membership {
            membership.started_at = millis(membership.started_at);
            membership.expires_at = membership.expires_at.map(millis);
        }
        self.customers.insert(customer.id, customer.clone());
        customer
    }

    fn membership(&self, name: &str, at: DateTime<Utc>) -> Option<LoyaltyLionTierMembership> {
        let tier = self.tiers.iter().find(|tier| tier.name == name)?;
        Some(LoyaltyLionTierMembership {
            tier_id: tier.id,
            started_at: at,
            expires_at: Some(at + Duration::days(365)),
            manual: false,
        })
    }

    pub fn load(&mut self, store: &StoreData, members: &[(String, i64, Option<String>)]) {
        let shopify = store.customers_by_email();
        for (n, (email, points, tier)) in members.iter().enumerate() {
            let source = shopify.get(&email.to_lowercase());
            let now = Utc::now();
            let (merchant_id, created_at, updated_at) = source.map_or_else(
                || (format!("guest-{n}"), now, now),
                |c| (c.id.to_string(), c.created_at, c.updated_at),
            );
            let mut properties = Map::new();
            if let Some(c) = source {
                properties.insert("first_name".into(), json!(c.first_name));
                properties.insert("last_name".into(), json!(c.last_name));
                properties.insert(
                    "name".into(),
                    json!(format!("{} {}", c.first_name, c.last_name)),
                );
            }
            let tier_membership = tier
                .as_deref()
                .and_then(|name| self.membership(name, updated_at));
            self.upsert(LoyaltyLionCustomer {
                id: 0,
                merchant_id,
                email: email.clone(),
                points_approved: *points,
                properties,
                enrolled: true,
                enrolled_at: Some(created_at),
                guest: source.is_none(),
                tier_membership,
                created_at,
                updated_at,
                ..LoyaltyLionCustomer::default()
            });
        }
    }

    fn with_email(&mut self, email: &str) -> Vec<&mut LoyaltyLionCustomer> {
        let email = email.trim().to_lowercase();
        self.customers
            .values_mut()
            .filter(|c| c.email == email)
            .collect()
    }

    pub fn set_points(&mut self, email: &str, points: i64, now: DateTime<Utc>) -> bool {
        let matching = self.with_email(email);
        let found = !matching.is_empty();
        for customer in matching {
            customer.points_approved = points;
            customer.updated_at = millis(now);
        }
        found
    }

    pub fn set_tier(&mut self, email: &str, tier_name: Option<&str>, now: DateTime<Utc>) -> bool {
        let now = millis(now);
        let membership = match tier_name {
            None => None,
            Some(name) => match self.membership(name, now) {
                Some(membership) => Some(membership),
                None => return false,
            },
        };
        let matching = self.with_email(email);
        let found = !matching.is_empty();
        for customer in matching {
            customer.tier_membership = membership.clone();
            customer.updated_at = now;
        }
        found
    }

    fn tier_json(tier: &LoyaltyLionTier) -> Value {
        json!({
            "id": tier.id,
            "name": tier.name,
            "number": tier.number,
            "default": tier.default,
            "hidden": tier.hidden,
            "lower_bound": tier.lower_bound,
            "upper_bound": tier.upper_bound,
            "position": tier.position,
        })
    }

    /// A customer object, with every field the Admin API documents.
    pub fn customer_json(&self, customer: &LoyaltyLionCustomer) -> Value {
        let membership = customer.tier_membership.as_ref().and_then(|membership| {
            let tier = self.tiers.iter().find(|t| t.id == membership.tier_id)?;
            Some(json!({
                "started_at": timestamp(membership.started_at),
                "expires_at": membership.expires_at.map(timestamp),
                "manual": membership.manual,
                "loyalty_tier": Self::tier_json(tier),
            }))
        });
        json!({
            "id": customer.id,
            "merchant_id": customer.merchant_id,
            "email": customer.email,
            "points_approved": customer.points_approved,
            "points_pending": customer.points_pending,
            "points_spent": customer.points_spent,
            "properties": customer.properties,
            "metadata": customer.metadata,
            "rewards_claimed": 0,
            "blocked": customer.blocked,
            "guest": customer.guest,
            "enrolled": customer.enrolled,
            "enrolled_at": customer.enrolled_at.map(timestamp),
            "referral_id": null,
            "referred_by": null,
            "loyalty_tier_membership": membership,
            "insights_segment": null,
            "birthday": customer.birthday,
            "referral_url": format!("https://prz.io/{:x}", customer.id),
            "created_at": timestamp(customer.created_at),
            "updated_at": timestamp(customer.updated_at),
            "linked_merchant_ids": [],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loyaltylion::LoyaltyLionOptions;

    #[test]
    fn tiers_render_as_memberships_and_clear_to_null() {
        let mut store = Store::new(LoyaltyLionOptions::default().tiers);
        store.upsert(LoyaltyLionCustomer {
            merchant_id: "7000000001".into(),
            email: "Ann@Example.com".into(),
            ..LoyaltyLionCustomer::default()
        });
        assert!(store.set_tier("ann@example.com", Some("Gold"), Utc::now()));
        assert!(!store.set_tier("ann@example.com", Some("Platinum"), Utc::now()));
        let customer = store.by_merchant_id("7000000001").expect("stored").clone();
        let json = store.customer_json(&customer);
        let tier = &json["loyalty_tier_membership"]["loyalty_tier"];
        assert_eq!(
            (tier["name"].as_str(), tier["upper_bound"].is_null()),
            (Some("Gold"), true)
        );
        assert!(store.set_tier("ann@example.com", None, Utc::now()));
        let customer = store.by_merchant_id("7000000001").expect("stored").clone();
        assert!(store.customer_json(&customer)["loyalty_tier_membership"].is_null());
    }
}
