//! `tiersync demo`: the real daemon code against fake Shopify and Klaviyo servers on loopback,
//! with a generated store, so a new user sees what tiersync does without any account.

use anyhow::Context;
use chrono::Utc;
use secrecy::SecretString;
use tiersync_mocks::generator::{generate, GenConfig};
use tiersync_mocks::{MockOptions, MockServers};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::sync::Pipeline;

/// The demo's own configuration (tier levels and pacing), embedded in the binary.
pub const DEMO_TOML: &str = include_str!("../../config/demo.toml");

pub struct DemoOptions {
    pub customers: usize,
    pub seed: u64,
}

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let servers = MockServers::start(MockOptions::default())
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
    servers.shopify.load(store_data);

    let dir = tempfile::tempdir().context("creating a temporary store directory")?;
    let mut settings = Settings::from_toml(DEMO_TOML).context("the embedded demo configuration")?;
    settings.shopify.base_url = servers.shopify.base_url();
    settings.shopify.access_token = SecretString::from(servers.shopify.access_token());
    settings.klaviyo.base_url = servers.klaviyo.base_url();
    settings.klaviyo.api_key = SecretString::from(servers.klaviyo.api_key());
    settings.store.path = dir.path().join("store");

    let pipeline = Pipeline::open(settings).context("opening the checkpoint store")?;
    let cancel = CancellationToken::new();
    for pass in 1..=2 {
        let report = pipeline
            .pass(&cancel)
            .await
            .with_context(|| format!("pass {pass}"))?;
        println!("\npass {pass}\n{report}");
        if pass == 2 {
            if report.delivery.written == 0 && report.klaviyo_calls.requests == 0 {
                println!("  nothing changed, so nothing was written");
            } else {
                anyhow::bail!(
                    "the second pass wrote {} profiles; it should write none",
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
    println!(
        "\nthe fake Klaviyo now holds {} profiles, {} with a vip_tier",
        profiles.len(),
        with_tier
    );
    Ok(())
}
