//! `tiersync demo`: the real daemon code against fake Shopify and Klaviyo servers on loopback,
//! with a generated store, so a new user sees what tiersync does without any account.

use anyhow::Context;
use chrono::Utc;
use secrecy::SecretString;
use tiersync_mocks::generator::{generate, loyalty_members, GenConfig};
use tiersync_mocks::shopify::ShopifyOptions;
use tiersync_mocks::{MockOptions, MockServers};
use tokio_util::sync::CancellationToken;

use crate::config::{LoyaltyPlatform, Settings, ShopifyAuth};
use crate::ops::explain::explain;
use crate::ops::DemoOptions;
use crate::sync::Pipeline;

/// Edits what a merchant's staff might edit by hand: a Gold customer retagged Platinum in
/// Shopify admin (next to a tag of their own), and a VIP's `vip_tier` changed in Klaviyo.
fn inject_drift(servers: &MockServers, store: &crate::store::Store) -> anyhow::Result<()> {
    let mut gold = Vec::new();
    for record in store.customers() {
        let record = record?;
        if record.tier.level.as_deref() == Some("Gold") && record.email.is_some() {
            gold.push(record);
        }
        if gold.len() == 2 {
            break;
        }
    }
    let [retagged, edited] = gold.as_slice() else {
        return Ok(());
    };
    let id: u64 = retagged
        .id
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .context("a customer GID")?;
    if let Some(mut customer) = servers.shopify.customer(id) {
        customer.tags = vec!["vip:platinum".into(), "wholesale".into()];
        servers.shopify.upsert_customer(customer);
    }
    let email = edited.email.as_deref().unwrap_or_default();
    servers
        .klaviyo
        .set_property(email, "vip_tier", serde_json::json!("Silver"));
    println!(
        "\n(by hand: {} retagged vip:platinum + wholesale in Shopify admin; {email}'s vip_tier set to Silver in Klaviyo)",
        retagged.email.as_deref().unwrap_or_default()
    );
    Ok(())
}

