//! Calculated query cost, as Shopify documents it: a scalar or enum field costs 0, an object
//! 1 plus its children, a connection 2 plus `first` (or `last`) times the cost of one node
//! (`edges`, `cursor` and `pageInfo` are free), and a mutation 10 per root field.
//!
//! The requested cost is computed from the document before anything runs; the actual cost
//! walks the response and counts the nodes really returned. The same walk enforces the page
//! rules Shopify checks up front for ordinary requests (`first` or `last` required, at most
//! 250); bulk queries skip it, as they are neither costed nor paged.

use apollo_compiler::ast::Value;
use apollo_compiler::executable::{Field, Operation, OperationType, Selection, SelectionSet};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::{ExecutableDocument, Node};

use super::graphql::{error_at, GraphqlError};
use super::projection::is_connection;

/// Largest page Shopify serves.
pub(crate) const MAX_PAGE_SIZE: i64 = 250;
/// What one root mutation field costs.
const MUTATION_COST: u64 = 10;

/// How a field is charged.
enum Kind {
    Leaf,
    /// `pageInfo` inside a connection: free.
    Free,
    /// `edges` inside a connection: free itself, its `node` is charged.
    Edges,
    Connection,
    Object,
}

fn kind(field: &Field, in_connection: bool) -> Kind {
    if field.selection_set.selections.is_empty() {
        Kind::Leaf
    } else if in_connection && field.name == "pageInfo" {
        Kind::Free
    } else if in_connection && field.name == "edges" {
        Kind::Edges
    } else if is_connection(field.ty()) {
        Kind::Connection
    } else {
        Kind::Object
    }
}

/// The static analysis of one operation.
pub(crate) struct Analysis<'a> {
    document: &'a ExecutableDocument,
    variables: &'a JsonMap,
    errors: Vec<GraphqlError>,
}

/// `requestedQueryCost` of `operation`, or the errors Shopify answers before running it.
pub(crate) fn requested(
    document: &ExecutableDocument,
    operation: &Operation,
    variables: &JsonMap,
) -> Result<u64, Vec<GraphqlError>> {
    let mut analysis = Analysis {
        document,
        variables,
        errors: Vec::new(),
    };
    let cost = if operation.operation_type == OperationType::Mutation {
        mutation_cost(document, &operation.selection_set)
    } else {
        analysis.selection(&operation.selection_set, false)
    };
    if analysis.errors.is_empty() {
        Ok(cost)
    } else {
        Err(analysis.errors)
    }
}

/// `actualQueryCost` of `operation` given the `data` it produced.
pub(crate) fn actual(document: &ExecutableDocument, operation: &Operation, data: &JsonMap) -> u64 {
    if operation.operation_type == OperationType::Mutation {
        return mutation_cost(document, &operation.selection_set);
    }
    actual_selection(document, &operation.selection_set, data, false)
}

fn mutation_cost(document: &ExecutableDocument, set: &SelectionSet) -> u64 {
    fields(document, set).count() as u64 * MUTATION_COST
}

/// Every field of `set`, looking through fragments.
fn fields<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
) -> Box<dyn Iterator<Item = &'a Node<Field>> + 'a> {
    Box::new(
        set.selections
            .iter()
            .flat_map(move |selection| match selection {
                Selection::Field(field) => Box::new(std::iter::once(field)),
                Selection::InlineFragment(fragment) => fields(document, &fragment.selection_set),
                Selection::FragmentSpread(spread) => {
                    match document.fragments.get(&spread.fragment_name) {
                        Some(fragment) => fields(document, &fragment.selection_set),
                        None => Box::new(std::iter::empty()),
                    }
                }
            }),
    )
}

