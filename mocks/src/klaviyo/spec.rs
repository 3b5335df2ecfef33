//! Request bodies checked against Klaviyo's own OpenAPI spec (vendored in `contracts/`), so a
//! body the daemon gets past this fake is one the real API's schema accepts too.
//!
//! The spec is OpenAPI 3.0 (`nullable: true`), which JSON Schema does not know, so it is
//! rewritten first (`type: [t, "null"]`, or `anyOf: [node, null]` beside a `$ref`). Each
//! operation's validator is built once, from a small document holding only the component
//! schemas its request body reaches, with that body schema as the root `$ref`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::{json, Map, Value};

use super::errors::ApiError;

const SPEC: &str = include_str!("../../contracts/klaviyo-openapi-stable.json");
const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// An operation of the spec, named as the spec names it: lower-case method and path template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
}

pub const PROFILE_IMPORT: Operation = Operation {
    method: "post",
    path: "/api/profile-import",
};
pub const CREATE_PROFILE: Operation = Operation {
    method: "post",
    path: "/api/profiles",
};
pub const UPDATE_PROFILE: Operation = Operation {
    method: "patch",
    path: "/api/profiles/{id}",
};
pub const BULK_IMPORT: Operation = Operation {
    method: "post",
    path: "/api/profile-bulk-import-jobs",
};
pub const CREATE_EVENT: Operation = Operation {
    method: "post",
    path: "/api/events",
};
pub const BULK_CREATE_EVENTS: Operation = Operation {
    method: "post",
    path: "/api/event-bulk-create-jobs",
};

/// Every operation with a body this fake serves (built ahead of the first request).
pub const WRITE_OPERATIONS: [Operation; 6] = [
    PROFILE_IMPORT,
    CREATE_PROFILE,
    UPDATE_PROFILE,
    BULK_IMPORT,
    CREATE_EVENT,
    BULK_CREATE_EVENTS,
];

struct Spec {
    schemas: Map<String, Value>,
    paths: Map<String, Value>,
    /// Every operation's `x-klaviyo-scopes`, by path template.
    scopes: Vec<Scoped>,
    validators: Mutex<HashMap<Operation, Arc<Validator>>>,
}

/// The scopes one operation of the spec requires of a private API key.
struct Scoped {
    method: String,
    /// The path template's segments; `None` for a `{parameter}`.
    segments: Vec<Option<String>>,
    scopes: Vec<String>,
}

impl Scoped {
    fn all(paths: &Map<String, Value>) -> Vec<Scoped> {
        let mut out = Vec::new();
        for (template, operations) in paths {
            let Some(operations) = operations.as_object() else {
                continue;
            };
            let segments: Vec<Option<String>> = template
                .trim_matches('/')
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                .collect();
            for (method, operation) in operations {
                let Some(scopes) = operation.get("x-klaviyo-scopes").and_then(Value::as_array)
                else {
                    continue;
                };
                out.push(Scoped {
                    method: method.to_lowercase(),
                    segments: segments.clone(),
                    scopes: scopes
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                });
            }
        }
        // Literal segments before parameters, so `/api/profiles/push-tokens`-like paths are not
        // taken for `/api/profiles/{id}`.
        out.sort_by_key(|s| s.segments.iter().filter(|x| x.is_none()).count());
        out
    }

    fn matches(&self, method: &str, segments: &[&str]) -> bool {
        self.method == method
            && self.segments.len() == segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(template, sent)| template.as_deref().is_none_or(|t| t == *sent))
    }
}

/// The scopes the spec's `x-klaviyo-scopes` requires for `method` on a concrete `path`
/// (`/api/profile-bulk-import-jobs/01J…`, trailing slash allowed); `None` when the spec has no
/// such operation.
pub fn required_scopes(method: &str, path: &str) -> Option<&'static [String]> {
    let method = method.to_lowercase();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    spec()
        .scopes
        .iter()
        .find(|s| s.matches(&method, &segments))
        .map(|s| s.scopes.as_slice())
}

