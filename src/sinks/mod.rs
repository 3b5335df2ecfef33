//! Sinks: destinations tiersync writes the tier to. Each drains its outbox entries behind a
//! limiter shaped like its API's published limits and records what the destination
//! acknowledged.

pub mod klaviyo;
