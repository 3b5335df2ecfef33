//! The fake Smile.io and LoyaltyLion over real HTTP: Bearer auth, cursor paging with
//! `updated_at_min`, per-second rate limits, Smile's negative-balance refusal, LoyaltyLion's
//! PATCH refusing anything but `birthday`/`blocked`, and loading generated members.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tiersync_mocks::generator::{generate, loyalty_members, GenConfig};
use tiersync_mocks::loyaltylion::{FakeLoyaltyLion, LoyaltyLionCustomer, LoyaltyLionOptions};
use tiersync_mocks::smile::{FakeSmile, SmileCustomer, SmileOptions, SmileState};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn smile() -> FakeSmile {
    FakeSmile::start(loopback(), SmileOptions::default())
        .await
        .expect("fake Smile starts")
}

async fn loyaltylion() -> FakeLoyaltyLion {
    FakeLoyaltyLion::start(loopback(), LoyaltyLionOptions::default())
        .await
        .expect("fake LoyaltyLion starts")
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, day, 12, 0, 0)
        .single()
        .expect("valid date")
}

async fn get(url: String, token: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Fires `n` GETs at once and returns how many got 200 and how many 429.
async fn burst(url: String, token: String, n: usize) -> (usize, usize) {
    let client = Client::new();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let request = client.get(&url).bearer_auth(&token);
            tokio::spawn(async move { request.send().await.expect("sent").status() })
        })
        .collect();
    let mut counts = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            StatusCode::OK => counts.0 += 1,
            StatusCode::TOO_MANY_REQUESTS => counts.1 += 1,
            other => panic!("unexpected {other}"),
        }
    }
    counts
}

// ---------------------------------------------------------------------------------- Smile

fn smile_customer(email: &str, day: u32, points: i64) -> SmileCustomer {
    SmileCustomer {
        email: email.to_owned(),
        state: SmileState::Member,
        points_balance: points,
        created_at: at(1),
        updated_at: at(day),
        ..SmileCustomer::default()
    }
}

#[tokio::test]
async fn smile_requires_the_bearer_token() {
    let fake = smile().await;
    let url = format!("{}/v1/customers", fake.base_url());
    let anonymous = Client::new().get(&url).send().await.expect("sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.expect("JSON error");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    let (status, _) = get(url.clone(), "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let basic = Client::new()
        .get(&url)
        .basic_auth(fake.api_token(), Some("secret"))
        .send()
        .await
        .expect("sent");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = get(url, &fake.api_token()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"customers": [], "metadata": {"next_cursor": null, "previous_cursor": null}})
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 200]);
}

