//! What the app may read and write, by the access scopes it was granted, enforced the way
//! Shopify does:
//! - a root field the scopes do not cover resolves to null with an `ACCESS_DENIED` error
//!   (HTTP 200) naming the scope it needs, e.g. `tagsAdd` without `write_customers`;
//! - without `read_all_orders`, only orders created in the last 60 days exist for the app
//!   (shopify.dev, the `Order` object: "Only the last 60 days' worth of orders from a store
//!   are accessible … by default"), in paged queries and bulk operations alike.
//!
//! A `write_` scope includes its `read_` scope, as on Shopify.

use apollo_compiler::resolvers::FieldError;
use apollo_compiler::response::{GraphQLError, JsonValue};
use chrono::{DateTime, Duration, Utc};

use crate::data::Order;

/// How far back orders are visible without `read_all_orders`.
pub(crate) const ORDER_WINDOW_DAYS: i64 = 60;

/// The start of an access-denied message; [`mark_denied`] recognizes its errors by it.
const DENIED: &str = "Access denied for ";

/// The scopes the default fake app is granted: everything tiersync asks for.
pub(crate) fn default_scopes() -> Vec<String> {
    [
        "read_orders",
        "read_all_orders",
        "read_customers",
        "write_customers",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// One request's view of the shop: the app's scopes and the time the order window ends.
pub(crate) struct Access<'a> {
    scopes: &'a [String],
    now: DateTime<Utc>,
}

impl<'a> Access<'a> {
    pub(crate) fn new(scopes: &'a [String]) -> Access<'a> {
        Access {
            scopes,
            now: Utc::now(),
        }
    }

    /// Whether `scope` is granted (directly, or as the read half of a granted write scope).
    pub(crate) fn has(&self, scope: &str) -> bool {
        let write = scope.strip_prefix("read_").map(|r| format!("write_{r}"));
        self.scopes
            .iter()
            .any(|s| s == scope || Some(s) == write.as_ref())
    }

    /// The error for root field `field` of `parent` (`QueryRoot` or `Mutation`) if the app
    /// lacks the scope it needs.
    pub(crate) fn check(&self, parent: &str, field: &str) -> Result<(), FieldError> {
        let needed = match (parent, field) {
            ("QueryRoot", "orders" | "order") => "read_orders",
            ("QueryRoot", "customers" | "customer") => "read_customers",
            ("Mutation", "tagsAdd" | "tagsRemove" | "metafieldsSet") => "write_customers",
            _ => return Ok(()),
        };
        if self.has(needed) {
            Ok(())
        } else {
            Err(FieldError {
                message: format!(
                    "{DENIED}{field} field. Required access: `{needed}` access scope."
                ),
            })
        }
    }

    /// Whether the app can see `order` (all orders with `read_all_orders`, else those created
    /// in the last 60 days).
    pub(crate) fn sees(&self, order: &Order) -> bool {
        self.has("read_all_orders")
            || order.created_at >= self.now - Duration::days(ORDER_WINDOW_DAYS)
    }

    /// `currentAppInstallation`: the installation and the scopes granted to it.
    pub(crate) fn installation(&self) -> JsonValue {
        let scopes: Vec<JsonValue> = self
            .scopes
            .iter()
            .map(|handle| serde_json::json!({ "handle": handle, "description": "" }).into())
            .collect();
        serde_json::json!({
            "id": "gid://shopify/AppInstallation/1",
            "accessScopes": scopes,
        })
        .into()
    }
}

/// Gives the executor's access-denied field errors Shopify's message and `extensions`.
pub(crate) fn mark_denied(errors: &mut [GraphQLError]) {
    for error in errors.iter_mut() {
        // The executor prefixes a resolver's message.
        let Some(message) = error
            .message
            .strip_prefix("resolver error: ")
            .filter(|m| m.starts_with(DENIED))
        else {
            continue;
        };
        error.message = message.to_owned();
        error
            .extensions
            .insert("code", JsonValue::from("ACCESS_DENIED"));
        error.extensions.insert(
            "documentation",
            JsonValue::from("https://shopify.dev/api/usage/access-scopes"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_scope_includes_its_read_scope() {
        let scopes = vec!["write_customers".to_owned()];
        let access = Access::new(&scopes);
        assert!(access.has("read_customers"));
        assert!(!access.has("read_orders"));
        assert!(access.check("Mutation", "tagsAdd").is_ok());
        let denied = access.check("QueryRoot", "orders").unwrap_err();
        assert_eq!(
            denied.message,
            "Access denied for orders field. Required access: `read_orders` access scope."
        );
    }
}
