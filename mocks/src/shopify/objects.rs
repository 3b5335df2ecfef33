//! The full JSON value of each object the fake serves, in Shopify's wire formats: ids as
//! `gid://shopify/Type/N`, amounts as two-decimal strings, `UnsignedInt64` as strings and
//! DateTimes as ISO-8601 UTC with `Z`.

use apollo_compiler::response::serde_json_bytes::json;
use apollo_compiler::response::{JsonMap, JsonValue};
use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_decimal::Decimal;

use super::state::{ShopState, StoredMetafield};
use crate::data::{Customer, Order, Side};

/// Splits `gid://shopify/{Type}/{id}` into its type and numeric id.
pub(crate) fn parse_gid(gid: &str) -> Option<(&str, u64)> {
    let (kind, id) = gid.strip_prefix("gid://shopify/")?.split_once('/')?;
    Some((kind, id.split('?').next()?.parse().ok()?))
}

/// `DateTime` as Shopify prints it: `2026-01-01T12:00:00Z`.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    // Written by hand: chrono's `format` re-parses its pattern on every call, which showed up
    // in bulk operations (several timestamps per order).
    let (date, clock) = (at.date_naive(), at.time());
    if !(0..=9999).contains(&date.year()) {
        return at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        date.year(),
        date.month(),
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second()
    )
}

/// `Decimal` money as Shopify prints it, with two decimals.
pub(crate) fn amount(value: Decimal) -> String {
    format!("{:.2}", value.round_dp(2))
}

fn money(value: Decimal, currency: &str) -> JsonValue {
    json!({ "amount": amount(value), "currencyCode": currency })
}

/// `displayFinancialStatus` from the refunds (cancelled without a refund is `VOIDED`).
fn financial_status(order: &Order) -> &'static str {
    let refunded = order.total_refunded(Side::Shop);
    if refunded.is_zero() {
        if order.cancelled_at.is_some() {
            "VOIDED"
        } else {
            "PAID"
        }
    } else if refunded >= order.edited_total(Side::Shop) {
        "REFUNDED"
    } else {
        "PARTIALLY_REFUNDED"
    }
}

/// An object the fake models natively, whose fields are computed only when asked for (a bulk
/// query over 60k orders reads a handful of fields of each). [`Node::to_json`] gives the full
/// value the executor projects.
#[derive(Clone, Copy)]
pub(crate) enum Node<'s> {
    /// A full `Order`.
    Order(&'s ShopState, &'s Order),
    /// The customer fields that need no other records (what an order embeds).
    CustomerSummary(&'s Customer),
    /// A full `Customer`, with order statistics (non-test orders) and metafields.
    Customer(&'s ShopState, &'s Customer),
    /// A `MoneyBag`: (shop amount, shop currency), (presentment amount, its currency).
    MoneyBag([(Decimal, &'s str); 2]),
    /// A `MoneyV2`.
    Money(Decimal, &'s str),
}

/// The value of one field of a [`Node`].
pub(crate) enum FieldValue<'s> {
    Json(JsonValue),
    Node(Node<'s>),
}

const ORDER_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "legacyResourceId",
    "name",
    "createdAt",
    "processedAt",
    "updatedAt",
    "cancelledAt",
    "test",
    "email",
    "customer",
    "currencyCode",
    "presentmentCurrencyCode",
    "currentTotalPriceSet",
    "originalTotalPriceSet",
    "totalPriceSet",
    "totalRefundedSet",
    "totalRefundedShippingSet",
    "displayFinancialStatus",
    "tags",
];

const CUSTOMER_SUMMARY_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "legacyResourceId",
    "email",
    "defaultEmailAddress",
    "firstName",
    "lastName",
    "displayName",
    "createdAt",
    "updatedAt",
    "tags",
];

const CUSTOMER_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "legacyResourceId",
    "email",
    "defaultEmailAddress",
    "firstName",
    "lastName",
    "displayName",
    "createdAt",
    "updatedAt",
    "tags",
    "numberOfOrders",
    "amountSpent",
    "metafield",
    "metafields",
];

impl<'s> Node<'s> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::Order(..) => "Order",
            Node::CustomerSummary(_) | Node::Customer(..) => "Customer",
            Node::MoneyBag(_) => "MoneyBag",
            Node::Money(..) => "MoneyV2",
        }
    }

    fn field_names(&self) -> &'static [&'static str] {
        match self {
            Node::Order(..) => ORDER_FIELDS,
            Node::CustomerSummary(_) => CUSTOMER_SUMMARY_FIELDS,
            Node::Customer(..) => CUSTOMER_FIELDS,
            Node::MoneyBag(_) => &["shopMoney", "presentmentMoney"],
            Node::Money(..) => &["amount", "currencyCode"],
        }
    }

    /// The field `name`, or `None` if the fake does not model it.
    pub(crate) fn field(&self, name: &str) -> Option<FieldValue<'s>> {
        if name == "__typename" {
            return Some(FieldValue::Json(self.type_name().into()));
        }
        let value = match *self {
            Node::Order(state, order) => {
                if name == "customer" {
                    let customer = order
                        .customer_id
                        .and_then(|id| state.customers.get(&id))
                        .map(Node::CustomerSummary);
                    return Some(
                        customer.map_or(FieldValue::Json(JsonValue::Null), FieldValue::Node),
                    );
                }
                if let Some(bag) = order_money(state, order, name) {
                    return Some(FieldValue::Node(Node::MoneyBag(bag)));
                }
                order_field(state, order, name)?
            }
            Node::CustomerSummary(customer) => customer_summary_field(customer, name)?,
            Node::MoneyBag([shop, presentment]) => {
                let (amount, currency) = match name {
                    "shopMoney" => shop,
                    "presentmentMoney" => presentment,
                    _ => return None,
                };
                return Some(FieldValue::Node(Node::Money(amount, currency)));
            }
            Node::Money(value, currency) => match name {
                "amount" => amount(value).into(),
                "currencyCode" => currency.into(),
                _ => return None,
            },
            Node::Customer(state, customer) => match customer_field(state, customer, name) {
                Some(value) => value,
                None => customer_summary_field(customer, name)?,
            },
        };
        Some(FieldValue::Json(value))
    }

    /// The full value: every field the fake models.
    pub(crate) fn to_json(self) -> JsonValue {
        let mut fields = JsonMap::new();
        for &name in self.field_names() {
            let value = match self.field(name) {
                Some(FieldValue::Json(value)) => value,
                Some(FieldValue::Node(node)) => node.to_json(),
                None => continue,
            };
            fields.insert(name, value);
        }
        JsonValue::Object(fields)
    }
}

