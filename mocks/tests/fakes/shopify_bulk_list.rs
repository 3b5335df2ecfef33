//! `bulkOperations` as a client of API 2026-10 sees it: the app's bulk operations newest first
//! (oldest first with `reverse`), filtered by `status:`, `operation_type:`, `created_at:` and an
//! `id:` range, paged with cursors both ways; and refused by 2025-01, whose schema lacks it.

use std::time::Duration;

use serde_json::{json, Value};
use tiersync_mocks::shopify::FakeShopify;

use super::shopify_bulk_mutation::{gql, run, shop, stage, TAGS_ADD};

const LIST: &str = "query L($q: String, $first: Int, $last: Int, $after: String, $before: String, $reverse: Boolean, $sort: BulkOperationsSortKeys) {
  bulkOperations(query: $q, first: $first, last: $last, after: $after, before: $before, reverse: $reverse, sortKey: $sort) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id type status query createdAt } }
  }
}";

/// The connection `bulkOperations` answers for these arguments.
async fn list(shop: &FakeShopify, arguments: Value) -> Value {
    let body = gql(shop, "2026-10", LIST, arguments).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["bulkOperations"].clone()
}

/// The numeric ids of a page's operations, in order.
fn ids(connection: &Value) -> Vec<u64> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| numeric(&edge["node"]["id"]))
        .collect()
}

fn numeric(gid: &Value) -> u64 {
    gid.as_str()
        .and_then(|gid| gid.rsplit('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a BulkOperation GID: {gid}"))
}

/// Starts a bulk mutation of `lines` lines; returns its numeric id.
async fn mutation(shop: &FakeShopify, lines: usize) -> u64 {
    let line = json!({ "id": "gid://shopify/Customer/1", "tags": ["listed"] }).to_string();
    let path = stage(shop, "2026-10", &vec![line.as_str(); lines].join("\n")).await;
    let started = run(shop, "2026-10", TAGS_ADD, &path).await;
    assert_eq!(started["userErrors"], json!([]), "{started}");
    numeric(&started["bulkOperation"]["id"])
}

#[tokio::test]
async fn bulk_operations_are_listed_newest_first_filtered_and_paged() {
    // Ten lines a second: a one-line mutation completes at once, a 50-line one runs for 5 s.
    let shop = shop(10.0).await;
    let query = gql(
        &shop,
        "2026-10",
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { message } } }",
        json!({ "q": "{ customers { edges { node { id } } } }" }),
    )
    .await;
    let query = numeric(&query["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]);
    let done = mutation(&shop, 1).await;
    let completed = json!({ "q": "status:completed operation_type:mutation", "first": 10 });
    let mut waited = 0;
    while ids(&list(&shop, completed.clone()).await) != [done] {
        assert!(waited < 100, "the one-line mutation never completed");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (second, third) = (mutation(&shop, 50).await, mutation(&shop, 50).await);

    // Every operation, newest first by default; oldest first with `reverse`.
    assert_eq!(
        ids(&list(&shop, json!({ "first": 10 })).await),
        [third, second, done, query]
    );
    assert_eq!(
        ids(&list(
            &shop,
            json!({ "first": 10, "reverse": true, "sort": "CREATED_AT" })
        )
        .await),
        [query, done, second, third]
    );
    // Filters: type, status, time and id range, together.
    let filtered = |q: &str| list(&shop, json!({ "q": q, "first": 10 }));
    assert_eq!(ids(&filtered("operation_type:query").await), [query]);
    assert_eq!(
        ids(&filtered("operation_type:mutation status:running").await),
        [third, second]
    );
    assert_eq!(
        ids(&filtered(&format!("operation_type:mutation id:>={second}")).await),
        [third, second]
    );
    assert_eq!(ids(&filtered(&format!("id:<{done}")).await), [query]);
    assert_eq!(ids(&filtered("created_at:<2020-01-01").await).len(), 0);
    assert_eq!(
        ids(&filtered("created_at:>='2020-01-01T00:00:00Z' operation_type:MUTATION").await),
        [third, second, done]
    );
    let node = &list(&shop, json!({ "first": 1 })).await["edges"][0]["node"];
    assert_eq!(
        (
            node["type"].as_str(),
            node["status"].as_str(),
            node["query"].as_str()
        ),
        (Some("MUTATION"), Some("RUNNING"), Some(TAGS_ADD))
    );
    // Sorted by completion, the ones still running come first (newest first), then the
    // completed ones by when they completed.
    let by_completion = list(&shop, json!({ "first": 10, "sort": "COMPLETED_AT" })).await;
    assert_eq!(&ids(&by_completion)[..2], [third, second]);

    // Paging forward one at a time meets each mutation once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list(
            &shop,
            json!({ "q": "operation_type:mutation", "first": 1, "after": after }),
        )
        .await;
        seen.extend(ids(&page));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, [third, second, done]);
    // And backward: the last one, then the one before it.
    let last = list(&shop, json!({ "q": "operation_type:mutation", "last": 1 })).await;
    assert_eq!(ids(&last), [done]);
    assert_eq!(last["pageInfo"]["hasPreviousPage"], true);
    let before = last["pageInfo"]["startCursor"].clone();
    let previous = list(
        &shop,
        json!({ "q": "operation_type:mutation", "last": 1, "before": before }),
    )
    .await;
    assert_eq!(ids(&previous), [second]);
}

#[tokio::test]
async fn before_2026_01_the_field_does_not_exist() {
    let shop = shop(10.0).await;
    let body = gql(&shop, "2025-01", LIST, json!({ "first": 1 })).await;
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
}

#[tokio::test]
async fn a_bulk_mutation_whose_answer_is_lost_runs_and_is_listed() {
    let shop = shop(100.0).await;
    let line = json!({ "id": "gid://shopify/Customer/2", "tags": ["lost"] }).to_string();
    let path = stage(&shop, "2026-10", &line).await;
    shop.lose_next_bulk_mutation_answer();
    let (status, body) = super::shopify_fake::post_to(
        &shop,
        "2026-10",
        &shop.access_token(),
        &json!({
            "query": "mutation R($m: String!, $p: String!) { bulkOperationRunMutation(mutation: $m, stagedUploadPath: $p) { bulkOperation { id } userErrors { message } } }",
            "variables": { "m": TAGS_ADD, "p": path },
        }),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.get("data").is_none(),
        "no id reaches the client: {body}"
    );
    let listed = list(&shop, json!({ "q": "operation_type:mutation", "first": 5 })).await;
    assert_eq!(ids(&listed).len(), 1, "{listed}");
    let mut waited = 0;
    while !shop.customer(2).unwrap().tags.contains(&"lost".to_owned()) {
        assert!(waited < 100, "the operation never ran");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only the next one loses its answer.
    let again = run(&shop, "2026-10", TAGS_ADD, &path).await;
    assert_eq!(again["userErrors"], json!([]), "{again}");
}
