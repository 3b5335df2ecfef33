//! The profile payload: property names merchants build segments and flows on.

use rust_decimal::prelude::ToPrimitive;
use serde_json::{json, Map, Value};

use crate::store::ProfileState;

/// The `attributes` of a profile resource for this state. Properties are named exactly as the
/// README documents: `vip_tier`, `clv_historic`, `orders_count`, `vip_tier_since`.
pub fn import_attributes(profile: &ProfileState) -> Value {
    let mut attributes = Map::new();
    if let Some(email) = &profile.email {
        attributes.insert("email".into(), json!(email));
    }
    attributes.insert("external_id".into(), json!(profile.external_id));
    attributes.insert(
        "properties".into(),
        json!({
            "vip_tier": profile.vip_tier,
            "clv_historic": profile.clv_historic.round_dp(2).to_f64().unwrap_or(0.0),
            "orders_count": profile.orders_count,
            // null clears the property in Klaviyo for customers without a level.
            "vip_tier_since": profile.vip_tier_since.map(|d| d.format("%Y-%m-%d").to_string()),
        }),
    );
    Value::Object(attributes)
}

/// The body of `POST /api/profile-import`.
pub fn import_body(profile: &ProfileState) -> Value {
    json!({ "data": { "type": "profile", "attributes": import_attributes(profile) } })
}

/// The body of `POST /api/profile-bulk-import-jobs` for these profiles.
pub fn bulk_job_body<'a>(profiles: impl IntoIterator<Item = &'a ProfileState>) -> Value {
    let data: Vec<Value> = profiles
        .into_iter()
        .map(|p| json!({ "type": "profile", "attributes": import_attributes(p) }))
        .collect();
    json!({
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": { "profiles": { "data": data } }
        }
    })
}
