//! The daemon's HTTP endpoint and `tiersync status` beside a running daemon: the `tiersync`
//! binary runs against the fakes with `http.listen` on a free loopback port, and the tests
//! read `/healthz`, `/readyz`, `/status` and `/metrics` and run `tiersync status` while it
//! works; an address in use stops the daemon with an error naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use tiersync_mocks::generator::{generate, GenConfig};

use tiersync::model::ClvModel;
use tiersync::ops::status::Status;
use tiersync::store::Store;

use crate::common::{self, hand_built_store, spawn, TestEnv};

/// Environment variables that could hand `status` a secret.
const SECRETS: [&str; 5] = [
    "TIERSYNC__SHOPIFY__ACCESS_TOKEN",
    "TIERSYNC__SHOPIFY__CLIENT_SECRET",
    "TIERSYNC__KLAVIYO__API_KEY",
    "TIERSYNC__LOYALTY__API_KEY",
    "TIERSYNC__SHOPIFY__CLIENT_ID",
];

/// A loopback address no one listens on now.
pub(crate) fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().to_string()
}

/// The daemon (`tiersync run`) with its endpoint at `address`.
pub(crate) fn start_daemon(env: &TestEnv, address: &str, extra: &[(&str, &str)]) -> Child {
    let config = env.config_file();
    let mut command = env.binary(&["run", "--config", config.to_str().unwrap()], "run.log");
    command.env("TIERSYNC__HTTP__LISTEN", address);
    for (key, value) in extra {
        command.env(key, value);
    }
    command.spawn().expect("the daemon starts")
}

/// The test configuration without a single credential: what an operator's shell has.
fn config_without_secrets(env: &TestEnv) -> PathBuf {
    let text = std::fs::read_to_string(env.config_file()).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !(l.starts_with("access_token") || l.starts_with("api_key")))
        .collect();
    let path = env.dir.path().join("no-secrets.toml");
    std::fs::write(&path, kept.join("\n")).unwrap();
    path
}

/// `tiersync status` with a configuration and an environment free of secrets.
fn status_command(env: &TestEnv, address: &str) -> std::process::Command {
    let config = config_without_secrets(env);
    let mut command = env.binary(
        &["status", "--config", config.to_str().unwrap()],
        "status.log",
    );
    command
        .env("TIERSYNC__HTTP__LISTEN", address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for secret in SECRETS {
        command.env_remove(secret);
    }
    command
}

fn run(mut command: std::process::Command) -> Output {
    command.output().expect("status runs")
}

pub(crate) async fn get(address: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let code = response.status().as_u16();
    (code, response.text().await.unwrap())
}

pub(crate) async fn wait_until_async<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition().await
}

/// Whether the endpoint answers `/healthz`.
async fn healthy(address: &str) -> bool {
    match reqwest::get(format!("http://{address}/healthz")).await {
        Ok(response) => response.status().is_success(),
        Err(_) => false,
    }
}

pub(crate) fn sigterm(daemon: &Child) {
    std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .expect("kill -TERM");
}