fn spec() -> &'static Spec {
    static SPEC_CELL: OnceLock<Spec> = OnceLock::new();
    SPEC_CELL.get_or_init(|| {
        let mut doc: Value = serde_json::from_str(SPEC).expect("vendored Klaviyo spec is JSON");
        rewrite_nullable(&mut doc);
        let take = |doc: &mut Value, pointer: &str| match doc.pointer_mut(pointer).map(Value::take)
        {
            Some(Value::Object(map)) => map,
            _ => panic!("vendored Klaviyo spec has no {pointer}"),
        };
        let paths = take(&mut doc, "/paths");
        Spec {
            schemas: take(&mut doc, "/components/schemas"),
            scopes: Scoped::all(&paths),
            paths,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// Parses `body` and validates it against `operation`'s request schema.
pub fn validated(operation: Operation, body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("JSON parse error - {e}")))?;
    match validator(operation).validate(&value) {
        Ok(()) => Ok(value),
        Err(error) => {
            let pointer = match error.instance_path().as_str() {
                "" => "/".to_string(),
                path => path.to_string(),
            };
            Err(ApiError::invalid(error.to_string(), pointer))
        }
    }
}

/// Builds every validator this fake needs, so the first real request is not slowed down.
pub fn warm() {
    for operation in WRITE_OPERATIONS {
        validator(operation);
    }
}

fn validator(operation: Operation) -> Arc<Validator> {
    let spec = spec();
    let mut cache = spec.validators.lock().expect("validator cache lock");
    Arc::clone(
        cache
            .entry(operation)
            .or_insert_with(|| Arc::new(build(spec, operation))),
    )
}

fn build(spec: &Spec, operation: Operation) -> Validator {
    let root = request_schema_name(spec, operation);
    build_for(spec, &root)
}

/// A validator whose root is the component schema `root`.
fn build_for(spec: &Spec, root: &str) -> Validator {
    let mut needed = BTreeSet::new();
    collect_refs(spec, root, &mut needed);
    let schemas: Map<String, Value> = needed
        .into_iter()
        .map(|name| (name.clone(), spec.schemas[&name].clone()))
        .collect();
    let document = json!({
        "$ref": format!("{SCHEMA_PREFIX}{root}"),
        "components": { "schemas": schemas },
    });
    jsonschema::validator_for(&document)
        .unwrap_or_else(|e| panic!("schema {root} does not compile: {e}"))
}

/// Checks one of the fake's answers against the spec's response schema `schema`, so tests
/// prove that a client written against the spec can read what the fake sends.
#[cfg(test)]
pub fn check_response(schema: &str, answer: &Value) -> Result<(), String> {
    build_for(spec(), schema)
        .validate(answer)
        .map_err(|e| format!("{schema} at {}: {e}", e.instance_path().as_str()))
}

/// The component named by the operation's `requestBody` (e.g. `ProfileUpsertQuery`).
fn request_schema_name(spec: &Spec, operation: Operation) -> String {
    spec.paths
        .get(operation.path)
        .and_then(|path| path.get(operation.method))
        .and_then(|op| op.pointer("/requestBody/content/application~1vnd.api+json/schema/$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(SCHEMA_PREFIX))
        .unwrap_or_else(|| panic!("the spec has no request body schema for {operation:?}"))
        .to_string()
}

/// Adds `name` and every component schema it references, transitively.
fn collect_refs(spec: &Spec, name: &str, seen: &mut BTreeSet<String>) {
    if !seen.insert(name.to_string()) {
        return;
    }
    let mut refs = Vec::new();
    refs_in(&spec.schemas[name], &mut refs);
    for target in refs {
        collect_refs(spec, &target, seen);
    }
}

fn refs_in(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(target) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(SCHEMA_PREFIX))
            {
                out.push(target.to_string());
            }
            map.values().for_each(|v| refs_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// Turns OpenAPI 3.0 `nullable: true` into JSON Schema, recursively.
fn rewrite_nullable(node: &mut Value) {
    match node {
        Value::Object(map) => {
            map.values_mut().for_each(rewrite_nullable);
            if map.remove("nullable") != Some(Value::Bool(true)) {
                return;
            }
            match map.get("type").cloned() {
                Some(Value::String(kind)) => {
                    map.insert("type".into(), json!([kind, "null"]));
                }
                Some(_) => {}
                None => {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([inner, { "type": "null" }]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(operation: Operation, body: Value) -> Result<Value, ApiError> {
        validated(operation, body.to_string().as_bytes())
    }

    #[test]
    fn accepts_a_profile_import() {
        let body = json!({"data": {"type": "profile", "attributes": {
            "email": "a@example.com", "external_id": null, "properties": {"Tier": "Gold"}}}});
        assert!(check(PROFILE_IMPORT, body).is_ok());
    }

    #[test]
    fn rejects_a_wrong_type_naming_the_pointer() {
        let body = json!({"data": {"type": "profiles", "attributes": {"email": "a@example.com"}}});
        let error = check(PROFILE_IMPORT, body).unwrap_err();
        assert_eq!(
            error.source,
            Some(super::super::errors::Source::Pointer("/data/type".into()))
        );
    }

    #[test]
    fn rejects_a_numeric_email() {
        let body = json!({"data": {"type": "profile", "attributes": {"email": 42}}});
        let error = check(PROFILE_IMPORT, body).unwrap_err();
        assert_eq!(
            error.source,
            Some(super::super::errors::Source::Pointer(
                "/data/attributes/email".into()
            ))
        );
    }

    #[test]
    fn rejects_json_that_is_not_json() {
        let error = validated(CREATE_EVENT, b"{not json").unwrap_err();
        assert_eq!(error.code, "parse_error");
    }

    #[test]
    fn every_served_operation_has_a_schema() {
        warm();
    }

    #[test]
    fn scopes_come_from_the_spec_for_concrete_paths() {
        let scopes = |method, path| required_scopes(method, path).map(<[String]>::to_vec);
        assert_eq!(
            scopes("POST", "/api/profile-bulk-import-jobs/"),
            Some(vec![
                "lists:write".to_string(),
                "profiles:write".to_string()
            ])
        );
        assert_eq!(
            scopes("GET", "/api/profile-bulk-import-jobs/01ABC/import-errors"),
            Some(vec!["profiles:read".to_string()])
        );
        assert_eq!(
            scopes("GET", "/api/profiles/01ABC"),
            Some(vec!["profiles:read".to_string()])
        );
        assert_eq!(scopes("GET", "/api/no-such-thing"), None);
    }

    #[test]
    fn nullable_becomes_a_type_union_or_any_of() {
        let mut node = json!({"a": {"type": "string", "nullable": true},
                              "b": {"$ref": "#/x", "nullable": true}});
        rewrite_nullable(&mut node);
        assert_eq!(node["a"]["type"], json!(["string", "null"]));
        assert_eq!(node["b"]["anyOf"][1], json!({"type": "null"}));
    }
}
