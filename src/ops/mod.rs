//! Operator commands beyond the daemon.

pub mod calibrate;
pub mod check;
pub mod daemon_status;
/// `tiersync demo` needs the fake servers and the vendored API contracts of `tiersync-mocks`,
/// which come with the `demo` feature (on by default). A production build leaves the feature
/// out and gets, under the same name, a `demo` that says how to build one that has it: the
/// command line and the rest of the crate are the same in both builds.
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(not(feature = "demo"))]
#[path = "demo_absent.rs"]
pub mod demo;
pub mod explain;
pub mod forget;
pub mod report;
pub mod status;

/// What `tiersync demo` is asked to do (its command-line arguments), in either build.
pub struct DemoOptions {
    /// Customers in the generated store.
    pub customers: usize,
    /// Seed of the generator, so that a run can be repeated.
    pub seed: u64,
    /// Keep the checkpoint store here (a new directory) instead of a temporary one.
    pub store: Option<std::path::PathBuf>,
}
