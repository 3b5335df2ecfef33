//! Operator commands beyond the daemon.

pub mod demo;
