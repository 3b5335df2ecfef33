//! The profile endpoints: `POST /api/profile-import` (upsert, 201 created / 200 updated),
//! `GET /api/profiles` (filter, sort, paging, sparse fieldsets), `POST /api/profiles`,
//! `GET` and `PATCH /api/profiles/{id}`; and the profile resource they all answer with.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::filter::Filter;
use super::jsonapi::{self, timestamp, Request};
use super::profiles::{Mode, Profile, Written};
use super::spec;
use super::Shared;
use crate::harness::faults::Injected;

/// Standard attributes every profile resource carries (`null` when unset).
const STANDARD_ATTRIBUTES: [&str; 8] = [
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
    "location",
    "last_event_date",
];

/// The `{"type":"profile","id":…,"attributes":{…},"links":{"self":…}}` resource.
pub fn resource(profile: &Profile, base_url: &str, request: Option<&Request>) -> Value {
    let mut attributes = Map::new();
    attributes.insert("email".into(), json!(profile.email));
    attributes.insert("phone_number".into(), json!(profile.phone_number));
    attributes.insert("external_id".into(), json!(profile.external_id));
    for key in STANDARD_ATTRIBUTES {
        let value = profile.attributes.get(key).cloned().unwrap_or(Value::Null);
        attributes.insert(key.into(), value);
    }
    attributes.insert("created".into(), timestamp(profile.created).into());
    attributes.insert("updated".into(), timestamp(profile.updated).into());
    attributes.insert("properties".into(), profile.properties.clone().into());
    if let Some(request) = request {
        attributes = request.sparse("profile", attributes);
    }
    json!({
        "type": "profile",
        "id": profile.id,
        "attributes": attributes,
        "relationships": {
            "lists": { "links": relationship_links(base_url, &profile.id, "lists") },
            "segments": { "links": relationship_links(base_url, &profile.id, "segments") },
        },
        "links": { "self": format!("{base_url}/api/profiles/{}/", profile.id) },
    })
}

fn relationship_links(base_url: &str, id: &str, name: &str) -> Value {
    json!({
        "self": format!("{base_url}/api/profiles/{id}/relationships/{name}/"),
        "related": format!("{base_url}/api/profiles/{id}/{name}/"),
    })
}

/// Runs one profile write and answers with the resource (`created_status` when it was new).
fn write(
    shared: &Shared,
    body: &Value,
    mode: Mode<'_>,
    created_status: StatusCode,
) -> Result<Response, ApiError> {
    let Written { profile, created } =
        shared
            .store()
            .profiles
            .write(&body["data"], mode, "/data", Utc::now())?;
    let status = if created {
        created_status
    } else {
        StatusCode::OK
    };
    let document = json!({ "data": resource(&profile, &shared.base_url, None) });
    Ok(jsonapi::response(status, &document))
}

pub async fn import(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let body = spec::validated(spec::PROFILE_IMPORT, &body)?;
    write(&shared, &body, Mode::Upsert, StatusCode::CREATED)
}

pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let body = spec::validated(spec::CREATE_PROFILE, &body)?;
    write(&shared, &body, Mode::Create, StatusCode::CREATED)
}

pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = spec::validated(spec::UPDATE_PROFILE, &body)?;
    if body["data"]["id"].as_str() != Some(id.as_str()) {
        return Err(ApiError::invalid(
            "The id in the request body does not match the id in the URL.",
            "/data/id",
        ));
    }
    write(&shared, &body, Mode::Update(&id), StatusCode::OK)
}

pub async fn get_one(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let path = format!("/api/profiles/{id}");
    let request = Request::new(&shared.base_url, &path, query.as_deref());
    let store = shared.store();
    let profile = store
        .profiles
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("A profile with id {id} does not exist.")))?;
    let document = json!({
        "data": resource(profile, &shared.base_url, Some(&request)),
        "links": { "self": format!("{}{path}/", shared.base_url) },
    });
    Ok(jsonapi::response(StatusCode::OK, &document))
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    injected: Injected,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let request =
        Request::new(&shared.base_url, "/api/profiles", query.as_deref()).repeating(&injected);
    let filter = request.param("filter").map(Filter::parse).transpose()?;
    let store = shared.store();
    let mut profiles: Vec<&Profile> = store
        .profiles
        .all()
        .iter()
        .filter(|p| filter.as_ref().is_none_or(|f| f.matches(p)))
        .collect();
    if let Some(sort) = request.param("sort") {
        sort_profiles(&mut profiles, sort)?;
    }
    let document = request.page(&profiles, |p| resource(p, &shared.base_url, Some(&request)))?;
    Ok(jsonapi::response(StatusCode::OK, &document))
}

/// `sort=updated`, `-created`, `email`, `id` (stable, so ties keep creation order).
fn sort_profiles(profiles: &mut [&Profile], sort: &str) -> Result<(), ApiError> {
    let (descending, field) = match sort.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, sort),
    };
    match field {
        "created" => profiles.sort_by_key(|p| p.created),
        "updated" => profiles.sort_by_key(|p| p.updated),
        "email" => profiles.sort_by(|a, b| a.email.cmp(&b.email)),
        "id" => profiles.sort_by(|a, b| a.id.cmp(&b.id)),
        _ => {
            return Err(ApiError::invalid_parameter(
                format!("'{sort}' is not a valid sort for the resource 'profile'."),
                "sort",
            ))
        }
    }
    if descending {
        profiles.reverse();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::klaviyo::profiles::Profiles;

    fn stored() -> Profile {
        let mut profiles = Profiles::default();
        let resource = json!({"type": "profile", "attributes": {
            "email": "a@example.com", "first_name": "Ann", "properties": {"Tier": "Gold"}}});
        profiles
            .write(&resource, Mode::Upsert, "/data", Utc::now())
            .expect("valid profile")
            .profile
    }

    #[test]
    fn answers_match_the_spec_response_schemas() {
        let profile = stored();
        let one = json!({ "data": resource(&profile, "http://127.0.0.1:1", None) });
        spec::check_response("PostProfileResponse", &one).unwrap();
        let request = Request::new("http://127.0.0.1:1", "/api/profiles", Some("page[size]=1"));
        let page = request
            .page(&[profile], |p| {
                resource(p, "http://127.0.0.1:1", Some(&request))
            })
            .unwrap();
        spec::check_response("GetProfileResponseCollection", &page).unwrap();
    }
}
