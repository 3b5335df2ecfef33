//! One GraphQL document writes a batch of customers: per customer a `tagsAdd` and/or a
//! `tagsRemove` (only tiersync's tags: other tags are never touched), and one
//! `metafieldsSet` per six customers (four metafields each, under the per-call maximum of
//! 25). Root fields are aliased so each customer's `userErrors` come back on their own.

use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::config::StorefrontSettings;
use crate::model::StorefrontState;
use crate::store::OutboxEntry;

/// Metafields one `metafieldsSet` call may write (Shopify's maximum).
const METAFIELDS_PER_CALL: usize = 25;
/// Metafields written per customer.
const METAFIELDS_PER_CUSTOMER: usize = 4;
/// What each mutation root field costs in Shopify's calculated query cost.
const MUTATION_COST: f64 = 10.0;

/// What one customer's write sends.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerWrite {
    /// The customer's GID (`gid://shopify/Customer/…`): the `id` of its tag mutations.
    pub customer_gid: String,
    /// `tagsAdd` with this tag.
    pub add: Option<String>,
    /// `tagsRemove` with these tags.
    pub remove: Vec<String>,
    /// `metafieldsSet` inputs (empty: metafields already right).
    pub metafields: Vec<Value>,
}

impl CustomerWrite {
    /// The smallest write that takes Shopify from `held` (what it acknowledged or was read
    /// back holding; `None`: nothing known) to the entry's state.
    pub fn plan(
        entry: &OutboxEntry<StorefrontState>,
        held: Option<&StorefrontState>,
        settings: &StorefrontSettings,
    ) -> CustomerWrite {
        let desired = &entry.state;
        let lower = |t: &str| t.to_lowercase();
        let held_tags: Vec<String> = held
            .and_then(|h| h.tag.as_deref())
            .map(|t| t.split(',').map(|t| t.trim().to_string()).collect())
            .unwrap_or_default();
        let wanted = desired.tag.as_deref().map(lower);
        let add = desired
            .tag
            .clone()
            .filter(|t| held.is_none() || !held_tags.iter().any(|h| lower(h) == lower(t)));
        let remove = held_tags
            .into_iter()
            .filter(|h| settings.owns_tag(h) && Some(lower(h)) != wanted)
            .collect();
        let metafields_right = held.is_some_and(|h| {
            h.vip_tier == desired.vip_tier
                && h.vip_state == desired.vip_state
                && h.vip_peak_tier == desired.vip_peak_tier
                && desired.matches(&StorefrontState {
                    tag: desired.tag.clone(),
                    ..h.clone()
                })
        });
        // Removing someone else's tag from a customer who never held a level needs no
        // metafields on them.
        let nothing_to_show = desired.tag.is_none()
            && desired.vip_peak_tier.is_none()
            && held.is_some_and(|h| h.vip_tier.is_empty());
        let metafields = if metafields_right || nothing_to_show {
            Vec::new()
        } else {
            metafield_inputs(&entry.customer_id, desired, &settings.metafield_namespace)
        };
        CustomerWrite {
            customer_gid: entry.customer_id.clone(),
            add,
            remove,
            metafields,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_none() && self.remove.is_empty() && self.metafields.is_empty()
    }
}

fn metafield_inputs(owner: &str, state: &StorefrontState, namespace: &str) -> Vec<Value> {
    let text = |key: &str, value: &str| {
        json!({ "ownerId": owner, "namespace": namespace, "key": key,
                "type": "single_line_text_field", "value": value })
    };
    vec![
        text("vip_tier", &state.vip_tier),
        text("vip_state", &state.vip_state),
        text(
            "vip_peak_tier",
            state.vip_peak_tier.as_deref().unwrap_or("None"),
        ),
        json!({ "ownerId": owner, "namespace": namespace, "key": "clv_blended",
                "type": "number_decimal", "value": money(state.clv_blended) }),
    ]
}

fn money(amount: Decimal) -> String {
    format!("{:.2}", amount.round_dp(2))
}

/// Where a root field's answer belongs.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A tag mutation of the customer at this index of the batch.
    Tags(usize),
    /// A `metafieldsSet` whose inputs belong, in order, to these customers (four each,
    /// fewer for none: customers without metafield changes are not in it).
    Metafields(Vec<usize>),
}

