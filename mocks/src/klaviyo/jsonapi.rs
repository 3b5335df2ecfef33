//! The JSON:API conventions every Klaviyo endpoint shares: the `application/vnd.api+json`
//! answer, cursor paging (`page[size]` 1..=100, default 20, `page[cursor]`, `links.next`) and
//! sparse fieldsets (`fields[type]=a,b`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use crate::harness::faults::Injected;

pub const MEDIA_TYPE: &str = "application/vnd.api+json";

/// A JSON:API answer with Klaviyo's media type.
pub fn response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    response
}

/// Timestamps as Klaviyo writes them: `2026-01-01T00:00:00.000000+00:00`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// A request's URL as the collection links need it.
#[derive(Debug, Clone)]
pub struct Request {
    /// e.g. `http://127.0.0.1:4242/api/profiles`
    pub url: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// A page after the first starts half a page early (an injected repeated page).
    pub repeat: bool,
}

impl Request {
    pub fn new(base_url: &str, path: &str, raw_query: Option<&str>) -> Self {
        let query = form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Request {
            url: format!("{base_url}{path}"),
            query,
            repeat: false,
        }
    }

    /// The same request, repeating items of the previous page if `injected` says so and
    /// this is a page after the first.
    pub fn repeating(mut self, injected: &Injected) -> Self {
        self.repeat = injected.repeat_page(self.param("page[cursor]").is_some());
        self
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// This URL with `page[cursor]` set to `cursor`.
    fn with_cursor(&self, cursor: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.query.iter().filter(|(key, _)| key != "page[cursor]") {
            query.append_pair(key, value);
        }
        query.append_pair("page[cursor]", cursor);
        format!("{}?{}", self.url, query.finish())
    }

    fn self_link(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.query)
            .finish();
        format!("{}?{query}", self.url)
    }

    /// One page of `items` as `{"data":[…],"links":{self,next?,prev?}}`.
    pub fn page<T>(&self, items: &[T], render: impl Fn(&T) -> Value) -> Result<Value, ApiError> {
        let size = match self.param("page[size]") {
            None => 20,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|size| (1..=100).contains(size))
                .ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "Page size must be an integer between 1 and 100.",
                        "page[size]",
                    )
                })?,
        };
        let start = match self.param("page[cursor]") {
            None => 0,
            Some(cursor) => decode_cursor(cursor).ok_or_else(|| {
                ApiError::invalid_parameter("Invalid page cursor.", "page[cursor]")
            })?,
        };
        let start = if self.repeat {
            start.saturating_sub((size / 2).max(1))
        } else {
            start
        };
        let end = (start + size).min(items.len());
        let data: Vec<Value> = items
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(render)
            .collect();
        let mut links = Map::new();
        links.insert("self".into(), self.self_link().into());
        if end < items.len() {
            links.insert("next".into(), self.with_cursor(&encode_cursor(end)).into());
        }
        if start > 0 {
            let prev = start.saturating_sub(size);
            links.insert("prev".into(), self.with_cursor(&encode_cursor(prev)).into());
        }
        Ok(json!({ "data": data, "links": links }))
    }

    /// Keeps only the attributes `fields[kind]` asks for (all of them when it is absent).
    /// A dotted field (`location.city`) keeps its top-level attribute whole.
    pub fn sparse(&self, kind: &str, attributes: Map<String, Value>) -> Map<String, Value> {
        let Some(fields) = self.param(&format!("fields[{kind}]")) else {
            return attributes;
        };
        let wanted: Vec<&str> = fields
            .split(',')
            .map(|f| f.split('.').next().unwrap_or(f).trim())
            .collect();
        attributes
            .into_iter()
            .filter(|(key, _)| wanted.contains(&key.as_str()))
            .collect()
    }
}

/// Cursors are opaque to clients; here they hide an offset.
fn encode_cursor(offset: usize) -> String {
    format!("bmV4dDo{offset:x}")
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix("bmV4dDo")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Request {
        Request::new("http://h", "/api/profiles", Some(query))
    }

    #[test]
    fn pages_follow_next_links() {
        let items: Vec<u32> = (0..45).collect();
        let first = request("page[size]=20&filter=x")
            .page(&items, |n| json!(n))
            .unwrap();
        assert_eq!(first["data"].as_array().unwrap().len(), 20);
        assert!(first["links"].get("prev").is_none());
        let next = first["links"]["next"].as_str().unwrap();
        let query = next.split_once('?').unwrap().1;
        let raw: String = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| format!("{k}={v}&"))
            .collect();
        let second = request(&raw).page(&items, |n| json!(n)).unwrap();
        assert_eq!(second["data"][0], 20);
        assert!(second["links"]["prev"].is_string());
        assert!(next.contains("filter=x"));
    }

    #[test]
    fn last_page_has_no_next() {
        let items = [1, 2];
        let page = request("").page(&items, |n| json!(n)).unwrap();
        assert!(page["links"].get("next").is_none());
        assert_eq!(page["links"]["self"], "http://h/api/profiles");
    }

    #[test]
    fn page_size_and_cursor_are_checked() {
        let items = [1];
        for bad in [
            "page[size]=0",
            "page[size]=101",
            "page[size]=x",
            "page[cursor]=zz",
        ] {
            assert!(request(bad).page(&items, |n| json!(n)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sparse_fieldsets_keep_named_attributes() {
        let attributes = json!({"email": "a", "properties": {}, "location": {"city": "x"}});
        let attributes = attributes.as_object().unwrap().clone();
        let kept = request("fields[profile]=email,location.city").sparse("profile", attributes);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["email", "location"]);
    }
}
