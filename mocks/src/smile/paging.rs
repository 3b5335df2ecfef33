//! Keyset paging by descending id, as both loyalty platforms page their collections: each page
//! is the `limit` items just past an anchor id, in the direction the cursor names. Items that
//! change while a client pages (a new `updated_at`) keep their place, so every item matching
//! the filters is returned exactly once. Shared with the fake LoyaltyLion.

use serde::{Deserialize, Serialize};

/// Which way a cursor moves from its anchor id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    /// Older items: ids below the anchor.
    Next,
    /// Newer items: ids above the anchor.
    Prev,
}

/// One page, newest (highest id) first, with the anchors of the neighbouring pages.
#[derive(Debug, PartialEq)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    /// Anchor for a `Next` cursor, when older items remain.
    pub next: Option<u64>,
    /// Anchor for a `Prev` cursor, when newer items exist.
    pub prev: Option<u64>,
}

/// The page of `items` (already filtered, any order) at `at` (`None` = the first page). With
/// `repeat` (an injected [`Fault::RepeatPage`]) a later page starts half a page (at least one
/// item) back towards the page it came from, repeating some of that page's items.
///
/// [`Fault::RepeatPage`]: crate::faults::Fault::RepeatPage
pub(crate) fn page<T>(
    mut items: Vec<(u64, T)>,
    at: Option<(Direction, u64)>,
    limit: usize,
    repeat: bool,
) -> Page<T> {
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let len = items.len();
    let overlap = if repeat { (limit / 2).max(1) } else { 0 };
    let (start, end) = match at {
        None => (0, limit.min(len)),
        Some((Direction::Next, anchor)) => {
            let start = items.partition_point(|(id, _)| *id >= anchor);
            let start = start.saturating_sub(overlap);
            (start, (start + limit).min(len))
        }
        Some((Direction::Prev, anchor)) => {
            let end = items.partition_point(|(id, _)| *id > anchor);
            let end = (end + overlap).min(len);
            (end.saturating_sub(limit), end)
        }
    };
    let next = (end < len && end > start).then(|| items[end - 1].0);
    let prev = (start > 0 && end > start).then(|| items[start].0);
    let items = items.drain(start..end).map(|(_, item)| item).collect();
    Page { items, next, prev }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<(u64, u64)> {
        (1..=n).map(|id| (id, id)).collect()
    }

    #[test]
    fn walks_forward_and_back() {
        let first = page(ids(5), None, 2, false);
        assert_eq!(
            (first.items.clone(), first.next, first.prev),
            (vec![5, 4], Some(4), None)
        );
        let second = page(ids(5), Some((Direction::Next, 4)), 2, false);
        assert_eq!(
            (second.items.clone(), second.next, second.prev),
            (vec![3, 2], Some(2), Some(3))
        );
        let last = page(ids(5), Some((Direction::Next, 2)), 2, false);
        assert_eq!(
            (last.items.clone(), last.next, last.prev),
            (vec![1], None, Some(1))
        );
        let back = page(ids(5), Some((Direction::Prev, 3)), 2, false);
        assert_eq!(
            (back.items, back.next, back.prev),
            (vec![5, 4], Some(4), None)
        );
    }

    #[test]
    fn a_repeated_page_overlaps_the_one_before() {
        let second = page(ids(8), Some((Direction::Next, 5)), 4, true);
        assert_eq!((second.items, second.next), (vec![6, 5, 4, 3], Some(3)));
        // Back from the page that starts at 4: [6, 5] unrepeated, here with 4 again.
        let back = page(ids(8), Some((Direction::Prev, 4)), 2, true);
        assert_eq!(back.items, vec![5, 4]);
    }

    #[test]
    fn empty_collection_has_no_cursors() {
        let empty = page(Vec::<(u64, u64)>::new(), None, 10, false);
        assert_eq!((empty.items.len(), empty.next, empty.prev), (0, None, None));
    }
}
