//! Relay connections as Shopify serves them: `edges { cursor node }`, `nodes`, `pageInfo`,
//! paged with `first`/`after` (and `last`/`before`, `reverse`).
//!
//! A cursor is the base64 of the item's sort key (e.g. `updated_at|id`), so it stays valid
//! and means "strictly after this position" even when items change between pages.

use apollo_compiler::resolvers::FieldError;
use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::{JsonMap, JsonValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Arguments that shape a page rather than filter items.
pub(crate) fn is_paging_argument(name: &str) -> bool {
    matches!(
        name,
        "first" | "after" | "last" | "before" | "reverse" | "sortKey" | "query" | "savedSearchId"
    )
}

/// One page of `(sort key, item)` pairs plus what lies around it.
pub(crate) struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// The same page with every item converted (e.g. to its full JSON value).
    pub(crate) fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self
                .items
                .into_iter()
                .map(|(key, item)| (key, f(item)))
                .collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

/// Pages `items`, which must be sorted ascending by their (unique) sort key. Without
/// `first`/`last` (bulk operations) the whole filtered list is one page.
pub(crate) fn page<T>(items: Vec<(String, T)>, args: &JsonMap) -> Result<Page<T>, FieldError> {
    page_repeating(items, args, false)
}

/// [`page`], where with `repeat` a page after `after` starts half a page (at least one item)
/// early, repeating items of the page before it (the injected [`Fault::RepeatPage`]).
///
/// [`Fault::RepeatPage`]: crate::faults::Fault::RepeatPage
pub(crate) fn page_repeating<T>(
    mut items: Vec<(String, T)>,
    args: &JsonMap,
    repeat: bool,
) -> Result<Page<T>, FieldError> {
    let descending = args.get("reverse").and_then(JsonValue::as_bool) == Some(true);
    if descending {
        items.reverse();
    }
    // Position in the current order: "after" means later in that order.
    let later = |key: &str, cursor: &str| {
        if descending {
            key < cursor
        } else {
            key > cursor
        }
    };
    let mut has_previous_page = false;
    let mut has_next_page = false;
    if let Some(after) = cursor_argument(args, "after")? {
        // Sorted, so the items after the cursor are a suffix.
        let mut start = items
            .iter()
            .position(|(key, _)| later(key, &after))
            .unwrap_or(items.len());
        if repeat {
            let overlap = count_argument(args, "first").map_or(1, |first| (first / 2).max(1));
            start = start.saturating_sub(overlap);
        }
        items.drain(..start);
        has_previous_page = start > 0;
    }
    if let Some(before) = cursor_argument(args, "before")? {
        let before_len = items.len();
        items.retain(|(key, _)| later(&before, key));
        has_next_page = items.len() < before_len;
    }
    if let Some(first) = count_argument(args, "first") {
        has_next_page |= items.len() > first;
        items.truncate(first);
    }
    if let Some(last) = count_argument(args, "last") {
        has_previous_page |= items.len() > last;
        items.drain(..items.len().saturating_sub(last));
    }
    Ok(Page {
        items,
        has_next_page,
        has_previous_page,
    })
}

/// The connection JSON (`edges`, `nodes`, `pageInfo`) for a page of full node values.
pub(crate) fn connection_json(page: Page<JsonValue>) -> JsonValue {
    let start_cursor = page.items.first().map(|(key, _)| encode_cursor(key));
    let end_cursor = page.items.last().map(|(key, _)| encode_cursor(key));
    let mut edges = Vec::with_capacity(page.items.len());
    let mut nodes = Vec::with_capacity(page.items.len());
    for (key, node) in page.items {
        edges.push(json!({ "cursor": encode_cursor(&key), "node": node.clone() }));
        nodes.push(node);
    }
    json!({
        "edges": edges,
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": page.has_next_page,
            "hasPreviousPage": page.has_previous_page,
            "startCursor": start_cursor,
            "endCursor": end_cursor,
        }
    })
}

/// Pages a nested list (kept in its stored order) and returns the connection JSON.
pub(crate) fn page_values(items: Vec<JsonValue>, args: &JsonMap) -> Result<JsonValue, FieldError> {
    let keyed = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| (format!("{index:010}"), item))
        .collect();
    Ok(connection_json(page(keyed, args)?))
}

/// The opaque cursor for a sort key.
pub(crate) fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

fn cursor_argument(args: &JsonMap, name: &str) -> Result<Option<String>, FieldError> {
    let Some(cursor) = args.get(name).and_then(JsonValue::as_str) else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| FieldError {
            message: format!("Invalid cursor for `{name}`: {cursor}"),
        })
}

fn count_argument(args: &JsonMap, name: &str) -> Option<usize> {
    args.get(name)
        .and_then(JsonValue::as_i64)
        .map(|n| usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: JsonValue) -> JsonMap {
        value.as_object().cloned().unwrap_or_default()
    }

    fn keyed(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("{i:03}"), i)).collect()
    }

    /// The items of a page and its (next, previous) flags; an error gives nothing.
    fn summary(page: Result<Page<usize>, FieldError>) -> (Vec<usize>, bool, bool) {
        page.map(|p| {
            let ids = p.items.iter().map(|i| i.1).collect();
            (ids, p.has_next_page, p.has_previous_page)
        })
        .unwrap_or_default()
    }

    #[test]
    fn first_and_after_walk_every_item_once() {
        let first = summary(page(keyed(5), &args(json!({"first": 2}))));
        assert_eq!(first, (vec![0, 1], true, false));
        let cursor = encode_cursor("001");
        let second = summary(page(keyed(5), &args(json!({"first": 3, "after": cursor}))));
        assert_eq!(second, (vec![2, 3, 4], false, true));
    }

    #[test]
    fn reverse_pages_from_the_end() {
        let first = summary(page(keyed(5), &args(json!({"first": 2, "reverse": true}))));
        assert_eq!(first.0, [4, 3]);
        let cursor = encode_cursor("003");
        let next = page(
            keyed(5),
            &args(json!({"first": 2, "reverse": true, "after": cursor})),
        );
        assert_eq!(summary(next).0, [2, 1]);
    }

    #[test]
    fn a_repeated_page_starts_half_a_page_early_and_still_moves_on() {
        let cursor = encode_cursor("003");
        let args = args(json!({"first": 4, "after": cursor}));
        assert_eq!(summary(page(keyed(10), &args)).0, [4, 5, 6, 7]);
        let repeated = summary(page_repeating(keyed(10), &args, true));
        assert_eq!(repeated, (vec![2, 3, 4, 5], true, true));
    }

    #[test]
    fn a_garbage_cursor_is_an_error() {
        assert!(page(keyed(1), &args(json!({"first": 1, "after": "%%%"}))).is_err());
    }
}
