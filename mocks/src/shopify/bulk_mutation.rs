//! Bulk mutations: `bulkOperationRunMutation(mutation:, stagedUploadPath:, clientIdentifier:)`
//! runs one mutation per line of a staged JSONL file in the background, at
//! `ShopifyOptions::bulk_mutation_rate` lines per second, applying each line to the shop as
//! the same mutation sent alone would (and at no cost to the bucket). The result file has one
//! line per input line, in order: `{"data": <payload>, "__lineNumber": n}` (from 0), or
//! `{"errors": [...], "__lineNumber": n}` when the line's variables do not fit the mutation.
//! While it runs, `objectCount` (and `rootObjectCount`) is the lines done so far: Shopify
//! documents `objectCount` as a running count of the objects processed, for tracking an
//! operation's progress, and tiersync times its polls by it.
//!
//! Refusals are `userErrors` with Shopify's codes: an unknown or not yet uploaded
//! `stagedUploadPath` (`NO_SUCH_FILE`), a file with a line that is not a JSON object
//! (`INVALID_STAGED_UPLOAD_FILE`), a document that is not one mutation field or is a bulk
//! operation itself (`INVALID_MUTATION`), and one bulk mutation too many: before API version
//! 2026-01 one may run per shop (`OPERATION_IN_PROGRESS`), from 2026-01 five
//! (`LIMIT_REACHED`).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apollo_compiler::executable::OperationType;
use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::{JsonMap, JsonValue};
use axum::body::Bytes;
use chrono::Utc;

use super::access::Access;
use super::bulk::{user_error, BulkFile, BulkOperation, Kind, Status};
use super::graphql::{self, Api};
use super::root::MutationRoot;
use super::state::{Shared, ShopState};

/// Root fields that cannot run inside a bulk mutation.
const NOT_IN_BULK: [&str; 3] = [
    "bulkOperationRunMutation",
    "bulkOperationRunQuery",
    "stagedUploadsCreate",
];

pub(crate) fn run_mutation(
    shared: &Arc<Shared>,
    api: &'static Api,
    state: &mut ShopState,
    args: &JsonMap,
) -> JsonValue {
    let text = |name: &str| {
        args.get(name)
            .and_then(JsonValue::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if let Some(refused) = state.bulk.refuse_over_limit(Kind::Mutation, api.version) {
        return refused;
    }
    let mutation = text("mutation");
    if let Err(message) = check_mutation(api, &mutation) {
        return user_error(Some(&["mutation"]), &message, "INVALID_MUTATION");
    }
    let path = text("stagedUploadPath");
    let Some(file) = state.staged.get(&path).cloned().flatten() else {
        return user_error(
            Some(&["stagedUploadPath"]),
            "The JSONL file could not be found. Try uploading the file again, and check that you've entered the URL correctly for the stagedUploadPath mutation argument.",
            "NO_SUCH_FILE",
        );
    };
    let mut lines = Vec::new();
    for (n, line) in file.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(map)) => lines.push(map),
            _ => {
                return user_error(
                    Some(&["stagedUploadPath"]),
                    &format!("The JSONL file submitted via the stagedUploadsCreate mutation is invalid: line {} is not a JSON object.", n + 1),
                    "INVALID_STAGED_UPLOAD_FILE",
                )
            }
        }
    }
    let op = state.bulk.push(|id| BulkOperation {
        id,
        kind: Kind::Mutation,
        query: mutation.clone(),
        status: Status::Created,
        created_at: Utc::now(),
        completed_at: None,
        result: None,
        error_code: None,
        object_count: 0,
        root_object_count: 0,
    });
    let (id, value) = (op.id, op.json(&shared.base_url));
    let fail_after = state.fail_bulk_mutation_after.take();
    spawn(Arc::clone(shared), api, id, mutation, lines, fail_after);
    json!({ "bulkOperation": value, "userErrors": [] })
}

