//! The daily recalculation at scale: `cargo bench --bench model_scale`.
//!
//! Builds (once; a marker file records that it is complete) a store of N generated customers
//! (`TIERSYNC_BENCH_CUSTOMERS`, default 1,000,000) with about ten orders each, in
//! `TIERSYNC_BENCH_DIR` (default `target/bench-store-<N>`), then times, each phase in its own
//! process so its peak RSS is its own:
//!
//! - `scan`: the baseline — one full scan of the order facts (`Store::scan_customer_orders`)
//!   with a visitor that does nothing;
//! - `first`: the first daily recalculation (`sync::evaluate`): every customer gets a record
//!   and an outbox entry;
//! - `second`: the next day's recalculation: most customers unchanged, far fewer writes;
//! - `pass`: the day after, what a daemon pass does in one process: a day's new orders
//!   ingested (the order map opened, settled and closed), then the recalculation.
//!
//! Every run starts the phases from a fresh copy of the built store (`<dir>/run`), so runs are
//! comparable. One phase alone: `cargo bench --bench model_scale -- --phase first` (the
//! phases read and change `<dir>/run`; `--phase copy` refreshes it).
//!
//! The generator is deterministic (splitmix64 seeded per customer): order counts log-normal
//! (mean ≈ 10, heavy right tail, capped at 400), customers joining uniformly over three years,
//! orders uniform between joining and now, amounts log-normal (median ≈ 66), 6% of orders
//! partly refunded, 2% cancelled, 0.2% test orders.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use tiersync::config::Settings;
use tiersync::store::{OrderRecord, Store};
use tiersync::sync::evaluate;

/// The daemon's allocator (src/main.rs), so the bench measures what the daemon runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_CUSTOMERS: usize = 1_000_000;
const SEED: u64 = 0x7135_5EED;
const TZ: chrono_tz::Tz = chrono_tz::America::New_York;
/// Orders per `Store::apply_orders` call while building.
const CHUNK_ORDERS: usize = 200_000;
/// Format of the generated store; bump to rebuild stores built by an older generator, or in
/// an older store format (migrating every phase's copy would dominate the run).
const GENERATOR_VERSION: u32 = 4;

