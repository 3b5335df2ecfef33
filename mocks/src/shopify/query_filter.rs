//! The subset of Shopify's search syntax (`query:` argument) the daemon relies on:
//! `updated_at:>='2026-01-01T00:00:00Z'`, `created_at:<2026-02-01`, `email:a@b.com`, terms
//! joined by spaces or `AND`.
//!
//! Like Shopify, unknown fields (and values that do not parse) are ignored rather than
//! rejected, so a typo widens the result instead of failing the request.

use chrono::{DateTime, NaiveDate, Utc};

/// A parsed `query:` string: every term must match.
#[derive(Debug, Default)]
pub(crate) struct SearchFilter {
    terms: Vec<Term>,
}

#[derive(Debug)]
enum Term {
    Time {
        field: TimeField,
        op: Comparison,
        at: DateTime<Utc>,
    },
    Email(String),
}

/// The timestamp fields a search can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeField {
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

/// What a searchable, sortable record exposes to the filter and to sorting.
pub(crate) trait Searchable {
    fn id(&self) -> u64;
    fn timestamp(&self, field: TimeField) -> DateTime<Utc>;
    fn email(&self) -> Option<&str>;
}

impl SearchFilter {
    /// Parses a search string; terms the fake does not understand are dropped.
    pub(crate) fn parse(query: &str) -> SearchFilter {
        let terms = tokens(query)
            .into_iter()
            .filter(|token| !token.eq_ignore_ascii_case("AND"))
            .filter_map(|token| parse_term(&token))
            .collect();
        SearchFilter { terms }
    }

    pub(crate) fn matches(&self, record: &impl Searchable) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Time { field, op, at } => {
                let value = record.timestamp(*field);
                match op {
                    Comparison::Less => value < *at,
                    Comparison::LessOrEqual => value <= *at,
                    Comparison::Equal => value == *at,
                    Comparison::GreaterOrEqual => value >= *at,
                    Comparison::Greater => value > *at,
                }
            }
            Term::Email(wanted) => record
                .email()
                .is_some_and(|email| email.eq_ignore_ascii_case(wanted)),
        })
    }
}

/// Splits on whitespace outside quotes, dropping the quotes.
fn tokens(query: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in query.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn parse_term(token: &str) -> Option<Term> {
    let (field, rest) = token.split_once(':')?;
    let (op, value) = [
        (">=", Comparison::GreaterOrEqual),
        ("<=", Comparison::LessOrEqual),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
        ("=", Comparison::Equal),
    ]
    .into_iter()
    .find_map(|(prefix, op)| rest.strip_prefix(prefix).map(|value| (op, value)))
    .unwrap_or((Comparison::Equal, rest));
    let field = match field.to_ascii_lowercase().as_str() {
        "created_at" => TimeField::CreatedAt,
        "updated_at" => TimeField::UpdatedAt,
        "email" => return Some(Term::Email(value.to_owned())),
        _ => return None,
    };
    Some(Term::Time {
        field,
        op,
        at: parse_time(value)?,
    })
}

/// RFC 3339 timestamps, or a bare date meaning its midnight (UTC in the fake).
fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Record(DateTime<Utc>, Option<&'static str>);

    impl Searchable for Record {
        fn id(&self) -> u64 {
            1
        }
        fn timestamp(&self, _: TimeField) -> DateTime<Utc> {
            self.0
        }
        fn email(&self) -> Option<&str> {
            self.1
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn quoted_and_bare_timestamps_compare() {
        let record = Record(at("2026-01-01T00:00:00Z"), None);
        for query in [
            "updated_at:>='2026-01-01T00:00:00Z'",
            "updated_at:>=2026-01-01T00:00:00Z",
            "updated_at:>=\"2026-01-01\"",
            "updated_at:<=2026-01-01T00:00:00Z AND created_at:>2025-12-31T23:59:59Z",
        ] {
            assert!(SearchFilter::parse(query).matches(&record), "{query}");
        }
        for query in ["updated_at:>2026-01-01T00:00:00Z", "updated_at:<2026-01-01"] {
            assert!(!SearchFilter::parse(query).matches(&record), "{query}");
        }
    }

    #[test]
    fn unknown_terms_are_ignored_and_email_matches_case_insensitively() {
        let record = Record(at("2026-01-01T00:00:00Z"), Some("Ann@Example.com"));
        assert!(
            SearchFilter::parse("financial_status:paid email:ann@example.com").matches(&record)
        );
        assert!(!SearchFilter::parse("email:bob@example.com").matches(&record));
    }
}
