//! The fake Shopify over real HTTP, as the daemon will use it, plus the store generator.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tiersync_mocks::data::{Customer, Order, StoreData};
use tiersync_mocks::generator::{generate, GenConfig};
use tiersync_mocks::shopify::{FakeShopify, ShopifyOptions};

const ORDERS_PAGE: &str = "query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    edges { cursor node {
      id name createdAt updatedAt cancelledAt test email displayFinancialStatus
      customer { id email }
      currentTotalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}";

pub(crate) async fn start(options: ShopifyOptions) -> FakeShopify {
    FakeShopify::start(SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("fake Shopify starts")
}

async fn post(shop: &FakeShopify, token: &str, body: &Value) -> (u16, Value) {
    post_to(shop, "2026-10", token, body).await
}

/// A GraphQL request to API `version`.
pub(crate) async fn post_to(
    shop: &FakeShopify,
    version: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/admin/api/{version}/graphql.json",
            shop.base_url()
        ))
        .header("X-Shopify-Access-Token", token)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

async fn query(shop: &FakeShopify, query: &str, variables: Value) -> Value {
    let (status, body) = post(
        shop,
        &shop.access_token(),
        &json!({ "query": query, "variables": variables }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap()
}

pub(crate) fn customer(id: u64) -> Customer {
    Customer {
        id,
        email: Some(format!("c{id}@example.com")),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        created_at: at(1, 0),
        updated_at: at(1, 0),
        tags: vec!["vip".into()],
    }
}

fn order(id: u64, updated_at: DateTime<Utc>) -> Order {
    Order {
        id,
        name: format!("#{}", 1000 + id),
        customer_id: Some(1),
        email: Some("c1@example.com".into()),
        created_at: at(1, 0),
        updated_at,
        cancelled_at: None,
        test: false,
        shop_total: Decimal::new(1250, 2),
        shop_refunded: Decimal::ZERO,
        presentment_currency: "EUR".into(),
        presentment_total: Decimal::new(1157, 2),
        presentment_refunded: Decimal::ZERO,
        changes: Vec::new(),
    }
}

/// 25 orders; their `updated_at` runs backwards from their id, so sorting matters.
fn small_store() -> StoreData {
    StoreData {
        currency: "USD".into(),
        timezone: "America/New_York".into(),
        customers: vec![customer(1)],
        orders: (1..=25)
            .map(|id| order(id, at(2 + (25 - id) as u32, 0)))
            .collect(),
    }
}

#[tokio::test]
async fn a_wrong_token_gets_401() {
    let shop = start(ShopifyOptions::default()).await;
    let (status, body) = post(&shop, "wrong", &json!({ "query": "{ shop { name } }" })).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["errors"],
        "[API] Invalid API key or access token (unrecognized login or wrong password)"
    );
    assert_eq!(shop.requests()[0].status, 401);
}

#[tokio::test]
async fn an_invalid_query_is_rejected_naming_the_field() {
    let shop = start(ShopifyOptions::default()).await;
    let body = query(
        &shop,
        "{ orders(first: 1) { nodes { id totalSpent } } }",
        json!({}),
    )
    .await;
    assert!(body.get("data").is_none());
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("totalSpent"),
        "{body}"
    );
}

#[tokio::test]
async fn orders_page_in_updated_at_order_exactly_once() {
    let shop = start(ShopifyOptions::default()).await;
    shop.load(small_store());
    let filter = "updated_at:>='2026-01-05T00:00:00Z'";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let body = query(
            &shop,
            ORDERS_PAGE,
            json!({ "first": 8, "after": after, "query": filter }),
        )
        .await;
        let orders = &body["data"]["orders"];
        for edge in orders["edges"].as_array().unwrap() {
            seen.push(edge["node"]["updatedAt"].as_str().unwrap().to_owned());
        }
        pages += 1;
        if !orders["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = orders["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    // Orders 1..=22 have updated_at on or after Jan 5.
    assert_eq!(seen.len(), 22);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 22);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen[0], "2026-01-05T00:00:00Z");
}