fn now() -> DateTime<Utc> {
    // 08:00 in New York, after the default 03:00 `recalc_at`.
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

#[path = "support/splitmix.rs"]
mod splitmix;
use splitmix::SplitMix64;

/// Draws the shared generator does not need.
impl SplitMix64 {
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn customer_id(index: usize) -> String {
    format!(
        "gid://shopify/Customer/{}",
        7_000_000_000_000u64 + index as u64
    )
}

/// Customer `index`'s orders; order ids are numbered from `first_order`.
fn customer_orders(index: usize, first_order: u64, out: &mut Vec<OrderRecord>) {
    let mut rng = SplitMix64(SEED ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let now = now();
    let span = Duration::days(3 * 365).num_seconds() as u64;
    // Log-normal with sigma 1: mean exp(mu + 1/2) = 10.
    let count = ((10f64.ln() - 0.5 + rng.normal()).exp().round() as usize).clamp(1, 400);
    let joined = now - Duration::seconds(rng.below(span) as i64);
    let active = (now - joined).num_seconds().max(1) as u64;
    let id = customer_id(index);
    let email = Some(format!("customer{index}@example.com"));
    for n in 0..count {
        let created_at = if n == 0 {
            joined
        } else {
            joined + Duration::seconds(rng.below(active) as i64)
        };
        let cents = ((4.2 + 0.6 * rng.normal()).exp() * 100.0).round() as i64;
        let roll = rng.uniform();
        let (total, cancelled_at, test) = if roll < 0.06 {
            // Partly refunded.
            (cents / 2, None, false)
        } else if roll < 0.08 {
            (0, Some(created_at + Duration::hours(2)), false)
        } else if roll < 0.082 {
            (cents, None, true)
        } else {
            (cents, None, false)
        };
        out.push(OrderRecord {
            id: format!(
                "gid://shopify/Order/{}",
                5_000_000_000_000u64 + first_order + n as u64
            ),
            customer_id: Some(id.clone()),
            customer_email: email.clone(),
            created_at,
            updated_at: cancelled_at.unwrap_or(created_at),
            cancelled_at,
            test,
            net_total: Decimal::new(total, 2),
        });
    }
}

struct Built {
    customers: usize,
    orders: u64,
    secs: f64,
}

fn build(dir: &Path, customers: usize) -> Built {
    let marker = dir.join("orders.complete");
    // The store's own format is not part of it: an older store is migrated when a phase
    // opens its copy (or refused with a clear error).
    let expected_header = format!("generator={GENERATOR_VERSION} customers={customers}");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let has = |field: String| text.split_whitespace().any(|kv| kv == field);
        if has(format!("generator={GENERATOR_VERSION}")) && has(format!("customers={customers}")) {
            let field = |name: &str| {
                text.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name))
                    .unwrap_or("0")
                    .to_string()
            };
            eprintln!("reusing the store in {}", dir.join("orders").display());
            return Built {
                customers,
                orders: field("orders=").parse().unwrap_or(0),
                secs: field("build_secs=").parse().unwrap_or(0.0),
            };
        }
    }
    let path = dir.join("orders");
    if path.exists() {
        std::fs::remove_dir_all(&path).expect("removing an incomplete store");
    }
    eprintln!("building {customers} customers in {}", path.display());
    let started = Instant::now();
    let store = Store::open(&path).expect("opening the store");
    let mut orders = 0u64;
    // Generation runs on another thread, a page ahead of the writes.
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel::<Vec<OrderRecord>>(1);
        scope.spawn(move || {
            let mut page = Vec::with_capacity(CHUNK_ORDERS + 400);
            let mut next_order = 0u64;
            for index in 0..customers {
                let before = page.len();
                customer_orders(index, next_order, &mut page);
                next_order += (page.len() - before) as u64;
                if page.len() >= CHUNK_ORDERS || index + 1 == customers {
                    let full = std::mem::replace(&mut page, Vec::with_capacity(CHUNK_ORDERS + 400));
                    if send.send(full).is_err() {
                        return;
                    }
                }
            }
        });
        let mut reported = 0u64;
        for page in receive {
            orders += page.len() as u64;
            store.apply_orders(&page, None).expect("writing orders");
            if orders >= reported + 1_000_000 {
                reported = orders;
                eprintln!(
                    "  {orders} orders, {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    });
    // As the daemon does after each ingest: the order map settled and closed.
    store.release_order_map().expect("settling the order map");
    store.flush().expect("flushing the store");
    drop(store);
    let secs = started.elapsed().as_secs_f64();
    std::fs::write(
        &marker,
        format!("{expected_header} orders={orders} build_secs={secs:.1}\n"),
    )
    .expect("writing the marker");
    Built {
        customers,
        orders,
        secs,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the run copy");
    for entry in std::fs::read_dir(from).expect("reading the store") {
        let entry = entry.expect("reading the store");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copying the store");
        }
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// What a daemon pass does before its recalculation: a day's new orders (from 1,000
/// returning customers, about 10,000 orders, placed during `day`) applied as ingest applies
/// them, with the order map opened, settled and closed — so the phase's peak RSS is a whole
/// pass's.
fn ingest_a_day(store: &Store, customers: usize, day: DateTime<Utc>) {
    let mut page = Vec::new();
    for n in 0..1_000 {
        let first_order = 100_000_000 + page.len() as u64;
        customer_orders(n * 997 % customers, first_order, &mut page);
    }
    for (i, order) in page.iter_mut().enumerate() {
        order.created_at = day - Duration::seconds((i % 86_400) as i64);
        order.updated_at = order.created_at;
        order.cancelled_at = None;
    }
    for chunk in page.chunks(250) {
        store
            .apply_orders(chunk, None)
            .expect("applying new orders");
    }
    store.release_order_map().expect("closing the order map");
}

/// The peak resident set when the recalculation had made its tier decisions (KiB; 0 before).
static DECISIONS_PEAK_KIB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records [`DECISIONS_PEAK_KIB`] at the recalculation's "tier decisions made" event, the
/// only event it lets through.
struct PeakAtDecisions;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PeakAtDecisions {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        DECISIONS_PEAK_KIB.store(peak_rss_kib(), std::sync::atomic::Ordering::Relaxed);
    }
}

fn watch_decisions() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let layer = PeakAtDecisions.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
        meta.fields().field("decided").is_some()
    }));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the bench's subscriber");
}

