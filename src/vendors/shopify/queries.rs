//! Every GraphQL document tiersync sends to Shopify, in one place so a test can validate each
//! against Shopify's published schema.
//!
//! Customer email comes from the order's own `email` field: `Customer.email` is deprecated
//! from API version 2025-04.

/// One page of orders updated since a time, oldest update first.
/// Cost: 2 + first × 10 (order, customer, and four money bags of one money each) points.
///
/// The order fields both reads select, written once so the page and the bulk read cannot
/// drift apart.
macro_rules! order_fields {
    () => {
        "
      id
      email
      createdAt
      updatedAt
      cancelledAt
      test
      customer { id }
      currentTotalPriceSet { shopMoney { amount currencyCode } }
      originalTotalPriceSet { shopMoney { amount } }
      totalPriceSet { shopMoney { amount } }
      totalRefundedSet { shopMoney { amount } }
    "
    };
}

/// The four totals are what net spend is computed from (see `orders::net_spend`): the current
/// total, the totals before refunds (at checkout and after edits), and every refund.
pub const ORDERS_PAGE: &str = concat!(
    "query TiersyncOrdersPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {",
    order_fields!(),
    "}
  }
}"
);

/// The bulk-operation form of the orders read (no page size: bulk reads everything).
pub const ORDERS_BULK: &str = concat!(
    r#"{
  orders(query: "updated_at:<='{until}'") {
    edges {
      node {"#,
    order_fields!(),
    "}
    }
  }
}"
);

/// Starts a bulk operation.
pub const BULK_RUN: &str = r#"mutation TiersyncBulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"#;

/// A bulk operation's progress (`objectCount`: a bulk mutation's lines done, which times the
/// next poll; `partialDataUrl`: what a failed bulk mutation did).
pub const BULK_STATUS: &str = r#"query TiersyncBulkStatus($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount url partialDataUrl }
  }
}"#;

/// The bulk operation running for this app and shop, if any (one may be left over from a
/// run that was killed).
pub const BULK_CURRENT: &str = r#"query TiersyncBulkCurrent {
  currentBulkOperation { id status errorCode objectCount url }
}"#;

/// The orders page query's cost for a page size, as Shopify computes it.
pub fn orders_page_cost(first: u32) -> f64 {
    2.0 + 10.0 * first as f64
}

/// The largest orders page whose cost stays within Shopify's 1,000-point single-query limit.
pub const MAX_ORDERS_PAGE: u32 = 99;

/// Every document sent in every API version, with its name, for schema validation.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("orders page", ORDERS_PAGE.to_string()),
        (
            "orders bulk",
            bulk_orders_query(chrono::DateTime::UNIX_EPOCH),
        ),
        ("bulk run", BULK_RUN.to_string()),
        ("bulk status", BULK_STATUS.to_string()),
        ("bulk current", BULK_CURRENT.to_string()),
        ("shop time zone", SHOP_TIMEZONE.to_string()),
        ("shop check", SHOP_CHECK.to_string()),
        ("customers bulk", bulk_customers_query("tiersync")),
        ("access scopes", ACCESS_SCOPES.to_string()),
        ("staged upload", STAGED_UPLOAD.to_string()),
        ("bulk run mutation", BULK_RUN_MUTATION.to_string()),
        ("bulk current mutation", BULK_CURRENT_MUTATION.to_string()),
        ("bulk line tags add", BULK_TAGS_ADD.to_string()),
        ("bulk line tags remove", BULK_TAGS_REMOVE.to_string()),
        ("bulk line metafields", BULK_METAFIELDS.to_string()),
    ]
}

/// The bulk read-back of every customer's tags and tiersync's metafields (reconcile). A
/// metafield line follows its customer with `__parentId`.
pub const CUSTOMERS_BULK: &str = r#"{
  customers {
    edges {
      node {
        id
        tags
        metafields(namespace: "{namespace}") {
          edges { node { key value } }
        }
      }
    }
  }
}"#;

