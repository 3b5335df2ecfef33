//! The write mutations tiersync uses on customers: `tagsAdd` / `tagsRemove` (touch only the
//! given tags) and `metafieldsSet` (at most 25 per call, all-or-nothing, typed values).
//!
//! Bad input is answered the way Shopify answers it: `userErrors` in the payload, HTTP 200.

use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::{JsonMap, JsonValue};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::objects;
use super::state::{ShopState, StoredMetafield};

/// Most metafields one `metafieldsSet` call may write.
pub(crate) const MAX_METAFIELDS_PER_CALL: usize = 25;
/// Namespace used when the input names none (Shopify's app-reserved namespace).
const APP_NAMESPACE: &str = "$app";

/// Which way `change_tags` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagChange {
    Add,
    Remove,
}

fn user_error(field: &[&str], message: &str) -> JsonValue {
    json!({ "field": field, "message": message })
}

/// `tagsAdd` / `tagsRemove` on a customer: `{ node, userErrors }`. Tags compare
/// case-insensitively; entries may themselves be comma-separated lists, as Shopify allows.
pub(crate) fn change_tags(state: &mut ShopState, args: &JsonMap, change: TagChange) -> JsonValue {
    let gid = args
        .get("id")
        .and_then(JsonValue::as_str)
        .unwrap_or_default();
    let Some(id) = objects::parse_gid(gid)
        .filter(|(kind, _)| *kind == "Customer")
        .map(|(_, id)| id)
        .filter(|id| state.customers.contains_key(id))
    else {
        return json!({ "node": null, "userErrors": [user_error(&["id"], "Customer does not exist")] });
    };
    let tags: Vec<String> = args
        .get("tags")
        .and_then(JsonValue::as_array)
        .into_iter()
        .flatten()
        .filter_map(JsonValue::as_str)
        .flat_map(|entry| entry.split(','))
        .map(|tag| tag.trim().to_owned())
        .filter(|tag| !tag.is_empty())
        .collect();
    if let Some(customer) = state.customers.get_mut(&id) {
        let before = customer.tags.clone();
        let same = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
        match change {
            TagChange::Add => {
                for tag in tags {
                    if !customer.tags.iter().any(|t| same(t, &tag)) {
                        customer.tags.push(tag);
                    }
                }
            }
            TagChange::Remove => customer
                .tags
                .retain(|t| !tags.iter().any(|tag| same(t, tag))),
        }
        if customer.tags != before {
            customer.updated_at = Utc::now();
        }
        *state.tag_mutations.entry(id).or_default() += 1;
    }
    let node = state
        .customers
        .get(&id)
        .map_or(JsonValue::Null, |c| objects::customer(state, c));
    json!({ "node": node, "userErrors": [] })
}

/// One validated `MetafieldsSetInput`.
struct Write {
    owner: u64,
    namespace: String,
    key: String,
    kind: Option<String>,
    value: String,
}

/// `metafieldsSet`: `{ metafields, userErrors }`; nothing is written if any entry fails.
pub(crate) fn metafields_set(state: &mut ShopState, args: &JsonMap) -> JsonValue {
    let inputs: &[JsonValue] = args
        .get("metafields")
        .and_then(JsonValue::as_array)
        .map_or(&[], Vec::as_slice);
    if inputs.len() > MAX_METAFIELDS_PER_CALL {
        let error = json!({
            "field": ["metafields"],
            "message": format!("Exceeded the maximum metafields input limit of {MAX_METAFIELDS_PER_CALL}."),
            "code": "LESS_THAN_OR_EQUAL_TO",
            "elementIndex": null,
        });
        return json!({ "metafields": null, "userErrors": [error] });
    }
    let mut writes = Vec::with_capacity(inputs.len());
    let mut errors = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        match validate(state, input) {
            Ok(write) => writes.push(write),
            Err((field, message, code)) => errors.push(json!({
                "field": ["metafields", index.to_string(), field],
                "message": message,
                "code": code,
                "elementIndex": index,
            })),
        }
    }
    if !errors.is_empty() {
        return json!({ "metafields": null, "userErrors": errors });
    }
    let now = Utc::now();
    let written: Vec<JsonValue> = writes
        .into_iter()
        .map(|write| {
            let stored = upsert(state, write, now);
            objects::metafield(&format!("gid://shopify/Customer/{}", stored.0), &stored.1)
        })
        .collect();
    json!({ "metafields": written, "userErrors": [] })
}

