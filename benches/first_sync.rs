//! The first sync of a big store, against fakes that enforce the vendors' published limits:
//! `cargo bench --bench first_sync`.
//!
//! For each store size (`TIERSYNC_BENCH_SIZES`, default `100000,1000000` customers, about ten
//! orders each) and each Shopify plan (`TIERSYNC_BENCH_PLANS`, default `standard,plus`), the
//! bench starts the fake Shopify (that plan's cost bucket) and the fake Klaviyo (its published
//! per-second and per-minute limits) in this process, loads a generated store, and runs the
//! daemon's passes **in a child process** (this binary again, with `--daemon-pass`), so the
//! daemon's CPU time and peak RSS (from `wait4`) are its own and not the fakes':
//!
//! - `first`: the first pass on an empty checkpoint store — the order backfill, the first
//!   recalculation, every profile to Klaviyo, the tier events, the storefront's tags and
//!   metafields;
//! - `daily`: the next day's first pass — the daily recalculation and the writes whose values
//!   moved with time (the blended CLV drifts every day).
//!
//! For each pass it prints the wall time and the **floor**: the least time the published
//! limits allow for the work the fakes saw — Shopify's query points beyond the full bucket ÷
//! the plan's restore rate, or the bulk mutation lines ÷ (the fake's lines per second per
//! operation, `TIERSYNC_BENCH_BULK_RATE`, default 100, × the 5 operations a shop may run at
//! once), whichever is longer (the points are spent while the lines run); Klaviyo's bulk job
//! requests (creates and polls) and event bulk jobs under 10/s and 150/min. The destinations
//! are written concurrently, so the floor is the slower destination's. Then wall ÷ floor;
//! where the wall time went, from the pass's own report: reading the sources (the order
//! backfill: the daemon storing what Shopify's bulk query returned, which no published limit
//! paces and the floor leaves out), evaluating, and the writes; the daemon's CPU time (user + system) ÷ wall, and its peak RSS (the child's `VmHWM`). Before
//! each pass the fake bucket is full again, as a day between the passes would leave it.
//!
//! The loyalty app is left out: its limits are not what a first sync waits on.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tiersync::config::{Settings, ShopifyAuth};
use tiersync::Pipeline;
use tiersync_mocks::generator::{generate, GenConfig};
use tiersync_mocks::shopify::ShopifyOptions;
use tiersync_mocks::{MockOptions, MockServers};
use tokio_util::sync::CancellationToken;

/// The daemon's allocator (src/main.rs), so the child measures what the daemon runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_FLAG: &str = "--daemon-pass";
/// Bulk mutation operations Shopify runs at once per shop from API version 2026-01 (the
/// version the daemon sends is 2026-10).
const CONCURRENT_BULK_MUTATIONS: f64 = 5.0;
const SEED: u64 = 42;
/// Klaviyo's published limits of the bulk job endpoints (per second burst, per minute).
const KLAVIYO_BULK_BURST: f64 = 10.0;
const KLAVIYO_BULK_PER_MINUTE: f64 = 150.0;

/// What the child needs to run one pass (one JSON argument).
#[derive(Serialize, Deserialize)]
struct PassSpec {
    shopify_url: String,
    client_id: String,
    client_secret: String,
    klaviyo_url: String,
    klaviyo_key: String,
    store: std::path::PathBuf,
    now: DateTime<Utc>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD_FLAG) {
        let spec: PassSpec = serde_json::from_str(args.get(2).context("the pass spec")?)?;
        return daemon_pass(spec);
    }
    let sizes = list("TIERSYNC_BENCH_SIZES", "100000,1000000")
        .iter()
        .map(|s| s.replace('_', "").parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .context("TIERSYNC_BENCH_SIZES: customers, comma-separated")?;
    let plans = list("TIERSYNC_BENCH_PLANS", "standard,plus");
    let bulk_rate: f64 = std::env::var("TIERSYNC_BENCH_BULK_RATE")
        .unwrap_or_else(|_| "100".into())
        .parse()
        .context("TIERSYNC_BENCH_BULK_RATE: lines per second per bulk mutation operation")?;
    println!("the fake Shopify applies {bulk_rate} bulk mutation lines per second per operation (TIERSYNC_BENCH_BULK_RATE; Shopify publishes no figure)");
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "{:>9} {:>8} {:>6} {:>9} {:>9} {:>10} {:>7} {:>7} {:>8} {:>10} {:>9} {:>9}  work",
        "customers",
        "plan",
        "pass",
        "wall s",
        "floor s",
        "wall/floor",
        "read s",
        "eval s",
        "write s",
        "cpu/wall",
        "cpu s",
        "peak MiB"
    );
    for &customers in &sizes {
        for plan in &plans {
            run_store(&runtime, customers, plan, bulk_rate)?;
        }
    }
    Ok(())
}

fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn shopify_options(plan: &str) -> anyhow::Result<ShopifyOptions> {
    match plan {
        "standard" => Ok(ShopifyOptions::default()),
        "plus" => Ok(ShopifyOptions::plus()),
        other => anyhow::bail!("TIERSYNC_BENCH_PLANS: unknown plan {other:?} (standard, plus)"),
    }
}

/// One store size on one plan: fresh fakes and a fresh checkpoint store, then both passes.
fn run_store(
    runtime: &tokio::runtime::Runtime,
    customers: usize,
    plan: &str,
    bulk_rate: f64,
) -> anyhow::Result<()> {
    let options = ShopifyOptions {
        bulk_mutation_rate: bulk_rate,
        ..shopify_options(plan)?
    };
    let (bucket_max, restore_rate) = (options.bucket_max, options.restore_rate);
    let servers = runtime.block_on(MockServers::start(MockOptions {
        shopify: options,
        ..MockOptions::default()
    }))?;
    let now = Utc::now();
    let generated = Instant::now();
    let data = generate(&GenConfig {
        customers,
        seed: SEED,
        now,
        // Five years of history: about ten orders a customer, as the benchmark promises.
        years: 5,
        ..GenConfig::default()
    });
    let orders = data.orders.len();
    servers.shopify.load(data);
    eprintln!(
        "{customers} customers, {orders} orders generated and loaded in {:.1} s ({plan})",
        generated.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir()?;
    let spec = |now| PassSpec {
        shopify_url: servers.shopify.base_url(),
        client_id: servers.shopify.client_id(),
        client_secret: servers.shopify.client_secret(),
        klaviyo_url: servers.klaviyo.base_url(),
        klaviyo_key: servers.klaviyo.api_key(),
        store: dir.path().join("store"),
        now,
    };
    // The daily pass: the next day, after the shop-local `recalc_at` (03:00 by default).
    let tomorrow = Utc.from_utc_datetime(
        &(now + chrono::Duration::days(1))
            .date_naive()
            .and_hms_opt(12, 0, 0)
            .expect("noon"),
    );
    for (pass, at) in [("first", now), ("daily", tomorrow)] {
        // A day passes between the two: the bucket is full again, as the floor assumes.
        servers.shopify.set_available(bucket_max);
        let before = Work::seen(&servers);
        let run = run_child(&spec(at))?;
        let work = Work::seen(&servers) - before;
        let floor = work.floor(bucket_max, restore_rate, bulk_rate);
        println!(
            "{customers:>9} {plan:>8} {pass:>6} {:>9.1} {:>9.1} {:>10.2} {:>7.1} {:>7.1} {:>8.1} {:>10.2} {:>9.1} {:>9}  {}",
            run.wall.as_secs_f64(),
            floor.as_secs_f64(),
            run.wall.as_secs_f64() / floor.as_secs_f64().max(0.001),
            run.reading.as_secs_f64(),
            run.evaluating.as_secs_f64(),
            run.wall
                .saturating_sub(run.reading + run.evaluating)
                .as_secs_f64(),
            run.cpu.as_secs_f64() / run.wall.as_secs_f64(),
            run.cpu.as_secs_f64(),
            run.peak_rss_kib / 1024,
            work.describe(),
        );
    }
    Ok(())
}

/// What the fakes saw, counted where the published limits apply.
#[derive(Clone, Copy, Default)]
struct Work {
    shopify_points: f64,
    bulk_lines: u64,
    klaviyo_bulk_requests: usize,
    klaviyo_event_jobs: usize,
    profiles: usize,
}

impl Work {
    fn seen(servers: &MockServers) -> Work {
        let requests = servers.klaviyo.requests();
        let bulk = requests
            .iter()
            .filter(|r| r.path.starts_with("/api/profile-bulk-import-jobs"))
            .count();
        let event_jobs = requests
            .iter()
            .filter(|r| r.path.starts_with("/api/event-bulk-create-jobs"))
            .count();
        Work {
            shopify_points: servers.shopify.points_spent(),
            bulk_lines: servers
                .shopify
                .bulk_mutations()
                .iter()
                .map(|(_, lines)| lines)
                .sum(),
            klaviyo_bulk_requests: bulk,
            klaviyo_event_jobs: event_jobs,
            profiles: servers
                .klaviyo
                .bulk_jobs()
                .iter()
                .map(|j| j.total_count)
                .sum(),
        }
    }

    /// The least time the limits allow: each destination at its ceiling, the slower one.
    /// Shopify's query points (mostly the operations' polls) are spent while the bulk
    /// mutations run, so its part is the longer of the two, not their sum: a 1M Standard
    /// pass finished in 1,061 s against a summed "floor" of 1,108 s.
    fn floor(&self, bucket_max: f64, restore_rate: f64, bulk_rate: f64) -> Duration {
        let points = (self.shopify_points - bucket_max).max(0.0) / restore_rate;
        let lines = self.bulk_lines as f64 / (bulk_rate * CONCURRENT_BULK_MUTATIONS);
        let shopify = points.max(lines);
        let klaviyo =
            requests_floor(self.klaviyo_bulk_requests) + requests_floor(self.klaviyo_event_jobs);
        Duration::from_secs_f64(shopify.max(klaviyo))
    }

    fn describe(&self) -> String {
        format!(
            "shopify {:.0} points, {} bulk mutation lines; klaviyo {} bulk-job requests ({} profiles), {} event jobs",
            self.shopify_points, self.bulk_lines, self.klaviyo_bulk_requests, self.profiles, self.klaviyo_event_jobs
        )
    }
}

impl std::ops::Sub for Work {
    type Output = Work;
    fn sub(self, before: Work) -> Work {
        Work {
            shopify_points: self.shopify_points - before.shopify_points,
            bulk_lines: self.bulk_lines - before.bulk_lines,
            klaviyo_bulk_requests: self.klaviyo_bulk_requests - before.klaviyo_bulk_requests,
            klaviyo_event_jobs: self.klaviyo_event_jobs - before.klaviyo_event_jobs,
            profiles: self.profiles - before.profiles,
        }
    }
}

/// Seconds `n` requests take at best under a 10/s burst and 150/min window: the first
/// minute's 150 at 10/s, then 150 a minute.
fn requests_floor(n: usize) -> f64 {
    let n = n as f64;
    if n <= KLAVIYO_BULK_PER_MINUTE {
        n / KLAVIYO_BULK_BURST
    } else {
        (n / KLAVIYO_BULK_PER_MINUTE - 1.0) * 60.0 + KLAVIYO_BULK_PER_MINUTE / KLAVIYO_BULK_BURST
    }
}

/// The child's wall time, CPU time and peak RSS.
struct ChildRun {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
    /// The pass's own split (its report): reading the sources, evaluating; the rest wrote.
    reading: Duration,
    evaluating: Duration,
}

fn run_child(spec: &PassSpec) -> anyhow::Result<ChildRun> {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .arg(CHILD_FLAG)
        .arg(serde_json::to_string(spec)?)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the daemon's pass")?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` outlive the call.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    anyhow::ensure!(waited == pid, "wait4: {}", std::io::Error::last_os_error());
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the daemon's pass failed (wait status {status})"
    );
    // The child's own high-water mark: `ru_maxrss` would also count this process's pages,
    // which the child shares between fork and exec.
    let mut said = String::new();
    std::io::Read::read_to_string(
        &mut child.stdout.take().context("the child's stdout")?,
        &mut said,
    )?;
    let value = |key: &str| {
        said.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .with_context(|| format!("the child did not report {key}"))
    };
    let peak_rss_kib = value("peak_rss_kib")?.parse()?;
    let seconds_of = |key: &str| -> anyhow::Result<Duration> {
        Ok(Duration::from_secs_f64(value(key)?.parse()?))
    };
    let (reading, evaluating) = (seconds_of("reading_s")?, seconds_of("evaluating_s")?);
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1_000);
    Ok(ChildRun {
        wall,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kib,
        reading,
        evaluating,
    })
}