#[tokio::test]
async fn order_fields_come_in_shopify_formats() {
    let shop = start(ShopifyOptions::default()).await;
    shop.load(small_store());
    let body = query(&shop, ORDERS_PAGE, json!({ "first": 1 })).await;
    let node = &body["data"]["orders"]["edges"][0]["node"];
    assert_eq!(node["id"], "gid://shopify/Order/25");
    assert_eq!(
        node["currentTotalPriceSet"]["shopMoney"],
        json!({"amount": "12.50", "currencyCode": "USD"})
    );
    assert_eq!(
        node["currentTotalPriceSet"]["presentmentMoney"]["currencyCode"],
        "EUR"
    );
    assert_eq!(node["customer"]["email"], "c1@example.com");
    assert_eq!(node["displayFinancialStatus"], "PAID");
    let shop_info = query(&shop, "{ shop { ianaTimezone currencyCode } }", json!({})).await;
    assert_eq!(
        shop_info["data"]["shop"],
        json!({"ianaTimezone": "America/New_York", "currencyCode": "USD"})
    );
}

#[tokio::test]
async fn a_250_order_page_costs_what_shopify_charges() {
    let shop = start(ShopifyOptions::default()).await;
    shop.load(small_store());
    let cheap = "query($first: Int!) { orders(first: $first) { edges { node { id updatedAt
        currentTotalPriceSet { shopMoney { amount } } } } pageInfo { hasNextPage endCursor } } }";
    let body = query(&shop, cheap, json!({ "first": 250 })).await;
    let cost = &body["extensions"]["cost"];
    // 2 + 250 × (order 1 + currentTotalPriceSet 1 + shopMoney 1); 25 orders really returned.
    assert_eq!(cost["requestedQueryCost"], 752);
    assert_eq!(cost["actualQueryCost"], 2 + 25 * 3);
    assert_eq!(cost["throttleStatus"]["maximumAvailable"], 2000.0);
    assert!(
        cost["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap()
            >= 2000 - 77
    );
    // With the customer too, a 250 page is over the single-query limit.
    let body = query(&shop, ORDERS_PAGE, json!({ "first": 250 })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED",
        "{body}"
    );
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Query cost is 1252"));
}

