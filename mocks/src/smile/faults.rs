//! Injected failures: the next `n` requests answered with a chosen status, whatever they are.
//! Shared with the fake LoyaltyLion.

#[derive(Debug, Default)]
pub(crate) struct Faults {
    remaining: u32,
    status: u16,
}

impl Faults {
    /// Answers the next `count` requests with `status` (replacing any earlier injection).
    pub(crate) fn reject_next(&mut self, count: u32, status: u16) {
        *self = Faults {
            remaining: count,
            status,
        };
    }

    /// The injected status for this request, if one is still due.
    pub(crate) fn take(&mut self) -> Option<u16> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_exactly_n_requests() {
        let mut faults = Faults::default();
        assert_eq!(faults.take(), None);
        faults.reject_next(2, 503);
        assert_eq!(faults.take(), Some(503));
        assert_eq!(faults.take(), Some(503));
        assert_eq!(faults.take(), None);
    }
}
