//! Resource ids shaped like Klaviyo's (26-character ULIDs, time first), so clients that
//! store or log them see realistic values. Unique within one fake: a sequence number fills the
//! random part.

use chrono::{DateTime, Utc};

/// A ULID-shaped id for the `sequence`-th resource of a kind created at `now`.
pub fn ulid(now: DateTime<Utc>, sequence: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = now.timestamp_millis().max(0) as u128;
    let value = (millis << 80) | sequence as u128;
    (0..26)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_26_characters_and_distinct() {
        let now = Utc::now();
        let (a, b) = (ulid(now, 1), ulid(now, 2));
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
        assert!(a.starts_with('0'));
    }
}
