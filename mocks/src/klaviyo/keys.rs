//! The account's private API keys and what each may do. Klaviyo lets a key be created with
//! full access or with a chosen set of scopes (`profiles:write`, `lists:read`, …), and answers a
//! request whose key lacks a scope its operation requires (the spec's `x-klaviyo-scopes`) with
//! 403 `permission_denied` — after authentication, before the rate limit.

use std::collections::{BTreeSet, HashMap};

use super::errors::ApiError;
use super::spec;

/// What one key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A full-access key (every scope).
    Full,
    /// A custom key with exactly these scopes.
    Scopes(BTreeSet<String>),
}

impl Access {
    /// The scopes of `required` this key lacks, in the spec's order.
    fn missing(&self, required: &[String]) -> Vec<String> {
        match self {
            Access::Full => Vec::new(),
            Access::Scopes(held) => required
                .iter()
                .filter(|scope| !held.contains(*scope))
                .cloned()
                .collect(),
        }
    }
}

#[derive(Debug)]
pub struct Keys {
    by_key: HashMap<String, Access>,
}

impl Keys {
    /// An account whose only key is `full_access_key`, with every scope.
    pub fn new(full_access_key: &str) -> Keys {
        Keys {
            by_key: HashMap::from([(full_access_key.to_string(), Access::Full)]),
        }
    }

    /// Creates a key with exactly `scopes` and returns it.
    pub fn create(&mut self, scopes: &[&str]) -> String {
        let key = format!("pk_scoped_{:032x}", self.by_key.len());
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        self.by_key.insert(key.clone(), Access::Scopes(scopes));
        key
    }

    /// The access of the key sent, or 401 as Klaviyo answers an unknown one.
    pub fn access(&self, sent: &str) -> Result<&Access, ApiError> {
        self.by_key
            .get(sent.trim())
            .ok_or_else(ApiError::authentication_failed)
    }
}

/// 403 when `access` lacks a scope the spec requires for `method` on `path`. Klaviyo's body
/// does not say which scope is missing (see [`ApiError::permission_denied`]), so neither does
/// this one; the missing scopes only go to the fake's debug log.
pub fn check(access: &Access, method: &str, path: &str) -> Result<(), ApiError> {
    let required = spec::required_scopes(method, path).unwrap_or_default();
    let missing = access.missing(required);
    if missing.is_empty() {
        Ok(())
    } else {
        tracing::debug!(method, path, missing = %missing.join(", "), "fake Klaviyo: key lacks scopes");
        Err(ApiError::permission_denied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_key_lacks_what_it_was_not_given() {
        let mut keys = Keys::new("pk_full");
        let key = keys.create(&["profiles:write", "profiles:read"]);
        let access = keys.access(&key).unwrap().clone();
        assert!(check(&access, "POST", "/api/profile-import").is_ok());
        let error = check(&access, "POST", "/api/profile-bulk-import-jobs").unwrap_err();
        assert_eq!(
            (error.status.as_u16(), error.code),
            (403, "permission_denied")
        );
        let full = keys.access("pk_full").unwrap();
        assert!(check(full, "POST", "/api/profile-bulk-import-jobs").is_ok());
        assert_eq!(keys.access("pk_other").unwrap_err().status.as_u16(), 401);
    }
}
