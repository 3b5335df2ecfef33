//! Bulk operations: `bulkOperationRunQuery` starts one (one at a time per shop, like
//! Shopify before 2026-01), a background task moves it CREATED → RUNNING → COMPLETED after
//! `bulk_delay`, and the JSONL result is served at `GET /bulk/{id}.jsonl`.
//!
//! The query runs on the data as it is when the operation starts RUNNING. Each node of the
//! root connection is one line; nodes of nested connections follow their parent on their own
//! lines with `__parentId`.

use std::sync::Arc;

use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::{JsonMap, JsonValue};
use chrono::{DateTime, Utc};

use super::graphql;
use super::objects::time;
use super::projection::is_connection;
use super::root::QueryRoot;
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
    fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
        }
    }
}

/// One bulk query operation.
#[derive(Debug, Clone)]
pub(crate) struct BulkOperation {
    id: u64,
    query: String,
    status: Status,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    result: Option<Arc<String>>,
    object_count: u64,
    root_object_count: u64,
}

impl BulkOperation {
    fn gid(&self) -> String {
        format!("gid://shopify/BulkOperation/{}", self.id)
    }

    /// The full `BulkOperation` value; `url` points at this fake's download route.
    pub(crate) fn json(&self, base_url: &str) -> JsonValue {
        let completed = self.status == Status::Completed;
        json!({
            "__typename": "BulkOperation",
            "id": self.gid(),
            "type": "QUERY",
            "status": self.status.as_str(),
            "query": self.query,
            "createdAt": time(self.created_at),
            "completedAt": self.completed_at.map(time),
            "errorCode": (self.status == Status::Failed).then_some("INTERNAL_SERVER_ERROR"),
            "objectCount": self.object_count.to_string(),
            "rootObjectCount": self.root_object_count.to_string(),
            "fileSize": self.result.as_ref().filter(|_| completed).map(|r| r.len().to_string()),
            "url": completed.then(|| format!("{base_url}/bulk/{}.jsonl", self.id)),
            "partialDataUrl": null,
        })
    }
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

    fn get_mut(&mut self, id: u64) -> Option<&mut BulkOperation> {
        self.operations
            .get_mut(usize::try_from(id).ok()?.checked_sub(1)?)
    }

    /// The most recent operation (`currentBulkOperation`).
    pub(crate) fn current(&self) -> Option<&BulkOperation> {
        self.operations.last()
    }

    /// The JSONL result of a completed operation.
    pub(crate) fn file(&self, id: u64) -> Option<Arc<String>> {
        self.get(id)
            .filter(|op| op.status == Status::Completed)
            .and_then(|op| op.result.clone())
    }

    fn in_progress(&self) -> Option<&BulkOperation> {
        self.operations
            .iter()
            .find(|op| matches!(op.status, Status::Created | Status::Running))
    }
}

fn user_error(field: Option<&[&str]>, message: &str, code: &str) -> JsonValue {
    json!({ "bulkOperation": null, "userErrors": [{ "field": field, "message": message, "code": code }] })
}

/// `bulkOperationRunQuery(query:)`: validates the inner query, records the operation and
/// starts the task that runs it.
pub(crate) fn run_query(shared: &Arc<Shared>, state: &mut ShopState, args: &JsonMap) -> JsonValue {
    if let Some(running) = state.bulk.in_progress() {
        let message = format!(
            "A bulk query operation for this app and shop is already in progress: {}.",
            running.gid()
        );
        return user_error(None, &message, "OPERATION_IN_PROGRESS");
    }
    let query = args
        .get("query")
        .and_then(JsonValue::as_str)
        .unwrap_or_default();
    if let Err(message) = check_query(query) {
        return user_error(Some(&["query"]), &message, "INVALID");
    }
    let operation = BulkOperation {
        id: state.bulk.operations.len() as u64 + 1,
        query: query.to_owned(),
        status: Status::Created,
        created_at: Utc::now(),
        completed_at: None,
        result: None,
        object_count: 0,
        root_object_count: 0,
    };
    let value = operation.json(&shared.base_url);
    spawn(Arc::clone(shared), operation.id, operation.query.clone());
    state.bulk.operations.push(operation);
    json!({ "bulkOperation": value, "userErrors": [] })
}

/// A bulk query must be a valid single query whose root selects a connection.
fn check_query(query: &str) -> Result<(), String> {
    let document = graphql::parse(query).map_err(|errors| {
        let first = errors
            .first()
            .and_then(|e| e["message"].as_str())
            .unwrap_or("invalid query");
        format!("Invalid bulk query: {first}")
    })?;
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

fn spawn(shared: Arc<Shared>, id: u64, query: String) {
    tokio::spawn(async move {
        let outcome = {
            let mut state = shared.state();
            if let Some(op) = state.bulk.get_mut(id) {
                op.status = Status::Running;
            }
            execute(&state, &query, &shared.base_url)
        };
        tokio::time::sleep(shared.options.bulk_delay).await;
        let mut state = shared.state();
        if let Some(op) = state.bulk.get_mut(id) {
            op.completed_at = Some(Utc::now());
            match outcome {
                Some(lines) => {
                    op.status = Status::Completed;
                    op.object_count = lines.objects;
                    op.root_object_count = lines.roots;
                    op.result = Some(Arc::new(lines.text));
                }
                None => op.status = Status::Failed,
            }
        }
    });
}

/// A JSONL result.
#[derive(Debug, Default)]
struct Lines {
    text: String,
    objects: u64,
    roots: u64,
}

impl Lines {
    fn push(&mut self, node: &JsonMap) {
        if let Ok(line) = serde_json::to_string(node) {
            self.text.push_str(&line);
            self.text.push('\n');
            self.objects += 1;
        }
    }
}

/// Runs a checked bulk query over `state`; `None` if execution failed.
fn execute(state: &ShopState, query: &str, base_url: &str) -> Option<Lines> {
    let document = graphql::parse(query).ok()?;
    let operation = document.operations.get(None).ok()?;
    let variables = graphql::variables(&document, operation, &JsonMap::new()).ok()?;
    let root = QueryRoot { state, base_url };
    let response = graphql::execute(&document, operation, &variables, &root);
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

/// The nodes of a connection-shaped value (`edges[].node` or `nodes[]`), else none.
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

fn is_connection_value(value: &JsonValue) -> bool {
    value.get("edges").is_some() || value.get("nodes").is_some()
}

/// Writes `node` (nested connections removed, `__parentId` added) and then its children.
fn emit(node: &JsonMap, parent: Option<&JsonValue>, lines: &mut Lines) {
    let mut line = JsonMap::new();
    let mut children = Vec::new();
    for (key, value) in node {
        if is_connection_value(value) {
            children.push(value);
        } else {
            line.insert(key.clone(), value.clone());
        }
    }
    if let Some(parent) = parent {
        line.insert("__parentId", parent.clone());
    }
    lines.push(&line);
    let id = node.get("id").cloned().unwrap_or(JsonValue::Null);
    for child in children.into_iter().flat_map(connection_nodes) {
        emit(child, Some(&id), lines);
    }
}
