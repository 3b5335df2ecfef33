//! The Shopify Admin GraphQL transport: the client (credentials, the cost bucket, retries),
//! bulk operations with their streamed JSONL result, and every document tiersync sends.
//! The orders source and the storefront sink both use it.

mod auth;
mod bulk;
pub mod bulk_mutation;
mod bulk_pace;
mod client;
mod cost_bucket;
mod jsonl;
pub mod lost_mutation;
pub mod queries;

pub use bulk::{concurrent_operations, run_bulk_query};
#[cfg(test)]
pub(crate) use client::decode_data;
pub use client::ShopifyClient;
pub use cost_bucket::{CostBucket, ThrottleStatus};
pub use jsonl::BulkSink;
