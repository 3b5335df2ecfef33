//! Bulk operations: `bulkOperationRunQuery` starts one, a background task moves it
//! CREATED → RUNNING → COMPLETED after `bulk_delay`, and the JSONL result is served at
//! `GET /bulk/{id}.jsonl`. As many may run at once as the request's API version allows
//! ([`concurrent_limit`]): one query per shop before 2026-01 (`OPERATION_IN_PROGRESS`), five
//! from 2026-01 (`LIMIT_REACHED` for the sixth), as shopify.dev/docs/api/usage/bulk-operations/queries
//! says.
//!
//! The query matches records as they are when the operation starts RUNNING. Each node of the
//! root connection is one line; nodes of nested connections follow their parent on their own
//! lines with `__parentId` (written at the download: see [`bulk_export`](super::bulk_export)).

use std::sync::Arc;

use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::{JsonMap, JsonValue};
use axum::body::Bytes;
use chrono::{DateTime, Utc};

use super::access::Access;
use super::bulk_export::Export;
use super::graphql::Api;
use super::objects::time;
use super::projection::is_connection;
use super::state::{Shared, ShopState};

/// Status of a bulk operation, as `BulkOperationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Created,
    Running,
    Completed,
    Failed,
}

impl Status {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
        }
    }
}

/// Which kind of bulk operation (`BulkOperationType`): each kind has its own limit of
/// operations running at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Query,
    Mutation,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Query => "QUERY",
            Kind::Mutation => "MUTATION",
        }
    }

    /// How Shopify's refusals name the kind ("a bulk query operation").
    fn noun(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
        }
    }

    /// The `type` argument of `currentBulkOperation` (QUERY when absent, as in the schema).
    pub(crate) fn from_argument(value: &str) -> Kind {
        if value == "MUTATION" {
            Kind::Mutation
        } else {
            Kind::Query
        }
    }
}

/// A bulk operation's result file.
#[derive(Debug, Clone)]
pub(crate) enum BulkFile {
    /// Written whole (a bulk mutation's results).
    Text(Bytes),
    /// Written when downloaded (a bulk query's lines).
    Export(Arc<Export>),
}

impl BulkFile {
    /// The size in bytes, when known without writing the file.
    fn known_size(&self) -> Option<u64> {
        match self {
            BulkFile::Text(text) => Some(text.len() as u64),
            BulkFile::Export(export) => export.measured_size(),
        }
    }
}

/// One bulk operation.
#[derive(Debug, Clone)]
pub(crate) struct BulkOperation {
    pub(super) id: u64,
    pub(super) kind: Kind,
    /// The query, or the mutation run once per line.
    pub(super) query: String,
    pub(super) status: Status,
    pub(super) created_at: DateTime<Utc>,
    pub(super) completed_at: Option<DateTime<Utc>>,
    pub(super) result: Option<BulkFile>,
    /// Why a failed operation failed (`BulkOperationErrorCode`).
    pub(super) error_code: Option<&'static str>,
    pub(super) object_count: u64,
    pub(super) root_object_count: u64,
}

impl BulkOperation {
    pub(super) fn gid(&self) -> String {
        format!("gid://shopify/BulkOperation/{}", self.id)
    }

    /// The full `BulkOperation` value; `url` points at this fake's download route.
    /// `fileSize` is null until measured for a query's file: see [`BulkOperation::measure`].
    pub(crate) fn json(&self, base_url: &str) -> JsonValue {
        let completed = self.status == Status::Completed;
        json!({
            "__typename": "BulkOperation",
            "id": self.gid(),
            "type": self.kind.as_str(),
            "status": self.status.as_str(),
            "query": self.query,
            "createdAt": time(self.created_at),
            "completedAt": self.completed_at.map(time),
            "errorCode": self.error_code,
            "objectCount": self.object_count.to_string(),
            "rootObjectCount": self.root_object_count.to_string(),
            "fileSize": self
                .result
                .as_ref()
                .filter(|_| completed)
                .and_then(BulkFile::known_size)
                .map(|size| size.to_string()),
            "url": completed.then(|| format!("{base_url}/bulk/{}.jsonl", self.id)),
            "partialDataUrl": (self.status == Status::Failed && self.result.is_some())
                .then(|| format!("{base_url}/bulk/{}.jsonl", self.id)),
        })
    }
}

