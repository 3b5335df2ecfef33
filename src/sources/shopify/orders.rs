//! Reading orders into the store: the node shape, its normalization, and the ingest that
//! runs the backfill and the paged poll ([`super::pages`]).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::backfill;
use super::pages::{Page, Pages, READ_AHEAD_PAGES};
use crate::config::{Backfill, ShopifySettings};
use crate::http::ApiError;
use crate::store::{OrderRecord, Store, StoreError};
use crate::vendors::shopify::ShopifyClient;

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
    original_total_price_set: MoneyBag,
    total_price_set: MoneyBag,
    total_refunded_set: MoneyBag,
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

/// What an order adds to its customer's net spend, in the shop currency (taxes included):
///
/// ```text
/// net = max(0, min(currentTotalPriceSet,
///                  max(originalTotalPriceSet, totalPriceSet) − totalRefundedSet))
/// ```
///
/// Each refund or change lowers it once, whichever total Shopify records it in:
/// - `currentTotalPriceSet` is documented as the total "after returns": refunded or returned
///   line items and order edits lower it, but a refund of shipping or of a custom amount
///   (an order adjustment, e.g. goodwill) need not — so it cannot be the whole answer;
/// - `totalRefundedSet` is every refund's money (line items, returns, shipping, custom
///   amounts, the difference refunded after an edit), so subtracting it from the total before
///   refunds counts each once, but subtracting it from the current total would count a
///   line-item refund twice;
/// - the total before refunds is the larger of the total at checkout (`originalTotalPriceSet`)
///   and after edits (`totalPriceSet`): an edit that removes an item lowers `totalPriceSet`
///   and, on a paid order, is followed by a refund of the difference, which must not lower it
///   a second time; an edit that adds items raises it;
/// - the minimum with the current total keeps a lowered current total that no money followed
///   (an edit of an unpaid order, a return not yet refunded, an item refunded for less than
///   its price): the smaller amount is the conservative one for a spend threshold.
///
/// Cancelled and test orders count zero (see `OrderRecord::net`), refunded or not.
pub(super) fn net_spend(
    current: Decimal,
    original: Decimal,
    edited: Decimal,
    refunded: Decimal,
) -> Decimal {
    current
        .min(original.max(edited) - refunded)
        .max(Decimal::ZERO)
}

