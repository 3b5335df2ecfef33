//! The fake shop's mutable state: the store's records (indexed the way queries need them),
//! metafields, bulk operations, the rate-limit bucket, the request log and injected faults.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::bucket::LeakyBucket;
use super::bulk::BulkOperations;
use super::oauth::Tokens;
use super::query_filter::{Searchable, TimeField};
use super::ShopifyOptions;
use crate::data::{Customer, Order, StoreData};
use crate::faults::Faults;
use crate::recorder::Recorder;

/// Everything a request handler needs, shared by the server and the test handle.
pub(crate) struct Shared {
    pub options: ShopifyOptions,
    pub base_url: String,
    pub recorder: Recorder,
    pub faults: Faults,
    state: Mutex<ShopState>,
    tokens: Mutex<Tokens>,
}

impl Shared {
    pub(crate) fn new(options: ShopifyOptions, base_url: String) -> Shared {
        let bucket = LeakyBucket::new(options.bucket_max, options.restore_rate);
        let state = ShopState::new(bucket, options.plan.clone());
        Shared {
            faults: Faults::new(&options.faults),
            options,
            base_url,
            recorder: Recorder::default(),
            state: Mutex::new(state),
            tokens: Mutex::default(),
        }
    }

    /// The access tokens the client credentials grant issued.
    pub(crate) fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state, even if a panicking test thread poisoned the lock.
    pub(crate) fn state(&self) -> MutexGuard<'_, ShopState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A metafield as stored on a customer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredMetafield {
    pub id: u64,
    pub namespace: String,
    pub key: String,
    pub kind: String,
    pub value: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The shop as the fake holds it.
pub(crate) struct ShopState {
    pub currency: String,
    /// The plan's public display name (`Basic`, `Plus`…).
    pub plan: String,
    pub timezone: String,
    pub customers: BTreeMap<u64, Customer>,
    pub orders: BTreeMap<u64, Order>,
    /// Order ids per customer id, for `amountSpent` and `numberOfOrders`.
    orders_by_customer: HashMap<u64, BTreeSet<u64>>,
    /// Orders by `updated_at` (then id): a poll for the orders updated since a time reads a
    /// few hundred of a million-customer shop's 8 million instead of scanning them all,
    /// holding the shop, for 1.5 s a page (as Shopify's search index would not).
    orders_by_update: BTreeSet<(DateTime<Utc>, u64)>,
    /// Metafields per customer id.
    pub metafields: HashMap<u64, Vec<StoredMetafield>>,
    pub next_metafield_id: u64,
    pub bulk: BulkOperations,
    pub bucket: LeakyBucket,
    /// Staged uploads by key (`stagedUploadPath`): `None` until the file is uploaded.
    pub staged: HashMap<String, Option<Arc<String>>>,
    /// Staged upload keys issued so far (makes each key unique).
    pub staged_serial: u64,
    /// Per customer id, how many `tagsAdd` / `tagsRemove` changed it (sent alone or in bulk).
    pub tag_mutations: HashMap<u64, u32>,
    /// The next bulk mutation fails after this many lines (an injected fault).
    pub fail_bulk_mutation_after: Option<usize>,
    /// The next bulk mutation started loses its answer (an injected fault).
    pub lose_bulk_mutation_answer: bool,
}

impl ShopState {
    fn new(bucket: LeakyBucket, plan: String) -> ShopState {
        ShopState {
            currency: "USD".to_owned(),
            plan,
            timezone: "America/New_York".to_owned(),
            customers: BTreeMap::new(),
            orders: BTreeMap::new(),
            orders_by_customer: HashMap::new(),
            orders_by_update: BTreeSet::new(),
            metafields: HashMap::new(),
            next_metafield_id: 1,
            bulk: BulkOperations::default(),
            bucket,
            staged: HashMap::new(),
            staged_serial: 0,
            tag_mutations: HashMap::new(),
            fail_bulk_mutation_after: None,
            lose_bulk_mutation_answer: false,
        }
    }

    /// Replaces the store's records (metafields and bulk operations are kept).
    pub(crate) fn load(&mut self, store: StoreData) {
        self.currency = store.currency;
        self.timezone = store.timezone;
        self.customers = store.customers.into_iter().map(|c| (c.id, c)).collect();
        self.orders.clear();
        self.orders_by_customer.clear();
        self.orders_by_update.clear();
        for order in store.orders {
            self.upsert_order(order);
        }
    }

    pub(crate) fn upsert_order(&mut self, order: Order) {
        if let Some(old) = self.orders.get(&order.id) {
            self.orders_by_update.remove(&(old.updated_at, old.id));
            if let Some(ids) = old
                .customer_id
                .and_then(|c| self.orders_by_customer.get_mut(&c))
            {
                ids.remove(&order.id);
            }
        }
        if let Some(customer) = order.customer_id {
            self.orders_by_customer
                .entry(customer)
                .or_default()
                .insert(order.id);
        }
        self.orders_by_update.insert((order.updated_at, order.id));
        self.orders.insert(order.id, order);
    }

    /// The orders that may have been updated at `since` or later (all of them without it),
    /// for a search to filter.
    pub(crate) fn orders_updated_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Box<dyn Iterator<Item = &Order> + '_> {
        match since {
            Some(since) => Box::new(
                self.orders_by_update
                    .range((since, 0)..)
                    .filter_map(|(_, id)| self.orders.get(id)),
            ),
            None => Box::new(self.orders.values()),
        }
    }

    /// The customer's orders, oldest id first.
    pub(crate) fn orders_of(&self, customer_id: u64) -> impl Iterator<Item = &Order> {
        self.orders_by_customer
            .get(&customer_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.orders.get(id))
    }
}

impl Searchable for Order {
    fn id(&self) -> u64 {
        self.id
    }

    fn timestamp(&self, field: TimeField) -> Option<DateTime<Utc>> {
        Some(match field {
            TimeField::CreatedAt => self.created_at,
            TimeField::UpdatedAt => self.updated_at,
        })
    }

    fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
}

impl Searchable for Customer {
    fn id(&self) -> u64 {
        self.id
    }

    fn timestamp(&self, field: TimeField) -> Option<DateTime<Utc>> {
        Some(match field {
            TimeField::CreatedAt => self.created_at,
            TimeField::UpdatedAt => self.updated_at,
        })
    }

    fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
}