#[tokio::test]
async fn throttled_when_the_bucket_cannot_pay_then_served_after_waiting() {
    let _clock = crate::timing::timing_sensitive().await; // before a 260 ms refill
                                                          // 52 points refill in 260 ms: slow enough that a debug build on a busy machine still
                                                          // reaches the bucket before it can pay.
    let shop = start(ShopifyOptions {
        restore_rate: 200.0,
        ..ShopifyOptions::default()
    })
    .await;
    shop.load(small_store());
    // Warm up (the schema is compiled on first use) so the refill cannot beat the throttled
    // request.
    query(&shop, "{ shop { name } }", json!({})).await;
    shop.clear_requests();
    shop.set_available(0.0);
    let body = query(&shop, ORDERS_PAGE, json!({ "first": 10 })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 2 + 10 * 5);
    assert!(body.get("data").is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = query(&shop, ORDERS_PAGE, json!({ "first": 10 })).await;
    assert!(body.get("errors").is_none(), "{body}");

    shop.throttle_next(1);
    let body = query(&shop, "{ shop { name } }", json!({})).await;
    assert_eq!(body["errors"][0]["message"], "Throttled");
    assert!(
        body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap()
            < 5
    );
    let throttled: Vec<bool> = shop.requests().iter().map(|r| r.throttled).collect();
    assert_eq!(throttled, [true, false, true]);
}

#[tokio::test]
async fn bulk_operation_end_to_end() {
    let _clock = crate::timing::timing_sensitive().await; // polled within 500 ms
                                                          // Long enough that the first poll surely sees it in progress.
    let shop = start(ShopifyOptions {
        bulk_delay: Duration::from_millis(500),
        ..ShopifyOptions::default()
    })
    .await;
    let store = generate(&GenConfig {
        customers: 200,
        ..GenConfig::default()
    });
    let orders = store.orders.len();
    shop.load(store);
    let run = "mutation($q: String!) { bulkOperationRunQuery(query: $q) {
        bulkOperation { id status } userErrors { field message } } }";
    let inner = "{ orders { edges { node { id updatedAt currentTotalPriceSet { shopMoney { amount } } } } } }";
    let body = query(&shop, run, json!({ "q": inner })).await;
    let started = &body["data"]["bulkOperationRunQuery"];
    assert_eq!(started["userErrors"], json!([]), "{body}");
    assert_eq!(started["bulkOperation"]["status"], "CREATED");
    let id = started["bulkOperation"]["id"].as_str().unwrap().to_owned();

    let poll = "query($id: ID!) { node(id: $id) { ... on BulkOperation { status url objectCount rootObjectCount } } }";
    let url = loop {
        let body = query(&shop, poll, json!({ "id": id })).await;
        let op = &body["data"]["node"];
        if op["status"] == "COMPLETED" {
            assert_eq!(op["rootObjectCount"], orders.to_string());
            break op["url"].as_str().unwrap().to_owned();
        }
        assert!(
            op["status"] == "RUNNING" || op["status"] == "CREATED",
            "{body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert_eq!(text.lines().count(), orders);
    // The file's size and line count as the operation gives them (asked through a fragment),
    // and the same file on a second download.
    let sized = "query($id: ID!) { node(id: $id) { ...Sized } } fragment Sized on BulkOperation { fileSize objectCount }";
    let body = query(&shop, sized, json!({ "id": id })).await;
    assert_eq!(
        body["data"]["node"]["fileSize"],
        text.len().to_string(),
        "{body}"
    );
    assert_eq!(body["data"]["node"]["objectCount"], orders.to_string());
    let again = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert_eq!(again, text);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["id"]
        .as_str()
        .unwrap()
        .starts_with("gid://shopify/Order/"));
    let current = query(&shop, "{ currentBulkOperation { id status } }", json!({})).await;
    assert_eq!(current["data"]["currentBulkOperation"]["id"], id.as_str());
}

/// Starts a bulk query of `version`: the `bulkOperationRunQuery` payload.
async fn start_bulk_query(shop: &FakeShopify, version: &str) -> Value {
    let run = "mutation($q: String!) { bulkOperationRunQuery(query: $q) {
        bulkOperation { id status } userErrors { field message code } } }";
    let inner = "{ orders { edges { node { id } } } }";
    let body = json!({ "query": run, "variables": { "q": inner } });
    let (status, answer) = post_to(shop, version, &shop.access_token(), &body).await;
    assert_eq!(status, 200, "{answer}");
    answer["data"]["bulkOperationRunQuery"].clone()
}

