//! Typed settings: built-in defaults, then a TOML file, then `TIERSYNC__SECTION__KEY`
//! environment overrides, validated into [`Settings`].
//!
//! Validation happens once, here, so the rest of the daemon can trust every value. Each error
//! names the key and what is expected, because the person reading it is an operator editing a
//! file at 3 a.m.

mod unknown_keys;
mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use webhooks::WebhookSettings;

/// The documented defaults, compiled in so a config file only needs what differs.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Everything that can be wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(String),
    #[error("invalid configuration key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
    #[error("unknown configuration key `{key}` in {origin}{suggestion}; every key tiersync reads is listed in config/default.toml")]
    Unknown {
        key: String,
        /// The file, or the environment variable that set it.
        origin: String,
        /// ` (did you mean `…`?)`, or empty when no known key is close.
        suggestion: String,
    },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// Validated settings for one store.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[shopify]`: the Admin API that orders, the shop's time zone and the app's scopes are
    /// read from, and that the storefront destination writes through.
    pub shopify: ShopifySettings,
    /// `[klaviyo]`: the profile, bulk-import and event endpoints the tier is written to, with
    /// their rate limits and the metric names flows trigger on.
    pub klaviyo: KlaviyoSettings,
    /// `[store]`: where the checkpoint store lives and how much memory its cache may take.
    pub store: StoreSettings,
    /// `[loyalty]`: the loyalty app whose points feed the blended CLV and whose tiers are
    /// compared with tiersync's (or followed, with `authority = "loyalty"`).
    pub loyalty: LoyaltySettings,
    /// `[sync]`: the daemon's schedule (passes, daily recalculation, reconcile) and every vendor
    /// client's request timeout and retry budget.
    pub sync: SyncSettings,
    /// `[clv]`: how the blended CLV is computed, which `min_clv` and percentile ranks use.
    pub clv: ClvSettings,
    /// `[tiers]`: the levels, how they are placed, and the clocks of the state machine.
    pub tiers: TierSettings,
    /// `[storefront]`: whether and how the tier is written to Shopify customers.
    pub storefront: StorefrontSettings,
    /// `[log]`: how log lines look (the level comes from `RUST_LOG`).
    pub log: LogSettings,
    /// `[http]`: the daemon's endpoint for health checks, status and metrics.
    pub http: HttpSettings,
    /// `[webhooks]`: Shopify order webhooks on that endpoint, which start a pass early.
    pub webhooks: WebhookSettings,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `http.listen`: where `tiersync run` serves `/healthz`, `/readyz`, `/status` and
    /// `/metrics`, and where `tiersync status` asks the running daemon; `None` (an empty
    /// value) turns the endpoint off.
    pub listen: Option<SocketAddr>,
}

/// Whether loading the configuration demands the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// Every credential the daemon uses must be set: commands that call the vendors.
    Required,
    /// Missing credentials are accepted (left empty): commands that only read the store or
    /// ask the daemon (`status`, `explain`, `calibrate`), so an operator's shell needs no
    /// secrets. Settings loaded this way must not build vendor clients.
    NotNeeded,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `log.format`: read once by `main` when it installs the tracing subscriber.
    pub format: LogFormat,
    /// `log.progress_interval`: off a terminal, the most often a progress line is logged.
    pub progress_interval: Duration,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Coloured text on a terminal, plain text elsewhere (journald, a file, a pipe).
    #[default]
    Auto,
    /// Plain text without colour codes, wherever stderr goes.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone)]
pub struct ShopifySettings {
    /// The myshopify subdomain (`acme` for acme.myshopify.com); the default `base_url` is
    /// built from it.
    pub shop: String,
    /// Origin without a trailing slash, e.g. `https://acme.myshopify.com`.
    pub base_url: String,
    /// Admin API version (`YYYY-MM`), part of every GraphQL URL
    /// (`/admin/api/{version}/graphql.json`); Shopify supports each for at least 12 months.
    pub api_version: String,
    /// How tiersync authenticates to the Admin API.
    pub auth: ShopifyAuth,
    /// Run even though the app lacks `read_all_orders`, on the last 60 days of orders only.
    pub accept_partial_history: bool,
    /// Orders per page when orders are read by pages (at most 99: at 10 cost points an order, a
    /// bigger page would pass Shopify's 1,000-point limit on one query).
    pub page_size: u32,
    /// How far behind the stored cursor each incremental read starts again, to catch late
    /// `updated_at` changes (refunds arrive late); the loyalty members' cursor uses it too.
    pub overlap: Duration,
    /// How a first run with no orders cursor reads the history: one bulk operation, or pages.
    pub backfill: Backfill,
    /// How often a running bulk operation's status is polled (the backfill and the storefront
    /// read-back).
    pub bulk_poll_interval: Duration,
    /// The longest wait for the next bytes of a bulk result download (which as a whole has no
    /// time limit).
    pub bulk_read_timeout: Duration,
    /// `None`: ask Shopify.
    pub timezone: Option<chrono_tz::Tz>,
}

