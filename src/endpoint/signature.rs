//! Shopify's webhook signature: `X-Shopify-Hmac-Sha256` is the base64 of the HMAC-SHA256 of
//! the raw request body, keyed with the app's secret. Checked on the bytes as received
//! (re-serialized JSON would not match) and in constant time (`aws_lc_rs::hmac::verify`),
//! so the time a refusal takes says nothing about how much of a forged signature was right.

use aws_lc_rs::hmac;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// Why a delivery's signature was refused (logged; the answer is 401 whatever the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-Shopify-Hmac-Sha256` header.
    Unsigned,
    /// The header is not base64 of a SHA-256 digest.
    Malformed,
    /// The signature matches no configured secret: altered body, or another secret.
    Mismatch,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unsigned => "no X-Shopify-Hmac-Sha256 header",
            Refusal::Malformed => "X-Shopify-Hmac-Sha256 is not a base64 SHA-256 digest",
            Refusal::Mismatch => "signature does not match the body and the configured secret",
        }
    }
}

/// Whether `header` signs `body` with one of `secrets` (the current, then the previous one
/// during a rotation).
pub fn verify(body: &[u8], header: Option<&str>, secrets: &[SecretString]) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Unsigned)?;
    let tag = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| Refusal::Malformed)?;
    if tag.len() != hmac::HMAC_SHA256.digest_algorithm().output_len() {
        return Err(Refusal::Malformed);
    }
    let signed_with = |secret: &SecretString| {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
        hmac::verify(&key, body, &tag).is_ok()
    };
    if secrets.iter().any(signed_with) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed apart from this code:
    /// `printf '%s' "$BODY" | openssl dgst -sha256 -hmac hush -binary | base64`.
    const BODY: &str = r#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    const SIGNATURE: &str = "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8=";
    /// The same for an empty body.
    const EMPTY_SIGNATURE: &str = "Knm8rWjeSXNIt2H0AOMT7DQ8/YSy8sQi/pEjbuUmGMs=";

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values.iter().map(|s| SecretString::from(*s)).collect()
    }

    #[test]
    fn a_body_signed_with_the_secret_is_accepted() {
        let hush = secrets(&["hush"]);
        assert_eq!(verify(BODY.as_bytes(), Some(SIGNATURE), &hush), Ok(()));
        assert_eq!(verify(b"", Some(EMPTY_SIGNATURE), &hush), Ok(()));
    }

    #[test]
    fn the_previous_secret_is_accepted_during_a_rotation() {
        let rotating = secrets(&["new-secret", "hush"]);
        assert_eq!(verify(BODY.as_bytes(), Some(SIGNATURE), &rotating), Ok(()));
    }

    #[test]
    fn unsigned_altered_or_foreign_deliveries_are_refused() {
        let hush = secrets(&["hush"]);
        let altered = BODY.replace("jon", "joe");
        assert_eq!(verify(BODY.as_bytes(), None, &hush), Err(Refusal::Unsigned));
        assert_eq!(
            verify(altered.as_bytes(), Some(SIGNATURE), &hush),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(BODY.as_bytes(), Some(SIGNATURE), &secrets(&["other"])),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(BODY.as_bytes(), Some(SIGNATURE), &[]),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(BODY.as_bytes(), Some("not base64!"), &hush),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            verify(BODY.as_bytes(), Some("c2hvcnQ="), &hush),
            Err(Refusal::Malformed),
            "a digest of the wrong length"
        );
    }
}
