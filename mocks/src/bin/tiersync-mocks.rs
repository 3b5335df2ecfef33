//! `tiersync-mocks`: runs the fake Shopify and Klaviyo on loopback with a generated store, for
//! trying the daemon by hand.

use clap::Parser;
use tiersync_mocks::generator::{generate, GenConfig};
use tiersync_mocks::{MockOptions, MockServers};

/// Serve fake Shopify and Klaviyo APIs with a seeded store until Ctrl-C.
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
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let servers = MockServers::start(MockOptions {
        shopify_port: args.shopify_port,
        klaviyo_port: args.klaviyo_port,
        ..MockOptions::default()
    })
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
        "  X-Shopify-Access-Token: {}",
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
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await
}
