//! The fakes over real HTTP, without the daemon: each vendor's fake as a client sees it, and
//! the faults they inject.
//!
//! One test binary, one module per fake: linking a single binary instead of one per file is
//! most of what `cargo test` spends on this crate's integration tests. Run one module with a
//! filter: `cargo test -p tiersync-mocks --test fakes klaviyo_fake`.

mod faults;
mod klaviyo_fake;
mod loyalty_fakes;
mod shopify_bulk_list;
mod shopify_bulk_mutation;
mod shopify_fake;
mod timing;
