//! The fake Klaviyo over real HTTP: headers, schema checks, profile upsert semantics, read-back
//! filters and paging, bulk jobs, event deduplication, rate limits and injected faults.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tiersync_mocks::klaviyo::{FakeKlaviyo, KlaviyoLimits, KlaviyoOptions, Limit};

const REVISION: &str = "2026-07-15";

async fn start_with(options: KlaviyoOptions) -> FakeKlaviyo {
    FakeKlaviyo::start(SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("fake Klaviyo starts")
}

async fn start() -> FakeKlaviyo {
    start_with(KlaviyoOptions {
        bulk_job_step: Duration::from_millis(20),
        ..KlaviyoOptions::default()
    })
    .await
}

/// A request with the headers the daemon sends.
fn request(fake: &FakeKlaviyo, method: Method, path: &str) -> RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", fake.base_url()))
        .header(
            "Authorization",
            format!("Klaviyo-API-Key {}", fake.api_key()),
        )
        .header("revision", REVISION)
        .header("Accept", "application/vnd.api+json")
}

async fn send(fake: &FakeKlaviyo, method: Method, path: &str, body: &Value) -> Response {
    request(fake, method, path)
        .header("Content-Type", "application/vnd.api+json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent")
}

async fn get(fake: &FakeKlaviyo, path_and_query: &str) -> Value {
    let response = request(fake, Method::GET, path_and_query)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK, "GET {path_and_query}");
    response.json().await.expect("JSON body")
}

fn import_body(attributes: Value) -> Value {
    json!({"data": {"type": "profile", "attributes": attributes}})
}

async fn import(fake: &FakeKlaviyo, attributes: Value) -> Response {
    send(
        fake,
        Method::POST,
        "/api/profile-import",
        &import_body(attributes),
    )
    .await
}

async fn first_error(response: Response) -> Value {
    let body: Value = response.json().await.expect("JSON error body");
    body["errors"][0].clone()
}

