//! The profile payload: property names merchants build segments and flows on.
//!
//! A property the state has no value for (no level: no `vip_tier_since`; the top level: no
//! `vip_next_tier` nor `vip_spend_to_next`) is removed with `meta.patch_properties.unset`,
//! never sent as `null`: profile-import clears a `null`, but a bulk import job ignores it and
//! keeps the old value (Klaviyo's bulk import guide: only fields provided with non-null
//! values are updated). `unset` is honoured by both, so the same resource goes either way,
//! and a profile acknowledged without a property holds none — which read-back reads as
//! absent, so reconcile sees no drift.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::model::ProfileState;

/// Every property tiersync owns, with its value for this state (`None`: remove it). Names are
/// the README's.
fn properties(p: &ProfileState) -> [(&'static str, Option<Value>); 13] {
    let text = |v: &Option<String>| v.as_ref().map(|s| json!(s));
    [
        ("vip_tier", Some(json!(p.vip_tier))),
        ("vip_state", Some(json!(p.vip_state))),
        (
            "vip_tier_since",
            p.vip_tier_since
                .map(|d| json!(d.format("%Y-%m-%d").to_string())),
        ),
        ("vip_peak_tier", text(&p.vip_peak_tier)),
        ("clv_historic", Some(json!(number(p.clv_historic)))),
        ("clv_predicted", Some(json!(number(p.clv_predicted)))),
        ("clv_blended", Some(json!(number(p.clv_blended)))),
        ("loyalty_points", Some(json!(p.loyalty_points))),
        ("orders_count", Some(json!(p.orders_count))),
        ("rfm_segment", text(&p.rfm_segment)),
        ("vip_next_tier", text(&p.vip_next_tier)),
        (
            "vip_spend_to_next",
            p.vip_spend_to_next.map(|v| json!(number(v))),
        ),
        ("suppress_discounts", Some(json!(p.suppress_discounts))),
    ]
}

/// Money as a JSON number with cents (Klaviyo stores numbers, not decimal strings).
fn number(amount: Decimal) -> f64 {
    amount.round_dp(2).to_f64().unwrap_or(0.0)
}

/// The profile resource for this state: identifiers and the properties that have a value as
/// `attributes`, the others named in `meta.patch_properties.unset`.
pub fn profile_resource(profile: &ProfileState) -> Value {
    let mut attributes = Map::new();
    if let Some(email) = &profile.email {
        attributes.insert("email".into(), json!(email));
    }
    attributes.insert("external_id".into(), json!(profile.external_id));
    let mut set = Map::new();
    let mut unset = Vec::new();
    for (name, value) in properties(profile) {
        match value {
            Some(value) => {
                set.insert(name.into(), value);
            }
            None => unset.push(name),
        }
    }
    attributes.insert("properties".into(), Value::Object(set));
    let mut resource = json!({ "type": "profile", "attributes": attributes });
    if !unset.is_empty() {
        resource["meta"] = json!({ "patch_properties": { "unset": unset } });
    }
    resource
}

/// The body of `POST /api/profile-import`.
pub fn import_body(profile: &ProfileState) -> Value {
    json!({ "data": profile_resource(profile) })
}

/// The body of `POST /api/profile-bulk-import-jobs` for these profiles, serialized one
/// profile at a time: a job of 10,000 profiles held as one JSON value took about 60 MiB,
/// its bytes take under 5 MB (BENCHMARKS.md, "Memory").
pub fn bulk_job_body<'a>(profiles: impl IntoIterator<Item = &'a ProfileState>) -> bytes::Bytes {
    let mut body =
        br#"{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":["#.to_vec();
    for (i, profile) in profiles.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &profile_resource(profile))
            .expect("a JSON value serializes");
    }
    body.extend_from_slice(b"]}}}}");
    body.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn top_level() -> ProfileState {
        ProfileState {
            email: Some("a@example.com".into()),
            external_id: "7".into(),
            vip_tier: "Platinum".into(),
            vip_state: "active".into(),
            vip_tier_since: None,
            vip_peak_tier: Some("Platinum".into()),
            clv_historic: dec!(5500),
            clv_predicted: dec!(0),
            clv_blended: dec!(5500),
            loyalty_points: 0,
            orders_count: 2,
            rfm_segment: None,
            vip_next_tier: None,
            vip_spend_to_next: None,
            suppress_discounts: true,
        }
    }

    #[test]
    fn properties_without_a_value_are_unset_never_null() {
        let resource = profile_resource(&top_level());
        let properties = resource["attributes"]["properties"].as_object().unwrap();
        assert!(properties.values().all(|v| !v.is_null()), "{properties:?}");
        assert!(!properties.contains_key("vip_next_tier"));
        assert_eq!(
            resource["meta"]["patch_properties"]["unset"],
            json!([
                "vip_tier_since",
                "rfm_segment",
                "vip_next_tier",
                "vip_spend_to_next"
            ])
        );
        assert_eq!(properties["vip_tier"], "Platinum");
    }

    #[test]
    fn a_bulk_job_body_is_one_json_document_with_every_profile() {
        let mut other = top_level();
        other.external_id = "8".into();
        let body: Value = serde_json::from_slice(&bulk_job_body([&top_level(), &other])).unwrap();
        assert_eq!(body["data"]["type"], "profile-bulk-import-job");
        let profiles = body["data"]["attributes"]["profiles"]["data"]
            .as_array()
            .unwrap();
        assert_eq!(
            profiles,
            &vec![profile_resource(&top_level()), profile_resource(&other)]
        );
        let empty: Value = serde_json::from_slice(&bulk_job_body([])).unwrap();
        assert_eq!(empty["data"]["attributes"]["profiles"]["data"], json!([]));
    }

    #[test]
    fn a_state_with_every_property_sends_no_meta() {
        let mut full = top_level();
        full.vip_tier_since = chrono::NaiveDate::from_ymd_opt(2026, 11, 2);
        full.rfm_segment = Some("Champions".into());
        full.vip_next_tier = Some("Diamond".into());
        full.vip_spend_to_next = Some(dec!(100));
        let resource = profile_resource(&full);
        assert!(resource.get("meta").is_none());
        assert_eq!(
            resource["attributes"]["properties"]["vip_spend_to_next"],
            100.0
        );
    }
}