#[tokio::test]
async fn bulk_queries_run_one_at_a_time_before_2026_01_and_five_at_a_time_from_it() {
    // Each operation outlives the test: every one started is still running when the next asks.
    let options = ShopifyOptions {
        bulk_delay: Duration::from_secs(600),
        ..ShopifyOptions::default()
    };

    let old = start(options.clone()).await;
    old.load(small_store());
    let first = start_bulk_query(&old, "2025-01").await;
    assert_eq!(first["userErrors"], json!([]), "{first}");
    let running = first["bulkOperation"]["id"].as_str().unwrap().to_owned();
    let second = start_bulk_query(&old, "2025-01").await;
    assert!(second["bulkOperation"].is_null(), "{second}");
    let error = &second["userErrors"][0];
    assert_eq!(error["code"], "OPERATION_IN_PROGRESS", "{second}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("already in progress"), "{message}");
    assert!(
        message.contains(&running),
        "names the one running: {message}"
    );
    assert_eq!(old.bulk_queries().len(), 1);

    let new = start(options).await;
    new.load(small_store());
    let mut ids = HashSet::new();
    for _ in 0..5 {
        let started = start_bulk_query(&new, "2026-10").await;
        assert_eq!(started["userErrors"], json!([]), "{started}");
        ids.insert(started["bulkOperation"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 5);
    let sixth = start_bulk_query(&new, "2026-10").await;
    assert!(sixth["bulkOperation"].is_null(), "{sixth}");
    assert_eq!(sixth["userErrors"][0]["code"], "LIMIT_REACHED", "{sixth}");
    let queries = new.bulk_queries();
    assert_eq!(queries.len(), 5, "the refused one is not recorded");
    assert!(queries
        .iter()
        .all(|q| matches!(q.status, "CREATED" | "RUNNING") && q.completed_at.is_none()));
}

#[tokio::test]
async fn bulk_nested_connections_follow_their_parent() {
    let shop = start(ShopifyOptions {
        bulk_delay: Duration::from_millis(10),
        ..ShopifyOptions::default()
    })
    .await;
    shop.load(small_store());
    let set = "mutation { metafieldsSet(metafields: [{ ownerId: \"gid://shopify/Customer/1\",
        namespace: \"tiersync\", key: \"tier\", type: \"single_line_text_field\", value: \"Gold\" }]) {
        userErrors { message } } }";
    query(&shop, set, json!({})).await;
    let run = "mutation { bulkOperationRunQuery(query: \"{ customers { edges { node { id metafields { edges { node { key value } } } } } } }\") { bulkOperation { id } userErrors { message } } }";
    let body = query(&shop, run, json!({})).await;
    assert_eq!(
        body["data"]["bulkOperationRunQuery"]["userErrors"],
        json!([]),
        "{body}"
    );
    let url = loop {
        let body = query(&shop, "{ currentBulkOperation { status url } }", json!({})).await;
        if body["data"]["currentBulkOperation"]["status"] == "COMPLETED" {
            break body["data"]["currentBulkOperation"]["url"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({ "id": "gid://shopify/Customer/1" }),
            json!({ "key": "tier", "value": "Gold", "__parentId": "gid://shopify/Customer/1" }),
        ]
    );
}

/// Starts a bulk query, waits for it and returns the JSONL file and the final operation.
async fn run_bulk(shop: &FakeShopify, inner: &str) -> (String, Value) {
    let run = "mutation($q: String!) { bulkOperationRunQuery(query: $q) {
        bulkOperation { id } userErrors { field message } } }";
    let body = query(shop, run, json!({ "q": inner })).await;
    assert_eq!(
        body["data"]["bulkOperationRunQuery"]["userErrors"],
        json!([]),
        "{body}"
    );
    let poll = "{ currentBulkOperation { status url objectCount rootObjectCount } }";
    loop {
        let body = query(shop, poll, json!({})).await;
        let op = body["data"]["currentBulkOperation"].clone();
        match op["status"].as_str() {
            Some("COMPLETED") => {
                let url = op["url"].as_str().unwrap();
                let text = reqwest::get(url).await.unwrap().text().await.unwrap();
                return (text, op);
            }
            Some("CREATED" | "RUNNING") => tokio::time::sleep(Duration::from_millis(10)).await,
            _ => panic!("{body}"),
        }
    }
}

