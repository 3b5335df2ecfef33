//! The model: pure functions from a customer's facts to their tier. No I/O here, so every
//! rule can be tested directly.
//!
//! - [`history`](mod@history): orders → lifetime/window sums and the purchase-day summary.
//! - [`predict`]: the BG/NBD + Gamma-Gamma predicted CLV ([`clv`] holds the statistics).
//! - [`segments`]: RFM scores and segments against the day's quintiles.
//! - [`population`]: what the daily recalculation derives from all customers.
//! - [`customer`]: one customer's inputs, blended CLV and placement.
//! - [`state`]: the tier state machine (grace, lapse, re-activation, peak).
//! - [`destination`]: what each destination shows of that status (Klaviyo profile properties,
//!   the storefront's tag and metafields) and when two showings are the same.

pub mod clv;
pub mod customer;
pub mod destination;
pub mod history;
pub mod population;
pub mod predict;
pub mod segments;
pub mod state;

pub use customer::{blend, inputs, next_level, place, Inputs};
pub use destination::{Destination, DestinationState, ProfileState, StorefrontState};
pub use history::{history, History, OrderFacts, ShopDays};
pub use population::Population;
pub use predict::ClvModel;
pub use segments::RfmBreaks;
pub use state::{step, Observation, StateRules, TierState, Transition, TransitionKind, VipState};
