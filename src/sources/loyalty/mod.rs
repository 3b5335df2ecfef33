//! Loyalty apps as a source: points balances (which feed the blended CLV) and the app's own
//! tier, read incrementally by `updated_at`. One interface, two implementations.
//!
//! Neither Smile.io's nor LoyaltyLion's public API sets a customer's VIP tier (LoyaltyLion's
//! customer PATCH takes only `birthday` and `blocked`; Smile has no tier or attribute write),
//! so tiersync reads the app's tier and reports disagreements instead of pretending to write.

mod client;
mod loyaltylion;
mod smile;

pub use client::{LoyaltyClient, LoyaltyMember};
