//! Shopify's published Admin schemas (2025-01 and 2026-10), each parsed once when a request
//! first names its version, and the document handling around them: parse + validate every
//! query against the schema of the version in the request path, as Shopify would, shape errors
//! the way Shopify answers them (HTTP 200, `errors: [{ message, locations, extensions: { code }
//! }]`), and execute a valid document against a root object.

use std::sync::OnceLock;

use apollo_compiler::collections::HashMap;
use apollo_compiler::executable::Operation;
use apollo_compiler::parser::SourceSpan;
use apollo_compiler::request::coerce_variable_values;
use apollo_compiler::resolvers::{Execution, ObjectValue};
use apollo_compiler::response::{ExecutionResponse, JsonMap};
use apollo_compiler::schema::Implementers;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Name, Schema};
use serde_json::{json, Value};

/// One entry of a response's `errors` array.
pub(crate) type GraphqlError = Value;

/// The versions the fake serves, with their vendored schemas (see `contracts/SOURCES.md`).
const VERSIONS: [(&str, &str, &str); 2] = [
    (
        "2025-01",
        "shopify-admin-2025-01.graphql",
        include_str!("../../contracts/shopify-admin-2025-01.graphql"),
    ),
    (
        "2026-10",
        "shopify-admin-2026-10.graphql",
        include_str!("../../contracts/shopify-admin-2026-10.graphql"),
    ),
];

/// One API version: its validated schema and the implementers of its interfaces.
pub(crate) struct Api {
    /// The API version (`2025-01`): some limits depend on it.
    pub(crate) version: &'static str,
    schema: Valid<Schema>,
    implementers: HashMap<Name, Implementers>,
}

/// The API of `version`, or `None` for a version the fake does not serve.
pub(crate) fn api(version: &str) -> Option<&'static Api> {
    static COMPILED: [OnceLock<Api>; VERSIONS.len()] = [OnceLock::new(), OnceLock::new()];
    let index = VERSIONS.iter().position(|(v, _, _)| *v == version)?;
    Some(COMPILED[index].get_or_init(|| {
        let (version, file, sdl) = VERSIONS[index];
        let schema =
            Schema::parse_and_validate(sdl, file).expect("the vendored Shopify schema is valid");
        let implementers = schema.implementers_map();
        Api {
            version,
            schema,
            implementers,
        }
    }))
}

impl Api {
    /// The validated Admin API schema of this version.
    pub(crate) fn schema(&self) -> &Valid<Schema> {
        &self.schema
    }

    /// Parses and validates the document a bulk operation was given as an argument; on
    /// failure, the `userErrors` message Shopify gives: `{what}: ` and the first error.
    pub(crate) fn parse_argument(
        &self,
        document: &str,
        what: &str,
    ) -> Result<Valid<ExecutableDocument>, String> {
        self.parse(document).map_err(|errors| {
            let first = errors
                .first()
                .and_then(|e| e["message"].as_str())
                .unwrap_or("invalid document");
            format!("{what}: {first}")
        })
    }

    /// Parses and validates `query`; on failure, the `errors` Shopify would answer (only the
    /// syntax errors when there are any, as a parser that stops there would report).
    pub(crate) fn parse(
        &self,
        query: &str,
    ) -> Result<Valid<ExecutableDocument>, Vec<GraphqlError>> {
        ExecutableDocument::parse_and_validate(&self.schema, query, "query.graphql").map_err(
            |invalid| {
                let (syntax, validation): (Vec<Value>, Vec<Value>) = invalid
                    .errors
                    .iter()
                    .map(|diagnostic| {
                        serde_json::to_value(diagnostic.to_json()).unwrap_or_default()
                    })
                    .partition(|error| {
                        error["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with("syntax error"))
                    });
                let (mut errors, code) = if syntax.is_empty() {
                    (validation, "GRAPHQL_VALIDATION_FAILED")
                } else {
                    (syntax, "GRAPHQL_PARSE_FAILED")
                };
                for error in &mut errors {
                    error["extensions"] = json!({ "code": code });
                }
                errors
            },
        )
    }

    /// Coerces the request's `variables` for `operation` (defaults, types, required ones).
    pub(crate) fn variables(
        &self,
        document: &Valid<ExecutableDocument>,
        operation: &Operation,
        raw: &JsonMap,
    ) -> Result<Valid<JsonMap>, GraphqlError> {
        coerce_variable_values(&self.schema, operation, raw).map_err(|e| {
            let mut error =
                serde_json::to_value(e.to_graphql_error(&document.sources)).unwrap_or_default();
            error["extensions"] = json!({ "code": "INVALID_VARIABLE" });
            error
        })
    }

    /// Runs `operation` with `root` as the query or mutation root object.
    pub(crate) fn execute(
        &self,
        document: &Valid<ExecutableDocument>,
        operation: &Operation,
        variables: &Valid<JsonMap>,
        root: &dyn ObjectValue,
    ) -> ExecutionResponse {
        Execution::new(&self.schema, document)
            .operation(operation)
            .implementers_map(&self.implementers)
            .coerced_variable_values(variables)
            .execute_sync(root)
            .unwrap_or_else(|e| ExecutionResponse {
                data: None,
                errors: vec![e.to_graphql_error(&document.sources)],
            })
    }
}

/// An error pointing at `location` in `document`.
pub(crate) fn error_at(
    message: &str,
    location: Option<SourceSpan>,
    document: &ExecutableDocument,
    code: &str,
) -> GraphqlError {
    let locations: Vec<Value> = location
        .and_then(|span| span.line_column_range(&document.sources))
        .map(|range| json!({ "line": range.start.line, "column": range.start.column }))
        .into_iter()
        .collect();
    json!({ "message": message, "locations": locations, "extensions": { "code": code } })
}

/// An error with no location.
pub(crate) fn error(message: &str, code: &str) -> GraphqlError {
    json!({ "message": message, "extensions": { "code": code } })
}

/// The operation to run (by `operationName` when the document has several).
pub(crate) fn operation<'a>(
    document: &'a Valid<ExecutableDocument>,
    name: Option<&str>,
) -> Result<&'a Operation, GraphqlError> {
    document
        .operations
        .get(name)
        .map(|operation| &**operation)
        .map_err(|e| error(&e.message().to_string(), "OPERATION_NOT_FOUND"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest() -> &'static Api {
        api("2026-10").expect("served")
    }

    #[test]
    fn a_field_added_after_2025_01_is_valid_only_in_newer_versions() {
        let query = "{ bulkOperations(first: 1) { nodes { id } } }";
        assert!(latest().parse(query).is_ok());
        let errors = api("2025-01").expect("served").parse(query).unwrap_err();
        assert!(errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bulkOperations")));
    }

    #[test]
    fn unserved_versions_have_no_api() {
        assert!(api("2024-01").is_none());
        assert!(api("2026-11").is_none());
    }

    #[test]
    fn a_wrong_field_is_rejected_by_name() {
        let errors = latest()
            .parse("{ orders(first: 1) { nodes { totalSpent } } }")
            .unwrap_err();
        let named = errors.iter().find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("totalSpent"))
        });
        assert!(named.is_some(), "{errors:?}");
        assert_eq!(errors[0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
        assert!(errors[0]["locations"][0]["line"].is_number());
    }

    #[test]
    fn syntax_errors_are_parse_failures() {
        let errors = latest().parse("{ orders(first: 1) { ").unwrap_err();
        assert_eq!(errors[0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    }
}
