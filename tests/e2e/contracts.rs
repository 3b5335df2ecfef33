//! Every request tiersync sends, checked against the vendors' own contracts: GraphQL documents
//! against Shopify's published Admin schema, JSON bodies against Klaviyo's official OpenAPI
//! spec. (The fakes check the same on every request they receive; these tests pin it down
//! without a server.)

use std::sync::OnceLock;

use apollo_compiler::{ExecutableDocument, Schema};
use chrono::NaiveDate;
use rust_decimal_macros::dec;
use tiersync::model::ProfileState;
use tiersync::sinks::klaviyo::{bulk_job_body, event_body, import_body};
use tiersync::vendors::shopify::queries;
use tiersync_mocks::klaviyo::{
    required_scopes, validate_request_body, BULK_IMPORT, CREATE_EVENT, PROFILE_IMPORT,
};

type Valid = apollo_compiler::validation::Valid<Schema>;

/// The schema of 2026-10, the version the daemon sends by default (`shopify.api_version`).
fn schema() -> &'static Valid {
    static SCHEMA: OnceLock<Valid> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::parse_and_validate(
            include_str!("../../mocks/contracts/shopify-admin-2026-10.graphql"),
            "shopify-admin-2026-10.graphql",
        )
        .expect("the vendored schema is valid")
    })
}

/// The schema of 2025-01, the oldest version the documents are kept valid for.
fn schema_2025_01() -> &'static Valid {
    static SCHEMA: OnceLock<Valid> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::parse_and_validate(
            include_str!("../../mocks/contracts/shopify-admin-2025-01.graphql"),
            "shopify-admin-2025-01.graphql",
        )
        .expect("the vendored schema is valid")
    })
}

#[test]
fn every_shopify_document_is_valid_against_the_admin_schemas() {
    assert_eq!(
        tiersync::Settings::from_toml(
            "[shopify]\nshop = \"a\"\naccess_token = \"x\"\n[klaviyo]\napi_key = \"k\""
        )
        .unwrap()
        .shopify
        .api_version,
        "2026-10",
        "validate against the schema of the version the daemon sends"
    );
    for (version, schema) in [("2026-10", schema()), ("2025-01", schema_2025_01())] {
        for (name, document) in queries::all() {
            ExecutableDocument::parse_and_validate(schema, &document, format!("{name}.graphql"))
                .unwrap_or_else(|e| {
                    panic!("{name} is not valid against Shopify's {version} schema:\n{e}")
                });
        }
    }
    // Sent only from 2026-01: valid there, and (the reason for the gate) not before.
    for (name, document) in queries::since_2026_01() {
        ExecutableDocument::parse_and_validate(schema(), &document, format!("{name}.graphql"))
            .unwrap_or_else(|e| {
                panic!("{name} is not valid against Shopify's 2026-10 schema:\n{e}")
            });
        assert!(
            ExecutableDocument::parse_and_validate(schema_2025_01(), &document, "old.graphql")
                .is_err(),
            "{name} is valid in 2025-01 too: it need not wait for 2026-01"
        );
    }
}

#[test]
fn the_schema_check_catches_a_wrong_field() {
    let wrong = queries::ORDERS_PAGE.replace("cancelledAt", "cancelledOn");
    let error = ExecutableDocument::parse_and_validate(schema(), &wrong, "wrong.graphql")
        .expect_err("a field Order does not have")
        .to_string();
    assert!(error.contains("cancelledOn"), "{error}");
}

#[test]
fn the_orders_page_query_fits_shopifys_single_query_cost_limit() {
    assert!(queries::orders_page_cost(queries::MAX_ORDERS_PAGE) <= 1000.0);
    assert!(queries::orders_page_cost(queries::MAX_ORDERS_PAGE + 1) > 1000.0);
}

fn profile(email: Option<&str>, tier: &str, since: Option<NaiveDate>) -> ProfileState {
    ProfileState {
        email: email.map(str::to_string),
        external_id: "7001".into(),
        vip_tier: tier.into(),
        vip_state: if since.is_some() { "active" } else { "none" }.into(),
        vip_tier_since: since,
        vip_peak_tier: since.map(|_| tier.to_string()),
        clv_historic: dec!(1234.50),
        clv_predicted: dec!(310.25),
        clv_blended: dec!(1389.63),
        loyalty_points: 1200,
        orders_count: 7,
        rfm_segment: Some("Can't Lose Them".into()),
        vip_next_tier: Some("Platinum".into()),
        vip_spend_to_next: since.map(|_| dec!(3610.37)),
        suppress_discounts: since.is_some(),
    }
}