#[tokio::test]
async fn bulk_jsonl_is_exactly_the_projected_nodes() {
    let shop = start(ShopifyOptions {
        bulk_delay: Duration::from_millis(10),
        ..ShopifyOptions::default()
    })
    .await;
    let mut refunded = order(2, at(4, 0));
    refunded.customer_id = Some(2);
    refunded.email = None;
    refunded.shop_refunded = Decimal::new(250, 2);
    refunded.presentment_refunded = Decimal::new(231, 2);
    refunded.cancelled_at = Some(at(4, 0));
    let mut guest = order(3, at(3, 12));
    guest.customer_id = None;
    guest.email = Some("guest@example.com".into());
    guest.test = true;
    // Updated after the bulk query's cut-off, so it is not exported.
    let late = order(4, at(20, 0));
    shop.load(StoreData {
        currency: "USD".into(),
        timezone: "America/New_York".into(),
        customers: vec![customer(1), customer(2)],
        orders: vec![order(1, at(2, 0)), refunded, guest, late],
    });

    // A bulk query shaped like the daemon's `ORDERS_BULK` (the e2e contract tests send the
    // real one, with every field it selects).
    let daemon = r#"{
  orders(query: "updated_at:<='2026-01-10T00:00:00Z'") {
    edges {
      node {
        id
        email
        createdAt
        updatedAt
        cancelledAt
        test
        customer { id }
        currentTotalPriceSet { shopMoney { amount currencyCode } }
      }
    }
  }
}"#;
    let (text, op) = run_bulk(&shop, daemon).await;
    let expected = [
        r#"{"id":"gid://shopify/Order/1","email":"c1@example.com","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-02T00:00:00Z","cancelledAt":null,"test":false,"customer":{"id":"gid://shopify/Customer/1"},"currentTotalPriceSet":{"shopMoney":{"amount":"12.50","currencyCode":"USD"}}}"#,
        r#"{"id":"gid://shopify/Order/2","email":null,"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-04T00:00:00Z","cancelledAt":"2026-01-04T00:00:00Z","test":false,"customer":{"id":"gid://shopify/Customer/2"},"currentTotalPriceSet":{"shopMoney":{"amount":"10.00","currencyCode":"USD"}}}"#,
        r#"{"id":"gid://shopify/Order/3","email":"guest@example.com","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-03T12:00:00Z","cancelledAt":null,"test":true,"customer":null,"currentTotalPriceSet":{"shopMoney":{"amount":"12.50","currencyCode":"USD"}}}"#,
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    assert!(text.ends_with('\n'));
    assert_eq!(op["objectCount"], "3");
    assert_eq!(op["rootObjectCount"], "3");

    // Aliases, fragments, `__typename`, `nodes`, arguments and a nested connection.
    let set = "mutation { metafieldsSet(metafields: [{ ownerId: \"gid://shopify/Customer/2\",
        namespace: \"tiersync\", key: \"tier\", type: \"single_line_text_field\", value: \"Gold\" }]) {
        userErrors { message } } }";
    query(&shop, set, json!({})).await;
    let aliased = r#"query Export {
  orders(sortKey: UPDATED_AT, reverse: true, query: "updated_at:<2026-01-10") {
    nodes {
      __typename
      orderId: id
      ...Money
      buyer: customer { ... on Customer { email name: firstName } }
    }
  }
  customers(query: "email:c2@example.com") {
    edges { node { id kind: __typename metafields(first: 5) { edges { node { key value } } } } }
  }
}
fragment Money on Order {
  total: totalPriceSet { presentmentMoney { amount currencyCode } }
  displayFinancialStatus
}"#;
    let (text, op) = run_bulk(&shop, aliased).await;
    let expected = [
        r#"{"__typename":"Order","orderId":"gid://shopify/Order/2","total":{"presentmentMoney":{"amount":"11.57","currencyCode":"EUR"}},"displayFinancialStatus":"PARTIALLY_REFUNDED","buyer":{"email":"c2@example.com","name":"Ann"}}"#,
        r#"{"__typename":"Order","orderId":"gid://shopify/Order/3","total":{"presentmentMoney":{"amount":"11.57","currencyCode":"EUR"}},"displayFinancialStatus":"PAID","buyer":null}"#,
        r#"{"__typename":"Order","orderId":"gid://shopify/Order/1","total":{"presentmentMoney":{"amount":"11.57","currencyCode":"EUR"}},"displayFinancialStatus":"PAID","buyer":{"email":"c1@example.com","name":"Ann"}}"#,
        r#"{"id":"gid://shopify/Customer/2","kind":"Customer"}"#,
        r#"{"key":"tier","value":"Gold","__parentId":"gid://shopify/Customer/2"}"#,
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    assert_eq!(op["objectCount"], "5");
    assert_eq!(op["rootObjectCount"], "4");
}

