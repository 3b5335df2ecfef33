//! Customer-lifetime-value statistics for tiersync: per-customer summaries
//! from transactions, BG/NBD purchase model, Gamma-Gamma spend model,
//! discounted CLV (lifetimes 0.11.3 compatible) and RFM segmentation.
//!
//! Pure functions on `f64`, no dependencies. Typical flow:
//! [`summary::summarize`] → [`bgnbd::fit`] + [`gamma_gamma::fit`] →
//! [`lifetime_value::customer_lifetime_value`] per customer; [`rfm::score`] is
//! independent of the models.

pub mod bgnbd;
pub mod gamma_gamma;
pub mod lifetime_value;
pub mod optimize;
pub mod rfm;
pub mod special;
pub mod summary;

pub use optimize::FitError;