/// The Admin API credential: exactly one of the two ways is configured.
#[derive(Debug, Clone)]
pub enum ShopifyAuth {
    /// The static `shpat_` token of a custom app created in the Shopify admin before 2026.
    AccessToken(SecretString),
    /// A Dev Dashboard app installed on the store: expiring tokens from the client
    /// credentials grant.
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
}

/// How a first run with no cursor reads the order history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backfill {
    Bulk,
    Pages,
}

#[derive(Debug, Clone)]
pub struct KlaviyoSettings {
    /// API origin; the tests and `demo` point it at the fake.
    pub base_url: String,
    /// The private API key; never logged (a refused key stops the destination).
    pub api_key: SecretString,
    /// The `revision` header: Klaviyo versions its API by date, and bodies follow it.
    pub revision: String,
    /// From this many pending profile writes on, bulk import jobs instead of one request each.
    pub bulk_threshold: usize,
    /// Profile-import requests in flight at once, so latency does not cap the rate.
    pub concurrency: usize,
    /// Klaviyo's per-second window for the profile endpoints (lower it to share the account).
    pub profiles_per_second: u32,
    /// Klaviyo's per-minute window for the profile endpoints.
    pub profiles_per_minute: u32,
    /// The bulk import job endpoints' per-second window.
    pub bulk_jobs_per_second: u32,
    /// The bulk import job endpoints' per-minute window.
    pub bulk_jobs_per_minute: u32,
    /// How often a running bulk import job is polled.
    pub bulk_poll_interval: Duration,
    /// A pass with nothing to send to Klaviyo proves the key with one read when it was last
    /// proven longer ago than this, so a revoked key stops the destination before a tier
    /// change needs it.
    pub key_check_interval: Duration,
    /// The Events API's per-second window.
    pub events_per_second: u32,
    /// The Events API's per-minute window.
    pub events_per_minute: u32,
    /// From this many tier events ready to send on, they go as event bulk jobs (up to 1,000
    /// events a job) instead of one request each.
    pub event_bulk_threshold: usize,
    /// The event bulk job endpoint's per-second window.
    pub event_bulk_jobs_per_second: u32,
    /// The event bulk job endpoint's per-minute window.
    pub event_bulk_jobs_per_minute: u32,
    /// The metric names the transition events carry: flows trigger on them.
    pub metrics: MetricNames,
}

/// Klaviyo metric names of the transition events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MetricNames {
    /// No level before, a level now.
    pub entered: String,
    /// Promotion, demotion after grace, or a level removed from the configuration.
    pub changed: String,
    /// No order for `tiers.lapse_after_days`.
    pub lapsed: String,
    /// A lapsed customer ordered again and requalified.
    pub welcome_back: String,
}

/// The loyalty app, if any.
#[derive(Debug, Clone)]
pub struct LoyaltySettings {
    /// Which app, if any: picks the client's endpoints and JSON; `None` means no loyalty client,
    /// no points in the blend and no tier comparison.
    pub platform: LoyaltyPlatform,
    /// API origin with its version path (`https://api.smile.io/v1`); the platform's own when the
    /// file leaves it empty, and empty when no platform is set.
    pub base_url: String,
    /// The Bearer key for the app's API; never logged.
    pub api_key: SecretString,
    /// The client's rate limit: the platform's published one (Smile 10, LoyaltyLion 20) unless
    /// the file sets it lower to share the key.
    pub requests_per_second: u32,
    /// Whose tier is propagated: tiersync's computed level, or the loyalty app's tier (the
    /// evaluation then places customers by it). Reconcile's advice on disagreements follows it.
    pub authority: Authority,
    /// Loyalty-app tier name → tiersync level name.
    pub tier_names: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoyaltyPlatform {
    None,
    Smile,
    LoyaltyLion,
}

/// Whose tier is the status tiersync propagates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    Tiersync,
    Loyalty,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Directory of the sled checkpoint store (the order map lives inside it). Keep it on
    /// persistent local disk: without it the next run backfills every order again.
    pub path: PathBuf,
    /// sled's page cache, MiB.
    pub cache_mb: u64,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Time between two passes of `tiersync run`.
    pub poll_interval: Duration,
    /// Timeout of one HTTP request to any vendor, except a bulk result download: that has no
    /// overall limit, and `shopify.bulk_read_timeout` bounds its silences instead.
    pub request_timeout: Duration,
    /// How long one request keeps retrying 429s, 5xx and timeouts before giving up; a write
    /// that gives up stays in the outbox for the next pass.
    pub max_retry_time: Duration,
    /// Shop-local time of the daily recalculation.
    pub recalc_at: chrono::NaiveTime,
    /// How often the daemon reads the destinations back and repairs drift; `None`: never
    /// (only on `tiersync reconcile`).
    pub reconcile_every: Option<Duration>,
}

