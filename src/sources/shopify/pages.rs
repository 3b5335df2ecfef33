//! Orders updated since a time, read a page at a time (oldest update first) under the cost
//! bucket: the incremental poll, and the catch-up after a bulk backfill.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::orders::OrderNode;
use crate::config::ShopifySettings;
use crate::http::ApiError;
use crate::vendors::shopify::{queries, ShopifyClient};

/// Pages read ahead while a bulk backfill runs, at most: about 10,000 orders, a few MB. A
/// Plus shop's bucket reads about that many in the 90 s a million-customer backfill takes
/// to store; the rest is read after it.
pub(super) const READ_AHEAD_PAGES: usize = 100;

/// One page: its orders and the newest `updatedAt` among them (where the cursor may move
/// once they are stored).
pub(super) struct Page {
    pub orders: Vec<OrderNode>,
    pub cursor: Option<DateTime<Utc>>,
}

/// The pages of orders updated since a time, in order. A page's `after` cursor belongs to
/// this query: the filter is fixed for the reader's life.
pub(super) struct Pages<'a> {
    client: &'a ShopifyClient,
    page_size: u32,
    filter: Option<String>,
    /// The last order read, as a cursor: the next page starts after it.
    after: Option<String>,
    /// Shopify said there was no next page.
    at_end: bool,
}

impl<'a> Pages<'a> {
    /// Orders updated since `cursor` minus the overlap window (`shopify.overlap`, for late
    /// `updated_at` changes); every order when there is no cursor.
    pub fn since(
        client: &'a ShopifyClient,
        settings: &ShopifySettings,
        cursor: Option<DateTime<Utc>>,
    ) -> Pages<'a> {
        let filter = cursor.map(|c| {
            let since = c - chrono::Duration::from_std(settings.overlap).unwrap_or_default();
            format!(
                "updated_at:>='{}'",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        });
        Pages {
            client,
            page_size: settings.page_size,
            filter,
            after: None,
            at_end: false,
        }
    }

    /// The next page; `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Page>, ApiError> {
        if self.at_end {
            return Ok(None);
        }
        let data: OrdersData = self
            .client
            .execute(
                "shopify orders",
                queries::ORDERS_PAGE,
                json!({ "first": self.page_size, "after": self.after, "query": self.filter }),
                queries::orders_page_cost(self.page_size),
            )
            .await?;
        let Connection { page_info, nodes } = data.orders;
        self.at_end = !page_info.has_next_page || page_info.end_cursor.is_none();
        if let Some(end) = page_info.end_cursor {
            self.after = Some(end);
        }
        Ok(Some(Page {
            cursor: nodes.iter().map(OrderNode::updated_at).max(),
            orders: nodes,
        }))
    }

    /// Reads on after the last page: orders updated since it was read sort after its last
    /// order (`UPDATED_AT` order, and a cursor is a position in it), so one more request
    /// finds them without reading the overlap again.
    pub fn look_again(&mut self) {
        self.at_end = false;
    }

    /// Up to `max` pages, read while something else runs (the bulk backfill): the caller
    /// stores them after it, then goes on with [`Pages::next`]. Stops early at the last page
    /// or when `cancel` fires.
    pub async fn read_ahead(
        &mut self,
        max: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<Page>, ApiError> {
        let mut read = Vec::new();
        while read.len() < max && !cancel.is_cancelled() {
            match cancel.run_until_cancelled(self.next()).await {
                Some(Ok(Some(page))) => read.push(page),
                Some(Ok(None)) | None => break,
                Some(Err(error)) => return Err(error),
            }
        }
        Ok(read)
    }
}

/// A page's answer (its decoding is tested with the order's fields, in `orders`).
#[derive(Deserialize)]
pub(super) struct OrdersData {
    pub orders: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Connection {
    page_info: PageInfo,
    pub nodes: Vec<OrderNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}
