//! Where the loyalty app and tiersync disagree on a customer's tier. One comparison, fed by
//! the pass report's scan of the customers and by [`loyalty_disagreements`] (`status`,
//! `reconcile`), so all three count the same customers.
//!
//! A customer disagrees when they are a member of the app (their email is in the `loyalty`
//! tree) and the app's tier, mapped through `loyalty.tier_names`, is not the level tiersync
//! holds — including a member the app gives no tier while tiersync gives one, and the
//! reverse. Customers who are not members are not compared.

use std::collections::{BTreeMap, HashMap};

use crate::config::{LoyaltyPlatform, Settings};
use crate::store::{CustomerRecord, LoyaltyRecord, Store, StoreError};

/// Disagreeing customers named (by email) before the rest are only counted.
pub const NAMED: usize = 10;

/// What the comparison found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoyaltyDisagreements {
    /// Customers who are members of the loyalty app.
    pub members: usize,
    /// Members whose app tier is not the level tiersync holds.
    pub count: usize,
    /// The first `NAMED` (ten), as `email: loyalty app X, tiersync Y`.
    pub examples: Vec<String>,
}

impl LoyaltyDisagreements {
    /// How many disagreeing customers are counted but not named.
    pub fn unnamed(&self) -> usize {
        self.count - self.examples.len()
    }
}

/// The app's tier name as a tiersync level name (`loyalty.tier_names`, else unchanged).
pub fn app_level(tier: Option<&str>, names: &BTreeMap<String, String>) -> Option<String> {
    tier.map(|t| names.get(t).cloned().unwrap_or_else(|| t.to_string()))
}

/// The comparison, one customer at a time.
pub struct LoyaltyComparison<'a> {
    /// Members by customer GID.
    members: HashMap<String, LoyaltyRecord>,
    names: &'a BTreeMap<String, String>,
    found: LoyaltyDisagreements,
}

impl<'a> LoyaltyComparison<'a> {
    /// `None` when no loyalty app is configured.
    pub fn new(store: &Store, settings: &'a Settings) -> Result<Option<Self>, StoreError> {
        if settings.loyalty.platform == LoyaltyPlatform::None {
            return Ok(None);
        }
        Ok(Some(LoyaltyComparison {
            members: store.loyalty_by_customer()?,
            names: &settings.loyalty.tier_names,
            found: LoyaltyDisagreements::default(),
        }))
    }

    pub fn customer(&mut self, record: &CustomerRecord) {
        let Some(member) = self.members.get(&record.id) else {
            return;
        };
        self.found.members += 1;
        let app = app_level(member.tier.as_deref(), self.names);
        if app == record.tier.level {
            return;
        }
        self.found.count += 1;
        if self.found.examples.len() < NAMED {
            self.found.examples.push(format!(
                "{}: loyalty app {}, tiersync {}",
                record.email.as_deref().unwrap_or(&record.id),
                app.as_deref().unwrap_or("no tier"),
                record.tier.level.as_deref().unwrap_or("None")
            ));
        }
    }

    pub fn finish(self) -> LoyaltyDisagreements {
        self.found
    }
}

/// Every customer in the store compared; `None` when no loyalty app is configured.
pub fn loyalty_disagreements(
    store: &Store,
    settings: &Settings,
) -> Result<Option<LoyaltyDisagreements>, StoreError> {
    let Some(mut comparison) = LoyaltyComparison::new(store, settings)? else {
        return Ok(None);
    };
    for record in store.customers() {
        comparison.customer(&record?);
    }
    Ok(Some(comparison.finish()))
}