/// The storefront destination: Shopify customer tags and metafields.
#[derive(Debug, Clone)]
pub struct StorefrontSettings {
    /// Write the tier to Shopify customers. Off, nothing is planned, sent or read back for the
    /// storefront, and the app needs no `write_customers` scope.
    pub enabled: bool,
    /// The one tag tiersync keeps per VIP is this prefix + the level in lower case.
    pub tag_prefix: String,
    /// Namespace of the `vip_tier`, `vip_state`, `vip_peak_tier` and `clv_blended` metafields
    /// tiersync writes and reads back.
    pub metafield_namespace: String,
    /// Customers written per GraphQL document.
    pub customers_per_call: usize,
    /// From this many pending writes on, they go as bulk mutation operations instead of
    /// documents (see `sinks::shopify::bulk`).
    pub bulk_threshold: usize,
    /// Customers per bulk write batch: recorded in the store as a whole before its first
    /// upload, and ended by a barrier (see `sinks::shopify::bulk`).
    pub bulk_batch_customers: usize,
}

impl StorefrontSettings {
    /// The tag for a level: `vip:` + `gold`.
    pub fn tag(&self, level: &str) -> String {
        format!(
            "{}{}",
            self.tag_prefix,
            level.to_lowercase().replace(' ', "-")
        )
    }

    /// Whether a tag is in tiersync's namespace (compared like Shopify: case-insensitively).
    pub fn owns_tag(&self, tag: &str) -> bool {
        tag.len() >= self.tag_prefix.len()
            && tag.is_char_boundary(self.tag_prefix.len())
            && tag[..self.tag_prefix.len()].eq_ignore_ascii_case(&self.tag_prefix)
    }
}

/// The blended CLV and its predictive part.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvSettings {
    /// Months of future purchases the predicted CLV counts (1–120).
    pub horizon_months: u32,
    /// Rate per month that future value is discounted by (0.01 is 1%), as in `lifetimes`.
    pub monthly_discount: f64,
    /// Fewest customers with orders for the fit to be trusted; below it the predicted part is 0
    /// and `explain` says why.
    pub min_customers: usize,
    /// Fewest days of order history (from the earliest first purchase to the recalculation) for
    /// the fit to be trusted; below it the predicted part is 0.
    pub min_history_days: u32,
    /// Shop-currency value of one loyalty point: what a points balance adds to the blend.
    pub point_value: Decimal,
    /// How much each part counts in the blended CLV.
    pub weights: ClvWeights,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvWeights {
    /// Multiplies lifetime net spend (1 by default: real money counts in full).
    pub historic: Decimal,
    /// Multiplies the predicted CLV (0.5 by default: an estimate, so tiers stay anchored on
    /// real spend).
    pub predicted: Decimal,
    /// Multiplies the points balance's value (`point_value` × points).
    pub loyalty: Decimal,
}

/// How levels are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierMode {
    /// By the configured thresholds.
    Fixed,
    /// By share of customers ranked by blended CLV.
    Percentile,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TierSettings {
    /// Whether levels are reached by fixed thresholds or by share of customers ranked by
    /// blended CLV (the cutoffs recomputed at each daily recalculation).
    pub mode: TierMode,
    /// Days back from now within which orders and net spend count toward `min_spend` and
    /// `min_orders`.
    pub window_days: u32,
    /// Days in a row a customer may qualify below the level held before being demoted
    /// (0 demotes at once).
    pub grace_days: u32,
    /// Days without a counted order after which a customer with a level is lapsed: the level
    /// is kept for win-back flows, the perks are off.
    pub lapse_after_days: u32,
    /// Lowest level first.
    pub levels: Vec<Level>,
}

impl TierSettings {
    pub fn level_names(&self) -> Vec<&str> {
        self.levels.iter().map(|l| l.name.as_str()).collect()
    }
}

/// One VIP level: reached by any of its thresholds ("big spender OR frequent buyer").
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// What destinations show (`vip_tier`, the tag's suffix in lower case, the events' tiers)
    /// and what `loyalty.tier_names` maps to; unique, and `"None"` is reserved for no level.
    pub name: String,
    /// Blended CLV at least this.
    pub min_clv: Option<Decimal>,
    /// Net spend within the window at least this.
    pub min_spend: Option<Decimal>,
    /// Orders within the window at least this.
    pub min_orders: Option<u32>,
    /// Percentile mode: the share of customers (percent) placed in this level.
    pub top_percent: Option<Decimal>,
}

impl Settings {
    /// Defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Like [`Settings::load`], for a command that needs no credentials (see
    /// [`Credentials::NotNeeded`]); every other key is validated as usual.
    pub fn load_without_credentials(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, std::env::vars(), Credentials::NotNeeded)
    }

    /// Like [`Settings::load`] with an explicit environment (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        Self::load_from(file, env, Credentials::Required)
    }

    /// Defaults, `file`, then `env`, validated; `credentials` says whether the secrets must be
    /// there.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        credentials: Credentials,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            readable(path)?;
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("TIERSYNC__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("TIERSYNC")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env.clone())),
        );
        let config = builder
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let raw: RawSettings = unknown_keys::deserialize_known(config, &env)?;
        raw.validate(credentials)
    }

    /// Parses a whole configuration from TOML text layered over the defaults (tests, demo).
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let config = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let raw: RawSettings = unknown_keys::deserialize_known(config, &Default::default())?;
        raw.validate(Credentials::Required)
    }
}