#[tokio::test]
async fn smile_pages_updated_customers_once_newest_id_first() {
    let fake = smile().await;
    let mut expected = Vec::new();
    for n in 0..7u32 {
        let day = if n % 3 == 0 { 2 } else { 10 + n };
        let stored =
            fake.upsert_customer(smile_customer(&format!("Member{n}@Example.COM"), day, 100));
        if day >= 10 {
            expected.push(stored.id);
        }
    }
    expected.reverse();
    assert!(fake.set_tier("member1@example.com", Some("Silver")));
    let token = fake.api_token();
    let first = format!(
        "{}/v1/customers?updated_at_min=2026-10-05T00:00:00.000Z&limit=2&include=vip_status",
        fake.base_url()
    );
    let (status, mut body) = get(first, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["metadata"]["previous_cursor"].is_null());
    let mut seen = Vec::new();
    let mut first_email = String::new();
    loop {
        for customer in body["customers"].as_array().expect("customers") {
            let email = customer["email"].as_str().expect("email");
            if first_email.is_empty() {
                first_email = email.to_owned();
            }
            assert_eq!(email, email.to_lowercase());
            assert_eq!(customer["state"], "member");
            assert!(customer["vip_status"].is_object(), "{customer}");
            seen.push(customer["id"].as_u64().expect("id"));
        }
        // A customer already seen changes while the client pages: it must not come back.
        assert!(fake.set_points(&first_email, 150 + seen.len() as i64));
        let Some(cursor) = body["metadata"]["next_cursor"].as_str() else {
            break;
        };
        // Smile's cursors are standard base64 (`+`, `/`, `=`), so they must be URL-encoded.
        let cursor: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
        let url = format!(
            "{}/v1/customers?cursor={cursor}&limit=2&include=vip_status",
            fake.base_url()
        );
        let (status, page) = get(url, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        body = page;
        assert!(body["metadata"]["previous_cursor"].is_string());
    }
    assert_eq!(seen, expected);
    let silver = fake.customers_by_email("member1@example.com")[0].clone();
    assert_eq!(silver.vip_tier_id, Some(fake.vip_tiers()[1].id));
    let (_, one) = get(
        format!(
            "{}/v1/customers/{}?include=vip_status.vip_tier",
            fake.base_url(),
            silver.id
        ),
        &token,
    )
    .await;
    assert_eq!(one["customer"]["vip_status"]["vip_tier"]["name"], "Silver");
    let (status, _) = get(
        format!("{}/v1/customers?limit=251", fake.base_url()),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn smile_lists_only_vip_status_and_needs_encoded_cursors() {
    let fake = smile().await;
    for n in 0..3 {
        fake.upsert_customer(smile_customer(&format!("m{n}@example.com"), 10, 600));
    }
    assert!(fake.set_tier("m1@example.com", Some("Silver")));
    let token = fake.api_token();
    // The list ignores the nested tier include (documented for one customer only)…
    let (status, body) = get(
        format!(
            "{}/v1/customers?limit=1&include=vip_status.vip_tier",
            fake.base_url()
        ),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["customers"][0].get("vip_status").is_none(), "{body}");
    // …and names the tier by id under `include=vip_status`; `GET /v1/vip_tiers` names it.
    let (_, listed) = get(
        format!(
            "{}/v1/customers?email=m1@example.com&include=vip_status",
            fake.base_url()
        ),
        &token,
    )
    .await;
    let silver = &listed["customers"][0]["vip_status"];
    assert!(silver.get("vip_tier").is_none(), "{silver}");
    let (_, tiers) = get(format!("{}/v1/vip_tiers", fake.base_url()), &token).await;
    let named: Vec<&Value> = tiers["vip_tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .filter(|t| t["id"] == silver["vip_tier_id"])
        .collect();
    assert_eq!(named[0]["name"], "Silver", "{tiers}");

    let cursor = body["metadata"]["next_cursor"]
        .as_str()
        .expect("a next page");
    assert!(
        cursor.contains('+') && cursor.contains('/') && cursor.ends_with('='),
        "{cursor}"
    );
    let raw = format!("{}/v1/customers?limit=1&cursor={cursor}", fake.base_url());
    let (status, refused) = get(raw, &token).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "`+` read as a space: {refused}"
    );
    let encoded: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
    let (status, page) = get(
        format!("{}/v1/customers?limit=1&cursor={encoded}", fake.base_url()),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["customers"][0]["email"], "m1@example.com");
}

#[tokio::test]
async fn smile_refuses_a_negative_balance() {
    let fake = smile().await;
    let customer = fake.upsert_customer(smile_customer("ann@example.com", 3, 50));
    let url = format!("{}/v1/points_transactions", fake.base_url());
    let post = |change: i64| {
        Client::new()
            .post(&url)
            .bearer_auth(fake.api_token())
            .json(&json!({"points_transaction": {
                "customer_id": customer.id,
                "points_change": change,
                "description": "Points correction",
            }}))
            .send()
    };
    let refused = post(-80).await.expect("sent");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("negative")),
        "{body}"
    );
    assert_eq!(fake.customers()[0].points_balance, 50);
    let done = post(-50).await.expect("sent");
    assert_eq!(done.status(), StatusCode::OK);
    let body: Value = done.json().await.expect("JSON");
    assert_eq!(body["points_transaction"]["points_change"], -50);
    assert_eq!(fake.customers()[0].points_balance, 0);
    let (_, listed) = get(
        format!(
            "{url}?customer_id={}&updated_at_min=2026-01-01T00:00:00Z",
            customer.id
        ),
        &fake.api_token(),
    )
    .await;
    let changes: Vec<i64> = listed["points_transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|t| t["points_change"].as_i64().expect("change"))
        .collect();
    assert_eq!(changes, [-50]);
}

#[tokio::test]
async fn smile_throttles_past_ten_per_second_then_recovers() {
    let _clock = crate::timing::timing_sensitive().await; // 14 requests in one 1 s window
    let fake = smile().await;
    let url = format!("{}/v1/vip_tiers", fake.base_url());
    let (ok, throttled) = burst(url.clone(), fake.api_token(), 14).await;
    assert_eq!((ok, throttled), (10, 4));
    let throttled_body = Client::new()
        .get(&url)
        .bearer_auth(fake.api_token())
        .send()
        .await
        .expect("sent");
    assert_eq!(throttled_body.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled_body.headers().get("retry-after").is_none());
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (status, body) = get(url, &fake.api_token()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["vip_tiers"][2]["name"], "Gold");
    fake.reject_next(1, 503);
    let (status, _) = get(
        format!("{}/v1/customers", fake.base_url()),
        &fake.api_token(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

// ---------------------------------------------------------------------------- LoyaltyLion

fn lion_customer(merchant_id: u64, day: u32) -> LoyaltyLionCustomer {
    LoyaltyLionCustomer {
        merchant_id: merchant_id.to_string(),
        email: format!("Shopper{merchant_id}@Example.com"),
        points_approved: 10,
        enrolled: true,
        created_at: at(1),
        updated_at: at(day),
        ..LoyaltyLionCustomer::default()
    }
}

#[tokio::test]
async fn loyaltylion_requires_a_bearer_key() {
    let fake = loyaltylion().await;
    let url = format!("{}/v2/customers", fake.base_url());
    let anonymous = Client::new().get(&url).send().await.expect("sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.expect("JSON");
    assert!(body["error"]["message"].is_string(), "{body}");
    let basic = Client::new()
        .get(&url)
        .basic_auth(fake.api_key(), Some("secret"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        basic.status(),
        StatusCode::UNAUTHORIZED,
        "Basic auth is deprecated"
    );
    let (status, body) = get(url, &fake.api_key()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"customers": [], "cursor": {"prev": null, "next": null}})
    );
}

#[tokio::test]
async fn loyaltylion_pages_with_the_cursor_and_limit_only() {
    let fake = loyaltylion().await;
    let mut expected = Vec::new();
    for n in 0..5u64 {
        let day = if n == 2 { 2 } else { 10 + n as u32 };
        let stored = fake.upsert_customer(lion_customer(7_000_000_001 + n, day));
        if day >= 10 {
            expected.push(stored.id);
        }
    }
    expected.reverse();
    assert!(fake.set_tier("shopper7000000004@example.com", Some("Gold")));
    let key = fake.api_key();
    let (status, mut body) = get(
        format!(
            "{}/v2/customers?updated_at_min=2026-10-05T00:00:00Z&limit=2",
            fake.base_url()
        ),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["cursor"]["prev"].is_null());
    // Beside a cursor only `limit` is read: other filters are ignored (the cursor carries the
    // first request's), and without `limit` the page has the default size of 100.
    let next = body["cursor"]["next"].as_str().expect("a next page");
    let (status, rest) = get(
        format!(
            "{}/v2/customers?cursor={next}&updated_at_min=2030-01-01T00:00:00Z",
            fake.base_url()
        ),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    let rest: Vec<u64> = rest["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .map(|c| c["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(rest, expected[2..], "the rest in one default-sized page");
    let mut seen = Vec::new();
    loop {
        let page: Vec<_> = body["customers"].as_array().expect("customers").clone();
        assert!(page.len() <= 2, "limit repeated on every page: {page:?}");
        for customer in &page {
            seen.push(customer["id"].as_u64().expect("id"));
            let membership = &customer["loyalty_tier_membership"];
            if customer["merchant_id"] == "7000000004" {
                assert_eq!(membership["loyalty_tier"]["name"], "Gold");
                assert_eq!(membership["manual"], false);
            } else {
                assert!(membership.is_null(), "{customer}");
            }
        }
        let Some(next) = body["cursor"]["next"].as_str() else {
            break;
        };
        let (status, page) = get(
            format!("{}/v2/customers?cursor={next}&limit=2", fake.base_url()),
            &key,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page["cursor"]["prev"].is_string());
        body = page;
    }
    assert_eq!(seen, expected);
    let (status, body) = get(format!("{}/v2/customers?limit=501", fake.base_url()), &key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["details"]["limit"].is_string(), "{body}");
}

#[tokio::test]
async fn loyaltylion_patch_accepts_only_birthday_and_blocked() {
    let fake = loyaltylion().await;
    fake.upsert_customer(lion_customer(7_000_000_001, 10));
    let url = format!("{}/v2/customers/7000000001", fake.base_url());
    let patch = |body: Value| {
        Client::new()
            .patch(&url)
            .bearer_auth(fake.api_key())
            .json(&body)
            .send()
    };
    for refused in [
        json!({"customer": {"loyalty_tier_membership": {"loyalty_tier": {"name": "Gold"}}}}),
        json!({"customer": {"loyalty_tier": "Gold", "birthday": "1990-05-27"}}),
        json!({"customer": {"points_approved": 500}}),
        json!({"customer": {"blocked": "yes"}}),
        json!({"blocked": true}),
    ] {
        let response = patch(refused.clone()).await.expect("sent");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused}");
        let body: Value = response.json().await.expect("JSON");
        assert!(body["error"]["details"].is_object(), "{body}");
    }
    let unchanged = fake.customer("7000000001").expect("stored");
    assert_eq!((unchanged.birthday, unchanged.blocked), (None, false));
    assert_eq!(unchanged.updated_at, at(10));
    let response = patch(json!({"customer": {"birthday": "1990-05-27", "blocked": true}}))
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["customer"]["birthday"], "1990-05-27");
    assert_eq!(body["customer"]["blocked"], true);
    assert!(fake.customer("7000000001").expect("stored").updated_at > at(10));
    let missing = Client::new()
        .patch(format!("{}/v2/customers/404", fake.base_url()))
        .bearer_auth(fake.api_key())
        .json(&json!({"customer": {"blocked": true}}))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn loyaltylion_throttles_past_twenty_per_second_then_recovers() {
    let _clock = crate::timing::timing_sensitive().await; // 26 requests in one 1 s window
    let fake = loyaltylion().await;
    let url = format!("{}/v2/customers", fake.base_url());
    let (ok, throttled) = burst(url.clone(), fake.api_key(), 26).await;
    assert_eq!((ok, throttled), (20, 6));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (status, _) = get(url, &fake.api_key()).await;
    assert_eq!(status, StatusCode::OK);
}

// -------------------------------------------------------------------------------- Loading

#[tokio::test]
async fn both_fakes_load_generated_members() {
    let store = generate(&GenConfig {
        customers: 300,
        ..GenConfig::default()
    });
    let members = loyalty_members(&store, 11);
    let (smile, lion) = (smile().await, loyaltylion().await);
    smile.load(&store, &members);
    lion.load(&store, &members);
    assert_eq!(smile.customers().len(), members.len());
    assert_eq!(lion.customers().len(), members.len());
    let smile_tiers = smile.vip_tiers();
    for (email, points, tier) in &members {
        let in_smile = &smile.customers_by_email(email)[0];
        assert_eq!(in_smile.points_balance, *points);
        let smile_tier = in_smile
            .vip_tier_id
            .and_then(|id| smile_tiers.iter().find(|t| t.id == id))
            .map(|t| t.name.clone());
        assert_eq!(&smile_tier, tier);
        let shopify = store
            .customers
            .iter()
            .find(|c| c.email.as_deref() == Some(email.as_str()))
            .expect("a store customer");
        let in_lion = lion
            .customer(&shopify.id.to_string())
            .expect("by merchant id");
        assert_eq!(in_lion.points_approved, *points);
        assert_eq!(in_lion.updated_at, shopify.updated_at);
        let lion_tier = in_lion.tier_membership.map(|m| m.tier_id);
        let expected = tier
            .as_deref()
            .and_then(|name| lion.tiers().into_iter().find(|t| t.name == name))
            .map(|t| t.id);
        assert_eq!(lion_tier, expected);
    }
}
