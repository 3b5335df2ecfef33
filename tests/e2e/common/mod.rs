//! One spawn helper for every end-to-end test: fake Shopify and Klaviyo on port 0, a fresh
//! store directory, and settings (or a config file, for the binary) pointing at them; and the
//! lock that keeps the tests racing a clock from running side by side ([`timing_sensitive`]).

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use tiersync::config::{Authority, LoyaltyPlatform};
use tiersync::sinks::DeliveryReport;
use tiersync::{PassReport, Pipeline, Settings};
use tiersync_mocks::data::{Customer, Order, StoreData};
use tiersync_mocks::{MockOptions, MockServers};
use tokio_util::sync::CancellationToken;

mod timing;
pub use timing::timing_sensitive;

pub const ALICE: (u64, &str) = (1, "alice@example.com");

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
    /// Authenticate as a Dev Dashboard app (client credentials) instead of with the static
    /// token of an admin-created app; see [`TestEnv::use_client_credentials`].
    client_credentials: bool,
}

/// Starts the fakes with `store` loaded and settings aimed at them.
pub async fn spawn(store: StoreData) -> TestEnv {
    spawn_with(store, MockOptions::default()).await
}

/// Like [`spawn`], with the fakes set up by `options` (fault plans, shop plan…).
pub async fn spawn_with(store: StoreData, options: MockOptions) -> TestEnv {
    let servers = MockServers::start(options).await.expect("fakes start");
    servers.shopify.load(store);
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = config_toml(&servers, &dir.path().join("store"), false);
    let settings = Settings::from_toml(&toml).expect("test settings are valid");
    TestEnv {
        servers,
        dir,
        settings,
        client_credentials: false,
    }
}