impl Analysis<'_> {
    fn selection(&mut self, set: &SelectionSet, in_connection: bool) -> u64 {
        let document = self.document;
        fields(document, set)
            .map(|field| match kind(field, in_connection) {
                Kind::Leaf | Kind::Free => 0,
                Kind::Edges => self.selection(&field.selection_set, false),
                Kind::Object => 1 + self.selection(&field.selection_set, false),
                Kind::Connection => {
                    let size = self.page_size(field);
                    2 + size * self.selection(&field.selection_set, true)
                }
            })
            .sum()
    }

    /// The page size a connection asks for, recording Shopify's up-front errors.
    fn page_size(&mut self, field: &Node<Field>) -> u64 {
        let first = self.int_argument(field, "first");
        let last = self.int_argument(field, "last");
        let Some(size) = first.or(last) else {
            self.errors.push(error_at(
                "you must provide one of first or last",
                field.location(),
                self.document,
                "MISSING_PAGE_SIZE",
            ));
            return 0;
        };
        if !(0..=MAX_PAGE_SIZE).contains(&size) {
            let name = if first.is_some() { "first" } else { "last" };
            self.errors.push(error_at(
                &format!(
                    "The `{name}` argument must be between 0 and {MAX_PAGE_SIZE} (got {size})"
                ),
                field.location(),
                self.document,
                "PAGE_SIZE_OUT_OF_RANGE",
            ));
        }
        u64::try_from(size).unwrap_or(0)
    }

    fn int_argument(&self, field: &Field, name: &str) -> Option<i64> {
        match field.specified_argument_by_name(name)?.as_ref() {
            Value::Int(int) => int.try_to_i32().ok().map(i64::from),
            Value::Variable(variable) => self.variables.get(variable.as_str())?.as_i64(),
            _ => None,
        }
    }
}

fn actual_selection(
    document: &ExecutableDocument,
    set: &SelectionSet,
    data: &JsonMap,
    in_connection: bool,
) -> u64 {
    fields(document, set)
        .map(|field| {
            let Some(value) = data.get(field.response_key().as_str()) else {
                return 0;
            };
            let children = |value: &JsonValue, in_connection: bool| match value {
                JsonValue::Object(object) => {
                    actual_selection(document, &field.selection_set, object, in_connection)
                }
                _ => 0,
            };
            let each = |charge: u64| match value {
                JsonValue::Array(items) => items
                    .iter()
                    .filter(|item| !item.is_null())
                    .map(|item| charge + children(item, false))
                    .sum(),
                JsonValue::Null => 0,
                single => charge + children(single, false),
            };
            match kind(field, in_connection) {
                Kind::Leaf | Kind::Free => 0,
                Kind::Edges => each(0),
                Kind::Object => each(1),
                Kind::Connection if value.is_null() => 0,
                Kind::Connection => 2 + children(value, true),
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shopify::graphql;
    use apollo_compiler::response::serde_json_bytes::json;

    const ORDERS: &str = "query($first: Int!) { orders(first: $first, sortKey: UPDATED_AT) {
        edges { cursor node { id updatedAt customer { id }
          currentTotalPriceSet { shopMoney { amount currencyCode } } } }
        pageInfo { hasNextPage endCursor } } }";

    fn requested_for(query: &str, variables: JsonValue) -> Result<u64, Vec<GraphqlError>> {
        let document = graphql::api("2025-01").unwrap().parse(query)?;
        let operation = document.operations.get(None).map_err(|_| vec![])?;
        let variables = variables.as_object().cloned().unwrap_or_default();
        requested(&document, operation, &variables)
    }

    #[test]
    fn a_connection_costs_two_plus_first_times_a_node() {
        // node 1 + customer 1 + currentTotalPriceSet 1 + shopMoney 1 = 4 per order.
        assert_eq!(requested_for(ORDERS, json!({"first": 10})).ok(), Some(42));
        assert_eq!(
            requested_for(ORDERS, json!({"first": 250})).ok(),
            Some(1002)
        );
    }

    #[test]
    fn scalars_cost_nothing_and_objects_one() {
        assert_eq!(
            requested_for("{ shop { name currencyCode } }", json!({})).ok(),
            Some(1)
        );
    }

    #[test]
    fn page_rules_are_checked_up_front() {
        assert!(requested_for("{ orders(first: 251) { nodes { id } } }", json!({})).is_err());
        assert!(requested_for("{ orders { nodes { id } } }", json!({})).is_err());
    }

    #[test]
    fn actual_cost_counts_returned_nodes() {
        let document = graphql::api("2025-01").unwrap().parse(ORDERS).unwrap();
        let operation = document.operations.get(None).unwrap();
        let data = json!({"orders": {"edges": [
            {"cursor": "a", "node": {"id": "1", "updatedAt": "x", "customer": null,
              "currentTotalPriceSet": {"shopMoney": {"amount": "1.00", "currencyCode": "USD"}}}},
            {"cursor": "b", "node": {"id": "2", "updatedAt": "x", "customer": {"id": "c"},
              "currentTotalPriceSet": {"shopMoney": {"amount": "1.00", "currencyCode": "USD"}}}}
        ], "pageInfo": {"hasNextPage": false, "endCursor": "b"}}});
        let data = data.as_object().cloned().unwrap();
        assert_eq!(actual(&document, operation, &data), 2 + 3 + 4);
    }
}