/// The child: one daemon pass as of `spec.now`, with the demo's tier levels.
fn daemon_pass(spec: PassSpec) -> anyhow::Result<()> {
    tiersync::allocator::configure();
    // The daemon's log lines (with times: where a pass spends them), `warn` unless `RUST_LOG`.
    tiersync::telemetry::init("warn", tiersync::config::LogFormat::Text);
    let mut settings = Settings::from_toml(tiersync::ops::demo::DEMO_TOML)?;
    settings.shopify.base_url = spec.shopify_url;
    settings.shopify.auth = ShopifyAuth::ClientCredentials {
        client_id: spec.client_id,
        client_secret: SecretString::from(spec.client_secret),
    };
    settings.klaviyo.base_url = spec.klaviyo_url;
    settings.klaviyo.api_key = SecretString::from(spec.klaviyo_key);
    settings.store.path = spec.store;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        let pipeline = Pipeline::open(settings)?;
        anyhow::Ok(
            pipeline
                .pass_at(&CancellationToken::new(), spec.now)
                .await?,
        )
    })?;
    anyhow::ensure!(
        report.undelivered() == 0,
        "the pass left {} writes undelivered:\n{report}",
        report.undelivered()
    );
    eprintln!("{report}");
    println!(
        "reading_s={:.3}\nevaluating_s={:.3}",
        report.reading.as_secs_f64(),
        report.evaluating.as_secs_f64()
    );
    // VmHWM: this process's peak resident set since its exec.
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("VmHWM in /proc/self/status")?;
    println!("peak_rss_kib={}", hwm.trim().trim_end_matches("kB").trim());
    Ok(())
}
