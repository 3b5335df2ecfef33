//! The subset of Shopify's search syntax (`query:` argument) the daemon relies on:
//! `updated_at:>='2026-01-01T00:00:00Z'`, `created_at:<2026-02-01`, `email:a@b.com`, an `id:`
//! range (`id:>=1234`), keywords a record type names itself (`status:running`,
//! `operation_type:mutation` on bulk operations), terms joined by spaces or `AND`.
//!
//! Like Shopify, unknown fields (and values that do not parse) are ignored rather than
//! rejected, so a typo widens the result instead of failing the request; a field is unknown
//! when the record type does not have it (see [`Searchable`]).

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
    Id {
        op: Comparison,
        id: u64,
    },
    /// Any other `field:value`, compared case-insensitively with what the record answers
    /// for `field` ([`Searchable::keyword`]).
    Keyword {
        field: String,
        value: String,
    },
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
    /// The time `field` holds; `None` when the record type has no such search field (a term
    /// on it is ignored).
    fn timestamp(&self, field: TimeField) -> Option<DateTime<Utc>>;
    fn email(&self) -> Option<&str>;
    /// The value of a keyword search field (`status`…); `None` when the record type has no
    /// such field (a term on it is ignored).
    fn keyword(&self, _field: &str) -> Option<&str> {
        None
    }
}

impl SearchFilter {
    /// The latest time every match holds in `field` or after (from `>=` and `>` terms): a
    /// search over records indexed by that time may start there.
    pub(crate) fn not_before(&self, field: TimeField) -> Option<DateTime<Utc>> {
        self.terms
            .iter()
            .filter_map(|term| match term {
                Term::Time {
                    field: f,
                    op: Comparison::GreaterOrEqual | Comparison::Greater | Comparison::Equal,
                    at,
                } if *f == field => Some(*at),
                _ => None,
            })
            .max()
    }

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
            Term::Time { field, op, at } => record
                .timestamp(*field)
                .is_none_or(|value| op.holds(value.cmp(at))),
            Term::Email(wanted) => record
                .email()
                .is_some_and(|email| email.eq_ignore_ascii_case(wanted)),
            Term::Id { op, id } => op.holds(record.id().cmp(id)),
            Term::Keyword { field, value } => record
                .keyword(field)
                .is_none_or(|actual| actual.eq_ignore_ascii_case(value)),
        })
    }
}

impl Comparison {
    /// Whether a value that orders `ordering` against the term's operand satisfies it.
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Comparison::Less => ordering == Less,
            Comparison::LessOrEqual => ordering != Greater,
            Comparison::Equal => ordering == Equal,
            Comparison::GreaterOrEqual => ordering != Less,
            Comparison::Greater => ordering == Greater,
        }
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
        "id" => {
            let id = value.parse().ok()?;
            return Some(Term::Id { op, id });
        }
        other => {
            return Some(Term::Keyword {
                field: other.to_owned(),
                value: value.to_owned(),
            })
        }
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
        fn timestamp(&self, _: TimeField) -> Option<DateTime<Utc>> {
            Some(self.0)
        }
        fn email(&self) -> Option<&str> {
            self.1
        }
    }

    /// A record with a keyword field and no `updated_at`, as a bulk operation.
    struct Operation(u64, DateTime<Utc>, &'static str);

    impl Searchable for Operation {
        fn id(&self) -> u64 {
            self.0
        }
        fn timestamp(&self, field: TimeField) -> Option<DateTime<Utc>> {
            (field == TimeField::CreatedAt).then_some(self.1)
        }
        fn email(&self) -> Option<&str> {
            None
        }
        fn keyword(&self, field: &str) -> Option<&str> {
            (field == "status").then_some(self.2)
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
    fn the_lower_bound_on_a_time_is_the_latest_of_its_terms() {
        let filter = SearchFilter::parse(
            "updated_at:>='2026-01-01T00:00:00Z' AND updated_at:>2026-02-01T00:00:00Z \
             created_at:>=2026-03-01T00:00:00Z updated_at:<2026-04-01T00:00:00Z",
        );
        assert_eq!(
            filter.not_before(TimeField::UpdatedAt),
            Some(at("2026-02-01T00:00:00Z"))
        );
        assert_eq!(
            filter.not_before(TimeField::CreatedAt),
            Some(at("2026-03-01T00:00:00Z"))
        );
        let upper_only = SearchFilter::parse("updated_at:<=2026-01-01T00:00:00Z");
        assert_eq!(upper_only.not_before(TimeField::UpdatedAt), None);
    }

    #[test]
    fn unknown_terms_are_ignored_and_email_matches_case_insensitively() {
        let record = Record(at("2026-01-01T00:00:00Z"), Some("Ann@Example.com"));
        assert!(
            SearchFilter::parse("financial_status:paid email:ann@example.com").matches(&record)
        );
        assert!(!SearchFilter::parse("email:bob@example.com").matches(&record));
    }

    #[test]
    fn id_ranges_and_keywords_match_and_fields_a_record_lacks_are_ignored() {
        let op = Operation(7, at("2026-01-01T00:00:00Z"), "RUNNING");
        for query in [
            "id:7",
            "id:>=7 id:<8",
            "status:running",
            "status:RUNNING created_at:>=2026-01-01",
            "updated_at:>2030-01-01 status:running",
            "financial_status:paid",
        ] {
            assert!(SearchFilter::parse(query).matches(&op), "{query}");
        }
        for query in [
            "id:>7",
            "id:<=6",
            "status:completed",
            "created_at:<2026-01-01",
        ] {
            assert!(!SearchFilter::parse(query).matches(&op), "{query}");
        }
        // Orders and customers have no keyword fields: such terms leave them in.
        let record = Record(at("2026-01-01T00:00:00Z"), None);
        assert!(SearchFilter::parse("status:open id:1").matches(&record));
    }
}