/// Peak resident set of this process, KiB.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// A KiB field of /proc/self/status.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one phase against `<dir>/run` and prints a `RESULT` line for the parent.
fn phase(name: &str, dir: &Path, customers: usize) {
    let run = dir.join("run");
    if name == "copy" {
        if run.exists() {
            std::fs::remove_dir_all(&run).expect("removing the old run copy");
        }
        copy_dir(&dir.join("orders"), &run);
        return;
    }
    // The default model and tiers; the connection settings are never used.
    let settings = Settings::from_toml(&format!(
        r#"
[shopify]
shop = "bench"
base_url = "http://127.0.0.1:9"
access_token = "unused"
[klaviyo]
base_url = "http://127.0.0.1:9"
api_key = "unused"
[store]
path = "{}"
"#,
        run.display()
    ))
    .expect("bench settings");
    let opened = Instant::now();
    let store = Store::open(&run).expect("opening the store");
    let open_secs = opened.elapsed().as_secs_f64();
    let open_rss = (peak_rss_kib(), status_kib("VmRSS:"));
    let started = Instant::now();
    let detail = match name {
        "open" => String::new(),
        "scan" => {
            let (mut customers, mut orders) = (0u64, 0u64);
            store
                .scan_customer_orders(|_, facts| {
                    customers += 1;
                    orders += facts.len() as u64;
                    Ok(())
                })
                .expect("scanning");
            format!("customers={customers} orders={orders}")
        }
        "first" | "second" | "pass" => {
            let days = match name {
                "first" => 0,
                "second" => 1,
                _ => 2,
            };
            let at = now() + Duration::days(days);
            let ingest = if name == "pass" {
                let ingested = Instant::now();
                ingest_a_day(&store, customers, at);
                format!("ingest_secs={:.3} ", ingested.elapsed().as_secs_f64())
            } else {
                String::new()
            };
            watch_decisions();
            let report = evaluate(&store, &settings, TZ, at).expect("evaluating");
            assert!(report.recalculated, "the recalculation must be due");
            let t = report.timings;
            let to_decisions = t.scan + t.population + t.decide;
            format!(
                "{ingest}decisions_peak_kib={} decisions_secs={:.3} scan_secs={:.3} population_secs={:.3} decide_secs={:.3} plan_secs={:.3} write_secs={:.3} evaluated={} enqueued={} transitions={} level_changes={}",
                DECISIONS_PEAK_KIB.load(std::sync::atomic::Ordering::Relaxed),
                to_decisions.as_secs_f64(),
                t.scan.as_secs_f64(),
                t.population.as_secs_f64(),
                t.decide.as_secs_f64(),
                t.plan.as_secs_f64(),
                t.write.as_secs_f64(),
                report.evaluated, report.enqueued, report.transitions, report.level_changes
            )
        }
        other => panic!("unknown phase `{other}` (scan, first, second, pass, copy)"),
    };
    let secs = started.elapsed().as_secs_f64();
    let rss = peak_rss_kib();
    drop(store);
    println!(
        "RESULT phase={name} secs={secs:.3} open_secs={open_secs:.3} rss_kib={rss} open_peak_kib={} open_rss_kib={} {detail}",
        open_rss.0, open_rss.1
    );
}

struct PhaseResult {
    secs: f64,
    open_secs: f64,
    rss_kib: u64,
    detail: String,
    line: String,
}

impl PhaseResult {
    /// A numeric `key=value` field of the result line.
    fn number(&self, key: &str) -> Option<f64> {
        self.line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
    }

    /// A `key=seconds` field, formatted, or "–".
    fn secs_field(&self, key: &str) -> String {
        self.number(key)
            .map_or_else(|| "–".to_string(), |v| format!("{v:.2} s"))
    }

    /// A `key=KiB` field, in MiB, or "–".
    fn kib_field(&self, key: &str) -> String {
        self.number(key)
            .map_or_else(|| "–".to_string(), |v| format!("{:.0} MiB", v / 1024.0))
    }
}

