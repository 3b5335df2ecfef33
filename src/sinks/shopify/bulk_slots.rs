//! Shopify's bulk mutation slots, as a batch hands them to its operations.
//!
//! A batch has more operations than Shopify runs at once (five from API 2026-01). Each one
//! queues for a slot before it stages its file and stages while it waits, so the slots go in
//! submission order and a slot that frees waits only for the next `bulkOperationRunMutation`
//! (before, the next operation's file was built and uploaded only once a slot had freed).
//! An operation holds its slot from its start until its result is read and recorded.
//! Operations a resumed batch finds already submitted (running, or their start answer lost)
//! keep the slots they hold at Shopify.
//!
//! Each start in a freed slot logs, at debug, how long the slot stayed idle: from the end of
//! the operation before (as its pace foretold it, `bulk_pace`) to this start's answer.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// The slots of one batch.
pub(super) struct Slots {
    /// Free slots; FIFO, so they go in the order asked.
    free: Semaphore,
    /// Slots held at Shopify by operations submitted before a restart, not yet claimed.
    resumed: Mutex<usize>,
    /// When each freed slot's operation ended, earliest first.
    freed: Mutex<VecDeque<Freed>>,
}

/// A slot given back: when, and how long after its operation's end that end was seen.
struct Freed {
    at: Instant,
    seen_late: Duration,
}

/// One slot, held by one operation; given back when dropped.
pub(super) struct Slot<'a> {
    slots: &'a Slots,
    /// The end that freed this slot, until a start in it reports the turnaround.
    freed: Option<Freed>,
}

impl Slots {
    /// `concurrent` slots, `submitted` of them already held by operations of the batch that
    /// were submitted before a restart.
    pub(super) fn new(concurrent: usize, submitted: usize) -> Slots {
        let resumed = submitted.min(concurrent);
        Slots {
            free: Semaphore::new(concurrent - resumed),
            resumed: Mutex::new(resumed),
            freed: Mutex::default(),
        }
    }

    /// The next free slot, in the order asked (asking is queueing: the future enqueues on
    /// its first poll).
    pub(super) async fn take(&self) -> Slot<'_> {
        self.free
            .acquire()
            .await
            .expect("the semaphore is never closed")
            .forget();
        let freed = self.freed.lock().expect("slots lock").pop_front();
        Slot { slots: self, freed }
    }

    /// The slot of an operation submitted before a restart: one of those held at Shopify by
    /// such operations, or, when they are all claimed, a free one.
    pub(super) async fn resume(&self) -> Slot<'_> {
        {
            let mut resumed = self.resumed.lock().expect("slots lock");
            if *resumed > 0 {
                *resumed -= 1;
                return Slot {
                    slots: self,
                    freed: None,
                };
            }
        }
        self.take().await
    }
}

impl Slot<'_> {
    /// An operation started in this slot: logs how long it stayed idle since the last one
    /// in it ended.
    pub(super) fn started(&mut self, operation: &str) {
        if let Some(freed) = self.freed.take() {
            let idle = freed.seen_late + freed.at.elapsed();
            tracing::debug!(
                operation,
                idle_ms = idle.as_millis() as u64,
                seen_late_ms = freed.seen_late.as_millis() as u64,
                "bulk mutation slot turnaround"
            );
        }
    }

    /// Gives the slot back once its operation has ended (seen `seen_late` after its end)
    /// and its result is recorded.
    pub(super) fn free(self, seen_late: Duration) {
        self.slots
            .freed
            .lock()
            .expect("slots lock")
            .push_back(Freed {
                at: Instant::now(),
                seen_late,
            });
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // Given back before a start used it (an interruption): the end it carried is the
        // next start's to report.
        if let Some(freed) = self.freed.take() {
            self.slots
                .freed
                .lock()
                .expect("slots lock")
                .push_front(freed);
        }
        self.slots.free.add_permits(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_go_in_the_order_asked_and_resumed_ones_first_to_their_holders() {
        let slots = Slots::new(2, 1);
        let resumed = slots.resume().await;
        let first = slots.take().await;
        // Both slots held: later askers queue, the earlier asker first.
        let mut second = Box::pin(slots.take());
        let mut third = Box::pin(slots.take());
        assert!(futures::poll!(second.as_mut()).is_pending());
        assert!(futures::poll!(third.as_mut()).is_pending());
        first.free(Duration::from_millis(30));
        assert!(futures::poll!(third.as_mut()).is_pending(), "not its turn");
        let mut second = second.await;
        assert_eq!(
            second.freed.as_ref().map(|f| f.seen_late),
            Some(Duration::from_millis(30)),
            "the freed slot carries its end to the next start"
        );
        second.started("gid://shopify/BulkOperation/2");
        assert!(second.freed.is_none());
        drop(resumed);
        let third = third.await;
        assert!(
            third.freed.is_none(),
            "a resumed slot ended no operation seen"
        );
        // With every resumed slot claimed, resuming waits for a free one like any other.
        let mut late = Box::pin(slots.resume());
        assert!(futures::poll!(late.as_mut()).is_pending());
        drop(third);
        late.await;
    }
}