impl OrderNode {
    /// When Shopify last changed the order: the paged read's cursor.
    pub(super) fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

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
        let net_total = net_spend(
            amount,
            self.original_total_price_set.shop_money.amount,
            self.total_price_set.shop_money.amount,
            self.total_refunded_set.shop_money.amount,
        );
        Ok(OrderRecord {
            id: self.id,
            customer_id: self.customer.map(|c| c.id),
            customer_email: self.email.as_deref().and_then(normalize_email),
            created_at: self.created_at,
            updated_at: self.updated_at,
            cancelled_at: self.cancelled_at,
            test: self.test,
            net_total,
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

/// Brings the store's orders up to date: a bulk backfill when there is no cursor yet (if so
/// configured), else pages of orders updated since the cursor minus the overlap window.
///
/// After a backfill, the orders updated since it began (and the overlap before) are read as
/// pages. Those pages are read while the backfill downloads and stores, and stored after it,
/// followed by whatever changed meanwhile: on a Standard shop a few hundred orders spend the
/// whole bucket, and waiting for it once the backfill was stored held the pass up by about
/// 8 s at a million customers. A page read ahead is never older than the backfill's copy of
/// an order (it was read after the backfill's `until`), so storing it after is right.
pub async fn ingest_orders(
    client: &ShopifyClient,
    store: &Store,
    settings: &ShopifySettings,
    cancel: &CancellationToken,
) -> Result<IngestReport, IngestError> {
    // The whole read is Shopify's busy time: storing a page delays the next request.
    let _busy = client.throughput().busy();
    let mut report = IngestReport::default();
    // A first backfill cut short wrote the order map ahead of the store: start it over.
    store.abandon_unfinished_backfill()?;
    let mut ahead = Vec::new();
    let mut pages = if store.orders_cursor()?.is_none() && settings.backfill == Backfill::Bulk {
        let until = Utc::now();
        let mut pages = Pages::since(client, settings, Some(until));
        // A bulk query: Shopify's pace, not the cost bucket's.
        let _bulk = client.throughput().unbound();
        let (backfilled, read) = tokio::join!(
            backfill::backfill(client, store, settings, until, cancel),
            pages.read_ahead(READ_AHEAD_PAGES, cancel),
        );
        report = backfilled?;
        // Only once the backfill is stored (the cursor is set) may pages move the cursor.
        if cancel.is_cancelled() || store.orders_cursor()?.is_none() {
            return Ok(report);
        }
        ahead = read?;
        pages
    } else {
        Pages::since(client, settings, store.orders_cursor()?)
    };
    if !ahead.is_empty() {
        for page in ahead {
            store_page(store, page, &mut report)?;
        }
        // The pages read ahead may have reached the end long before the backfill was
        // stored: what changed since comes after them.
        pages.look_again();
    }
    while !cancel.is_cancelled() {
        let Some(page) = pages.next().await? else {
            break;
        };
        store_page(store, page, &mut report)?;
    }
    Ok(report)
}

/// Stores a page and moves the cursor to its newest update.
fn store_page(store: &Store, page: Page, report: &mut IngestReport) -> Result<(), IngestError> {
    let (records, skipped) = records(page.orders);
    report.orders_skipped += skipped;
    report.orders_read += records.len();
    report.orders_changed += store.apply_orders(&records, page.cursor)?;
    tracing::debug!(orders = records.len(), cursor = ?page.cursor, "orders page stored");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::shopify::pages::OrdersData;
    use crate::vendors::shopify::decode_data;
    use serde_json::json;

    fn page(node: serde_json::Value) -> serde_json::Value {
        json!({ "orders": { "pageInfo": { "hasNextPage": false, "endCursor": null }, "nodes": [
            { "id": "gid://shopify/Order/1", "email": "a@example.com",
              "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
              "cancelledAt": null, "test": false, "customer": { "id": "gid://shopify/Customer/1" },
              "currentTotalPriceSet": { "shopMoney": { "amount": "10.00", "currencyCode": "USD" } },
              "originalTotalPriceSet": { "shopMoney": { "amount": "10.00" } },
              "totalPriceSet": { "shopMoney": { "amount": "10.00" } },
              "totalRefundedSet": { "shopMoney": { "amount": "0.00" } } },
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
                "currentTotalPriceSet": { "shopMoney": { "amount": "-5.00" } },
                "originalTotalPriceSet": { "shopMoney": { "amount": "5.00" } },
                "totalPriceSet": { "shopMoney": { "amount": "5.00" } },
                "totalRefundedSet": { "shopMoney": { "amount": "0.00" } } }),
            ),
        )
        .unwrap();
        let (kept, skipped) = records(nodes.orders.nodes);
        assert_eq!((kept.len(), skipped), (1, 1));
    }

    fn net(current: &str, original: &str, edited: &str, refunded: &str) -> Decimal {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        net_spend(d(current), d(original), d(edited), d(refunded))
    }

    #[test]
    fn every_kind_of_refund_lowers_net_spend_once() {
        // (current, original, after edits, refunded) as Shopify reports a 100.00 order.
        let cases = [
            ("nothing", ("100.00", "100.00", "100.00", "0.00"), "100.00"),
            (
                "line items refunded",
                ("70.00", "100.00", "100.00", "30.00"),
                "70.00",
            ),
            (
                "shipping refunded",
                ("100.00", "100.00", "100.00", "8.00"),
                "92.00",
            ),
            (
                "shipping, if the current total shows it",
                ("92.00", "100.00", "100.00", "8.00"),
                "92.00",
            ),
            (
                "custom amount refunded",
                ("100.00", "100.00", "100.00", "15.00"),
                "85.00",
            ),
            (
                "item removed by an edit, refunded",
                ("80.00", "100.00", "80.00", "20.00"),
                "80.00",
            ),
            (
                "item removed by an edit, unpaid",
                ("80.00", "100.00", "80.00", "0.00"),
                "80.00",
            ),
            (
                "items added by an edit",
                ("125.00", "100.00", "125.00", "0.00"),
                "125.00",
            ),
            (
                "item refunded for less than its price",
                ("70.00", "100.00", "100.00", "10.00"),
                "70.00",
            ),
            (
                "more refunded than paid",
                ("100.00", "100.00", "100.00", "120.00"),
                "0",
            ),
        ];
        for (kind, (current, original, edited, refunded), expected) in cases {
            assert_eq!(
                net(current, original, edited, refunded),
                expected.parse::<Decimal>().unwrap(),
                "{kind}"
            );
        }
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
