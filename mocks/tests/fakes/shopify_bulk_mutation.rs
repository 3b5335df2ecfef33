//! The fake's bulk mutations as a client sees them: stage a JSONL of variables, upload it as a
//! multipart form, run the mutation over it, poll, and read the result file.

use std::time::Duration;

use serde_json::{json, Value};
use tiersync_mocks::data::StoreData;
use tiersync_mocks::shopify::{FakeShopify, ShopifyOptions};

use super::shopify_fake::{customer, post_to, start};

pub(super) const TAGS_ADD: &str = "mutation A($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { userErrors { field message } } }";

pub(super) async fn shop(rate: f64) -> FakeShopify {
    let shop = start(ShopifyOptions {
        bulk_mutation_rate: rate,
        ..ShopifyOptions::default()
    })
    .await;
    shop.load(StoreData {
        currency: "USD".into(),
        timezone: "UTC".into(),
        customers: (1..=3).map(customer).collect(),
        orders: Vec::new(),
    });
    shop
}

pub(super) async fn gql(shop: &FakeShopify, version: &str, query: &str, variables: Value) -> Value {
    let (status, body) = post_to(
        shop,
        version,
        &shop.access_token(),
        &json!({ "query": query, "variables": variables }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Stages `file` and returns its `stagedUploadPath`, checking the storage's answer.
pub(super) async fn stage(shop: &FakeShopify, version: &str, file: &str) -> String {
    let body = gql(
        shop,
        version,
        "mutation S($input: [StagedUploadInput!]!) { stagedUploadsCreate(input: $input) { stagedTargets { url parameters { name value } } userErrors { message } } }",
        json!({ "input": [{ "resource": "BULK_MUTATION_VARIABLES", "filename": "vars.jsonl", "mimeType": "text/jsonl", "httpMethod": "POST" }] }),
    )
    .await;
    let target = &body["data"]["stagedUploadsCreate"]["stagedTargets"][0];
    let url = target["url"].as_str().expect("an upload url");
    let mut form = String::new();
    let mut key = String::new();
    for p in target["parameters"].as_array().expect("parameters") {
        let (name, value) = (p["name"].as_str().unwrap(), p["value"].as_str().unwrap());
        if name == "key" {
            key = value.to_owned();
        }
        form.push_str(&format!(
            "--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    form.push_str(&format!("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"vars.jsonl\"\r\n\r\n{file}\r\n--B--\r\n"));
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "multipart/form-data; boundary=B")
        .body(form)
        .send()
        .await
        .expect("upload sent");
    assert_eq!(response.status().as_u16(), 201);
    let xml = response.text().await.unwrap();
    assert!(xml.contains(&format!("<Key>{key}</Key>")), "{xml}");
    key
}

pub(super) async fn run(shop: &FakeShopify, version: &str, mutation: &str, path: &str) -> Value {
    let body = gql(
        shop,
        version,
        "mutation R($m: String!, $p: String!) { bulkOperationRunMutation(mutation: $m, stagedUploadPath: $p, clientIdentifier: \"tiersync-test\") { bulkOperation { id status } userErrors { field message code } } }",
        json!({ "m": mutation, "p": path }),
    )
    .await;
    body["data"]["bulkOperationRunMutation"].clone()
}

#[tokio::test]
async fn a_bulk_mutation_applies_each_line_and_answers_each_in_the_result_file() {
    let shop = shop(10.0).await;
    let file = [
        json!({ "id": "gid://shopify/Customer/1", "tags": ["vip:gold"] }),
        json!({ "id": "gid://shopify/Customer/99", "tags": ["vip:gold"] }),
        json!({ "id": "gid://shopify/Customer/2" }),
        json!({ "id": "gid://shopify/Customer/3", "tags": ["vip:silver"] }),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let path = stage(&shop, "2026-10", &file).await;
    let before = shop.points_spent();
    let started = run(&shop, "2026-10", TAGS_ADD, &path).await;
    assert_eq!(started["userErrors"], json!([]));
    let id = started["bulkOperation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(started["bulkOperation"]["status"], "CREATED");
    let status = "query Q($id: ID!) { node(id: $id) { ... on BulkOperation { status type objectCount url } } }";
    let mut seen_running = false;
    let url = loop {
        let node = gql(&shop, "2026-10", status, json!({ "id": id })).await["data"]["node"].clone();
        assert_eq!(node["type"], "MUTATION");
        match node["status"].as_str().unwrap() {
            "COMPLETED" => break node["url"].as_str().unwrap().to_owned(),
            "RUNNING" => seen_running = true,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        seen_running,
        "4 lines at 10/s take long enough to be seen RUNNING"
    );
    let result = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = result
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["__lineNumber"], n, "{line}");
    }
    assert_eq!(lines[0]["data"]["tagsAdd"]["userErrors"], json!([]));
    assert_eq!(
        lines[1]["data"]["tagsAdd"]["userErrors"][0]["message"],
        "Customer does not exist"
    );
    assert!(
        lines[2]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tags"),
        "{}",
        lines[2]
    );
    assert!(shop
        .customer(1)
        .unwrap()
        .tags
        .contains(&"vip:gold".to_owned()));
    assert!(shop
        .customer(3)
        .unwrap()
        .tags
        .contains(&"vip:silver".to_owned()));
    assert_eq!(shop.tag_mutations(1), 1);
    assert_eq!(shop.tag_mutations(2), 0);
    // The run and the polls cost points; the four lines did not.
    let spent = shop.points_spent() - before;
    assert!(spent < 10.0 + 2.0 * 50.0, "spent {spent}");
}

#[tokio::test]
async fn a_second_bulk_mutation_is_refused_before_2026_01_and_allowed_after() {
    let shop = shop(1.0).await;
    let file = json!({ "id": "gid://shopify/Customer/1", "tags": ["a"] }).to_string();
    for version in ["2025-01", "2026-10"] {
        let first = stage(&shop, version, &file).await;
        let second = stage(&shop, version, &file).await;
        assert_eq!(
            run(&shop, version, TAGS_ADD, &first).await["userErrors"],
            json!([])
        );
        let again = run(&shop, version, TAGS_ADD, &second).await;
        if version == "2025-01" {
            assert_eq!(
                again["userErrors"][0]["code"], "OPERATION_IN_PROGRESS",
                "{again}"
            );
            assert!(again["userErrors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("already in progress"));
            assert!(again["bulkOperation"].is_null());
            // Let the one that runs finish before trying 2026-10.
            tokio::time::sleep(Duration::from_millis(1200)).await;
        } else {
            assert_eq!(again["userErrors"], json!([]), "{again}");
        }
    }
}

#[tokio::test]
async fn a_bad_path_file_or_mutation_is_refused_with_shopifys_codes() {
    let shop = shop(100.0).await;
    let unknown = run(&shop, "2026-10", TAGS_ADD, "tmp/1/bulk/nope/vars.jsonl").await;
    assert_eq!(unknown["userErrors"][0]["code"], "NO_SUCH_FILE");
    let broken = stage(
        &shop,
        "2026-10",
        "{\"id\": \"gid://shopify/Customer/1\"}\nnot json",
    )
    .await;
    let refused = run(&shop, "2026-10", TAGS_ADD, &broken).await;
    assert_eq!(
        refused["userErrors"][0]["code"],
        "INVALID_STAGED_UPLOAD_FILE"
    );
    let good = stage(&shop, "2026-10", "{}").await;
    let nested = run(
        &shop,
        "2026-10",
        "mutation { bulkOperationRunQuery(query: \"{ shop { name } }\") { userErrors { message } } }",
        &good,
    )
    .await;
    assert_eq!(nested["userErrors"][0]["code"], "INVALID_MUTATION");
    assert!(shop.bulk_mutations().is_empty());
}

#[tokio::test]
async fn the_storage_takes_a_file_of_megabytes_and_refuses_one_over_20_mib() {
    let shop = shop(100.0).await;
    let line = json!({ "id": "gid://shopify/Customer/1", "tags": ["x".repeat(200)] }).to_string();
    let file = vec![line.as_str(); 15_000].join("\n");
    assert!(file.len() > 3 * 1024 * 1024);
    let path = stage(&shop, "2026-10", &file).await;
    assert_eq!(
        run(&shop, "2026-10", TAGS_ADD, &path).await["userErrors"],
        json!([])
    );

    let body = gql(
        &shop,
        "2026-10",
        "mutation S($input: [StagedUploadInput!]!) { stagedUploadsCreate(input: $input) { stagedTargets { url parameters { name value } } } }",
        json!({ "input": [{ "resource": "BULK_MUTATION_VARIABLES", "filename": "big.jsonl", "mimeType": "text/jsonl", "httpMethod": "POST" }] }),
    )
    .await;
    let target = &body["data"]["stagedUploadsCreate"]["stagedTargets"][0];
    let key = target["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "key")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let big = "x".repeat(20 * 1024 * 1024 + 1);
    let form = format!("--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{key}\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\r\n{big}\r\n--B--\r\n");
    let response = reqwest::Client::new()
        .post(target["url"].as_str().unwrap())
        .header("content-type", "multipart/form-data; boundary=B")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<Code>EntityTooLarge</Code>"));
}
