//! One spawn helper for every end-to-end test: fake Shopify and Klaviyo on port 0, a fresh
//! store directory, and settings (or a config file, for the binary) pointing at them.

#![allow(dead_code)] // each test binary uses a different part of this helper

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use tiersync::config::{Authority, LoyaltyPlatform};
use tiersync::{PassReport, Pipeline, Settings};
use tiersync_mocks::data::{Customer, Order, StoreData};
use tiersync_mocks::{MockOptions, MockServers};
use tokio_util::sync::CancellationToken;

/// Tier levels used by the tests (worked examples are computed against these).
pub const TIERS: &str = r#"
[tiers]
window_days = 365

[[tiers.levels]]
name = "Silver"
min_spend = "500.00"
min_orders = 5

[[tiers.levels]]
name = "Gold"
min_spend = "1500.00"
min_orders = 10

[[tiers.levels]]
name = "Platinum"
min_spend = "5000.00"
min_orders = 20
"#;

pub struct TestEnv {
    pub servers: MockServers,
    pub dir: tempfile::TempDir,
    pub settings: Settings,
}

/// Starts the fakes with `store` loaded and settings aimed at them.
pub async fn spawn(store: StoreData) -> TestEnv {
    let servers = MockServers::start(MockOptions::default())
        .await
        .expect("fakes start");
    servers.shopify.load(store);
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = config_toml(&servers, &dir.path().join("store"));
    let settings = Settings::from_toml(&toml).expect("test settings are valid");
    TestEnv {
        servers,
        dir,
        settings,
    }
}

fn config_toml(servers: &MockServers, store: &std::path::Path) -> String {
    format!(
        r#"
[shopify]
shop = "tiersync-test"
base_url = "{shopify}"
access_token = "{token}"
bulk_poll_interval = "50ms"

[klaviyo]
base_url = "{klaviyo}"
api_key = "{key}"
bulk_poll_interval = "50ms"

[store]
path = "{store}"

[sync]
poll_interval = "1s"
max_retry_time = "20s"
{TIERS}
"#,
        shopify = servers.shopify.base_url(),
        token = servers.shopify.access_token(),
        klaviyo = servers.klaviyo.base_url(),
        key = servers.klaviyo.api_key(),
        store = store.display(),
    )
}

impl TestEnv {
    /// One pass with the library entry point (a fresh pipeline, as a new process would).
    pub async fn pass(&self) -> PassReport {
        let pipeline = Pipeline::open(self.settings.clone()).expect("store opens");
        pipeline
            .pass(&CancellationToken::new())
            .await
            .expect("pass succeeds")
    }

    /// One pass evaluated as of `now` (to let days pass).
    pub async fn pass_at(&self, now: DateTime<Utc>) -> PassReport {
        let pipeline = Pipeline::open(self.settings.clone()).expect("store opens");
        pipeline
            .pass_at(&CancellationToken::new(), now)
            .await
            .expect("pass succeeds")
    }

    /// Writes the settings as a config file for the `tiersync` binary (tweak it further with
    /// `TIERSYNC__…` environment variables on the command).
    pub fn config_file(&self) -> PathBuf {
        let path = self.dir.path().join("tiersync.toml");
        std::fs::write(&path, config_toml(&self.servers, &self.settings.store.path))
            .expect("write config");
        path
    }

    /// The `tiersync` binary with these arguments, its output captured in the file `log`
    /// inside the test directory (read it with [`TestEnv::log`]).
    pub fn binary(&self, args: &[&str], log: &str) -> std::process::Command {
        let file = std::fs::File::create(self.dir.path().join(log)).expect("log file");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tiersync"));
        command
            .args(args)
            .env("RUST_LOG", "tiersync=debug")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        command
    }

    pub fn log(&self, log: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default()
    }

    /// Points the settings at the fake loyalty app of this platform.
    pub fn use_loyalty(&mut self, platform: LoyaltyPlatform, authority: Authority) {
        let (base_url, key) = match platform {
            LoyaltyPlatform::Smile => (
                format!("{}/v1", self.servers.smile.base_url()),
                self.servers.smile.api_token(),
            ),
            LoyaltyPlatform::LoyaltyLion => (
                format!("{}/v2", self.servers.loyaltylion.base_url()),
                self.servers.loyaltylion.api_key(),
            ),
            LoyaltyPlatform::None => (String::new(), String::new()),
        };
        let loyalty = &mut self.settings.loyalty;
        loyalty.platform = platform;
        loyalty.base_url = base_url;
        loyalty.api_key = secrecy::SecretString::from(key);
        loyalty.authority = authority;
        loyalty.requests_per_second = match platform {
            LoyaltyPlatform::Smile => 10,
            _ => 20,
        };
    }

