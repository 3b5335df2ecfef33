//! Small wire-format helpers both loyalty fakes use: ISO 8601 timestamps with milliseconds
//! (`2024-04-04T15:10:42.030Z`, as both vendors print them), query strings and Bearer tokens.

use std::collections::HashMap;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, NaiveDate, SecondsFormat, SubsecRound, Utc};

/// `2024-04-04T15:10:42.030Z`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Stored times are kept at the millisecond precision the API prints, so a client's
/// `updated_at_min` taken from a response matches exactly.
pub(crate) fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(3)
}

/// What both fakes do to a customer before storing it: a new one (id 0) takes `next_id`, which
/// then moves past the customer's id; the email is trimmed and lower-cased, and the creation
/// and update times kept at millisecond precision.
pub(crate) fn prepare_customer(
    id: &mut u64,
    next_id: &mut u64,
    email: &mut String,
    times: [&mut DateTime<Utc>; 2],
) {
    if *id == 0 {
        *id = *next_id;
    }
    *next_id = (*next_id).max(*id + 1);
    *email = email.trim().to_lowercase();
    for at in times {
        *at = millis(*at);
    }
}

/// An RFC 3339 date-time, or a bare `YYYY-MM-DD` (midnight UTC).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

/// The query string's parameters (the last value wins when one repeats).
pub(crate) fn query_pairs(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The token of `Authorization: Bearer …`, if that is what was sent.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        let at = parse_time("2024-04-04T15:10:42.030Z").expect("parses");
        assert_eq!(timestamp(at), "2024-04-04T15:10:42.030Z");
        assert_eq!(parse_time("2024-04-04"), parse_time("2024-04-04T00:00:00Z"));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn bearer_scheme_is_required() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }
}