/// Waits for the process to exit, at most `limit`.
pub(crate) async fn exited(
    daemon: &mut Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = daemon.try_wait() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
pub(crate) fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

pub(crate) fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no sample {series} in {samples:#?}"))
}

/// Every label of every series takes one of a few known values: no customer id or email
/// can turn up as a label, however many customers the store has.
fn assert_bounded_labels(text: &str) {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = [
        (
            "destination",
            [
                "klaviyo",
                "klaviyo_events",
                "storefront",
                "shopify",
                "loyalty",
            ]
            .as_slice(),
        ),
        (
            "outcome",
            &["written", "refused", "deferred", "success", "failure"],
        ),
        ("level", &["None", "Silver", "Gold", "Platinum"]),
        (
            "state",
            &["none", "active", "grace", "lapsed", "pending", "parked"],
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.iter().copied().collect()))
    .collect();
    for (series, _) in samples(text) {
        let Some((_, labels)) = series.split_once('{') else {
            continue;
        };
        for pair in labels.trim_end_matches('}').split(',') {
            let (key, value) = pair.split_once('=').expect("key=value");
            let value = value.trim_matches('"');
            if key == "le" {
                assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{series}");
                continue;
            }
            let known = allowed
                .get(key)
                .unwrap_or_else(|| panic!("unexpected label `{key}` in {series}"));
            assert!(known.contains(value), "label {key}={value} in {series}");
        }
    }
    assert!(
        !text.contains('@') && !text.contains("gid://"),
        "an email or customer id in /metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_under_load_answers_health_readiness_metrics_and_status_at_once() {
    let _clock = common::timing_sensitive().await; // the checks must land mid-delivery
    let env = spawn(generate(&GenConfig {
        customers: 400,
        seed: 15,
        now: Utc::now(),
        ..GenConfig::default()
    }))
    .await;
    let address = free_address();
    // One profile import per customer, so the first pass delivers for a few seconds.
    let mut daemon = start_daemon(
        &env,
        &address,
        &[
            ("TIERSYNC__KLAVIYO__BULK_THRESHOLD", "1000000"),
            // Few enough customers for the CLV model to be fitted, so its parameters show.
            ("TIERSYNC__CLV__MIN_CUSTOMERS", "100"),
        ],
    );
    let klaviyo = env.servers.klaviyo.clone();
    assert!(
        wait_until_async(Duration::from_secs(60), || async {
            klaviyo.count("POST", "/api/profile-import") >= 30
        })
        .await,
        "delivery never started: {}",
        env.log("run.log")
    );

    // Under load: everything at once (`status` is a process: waited for off the runtime).
    let status = status_command(&env, &address);
    let (health, ready, metrics, status) = tokio::join!(
        get(&address, "/healthz"),
        get(&address, "/readyz"),
        get(&address, "/metrics"),
        tokio::task::spawn_blocking(move || run(status)),
    );
    let status = status.unwrap();
    let imported = klaviyo.count("POST", "/api/profile-import");
    assert!(
        imported < 400,
        "the checks must land mid-delivery ({imported} of 400 written)"
    );
    assert_eq!(health, (200, "ok\n".to_string()));
    assert_eq!(
        ready.0, 503,
        "not ready before a pass succeeded: {}",
        ready.1
    );
    assert!(
        ready
            .1
            .contains("no pass has succeeded since the daemon started"),
        "{}",
        ready.1
    );
    assert!(
        metrics
            .1
            .contains("tiersync_rate_limit_waits_total{destination=\"klaviyo\"}")
            && metrics.1.contains("tiersync_shopify_bucket_available"),
        "{}",
        metrics.1
    );
    assert_bounded_labels(&metrics.1);
    let stdout = String::from_utf8_lossy(&status.stdout);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "status failed: {stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!("store {}\n", env.settings.store.path.display()))
            && stdout.contains("\nklaviyo profiles   ")
            && stdout.contains(" acknowledged, ")
            && stdout.contains("\nstorefront         ")
            && stdout.contains("\nconsistency        "),
        "{stdout}"
    );

    // Once the first pass is done the daemon is ready, and the metrics match the fakes.
    assert!(
        wait_until_async(Duration::from_secs(120), || async {
            get(&address, "/readyz").await.0 == 200
        })
        .await,
        "never ready: {}",
        env.log("run.log")
    );
    let text = get(&address, "/metrics").await.1;
    assert_bounded_labels(&text);
    let metrics = samples(&text);
    let delivered = env
        .servers
        .klaviyo
        .requests()
        .iter()
        .filter(|r| r.path == "/api/profile-import" && (200..300).contains(&r.status))
        .count();
    assert_eq!(
        sample(
            &metrics,
            "tiersync_writes_total{destination=\"klaviyo\",outcome=\"written\"}"
        ),
        delivered as f64,
        "profile writes the daemon counts = those Klaviyo accepted"
    );
    // Every order, and the few each later poll reads again in its overlap window.
    let ingested = sample(&metrics, "tiersync_orders_ingested_total");
    let orders = env.servers.shopify.orders().len() as f64;
    assert!(
        ingested >= orders && ingested < orders * 1.1,
        "{ingested} orders counted for {orders}"
    );
    let customers: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("tiersync_customers{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(customers, env.servers.shopify.customers().len() as f64);
    assert_eq!(
        sample(
            &metrics,
            "tiersync_outbox_depth{destination=\"klaviyo\",state=\"pending\"}"
        ),
        0.0
    );
    assert!(sample(&metrics, "tiersync_passes_total{outcome=\"success\"}") >= 1.0);
    let last = sample(&metrics, "tiersync_last_success_timestamp_seconds");
    assert!(
        (Utc::now().timestamp() as f64 - last).abs() < 120.0,
        "{last}"
    );
    assert_eq!(sample(&metrics, "tiersync_model_fitted"), 1.0);
    assert!(sample(&metrics, "tiersync_model_fit_duration_seconds") > 0.0);

    // `/status` is the command's data: the same acknowledged count as Klaviyo's writes.
    let (code, json) = get(&address, "/status").await;
    assert_eq!(code, 200, "{json}");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        status["klaviyo_profiles"]["acknowledged"].as_u64(),
        Some(env.servers.shopify.customers().len() as u64),
        "{json}"
    );

    // The endpoint stops with the daemon, within the stop bound.
    let stop = Instant::now();
    sigterm(&daemon);
    let exit = exited(&mut daemon, Duration::from_secs(5)).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}: {}",
        env.log("run.log")
    );
    assert!(stop.elapsed() < Duration::from_secs(5));
    assert!(!healthy(&address).await, "the endpoint outlived the daemon");

    // The model's parameters are the fit the store keeps.
    let store = Store::open_to_read(&env.settings.store.path, 64).unwrap();
    let population = store.population().unwrap().expect("recalculated");
    let ClvModel::Fitted(fit) = population.clv else {
        panic!("not fitted: {:?}", population.clv)
    };
    for (name, value) in ["r", "alpha", "a", "b"].into_iter().zip(fit.bgnbd) {
        assert_eq!(
            sample(&metrics, &format!("tiersync_model_bgnbd_{name}")),
            value
        );
    }
    for (name, value) in ["p", "q", "v"].into_iter().zip(fit.gamma_gamma) {
        assert_eq!(
            sample(&metrics, &format!("tiersync_model_gamma_gamma_{name}")),
            value
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_klaviyo_key_makes_readyz_503_and_status_exit_3() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.servers.klaviyo.faults().revoke_token();
    let address = free_address();
    let mut daemon = start_daemon(&env, &address, &[]);
    let start = Instant::now();
    let mut ready = (0, String::new());
    while start.elapsed() < Duration::from_secs(60)
        && !ready.1.contains("destination stopped: klaviyo")
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if healthy(&address).await {
            ready = get(&address, "/readyz").await;
        }
    }
    let stopped = ready.1.contains("destination stopped: klaviyo");
    assert!(stopped, "{ready:?}: {}", env.log("run.log"));
    assert_eq!(ready.0, 503);

    // The pass that stopped Klaviyo is counted once it ends.
    let series = "tiersync_destination_stopped{destination=\"klaviyo\"}";
    let mut metrics = BTreeMap::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) && !metrics.contains_key(series) {
        metrics = samples(&get(&address, "/metrics").await.1);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sample(&metrics, series), 1.0);
    let status = run(status_command(&env, &address));
    let stdout = String::from_utf8_lossy(&status.stdout);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("    STOPPED: "), "{stdout}");
    assert!(stderr.contains("STOPPED"), "{stderr}");

    sigterm(&daemon);
    assert!(exited(&mut daemon, Duration::from_secs(5)).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_beside_a_daemon_without_endpoint_says_so_and_reads_a_stopped_store_without_secrets()
{
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    // The daemon with its endpoint off: `status` cannot read the store, and says what to do.
    let mut daemon = start_daemon(&env, "", &[]);
    let store_ready = wait_until_async(Duration::from_secs(60), || async {
        env.log("run.log").contains("pass finished")
    })
    .await;
    assert!(store_ready, "{}", env.log("run.log"));
    let refused = run(status_command(&env, ""));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("the daemon holds the store")
            && stderr.contains("http.listen is empty")
            && stderr.contains("stop the daemon"),
        "{stderr}"
    );
    // An endpoint configured where nothing listens is named too.
    let nobody = free_address();
    let unreachable = run(status_command(&env, &nobody));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("http://{nobody}/status")) && stderr.contains("refused"),
        "{stderr}"
    );

    sigterm(&daemon);
    assert!(exited(&mut daemon, Duration::from_secs(5)).await.is_some());

    // Stopped: `status` reads the store itself, with no secret anywhere, and prints what
    // the store holds; nothing tiersync keeps in it changes. (sled has no read-only mode:
    // opening a store may write sled's own snapshot, never a record.)
    let read = || {
        let store = Store::open_to_read(&env.settings.store.path, 64).unwrap();
        Status::read(&store, &env.settings).unwrap()
    };
    let before = read();
    let status = run(status_command(&env, ""));
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(stdout, before.to_string());
    assert!(
        stdout.contains("\nklaviyo profiles   ")
            && stdout.contains(" acknowledged, 0 pending, 0 refused\n"),
        "{stdout}"
    );
    assert_eq!(read(), before, "status changed the store");

    // A store that does not exist is not created.
    let absent = env.dir.path().join("no-store-here");
    let mut command = status_command(&env, "");
    command.env("TIERSYNC__STORE__PATH", &absent);
    let missing = run(command);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no store at"), "{stderr}");
    assert!(!absent.exists(), "status created a store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_stops_the_daemon_naming_the_address_and_the_key() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut daemon = start_daemon(&env, &address, &[]);
    let exit = exited(&mut daemon, Duration::from_secs(30)).await;
    let log = env.log("run.log");
    assert_eq!(exit.and_then(|s| s.code()), Some(1), "{log}");
    assert!(
        log.contains(&format!("cannot listen on {address} (http.listen)"))
            && log.contains("in use"),
        "{log}"
    );
    assert!(
        env.servers.shopify.requests().is_empty(),
        "nothing ran before the endpoint was bound"
    );
}
