//! The full JSON value of each object the fake serves, in Shopify's wire formats: ids as
//! `gid://shopify/Type/N`, amounts as two-decimal strings, `UnsignedInt64` as strings and
//! DateTimes as ISO-8601 UTC with `Z`.

use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::JsonValue;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::state::{ShopState, StoredMetafield};
use crate::data::{Customer, Order};

/// Splits `gid://shopify/{Type}/{id}` into its type and numeric id.
pub(crate) fn parse_gid(gid: &str) -> Option<(&str, u64)> {
    let (kind, id) = gid.strip_prefix("gid://shopify/")?.split_once('/')?;
    Some((kind, id.split('?').next()?.parse().ok()?))
}

/// `DateTime` as Shopify prints it: `2026-01-01T12:00:00Z`.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `Decimal` money as Shopify prints it, with two decimals.
pub(crate) fn amount(value: Decimal) -> String {
    format!("{:.2}", value.round_dp(2))
}

fn money(value: Decimal, currency: &str) -> JsonValue {
    json!({ "amount": amount(value), "currencyCode": currency })
}

fn money_bag(
    shop: Decimal,
    shop_currency: &str,
    presentment: Decimal,
    currency: &str,
) -> JsonValue {
    json!({
        "shopMoney": money(shop, shop_currency),
        "presentmentMoney": money(presentment, currency),
    })
}

/// `displayFinancialStatus` from the refunds (cancelled without a refund is `VOIDED`).
fn financial_status(order: &Order) -> &'static str {
    if order.shop_refunded.is_zero() {
        if order.cancelled_at.is_some() {
            "VOIDED"
        } else {
            "PAID"
        }
    } else if order.shop_refunded >= order.shop_total {
        "REFUNDED"
    } else {
        "PARTIALLY_REFUNDED"
    }
}

/// A full `Order`.
pub(crate) fn order(state: &ShopState, order: &Order) -> JsonValue {
    let shop = state.currency.as_str();
    let presentment = order.presentment_currency.as_str();
    let customer = order
        .customer_id
        .and_then(|id| state.customers.get(&id))
        .map(customer_summary);
    json!({
        "__typename": "Order",
        "id": order.gid(),
        "legacyResourceId": order.id.to_string(),
        "name": order.name,
        "createdAt": time(order.created_at),
        "processedAt": time(order.created_at),
        "updatedAt": time(order.updated_at),
        "cancelledAt": order.cancelled_at.map(time),
        "test": order.test,
        "email": order.email,
        "customer": customer,
        "currencyCode": shop,
        "presentmentCurrencyCode": presentment,
        "currentTotalPriceSet": money_bag(
            order.shop_current_total(), shop, order.presentment_current_total(), presentment),
        "totalPriceSet": money_bag(order.shop_total, shop, order.presentment_total, presentment),
        "totalRefundedSet": money_bag(
            order.shop_refunded, shop, order.presentment_refunded, presentment),
        "displayFinancialStatus": financial_status(order),
        "tags": [],
    })
}

/// The customer fields that need no other records (what an order embeds).
fn customer_summary(customer: &Customer) -> JsonValue {
    json!({
        "__typename": "Customer",
        "id": customer.gid(),
        "legacyResourceId": customer.id.to_string(),
        "email": customer.email,
        "defaultEmailAddress": customer.email.as_ref().map(|e| json!({ "emailAddress": e })),
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "displayName": format!("{} {}", customer.first_name, customer.last_name).trim().to_owned(),
        "createdAt": time(customer.created_at),
        "updatedAt": time(customer.updated_at),
        "tags": customer.tags,
    })
}

/// A full `Customer`, with order statistics (non-test orders) and metafields.
pub(crate) fn customer(state: &ShopState, customer: &Customer) -> JsonValue {
    let orders: Vec<&Order> = state.orders_of(customer.id).filter(|o| !o.test).collect();
    let spent: Decimal = orders.iter().map(|o| o.shop_current_total()).sum();
    let metafields: Vec<JsonValue> = state
        .metafields
        .get(&customer.id)
        .into_iter()
        .flatten()
        .map(|m| metafield(&customer.gid(), m))
        .collect();
    let mut value = customer_summary(customer);
    if let Some(fields) = value.as_object_mut() {
        fields.insert("numberOfOrders", orders.len().to_string().into());
        fields.insert("amountSpent", money(spent, &state.currency));
        fields.insert("metafield", JsonValue::Array(metafields.clone()));
        fields.insert("metafields", JsonValue::Array(metafields));
    }
    value
}

/// A `Metafield` owned by `owner_gid`.
pub(crate) fn metafield(owner_gid: &str, m: &StoredMetafield) -> JsonValue {
    json!({
        "__typename": "Metafield",
        "id": format!("gid://shopify/Metafield/{}", m.id),
        "legacyResourceId": m.id.to_string(),
        "namespace": m.namespace,
        "key": m.key,
        "type": m.kind,
        "value": m.value,
        "ownerType": "CUSTOMER",
        "owner": { "__typename": "Customer", "id": owner_gid },
        "createdAt": time(m.created_at),
        "updatedAt": time(m.updated_at),
    })
}

/// `shop { … }`.
pub(crate) fn shop(state: &ShopState) -> JsonValue {
    json!({
        "__typename": "Shop",
        "id": "gid://shopify/Shop/1",
        "name": "tiersync fake shop",
        "ianaTimezone": state.timezone,
        "currencyCode": state.currency,
    })
}