/// The order's money bags.
fn order_money<'s>(
    state: &'s ShopState,
    order: &'s Order,
    name: &str,
) -> Option<[(Decimal, &'s str); 2]> {
    let shop = state.currency.as_str();
    let presentment = order.presentment_currency.as_str();
    let total: fn(&Order, Side) -> Decimal = match name {
        "currentTotalPriceSet" => Order::current_total,
        "originalTotalPriceSet" => Order::original_total,
        "totalPriceSet" => Order::edited_total,
        "totalRefundedSet" => Order::total_refunded,
        "totalRefundedShippingSet" => Order::refunded_shipping,
        _ => return None,
    };
    Some([
        (total(order, Side::Shop), shop),
        (total(order, Side::Presentment), presentment),
    ])
}

fn order_field(state: &ShopState, order: &Order, name: &str) -> Option<JsonValue> {
    let shop = state.currency.as_str();
    let presentment = order.presentment_currency.as_str();
    Some(match name {
        "id" => order.gid().into(),
        "legacyResourceId" => order.id.to_string().into(),
        "name" => order.name.as_str().into(),
        "createdAt" | "processedAt" => time(order.created_at).into(),
        "updatedAt" => time(order.updated_at).into(),
        "cancelledAt" => order
            .cancelled_at
            .map_or(JsonValue::Null, |at| time(at).into()),
        "test" => order.test.into(),
        "email" => order
            .email
            .as_deref()
            .map_or(JsonValue::Null, JsonValue::from),
        "currencyCode" => shop.into(),
        "presentmentCurrencyCode" => presentment.into(),
        "displayFinancialStatus" => financial_status(order).into(),
        "tags" => JsonValue::Array(Vec::new()),
        _ => return None,
    })
}

fn customer_summary_field(customer: &Customer, name: &str) -> Option<JsonValue> {
    Some(match name {
        "id" => customer.gid().into(),
        "legacyResourceId" => customer.id.to_string().into(),
        "email" => customer
            .email
            .as_deref()
            .map_or(JsonValue::Null, JsonValue::from),
        "defaultEmailAddress" => customer
            .email
            .as_ref()
            .map_or(JsonValue::Null, |e| json!({ "emailAddress": e })),
        "firstName" => customer.first_name.as_str().into(),
        "lastName" => customer.last_name.as_str().into(),
        "displayName" => format!("{} {}", customer.first_name, customer.last_name)
            .trim()
            .into(),
        "createdAt" => time(customer.created_at).into(),
        "updatedAt" => time(customer.updated_at).into(),
        "tags" => json!(customer.tags),
        _ => return None,
    })
}

/// The fields of a full customer that need its orders or metafields.
fn customer_field(state: &ShopState, customer: &Customer, name: &str) -> Option<JsonValue> {
    let orders = || state.orders_of(customer.id).filter(|o| !o.test);
    Some(match name {
        "numberOfOrders" => orders().count().to_string().into(),
        "amountSpent" => money(
            orders().map(|o| o.shop_current_total()).sum(),
            &state.currency,
        ),
        "metafield" | "metafields" => JsonValue::Array(
            state
                .metafields
                .get(&customer.id)
                .into_iter()
                .flatten()
                .map(|m| metafield(&customer.gid(), m))
                .collect(),
        ),
        _ => return None,
    })
}

/// A full `Order`.
pub(crate) fn order(state: &ShopState, order: &Order) -> JsonValue {
    Node::Order(state, order).to_json()
}

/// A full `Customer`, with order statistics (non-test orders) and metafields.
pub(crate) fn customer(state: &ShopState, customer: &Customer) -> JsonValue {
    Node::Customer(state, customer).to_json()
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
        "plan": {
            "displayName": state.plan,
            "publicDisplayName": state.plan,
            "shopifyPlus": state.plan == "Plus",
            "partnerDevelopment": false,
        },
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_print_like_chrono_formats_them() {
        for at in [
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            Utc.with_ymd_and_hms(999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap()
                + chrono::Duration::milliseconds(1500),
        ] {
            assert_eq!(time(at), at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
    }
}
