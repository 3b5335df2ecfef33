//! The query and mutation roots: each root field builds the full JSON value of what it
//! returns from the shop state, then [`projection::resolve`] hands it to the executor.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::ExecutableDocument;
use chrono::{DateTime, Utc};

use super::access::Access;
use super::connection::{self, connection_json};
use super::graphql::Api;
use super::query_filter::{SearchFilter, Searchable, TimeField};
use super::state::{Shared, ShopState};
use super::{bulk, bulk_list, bulk_mutation, mutations, objects, projection, staged};
use crate::harness::faults::Injected;

/// `QueryRoot` over a snapshot of the shop.
pub(crate) struct QueryRoot<'s> {
    pub state: &'s ShopState,
    pub base_url: &'s str,
    /// The request's injected fault: a root connection's page after `after` may repeat items.
    pub injected: Injected,
    /// What the app's scopes let it see.
    pub access: &'s Access<'s>,
}

impl ObjectValue for QueryRoot<'_> {
    fn type_name(&self) -> &str {
        "QueryRoot"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let state = self.state;
        let args = info.arguments();
        self.access.check("QueryRoot", info.field_name())?;
        let value = match info.field_name() {
            "shop" => objects::shop(state),
            "currentAppInstallation" => self.access.installation(),
            "orders" => list(
                state
                    .orders_updated_since(
                        SearchFilter::parse(string_argument(args, "query"))
                            .not_before(TimeField::UpdatedAt),
                    )
                    .filter(|o| self.access.sees(o)),
                args,
                self.repeat(args),
                |o| objects::order(state, o),
            )?,
            "customers" => list(state.customers.values(), args, self.repeat(args), |c| {
                objects::customer(state, c)
            })?,
            "order" => self.node(string_argument(args, "id"), Some("Order"), info),
            "customer" => self.node(string_argument(args, "id"), Some("Customer"), info),
            "node" => self.node(string_argument(args, "id"), None, info),
            "bulkOperations" => connection_json(
                bulk_list::page(&state.bulk, args)?.map(|op| self.bulk_operation(op, info)),
            ),
            "currentBulkOperation" => state
                .bulk
                .current(bulk::Kind::from_argument(string_argument(args, "type")))
                .map_or(JsonValue::Null, |op| self.bulk_operation(op, info)),
            other => return projection::unmodeled("QueryRoot", other, &info.field_definition().ty),
        };
        Ok(projection::resolve(
            Cow::Owned(value),
            &info.field_definition().ty,
        ))
    }
}

impl QueryRoot<'_> {
    /// Whether this root connection's page repeats items (an injected fault, on a later page).
    fn repeat(&self, args: &JsonMap) -> bool {
        let later_page = args.get("after").is_some_and(|after| !after.is_null());
        self.injected.repeat_page(later_page)
    }

    /// A bulk operation's value; its file is measured first when the request selects
    /// `fileSize` (see [`bulk_export`](super::bulk_export)).
    fn bulk_operation(&self, op: &bulk::BulkOperation, info: &ResolveInfo<'_>) -> JsonValue {
        if selects(info, "fileSize") {
            op.measure(self.access, self.state);
        }
        op.json(self.base_url)
    }

    /// The object behind a global id (of type `only`, when given), or null.
    fn node(&self, gid: &str, only: Option<&str>, info: &ResolveInfo<'_>) -> JsonValue {
        let state = self.state;
        let found =
            match objects::parse_gid(gid).filter(|(kind, _)| only.is_none_or(|o| o == *kind)) {
                Some(("Order", id)) => state
                    .orders
                    .get(&id)
                    .filter(|o| self.access.sees(o))
                    .map(|o| objects::order(state, o)),
                Some(("Customer", id)) => state
                    .customers
                    .get(&id)
                    .map(|c| objects::customer(state, c)),
                Some(("BulkOperation", id)) => {
                    state.bulk.get(id).map(|op| self.bulk_operation(op, info))
                }
                _ => None,
            };
        found.unwrap_or(JsonValue::Null)
    }
}

