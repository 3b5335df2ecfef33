//! Operator commands beyond the daemon.

pub mod calibrate;
pub mod demo;
pub mod explain;
pub mod status;
