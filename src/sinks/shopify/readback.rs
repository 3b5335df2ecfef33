//! Reading the storefront back (reconcile): every customer's tags and tiersync's metafields,
//! through one bulk query (a paged read of a large shop would take hours under the cost
//! limit), its result streamed line by line like the backfill's.

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::{ShopifySettings, StorefrontSettings};
use crate::http::ApiError;
use crate::model::StorefrontState;
use crate::progress::{Phase, Progress};
use crate::vendors::shopify::{queries, run_bulk_query, BulkSink, ShopifyClient};

/// What the storefront holds, by customer GID: only customers carrying a tag in tiersync's
/// prefix or a metafield in its namespace. A customer's several tiersync tags are joined
/// with ", " in `tag` (a tag holds no comma).
#[derive(Debug, Default)]
pub struct StorefrontReadback {
    /// What the storefront shows of each such customer: reconcile compares it with the desired
    /// state, and the first write to a storefront takes it as acknowledged.
    pub customers: HashMap<String, StorefrontState>,
    /// Every customer GID the shop has (to tell a deleted customer from an untagged one).
    pub known: std::collections::HashSet<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Metafield {
        key: String,
        value: String,
        #[serde(rename = "__parentId")]
        parent: String,
    },
    Customer {
        id: String,
        tags: Vec<String>,
    },
}

/// Reads every customer back; `None` when `cancel` fired first.
pub async fn read_storefront(
    client: &ShopifyClient,
    shopify: &ShopifySettings,
    settings: &StorefrontSettings,
    cancel: &CancellationToken,
) -> Result<Option<StorefrontReadback>, ApiError> {
    // A bulk query: Shopify's pace, not the cost bucket's.
    let _unbound = client.throughput().unbound();
    let query = queries::bulk_customers_query(&settings.metafield_namespace);
    let mut sink = ReadbackSink {
        progress: client.progress(),
        settings,
        out: StorefrontReadback::default(),
    };
    if !run_bulk_query(client, &query, shopify, cancel, &mut sink).await? {
        return Ok(None);
    }
    Ok(Some(sink.out))
}

/// The read-back, built as the bulk result streams in; a download that starts over starts
/// from an empty read-back.
struct ReadbackSink<'a> {
    /// Counts each customer read ([`Phase::Reconcile`]).
    progress: &'a Progress,
    settings: &'a StorefrontSettings,
    out: StorefrontReadback,
}

impl BulkSink<Line> for ReadbackSink<'_> {
    type Error = ApiError;

    fn restart(&mut self) {
        self.out = StorefrontReadback::default();
    }

    fn line(&mut self, line: Line) -> Result<(), ApiError> {
        let blank = || StorefrontState {
            tag: None,
            vip_tier: String::new(),
            vip_state: String::new(),
            vip_peak_tier: None,
            clv_blended: Decimal::ZERO,
        };
        let out = &mut self.out;
        match line {
            Line::Customer { id, tags } => {
                self.progress.add(Phase::Reconcile, 1);
                let ours: Vec<String> = tags
                    .into_iter()
                    .filter(|t| self.settings.owns_tag(t))
                    .collect();
                if !ours.is_empty() {
                    out.customers.entry(id.clone()).or_insert_with(blank).tag =
                        Some(ours.join(", "));
                }
                out.known.insert(id);
            }
            Line::Metafield { key, value, parent } => {
                let state = out.customers.entry(parent).or_insert_with(blank);
                match key.as_str() {
                    "vip_tier" => state.vip_tier = value,
                    "vip_state" => state.vip_state = value,
                    "vip_peak_tier" => {
                        state.vip_peak_tier = Some(value).filter(|v| v != "None");
                    }
                    "clv_blended" => {
                        state.clv_blended = Decimal::from_str(&value).unwrap_or_default();
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}
