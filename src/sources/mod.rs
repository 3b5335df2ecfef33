//! Sources: where facts come from. Each pulls what changed since its stored cursor and
//! upserts normalized records into the store, moving the cursor only with the data it covers.

pub mod loyalty;
pub mod shopify;
