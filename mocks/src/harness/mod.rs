//! The scaffolding every fake shares: binding a loopback port and serving a router on it
//! ([`serve`]), the middleware that injects faults, runs a fake's admission checks and records
//! every request with the status it got ([`Gate`], [`guarded`]), fault injection itself
//! ([`faults`], public as `tiersync_mocks::faults`), the Bearer-token checks both loyalty
//! fakes make ([`bearer`]), and the request-log and fault methods of the fakes' handles
//! ([`request_log!`]).

pub(crate) mod bearer;
pub mod faults;
mod gate;

pub(crate) use gate::{guarded, Gate, ThrottledAnswer};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;

/// Binds `addr` (port 0 picks a free one), builds the fake's state from its base URL
/// (`http://127.0.0.1:PORT`) and serves `router` over it until the runtime stops; a server
/// error is logged as "fake {name} stopped". Returns the state, for the test's handle.
pub(crate) async fn serve<S: Send + Sync + 'static>(
    addr: SocketAddr,
    name: &'static str,
    router: fn(Arc<S>) -> Router,
    state: impl FnOnce(String) -> S,
) -> std::io::Result<Arc<S>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let shared = Arc::new(state(format!("http://{local}")));
    let app = router(Arc::clone(&shared));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "fake {name} stopped");
        }
    });
    Ok(shared)
}

/// The request-log and fault methods of a fake's handle (`requests`, `clear_requests`,
/// `count`, `faults`), over the recorder and faults of the [`Gate`] (behind an `Arc`) at the
/// field path given, e.g. `shared`; `$example` is a method and path for `count`'s
/// documentation.
macro_rules! request_log {
    ($($field:ident).+, $example:literal) => {
        fn recorder(&self) -> &$crate::recorder::Recorder {
            $crate::harness::Gate::recorder(&*self.$($field).+)
        }

        /// Every request received, oldest first, with the status it got.
        pub fn requests(&self) -> Vec<$crate::recorder::RecordedRequest> {
            self.recorder().all()
        }

        pub fn clear_requests(&self) {
            self.recorder().clear();
        }

        #[doc = concat!("How many requests had this method and path (e.g. `", $example, "`).")]
        pub fn count(&self, method: &str, path: &str) -> usize {
            self.recorder().matching(method, path).len()
        }

        /// The fake's injected faults: schedule them (`inject_next`, `inject_next_on`), set
        /// rates (`set_rates`), revoke and restore the token, and count what was injected
        /// (see [`crate::faults`]).
        pub fn faults(&self) -> &$crate::faults::Faults {
            $crate::harness::Gate::faults(&*self.$($field).+)
        }
    };
}

pub(crate) use request_log;