fn run_child(name: &str, dir: &Path, customers: usize) -> PhaseResult {
    let output = Command::new(std::env::current_exe().expect("the bench binary"))
        .args(["--phase", name])
        .env("TIERSYNC_BENCH_DIR", dir)
        .env("TIERSYNC_BENCH_CUSTOMERS", customers.to_string())
        .output()
        .expect("running a phase");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "phase {name} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("phase {name} printed no result: {stdout}"));
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .unwrap_or("0")
            .to_string()
    };
    let detail = line
        .split_whitespace()
        .skip(5)
        .filter(|kv| !kv.contains("_secs="))
        .collect::<Vec<_>>()
        .join(" ");
    PhaseResult {
        secs: field("secs=").parse().unwrap(),
        open_secs: field("open_secs=").parse().unwrap(),
        rss_kib: field("rss_kib=").parse().unwrap(),
        detail,
        line: line.to_string(),
    }
}

fn main() {
    tiersync::allocator::configure();
    let args: Vec<String> = std::env::args().collect();
    let customers: usize = std::env::var("TIERSYNC_BENCH_CUSTOMERS")
        .ok()
        .map(|v| {
            v.replace('_', "")
                .parse()
                .expect("TIERSYNC_BENCH_CUSTOMERS")
        })
        .unwrap_or(DEFAULT_CUSTOMERS);
    let dir = std::env::var_os("TIERSYNC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(format!("bench-store-{customers}"))
        });
    if let Some(i) = args.iter().position(|a| a == "--phase") {
        phase(args.get(i + 1).expect("--phase NAME"), &dir, customers);
        return;
    }
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    let built = build(&dir, customers);
    let store_bytes = dir_size(&dir.join("orders"));
    let copied = Instant::now();
    phase("copy", &dir, customers);
    eprintln!(
        "copied the store to {} in {:.1} s",
        dir.join("run").display(),
        copied.elapsed().as_secs_f64()
    );
    let scan = run_child("scan", &dir, customers);
    let first = run_child("first", &dir, customers);
    let second = run_child("second", &dir, customers);
    let pass = run_child("pass", &dir, customers);
    let after_bytes = dir_size(&dir.join("run"));

    let mib = |kib: u64| kib as f64 / 1024.0;
    let gib = |bytes: u64| bytes as f64 / (1u64 << 30) as f64;
    let mut out = String::new();
    out.push_str(&format!(
        "model_scale: {} customers, {} orders ({:.2} per customer), {} cores available\n",
        built.customers,
        built.orders,
        built.orders as f64 / built.customers.max(1) as f64,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    ));
    out.push_str(&format!(
        "store: built in {:.1} s; {:.2} GiB on disk (orders only), {:.2} GiB after both recalculations\n\n",
        built.secs,
        gib(store_bytes),
        gib(after_bytes)
    ));
    out.push_str(
        "(a) baseline scan; (b) up to tier decisions = scan + population + decide, measured \
         inside the recalculation; (c) the whole recalculation, writes included (the phase's \
         wall time)\n\n",
    );
    out.push_str(
        "| phase | (c) wall time | ingest (pass) | (b) to decisions | scan + histories | population | decide | peak RSS at decisions | plan reads | writes | peak RSS | store open | result |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (name, r) in [
        ("(a) baseline: scan order facts", &scan),
        ("first recalculation", &first),
        ("second recalculation (next day)", &second),
        ("daemon pass (day after): ingest, then recalculation", &pass),
    ] {
        out.push_str(&format!(
            "| {name} | {:.2} s | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} MiB | {:.2} s | {} |\n",
            r.secs,
            r.secs_field("ingest_secs"),
            r.secs_field("decisions_secs"),
            r.secs_field("scan_secs"),
            r.secs_field("population_secs"),
            r.secs_field("decide_secs"),
            r.kib_field("decisions_peak_kib"),
            r.secs_field("plan_secs"),
            r.secs_field("write_secs"),
            mib(r.rss_kib),
            r.open_secs,
            r.detail
        ));
    }
    out.push_str(&format!(
        "\nreproduce: TIERSYNC_BENCH_CUSTOMERS={} cargo bench --bench model_scale\n",
        built.customers
    ));
    println!("{out}");
}
