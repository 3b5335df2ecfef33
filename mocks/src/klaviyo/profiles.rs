//! The account's profiles and Klaviyo's write semantics for them, shared by profile-import,
//! `POST`/`PATCH /api/profiles`, bulk import jobs and events (which all upsert profiles):
//! identifiers resolve to one profile or a 409, `properties` merge key by key with `null`
//! removing a key, absent attributes stay untouched, a `null` attribute clears it, and
//! `meta.patch_properties.unset` removes the properties it names. (Bulk import jobs drop the
//! `null`s before they get here: see [`super::bulk_jobs`].)

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::errors::{ApiError, Source};
use super::ids::ulid;

/// A Klaviyo profile as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: String,
    /// Lower-cased, as Klaviyo stores it.
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub external_id: Option<String>,
    /// Other standard attributes as last sent (`first_name`, `location`, `locale`, …).
    pub attributes: Map<String, Value>,
    /// Custom properties.
    pub properties: Map<String, Value>,
    pub created: DateTime<Utc>,
    /// Moves only when a write actually changed something.
    pub updated: DateTime<Utc>,
}

/// What a write is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// `profile-import`: update the profile the identifiers name, or create one.
    Upsert,
    /// `POST /api/profiles`: create, 409 when the identifiers are taken.
    Create,
    /// `PATCH /api/profiles/{id}`: update that profile only.
    Update(&'a str),
}

/// The outcome of a successful write.
#[derive(Debug, Clone)]
pub struct Written {
    pub profile: Profile,
    pub created: bool,
}

/// A fault injected by the test: writes touching this email fail.
#[derive(Debug, Clone)]
struct Rejection {
    status: u16,
    detail: String,
}

const IDENTIFIERS: [&str; 3] = ["email", "phone_number", "external_id"];

#[derive(Debug, Default)]
pub struct Profiles {
    /// Creation order; profiles are never deleted.
    list: Vec<Profile>,
    by_id: HashMap<String, usize>,
    /// Keyed by identifier name, then value (emails lower-cased).
    by_identifier: HashMap<&'static str, HashMap<String, usize>>,
    rejected: HashMap<String, Rejection>,
}

impl Profiles {
    pub fn all(&self) -> &[Profile] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Profile> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    pub fn by_email(&self, email: &str) -> Option<&Profile> {
        self.find("email", &normalize("email", email))
    }

    /// Makes every later write for this email fail with `status` and `detail`.
    pub fn reject_email(&mut self, email: &str, status: u16, detail: &str) {
        let rejection = Rejection {
            status,
            detail: detail.to_string(),
        };
        self.rejected.insert(normalize("email", email), rejection);
    }

    /// Undoes [`Profiles::reject_email`].
    pub fn accept_email(&mut self, email: &str) {
        self.rejected.remove(&normalize("email", email));
    }

    /// A hand edit in the Klaviyo UI: sets (or with `null`, removes) one property.
    pub fn set_property(
        &mut self,
        email: &str,
        key: &str,
        value: Value,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(i) = self.position("email", &normalize("email", email)) else {
            return false;
        };
        let profile = &mut self.list[i];
        merge(&mut profile.properties, key, value);
        profile.updated = now;
        true
    }