#[tokio::test]
async fn headers_are_checked_like_klaviyo() {
    let fake = start().await;
    let url = format!("{}/api/profiles", fake.base_url());
    let client = reqwest::Client::new();

    let missing = client
        .get(&url)
        .header("revision", REVISION)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(first_error(missing).await["code"], "not_authenticated");

    let wrong = client
        .get(&url)
        .header("Authorization", "Klaviyo-API-Key pk_wrong")
        .header("revision", REVISION)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        first_error(wrong).await["title"],
        "Incorrect authentication credentials."
    );

    let no_revision = client
        .get(&url)
        .header(
            "Authorization",
            format!("Klaviyo-API-Key {}", fake.api_key()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(no_revision.status(), StatusCode::BAD_REQUEST);
    let error = first_error(no_revision).await;
    assert_eq!(
        (&error["code"], &error["source"]["parameter"]),
        (&json!("invalid"), &json!("revision"))
    );

    let text = request(&fake, Method::POST, "/api/profile-import")
        .header("Content-Type", "text/plain")
        .body(import_body(json!({"email": "a@example.com"})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(first_error(text).await["code"], "unsupported_media_type");

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 400, 415]);
}

#[tokio::test]
async fn bodies_are_validated_against_the_spec() {
    let fake = start().await;
    let wrong_type =
        json!({"data": {"type": "profiles", "attributes": {"email": "a@example.com"}}});
    let response = send(&fake, Method::POST, "/api/profile-import", &wrong_type).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = first_error(response).await;
    assert_eq!(error["code"], "invalid");
    assert_eq!(error["source"]["pointer"], "/data/type");

    let response = import(&fake, json!({"email": 42})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        first_error(response).await["source"]["pointer"],
        "/data/attributes/email"
    );

    let response = import(&fake, json!({"email": "not-an-email"})).await;
    assert_eq!(
        first_error(response).await["detail"],
        "Invalid email address"
    );
    assert!(fake.profiles().is_empty());
}

#[tokio::test]
async fn profile_import_creates_then_merges() {
    let fake = start().await;
    let created = import(
        &fake,
        json!({"email": "ann@example.com", "external_id": "1001",
               "properties": {"VIP Tier": "Gold", "Points": 120}}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["ratelimit-limit"], "750");
    assert_eq!(created.headers()["ratelimit-remaining"], "749");
    assert!(created.headers().contains_key("ratelimit-reset"));
    let body: Value = created.json().await.unwrap();
    let id = body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["data"]["type"], "profile");
    assert_eq!(body["data"]["attributes"]["external_id"], "1001");
    assert!(body["data"]["links"]["self"]
        .as_str()
        .unwrap()
        .contains(&id));

    let updated = import(
        &fake,
        json!({"email": "ann@example.com", "properties": {"VIP Tier": "Silver", "Points": null}}),
    )
    .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let body: Value = updated.json().await.unwrap();
    assert_eq!(body["data"]["id"], id.as_str());
    assert_eq!(
        body["data"]["attributes"]["properties"],
        json!({"VIP Tier": "Silver"})
    );

    let profile = fake.profile_by_email("ANN@example.com").expect("stored");
    assert_eq!(profile.external_id.as_deref(), Some("1001"));
    assert_eq!(profile.properties["VIP Tier"], "Silver");

    assert!(fake.set_property("ann@example.com", "VIP Tier", json!("Hand-edited")));
    let read = get(&fake, &format!("/api/profiles/{id}")).await;
    assert_eq!(
        read["data"]["attributes"]["properties"]["VIP Tier"],
        "Hand-edited"
    );

    let patch = json!({"data": {"type": "profile", "id": id, "attributes": {"properties": {"VIP Tier": "Gold"}}}});
    let patched = send(&fake, Method::PATCH, &format!("/api/profiles/{id}"), &patch).await;
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(fake.profiles()[0].properties["VIP Tier"], "Gold");

    import(&fake, json!({"email": "bob@example.com"})).await;
    let conflict = import(
        &fake,
        json!({"email": "bob@example.com", "external_id": "1001"}),
    )
    .await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let error = first_error(conflict).await;
    assert_eq!(error["code"], "duplicate_profile");
    assert!(error["meta"]["duplicate_profile_id"].is_string());
    assert_eq!(fake.count("POST", "/api/profile-import"), 4);
}

#[tokio::test]
async fn profiles_filter_and_page() {
    let fake = start().await;
    for n in 0..5 {
        let response = import(
            &fake,
            json!({"email": format!("p{n}@example.com"), "external_id": format!("{n}")}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    let one = get(
        &fake,
        "/api/profiles?filter=equals(email,%22p3%40example.com%22)",
    )
    .await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["attributes"]["external_id"], "3");
    let by_external = get(&fake, "/api/profiles?filter=equals(external_id,%224%22)").await;
    assert_eq!(
        by_external["data"][0]["attributes"]["email"],
        "p4@example.com"
    );

    let filter = r#"any(email,["p0@example.com","p2@example.com","p4@example.com"])"#;
    let mut url = format!(
        "/api/profiles?filter={}&page[size]=2&fields[profile]=email",
        urlencode(filter)
    );
    let mut emails = Vec::new();
    loop {
        let page = get(&fake, &url).await;
        for profile in page["data"].as_array().unwrap() {
            assert!(profile["attributes"].get("properties").is_none());
            emails.push(profile["attributes"]["email"].as_str().unwrap().to_string());
        }
        match page["links"]["next"].as_str() {
            Some(next) => url = next.trim_start_matches(&fake.base_url()).to_string(),
            None => break,
        }
    }
    assert_eq!(
        emails,
        ["p0@example.com", "p2@example.com", "p4@example.com"]
    );

    let bad = request(&fake, Method::GET, "/api/profiles?page[size]=101")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(first_error(bad).await["source"]["parameter"], "page[size]");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn bulk_import_job_runs_and_reports_failures() {
    let fake = start().await;
    fake.reject_email("blocked@example.com", 400, "This profile is suppressed.");
    let profile = |email: &str| json!({"type": "profile", "attributes": {"email": email, "properties": {"VIP Tier": "Gold"}}});
    let body = json!({"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
        profile("a@example.com"), profile("not-an-email"), profile("blocked@example.com"), profile("b@example.com"),
    ]}}}});
    let response = send(&fake, Method::POST, "/api/profile-bulk-import-jobs", &body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["ratelimit-limit"], "150");
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["data"]["attributes"]["status"], "queued");
    assert_eq!(job["data"]["attributes"]["total_count"], 4);
    let id = job["data"]["id"].as_str().unwrap().to_string();

    let mut attributes = Value::Null;
    for _ in 0..50 {
        let job = get(&fake, &format!("/api/profile-bulk-import-jobs/{id}")).await;
        attributes = job["data"]["attributes"].clone();
        if attributes["status"] == "complete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(attributes["status"], "complete");
    assert_eq!(
        (&attributes["completed_count"], &attributes["failed_count"]),
        (&json!(2), &json!(2))
    );
    assert!(attributes["completed_at"].is_string());
    assert_eq!(fake.profiles().len(), 2);

    let errors = get(
        &fake,
        &format!("/api/profile-bulk-import-jobs/{id}/import-errors"),
    )
    .await;
    let errors = errors["data"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["type"], "import-error");
    assert_eq!(errors[0]["attributes"]["code"], "invalid");
    assert_eq!(
        errors[0]["attributes"]["source"]["pointer"],
        "/data/attributes/profiles/data/1/attributes/email"
    );
    assert_eq!(
        errors[1]["attributes"]["detail"],
        "This profile is suppressed."
    );
    assert_eq!(
        errors[1]["attributes"]["original_payload"]["attributes"]["email"],
        "blocked@example.com"
    );
}