/// A batch as one document, its variables, its cost, and what each alias answers for.
#[derive(Debug, Clone)]
pub struct Document {
    /// The `mutation` text: one aliased root field per tag mutation and per `metafieldsSet`.
    pub query: String,
    /// Its variables: each customer's id, the tags to add or remove, the metafield inputs.
    pub variables: Value,
    /// Its calculated cost in Shopify's points (10 per root field), reserved from the cost
    /// bucket before it is sent.
    pub cost: f64,
    /// Each root field's alias and whom it answers for, so `outcomes` can pin every
    /// `userErrors` entry on its customer.
    pub fields: Vec<(String, Field)>,
}

/// Builds the document for `writes` (none of them empty).
pub fn build(writes: &[CustomerWrite]) -> Document {
    let mut params = Vec::new();
    let mut body = String::new();
    let mut variables = Map::new();
    let mut fields = Vec::new();
    for (i, write) in writes.iter().enumerate() {
        let mut tags_field = |alias: String, op: &str, tags: Value| {
            let id = format!("id{i}");
            if !variables.contains_key(&id) {
                params.push(format!("${id}: ID!"));
                variables.insert(id.clone(), json!(write.customer_gid));
            }
            params.push(format!("${alias}: [String!]!"));
            variables.insert(alias.clone(), tags);
            body.push_str(&format!(
                "  {alias}: {op}(id: ${id}, tags: ${alias}) {{ userErrors {{ field message }} }}\n"
            ));
            fields.push((alias, Field::Tags(i)));
        };
        if let Some(tag) = &write.add {
            tags_field(format!("add{i}"), "tagsAdd", json!([tag]));
        }
        if !write.remove.is_empty() {
            tags_field(format!("remove{i}"), "tagsRemove", json!(write.remove));
        }
    }
    let with_metafields: Vec<usize> = (0..writes.len())
        .filter(|&i| !writes[i].metafields.is_empty())
        .collect();
    for (g, group) in with_metafields
        .chunks(METAFIELDS_PER_CALL / METAFIELDS_PER_CUSTOMER)
        .enumerate()
    {
        let alias = format!("metafields{g}");
        let inputs: Vec<Value> = group
            .iter()
            .flat_map(|&i| writes[i].metafields.iter().cloned())
            .collect();
        params.push(format!("${alias}: [MetafieldsSetInput!]!"));
        variables.insert(alias.clone(), Value::Array(inputs));
        body.push_str(&format!(
            "  {alias}: metafieldsSet(metafields: ${alias}) {{ userErrors {{ field message code elementIndex }} }}\n"
        ));
        fields.push((alias, Field::Metafields(group.to_vec())));
    }
    let query = format!(
        "mutation TiersyncStorefront({}) {{\n{body}}}",
        params.join(", ")
    );
    Document {
        cost: MUTATION_COST * fields.len() as f64,
        query,
        variables: Value::Object(variables),
        fields,
    }
}

