//! Injected failures, so tests can drive the daemon's retry paths: the next `n` requests
//! answered with a chosen status (429 with `Retry-After`, 500, 503, …) whatever they are, and
//! the next `n` answers lost after the request took effect (as when a response times out).

use super::errors::ApiError;

#[derive(Debug, Default)]
pub struct Faults {
    remaining: u32,
    status: u16,
    retry_after: Option<u64>,
    /// Answers to replace with a 503 after the endpoint has done its work, on this path.
    lost: u32,
    lost_path: String,
}

impl Faults {
    /// Answers the next `count` requests with `status` (replacing any earlier injection).
    pub fn reject_next(&mut self, count: u32, status: u16, retry_after: Option<u64>) {
        *self = Faults {
            remaining: count,
            status,
            retry_after,
            lost: self.lost,
            lost_path: std::mem::take(&mut self.lost_path),
        };
    }

    /// Loses the next `count` answers on `path`: the requests take effect, the client sees a
    /// 503.
    pub fn lose_next(&mut self, path: &str, count: u32) {
        self.lost = count;
        self.lost_path = path.to_string();
    }

    /// Whether this answer (to a request on `path`) is to be lost.
    pub fn take_lost(&mut self, path: &str) -> bool {
        let lost = self.lost > 0 && self.lost_path == path;
        if lost {
            self.lost -= 1;
        }
        lost
    }

    /// The injected error for this request, if one is still due.
    pub fn take(&mut self) -> Option<ApiError> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(ApiError::for_status(self.status, self.retry_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_exactly_n_requests() {
        let mut faults = Faults::default();
        assert!(faults.take().is_none());
        faults.reject_next(2, 503, None);
        assert_eq!(faults.take().map(|e| e.status.as_u16()), Some(503));
        assert!(faults.take().is_some());
        assert!(faults.take().is_none());
    }

    #[test]
    fn throttle_injection_carries_retry_after() {
        let mut faults = Faults::default();
        faults.reject_next(1, 429, Some(4));
        let error = faults.take().expect("injected");
        assert_eq!((error.code, error.retry_after), ("throttled", Some(4)));
    }
}