impl BulkOperation {
    /// Measures a completed query's file (writing it once, with `state` locked), for a request
    /// that selects `fileSize`.
    pub(crate) fn measure(&self, access: &Access<'_>, state: &ShopState) {
        if let (Status::Completed, Some(BulkFile::Export(export))) = (self.status, &self.result) {
            export.file_size(access, state);
        }
    }
}

/// A bulk operation as tests see it: what it ran, and when it started and ended (to tell
/// operations that ran side by side from ones that ran one after the other).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkQuery {
    /// The query document it ran (for a bulk mutation, the mutation run once per line).
    pub query: String,
    /// `CREATED`, `RUNNING`, `COMPLETED` or `FAILED`.
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    /// When it completed or failed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// The shop's bulk operations, oldest first (id = position + 1).
#[derive(Debug, Default)]
pub(crate) struct BulkOperations {
    operations: Vec<BulkOperation>,
}

impl BulkOperations {
    pub(crate) fn get(&self, id: u64) -> Option<&BulkOperation> {
        self.operations
            .get(usize::try_from(id).ok()?.checked_sub(1)?)
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut BulkOperation> {
        self.operations
            .get_mut(usize::try_from(id).ok()?.checked_sub(1)?)
    }

    /// Every operation, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &BulkOperation> {
        self.operations.iter()
    }

    /// The most recent operation of a kind (`currentBulkOperation(type:)`).
    pub(crate) fn current(&self, kind: Kind) -> Option<&BulkOperation> {
        self.operations.iter().rev().find(|op| op.kind == kind)
    }

    /// Every bulk operation of `kind`, oldest first.
    pub(crate) fn of_kind(&self, kind: Kind) -> Vec<BulkQuery> {
        self.operations
            .iter()
            .filter(|op| op.kind == kind)
            .map(|op| BulkQuery {
                query: op.query.clone(),
                status: op.status.as_str(),
                created_at: op.created_at,
                completed_at: op.completed_at,
            })
            .collect()
    }

    /// Every bulk mutation: status and lines done.
    pub(crate) fn mutations(&self) -> Vec<(String, u64)> {
        self.operations
            .iter()
            .filter(|op| op.kind == Kind::Mutation)
            .map(|op| (op.status.as_str().to_owned(), op.object_count))
            .collect()
    }

    /// Adds an operation; its id is its position from 1.
    pub(super) fn push(&mut self, make: impl FnOnce(u64) -> BulkOperation) -> &BulkOperation {
        let id = self.operations.len() as u64 + 1;
        self.operations.push(make(id));
        self.operations.last().expect("pushed")
    }

    /// The JSONL result of a completed operation, or the partial result of a failed one.
    pub(crate) fn file(&self, id: u64) -> Option<BulkFile> {
        self.get(id)
            .filter(|op| matches!(op.status, Status::Completed | Status::Failed))
            .and_then(|op| op.result.clone())
    }

    /// The operations of a kind that are CREATED or RUNNING.
    pub(super) fn in_progress(&self, kind: Kind) -> impl Iterator<Item = &BulkOperation> {
        self.operations.iter().filter(move |op| {
            op.kind == kind && matches!(op.status, Status::Created | Status::Running)
        })
    }

    /// Shopify's refusal of one more operation of `kind` when API `version` allows no more to
    /// run at once; `None` when it may start.
    pub(super) fn refuse_over_limit(&self, kind: Kind, version: &str) -> Option<JsonValue> {
        let limit = concurrent_limit(version);
        let mut running = self.in_progress(kind);
        let first = running.next()?;
        if 1 + running.count() < limit {
            return None;
        }
        Some(if limit == 1 {
            let message = format!(
                "A bulk {} operation for this app and shop is already in progress: {}.",
                kind.noun(),
                first.gid()
            );
            user_error(None, &message, "OPERATION_IN_PROGRESS")
        } else {
            user_error(
                None,
                "Bulk operations limit reached. Please try again later.",
                "LIMIT_REACHED",
            )
        })
    }
}