/// Per customer of the batch: `None` when every mutation for it succeeded, or the
/// `userErrors` Shopify gave (`Err` for customers whose metafields were not saved only
/// because another customer's input in the same call failed: they are retried).
pub fn outcomes(
    document: &Document,
    data: &Value,
    batch_len: usize,
) -> Vec<Result<Option<String>, ()>> {
    let mut out: Vec<Result<Option<String>, ()>> = vec![Ok(None); batch_len];
    let refuse = |out: &mut Vec<Result<Option<String>, ()>>, i: usize, message: String| {
        if let Some(slot) = out.get_mut(i) {
            *slot = Ok(Some(match slot {
                Ok(Some(before)) => format!("{before}; {message}"),
                _ => message,
            }));
        }
    };
    for (alias, field) in &document.fields {
        let errors = data
            .get(alias)
            .and_then(|payload| payload.get("userErrors"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match field {
            Field::Tags(i) => {
                for error in &errors {
                    refuse(&mut out, *i, describe(error));
                }
            }
            Field::Metafields(group) if !errors.is_empty() => {
                let mut blamed = vec![false; group.len()];
                for error in &errors {
                    let owner = error
                        .get("elementIndex")
                        .and_then(Value::as_u64)
                        .map(|e| e as usize / METAFIELDS_PER_CUSTOMER)
                        .filter(|&o| o < group.len());
                    match owner {
                        Some(o) => {
                            blamed[o] = true;
                            refuse(&mut out, group[o], describe(error));
                        }
                        // Not tied to an input: the whole call is refused for every one.
                        None => {
                            for (o, &i) in group.iter().enumerate() {
                                blamed[o] = true;
                                refuse(&mut out, i, describe(error));
                            }
                        }
                    }
                }
                for (o, &i) in group.iter().enumerate() {
                    if !blamed[o] && out[i] == Ok(None) {
                        out[i] = Err(());
                    }
                }
            }
            Field::Metafields(_) => {}
        }
    }
    out
}

pub(super) fn describe(error: &Value) -> String {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused");
    let field = error
        .get("field")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    if field.is_empty() {
        message.to_string()
    } else {
        format!("{field}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> StorefrontSettings {
        StorefrontSettings {
            enabled: true,
            tag_prefix: "vip:".into(),
            metafield_namespace: "tiersync".into(),
            customers_per_call: 20,
            bulk_threshold: 500,
            bulk_batch_customers: 50_000,
        }
    }

    fn state(tag: Option<&str>, tier: &str) -> StorefrontState {
        StorefrontState {
            tag: tag.map(str::to_string),
            vip_tier: tier.into(),
            vip_state: "active".into(),
            vip_peak_tier: Some("Gold".into()),
            clv_blended: Decimal::new(12_345, 2),
        }
    }

    fn entry(s: StorefrontState) -> OutboxEntry<StorefrontState> {
        OutboxEntry {
            customer_id: "gid://shopify/Customer/7".into(),
            version: 2,
            state: s,
            enqueued_at: chrono::Utc::now(),
            failed: None,
        }
    }

    #[test]
    fn a_new_vip_gets_its_tag_added_and_nothing_removed() {
        let w = CustomerWrite::plan(&entry(state(Some("vip:gold"), "Gold")), None, &settings());
        assert_eq!(w.add.as_deref(), Some("vip:gold"));
        assert!(w.remove.is_empty());
        assert_eq!(w.metafields.len(), 4);
    }

    #[test]
    fn a_demotion_swaps_the_tag_and_keeps_foreign_tags() {
        let held = state(Some("vip:gold, vip:platinum, wholesale"), "Gold");
        let w = CustomerWrite::plan(
            &entry(state(Some("vip:silver"), "Silver")),
            Some(&held),
            &settings(),
        );
        assert_eq!(w.add.as_deref(), Some("vip:silver"));
        assert_eq!(w.remove, vec!["vip:gold", "vip:platinum"]);
    }

    #[test]
    fn an_unchanged_state_writes_nothing() {
        let s = state(Some("vip:gold"), "Gold");
        assert!(CustomerWrite::plan(&entry(s.clone()), Some(&s), &settings()).is_empty());
    }

    #[test]
    fn metafield_errors_are_tied_to_their_customer_and_the_rest_retried() {
        let s = state(Some("vip:gold"), "Gold");
        let writes: Vec<CustomerWrite> = (0..8)
            .map(|_| CustomerWrite::plan(&entry(s.clone()), None, &settings()))
            .collect();
        let document = build(&writes);
        assert_eq!(document.cost, 10.0 * (8.0 + 2.0));
        let data = json!({
            "metafields0": { "userErrors": [
                { "field": ["metafields", "5", "value"], "message": "Value is invalid", "elementIndex": 5 }
            ] },
            "metafields1": { "userErrors": [] }
        });
        let out = outcomes(&document, &data, 8);
        assert_eq!(
            out[1],
            Ok(Some("metafields.5.value: Value is invalid".into()))
        );
        assert_eq!(out[0], Err(()));
        assert_eq!(out[2], Err(()));
        assert_eq!(out[6], Ok(None));
    }
}
