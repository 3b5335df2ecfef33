//! Sinks: destinations tiersync writes the tier to. Each drains its outbox entries behind a
//! limiter shaped like its API's published limits and records what the destination
//! acknowledged.

pub mod klaviyo;
pub mod shopify;

use crate::http::ApiError;
use crate::store::StoreError;

/// What one delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Writes the destination acknowledged.
    pub written: usize,
    /// Writes the destination refused for good (parked with its error detail).
    pub parked: usize,
    /// Writes that kept failing transiently; they stay pending for the next pass.
    pub deferred: usize,
    /// Klaviyo bulk import jobs (profiles) used.
    pub bulk_jobs: usize,
    /// Shopify bulk mutation operations run (storefront).
    pub bulk_operations: usize,
    /// Of `written`, the writes acknowledged through bulk mutation operations (storefront).
    pub bulk_written: usize,
    /// Wall time spent on bulk mutation operations (staging, running, reading results).
    pub bulk_elapsed: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The destination cannot be written at all (credential refused).
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
