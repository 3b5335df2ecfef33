//! `bulkOperations(first, after, last, before, query, reverse, sortKey)`: the app's bulk
//! operations as a connection, the query Shopify added in 2026-01 for apps that run several
//! at once (`currentBulkOperation` shows only the most recent, and 2026-10 deprecates it).
//! Older schemas lack the field, so validation refuses it there.
//!
//! As the 2026-10 schema describes it: sorted by `sortKey` (`CREATED_AT` by default, or
//! `COMPLETED_AT`), newest first unless `reverse`; `query` filters on `status:`
//! (`created`, `running`, `completed`, `failed`…), `operation_type:` (`query`, `mutation`),
//! `created_at:` with comparators and an `id:` range, other fields being ignored.

use apollo_compiler::resolvers::FieldError;
use apollo_compiler::response::{JsonMap, JsonValue};
use chrono::{DateTime, Utc};

use super::bulk::{BulkOperation, BulkOperations};
use super::connection::{self, Page};
use super::query_filter::{SearchFilter, Searchable, TimeField};
use super::root::time_key;

impl Searchable for BulkOperation {
    fn id(&self) -> u64 {
        self.id
    }

    /// Only `created_at` is a search field of bulk operations.
    fn timestamp(&self, field: TimeField) -> Option<DateTime<Utc>> {
        (field == TimeField::CreatedAt).then_some(self.created_at)
    }

    fn email(&self) -> Option<&str> {
        None
    }

    fn keyword(&self, field: &str) -> Option<&str> {
        match field {
            "status" => Some(self.status.as_str()),
            "operation_type" => Some(self.kind.as_str()),
            _ => None,
        }
    }
}

/// The page of the shop's bulk operations that `args` asks for.
pub(crate) fn page<'s>(
    operations: &'s BulkOperations,
    args: &JsonMap,
) -> Result<Page<&'s BulkOperation>, FieldError> {
    let filter = SearchFilter::parse(args.get("query").and_then(JsonValue::as_str).unwrap_or(""));
    let by_completion = args.get("sortKey").and_then(JsonValue::as_str) == Some("COMPLETED_AT");
    let mut keyed: Vec<(String, &BulkOperation)> = operations
        .iter()
        .filter(|op| filter.matches(*op))
        .map(|op| {
            let at = if by_completion {
                op.completed_at
            } else {
                Some(op.created_at)
            };
            (time_key(at, op.id), op)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Newest first is the list's own order, so `reverse` walks it oldest first.
    let mut args = args.clone();
    let reverse = args.get("reverse").and_then(JsonValue::as_bool) == Some(true);
    args.insert("reverse", JsonValue::Bool(!reverse));
    connection::page(keyed, &args)
}