/// The customers read-back for a metafield namespace (validated by the configuration: no
/// quotes can reach the document).
pub fn bulk_customers_query(namespace: &str) -> String {
    CUSTOMERS_BULK.replace("{namespace}", namespace)
}

/// The bulk orders document for orders updated up to `until`.
pub fn bulk_orders_query(until: chrono::DateTime<chrono::Utc>) -> String {
    ORDERS_BULK.replace(
        "{until}",
        &until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The shop's time zone, for calendar rules.
pub const SHOP_TIMEZONE: &str = r#"query TiersyncShop {
  shop { ianaTimezone }
}"#;

/// The shop as `tiersync check` shows it: name, time zone and plan. `plan.displayName` is
/// deprecated in 2026-10 for `publicDisplayName`, which 2025-01 lacks; the documents stay valid
/// for both versions.
pub const SHOP_CHECK: &str = r#"query TiersyncShopCheck {
  shop { name ianaTimezone plan { displayName shopifyPlus } }
}"#;

/// The access scopes granted to the app on this shop.
pub const ACCESS_SCOPES: &str = r#"query TiersyncAccessScopes {
  currentAppInstallation { accessScopes { handle } }
}"#;

/// A staged upload target for a bulk mutation's JSONL of variables: the storage URL and the
/// form fields to POST with the file (`key` is the `stagedUploadPath`).
pub const STAGED_UPLOAD: &str = r#"mutation TiersyncStagedUpload($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}"#;

/// Starts a bulk mutation: `mutation` runs once per line of the uploaded file.
pub const BULK_RUN_MUTATION: &str = r#"mutation TiersyncBulkRunMutation($mutation: String!, $stagedUploadPath: String!) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $stagedUploadPath) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"#;

/// The most recent bulk mutation of this app and shop: before API 2026-01, where one runs at a
/// time, finds an operation started just before a crash, before its id was stored.
pub const BULK_CURRENT_MUTATION: &str = r#"query TiersyncBulkCurrentMutation {
  currentBulkOperation(type: MUTATION) { id status errorCode objectCount url partialDataUrl query createdAt }
}"#;

/// A page of the bulk mutations created since a time (`$query`:
/// `operation_type:mutation created_at:>='…'`), for finding one whose start answer was lost
/// among several running at once. `bulkOperations` exists from API 2026-01; the order does
/// not matter to the caller, which reads every page. Cost: 2 + 25 × 1 points.
pub const BULK_MUTATIONS_SINCE: &str = r#"query TiersyncBulkMutationsSince($query: String!, $after: String) {
  bulkOperations(first: 25, after: $after, query: $query, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id query createdAt }
  }
}"#;

/// [`BULK_MUTATIONS_SINCE`]'s cost: a connection of 25 objects.
pub const BULK_MUTATIONS_SINCE_COST: f64 = 27.0;

/// Documents sent only from API version 2026-01 (their fields are absent before), for
/// schema validation against the newer schema alone.
pub fn since_2026_01() -> Vec<(&'static str, String)> {
    vec![("bulk mutations since", BULK_MUTATIONS_SINCE.to_string())]
}

/// One line of a bulk `tagsAdd`: variables `{ "id", "tags" }`.
pub const BULK_TAGS_ADD: &str = r#"mutation TiersyncBulkTagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { userErrors { field message } }
}"#;

/// One line of a bulk `tagsRemove`: variables `{ "id", "tags" }`.
pub const BULK_TAGS_REMOVE: &str = r#"mutation TiersyncBulkTagsRemove($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { userErrors { field message } }
}"#;

/// One line of a bulk `metafieldsSet`: variables `{ "metafields" }` (one customer's four).
pub const BULK_METAFIELDS: &str = r#"mutation TiersyncBulkMetafields($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) { userErrors { field message code elementIndex } }
}"#;
