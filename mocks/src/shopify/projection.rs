//! Execution by projection: every object the fake serves is first built as the full JSON value
//! of the fields it models, then apollo-compiler's executor projects that value onto the
//! client's selection set (aliases, fragments, `__typename`, variables, null propagation).
//!
//! Bulk operations skip the executor: [`selection`](super::selection) writes each node's
//! JSONL line from the same values (see [`objects::Node`](super::objects::Node)).
//!
//! Keeping the store's view as plain JSON means one generic [`ObjectValue`] serves every type,
//! and a field the fake does not model fails loudly instead of being invented.
//!
//! Two argument-dependent shapes are handled generically:
//! - a `…Connection` field whose full value is an array is paged with
//!   [`connection::page_values`] (`first`, `after`, `last`, `before`, `reverse`) after filtering
//!   items on any other argument naming one of their string fields (e.g. `namespace`);
//! - a single-object field with arguments whose full value is an array (e.g.
//!   `metafield(namespace, key)`) picks the first item whose fields equal the arguments.

use std::borrow::Cow;

use apollo_compiler::resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::schema::Type;

use super::connection;

/// Key under which a full value names its concrete GraphQL type (needed where the schema
/// position is an interface such as `Node`).
pub(crate) const TYPENAME: &str = "__typename";

/// A GraphQL object backed by the full JSON value of its fields.
pub(crate) struct JsonObject<'a> {
    type_name: String,
    fields: Cow<'a, JsonMap>,
}

impl<'a> JsonObject<'a> {
    /// Wraps `fields`; the concrete type is `fields.__typename` if present, else `declared`.
    pub(crate) fn new(fields: Cow<'a, JsonMap>, declared: &str) -> Self {
        let type_name = fields
            .get(TYPENAME)
            .and_then(JsonValue::as_str)
            .unwrap_or(declared)
            .to_owned();
        JsonObject { type_name, fields }
    }
}

impl ObjectValue for JsonObject<'_> {
    fn type_name(&self) -> &str {
        &self.type_name
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let name = info.field_name();
        let ty = &info.field_definition().ty;
        let Some(value) = self.fields.get(name) else {
            return unmodeled(&self.type_name, name, ty);
        };
        let arguments = info.arguments();
        match value {
            JsonValue::Array(items) if is_connection(ty) => {
                let items = items
                    .iter()
                    .filter(|item| matches_arguments(item, arguments))
                    .cloned();
                let page = connection::page_values(items.collect(), arguments)?;
                Ok(resolve(Cow::Owned(page), ty))
            }
            JsonValue::Array(items) if !ty.is_list() && !arguments.is_empty() => {
                match items.iter().find(|item| matches_arguments(item, arguments)) {
                    Some(item) => Ok(resolve(Cow::Borrowed(item), ty)),
                    None => Ok(ResolvedValue::null()),
                }
            }
            _ => Ok(resolve(Cow::Borrowed(value), ty)),
        }
    }
}

/// The answer for a field the full value does not carry: null where the schema allows it,
/// otherwise an explicit error (the fake never invents data).
pub(crate) fn unmodeled<'a>(
    type_name: &str,
    field: &str,
    ty: &Type,
) -> Result<ResolvedValue<'a>, FieldError> {
    if ty.is_non_null() {
        Err(FieldError {
            message: format!("the fake Shopify does not model `{type_name}.{field}`"),
        })
    } else {
        Ok(ResolvedValue::null())
    }
}

/// Turns a full JSON value into what the executor expects for a field of type `ty`.
pub(crate) fn resolve<'a>(value: Cow<'a, JsonValue>, ty: &'a Type) -> ResolvedValue<'a> {
    match value {
        Cow::Borrowed(JsonValue::Array(items)) if ty.is_list() => ResolvedValue::list(
            items
                .iter()
                .map(move |item| resolve(Cow::Borrowed(item), ty.item_type())),
        ),
        Cow::Owned(JsonValue::Array(items)) if ty.is_list() => ResolvedValue::list(
            items
                .into_iter()
                .map(move |item| resolve(Cow::Owned(item), ty.item_type())),
        ),
        Cow::Borrowed(JsonValue::Object(fields)) => ResolvedValue::object(JsonObject::new(
            Cow::Borrowed(fields),
            ty.inner_named_type(),
        )),
        Cow::Owned(JsonValue::Object(fields)) => {
            ResolvedValue::object(JsonObject::new(Cow::Owned(fields), ty.inner_named_type()))
        }
        leaf => ResolvedValue::leaf(leaf.into_owned()),
    }
}

/// Whether the field returns a Relay connection (Shopify names them all `…Connection`).
pub(crate) fn is_connection(ty: &Type) -> bool {
    !ty.is_list() && ty.inner_named_type().ends_with("Connection")
}

/// Whether `item` agrees with every non-paging argument that names one of its string fields.
pub(crate) fn matches_arguments(item: &JsonValue, arguments: &JsonMap) -> bool {
    arguments.iter().all(|(name, wanted)| {
        if connection::is_paging_argument(name.as_str()) || wanted.is_null() {
            return true;
        }
        match item.get(name.as_str()) {
            Some(JsonValue::String(actual)) => Some(actual.as_str()) == wanted.as_str(),
            _ => true,
        }
    })
}
