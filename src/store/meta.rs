//! The `meta` tree: cursors, the shop's time zone, the day's population, the destinations'
//! stops and the dates of the last reconcile, the storefront's first read and a partial
//! history.

use chrono::{DateTime, Utc};

use super::codec::{decode, encode};
use super::outbox::key_name;
use super::{Store, StoreError};
use crate::model::{Destination, Population};

pub(super) const KEY_ORDERS_CURSOR: &[u8] = b"cursor/shopify/orders";
const KEY_POPULATION: &[u8] = b"model/population";
const KEY_TIMEZONE: &[u8] = b"shop/timezone";
pub(super) const KEY_LOYALTY_CURSOR: &[u8] = b"cursor/loyalty/customers";
const KEY_LAST_RECONCILE: &[u8] = b"reconcile/last";
/// When the storefront was first read back, before tiersync's first write to it.
const KEY_STOREFRONT_SEEDED: &[u8] = b"storefront/seeded";
const KEY_PARTIAL_HISTORY: &[u8] = b"shop/partial_history_since";
/// When Klaviyo last answered a request with the key (not a 401 or 403).
const KEY_KLAVIYO_KEY_PROVEN: &[u8] = b"klaviyo/key_proven";

impl Store {
    /// The `updated_at` up to which every order has been stored.
    pub fn orders_cursor(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta
            .get(KEY_ORDERS_CURSOR)
            .map_err(|e| self.err(e))?
            .map(|v| decode("meta", "orders cursor", &v))
            .transpose()
    }

    /// The population parameters of the last daily recalculation.
    pub fn population(&self) -> Result<Option<Population>, StoreError> {
        self.meta_get(KEY_POPULATION, "population")
    }

    pub fn set_population(&self, population: &Population) -> Result<(), StoreError> {
        self.meta_set(KEY_POPULATION, population)
    }

    /// Why a destination is stopped (its credential was refused), if it is.
    pub fn destination_stopped(
        &self,
        destination: Destination,
    ) -> Result<Option<String>, StoreError> {
        self.meta_get(&stopped_key(destination), "destination stop")
    }

    /// Records (or, with `None`, clears) a destination's stop.
    pub fn set_destination_stopped(
        &self,
        destination: Destination,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        match why {
            Some(why) => self.meta_set(&stopped_key(destination), &why.to_string()),
            None => self
                .meta
                .remove(stopped_key(destination))
                .map(|_| ())
                .map_err(|e| self.err(e)),
        }
    }

    /// When Klaviyo last accepted the key.
    pub fn klaviyo_key_proven(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_KLAVIYO_KEY_PROVEN, "klaviyo key proven")
    }

    pub fn set_klaviyo_key_proven(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta_set(KEY_KLAVIYO_KEY_PROVEN, &at)
    }

    /// When the daemon last ran its scheduled reconcile.
    pub fn last_reconcile(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_LAST_RECONCILE, "last reconcile")
    }

    pub fn set_last_reconcile(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta_set(KEY_LAST_RECONCILE, &at)
    }

    /// When the storefront's existing tags and metafields were read into the acknowledged
    /// state (`None`: not yet — the first pass of this store must read them before writing).
    pub fn storefront_seeded(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_STOREFRONT_SEEDED, "storefront seeding")
    }

    pub fn set_storefront_seeded(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta_set(KEY_STOREFRONT_SEEDED, &at)
    }

    /// When the store's order history starts, if the first backfill ran without
    /// `read_all_orders` (only the last 60 days were visible). Kept until `tiersync rebuild`,
    /// since getting the scope later does not bring the older orders in by itself.
    pub fn partial_history_since(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_PARTIAL_HISTORY, "partial history")
    }

    pub fn set_partial_history_since(&self, since: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta_set(KEY_PARTIAL_HISTORY, &since)
    }

    /// The shop's IANA time zone, once learned from Shopify.
    pub fn shop_timezone(&self) -> Result<Option<String>, StoreError> {
        self.meta_get(KEY_TIMEZONE, "shop time zone")
    }

    pub fn set_shop_timezone(&self, name: &str) -> Result<(), StoreError> {
        self.meta_set(KEY_TIMEZONE, &name.to_string())
    }

    pub(super) fn meta_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        self.meta
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| decode("meta", what, &v))
            .transpose()
    }

    pub(super) fn meta_set<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        self.meta
            .insert(key, encode(value)?)
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The `updated_at` up to which every loyalty member has been stored.
    pub fn loyalty_cursor(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.meta_get(KEY_LOYALTY_CURSOR, "loyalty cursor")
    }
}

fn stopped_key(destination: Destination) -> Vec<u8> {
    format!("stopped/{}", key_name(destination)).into_bytes()
}