/// The configuration file can be opened: a missing file and one the service's user may not
/// read are different mistakes with different fixes (a unit's `DynamicUser` cannot read a
/// root-only directory).
fn readable(path: &Path) -> Result<(), ConfigError> {
    match std::fs::File::open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::Load(format!(
            "no configuration file at {} (pass an existing file with --config)",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(ConfigError::Load(format!(
                "permission denied reading {}: the user tiersync runs as must be able to read the file and every directory above it (under systemd: the unit's User/Group or DynamicUser)",
                path.display()
            )))
        }
        Err(e) => Err(ConfigError::Load(format!("reading {}: {e}", path.display()))),
    }
}

// ---- raw, as written in the file -------------------------------------------------------------

#[derive(Deserialize)]
struct RawSettings {
    shopify: RawShopify,
    klaviyo: RawKlaviyo,
    store: RawStore,
    loyalty: RawLoyalty,
    sync: RawSync,
    clv: RawClv,
    tiers: RawTiers,
    storefront: RawStorefront,
    log: RawLog,
    http: RawHttp,
    webhooks: webhooks::RawWebhooks,
}

#[derive(Deserialize)]
struct RawLog {
    format: String,
    progress_interval: String,
}

#[derive(Deserialize)]
struct RawHttp {
    listen: String,
}

#[derive(Deserialize)]
struct RawStorefront {
    enabled: bool,
    tag_prefix: String,
    metafield_namespace: String,
    customers_per_call: i64,
    bulk_threshold: i64,
    bulk_batch_customers: i64,
}

#[derive(Deserialize)]
struct RawShopify {
    shop: String,
    base_url: String,
    api_version: String,
    access_token: SecretString,
    client_id: String,
    client_secret: SecretString,
    accept_partial_history: bool,
    page_size: i64,
    overlap: String,
    backfill: String,
    bulk_poll_interval: String,
    bulk_read_timeout: String,
    timezone: String,
}

#[derive(Deserialize)]
struct RawKlaviyo {
    base_url: String,
    api_key: SecretString,
    revision: String,
    bulk_threshold: i64,
    concurrency: i64,
    profiles_per_second: i64,
    profiles_per_minute: i64,
    bulk_jobs_per_second: i64,
    bulk_jobs_per_minute: i64,
    bulk_poll_interval: String,
    key_check_interval: String,
    events_per_second: i64,
    events_per_minute: i64,
    event_bulk_threshold: i64,
    event_bulk_jobs_per_second: i64,
    event_bulk_jobs_per_minute: i64,
    metrics: MetricNames,
}

#[derive(Deserialize)]
struct RawLoyalty {
    platform: String,
    base_url: String,
    api_key: SecretString,
    requests_per_second: i64,
    authority: String,
    #[serde(default)]
    tier_names: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawStore {
    path: String,
    cache_mb: i64,
}

#[derive(Deserialize)]
struct RawSync {
    poll_interval: String,
    request_timeout: String,
    max_retry_time: String,
    recalc_at: String,
    reconcile_every: String,
}

#[derive(Deserialize)]
struct RawClv {
    horizon_months: i64,
    monthly_discount: String,
    min_customers: i64,
    min_history_days: i64,
    point_value: String,
    weights: RawWeights,
}

#[derive(Deserialize)]
struct RawWeights {
    historic: String,
    predicted: String,
    loyalty: String,
}

#[derive(Deserialize)]
struct RawTiers {
    mode: String,
    window_days: i64,
    grace_days: i64,
    lapse_after_days: i64,
    levels: Vec<RawLevel>,
}

#[derive(Deserialize)]
struct RawLevel {
    name: String,
    min_clv: Option<String>,
    min_spend: Option<String>,
    min_orders: Option<i64>,
    top_percent: Option<String>,
}

impl RawSettings {
    fn validate(self, credentials: Credentials) -> Result<Settings, ConfigError> {
        let shopify = self.shopify.validate(credentials)?;
        let listen = listen_address(&self.http.listen)?;
        let webhooks = self
            .webhooks
            .validate(&shopify.auth, listen.is_some(), credentials)?;
        Ok(Settings {
            shopify,
            klaviyo: self.klaviyo.validate(credentials)?,
            store: StoreSettings {
                path: non_empty("store.path", &self.store.path)?.into(),
                cache_mb: in_range("store.cache_mb", self.store.cache_mb, 16, 65_536)? as u64,
            },
            loyalty: self.loyalty.validate(credentials)?,
            sync: SyncSettings {
                poll_interval: duration("sync.poll_interval", &self.sync.poll_interval)?,
                request_timeout: duration("sync.request_timeout", &self.sync.request_timeout)?,
                max_retry_time: duration("sync.max_retry_time", &self.sync.max_retry_time)?,
                recalc_at: chrono::NaiveTime::parse_from_str(self.sync.recalc_at.trim(), "%H:%M")
                    .map_err(|_| {
                    invalid(
                        "sync.recalc_at",
                        format!(
                            "`{}` is not a time of day; write HH:MM such as \"03:00\"",
                            self.sync.recalc_at
                        ),
                    )
                })?,
                reconcile_every: match self.sync.reconcile_every.trim() {
                    "" | "never" => None,
                    every => Some(duration("sync.reconcile_every", every)?),
                },
            },
            clv: self.clv.validate()?,
            tiers: self.tiers.validate()?,
            storefront: self.storefront.validate()?,
            log: LogSettings {
                format: match self.log.format.trim() {
                    "auto" => LogFormat::Auto,
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(invalid(
                            "log.format",
                            format!("`{other}` is not a log format; expected \"auto\", \"text\" or \"json\""),
                        ))
                    }
                },
                progress_interval: duration("log.progress_interval", &self.log.progress_interval)?,
            },
            http: HttpSettings { listen },
            webhooks,
        })
    }
}