    /// Applies one profile resource (`{"type":"profile","id"?,"attributes":{…},"meta"?:{…}}`)
    /// the way Klaviyo does. `pointer` is where the resource sits in the request, for error sources.
    pub fn write(
        &mut self,
        resource: &Value,
        mode: Mode<'_>,
        pointer: &str,
        now: DateTime<Utc>,
    ) -> Result<Written, ApiError> {
        let empty = Map::new();
        let attributes = resource
            .get("attributes")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let at = |key: &str| format!("{pointer}/attributes/{key}");
        let sent = |key: &str| -> Option<String> {
            attributes
                .get(key)
                .and_then(Value::as_str)
                .map(|v| normalize(key, v))
                .filter(|v| !v.is_empty())
        };
        if sent("email").is_some_and(|email| !valid_email(&email)) {
            return Err(ApiError::invalid("Invalid email address", at("email")));
        }
        if sent("phone_number").is_some_and(|phone| !valid_phone(&phone)) {
            return Err(ApiError::invalid(
                "Invalid phone number format (Example of a valid phone number format: +12345678901)",
                at("phone_number"),
            ));
        }

        // `ProfileMeta` belongs to the upsert and partial-update bodies, not to create.
        let unset = match mode {
            Mode::Create => Vec::new(),
            Mode::Upsert | Mode::Update(_) => unset_properties(resource, pointer)?,
        };

        let target = self.target(resource, mode, &sent)?;
        let mut profile = match target {
            Some(i) => self.list[i].clone(),
            None => {
                let identified = IDENTIFIERS
                    .iter()
                    .chain(&["_kx", "anonymous_id"])
                    .any(|key| sent(key).is_some());
                if !identified {
                    return Err(ApiError::invalid(
                        "One of the following identifiers is required: email, phone_number, external_id, anonymous_id.",
                        format!("{pointer}/attributes"),
                    ));
                }
                self.new_profile(now)
            }
        };
        let email_after = sent("email").or_else(|| profile.email.clone());
        let rejected = [profile.email.as_ref(), email_after.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|email| self.rejected.get(email));
        if let Some(rejection) = rejected {
            return Err(ApiError::for_status(rejection.status, None)
                .with_detail(rejection.detail.clone())
                .at(Source::Pointer(at("email"))));
        }

        let before = profile.clone();
        apply(&mut profile, attributes);
        for name in &unset {
            profile.properties.remove(name);
        }
        if target.is_some() && profile != before {
            profile.updated = now;
        }
        let created = target.is_none();
        self.store(profile.clone(), target.map(|_| &before));
        Ok(Written { profile, created })
    }

    /// The existing profile this write changes (`None`: create one), or why it cannot.
    fn target(
        &self,
        resource: &Value,
        mode: Mode<'_>,
        sent: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<usize>, ApiError> {
        let target = match mode {
            Mode::Update(id) => Some(self.index_of(id)?),
            Mode::Upsert => match resource.get("id").and_then(Value::as_str) {
                Some(id) => Some(self.index_of(id)?),
                None => self.resolve(sent)?,
            },
            Mode::Create => match self.resolve(sent)? {
                Some(i) => return Err(ApiError::duplicate_profile(&self.list[i].id)),
                None => None,
            },
        };
        // An update must not take identifiers another profile holds.
        for key in IDENTIFIERS {
            let other = sent(key).and_then(|v| self.position(key, &v));
            if let (Some(i), Some(other)) = (target, other) {
                if i != other {
                    return Err(ApiError::duplicate_profile(&self.list[other].id));
                }
            }
        }
        Ok(target)
    }

    fn new_profile(&self, now: DateTime<Utc>) -> Profile {
        Profile {
            id: ulid(now, self.list.len() as u64),
            email: None,
            phone_number: None,
            external_id: None,
            attributes: Map::new(),
            properties: Map::new(),
            created: now,
            updated: now,
        }
    }

    fn index_of(&self, id: &str) -> Result<usize, ApiError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| ApiError::not_found(format!("A profile with id {id} does not exist.")))
    }

    fn position(&self, key: &str, value: &str) -> Option<usize> {
        self.by_identifier.get(key)?.get(value).copied()
    }

    fn find(&self, key: &str, value: &str) -> Option<&Profile> {
        self.position(key, value).map(|i| &self.list[i])
    }

    /// The one profile the sent identifiers name, `None` for none, 409 for several.
    fn resolve(&self, sent: &dyn Fn(&str) -> Option<String>) -> Result<Option<usize>, ApiError> {
        let mut found: Option<usize> = None;
        // external_id first: Klaviyo prefers it over email, and email over phone.
        for key in ["external_id", "email", "phone_number"] {
            let Some(i) = sent(key).and_then(|v| self.position(key, &v)) else {
                continue;
            };
            match found {
                Some(first) if first != i => {
                    return Err(ApiError::duplicate_profile(&self.list[i].id))
                }
                _ => found = Some(i),
            }
        }
        Ok(found)
    }

    /// Saves `profile` (new, or replacing `before`) and keeps the identifier indexes right.
    fn store(&mut self, profile: Profile, before: Option<&Profile>) {
        let i = match self.by_id.get(&profile.id) {
            Some(&i) => i,
            None => {
                self.list.push(profile.clone());
                self.by_id.insert(profile.id.clone(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        for key in IDENTIFIERS {
            let index = self.by_identifier.entry(key).or_default();
            if let Some(old) = before.and_then(|p| identifier(p, key)) {
                index.remove(old);
            }
            if let Some(new) = identifier(&profile, key) {
                index.insert(new.to_string(), i);
            }
        }
        self.list[i] = profile;
    }
}

fn identifier<'p>(profile: &'p Profile, key: &str) -> Option<&'p str> {
    match key {
        "email" => profile.email.as_deref(),
        "phone_number" => profile.phone_number.as_deref(),
        _ => profile.external_id.as_deref(),
    }
}

/// Applies sent attributes: identifiers and other attributes set or (`null`) cleared,
/// `properties` merged.
fn apply(profile: &mut Profile, attributes: &Map<String, Value>) {
    for (key, value) in attributes {
        let text = value.as_str().map(|v| normalize(key, v));
        match key.as_str() {
            "email" => profile.email = text,
            "phone_number" => profile.phone_number = text,
            "external_id" => profile.external_id = text,
            "properties" => {
                if let Some(properties) = value.as_object() {
                    for (name, value) in properties {
                        merge(&mut profile.properties, name, value.clone());
                    }
                }
            }
            _ => merge(&mut profile.attributes, key, value.clone()),
        }
    }
}

/// The property names `meta.patch_properties.unset` removes (a name or a list of names).
/// `append` and `unappend` edit list properties, which this fake does not model: refused, so a
/// test never passes on an operation the fake silently skipped.
fn unset_properties(resource: &Value, pointer: &str) -> Result<Vec<String>, ApiError> {
    let Some(patch) = resource.pointer("/meta/patch_properties") else {
        return Ok(Vec::new());
    };
    for operation in ["append", "unappend"] {
        if patch.get(operation).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid(
                format!("This fake does not model patch_properties.{operation}."),
                format!("{pointer}/meta/patch_properties/{operation}"),
            ));
        }
    }
    Ok(match patch.get("unset") {
        Some(Value::String(name)) => vec![name.clone()],
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    })
}

