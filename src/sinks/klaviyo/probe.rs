//! Proving the Klaviyo key without writing: the cheapest reads of the endpoints tiersync
//! uses. Klaviyo offers no endpoint that lists a key's scopes (its developer community,
//! community.klaviyo.com "API endpoint to know what are the scopes of the API key": "there's
//! no supported endpoint to retrieve the scope of an API key"; the `GET /api/api-keys` of the
//! 2026-07-15 beta revision needs a `credentials:read` scope of its own), and a 401 or 403 is
//! the only answer that tells a wrong key or a missing scope. So a read proves the key and
//! its read scopes, and a write scope is proven only by the first write.

use super::client::{Call, KlaviyoClient, BULK_JOB_LIST, GET_PROFILES};
use crate::http::ApiError;

/// One profile's email (`profiles:read`): proves the key itself. A 401 is a wrong or revoked
/// key, a 403 a key without `profiles:read`.
pub async fn probe_key(client: &KlaviyoClient) -> Result<(), ApiError> {
    probe(
        client,
        &GET_PROFILES,
        "/api/profiles?page[size]=1&fields[profile]=email",
    )
    .await
}

/// The newest profile bulk import job (`lists:read` + `profiles:read`), the read the bulk
/// deliveries poll with.
pub async fn probe_bulk_reads(client: &KlaviyoClient) -> Result<(), ApiError> {
    probe(
        client,
        &BULK_JOB_LIST,
        "/api/profile-bulk-import-jobs?page[size]=1",
    )
    .await
}

/// The scopes tiersync needs that no read can prove: only the first write does.
pub fn write_scopes() -> Vec<&'static str> {
    let mut scopes: Vec<&'static str> = super::CALLS
        .iter()
        .filter(|call| call.method != reqwest::Method::GET)
        .flat_map(|call| call.scopes.iter().copied())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

async fn probe(client: &KlaviyoClient, call: &Call, path: &str) -> Result<(), ApiError> {
    client.send(call, path, None).await.map(drop)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_write_scopes_are_those_of_the_calls_that_write() {
        assert_eq!(
            super::write_scopes(),
            ["events:write", "lists:write", "profiles:write"]
        );
    }
}
