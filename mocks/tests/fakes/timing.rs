//! One test at a time among those that race a clock.
//!
//! Every test of this binary shares one process, and `cargo test` runs them two at a time
//! (one per core here) in threads of that process. A few of them send a burst that must fit
//! in one second of a fake's rate window, a request that must arrive before a bucket refills
//! or a bulk operation finishes, or one that must answer within a short client timeout. Two of
//! those side by side would stretch each other's burst past its window, so each holds this
//! lock from its first line to its last.

use tokio::sync::{Mutex, MutexGuard};

/// Waits until no other clock-racing test runs, and holds that until the guard is dropped
/// (also when the test panics: a tokio mutex is not poisoned, so one failure stays one).
pub async fn timing_sensitive() -> MutexGuard<'static, ()> {
    static CLOCK: Mutex<()> = Mutex::const_new(());
    CLOCK.lock().await
}