type InputError = (&'static str, String, &'static str);

fn validate(state: &ShopState, input: &JsonValue) -> Result<Write, InputError> {
    let text = |name: &str| {
        input
            .get(name)
            .and_then(JsonValue::as_str)
            .map(str::to_owned)
    };
    let owner = text("ownerId")
        .as_deref()
        .and_then(objects::parse_gid)
        .filter(|(kind, id)| *kind == "Customer" && state.customers.contains_key(id))
        .map(|(_, id)| id)
        .ok_or((
            "ownerId",
            "Owner does not exist.".to_owned(),
            "INVALID_VALUE",
        ))?;
    let namespace = text("namespace").unwrap_or_else(|| APP_NAMESPACE.to_owned());
    let key = text("key").unwrap_or_default();
    if key.chars().count() < 2 {
        return Err((
            "key",
            "Key is too short (minimum is 2 characters)".to_owned(),
            "TOO_SHORT",
        ));
    }
    if key.chars().count() > 64 {
        return Err((
            "key",
            "Key is too long (maximum is 64 characters)".to_owned(),
            "TOO_LONG",
        ));
    }
    let value = text("value").unwrap_or_default();
    let kind = text("type");
    let existing = find(state, owner, &namespace, &key).map(|m| m.kind.clone());
    let Some(effective) = kind.clone().or(existing) else {
        return Err(("type", "Type can't be blank".to_owned(), "BLANK"));
    };
    check_value(&effective, &value)?;
    Ok(Write {
        owner,
        namespace,
        key,
        kind,
        value,
    })
}

/// Checks `value` against the metafield `kind` (the types tiersync may write).
fn check_value(kind: &str, value: &str) -> Result<(), InputError> {
    let valid = match kind {
        "single_line_text_field" => !value.contains('\n'),
        "multi_line_text_field" | "string" => true,
        "number_integer" => value.parse::<i64>().is_ok(),
        "number_decimal" => value.parse::<Decimal>().is_ok(),
        "boolean" => matches!(value, "true" | "false"),
        "json" => serde_json::from_str::<serde_json::Value>(value).is_ok(),
        "date" => NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
        "date_time" => DateTime::parse_from_rfc3339(value).is_ok(),
        other => {
            return Err((
                "type",
                format!("Type '{other}' is not a valid metafield type"),
                "INVALID_TYPE",
            ))
        }
    };
    if valid {
        Ok(())
    } else {
        Err((
            "value",
            format!("Value is invalid for type {kind}"),
            "INVALID_VALUE",
        ))
    }
}

fn find<'s>(
    state: &'s ShopState,
    owner: u64,
    namespace: &str,
    key: &str,
) -> Option<&'s StoredMetafield> {
    state
        .metafields
        .get(&owner)?
        .iter()
        .find(|m| m.namespace == namespace && m.key == key)
}

/// Creates or updates the metafield; returns its owner and stored value.
fn upsert(state: &mut ShopState, write: Write, now: DateTime<Utc>) -> (u64, StoredMetafield) {
    let next_id = state.next_metafield_id;
    let list = state.metafields.entry(write.owner).or_default();
    let stored = match list
        .iter_mut()
        .find(|m| m.namespace == write.namespace && m.key == write.key)
    {
        Some(existing) => {
            existing.value = write.value;
            if let Some(kind) = write.kind {
                existing.kind = kind;
            }
            existing.updated_at = now;
            existing.clone()
        }
        None => {
            state.next_metafield_id += 1;
            let created = StoredMetafield {
                id: next_id,
                namespace: write.namespace,
                key: write.key,
                kind: write.kind.unwrap_or_default(),
                value: write.value,
                created_at: now,
                updated_at: now,
            };
            list.push(created.clone());
            created
        }
    };
    (write.owner, stored)
}