    /// The `vip_tier` the fake Klaviyo holds for an email.
    pub fn klaviyo_tier(&self, email: &str) -> Option<String> {
        let profile = self.servers.klaviyo.profile_by_email(email)?;
        profile
            .properties
            .get("vip_tier")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// Profile writes Klaviyo received (single imports and bulk jobs).
    pub fn profile_writes(&self) -> usize {
        self.servers.klaviyo.count("POST", "/api/profile-import")
            + self
                .servers
                .klaviyo
                .count("POST", "/api/profile-bulk-import-jobs")
    }
}

// ---- hand-built stores --------------------------------------------------------------------

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

pub fn customer(id: u64, email: &str) -> Customer {
    let at = now() - Duration::days(800);
    Customer {
        id,
        email: Some(email.to_string()),
        first_name: format!("Customer{id}"),
        last_name: "Test".into(),
        created_at: at,
        updated_at: at,
        tags: vec![],
    }
}

/// A builder for orders in a hand-built store.
pub struct OrderSpec {
    order: Order,
}

pub fn order(id: u64, customer: Option<(u64, &str)>, days_ago: i64, total: &str) -> OrderSpec {
    let created = now() - Duration::days(days_ago);
    let total: Decimal = total.parse().expect("decimal");
    OrderSpec {
        order: Order {
            id,
            name: format!("#{}", 1000 + id),
            customer_id: customer.map(|c| c.0),
            email: customer.map(|c| c.1.to_string()),
            created_at: created,
            updated_at: created + Duration::minutes(5),
            cancelled_at: None,
            test: false,
            shop_total: total,
            shop_refunded: Decimal::ZERO,
            presentment_currency: "USD".into(),
            presentment_total: total,
            presentment_refunded: Decimal::ZERO,
        },
    }
}

impl OrderSpec {
    pub fn refunded(mut self, amount: &str) -> OrderSpec {
        let amount: Decimal = amount.parse().expect("decimal");
        self.order.shop_refunded = amount;
        self.order.presentment_refunded = amount;
        self.order.updated_at += Duration::days(2);
        self
    }

    pub fn cancelled(mut self) -> OrderSpec {
        self.order.cancelled_at = Some(self.order.created_at + Duration::hours(1));
        self.order.shop_refunded = self.order.shop_total;
        self.order.presentment_refunded = self.order.presentment_total;
        self
    }

    pub fn test(mut self) -> OrderSpec {
        self.order.test = true;
        self
    }

    pub fn build(self) -> Order {
        self.order
    }
}

pub fn store(customers: Vec<Customer>, orders: Vec<Order>) -> StoreData {
    StoreData {
        currency: "USD".into(),
        timezone: "America/New_York".into(),
        customers,
        orders,
    }
}

// ---- an independent oracle ----------------------------------------------------------------

/// What each customer's Klaviyo profile should say, computed straight from the fake store's
/// orders (independently of the daemon's code): external id → (vip_tier, orders_count,
/// clv_historic in cents).
pub fn expected_profiles(
    orders: &[Order],
    now: DateTime<Utc>,
) -> std::collections::HashMap<String, (String, u64, i64)> {
    use std::collections::HashMap;
    let window_start = now - Duration::days(365);
    let mut sums: HashMap<u64, (Decimal, u32, Decimal, u32)> = HashMap::new();
    for o in orders {
        let Some(customer) = o.customer_id else {
            continue;
        };
        let entry = sums.entry(customer).or_default();
        if o.cancelled_at.is_some() || o.test {
            continue;
        }
        let net = o.shop_total - o.shop_refunded;
        entry.0 += net;
        entry.1 += 1;
        if o.created_at >= window_start {
            entry.2 += net;
            entry.3 += 1;
        }
    }
    let levels: [(&str, Decimal, u32); 3] = [
        ("Platinum", Decimal::from(5000), 20),
        ("Gold", Decimal::from(1500), 10),
        ("Silver", Decimal::from(500), 5),
    ];
    sums.into_iter()
        .map(|(customer, (life_net, life_orders, win_net, win_orders))| {
            let tier = levels
                .iter()
                .find(|(_, spend, count)| win_net >= *spend || win_orders >= *count)
                .map(|(name, _, _)| *name)
                .unwrap_or("None");
            let cents = (life_net.round_dp(2) * Decimal::from(100))
                .trunc()
                .to_string()
                .parse()
                .unwrap();
            (
                customer.to_string(),
                (tier.to_string(), u64::from(life_orders), cents),
            )
        })
        .collect()
}

/// What the fake Klaviyo holds, in the oracle's shape.
pub fn klaviyo_profiles(env: &TestEnv) -> std::collections::HashMap<String, (String, u64, i64)> {
    env.servers
        .klaviyo
        .profiles()
        .into_iter()
        .filter_map(|p| {
            let tier = p.properties.get("vip_tier")?.as_str()?.to_string();
            let orders = p.properties.get("orders_count")?.as_u64()?;
            let clv = (p.properties.get("clv_historic")?.as_f64()? * 100.0).round() as i64;
            Some((p.external_id?, (tier, orders, clv)))
        })
        .collect()
}
