//! The end-to-end tests: the daemon, as a library and as the `tiersync` binary, against the
//! fakes over real HTTP on loopback, plus the configuration, contract and CLV oracle tests.
//!
//! One test binary, one module per subject: linking a single binary instead of one per file
//! is most of what `cargo test` spends on this crate's integration tests, and `common` is
//! compiled once. Run one subject with a filter: `cargo test --test e2e chaos`.

mod accounting;
mod auth;
mod backfill_catch_up;
mod bad_input;
mod bulk_download;
mod bulk_lost_answer;
mod bulk_turnaround;
mod chaos;
mod check;
mod clv_oracle;
mod common;
mod config;
mod contracts;
mod crash;
mod destinations;
mod error_text;
mod events;
mod failures;
mod forget;
mod hand_store;
mod http_endpoint;
mod klaviyo_volume;
mod loyalty;
mod net_spend;
mod rate;
mod report;
mod service;
mod storefront_bulk;
mod storefront_readback;
mod sync_spine;
mod tier_model;
mod webhooks;
