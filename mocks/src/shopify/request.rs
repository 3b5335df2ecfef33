//! One GraphQL request end to end, in Shopify's order: parse and validate, pick the
//! operation, coerce variables, check page rules and the single-query cost limit, pay from
//! the leaky bucket (or answer `THROTTLED`), execute, refund the unused points, and attach
//! `extensions.cost` to the answer.

use std::cell::RefCell;
use std::sync::Arc;

use apollo_compiler::executable::OperationType;
use apollo_compiler::response::{JsonMap, JsonValue};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{self, Access};
use super::bulk::Kind;
use super::cost;
use super::graphql::{self, Api, GraphqlError};
use super::root::{MutationRoot, QueryRoot};
use super::state::{Shared, ShopState};
use crate::harness::faults::Injected;

/// What the endpoint answers.
pub(crate) struct Answer {
    pub status: u16,
    /// The JSON body (order-preserving, so `data` follows the selection's order).
    pub body: JsonValue,
    /// True for a `THROTTLED` answer (recorded with the request).
    pub throttled: bool,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body: body.into(),
            throttled: false,
        }
    }
}

/// The POST body of a GraphQL request.
#[derive(Deserialize)]
struct GraphqlRequest {
    query: String,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
}

/// Answers the body of `POST /admin/api/{version}/graphql.json` (already authenticated) with
/// the schema of that version; `injected` may force `THROTTLED` or a repeated page.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    api: &'static Api,
    body: &[u8],
    injected: &Injected,
) -> Answer {
    let Ok(request) = serde_json::from_slice::<GraphqlRequest>(body) else {
        return Answer {
            status: 400,
            body: json!({ "errors": { "query": "Required parameter missing or invalid" } }).into(),
            throttled: false,
        };
    };
    match run(shared, api, &request, injected) {
        Ok(answer) => answer,
        Err(errors) => Answer::ok(json!({
            "errors": errors,
            "extensions": { "cost": cost_extension(shared, 0, Some(0)) },
        })),
    }
}

fn run(
    shared: &Arc<Shared>,
    api: &'static Api,
    request: &GraphqlRequest,
    injected: &Injected,
) -> Result<Answer, Vec<GraphqlError>> {
    let document = api.parse(&request.query)?;
    let operation =
        graphql::operation(&document, request.operation_name.as_deref()).map_err(|e| vec![e])?;
    let raw = match request.variables.clone().map(JsonValue::from) {
        None | Some(JsonValue::Null) => JsonMap::new(),
        Some(JsonValue::Object(map)) => map,
        Some(_) => {
            return Err(vec![graphql::error(
                "Variables must be an object",
                "INVALID_VARIABLE",
            )])
        }
    };
    let variables = api
        .variables(&document, operation, &raw)
        .map_err(|e| vec![e])?;
    let requested = cost::requested(&document, operation, &variables)?;

    let max = shared.options.max_query_cost;
    if requested as f64 > max {
        let message = format!(
            "Query cost is {requested}, which exceeds the single query max cost limit ({max}).\n\n\
             See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n\
             cost of a query is calculated.\n\n\
             To query larger amounts of data with fewer limits, bulk operations should be used instead.\n\
             See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
        );
        let mut error = graphql::error(&message, "MAX_COST_EXCEEDED");
        error["extensions"]["cost"] = json!(requested);
        error["extensions"]["maxCost"] = json!(max);
        return Ok(Answer::ok(json!({
            "errors": [error],
            "extensions": { "cost": cost_extension(shared, requested, None) },
        })));
    }

    let mut state = shared.state();
    // An injected `THROTTLED` drains the bucket, so the reported `throttleStatus` agrees.
    let forced = injected.throttled();
    if forced {
        state.bucket.set(0.0);
    }
    if forced || !state.bucket.try_take(requested as f64) {
        let cost = json!({
            "requestedQueryCost": requested,
            "actualQueryCost": null,
            "throttleStatus": state.bucket.status(),
        });
        return Ok(Answer {
            status: 200,
            body: json!({
                "errors": [{
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }],
                "extensions": { "cost": cost },
            })
            .into(),
            throttled: true,
        });
    }

    let access = Access::new(&shared.options.scopes);
    let newest_mutation = newest_bulk_mutation(&state);
    let mut response = if operation.operation_type == OperationType::Mutation {
        let root = MutationRoot {
            state: RefCell::new(&mut state),
            shared,
            api,
            access: &access,
        };
        api.execute(&document, operation, &variables, &root)
    } else {
        let root = QueryRoot {
            state: &state,
            base_url: &shared.base_url,
            injected: injected.clone(),
            access: &access,
        };
        api.execute(&document, operation, &variables, &root)
    };
    access::mark_denied(&mut response.errors);
    let actual = response
        .data
        .as_ref()
        .map_or(0, |data| cost::actual(&document, operation, data));
    state.bucket.refund(requested.saturating_sub(actual) as f64);
    // An armed lost answer (`FakeShopify::lose_next_bulk_mutation_answer`): the bulk mutation
    // this request started runs, and the client gets a gateway's 503 instead of its id.
    if state.lose_bulk_mutation_answer && newest_bulk_mutation(&state) != newest_mutation {
        state.lose_bulk_mutation_answer = false;
        return Ok(Answer {
            status: 503,
            body: json!({ "errors": "Service Unavailable" }).into(),
            throttled: false,
        });
    }
    let mut body = JsonMap::new();
    body.insert(
        "data",
        response.data.map_or(JsonValue::Null, JsonValue::Object),
    );
    if !response.errors.is_empty() {
        let errors = serde_json::to_value(&response.errors).unwrap_or_default();
        body.insert("errors", errors.into());
    }
    let cost = json!({ "cost": {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": state.bucket.status(),
    } });
    body.insert("extensions", cost.into());
    Ok(Answer {
        status: 200,
        body: JsonValue::Object(body),
        throttled: false,
    })
}

/// The id of the shop's most recent bulk mutation: a request that changes it started one.
fn newest_bulk_mutation(state: &ShopState) -> Option<u64> {
    state.bulk.current(Kind::Mutation).map(|op| op.id)
}

/// `extensions.cost` for an answer that ran nothing.
fn cost_extension(shared: &Shared, requested: u64, actual: Option<u64>) -> Value {
    json!({
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": shared.state().bucket.status(),
    })
}