fn merge(map: &mut Map<String, Value>, key: &str, value: Value) {
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_string(), value);
    }
}

fn normalize(key: &str, value: &str) -> String {
    match key {
        "email" => value.trim().to_lowercase(),
        _ => value.trim().to_string(),
    }
}

fn valid_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.contains(char::is_whitespace)
    })
}

/// E.164: `+` and 8 to 15 digits.
fn valid_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn import(profiles: &mut Profiles, attributes: Value) -> Result<Written, ApiError> {
        let resource = json!({"type": "profile", "attributes": attributes});
        profiles.write(&resource, Mode::Upsert, "/data", Utc::now())
    }

    #[test]
    fn upsert_creates_then_merges_properties() {
        let mut profiles = Profiles::default();
        let first = import(
            &mut profiles,
            json!({"email": "A@Example.com", "properties": {"Tier": "Gold", "Points": 5}}),
        )
        .unwrap();
        assert!(first.created);
        assert_eq!(first.profile.email.as_deref(), Some("a@example.com"));
        assert_eq!(first.profile.id.len(), 26);

        let second = import(
            &mut profiles,
            json!({"email": "a@example.com", "external_id": "42", "properties": {"Tier": "Silver", "Points": null}}),
        )
        .unwrap();
        assert!(!second.created);
        assert_eq!(second.profile.id, first.profile.id);
        assert_eq!(
            second.profile.properties,
            *json!({"Tier": "Silver"}).as_object().unwrap()
        );
        assert_eq!(profiles.all().len(), 1);
        assert!(profiles.find("external_id", "42").is_some());
    }

    #[test]
    fn identifiers_of_two_profiles_conflict() {
        let mut profiles = Profiles::default();
        let a = import(&mut profiles, json!({"email": "a@x.com"})).unwrap();
        import(&mut profiles, json!({"external_id": "7"})).unwrap();
        let error = import(
            &mut profiles,
            json!({"email": "a@x.com", "external_id": "7"}),
        )
        .unwrap_err();
        assert_eq!(error.status.as_u16(), 409);
        assert_eq!(error.code, "duplicate_profile");
        assert!(error.meta.contains_key("duplicate_profile_id"));

        let patch =
            json!({"type": "profile", "id": a.profile.id, "attributes": {"external_id": "7"}});
        let error = profiles
            .write(&patch, Mode::Update(&a.profile.id), "/data", Utc::now())
            .unwrap_err();
        assert_eq!(error.code, "duplicate_profile");
    }

    #[test]
    fn create_refuses_a_taken_email() {
        let mut profiles = Profiles::default();
        import(&mut profiles, json!({"email": "a@x.com"})).unwrap();
        let resource = json!({"type": "profile", "attributes": {"email": "a@x.com"}});
        let error = profiles
            .write(&resource, Mode::Create, "/data", Utc::now())
            .unwrap_err();
        assert_eq!(error.status.as_u16(), 409);
    }

    #[test]
    fn needs_an_identifier_and_a_valid_email() {
        let mut profiles = Profiles::default();
        let error = import(&mut profiles, json!({"first_name": "Ann"})).unwrap_err();
        assert_eq!(error.code, "invalid");
        let error = import(&mut profiles, json!({"email": "not-an-email"})).unwrap_err();
        assert_eq!(error.detail, "Invalid email address");
        assert_eq!(
            error.source,
            Some(Source::Pointer("/data/attributes/email".into()))
        );
    }

    #[test]
    fn null_clears_an_identifier_and_updated_moves_only_on_change() {
        let mut profiles = Profiles::default();
        let created = import(
            &mut profiles,
            json!({"email": "a@x.com", "external_id": "1"}),
        )
        .unwrap();
        let same = import(&mut profiles, json!({"email": "a@x.com"})).unwrap();
        assert_eq!(same.profile.updated, created.profile.updated);
        let cleared = import(
            &mut profiles,
            json!({"email": "a@x.com", "external_id": null}),
        )
        .unwrap();
        assert_eq!(cleared.profile.external_id, None);
        assert!(profiles.find("external_id", "1").is_none());
    }

    #[test]
    fn rejected_emails_fail_every_write() {
        let mut profiles = Profiles::default();
        import(
            &mut profiles,
            json!({"email": "bad@x.com", "external_id": "9"}),
        )
        .unwrap();
        profiles.reject_email("bad@x.com", 400, "Profile is suppressed");
        let error = import(
            &mut profiles,
            json!({"external_id": "9", "properties": {"a": 1}}),
        )
        .unwrap_err();
        assert_eq!(
            (error.status.as_u16(), error.detail.as_str()),
            (400, "Profile is suppressed")
        );
        profiles.accept_email("bad@x.com");
        assert!(import(&mut profiles, json!({"external_id": "9"})).is_ok());
    }

    #[test]
    fn unset_removes_the_named_properties_and_nothing_else() {
        let mut profiles = Profiles::default();
        import(
            &mut profiles,
            json!({"email": "a@x.com", "properties": {"a": 1, "b": 2, "c": 3}}),
        )
        .unwrap();
        let resource = json!({"type": "profile",
            "attributes": {"email": "a@x.com", "properties": {"c": 4}},
            "meta": {"patch_properties": {"unset": ["a", "missing"]}}});
        let written = profiles
            .write(&resource, Mode::Upsert, "/data", Utc::now())
            .unwrap();
        assert_eq!(
            written.profile.properties,
            *json!({"b": 2, "c": 4}).as_object().unwrap()
        );
        let one = json!({"type": "profile", "attributes": {"email": "a@x.com"},
            "meta": {"patch_properties": {"unset": "b"}}});
        let written = profiles
            .write(&one, Mode::Upsert, "/data", Utc::now())
            .unwrap();
        assert_eq!(
            written.profile.properties,
            *json!({"c": 4}).as_object().unwrap()
        );
        let append = json!({"type": "profile", "attributes": {"email": "a@x.com"},
            "meta": {"patch_properties": {"append": {"skus": "1"}}}});
        let error = profiles
            .write(&append, Mode::Upsert, "/data", Utc::now())
            .unwrap_err();
        assert_eq!(
            error.source,
            Some(Source::Pointer("/data/meta/patch_properties/append".into()))
        );
    }

    #[test]
    fn hand_edits_set_and_remove_properties() {
        let mut profiles = Profiles::default();
        import(
            &mut profiles,
            json!({"email": "a@x.com", "properties": {"Tier": "Gold"}}),
        )
        .unwrap();
        assert!(profiles.set_property("a@x.com", "Tier", json!("Bronze"), Utc::now()));
        assert_eq!(
            profiles.by_email("A@x.com").unwrap().properties["Tier"],
            "Bronze"
        );
        assert!(!profiles.set_property("nobody@x.com", "Tier", json!("Bronze"), Utc::now()));
    }
}
