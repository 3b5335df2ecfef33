//! `tiersync forget <email|id>`: removes one customer's data from the store, for a GDPR
//! erasure request or Shopify's `customers/redact` (which names the customer's id, email and
//! orders). The store's side is [`Store::forget_customer`]; this command finds the customer,
//! refuses while the daemon holds the store, and says plainly what tiersync cannot remove:
//! the copies at the destinations, which only their owners' own deletion can erase.

use std::fmt::Write;

use anyhow::bail;

use crate::config::{LoyaltyPlatform, Settings};
use crate::store::{Forgotten, Store};

/// Opens the store for `forget`, which writes: refused, in one line, while another process
/// (the daemon) holds it, since a running pass could write the customer back mid-way.
pub fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let path = &settings.store.path;
    match Store::open_with_cache(path, settings.store.cache_mb) {
        Ok(store) => Ok(store),
        Err(error) if error.is_locked() => bail!(
            "the store at {} is in use by another tiersync process (the daemon?); stop it (e.g. `systemctl stop tiersync@<shop>`), run `tiersync forget` again, then start it",
            path.display()
        ),
        Err(error) => Err(anyhow::Error::new(error)
            .context(format!("opening the store at {}", path.display()))),
    }
}

/// Who the request names.
enum Subject {
    /// A customer GID (given as a GID or a numeric Shopify id).
    Id(String),
    /// An email address, normalized as orders store it.
    Email(String),
}

fn subject(who: &str) -> Subject {
    let who = who.trim();
    if who.starts_with("gid://") {
        Subject::Id(who.to_string())
    } else if !who.is_empty() && who.bytes().all(|b| b.is_ascii_digit()) {
        Subject::Id(format!("gid://shopify/Customer/{who}"))
    } else {
        Subject::Email(who.to_lowercase())
    }
}

/// Forgets the customer `who` names and returns what to print.
pub fn forget(store: &Store, settings: &Settings, who: &str) -> anyhow::Result<String> {
    let (id, email) = match subject(who) {
        Subject::Id(id) => (Some(id), None),
        Subject::Email(email) => (store.customer_by_email(&email)?, Some(email)),
    };
    let mut out = String::new();
    let forgotten =
        match &id {
            Some(id) => store.forget_customer(id, email.as_deref())?,
            None => Forgotten {
                loyalty_members: usize::from(store.forget_loyalty_member(
                    email.as_deref().expect("an email when no id was found"),
                )?),
                emails: email.iter().cloned().collect(),
                ..Forgotten::default()
            },
        };
    let who = who.trim();
    if forgotten.is_empty() {
        writeln!(
            out,
            "nothing to remove: the store at {} holds no data of `{who}` (already forgotten, or never seen)",
            store.path().display()
        )?;
    } else {
        removed(&mut out, store, id.as_deref().unwrap_or(who), &forgotten)?;
    }
    not_removed(&mut out, settings, &forgotten.emails)?;
    Ok(out)
}

/// The part of the output that lists what left the store.
fn removed(out: &mut String, store: &Store, who: &str, f: &Forgotten) -> std::fmt::Result {
    writeln!(
        out,
        "forgot {who} ({}) in the store at {}:",
        if f.emails.is_empty() {
            "no email".to_string()
        } else {
            f.emails.join(", ")
        },
        store.path().display()
    )?;
    let lines = [
        (f.orders, "order(s) with their amounts and dates"),
        (
            f.order_map_entries,
            "order-map entry(ies) naming the customer",
        ),
        (
            usize::from(f.record),
            "customer record (inputs, tier, clocks) and its checkpoint",
        ),
        (usize::from(f.dirty), "mark waiting for evaluation"),
        (f.transitions, "recorded tier transition(s)"),
        (
            f.loyalty_members,
            "loyalty-app member record(s) (points, app tier)",
        ),
        (f.email_index, "email index entry(ies)"),
        (
            f.pending_writes,
            "pending write(s) to Klaviyo or the storefront",
        ),
        (f.events, "pending Klaviyo event(s)"),
        (
            f.acknowledgements,
            "record(s) of what a destination acknowledged",
        ),
    ];
    for (count, what) in lines.into_iter().filter(|(count, _)| *count > 0) {
        writeln!(out, "  {count:>5} {what}")?;
    }
    Ok(())
}

/// What tiersync cannot remove, said plainly.
fn not_removed(out: &mut String, settings: &Settings, emails: &[String]) -> std::fmt::Result {
    let profile = if emails.is_empty() {
        "the customer's profile".to_string()
    } else {
        format!("the profile of {}", emails.join(", "))
    };
    writeln!(out, "\nNot removed — copies tiersync wrote or read elsewhere, which only their owners can erase:")?;
    writeln!(
        out,
        "  - Klaviyo: {profile}, with the vip_* properties and the tier events tiersync sent. Delete it in Klaviyo (Profiles → the profile → Delete, or Klaviyo's deletion request API `POST /api/data-privacy-deletion-jobs` with the email); Klaviyo then keeps it on its Deleted Profiles page."
    )?;
    writeln!(
        out,
        "  - Shopify: the customer, their orders{} — Shopify's own erasure (the admin's \"Erase personal data\") removes them and is what sends apps `customers/redact`.",
        if settings.storefront.enabled {
            format!(
                ", and the `{}` tag and `{}` metafields tiersync set",
                settings.storefront.tag_prefix, settings.storefront.metafield_namespace
            )
        } else {
            String::new()
        }
    )?;
    if settings.loyalty.platform != LoyaltyPlatform::None {
        writeln!(
            out,
            "  - the loyalty app: the member and their points; delete them in the app's admin."
        )?;
    }
    writeln!(
        out,
        "\nWhile Shopify still returns their orders: polling reads only orders updated after its cursor, so the old orders stay out, but an order of theirs that changes again (a refund, an edit) is read back and the customer reappears with that order; `tiersync rebuild` re-reads every order and brings the whole history back. Erase the customer in Shopify as well."
    )?;
    Ok(())
}