#[test]
fn every_klaviyo_body_is_valid_against_the_official_spec() {
    let since = NaiveDate::from_ymd_opt(2026, 11, 2);
    let profiles = [
        profile(Some("a@example.com"), "Gold", since),
        profile(None, "None", None),
        profile(Some("zoë@example.com"), "Silver", since),
    ];
    for p in &profiles {
        validate_request_body(PROFILE_IMPORT, &import_body(p))
            .unwrap_or_else(|e| panic!("profile-import body for {p:?}: {e}"));
    }
    validate_request_body(
        BULK_IMPORT,
        &serde_json::from_slice(&bulk_job_body(&profiles)).expect("the bulk job body is JSON"),
    )
    .unwrap_or_else(|e| panic!("bulk import job body: {e}"));
}

#[test]
fn every_klaviyo_call_names_the_scopes_the_spec_requires() {
    use tiersync::sinks::klaviyo::CALLS;
    for call in CALLS {
        let path = call.path.replace('{', "x").replace('}', "");
        let spec = required_scopes(call.method.as_str(), &path)
            .unwrap_or_else(|| panic!("the spec has no {} {}", call.method, call.path));
        let mut ours: Vec<&str> = call.scopes.to_vec();
        ours.sort_unstable();
        let mut theirs: Vec<&str> = spec.iter().map(String::as_str).collect();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{}", call.name);
    }
}

#[test]
fn the_readme_and_default_config_ask_for_every_scope_tiersync_needs() {
    let readme = include_str!("../../README.md");
    let config = include_str!("../../config/default.toml");
    for call in tiersync::sinks::klaviyo::CALLS {
        for scope in call.scopes {
            assert!(
                readme.contains(&format!("`{scope}`")),
                "README lacks {scope}"
            );
            assert!(config.contains(scope), "config/default.toml lacks {scope}");
        }
    }
}

#[test]
fn the_spec_check_catches_a_wrong_type() {
    let mut body = import_body(&profile(Some("a@example.com"), "Gold", None));
    body["data"]["type"] = "profiles".into();
    let error = validate_request_body(PROFILE_IMPORT, &body).expect_err("wrong resource type");
    assert!(error.contains("profile"), "{error}");
}

#[test]
fn the_event_body_is_valid_against_the_official_spec() {
    let event = crate::common::event_entry(7001, 1, "VIP Tier Entered");
    validate_request_body(CREATE_EVENT, &event_body(&event))
        .unwrap_or_else(|e| panic!("event body: {e}"));
}

#[test]
fn the_storefront_write_document_is_valid_and_within_the_cost_limit() {
    use tiersync::config::Settings;
    use tiersync::model::StorefrontState;
    use tiersync::sinks::shopify::{build, CustomerWrite};
    use tiersync::store::{Acknowledged, OutboxEntry};

    let settings = Settings::from_toml(
        "[shopify]\nshop = \"acme\"\naccess_token = \"x\"\n[klaviyo]\napi_key = \"k\"",
    )
    .expect("settings")
    .storefront;
    let state = |tag: &str, tier: &str| StorefrontState {
        tag: Some(tag.into()),
        vip_tier: tier.into(),
        vip_state: "active".into(),
        vip_peak_tier: Some("Gold".into()),
        clv_blended: dec!(1389.63),
    };
    let held = Acknowledged {
        version: 1,
        state: state("vip:gold", "Gold"),
    };
    let writes: Vec<CustomerWrite> = (0..settings.customers_per_call)
        .map(|i| {
            let entry = OutboxEntry {
                customer_id: format!("gid://shopify/Customer/{i}"),
                version: 2,
                state: state("vip:silver", "Silver"),
                enqueued_at: chrono::Utc::now(),
                failed: None,
            };
            // Every customer both gains and loses a tag: the most expensive document.
            CustomerWrite::plan(&entry, Some(&held.state), &settings)
        })
        .collect();
    let document = build(&writes);
    assert!(document.cost <= 1000.0, "cost {}", document.cost);
    for schema in [schema(), schema_2025_01()] {
        ExecutableDocument::parse_and_validate(schema, &document.query, "storefront.graphql")
            .unwrap_or_else(|e| panic!("the storefront document is not valid:\n{e}"));
    }
    assert!(
        document.query.contains("tagsAdd")
            && document.query.contains("tagsRemove")
            && document.query.contains("metafieldsSet")
    );
}
