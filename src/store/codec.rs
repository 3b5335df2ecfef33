//! Record encoding: postcard (compact, fast, serde-driven). The store's schema version, not
//! the encoding, carries compatibility.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value)
        .map_err(|e| StoreError::Write(format!("cannot encode a record: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Decode {
        tree,
        key: key.to_string(),
        detail: e.to_string(),
    })
}