/// The test configuration; with `client_credentials` the Shopify app's client ID instead of
/// the static token (the secret then comes from the environment, as in production).
fn config_toml(servers: &MockServers, store: &std::path::Path, client_credentials: bool) -> String {
    let credential = if client_credentials {
        format!("client_id = \"{}\"", servers.shopify.client_id())
    } else {
        format!("access_token = \"{}\"", servers.shopify.access_token())
    };
    format!(
        r#"
[shopify]
shop = "tiersync-test"
base_url = "{shopify}"
{credential}
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

# No endpoint unless a test asks for one (TIERSYNC__HTTP__LISTEN): daemons of tests running
# side by side would all want the default port.
[http]
listen = ""
{TIERS}
"#,
        shopify = servers.shopify.base_url(),
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

    /// Authenticates to the fake Shopify as a Dev Dashboard app: client ID and secret, with
    /// expiring tokens from the client credentials grant.
    pub fn use_client_credentials(&mut self) {
        self.client_credentials = true;
        self.settings.shopify.auth = tiersync::config::ShopifyAuth::ClientCredentials {
            client_id: self.servers.shopify.client_id(),
            client_secret: secrecy::SecretString::from(self.servers.shopify.client_secret()),
        };
    }

    /// Writes the settings as a config file for the `tiersync` binary (tweak it further with
    /// `TIERSYNC__…` environment variables on the command; [`TestEnv::binary`] gives the
    /// client secret that way).
    pub fn config_file(&self) -> PathBuf {
        let path = self.dir.path().join("tiersync.toml");
        let toml = config_toml(
            &self.servers,
            &self.settings.store.path,
            self.client_credentials,
        );
        std::fs::write(&path, toml).expect("write config");
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
        if self.client_credentials {
            command.env(
                "TIERSYNC__SHOPIFY__CLIENT_SECRET",
                self.servers.shopify.client_secret(),
            );
        }
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

/// The storefront's delivery in `report`, once it is shown that every write went out: none
/// parked, none left pending or refused in the outbox.
pub fn storefront_all_written(report: &PassReport) -> DeliveryReport {
    let (delivery, outbox) = report.storefront.expect("storefront on");
    assert_eq!(
        (delivery.parked, outbox.pending, outbox.failed),
        (0, 0, 0),
        "{report}"
    );
    delivery
}

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
            changes: Vec::new(),
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

/// A generated store of `customers` (the demo's generator, `seed`), its history ending now.
pub fn generated(customers: usize, seed: u64) -> StoreData {
    tiersync_mocks::generator::generate(&tiersync_mocks::generator::GenConfig {
        customers,
        seed,
        now: Utc::now(),
        ..Default::default()
    })
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

/// Twelve customers whose tiers were worked out by hand against [`TIERS`] (each order's
/// comment says why), and the tier each must get.
pub fn hand_built_store() -> (StoreData, Vec<(&'static str, &'static str)>) {
    let people: [(u64, &str); 12] = [
        ALICE,
        (2, "bob@example.com"),
        (3, "carol@example.com"),
        (4, "dave@example.com"),
        (5, "erin@example.com"),
        (6, "frank@example.com"),
        (7, "grace@example.com"),
        (8, "heidi@example.com"),
        (9, "ivan@example.com"),
        (10, "judy@example.com"),
        (11, "mallory@example.com"),
        (12, "oscar@example.com"),
    ];
    let p = |i: usize| Some(people[i]);
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    let mut orders = vec![
        order(next(), p(0), 30, "100.00").build(), // alice: $100 → None
        order(next(), p(1), 20, "500.00").build(), // bob: exactly $500 → Silver
        order(next(), p(4), 10, "6000.00").build(), // erin: $6,000 → Platinum
        order(next(), p(5), 400, "2000.00").build(), // frank: big order outside the window…
        order(next(), p(5), 15, "100.00").build(), // …and $100 inside → None
        order(next(), p(6), 40, "600.00").refunded("600.00").build(), // grace: refunded in full…
        order(next(), p(6), 35, "100.00").build(), // …plus $100 → None
        order(next(), p(7), 50, "1600.00")
            .refunded("200.00")
            .build(), // heidi: $1,400 net → Silver
        order(next(), p(8), 60, "5000.00").cancelled().build(), // ivan: cancelled $5,000…
        order(next(), p(8), 61, "50.00").build(),  // …plus $50 → None
        order(next(), p(9), 70, "9000.00").test().build(), // judy: a test order…
        order(next(), p(9), 71, "600.00").build(), // …and $600 → Silver
        order(next(), None, 5, "10000.00").build(), // a guest: no customer, no profile
    ];
    for day in 0..2 {
        orders.push(order(next(), p(3), 100 + day, "800.00").build()); // dave: $1,600 → Gold
    }
    for day in 0..5 {
        orders.push(order(next(), p(2), 10 + day, "20.00").build()); // carol: 5 orders → Silver
    }
    for day in 0..10 {
        orders.push(order(next(), p(10), 20 + day, "10.00").build()); // mallory: 10 orders → Gold
    }
    for day in 0..20 {
        orders.push(order(next(), p(11), 30 + day, "5.00").build()); // oscar: 20 orders → Platinum
    }
    let expected = vec![
        ("alice@example.com", "None"),
        ("bob@example.com", "Silver"),
        ("carol@example.com", "Silver"),
        ("dave@example.com", "Gold"),
        ("erin@example.com", "Platinum"),
        ("frank@example.com", "None"),
        ("grace@example.com", "None"),
        ("heidi@example.com", "Silver"),
        ("ivan@example.com", "None"),
        ("judy@example.com", "Silver"),
        ("mallory@example.com", "Gold"),
        ("oscar@example.com", "Platinum"),
    ];
    let customers = people
        .iter()
        .map(|(id, email)| customer(*id, email))
        .collect();
    (store(customers, orders), expected)
}

/// A tier event as the outbox holds it: `customer` entered Gold (`metric` names the flow).
pub fn event_entry(customer: u64, seq: u64, metric: &str) -> tiersync::store::EventEntry {
    tiersync::store::EventEntry {
        customer_id: format!("gid://shopify/Customer/{customer}"),
        seq,
        unique_id: format!("tiersync:{customer}:{seq}"),
        metric: metric.into(),
        email: Some(format!("customer{customer}@example.com")),
        external_id: customer.to_string(),
        from_tier: None,
        to_tier: Some("Gold".into()),
        from_state: "none".into(),
        to_state: "active".into(),
        clv_blended: Decimal::new(162_040, 2),
        peak_tier: Some("Gold".into()),
        reason: "blended CLV 1620.40 ≥ 1500 for Gold".into(),
        time: Utc::now(),
        failed: None,
    }
}
