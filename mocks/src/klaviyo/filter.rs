//! Klaviyo's `?filter=` expression language, for the fields `GET /api/profiles` allows:
//! `equals(email,"a@b.com")`, `any(external_id,["1","2"])`, `greater-than(updated,2026-01-01T00:00:00Z)`,
//! nested `and(…)`, `or(…)`, `not(…)`, and a top-level comma list meaning "and". Strings take
//! double or single quotes; datetimes are unquoted (a quoted one is an error, as on Klaviyo).

use chrono::{DateTime, Utc};

use super::errors::ApiError;
use super::profiles::Profile;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `equals` / `any` on an identifier; `values` has one element for `equals`.
    Identifier {
        field: IdField,
        values: Vec<String>,
    },
    /// `greater-than` & co on a timestamp.
    Time {
        field: TimeField,
        op: Comparison,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdField {
    Id,
    Email,
    PhoneNumber,
    ExternalId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    Created,
    Updated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    GreaterThan,
    GreaterOrEqual,
    LessThan,
    LessOrEqual,
}

impl Filter {
    /// Parses a whole `filter` parameter value (already URL-decoded).
    pub fn parse(input: &str) -> Result<Filter, ApiError> {
        let mut parser = Parser { input, pos: 0 };
        let mut terms = vec![parser.expression()?];
        while parser.eat(',') {
            terms.push(parser.expression()?);
        }
        parser.skip_spaces();
        if parser.pos != input.len() {
            return Err(parser.error("unexpected trailing input"));
        }
        Ok(match terms.len() {
            1 => terms.remove(0),
            _ => Filter::And(terms),
        })
    }

    pub fn matches(&self, profile: &Profile) -> bool {
        match self {
            Filter::And(terms) => terms.iter().all(|t| t.matches(profile)),
            Filter::Or(terms) => terms.iter().any(|t| t.matches(profile)),
            Filter::Not(term) => !term.matches(profile),
            Filter::Identifier { field, values } => {
                let actual = match field {
                    IdField::Id => Some(profile.id.as_str()),
                    IdField::Email => profile.email.as_deref(),
                    IdField::PhoneNumber => profile.phone_number.as_deref(),
                    IdField::ExternalId => profile.external_id.as_deref(),
                };
                actual.is_some_and(|actual| {
                    values.iter().any(|v| match field {
                        IdField::Email => v.eq_ignore_ascii_case(actual),
                        _ => v == actual,
                    })
                })
            }
            Filter::Time { field, op, at } => {
                let actual = match field {
                    TimeField::Created => profile.created,
                    TimeField::Updated => profile.updated,
                };
                match op {
                    Comparison::GreaterThan => actual > *at,
                    Comparison::GreaterOrEqual => actual >= *at,
                    Comparison::LessThan => actual < *at,
                    Comparison::LessOrEqual => actual <= *at,
                }
            }
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> ApiError {
        ApiError::invalid_parameter(
            format!("Invalid filter ({what} at position {}).", self.pos),
            "filter",
        )
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ApiError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    /// A bare word: operator, field name or unquoted datetime.
    fn word(&mut self) -> &str {
        self.skip_spaces();
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| matches!(c, '(' | ')' | ',' | '[' | ']') || c.is_whitespace())
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.input[start..self.pos]
    }

    fn expression(&mut self) -> Result<Filter, ApiError> {
        let operator = self.word().to_string();
        self.expect('(')?;
        let filter = match operator.as_str() {
            "and" | "or" => {
                let mut terms = vec![self.expression()?];
                while self.eat(',') {
                    terms.push(self.expression()?);
                }
                if operator == "and" {
                    Filter::And(terms)
                } else {
                    Filter::Or(terms)
                }
            }
            "not" => Filter::Not(Box::new(self.expression()?)),
            _ => self.comparison(&operator)?,
        };
        self.expect(')')?;
        Ok(filter)
    }

    fn comparison(&mut self, operator: &str) -> Result<Filter, ApiError> {
        let field = self.word().to_string();
        self.expect(',')?;
        let id_field = match field.as_str() {
            "id" => Some(IdField::Id),
            "email" => Some(IdField::Email),
            "phone_number" => Some(IdField::PhoneNumber),
            "external_id" => Some(IdField::ExternalId),
            _ => None,
        };
        let time_field = match field.as_str() {
            "created" => Some(TimeField::Created),
            "updated" => Some(TimeField::Updated),
            _ => None,
        };
        let comparison = match operator {
            "greater-than" => Some(Comparison::GreaterThan),
            "greater-or-equal" => Some(Comparison::GreaterOrEqual),
            "less-than" => Some(Comparison::LessThan),
            "less-or-equal" => Some(Comparison::LessOrEqual),
            _ => None,
        };
        match (operator, id_field, time_field, comparison) {
            ("equals", Some(field), _, _) => Ok(Filter::Identifier {
                field,
                values: vec![self.string()?],
            }),
            ("any", Some(field), _, _) => Ok(Filter::Identifier {
                field,
                values: self.string_list()?,
            }),
            (_, _, Some(field), Some(op)) => Ok(Filter::Time {
                field,
                op,
                at: self.datetime()?,
            }),
            (_, None, None, _) => Err(ApiError::invalid_parameter(
                format!("'{field}' is not a valid field for the resource 'profile'."),
                "filter",
            )),
            _ => Err(ApiError::invalid_parameter(
                format!("'{operator}' is not a valid operator for '{field}'."),
                "filter",
            )),
        }
    }

    fn string(&mut self) -> Result<String, ApiError> {
        self.skip_spaces();
        let quote = match self.rest().chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        self.pos += 1;
        let len = self
            .rest()
            .find(quote)
            .ok_or_else(|| self.error("unterminated string"))?;
        let value = self.rest()[..len].to_string();
        self.pos += len + 1;
        Ok(value)
    }

    fn string_list(&mut self) -> Result<Vec<String>, ApiError> {
        self.expect('[')?;
        let mut values = vec![self.string()?];
        while self.eat(',') {
            values.push(self.string()?);
        }
        self.expect(']')?;
        Ok(values)
    }

    fn datetime(&mut self) -> Result<DateTime<Utc>, ApiError> {
        let word = self.word().to_string();
        DateTime::parse_from_rfc3339(&word)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| self.error(&format!("'{word}' is not an unquoted ISO 8601 datetime")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::Map;

    fn profile(email: &str, external_id: &str, updated_hour: u32) -> Profile {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, updated_hour, 0, 0)
            .unwrap();
        Profile {
            id: format!("P{external_id}"),
            email: Some(email.into()),
            phone_number: None,
            external_id: Some(external_id.into()),
            attributes: Map::new(),
            properties: Map::new(),
            created: at,
            updated: at,
        }
    }

    #[test]
    fn equals_email_is_case_insensitive() {
        let filter = Filter::parse(r#"equals(email,"A@Example.com")"#).unwrap();
        assert!(filter.matches(&profile("a@example.com", "1", 0)));
        assert!(!filter.matches(&profile("b@example.com", "1", 0)));
    }

    #[test]
    fn any_takes_a_list_with_either_quote() {
        let filter = Filter::parse(r#"any(external_id,["1", '2'])"#).unwrap();
        assert!(filter.matches(&profile("a@x.com", "2", 0)));
        assert!(!filter.matches(&profile("a@x.com", "3", 0)));
    }

    #[test]
    fn comma_and_and_combine() {
        let a = Filter::parse("greater-than(updated,2026-01-01T05:00:00Z),equals(external_id,'7')")
            .unwrap();
        let b = Filter::parse(
            "and(greater-than(updated,2026-01-01T05:00:00+00:00),equals(external_id,\"7\"))",
        )
        .unwrap();
        for filter in [a, b] {
            assert!(filter.matches(&profile("a@x.com", "7", 6)));
            assert!(!filter.matches(&profile("a@x.com", "7", 5)));
            assert!(!filter.matches(&profile("a@x.com", "8", 6)));
        }
    }

    #[test]
    fn or_and_not() {
        let filter =
            Filter::parse("or(equals(id,'P1'),not(less-than(created,2026-01-01T03:00:00Z)))")
                .unwrap();
        assert!(filter.matches(&profile("a@x.com", "1", 0)));
        assert!(filter.matches(&profile("a@x.com", "2", 4)));
        assert!(!filter.matches(&profile("a@x.com", "2", 1)));
    }

    #[test]
    fn errors_name_the_filter_parameter() {
        for bad in [
            "equals(first_name,'x')",
            "greater-than(email,2026-01-01T00:00:00Z)",
            "greater-than(updated,'2026-01-01T00:00:00Z')",
            "equals(email,\"unterminated)",
            "equals(email,'a@b.com'",
            "equals(email,'a')x",
        ] {
            let error = Filter::parse(bad).unwrap_err();
            assert_eq!(
                error.source,
                Some(super::super::errors::Source::Parameter("filter".into())),
                "{bad}"
            );
        }
    }
}