/// Bulk operations of each kind one app may run at once on a shop in an API version.
///
/// Sources, checked 2026-12: shopify.dev/docs/api/usage/bulk-operations/queries ("In API
/// versions 2026-01 and higher, you can run up to five bulk query operations at a time per
/// shop"; before, one of each type), shopify.dev/docs/api/usage/bulk-operations/imports (the
/// same for mutations), and the changelog shopify.dev/changelog/faster-bulk-operations
/// (2025-12-15, "five concurrent operations"). Awkward: the `bulkOperationRunQuery` reference
/// page (2026-07) still says one query and one mutation at a time; the guides and the
/// changelog are newer and agree, so the fake follows them. The refusal texts: before 2026-01
/// the guide's `OPERATION_IN_PROGRESS`; from it `LIMIT_REACHED` with the description the
/// 2026-10 schema gives the enum value (`BulkOperationUserErrorCode`,
/// `BulkMutationErrorCode`).
fn concurrent_limit(version: &str) -> usize {
    if version >= "2026-01" {
        5
    } else {
        1
    }
}

pub(super) fn user_error(field: Option<&[&str]>, message: &str, code: &str) -> JsonValue {
    json!({ "bulkOperation": null, "userErrors": [{ "field": field, "message": message, "code": code }] })
}

/// `bulkOperationRunQuery(query:)`: validates the inner query against the request's API
/// version, records the operation and starts the task that runs it.
pub(crate) fn run_query(
    shared: &Arc<Shared>,
    api: &'static Api,
    state: &mut ShopState,
    args: &JsonMap,
) -> JsonValue {
    if let Some(refused) = state.bulk.refuse_over_limit(Kind::Query, api.version) {
        return refused;
    }
    let query = args
        .get("query")
        .and_then(JsonValue::as_str)
        .unwrap_or_default();
    if let Err(message) = check_query(api, query) {
        return user_error(Some(&["query"]), &message, "INVALID");
    }
    let operation = BulkOperation {
        id: state.bulk.operations.len() as u64 + 1,
        kind: Kind::Query,
        query: query.to_owned(),
        status: Status::Created,
        created_at: Utc::now(),
        completed_at: None,
        result: None,
        error_code: None,
        object_count: 0,
        root_object_count: 0,
    };
    let value = operation.json(&shared.base_url);
    spawn(
        Arc::clone(shared),
        api,
        operation.id,
        operation.query.clone(),
    );
    state.bulk.operations.push(operation);
    json!({ "bulkOperation": value, "userErrors": [] })
}

/// A bulk query must be a valid single query whose root selects a connection.
fn check_query(api: &Api, query: &str) -> Result<(), String> {
    let document = api.parse_argument(query, "Invalid bulk query")?;
    let operation = document
        .operations
        .get(None)
        .map_err(|e| format!("Invalid bulk query: {}", e.message()))?;
    if !operation.is_query() {
        return Err(
            "Invalid bulk query: only queries can run as a bulk query operation".to_owned(),
        );
    }
    if !operation
        .selection_set
        .fields()
        .any(|f| is_connection(f.ty()))
    {
        return Err("Bulk queries must contain at least one connection.".to_owned());
    }
    Ok(())
}