/// Whether the resolved field's selection asks for a field `name`, directly or through
/// fragments.
fn selects(info: &ResolveInfo<'_>, name: &str) -> bool {
    fn search(document: &ExecutableDocument, set: &SelectionSet, name: &str) -> bool {
        set.selections.iter().any(|selection| match selection {
            Selection::Field(field) => field.name == name,
            Selection::InlineFragment(inline) => search(document, &inline.selection_set, name),
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.fragment_name)
                .is_some_and(|fragment| search(document, &fragment.selection_set, name)),
        })
    }
    info.field_selections()
        .iter()
        .any(|field| search(info.document(), &field.selection_set, name))
}

/// A root connection: filter on `query`, sort on `sortKey` (ties and `ID` by id), page.
fn list<'r, T: Searchable + 'r>(
    records: impl Iterator<Item = &'r T>,
    args: &JsonMap,
    repeat: bool,
    to_json: impl Fn(&T) -> JsonValue,
) -> Result<JsonValue, FieldError> {
    Ok(connection_json(
        page_records(records, args, repeat)?.map(to_json),
    ))
}

/// The page of a root connection's records (see [`list`]); `repeat` as in
/// [`connection::page_repeating`].
pub(crate) fn page_records<'r, T: Searchable + 'r>(
    records: impl Iterator<Item = &'r T>,
    args: &JsonMap,
    repeat: bool,
) -> Result<connection::Page<&'r T>, FieldError> {
    let filter = SearchFilter::parse(string_argument(args, "query"));
    let sort = match string_argument(args, "sortKey") {
        "UPDATED_AT" => Some(TimeField::UpdatedAt),
        "CREATED_AT" | "PROCESSED_AT" => Some(TimeField::CreatedAt),
        _ => None,
    };
    let mut keyed: Vec<(String, &T)> = records
        .filter(|record| filter.matches(*record))
        .map(|record| (sort_key(record, sort), record))
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    connection::page_repeating(keyed, args, repeat)
}

/// A string that orders records like Shopify's sort key, then by id.
fn sort_key(record: &impl Searchable, sort: Option<TimeField>) -> String {
    match sort {
        Some(field) => time_key(record.timestamp(field), record.id()),
        None => format!("{:020}", record.id()),
    }
}

/// A string that orders records by a time, then by id; a record without the time sorts
/// after every one with it.
pub(crate) fn time_key(at: Option<DateTime<Utc>>, id: u64) -> String {
    let at = at.map_or_else(
        || "~".to_owned(),
        |at| at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
    );
    format!("{at}|{id:020}")
}

fn string_argument<'a>(args: &'a JsonMap, name: &str) -> &'a str {
    args.get(name)
        .and_then(JsonValue::as_str)
        .unwrap_or_default()
}

/// `Mutation` over the locked shop; the executor runs its fields one after another.
pub(crate) struct MutationRoot<'s> {
    pub state: RefCell<&'s mut ShopState>,
    pub shared: &'s Arc<Shared>,
    /// The request's API version (a bulk query is validated and run against it).
    pub api: &'static Api,
    pub access: &'s Access<'s>,
}

impl ObjectValue for MutationRoot<'_> {
    fn type_name(&self) -> &str {
        "Mutation"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let args = info.arguments();
        self.access.check("Mutation", info.field_name())?;
        let mut state = self.state.borrow_mut();
        let value = match info.field_name() {
            "tagsAdd" => mutations::change_tags(&mut state, args, mutations::TagChange::Add),
            "tagsRemove" => mutations::change_tags(&mut state, args, mutations::TagChange::Remove),
            "metafieldsSet" => mutations::metafields_set(&mut state, args),
            "bulkOperationRunQuery" => bulk::run_query(self.shared, self.api, &mut state, args),
            "bulkOperationRunMutation" => {
                bulk_mutation::run_mutation(self.shared, self.api, &mut state, args)
            }
            "stagedUploadsCreate" => staged::create(self.shared, &mut state, args),
            other => return projection::unmodeled("Mutation", other, &info.field_definition().ty),
        };
        Ok(projection::resolve(
            Cow::Owned(value),
            &info.field_definition().ty,
        ))
    }
}
