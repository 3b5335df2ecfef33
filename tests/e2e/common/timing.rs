//! One test at a time among those that race a clock.
//!
//! Every test of this binary shares one process, and `cargo test` runs them two at a time
//! (one per core here) in threads of that process. Most tests do not care who runs beside
//! them. A few do: they measure a rate or a duration, race a child process against a
//! deadline (kill it mid-delivery, before its retry), or load the machine with a daemon of
//! their own. Two of those side by side would take each other's CPU and push a deadline or a
//! window past its limit, so each holds this lock from its first line to its last; whatever
//! runs beside it is then one of the short tests on a single thread.

use tokio::sync::{Mutex, MutexGuard};

/// Waits until no other clock-racing test runs, and holds that until the guard is dropped
/// (also when the test panics: a tokio mutex is not poisoned, so one failure stays one).
pub async fn timing_sensitive() -> MutexGuard<'static, ()> {
    static CLOCK: Mutex<()> = Mutex::const_new(());
    CLOCK.lock().await
}
