//! Shopify's published Admin schema (2025-01), parsed once, and the document handling around
//! it: parse + validate every query as Shopify would, shape errors the way Shopify answers them
//! (HTTP 200, `errors: [{ message, locations, extensions: { code } }]`), and execute a valid
//! document against a root object.

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

const SDL: &str = include_str!("../../contracts/shopify-admin-2025-01.graphql");

struct Compiled {
    schema: Valid<Schema>,
    implementers: HashMap<Name, Implementers>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let schema = Schema::parse_and_validate(SDL, "shopify-admin-2025-01.graphql")
            .expect("the vendored Shopify schema is valid");
        let implementers = schema.implementers_map();
        Compiled {
            schema,
            implementers,
        }
    })
}

/// The validated Admin API schema.
pub(crate) fn schema() -> &'static Valid<Schema> {
    &compiled().schema
}

/// Parses and validates `query`; on failure, the `errors` Shopify would answer (only the
/// syntax errors when there are any, as a parser that stops there would report).
pub(crate) fn parse(query: &str) -> Result<Valid<ExecutableDocument>, Vec<GraphqlError>> {
    ExecutableDocument::parse_and_validate(schema(), query, "query.graphql").map_err(|invalid| {
        let (syntax, validation): (Vec<Value>, Vec<Value>) = invalid
            .errors
            .iter()
            .map(|diagnostic| serde_json::to_value(diagnostic.to_json()).unwrap_or_default())
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
    })
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

/// Coerces the request's `variables` for `operation` (defaults, types, required ones).
pub(crate) fn variables(
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
    raw: &JsonMap,
) -> Result<Valid<JsonMap>, GraphqlError> {
    coerce_variable_values(schema(), operation, raw).map_err(|e| {
        let mut error =
            serde_json::to_value(e.to_graphql_error(&document.sources)).unwrap_or_default();
        error["extensions"] = json!({ "code": "INVALID_VARIABLE" });
        error
    })
}

/// Runs `operation` with `root` as the query or mutation root object.
pub(crate) fn execute(
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
    variables: &Valid<JsonMap>,
    root: &dyn ObjectValue,
) -> ExecutionResponse {
    Execution::new(schema(), document)
        .operation(operation)
        .implementers_map(&compiled().implementers)
        .coerced_variable_values(variables)
        .execute_sync(root)
        .unwrap_or_else(|e| ExecutionResponse {
            data: None,
            errors: vec![e.to_graphql_error(&document.sources)],
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_field_is_rejected_by_name() {
        let errors = parse("{ orders(first: 1) { nodes { totalSpent } } }").unwrap_err();
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
        let errors = parse("{ orders(first: 1) { ").unwrap_err();
        assert_eq!(errors[0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    }
}