/// `http.listen`: an `IP:PORT`, or empty for no endpoint.
fn listen_address(value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match value.trim() {
        "" => Ok(None),
        given => given.parse().map(Some).map_err(|_| {
            invalid(
                "http.listen",
                format!("`{given}` is not an IP address and port; write e.g. \"127.0.0.1:9184\" (\"[::1]:9184\" for IPv6), or \"\" to turn the endpoint off"),
            )
        }),
    }
}

impl RawStorefront {
    fn validate(self) -> Result<StorefrontSettings, ConfigError> {
        let tag_prefix = non_empty("storefront.tag_prefix", &self.tag_prefix)?;
        if tag_prefix.contains(',') || tag_prefix.len() > 200 {
            return Err(invalid(
                "storefront.tag_prefix",
                format!("`{tag_prefix}` cannot be a tag prefix: Shopify tags hold no commas and at most 255 characters"),
            ));
        }
        let namespace = non_empty("storefront.metafield_namespace", &self.metafield_namespace)?;
        if namespace.len() < 3
            || namespace.len() > 255
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "storefront.metafield_namespace",
                format!("`{namespace}` is not a metafield namespace: 3 to 255 letters, digits, `_` or `-`"),
            ));
        }
        Ok(StorefrontSettings {
            enabled: self.enabled,
            tag_prefix,
            metafield_namespace: namespace,
            customers_per_call: in_range(
                "storefront.customers_per_call",
                self.customers_per_call,
                1,
                40,
            )? as usize,
            bulk_threshold: in_range(
                "storefront.bulk_threshold",
                self.bulk_threshold,
                1,
                i64::MAX,
            )? as usize,
            bulk_batch_customers: in_range(
                "storefront.bulk_batch_customers",
                self.bulk_batch_customers,
                1,
                1_000_000,
            )? as usize,
        })
    }
}

impl RawShopify {
    fn validate(self, credentials: Credentials) -> Result<ShopifySettings, ConfigError> {
        let shop = non_empty("shopify.shop", &self.shop)?;
        if !shop.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                "shopify.shop",
                format!("`{shop}` is not a myshopify subdomain: give only the part before .myshopify.com, e.g. \"acme\""),
            ));
        }
        let base_url = if self.base_url.trim().is_empty() {
            format!("https://{shop}.myshopify.com")
        } else {
            url("shopify.base_url", &self.base_url)?
        };
        let api_version = self.api_version.trim().to_string();
        if !is_api_version(&api_version) {
            return Err(invalid(
                "shopify.api_version",
                format!("`{api_version}` is not a Shopify API version; expected YYYY-MM such as \"2026-10\""),
            ));
        }
        let auth = self.auth(credentials)?;
        let backfill = match self.backfill.as_str() {
            "bulk" => Backfill::Bulk,
            "pages" => Backfill::Pages,
            other => {
                return Err(invalid(
                    "shopify.backfill",
                    format!("`{other}` is not a backfill mode; expected \"bulk\" or \"pages\""),
                ))
            }
        };
        Ok(ShopifySettings {
            shop,
            base_url,
            api_version,
            auth,
            accept_partial_history: self.accept_partial_history,
            page_size: in_range(
                "shopify.page_size",
                self.page_size,
                1,
                i64::from(crate::vendors::shopify::queries::MAX_ORDERS_PAGE),
            )? as u32,
            overlap: duration("shopify.overlap", &self.overlap)?,
            backfill,
            bulk_poll_interval: duration("shopify.bulk_poll_interval", &self.bulk_poll_interval)?,
            bulk_read_timeout: duration("shopify.bulk_read_timeout", &self.bulk_read_timeout)?,
            timezone: match self.timezone.trim() {
                "" => None,
                name => Some(name.parse().map_err(|_| {
                    invalid(
                        "shopify.timezone",
                        format!("`{name}` is not an IANA time zone; write e.g. \"America/New_York\", or leave it empty to ask Shopify"),
                    )
                })?),
            },
        })
    }
}

