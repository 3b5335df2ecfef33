//! Shopify Admin GraphQL: orders, by bulk operation on the first run and by `updated_at`
//! pages (re-reading an overlap window) afterwards.

mod auth;
mod bulk;
mod client;
mod jsonl;
mod orders;
pub mod queries;
mod scopes;
mod shop;
mod throttle;

pub use bulk::run_bulk_query;
pub use client::ShopifyClient;
pub use jsonl::BulkSink;
pub use orders::{ingest_orders, IngestError, IngestReport};
pub use scopes::{check as check_access, granted_scopes, Access, AccessError, ORDER_WINDOW_DAYS};
pub use shop::shop_timezone;
pub use throttle::CostBucket;