/// A bulk mutation is one mutation with one root field, not itself a bulk operation.
fn check_mutation(api: &Api, mutation: &str) -> Result<(), String> {
    let document = api.parse_argument(mutation, "Invalid mutation")?;
    let operation = graphql::operation(&document, None)
        .map_err(|e| format!("Invalid mutation: {}", e["message"]))?;
    if operation.operation_type != OperationType::Mutation {
        return Err("Invalid mutation: only a mutation can run as a bulk mutation".into());
    }
    let fields: Vec<_> = operation.selection_set.fields().collect();
    match fields.as_slice() {
        [field] if NOT_IN_BULK.contains(&field.name.as_str()) => Err(format!(
            "Invalid mutation: {} cannot run in a bulk mutation",
            field.name
        )),
        [_] => Ok(()),
        _ => Err("Invalid mutation: a bulk mutation runs exactly one mutation field".into()),
    }
}

/// Runs the lines at the configured rate, then completes the operation with its result (or,
/// with `fail_after`, fails it after that many lines with a partial result).
fn spawn(
    shared: Arc<Shared>,
    api: &'static Api,
    id: u64,
    mutation: String,
    lines: Vec<serde_json::Map<String, serde_json::Value>>,
    fail_after: Option<usize>,
) {
    tokio::spawn(async move {
        let document = api
            .parse(&mutation)
            .expect("checked when the operation was created");
        let rate = shared.options.bulk_mutation_rate.max(0.001);
        let access = Access::new(&shared.options.scopes);
        if let Some(op) = shared.state().bulk.get_mut(id) {
            op.status = Status::Running;
        }
        let started = Instant::now();
        let mut out = String::new();
        let mut next = 0;
        let end = fail_after.unwrap_or(usize::MAX).min(lines.len());
        while next < end {
            // Line n is done 1/rate after line n - 1.
            let due = Duration::from_secs_f64((next + 1) as f64 / rate);
            let elapsed = started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
            let mut state = shared.state();
            let ready = ((started.elapsed().as_secs_f64() * rate) as usize).clamp(next + 1, end);
            while next < ready {
                let line = run_line(&shared, api, &access, &mut state, &document, &lines[next]);
                out.push_str(&serde_json::to_string(&line_json(line, next)).unwrap_or_default());
                out.push('\n');
                next += 1;
            }
            if let Some(op) = state.bulk.get_mut(id) {
                op.object_count = next as u64;
                op.root_object_count = next as u64;
            }
        }
        let mut state = shared.state();
        if let Some(op) = state.bulk.get_mut(id) {
            op.status = if end < lines.len() {
                op.error_code = Some("INTERNAL_SERVER_ERROR");
                Status::Failed
            } else {
                Status::Completed
            };
            op.completed_at = Some(Utc::now());
            op.object_count = end as u64;
            op.root_object_count = end as u64;
            op.result = Some(BulkFile::Text(Bytes::from(out)));
        }
    });
}

/// One line's answer: `data`, and `errors` when its variables or the mutation failed.
fn run_line(
    shared: &Arc<Shared>,
    api: &'static Api,
    access: &Access<'_>,
    state: &mut ShopState,
    document: &apollo_compiler::validation::Valid<apollo_compiler::ExecutableDocument>,
    variables: &serde_json::Map<String, serde_json::Value>,
) -> JsonMap {
    let mut answer = JsonMap::new();
    let operation = match graphql::operation(document, None) {
        Ok(operation) => operation,
        Err(error) => {
            answer.insert("errors", json!([JsonValue::from(error)]));
            return answer;
        }
    };
    let raw: JsonMap = match JsonValue::from(serde_json::Value::Object(variables.clone())) {
        JsonValue::Object(map) => map,
        _ => JsonMap::new(),
    };
    let variables = match api.variables(document, operation, &raw) {
        Ok(variables) => variables,
        Err(error) => {
            answer.insert("errors", json!([JsonValue::from(error)]));
            return answer;
        }
    };
    let root = MutationRoot {
        state: RefCell::new(state),
        shared,
        api,
        access,
    };
    let response = api.execute(document, operation, &variables, &root);
    answer.insert(
        "data",
        response.data.map_or(JsonValue::Null, JsonValue::Object),
    );
    if !response.errors.is_empty() {
        let errors = serde_json::to_value(&response.errors).unwrap_or_default();
        answer.insert("errors", errors.into());
    }
    answer
}

fn line_json(mut answer: JsonMap, line: usize) -> JsonValue {
    answer.insert("__lineNumber", json!(line));
    JsonValue::Object(answer)
}