#[tokio::test]
async fn events_are_deduplicated_by_unique_id() {
    let fake = start().await;
    let event = json!({"data": {"type": "event", "attributes": {
        "properties": {"tier": "Gold"},
        "unique_id": "tier-change-1001-gold",
        "metric": {"data": {"type": "metric", "attributes": {"name": "VIP Tier Changed"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "ann@example.com", "external_id": "1001"}}},
    }}});
    for _ in 0..2 {
        let response = send(&fake, Method::POST, "/api/events", &event).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let events = fake.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].metric, "VIP Tier Changed");
    assert_eq!(events[0].email.as_deref(), Some("ann@example.com"));
    assert_eq!(events[0].properties["tier"], "Gold");
    assert!(fake.profile_by_email("ann@example.com").is_some());

    let mut long_name = event.clone();
    long_name["data"]["attributes"]["metric"]["data"]["attributes"]["name"] =
        json!("x".repeat(128));
    let response = send(&fake, Method::POST, "/api/events", &long_name).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn burst_limit_answers_429_until_the_window_resets() {
    let _clock = crate::timing::timing_sensitive().await; // four requests in one 1 s window
    let fake = start_with(KlaviyoOptions {
        limits: KlaviyoLimits {
            profiles: Limit::new(3, 100),
            ..KlaviyoLimits::default()
        },
        ..KlaviyoOptions::default()
    })
    .await;
    for _ in 0..3 {
        let response = request(&fake, Method::GET, "/api/profiles")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let throttled = request(&fake, Method::GET, "/api/profiles")
        .send()
        .await
        .unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!throttled.headers().contains_key("ratelimit-limit"));
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1);
    let error = first_error(throttled).await;
    assert_eq!(
        (&error["status"], &error["code"]),
        (&json!(429), &json!("throttled"))
    );
    assert_eq!(
        error["detail"],
        "Request was throttled. Expected available in 1 seconds."
    );

    // Another group is unaffected.
    let event_check = request(&fake, Method::GET, "/api/profile-bulk-import-jobs")
        .send()
        .await
        .unwrap();
    assert_eq!(event_check.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let recovered = request(&fake, Method::GET, "/api/profiles")
        .send()
        .await
        .unwrap();
    assert_eq!(recovered.status(), StatusCode::OK);
    // The 429 did not count: 3 + 1 of 100 used.
    assert_eq!(recovered.headers()["ratelimit-remaining"], "96");
}

