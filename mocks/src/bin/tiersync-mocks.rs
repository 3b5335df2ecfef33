//! `tiersync-mocks`: runs the fake Shopify, Klaviyo, Smile.io and LoyaltyLion on loopback with a
//! generated store, for trying the daemon by hand, optionally injecting faults at set rates.

use std::time::Duration;

use clap::{CommandFactory, Parser};
use tiersync_mocks::faults::FaultPlan;
use tiersync_mocks::generator::{generate, GenConfig};
use tiersync_mocks::{MockOptions, MockServers};

/// Serve fake Shopify and Klaviyo APIs (and Smile.io and LoyaltyLion) with a seeded store
/// until Ctrl-C.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Port of the fake Shopify Admin API (0 picks a free one).
    #[arg(long, default_value_t = 8081)]
    shopify_port: u16,
    /// Port of the fake Klaviyo API (0 picks a free one).
    #[arg(long, default_value_t = 8082)]
    klaviyo_port: u16,
    /// Customers to generate.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Seed of the generated store.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Faults every fake injects, as KIND=RATE pairs, e.g.
    /// `429=0.1,5xx=0.05,timeout=0.02,malformed=0.01`. Kinds: 429 (half with Retry-After),
    /// throttled (Shopify), 5xx, 500, 502, 503, 401, timeout (or slow), drop, drop-before,
    /// malformed, repeat, lost.
    #[arg(long, value_name = "KIND=RATE,...")]
    faults: Option<String>,
    /// Seed of the fault draws (each fake draws from this seed plus 0 to 3), so a run can be
    /// repeated.
    #[arg(long, default_value_t = 1)]
    fault_seed: u64,
    /// How long a `timeout` fault holds its answer, in seconds (beyond the daemon's request
    /// timeout).
    #[arg(long, default_value_t = 35, value_name = "SECONDS")]
    fault_delay: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let plan = match &args.faults {
        None => FaultPlan::none(),
        Some(spec) => {
            FaultPlan::from_spec(spec, args.fault_seed, Duration::from_secs(args.fault_delay))
                .unwrap_or_else(|error| {
                    Args::command()
                        .error(
                            clap::error::ErrorKind::ValueValidation,
                            format!("--faults: {error}"),
                        )
                        .exit()
                })
        }
    };
    let servers = MockServers::start(
        MockOptions {
            shopify_port: args.shopify_port,
            klaviyo_port: args.klaviyo_port,
            ..MockOptions::default()
        }
        .with_faults(&plan),
    )
    .await?;
    let store = generate(&GenConfig {
        customers: args.customers,
        seed: args.seed,
        ..GenConfig::default()
    });
    let (customers, orders) = (store.customers.len(), store.orders.len());
    servers.shopify.load(store);
    println!("fake Shopify: {}", servers.shopify.base_url());
    println!(
        "  GraphQL:  {}/admin/api/2026-10/graphql.json",
        servers.shopify.base_url()
    );
    println!(
        "  client credentials (Dev Dashboard app): client_id {} client_secret {}",
        servers.shopify.client_id(),
        servers.shopify.client_secret()
    );
    println!(
        "  or a static X-Shopify-Access-Token: {}",
        servers.shopify.access_token()
    );
    println!(
        "  store: {customers} customers, {orders} orders (seed {})",
        args.seed
    );
    println!("fake Klaviyo: {}", servers.klaviyo.base_url());
    println!(
        "  Authorization: Klaviyo-API-Key {}",
        servers.klaviyo.api_key()
    );
    println!("fake Smile.io: {}/v1", servers.smile.base_url());
    println!("  Authorization: Bearer {}", servers.smile.api_token());
    println!("fake LoyaltyLion: {}/v2", servers.loyaltylion.base_url());
    println!("  Authorization: Bearer {}", servers.loyaltylion.api_key());
    if !plan.is_empty() {
        let rates: Vec<String> = plan
            .fault_rates()
            .iter()
            .map(|(fault, rate)| format!("{fault:?} {:.1}%", rate * 100.0))
            .collect();
        println!("faults (seed {}): {}", args.fault_seed, rates.join(", "));
    }
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await
}