#[tokio::test]
async fn tags_and_metafields_are_written() {
    let shop = start(ShopifyOptions::default()).await;
    shop.load(small_store());
    let add = "mutation($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) {
        node { id ... on Customer { tags } } userErrors { field message } } }";
    let body = query(
        &shop,
        add,
        json!({ "id": "gid://shopify/Customer/1", "tags": ["tier:gold", "VIP"] }),
    )
    .await;
    assert_eq!(
        body["data"]["tagsAdd"]["node"]["tags"],
        json!(["vip", "tier:gold"])
    );
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 10);
    let remove = "mutation($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) {
        node { id } userErrors { field message } } }";
    query(
        &shop,
        remove,
        json!({ "id": "gid://shopify/Customer/1", "tags": ["vip"] }),
    )
    .await;
    assert_eq!(shop.customer(1).unwrap().tags, ["tier:gold"]);
    let missing = query(
        &shop,
        remove,
        json!({ "id": "gid://shopify/Customer/99", "tags": ["x"] }),
    )
    .await;
    assert_eq!(
        missing["data"]["tagsRemove"]["userErrors"][0]["field"],
        json!(["id"])
    );

    let set = "mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) {
        metafields { key value } userErrors { field message code elementIndex } } }";
    let entry = |key: &str, kind: &str, value: &str| {
        json!({
        "ownerId": "gid://shopify/Customer/1", "namespace": "tiersync", "key": key, "type": kind, "value": value })
    };
    // One bad entry: nothing is written.
    let bad = query(
        &shop,
        set,
        json!({ "m": [entry("tier", "single_line_text_field", "Gold"),
        entry("points", "number_integer", "many")] }),
    )
    .await;
    assert_eq!(
        bad["data"]["metafieldsSet"]["userErrors"][0]["elementIndex"], 1,
        "{bad}"
    );
    assert_eq!(shop.customer_metafield(1, "tiersync", "tier"), None);
    let too_many: Vec<Value> = (0..26)
        .map(|i| entry(&format!("k{i}"), "number_integer", "1"))
        .collect();
    let body = query(&shop, set, json!({ "m": too_many })).await;
    assert_eq!(
        body["data"]["metafieldsSet"]["userErrors"][0]["code"],
        "LESS_THAN_OR_EQUAL_TO"
    );
    let good = query(
        &shop,
        set,
        json!({ "m": [entry("tier", "single_line_text_field", "Gold")] }),
    )
    .await;
    assert_eq!(
        good["data"]["metafieldsSet"]["metafields"],
        json!([{ "key": "tier", "value": "Gold" }])
    );
    let read = query(
        &shop,
        "{ customer(id: \"gid://shopify/Customer/1\") { tags
        tier: metafield(namespace: \"tiersync\", key: \"tier\") { value }
        metafields(first: 5) { nodes { namespace key } } } }",
        json!({}),
    )
    .await;
    let customer = &read["data"]["customer"];
    assert_eq!(customer["tier"]["value"], "Gold", "{read}");
    assert_eq!(
        customer["metafields"]["nodes"],
        json!([{ "namespace": "tiersync", "key": "tier" }])
    );
}

#[test]
fn the_generator_is_deterministic() {
    let small = GenConfig {
        customers: 300,
        ..GenConfig::default()
    };
    let (a, b) = (generate(&small), generate(&small));
    assert_eq!(a.customers, b.customers);
    assert_eq!(a.orders, b.orders);
    let other = generate(&GenConfig { seed: 7, ..small });
    assert_ne!(a.orders, other.orders);
}