#[tokio::test]
async fn injected_faults_answer_the_next_requests() {
    let fake = start().await;
    fake.reject_next(2, 503, None);
    for _ in 0..2 {
        let response = import(&fake, json!({"email": "a@example.com"})).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(first_error(response).await["status"], 503);
    }
    assert_eq!(
        import(&fake, json!({"email": "a@example.com"}))
            .await
            .status(),
        StatusCode::CREATED
    );

    fake.reject_next(1, 429, Some(7));
    let response = import(&fake, json!({"email": "a@example.com"})).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(first_error(response).await["code"], "throttled");

    fake.reject_email("a@example.com", 400, "Profile is suppressed.");
    let response = import(
        &fake,
        json!({"email": "a@example.com", "properties": {"x": 1}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = first_error(response).await;
    assert_eq!(
        (&error["code"], &error["detail"]),
        (&json!("invalid"), &json!("Profile is suppressed."))
    );

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 201, 429, 400]);
    fake.clear_requests();
    assert!(fake.requests().is_empty());
}

/// Polls a bulk import job until it completes; returns its attributes.
async fn finished_job(fake: &FakeKlaviyo, created: Response) -> Value {
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    let job: Value = created.json().await.unwrap();
    let path = format!(
        "/api/profile-bulk-import-jobs/{}",
        job["data"]["id"].as_str().unwrap()
    );
    for _ in 0..100 {
        let attributes = get(fake, &path).await["data"]["attributes"].clone();
        if attributes["status"] == "complete" {
            return attributes;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("bulk import job {path} did not complete");
}

fn bulk_job(profiles: Vec<Value>) -> Value {
    json!({"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}})
}

#[tokio::test]
async fn a_bulk_job_leaves_a_null_property_and_unset_removes_it() {
    let fake = start().await;
    let sent = json!({"email": "ann@example.com",
        "properties": {"vip_next_tier": "Gold", "vip_spend_to_next": 950.0, "vip_tier": "Silver"}});
    assert_eq!(import(&fake, sent).await.status(), StatusCode::CREATED);

    let nulls = json!({"type": "profile", "attributes": {"email": "ann@example.com",
        "properties": {"vip_tier": "Gold", "vip_next_tier": null, "vip_spend_to_next": null}}});
    let created = send(
        &fake,
        Method::POST,
        "/api/profile-bulk-import-jobs",
        &bulk_job(vec![nulls]),
    )
    .await;
    let job = finished_job(&fake, created).await;
    assert_eq!(job["completed_count"], 1);
    let kept = fake.profile_by_email("ann@example.com").unwrap().properties;
    assert_eq!(kept["vip_tier"], "Gold", "non-null values are applied");
    assert_eq!(
        kept["vip_next_tier"], "Gold",
        "a null in a bulk job clears nothing"
    );
    assert_eq!(kept["vip_spend_to_next"], 950.0);

    let unset = json!({"type": "profile", "attributes": {"email": "ann@example.com",
        "properties": {"vip_tier": "Platinum"}},
        "meta": {"patch_properties": {"unset": ["vip_next_tier", "vip_spend_to_next"]}}});
    let created = send(
        &fake,
        Method::POST,
        "/api/profile-bulk-import-jobs",
        &bulk_job(vec![unset]),
    )
    .await;
    finished_job(&fake, created).await;
    let properties = fake.profile_by_email("ann@example.com").unwrap().properties;
    assert_eq!(
        properties,
        *json!({"vip_tier": "Platinum"}).as_object().unwrap()
    );

    // profile-import honours both: `null` and `unset`.
    fake.set_property("ann@example.com", "a", json!(1));
    fake.set_property("ann@example.com", "b", json!(2));
    let body = json!({"data": {"type": "profile",
        "attributes": {"email": "ann@example.com", "properties": {"a": null}},
        "meta": {"patch_properties": {"unset": "b"}}}});
    let response = send(&fake, Method::POST, "/api/profile-import", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let properties = fake.profile_by_email("ann@example.com").unwrap().properties;
    assert!(!properties.contains_key("a") && !properties.contains_key("b"));
}

/// Every endpoint tiersync calls, with the scopes Klaviyo's spec (`x-klaviyo-scopes`)
/// requires for it.
const SCOPED_ENDPOINTS: [(&str, &str, &[&str]); 6] = [
    ("POST", "/api/profile-import", &["profiles:write"]),
    ("GET", "/api/profiles", &["profiles:read"]),
    (
        "POST",
        "/api/profile-bulk-import-jobs",
        &["lists:write", "profiles:write"],
    ),
    (
        "GET",
        "/api/profile-bulk-import-jobs/{job}",
        &["lists:read", "profiles:read"],
    ),
    (
        "GET",
        "/api/profile-bulk-import-jobs/{job}/import-errors",
        &["profiles:read"],
    ),
    ("POST", "/api/events", &["events:write"]),
];

#[tokio::test]
async fn each_endpoint_refuses_a_key_lacking_one_of_its_scopes() {
    let fake = start().await;
    let profile = json!({"type": "profile", "attributes": {"email": "ann@example.com"}});
    let job = send(
        &fake,
        Method::POST,
        "/api/profile-bulk-import-jobs",
        &bulk_job(vec![profile]),
    )
    .await;
    let job: Value = job.json().await.unwrap();
    let job_id = job["data"]["id"].as_str().unwrap().to_string();
    let event = json!({"data": {"type": "event", "attributes": {
        "properties": {}, "metric": {"data": {"type": "metric", "attributes": {"name": "VIP Tier Entered"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "ann@example.com"}}}}}});

    let call = |key: String, method: &'static str, path: String| {
        let fake = fake.clone();
        let body = match path.as_str() {
            "/api/profile-import" => Some(import_body(json!({"email": "ann@example.com"}))),
            "/api/profile-bulk-import-jobs" => Some(bulk_job(vec![
                json!({"type": "profile", "attributes": {"email": "ann@example.com"}}),
            ])),
            "/api/events" => Some(event.clone()),
            _ => None,
        };
        async move {
            let mut request = reqwest::Client::new()
                .request(
                    method.parse().unwrap(),
                    format!("{}{path}", fake.base_url()),
                )
                .header("Authorization", format!("Klaviyo-API-Key {key}"))
                .header("revision", REVISION)
                .header("Accept", "application/vnd.api+json");
            if let Some(body) = body {
                request = request
                    .header("Content-Type", "application/vnd.api+json")
                    .body(body.to_string());
            }
            request.send().await.expect("request sent")
        }
    };

    for (method, template, scopes) in SCOPED_ENDPOINTS {
        let path = template.replace("{job}", &job_id);
        for missing in scopes {
            let held: Vec<&str> = scopes.iter().copied().filter(|s| s != missing).collect();
            // Every other scope tiersync uses, so only `missing` is absent.
            let mut others: Vec<&str> = SCOPED_ENDPOINTS
                .iter()
                .flat_map(|(_, _, s)| s.iter().copied())
                .filter(|s| s != missing)
                .collect();
            others.extend(held);
            let response = call(fake.create_key(&others), method, path.clone()).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{method} {template} without {missing}"
            );
            let error = first_error(response).await;
            assert_eq!(error["code"], "permission_denied", "{method} {template}");
            assert_eq!(
                error["title"],
                "You do not have permission to perform this action."
            );
        }
        let exact = call(fake.create_key(scopes), method, path.clone()).await;
        assert!(
            exact.status().is_success(),
            "{method} {template} with exactly {scopes:?}: {}",
            exact.status()
        );
    }
    assert_eq!(fake.profiles().len(), 1, "refused writes changed nothing");
}