impl RawShopify {
    /// The one way of authenticating that is configured: a static token, or a client ID with
    /// its secret. Both, neither, or half of the pair is refused naming the keys.
    /// Without [`Credentials::Required`], a missing token or secret is left empty.
    fn auth(&self, credentials: Credentials) -> Result<ShopifyAuth, ConfigError> {
        let token = !self.access_token.expose_secret().trim().is_empty();
        let id = self.client_id.trim();
        let secret = !self.client_secret.expose_secret().trim().is_empty();
        let required = credentials == Credentials::Required;
        match (token, !id.is_empty(), secret) {
            (false, false, false) if !required => {
                Ok(ShopifyAuth::AccessToken(self.access_token.clone()))
            }
            (false, true, false) if !required => Ok(ShopifyAuth::ClientCredentials {
                client_id: id.to_string(),
                client_secret: self.client_secret.clone(),
            }),
            (true, false, false) => Ok(ShopifyAuth::AccessToken(self.access_token.clone())),
            (false, true, true) => Ok(ShopifyAuth::ClientCredentials {
                client_id: id.to_string(),
                client_secret: self.client_secret.clone(),
            }),
            (false, false, false) => Err(invalid(
                "shopify.client_id",
                "no Shopify credential is configured; for an app made in the Dev Dashboard set \
                 `shopify.client_id` and its secret in `TIERSYNC__SHOPIFY__CLIENT_SECRET`, or for a \
                 custom app created in the Shopify admin before 2026 set `shopify.access_token` \
                 (`TIERSYNC__SHOPIFY__ACCESS_TOKEN`)",
            )),
            (true, _, _) => Err(invalid(
                "shopify.access_token",
                "is set together with `shopify.client_id` / `shopify.client_secret`; configure one \
                 way only: remove `shopify.access_token` to use the Dev Dashboard app's client \
                 credentials, or remove `shopify.client_id` and `shopify.client_secret` to keep the \
                 static token",
            )),
            (false, true, false) => Err(invalid(
                "shopify.client_secret",
                "is empty while `shopify.client_id` is set; give the app's client secret (Dev \
                 Dashboard → the app → Settings) with the `TIERSYNC__SHOPIFY__CLIENT_SECRET` \
                 environment variable",
            )),
            (false, false, true) => Err(invalid(
                "shopify.client_id",
                "is empty while `shopify.client_secret` is set; give the app's client ID (Dev \
                 Dashboard → the app → Settings) in shopify.client_id",
            )),
        }
    }
}

impl RawKlaviyo {
    fn validate(self, credentials: Credentials) -> Result<KlaviyoSettings, ConfigError> {
        if credentials == Credentials::Required {
            secret(
                "klaviyo.api_key",
                &self.api_key,
                "TIERSYNC__KLAVIYO__API_KEY",
            )?;
        }
        let revision = self.revision.trim().to_string();
        if chrono::NaiveDate::parse_from_str(revision.trim_end_matches(".pre"), "%Y-%m-%d").is_err()
        {
            return Err(invalid(
                "klaviyo.revision",
                format!("`{revision}` is not a Klaviyo revision; expected a date YYYY-MM-DD such as \"2026-10-15\""),
            ));
        }
        Ok(KlaviyoSettings {
            base_url: url("klaviyo.base_url", &self.base_url)?,
            api_key: self.api_key,
            revision,
            bulk_threshold: in_range("klaviyo.bulk_threshold", self.bulk_threshold, 1, i64::MAX)?
                as usize,
            concurrency: in_range("klaviyo.concurrency", self.concurrency, 1, 64)? as usize,
            profiles_per_second: in_range(
                "klaviyo.profiles_per_second",
                self.profiles_per_second,
                1,
                75,
            )? as u32,
            profiles_per_minute: in_range(
                "klaviyo.profiles_per_minute",
                self.profiles_per_minute,
                1,
                750,
            )? as u32,
            bulk_jobs_per_second: in_range(
                "klaviyo.bulk_jobs_per_second",
                self.bulk_jobs_per_second,
                1,
                10,
            )? as u32,
            bulk_jobs_per_minute: in_range(
                "klaviyo.bulk_jobs_per_minute",
                self.bulk_jobs_per_minute,
                1,
                150,
            )? as u32,
            bulk_poll_interval: duration("klaviyo.bulk_poll_interval", &self.bulk_poll_interval)?,
            key_check_interval: duration("klaviyo.key_check_interval", &self.key_check_interval)?,
            events_per_second: in_range(
                "klaviyo.events_per_second",
                self.events_per_second,
                1,
                350,
            )? as u32,
            events_per_minute: in_range(
                "klaviyo.events_per_minute",
                self.events_per_minute,
                1,
                3500,
            )? as u32,
            event_bulk_threshold: in_range(
                "klaviyo.event_bulk_threshold",
                self.event_bulk_threshold,
                1,
                i64::MAX,
            )? as usize,
            event_bulk_jobs_per_second: in_range(
                "klaviyo.event_bulk_jobs_per_second",
                self.event_bulk_jobs_per_second,
                1,
                10,
            )? as u32,
            event_bulk_jobs_per_minute: in_range(
                "klaviyo.event_bulk_jobs_per_minute",
                self.event_bulk_jobs_per_minute,
                1,
                150,
            )? as u32,
            metrics: self.metrics.validate()?,
        })
    }
}