#[test]
fn the_generated_store_has_a_realistic_shape() {
    let store = generate(&GenConfig::default());
    assert_eq!(store.customers.len(), 10_000);
    let orders = store.orders.len();
    assert!((45_000..=75_000).contains(&orders), "{orders} orders");
    let mut per_customer = std::collections::HashMap::new();
    for order in &store.orders {
        if let Some(id) = order.customer_id {
            *per_customer.entry(id).or_insert(0) += 1;
        }
    }
    let one_timers = per_customer.values().filter(|&&n| n == 1).count() as f64 / 10_000.0;
    assert!(
        (0.45..=0.65).contains(&one_timers),
        "one-timer share {one_timers}"
    );
    assert!(
        per_customer.values().any(|&n| n >= 50),
        "some very frequent buyers"
    );
    let share = |f: &dyn Fn(&Order) -> bool| {
        store.orders.iter().filter(|o| f(o)).count() as f64 / orders as f64
    };
    let refunded = share(&|o| !o.shop_refunded.is_zero() && o.cancelled_at.is_none());
    let partial = share(&|o| !o.shop_refunded.is_zero() && o.shop_refunded < o.shop_total);
    let cancelled = share(&|o| o.cancelled_at.is_some());
    let tests = share(&|o| o.test);
    let guests = share(&|o| o.customer_id.is_none());
    let foreign = share(&|o| o.presentment_currency != "USD");
    assert!((0.04..0.06).contains(&refunded), "refunded {refunded}");
    assert!((0.015..0.035).contains(&partial), "partial {partial}");
    assert!((0.015..0.025).contains(&cancelled), "cancelled {cancelled}");
    assert!((0.002..0.008).contains(&tests), "tests {tests}");
    assert!((0.025..0.035).contains(&guests), "guests {guests}");
    assert!((0.2..0.4).contains(&foreign), "foreign {foreign}");
    assert!(store.customers.iter().any(|c| c.email.is_none()));
    assert!(store
        .customers
        .iter()
        .any(|c| !c.first_name.is_ascii() || !c.last_name.is_ascii()));
    let mut values: Vec<f64> = store
        .orders
        .iter()
        .map(|o| o.shop_total.try_into().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    assert!((45.0..80.0).contains(&median), "median order {median}");
    assert_eq!(store.orders[0].name, "#1001");
}

// ---- client credentials, scopes and API versions --------------------------------------------

/// Asks the token endpoint with a form body; returns the status and the JSON answer.
async fn grant(shop: &FakeShopify, client_id: &str, client_secret: &str) -> (u16, Value) {
    let body = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={client_secret}"
    );
    let response = reqwest::Client::new()
        .post(format!("{}/admin/oauth/access_token", shop.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

#[tokio::test]
async fn client_credentials_tokens_work_until_they_expire() {
    let shop = start(ShopifyOptions {
        token_lifetime: Duration::from_secs(1),
        ..ShopifyOptions::default()
    })
    .await;
    let (status, body) = grant(&shop, &shop.client_id(), &shop.client_secret()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 1);
    assert_eq!(
        body["scope"],
        "read_orders,read_all_orders,read_customers,write_customers"
    );
    let token = body["access_token"].as_str().unwrap().to_owned();
    let shop_query = json!({ "query": "{ shop { name } }" });
    assert_eq!(post(&shop, &token, &shop_query).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = post(&shop, &token, &shop_query).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["errors"],
        "[API] Invalid API key or access token (unrecognized login or wrong password)"
    );
    // A new token works again; the static token of an admin-created app always does.
    let (_, body) = grant(&shop, &shop.client_id(), &shop.client_secret()).await;
    let fresh = body["access_token"].as_str().unwrap();
    assert_ne!(fresh, token);
    assert_eq!(post(&shop, fresh, &shop_query).await.0, 200);
    assert_eq!(post(&shop, &shop.access_token(), &shop_query).await.0, 200);
    assert_eq!(shop.tokens_issued(), 2);
    shop.expire_tokens();
    assert_eq!(post(&shop, fresh, &shop_query).await.0, 401);
}

#[tokio::test]
async fn a_wrong_client_secret_or_id_is_refused_like_oauth() {
    let shop = start(ShopifyOptions::default()).await;
    for (id, secret) in [
        (shop.client_id(), "wrong".to_owned()),
        ("unknown".to_owned(), shop.client_secret()),
    ] {
        let (status, body) = grant(&shop, &id, &secret).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
    }
    let response = reqwest::Client::new()
        .post(format!("{}/admin/oauth/access_token", shop.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(shop.tokens_issued(), 0);
}

#[tokio::test]
async fn the_granted_scopes_are_listed() {
    let shop = start(ShopifyOptions {
        scopes: vec!["read_orders".into(), "read_customers".into()],
        ..ShopifyOptions::default()
    })
    .await;
    let body = query(
        &shop,
        "{ currentAppInstallation { accessScopes { handle } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["currentAppInstallation"]["accessScopes"],
        json!([{ "handle": "read_orders" }, { "handle": "read_customers" }])
    );
}

/// Orders created 10, 59, 61 and 400 days ago.
fn aged_store() -> StoreData {
    let orders = [10, 59, 61, 400]
        .into_iter()
        .enumerate()
        .map(|(i, days)| {
            let created = Utc::now() - chrono::Duration::days(days);
            Order {
                created_at: created,
                ..order(i as u64 + 1, created)
            }
        })
        .collect();
    StoreData {
        orders,
        ..small_store()
    }
}

#[tokio::test]
async fn without_read_all_orders_only_the_last_60_days_are_visible() {
    for (scopes, visible) in [
        (vec!["read_orders", "read_customers"], 2),
        (vec!["read_orders", "read_all_orders", "read_customers"], 4),
    ] {
        let shop = start(ShopifyOptions {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..ShopifyOptions::default()
        })
        .await;
        shop.load(aged_store());
        let body = query(&shop, ORDERS_PAGE, json!({ "first": 10 })).await;
        let edges = body["data"]["orders"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), visible, "{scopes:?}: {body}");
        let old = query(
            &shop,
            "{ order(id: \"gid://shopify/Order/4\") { id } }",
            json!({}),
        )
        .await;
        assert_eq!(old["data"]["order"].is_null(), visible == 2, "{old}");
        let (lines, _) = run_bulk(&shop, "{ orders { edges { node { id } } } }").await;
        assert_eq!(lines.lines().count(), visible, "{scopes:?}: {lines}");
    }
}

#[tokio::test]
async fn writes_without_write_customers_are_access_denied() {
    let shop = start(ShopifyOptions {
        scopes: vec!["read_orders".into(), "read_customers".into()],
        ..ShopifyOptions::default()
    })
    .await;
    shop.load(small_store());
    let body = query(
        &shop,
        "mutation { a: tagsAdd(id: \"gid://shopify/Customer/1\", tags: [\"vip:gold\"]) {
            userErrors { message } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["a"], Value::Null, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "ACCESS_DENIED", "{body}");
    assert_eq!(
        error["message"],
        "Access denied for tagsAdd field. Required access: `write_customers` access scope."
    );
    assert_eq!(error["path"], json!(["a"]));
    assert_eq!(shop.customer(1).unwrap().tags, ["vip"], "nothing changed");
}

#[tokio::test]
async fn each_request_is_validated_against_its_api_version() {
    let shop = start(ShopifyOptions::default()).await;
    let token = shop.access_token();
    // `bulkOperations` exists from 2026-01 on.
    let newer = json!({ "query": "{ bulkOperations(first: 1) { nodes { id } } }" });
    let (status, body) = post_to(&shop, "2025-01", &token, &newer).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
    let (status, body) = post_to(&shop, "2026-10", &token, &newer).await;
    assert_eq!(status, 200);
    assert_ne!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
    let (status, _) = post_to(&shop, "2019-04", &token, &newer).await;
    assert_eq!(status, 404);
}
