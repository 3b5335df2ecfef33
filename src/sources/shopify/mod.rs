//! Shopify orders in: by bulk operation on the first run and by `updated_at` pages
//! (re-reading an overlap window) afterwards; the shop's time zone and the app's access
//! scopes. The transport is `vendors::shopify`.

mod backfill;
mod orders;
mod pages;
mod scopes;
mod shop;

pub use orders::{ingest_orders, IngestError, IngestReport};
pub use scopes::{check as check_access, granted_scopes, Access, AccessError, ORDER_WINDOW_DAYS};
pub use shop::{shop_info, shop_timezone, ShopInfo, ShopPlan};
