//! Reading orders into the store: the node shape, its normalization, and the paged poll.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{bulk, queries, ShopifyClient};
use crate::config::{Backfill, ShopifySettings};
use crate::http::ApiError;
use crate::store::{OrderRecord, Store, StoreError};

/// What one ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Orders read from Shopify (including overlap re-reads).
    pub orders_read: usize,
    /// Orders that were new or changed.
    pub orders_changed: usize,
    /// Orders that cannot be sales (negative or absurd totals), skipped with a warning.
    pub orders_skipped: usize,
    /// True when this ingest was the first-run bulk backfill.
    pub backfill: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An order as the orders queries select it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderNode {
    id: String,
    email: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    test: bool,
    customer: Option<CustomerRef>,
    current_total_price_set: MoneyBag,
}

#[derive(Debug, Deserialize)]
struct CustomerRef {
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyBag {
    shop_money: Money,
}

#[derive(Debug, Deserialize)]
struct Money {
    amount: Decimal,
}

/// Larger than any real order total in any currency: a data error, not a sale.
const ABSURD_TOTAL: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0); // 1e12

impl OrderNode {
    /// The order as tiersync stores it, or why it is skipped (logged with its id): a negative
    /// or absurd total cannot be a sale and would corrupt the customer's net spend.
    pub(super) fn into_record(self) -> Result<OrderRecord, String> {
        let amount = self.current_total_price_set.shop_money.amount;
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(format!(
                "order {}: currentTotalPriceSet.shopMoney.amount is negative ({amount})",
                self.id
            ));
        }
        if amount > ABSURD_TOTAL {
            return Err(format!(
                "order {}: currentTotalPriceSet.shopMoney.amount {amount} is over 1,000,000,000,000",
                self.id
            ));
        }
        Ok(OrderRecord {
            id: self.id,
            customer_id: self.customer.map(|c| c.id),
            customer_email: self.email.as_deref().and_then(normalize_email),
            created_at: self.created_at,
            updated_at: self.updated_at,
            cancelled_at: self.cancelled_at,
            test: self.test,
            current_total: amount,
        })
    }
}

/// A lower-cased email, or `None` (with a warning) when it cannot be an address: the
/// customer is then identified by their Shopify id alone, instead of every write to them
/// being refused. Non-ASCII addresses are valid (internationalized email).
fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return None;
    }
    let plausible = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    }) && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if plausible {
        Some(email)
    } else {
        tracing::warn!(email = %email, "an order's email is not an address; the customer is identified by their Shopify id only");
        None
    }
}

/// The records of a page (or bulk chunk), skipping and logging the orders that cannot be
/// sales. Returns the records and how many were skipped.
pub(super) fn records(nodes: impl IntoIterator<Item = OrderNode>) -> (Vec<OrderRecord>, usize) {
    let mut skipped = 0;
    let records = nodes
        .into_iter()
        .filter_map(|node| match node.into_record() {
            Ok(record) => Some(record),
            Err(why) => {
                tracing::warn!(%why, "order skipped");
                skipped += 1;
                None
            }
        })
        .collect();
    (records, skipped)
}

#[derive(Deserialize)]
struct OrdersData {
    orders: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    page_info: PageInfo,
    nodes: Vec<OrderNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// Brings the store's orders up to date: a bulk backfill when there is no cursor yet (if so
/// configured), else pages of orders updated since the cursor minus the overlap window.
pub async fn ingest_orders(
    client: &ShopifyClient,
    store: &Store,
    settings: &ShopifySettings,
    cancel: &CancellationToken,
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport::default();
    if store.orders_cursor()?.is_none() && settings.backfill == Backfill::Bulk {
        // Then fall through: orders changed while the bulk operation ran are read as pages.
        report = bulk::backfill(client, store, settings, cancel).await?;
    }
    let cursor = store.orders_cursor()?;
    let filter = cursor.map(|c| {
        let since = c - chrono::Duration::from_std(settings.overlap).unwrap_or_default();
        format!(
            "updated_at:>='{}'",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    });
    let mut after: Option<String> = None;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let data: OrdersData = client
            .execute(
                "shopify orders",
                queries::ORDERS_PAGE,
                json!({ "first": settings.page_size, "after": after, "query": filter }),
                queries::orders_page_cost(settings.page_size),
            )
            .await?;
        let page_cursor = data.orders.nodes.iter().map(|o| o.updated_at).max();
        let (page, skipped) = records(data.orders.nodes);
        report.orders_skipped += skipped;
        report.orders_read += page.len();
        report.orders_changed += store.apply_orders(&page, page_cursor)?;
        tracing::debug!(orders = page.len(), cursor = ?page_cursor, "orders page stored");
        match (
            data.orders.page_info.has_next_page,
            data.orders.page_info.end_cursor,
        ) {
            (true, Some(end)) => after = Some(end),
            _ => break,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::shopify::client::decode_data;

    fn page(node: serde_json::Value) -> serde_json::Value {
        json!({ "orders": { "pageInfo": { "hasNextPage": false, "endCursor": null }, "nodes": [
            { "id": "gid://shopify/Order/1", "email": "a@example.com",
              "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
              "cancelledAt": null, "test": false, "customer": { "id": "gid://shopify/Customer/1" },
              "currentTotalPriceSet": { "shopMoney": { "amount": "10.00", "currencyCode": "USD" } } },
            node
        ] } })
    }

    fn error(node: serde_json::Value) -> String {
        decode_data::<OrdersData>("shopify orders", page(node))
            .err()
            .expect("refused")
            .to_string()
    }

    #[test]
    fn a_missing_field_is_named_with_its_path() {
        let e = error(
            json!({ "id": "gid://shopify/Order/2", "updatedAt": "2026-01-01T00:00:00Z",
            "test": false, "currentTotalPriceSet": { "shopMoney": { "amount": "1.00" } } }),
        );
        assert!(
            e.contains("shopify orders: unexpected response at `data.orders.nodes[1]")
                && e.contains("createdAt"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_is_named_with_its_path() {
        let e = error(
            json!({ "id": "gid://shopify/Order/2", "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z", "test": "yes",
            "currentTotalPriceSet": { "shopMoney": { "amount": "1.00" } } }),
        );
        assert!(e.contains("`data.orders.nodes[1].test`"), "{e}");
    }

    #[test]
    fn an_amount_beyond_any_decimal_is_named_with_its_path() {
        let e = error(
            json!({ "id": "gid://shopify/Order/2", "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z", "test": false,
            "currentTotalPriceSet": { "shopMoney": { "amount": "1e40" } } }),
        );
        assert!(
            e.contains("`data.orders.nodes[1].currentTotalPriceSet.shopMoney.amount`"),
            "{e}"
        );
    }

    #[test]
    fn negative_and_absurd_totals_are_skipped_not_stored() {
        let nodes: OrdersData = decode_data(
            "shopify orders",
            page(
                json!({ "id": "gid://shopify/Order/2", "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z", "test": false,
                "currentTotalPriceSet": { "shopMoney": { "amount": "-5.00" } } }),
            ),
        )
        .unwrap();
        let (kept, skipped) = records(nodes.orders.nodes);
        assert_eq!((kept.len(), skipped), (1, 1));
    }

    #[test]
    fn emails_that_are_not_addresses_are_dropped() {
        assert_eq!(
            normalize_email(" Zoë@Exämple.com "),
            Some("zoë@exämple.com".into())
        );
        for bad in [
            "not-an-email",
            "a@b",
            "a b@example.com",
            "@example.com",
            "a@@example.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }
}