fn spawn(shared: Arc<Shared>, api: &'static Api, id: u64, query: String) {
    tokio::spawn(async move {
        let outcome = {
            let mut state = shared.state();
            if let Some(op) = state.bulk.get_mut(id) {
                op.status = Status::Running;
            }
            Export::run(api, &Access::new(&shared.options.scopes), &state, &query)
        };
        tokio::time::sleep(shared.options.bulk_delay).await;
        let mut state = shared.state();
        if let Some(op) = state.bulk.get_mut(id) {
            op.completed_at = Some(Utc::now());
            match outcome {
                Ok(export) => {
                    op.status = Status::Completed;
                    op.object_count = export.objects;
                    op.root_object_count = export.roots;
                    op.result = Some(BulkFile::Export(Arc::new(export)));
                }
                Err(code) => {
                    op.status = Status::Failed;
                    op.error_code = Some(code);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::generator::{generate, GenConfig};
    use crate::shopify::root::QueryRoot;
    use crate::shopify::ShopifyOptions;

    /// A JSONL result.
    #[derive(Debug, Default)]
    struct Lines {
        text: String,
        objects: u64,
        roots: u64,
    }

    /// The executor over the full JSON values, as bulk operations ran before: the reference
    /// the projector must agree with, line for line.
    fn reference(state: &ShopState, query: &str) -> Option<Lines> {
        let document = api().parse(query).ok()?;
        let operation = document.operations.get(None).ok()?;
        let variables = api()
            .variables(&document, operation, &JsonMap::new())
            .ok()?;
        let scopes = crate::shopify::access::default_scopes();
        let root = QueryRoot {
            state,
            base_url: "http://fake",
            injected: Default::default(),
            access: &Access::new(&scopes),
        };
        let response = api().execute(&document, operation, &variables, &root);
        if !response.errors.is_empty() {
            return None;
        }
        let mut lines = Lines::default();
        for value in response.data?.values() {
            for node in connection_nodes(value) {
                lines.roots += 1;
                emit(node, None, &mut lines);
            }
        }
        Some(lines)
    }

    fn connection_nodes(value: &JsonValue) -> Vec<&JsonMap> {
        let edges = value.get("edges").and_then(JsonValue::as_array);
        let nodes = value.get("nodes").and_then(JsonValue::as_array);
        match (edges, nodes) {
            (Some(edges), _) => edges
                .iter()
                .filter_map(|edge| edge.get("node")?.as_object())
                .collect(),
            (None, Some(nodes)) => nodes.iter().filter_map(JsonValue::as_object).collect(),
            (None, None) => Vec::new(),
        }
    }

    fn emit(node: &JsonMap, parent: Option<&JsonValue>, lines: &mut Lines) {
        let mut line = JsonMap::new();
        let mut children = Vec::new();
        for (key, value) in node {
            if value.get("edges").is_some() || value.get("nodes").is_some() {
                children.push(value);
            } else {
                line.insert(key.clone(), value.clone());
            }
        }
        if let Some(parent) = parent {
            line.insert("__parentId", parent.clone());
        }
        lines.text.push_str(&serde_json::to_string(&line).unwrap());
        lines.text.push('\n');
        lines.objects += 1;
        let id = node.get("id").cloned().unwrap_or(JsonValue::Null);
        for child in children.into_iter().flat_map(connection_nodes) {
            emit(child, Some(&id), lines);
        }
    }

    fn api() -> &'static Api {
        crate::shopify::graphql::api("2025-01").expect("served")
    }

    /// Runs `query` as an app with every scope tiersync asks for and writes its whole file, checking that the counts given at completion are the file's.
    fn execute_all(state: &ShopState, query: &str) -> Option<Lines> {
        let scopes = crate::shopify::access::default_scopes();
        let access = Access::new(&scopes);
        let export = Export::run(api(), &access, state, query).ok()?;
        let mut text = Vec::new();
        let written = export.stream(
            &access,
            || state,
            |chunk| {
                text.extend_from_slice(&chunk);
                true
            },
        );
        assert_eq!(written, Ok((export.objects, export.roots)));
        let size = export.file_size(&access, state);
        assert_eq!(size, Some(text.len() as u64));
        Some(Lines {
            text: String::from_utf8(text).expect("UTF-8"),
            objects: export.objects,
            roots: export.roots,
        })
    }

    const ORDERS: &str = r#"{
  orders(query: "updated_at:<='2030-01-01T00:00:00Z'") {
    edges {
      node {
        id
        email
        createdAt
        updatedAt
        cancelledAt
        test
        customer { id }
        currentTotalPriceSet { shopMoney { amount currencyCode } }
      }
    }
  }
}"#;

    /// A shop with `customers` generated customers, a few metafields on the first ones.
    fn shop(customers: usize) -> Arc<Shared> {
        let shared = Arc::new(Shared::new(ShopifyOptions::default(), "http://fake".into()));
        {
            let mut state = shared.state();
            state.load(generate(&GenConfig {
                customers,
                ..GenConfig::default()
            }));
            let at = Utc::now();
            for (n, id) in state
                .customers
                .keys()
                .copied()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .enumerate()
            {
                let fields = (0..=n % 3)
                    .map(|k| super::super::state::StoredMetafield {
                        id: (n * 10 + k) as u64 + 1,
                        namespace: if k == 1 {
                            "other".into()
                        } else {
                            "tiersync".into()
                        },
                        key: format!("k{k}"),
                        kind: "single_line_text_field".into(),
                        value: format!("v\"{n}{k}"),
                        created_at: at,
                        updated_at: at,
                    })
                    .collect();
                state.metafields.insert(id, fields);
            }
        }
        shared
    }

    #[test]
    fn the_projector_agrees_with_the_executor() {
        let shared = shop(40);
        let state = shared.state();
        let queries = [
            ORDERS,
            "{ orders { nodes { __typename id name displayFinancialStatus tags totalPriceSet { presentmentMoney { amount } } customer { displayName firstName } } } }",
            "query Q { a: orders(first: 7, sortKey: UPDATED_AT, reverse: true) { edges { cursor node { ...O ... on Order { oid: id processedAt } } } } }
             fragment O on Order { __typename id t: test customer { ... on Node { id } ... on Customer { email } } }",
            "{ orders(query: \"created_at:>=2025-01-01\") { edges { node { id @skip(if: true) name @include(if: false) legacyResourceId } } } }",
            "{ customers { edges { node { id numberOfOrders amountSpent { amount currencyCode } tags
               metafield(namespace: \"tiersync\", key: \"k0\") { value }
               metafields(namespace: \"tiersync\") { edges { node { id key value __typename } } } } } } }",
            "{ customers(first: 3) { nodes { id metafields(first: 1) { nodes { key } } } } shop { name } }",
            "{ customers { edges { node { id m: metafields(last: 2) { edges { node { key namespace owner { __typename ... on Customer { id } } } } } } } } }",
        ];
        let mut nested = false;
        for query in queries {
            check_query(api(), query).unwrap_or_else(|e| panic!("{e}: {query}"));
            let expected = reference(&state, query).expect("the executor answers");
            let actual = execute_all(&state, query).expect("the projector answers");
            assert!(actual.objects > 0, "{query}");
            assert_eq!(actual.text, expected.text, "{query}");
            assert_eq!(actual.objects, expected.objects, "{query}");
            assert_eq!(actual.roots, expected.roots, "{query}");
            nested |= actual.objects > actual.roots;
        }
        assert!(nested, "some query has nested connection lines");
    }

    #[test]
    fn an_unmodeled_non_null_field_fails_the_operation_like_the_executor() {
        let shared = shop(3);
        let state = shared.state();
        let query = "{ orders { nodes { id fulfillable } } }";
        check_query(api(), query).unwrap();
        assert!(reference(&state, query).is_none());
        assert!(execute_all(&state, query).is_none());
    }

    /// `cargo test --release -p tiersync-mocks --lib bulk_timing -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release"]
    fn bulk_timing() {
        for customers in [10_000, 100_000] {
            let shared = shop(customers);
            let state = shared.state();
            let started = std::time::Instant::now();
            let lines = execute_all(&state, ORDERS).unwrap();
            let elapsed = started.elapsed();
            eprintln!(
                "{} orders: {elapsed:?} ({} lines, {} bytes)",
                state.orders.len(),
                lines.objects,
                lines.text.len()
            );
            assert!(elapsed < Duration::from_secs(10));
        }
    }
}
