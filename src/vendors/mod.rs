//! Vendor transports: one client per vendor API, shared by the sources that read it and the
//! sinks that write to it. Only Shopify is both; Klaviyo is only written (`sinks::klaviyo`)
//! and the loyalty apps only read (`sources::loyalty`), so their clients live there.

pub mod shopify;