impl MetricNames {
    fn validate(self) -> Result<MetricNames, ConfigError> {
        for (key, name) in [
            ("klaviyo.metrics.entered", &self.entered),
            ("klaviyo.metrics.changed", &self.changed),
            ("klaviyo.metrics.lapsed", &self.lapsed),
            ("klaviyo.metrics.welcome_back", &self.welcome_back),
        ] {
            if name.trim().is_empty() || name.chars().count() >= 128 {
                return Err(invalid(key, "a metric name must be 1 to 127 characters"));
            }
        }
        Ok(self)
    }
}

impl RawLoyalty {
    fn validate(self, credentials: Credentials) -> Result<LoyaltySettings, ConfigError> {
        let (platform, default_url, published) = match self.platform.trim() {
            "none" => (LoyaltyPlatform::None, "", 0),
            "smile" => (LoyaltyPlatform::Smile, "https://api.smile.io/v1", 10),
            "loyaltylion" => (LoyaltyPlatform::LoyaltyLion, "https://api.loyaltylion.com/v2", 20),
            other => {
                return Err(invalid(
                    "loyalty.platform",
                    format!("`{other}` is not a loyalty platform; expected \"none\", \"smile\" or \"loyaltylion\""),
                ))
            }
        };
        let authority = match self.authority.trim() {
            "tiersync" => Authority::Tiersync,
            "loyalty" => Authority::Loyalty,
            other => {
                return Err(invalid(
                    "loyalty.authority",
                    format!("`{other}` is not an authority; expected \"tiersync\" or \"loyalty\""),
                ))
            }
        };
        if platform == LoyaltyPlatform::None {
            if authority == Authority::Loyalty {
                return Err(invalid("loyalty.authority", "is \"loyalty\" but loyalty.platform is \"none\"; set the platform or use \"tiersync\""));
            }
        } else if credentials == Credentials::Required {
            secret(
                "loyalty.api_key",
                &self.api_key,
                "TIERSYNC__LOYALTY__API_KEY",
            )?;
        }
        let base_url = match (platform, self.base_url.trim()) {
            (LoyaltyPlatform::None, _) => String::new(),
            (_, "") => default_url.to_string(),
            (_, given) => url("loyalty.base_url", given)?,
        };
        let requests_per_second = match self.requests_per_second {
            0 => published as u32,
            n => in_range("loyalty.requests_per_second", n, 1, published.max(1))? as u32,
        };
        Ok(LoyaltySettings {
            platform,
            base_url,
            api_key: self.api_key,
            requests_per_second,
            authority,
            tier_names: self.tier_names,
        })
    }
}

impl RawClv {
    fn validate(self) -> Result<ClvSettings, ConfigError> {
        let discount = decimal("clv.monthly_discount", &self.monthly_discount)?;
        if discount >= Decimal::ONE {
            return Err(invalid(
                "clv.monthly_discount",
                "is a monthly rate such as \"0.01\" (1%); it must be below 1",
            ));
        }
        Ok(ClvSettings {
            horizon_months: in_range("clv.horizon_months", self.horizon_months, 1, 120)? as u32,
            monthly_discount: discount.try_into().unwrap_or(0.0),
            min_customers: in_range("clv.min_customers", self.min_customers, 2, i64::MAX)? as usize,
            min_history_days: in_range("clv.min_history_days", self.min_history_days, 1, 36_500)?
                as u32,
            point_value: decimal("clv.point_value", &self.point_value)?,
            weights: ClvWeights {
                historic: decimal("clv.weights.historic", &self.weights.historic)?,
                predicted: decimal("clv.weights.predicted", &self.weights.predicted)?,
                loyalty: decimal("clv.weights.loyalty", &self.weights.loyalty)?,
            },
        })
    }
}

impl RawTiers {
    fn validate(self) -> Result<TierSettings, ConfigError> {
        let mode = match self.mode.trim() {
            "fixed" => TierMode::Fixed,
            "percentile" => TierMode::Percentile,
            other => {
                return Err(invalid(
                    "tiers.mode",
                    format!("`{other}` is not a tier mode; expected \"fixed\" or \"percentile\""),
                ))
            }
        };
        let window_days = in_range("tiers.window_days", self.window_days, 1, 36_500)? as u32;
        let grace_days = in_range("tiers.grace_days", self.grace_days, 0, 36_500)? as u32;
        let lapse_after_days =
            in_range("tiers.lapse_after_days", self.lapse_after_days, 1, 36_500)? as u32;
        if self.levels.is_empty() {
            return Err(invalid(
                "tiers.levels",
                "at least one [[tiers.levels]] is required",
            ));
        }
        let mut levels: Vec<Level> = Vec::with_capacity(self.levels.len());
        for (i, raw) in self.levels.into_iter().enumerate() {
            let level = raw.validate(i, mode)?;
            if levels.iter().any(|l| l.name == level.name) {
                return Err(invalid(
                    &format!("tiers.levels[{i}].name"),
                    format!("level name `{}` is used twice", level.name),
                ));
            }
            if let Some(prev) = levels.last() {
                let rising = |a: Option<Decimal>, b: Option<Decimal>| !matches!((a, b), (Some(a), Some(b)) if b <= a);
                let orders_rise =
                    !matches!((prev.min_orders, level.min_orders), (Some(a), Some(b)) if b <= a);
                if !(rising(prev.min_clv, level.min_clv)
                    && rising(prev.min_spend, level.min_spend)
                    && orders_rise)
                {
                    return Err(invalid(
                        &format!("tiers.levels[{i}].name"),
                        format!("level `{}` does not ask for more than `{}` before it; list levels lowest first with rising thresholds", level.name, prev.name),
                    ));
                }
            }
            levels.push(level);
        }
        if mode == TierMode::Percentile {
            let total: Decimal = levels.iter().filter_map(|l| l.top_percent).sum();
            if total > Decimal::ONE_HUNDRED {
                return Err(invalid("tiers.levels", format!("the levels' top_percent add up to {total}%; they must add up to 100% or less")));
            }
        }
        Ok(TierSettings {
            mode,
            window_days,
            grace_days,
            lapse_after_days,
            levels,
        })
    }
}

