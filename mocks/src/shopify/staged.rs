//! Staged uploads for bulk mutation variables: `stagedUploadsCreate` reserves a key and
//! answers a form target on this fake (`POST /staged-uploads`), which takes a multipart form
//! (the returned parameters, then the file) like the storage service Shopify points at: 201
//! and an XML `PostResponse` (the form asks for `success_action_status` 201), 400 and an XML
//! `EntityTooLarge` for a file over 20 MiB.

use std::sync::Arc;

use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::{JsonMap, JsonValue};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::{Shared, ShopState};

/// The largest file the storage accepts (bytes): Shopify's 20 MB bulk mutation limit.
pub(crate) const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// The upload route.
pub(crate) const PATH: &str = "/staged-uploads";

/// `stagedUploadsCreate(input:)`: one target per input. Only `BULK_MUTATION_VARIABLES` is
/// modelled (with `httpMethod: POST`, as the bulk import guide requires).
pub(crate) fn create(shared: &Arc<Shared>, state: &mut ShopState, args: &JsonMap) -> JsonValue {
    let inputs = args
        .get("input")
        .and_then(JsonValue::as_array)
        .cloned()
        .unwrap_or_default();
    let mut targets = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let text = |name: &str| {
            input
                .get(name)
                .and_then(JsonValue::as_str)
                .unwrap_or_default()
        };
        if text("resource") != "BULK_MUTATION_VARIABLES" {
            let error = json!({ "field": ["input", i.to_string(), "resource"], "message": "This fake models only BULK_MUTATION_VARIABLES uploads" });
            return json!({ "stagedTargets": null, "userErrors": [error] });
        }
        if text("httpMethod") != "POST" {
            let error = json!({ "field": ["input", i.to_string(), "httpMethod"], "message": "Bulk mutation variables must be uploaded with POST" });
            return json!({ "stagedTargets": null, "userErrors": [error] });
        }
        state.staged_serial += 1;
        let key = format!(
            "tmp/1/bulk/{:08x}-{}/{}",
            state.staged_serial,
            state.staged_serial * 7919,
            text("filename")
        );
        state.staged.insert(key.clone(), None);
        targets.push(json!({
            "url": format!("{}{PATH}", shared.base_url),
            "resourceUrl": null,
            "parameters": [
                { "name": "Content-Type", "value": text("mimeType") },
                { "name": "success_action_status", "value": "201" },
                { "name": "acl", "value": "private" },
                { "name": "key", "value": key },
                { "name": "policy", "value": "ZmFrZS1wb2xpY3k=" },
            ],
        }));
    }
    json!({ "stagedTargets": targets, "userErrors": [] })
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

fn xml_error(status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!("<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"),
    )
}

/// `POST /staged-uploads`: stores the file under the form's `key`.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let boundary = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned());
    let Some(parts) = boundary.and_then(|b| parse_form(&body, &b)) else {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "The request is not a multipart form.",
        );
    };
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())
            .map(|p| String::from_utf8_lossy(&p.content).into_owned())
    };
    let Some(file) = parts.iter().find(|p| p.filename.is_some()) else {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "The form has no file.",
        );
    };
    if parts.last().is_some_and(|p| p.filename.is_none()) {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Form fields after the file are ignored by the storage; send the file last.",
        );
    }
    if file.content.len() > MAX_FILE_BYTES {
        return xml(
            StatusCode::BAD_REQUEST,
            format!("<?xml version='1.0' encoding='UTF-8'?><Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size</Message><ProposedSize>{}</ProposedSize><MaxSizeAllowed>{MAX_FILE_BYTES}</MaxSizeAllowed></Error>", file.content.len()),
        );
    }
    let Some(key) = field("key") else {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "The form has no key.",
        );
    };
    let mut state = shared.state();
    let Some(slot) = state.staged.get_mut(&key) else {
        return xml_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "The policy does not allow this key.",
        );
    };
    *slot = Some(Arc::new(
        String::from_utf8_lossy(&file.content).into_owned(),
    ));
    match field("success_action_status").as_deref() {
        Some("201") => xml(
            StatusCode::CREATED,
            format!("<?xml version='1.0' encoding='UTF-8'?><PostResponse><Location>{}{PATH}/{key}</Location><Bucket>shopify-staged-uploads</Bucket><Key>{key}</Key></PostResponse>", shared.base_url),
        ),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

/// One part of a multipart form.
struct Part {
    name: String,
    filename: Option<String>,
    content: Vec<u8>,
}

/// The parts of a `multipart/form-data` body, or `None` when it is not one.
fn parse_form(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body.strip_prefix(delimiter.as_bytes())?;
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..header_end]).into_owned();
        rest = &rest[header_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes())?;
        let content = rest[..end].to_vec();
        rest = &rest[end + 2 + delimiter.len()..];
        let attribute = |name: &str| {
            let marker = format!(" {name}=\"");
            let start = headers.find(&marker)? + marker.len();
            let len = headers[start..].find('"')?;
            Some(headers[start..start + len].to_owned())
        };
        parts.push(Part {
            name: attribute("name")?,
            filename: attribute("filename"),
            content,
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
