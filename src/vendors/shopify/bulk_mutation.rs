//! Bulk mutations: a JSONL file of variables is staged (`stagedUploadsCreate`, then a
//! multipart POST of the form Shopify returned, file last), `bulkOperationRunMutation` runs
//! one mutation per line in the background, and its result (one JSONL line per input line,
//! the mutation's payload and `__lineNumber`) is streamed like a bulk query's. Each step
//! costs a few points instead of each line's, which is the point.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::bulk::{self, BulkOperation, SMALL_COST};
use super::{queries, BulkSink, ShopifyClient};
use crate::http::ApiError;

/// Largest file Shopify's staged upload storage accepts for bulk mutation variables
/// (20 MiB: Shopify staff on the community forum, and the storage's `EntityTooLarge`
/// answer names 20,971,520 bytes).
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// One line of a bulk mutation's result.
#[derive(Debug, Deserialize)]
pub struct ResultLine {
    /// The mutation's payload (`{ "tagsAdd": { "userErrors": [...] } }`).
    #[serde(default)]
    pub data: Option<Value>,
    /// Errors running the line (its variables did not fit the mutation).
    #[serde(default)]
    pub errors: Option<Vec<LineError>>,
    /// Which input line this answers (from 0, in file order).
    #[serde(rename = "__lineNumber")]
    pub line_number: u64,
}

#[derive(Debug, Deserialize)]
pub struct LineError {
    pub message: String,
}

/// What `bulkOperationRunMutation` answered.
#[derive(Debug)]
pub enum Started {
    /// The operation's GID.
    Running(String),
    /// Another bulk mutation (or the version's limit of them) runs: try again later.
    Busy(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StagedData {
    staged_uploads_create: StagedPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StagedPayload {
    staged_targets: Option<Vec<StagedTarget>>,
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct StagedTarget {
    url: Option<String>,
    parameters: Vec<Parameter>,
}

#[derive(Deserialize)]
struct Parameter {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct UserError {
    message: String,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunData {
    bulk_operation_run_mutation: RunPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunPayload {
    bulk_operation: Option<OperationId>,
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct OperationId {
    id: String,
}

fn refused(endpoint: &'static str, errors: &[UserError]) -> ApiError {
    ApiError::Rejected {
        endpoint,
        status: 200,
        detail: errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Uploads `file` (JSONL, at most [`MAX_FILE_BYTES`]) as bulk mutation variables; returns its
/// `stagedUploadPath`.
pub async fn stage(
    client: &ShopifyClient,
    filename: &str,
    file: Vec<u8>,
) -> Result<String, ApiError> {
    const ENDPOINT: &str = "shopify staged upload target";
    let data: StagedData = client
        .execute(
            ENDPOINT,
            queries::STAGED_UPLOAD,
            json!({ "input": [{
                "resource": "BULK_MUTATION_VARIABLES",
                "filename": filename,
                "mimeType": "text/jsonl",
                "httpMethod": "POST",
            }] }),
            SMALL_COST,
        )
        .await?;
    let payload = data.staged_uploads_create;
    if !payload.user_errors.is_empty() {
        return Err(refused(ENDPOINT, &payload.user_errors));
    }
    let malformed = |detail: &str| ApiError::Malformed {
        endpoint: ENDPOINT,
        path: "data.stagedUploadsCreate.stagedTargets".into(),
        detail: detail.into(),
    };
    let target = payload
        .staged_targets
        .and_then(|t| t.into_iter().next())
        .ok_or_else(|| malformed("no staged target"))?;
    let url = target.url.ok_or_else(|| malformed("no upload url"))?;
    let path = target
        .parameters
        .iter()
        .find(|p| p.name == "key")
        .map(|p| p.value.clone())
        .ok_or_else(|| malformed("no `key` parameter (the staged upload path)"))?;
    let fields: Vec<(&str, &str)> = target
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    let (content_type, form) = multipart_form(&fields, filename, &file);
    client.upload(&url, &content_type, form).await?;
    Ok(path)
}

/// A `multipart/form-data` body: the fields in order, then the file (storage services read
/// the fields before the file, so it must come last). Returns the content type with its
/// boundary, and the body.
fn multipart_form(fields: &[(&str, &str)], filename: &str, file: &[u8]) -> (String, Bytes) {
    let boundary = format!("tiersync-{:016x}", rand_boundary());
    let mut body = Vec::with_capacity(file.len() + 1024);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/jsonl\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}

/// A boundary that does not occur in the JSONL: the file is JSON text, and this string has
/// no quote or brace, but a random part makes an accidental match hopeless anyway.
fn rand_boundary() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (std::process::id() as u64).rotate_left(32)
}

/// Starts `mutation` over the staged file. Sent once: a failure that may have come after
/// Shopify started it is returned, not sent again (a second send would run every line twice);
/// [`lost_mutation::find`](super::lost_mutation::find) tells what happened.
pub async fn start(
    client: &ShopifyClient,
    mutation: &str,
    staged_path: &str,
) -> Result<Started, ApiError> {
    const ENDPOINT: &str = "shopify bulk mutation run";
    let data: RunData = client
        .execute_once(
            ENDPOINT,
            queries::BULK_RUN_MUTATION,
            json!({ "mutation": mutation, "stagedUploadPath": staged_path }),
            SMALL_COST,
        )
        .await?;
    let payload = data.bulk_operation_run_mutation;
    let busy = payload.user_errors.iter().any(|e| {
        matches!(
            e.code.as_deref(),
            Some("OPERATION_IN_PROGRESS" | "LIMIT_REACHED")
        ) || e.message.contains("already in progress")
    });
    match (payload.bulk_operation, payload.user_errors.is_empty()) {
        (Some(op), true) => Ok(Started::Running(op.id)),
        _ if busy => Ok(Started::Busy(
            payload
                .user_errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )),
        _ => Err(refused(ENDPOINT, &payload.user_errors)),
    }
}

/// Polls the operation of `lines` lines until it ends; `None` when `cancel` fired first.
/// Its `objectCount` (lines done) times the polls to notice the end soon after it.
pub async fn wait(
    client: &ShopifyClient,
    id: &str,
    lines: usize,
    interval: Duration,
    cancel: &CancellationToken,
) -> Result<Option<BulkOperation>, ApiError> {
    bulk::wait_for(client, id, interval, Some(lines as u64), cancel).await
}

/// Streams a result file (`url` or `partialDataUrl`) into `sink`.
pub async fn results<S>(
    client: &ShopifyClient,
    url: &str,
    read_timeout: Duration,
    sink: &mut S,
) -> Result<(), S::Error>
where
    S: BulkSink<ResultLine> + Send,
{
    client.download(url, read_timeout, sink).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_puts_the_fields_first_and_the_file_last() {
        let (content_type, body) = multipart_form(
            &[("key", "tmp/1/bulk/a.jsonl"), ("acl", "private")],
            "a.jsonl",
            b"{}\n",
        );
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let key = text.find("name=\"key\"").unwrap();
        let file = text.find("name=\"file\"").unwrap();
        assert!(key < file);
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(text.contains("\r\n\r\n{}\n\r\n"));
    }
}
