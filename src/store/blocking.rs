//! The store's long synchronous work (a scan of every customer, a million-entry outbox read)
//! run off the async workers: sled's calls block, and one of them lasting seconds on the
//! task that drives both destinations would hold the other destination's requests, polls
//! and timers for as long.

use super::Store;

impl Store {
    /// Runs `work` on this store on tokio's blocking pool and waits for it without holding an
    /// async worker, so the pass's other futures (the other destination's writes) go on, on
    /// the other core. A panic in `work` is resumed here. `work` runs to its end even if the
    /// caller stops waiting: it must leave the store consistent by itself, as every store
    /// call does.
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> T {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || work(&store)).await {
            Ok(done) => done,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // tokio cancels blocking work only while the runtime shuts down, and then nothing
            // polls this future again.
            Err(error) => panic!("the store's blocking work was cancelled: {error}"),
        }
    }
}
