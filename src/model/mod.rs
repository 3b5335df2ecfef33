//! The model: pure functions from a customer's facts to their tier. No I/O here, so every
//! rule can be tested directly and the fuller model (predicted and blended CLV, grace, lapse,
//! RFM) slots in beside it.

mod aggregate;
pub mod clv;
mod level;
pub mod state;

pub use aggregate::{aggregate, Aggregates};
pub use level::reached_level;
