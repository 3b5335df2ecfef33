//! The profile payload: property names merchants build segments and flows on.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::store::ProfileState;

/// The `attributes` of a profile resource for this state. Property names are the README's.
/// `null` clears a property in Klaviyo (e.g. `vip_tier_since` for customers without a level).
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
            "vip_state": profile.vip_state,
            "vip_tier_since": profile.vip_tier_since.map(|d| d.format("%Y-%m-%d").to_string()),
            "vip_peak_tier": profile.vip_peak_tier,
            "clv_historic": number(profile.clv_historic),
            "clv_predicted": number(profile.clv_predicted),
            "clv_blended": number(profile.clv_blended),
            "loyalty_points": profile.loyalty_points,
            "orders_count": profile.orders_count,
            "rfm_segment": profile.rfm_segment,
            "vip_next_tier": profile.vip_next_tier,
            "vip_spend_to_next": profile.vip_spend_to_next.map(number),
            "suppress_discounts": profile.suppress_discounts,
        }),
    );
    Value::Object(attributes)
}

/// Money as a JSON number with cents (Klaviyo stores numbers, not decimal strings).
fn number(amount: Decimal) -> f64 {
    amount.round_dp(2).to_f64().unwrap_or(0.0)
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