/// The demo's own configuration (tier levels and pacing), embedded in the binary.
pub const DEMO_TOML: &str = include_str!("../../config/demo.toml");

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    // A Shopify Plus shop (1,000 query points/s): the first sync tags and writes metafields
    // on every VIP, about 12 points each; on a Standard shop (100/s) it takes ten times as
    // long, paced by the same cost bucket.
    let servers = MockServers::start(MockOptions {
        shopify: ShopifyOptions::plus(),
        ..MockOptions::default()
    })
    .await
    .context("starting the fake Shopify and Klaviyo servers")?;
    let store_data = generate(&GenConfig {
        customers: options.customers,
        seed: options.seed,
        now: Utc::now(),
        ..GenConfig::default()
    });
    println!(
        "tiersync demo: a generated store with {} customers and {} orders (seed {}), fake Shopify at {}, fake Klaviyo at {}",
        store_data.customers.len(),
        store_data.orders.len(),
        options.seed,
        servers.shopify.base_url(),
        servers.klaviyo.base_url()
    );
    // Members of a fake Smile.io loyalty program: their points feed the blended CLV.
    let members = loyalty_members(&store_data, options.seed);
    servers.smile.load(&store_data, &members);
    println!(
        "a fake Smile.io loyalty program with {} members",
        members.len()
    );
    servers.shopify.load(store_data);

    let dir = tempfile::tempdir().context("creating a temporary store directory")?;
    let store_path = match &options.store {
        Some(path)
            if path.exists()
                && path
                    .read_dir()
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true) =>
        {
            anyhow::bail!("--store {} is not empty; the demo needs a new directory (its fake servers start fresh)", path.display())
        }
        Some(path) => path.clone(),
        None => dir.path().join("store"),
    };
    let mut settings = Settings::from_toml(DEMO_TOML).context("the embedded demo configuration")?;
    settings.shopify.base_url = servers.shopify.base_url();
    // As a new merchant's app from the Dev Dashboard: expiring tokens from the client
    // credentials grant.
    settings.shopify.auth = ShopifyAuth::ClientCredentials {
        client_id: servers.shopify.client_id(),
        client_secret: SecretString::from(servers.shopify.client_secret()),
    };
    settings.klaviyo.base_url = servers.klaviyo.base_url();
    settings.klaviyo.api_key = SecretString::from(servers.klaviyo.api_key());
    settings.loyalty.platform = LoyaltyPlatform::Smile;
    settings.loyalty.base_url = format!("{}/v1", servers.smile.base_url());
    settings.loyalty.api_key = SecretString::from(servers.smile.api_token());
    settings.loyalty.requests_per_second = 10;
    settings.store.path = store_path.clone();

    let pipeline = Pipeline::open(settings).context("opening the checkpoint store")?;
    let _progress = pipeline.show_progress();
    let cancel = CancellationToken::new();
    for pass in 1..=2 {
        let report = pipeline
            .pass(&cancel)
            .await
            .with_context(|| format!("pass {pass}"))?;
        println!("\npass {pass}\n{report}");
        if pass == 2 {
            let storefront_writes = report.storefront.map_or(0, |(d, _)| d.written);
            if report.delivery.written == 0
                && report.klaviyo_calls.requests == 0
                && storefront_writes == 0
            {
                println!("  nothing changed, so nothing was written");
            } else {
                anyhow::bail!(
                    "the second pass wrote {} profiles and {storefront_writes} Shopify customers; it should write none",
                    report.delivery.written
                );
            }
        }
    }
    let profiles = servers.klaviyo.profiles();
    let with_tier = profiles
        .iter()
        .filter(|p| p.properties.contains_key("vip_tier"))
        .count();
    let customers = servers.shopify.customers();
    let tagged = customers
        .iter()
        .filter(|c| c.tags.iter().any(|t| t.starts_with("vip:")))
        .count();
    println!(
        "\nthe fake Klaviyo now holds {} profiles, {} with a vip_tier; the fake Shopify {} customers, {tagged} with a vip: tag and tiersync metafields",
        profiles.len(),
        with_tier,
        customers.len()
    );

    println!("\n$ tiersync reconcile");
    let reconcile = pipeline
        .reconcile(&cancel, false)
        .await
        .context("reconcile")?;
    println!("{reconcile}");
    if reconcile.drift() != 0 {
        anyhow::bail!("reconcile found drift right after a pass; it should find none");
    }
    inject_drift(&servers, pipeline.store())?;
    println!("\n$ tiersync reconcile --repair");
    let repaired = pipeline
        .reconcile(&cancel, true)
        .await
        .context("reconcile")?;
    println!("{repaired}");
    let after = pipeline
        .reconcile(&cancel, false)
        .await
        .context("reconcile")?;
    println!(
        "\n$ tiersync reconcile\n  drift after the repair: {} (klaviyo {}, shopify {})",
        after.drift(),
        after.klaviyo.total(),
        after.storefront.as_ref().map_or(0, |d| d.total())
    );

    // One customer explained: the highest blended CLV with an email.
    let top = pipeline
        .store()
        .customers()
        .filter_map(Result::ok)
        .filter(|c| c.email.is_some())
        .max_by_key(|c| c.inputs.blended);
    if let Some(top) = top {
        println!(
            "\n$ tiersync explain {}",
            top.email.as_deref().unwrap_or_default()
        );
        print!(
            "{}",
            explain(pipeline.store(), pipeline.settings(), &top.id)?
        );
    }
    match &options.store {
        Some(path) => println!(
            "\nthe store is kept at {p}; explore it with\n  TIERSYNC__STORE__PATH={p} tiersync explain --config config/demo.toml <email>\n  TIERSYNC__STORE__PATH={p} tiersync calibrate --config config/demo.toml\n  TIERSYNC__STORE__PATH={p} TIERSYNC__LOYALTY__PLATFORM=smile tiersync report --config config/demo.toml --html report.html",
            p = path.display()
        ),
        None => println!(
            "\n(run `tiersync demo --store DIR` to keep the store and explore it with `explain` and `calibrate`)"
        ),
    }
    Ok(())
}