impl RawLevel {
    fn validate(self, i: usize, mode: TierMode) -> Result<Level, ConfigError> {
        let key = |field: &str| format!("tiers.levels[{i}].{field}");
        let name = self.name.trim().to_string();
        if name.is_empty() || name == "None" {
            return Err(invalid(
                &key("name"),
                "a level needs a name, and \"None\" is reserved for customers without a level",
            ));
        }
        let money = |field: &str, value: Option<String>| -> Result<Option<Decimal>, ConfigError> {
            value.map(|text| decimal(&key(field), &text)).transpose()
        };
        let level = Level {
            min_clv: money("min_clv", self.min_clv)?,
            min_spend: money("min_spend", self.min_spend)?,
            min_orders: self
                .min_orders
                .map(|n| in_range(&key("min_orders"), n, 1, u32::MAX as i64).map(|n| n as u32))
                .transpose()?,
            top_percent: money("top_percent", self.top_percent)?,
            name,
        };
        match mode {
            TierMode::Fixed => {
                if level.top_percent.is_some() {
                    return Err(invalid(&key("top_percent"), "is only used with tiers.mode = \"percentile\"; use min_clv, min_spend or min_orders in fixed mode"));
                }
                if level.min_clv.is_none()
                    && level.min_spend.is_none()
                    && level.min_orders.is_none()
                {
                    return Err(invalid(
                        &key("min_clv"),
                        format!(
                            "level `{}` has no threshold; give min_clv, min_spend or min_orders",
                            level.name
                        ),
                    ));
                }
            }
            TierMode::Percentile => {
                if level.min_clv.is_some() || level.min_spend.is_some() {
                    return Err(invalid(&key("top_percent"), format!("level `{}`: in percentile mode levels are placed by top_percent (and optionally min_orders), not by min_clv or min_spend", level.name)));
                }
                match level.top_percent {
                    Some(p) if p > Decimal::ZERO && p <= Decimal::ONE_HUNDRED => {}
                    _ => return Err(invalid(&key("top_percent"), format!("level `{}` needs a top_percent above 0 and at most 100, e.g. \"5\" for the top 5%", level.name))),
                }
            }
        }
        Ok(level)
    }
}

// ---- value checks --------------------------------------------------------------------------

/// A non-negative decimal written as a string.
fn decimal(key: &str, text: &str) -> Result<Decimal, ConfigError> {
    let value: Decimal = text.trim().parse().map_err(|_| {
        invalid(
            key,
            format!("`{text}` is not a decimal amount; write it as a string such as \"500.00\""),
        )
    })?;
    if value.is_sign_negative() {
        return Err(invalid(
            key,
            format!("`{text}` is negative; it must be 0 or more"),
        ));
    }
    Ok(value)
}

fn non_empty(key: &str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(key, "is empty; a value is required"));
    }
    Ok(value.to_string())
}

fn secret(key: &str, value: &SecretString, env: &str) -> Result<(), ConfigError> {
    if value.expose_secret().trim().is_empty() {
        return Err(invalid(
            key,
            format!("is empty; set it in the file or with the {env} environment variable"),
        ));
    }
    Ok(())
}

fn url(key: &str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(value).map_err(|e| {
        invalid(
            key,
            format!("`{value}` is not a URL ({e}); expected e.g. \"https://host\""),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid(
            key,
            format!("`{value}` is not an http(s) URL with a host"),
        ));
    }
    Ok(value.to_string())
}

fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let parsed = humantime::parse_duration(value.trim()).map_err(|e| {
        invalid(
            key,
            format!("`{value}` is not a duration ({e}); write e.g. \"30s\", \"5m\" or \"1h\""),
        )
    })?;
    if parsed.is_zero() {
        return Err(invalid(key, "must be longer than zero"));
    }
    Ok(parsed)
}

fn in_range(key: &str, value: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            key,
            format!("{value} is out of range; expected {min} to {max}"),
        ));
    }
    Ok(value)
}

fn is_api_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 7 && b[4] == b'-' && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
}
