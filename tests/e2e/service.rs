//! tiersync as a service: a stop during a long back-off ends within seconds and loses
//! nothing, a destination that cannot be reached fails `once` with its cause, logs off a
//! terminal carry no colour codes (or are JSON), and the systemd units pass
//! `systemd-analyze security`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::{self, hand_built_store, order, spawn, TestEnv, ALICE};
use tiersync_mocks::faults::FaultKind;

/// The bound on a stop during back-off: the daemon has nothing to wait for but the requests
/// already on the wire (answered at once here) and its store.
const STOP_BOUND: Duration = Duration::from_secs(5);

async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// Successful profile imports per email: what Klaviyo was made to write, and how often.
fn profile_writes_by_email(env: &TestEnv) -> HashMap<String, usize> {
    let mut writes = HashMap::new();
    for request in env.servers.klaviyo.requests() {
        if request.path == "/api/profile-import" && (200..300).contains(&request.status) {
            let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
            let email = body["data"]["attributes"]["email"]
                .as_str()
                .unwrap()
                .to_string();
            *writes.entry(email).or_default() += 1;
        }
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_retry_after_stops_within_seconds_and_loses_nothing() {
    let _clock = common::timing_sensitive().await; // the stop is timed
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    // The first sync (it triggers no flows), then two customers reach a level: each needs a
    // profile write and an entry event.
    env.pass().await;
    env.servers.klaviyo.clear_requests();
    env.servers
        .shopify
        .upsert_order(order(900, Some(ALICE), 0, "2000.00").build());
    env.servers
        .shopify
        .upsert_order(order(901, Some((6, "frank@example.com")), 0, "600.00").build());
    // Klaviyo refuses everything "for the next 100 s", longer than systemd's stop timeout.
    env.servers.klaviyo.reject_next(100_000, 429, Some(100));
    let config = env.config_file();
    let mut daemon = env
        .binary(&["run", "--config", config.to_str().unwrap()], "run.log")
        .spawn()
        .expect("daemon starts");
    let faults = env.servers.klaviyo.faults();
    assert!(
        wait_until(Duration::from_secs(60), || faults
            .injected(FaultKind::TooManyRequests)
            >= 1)
        .await,
        "the daemon never reached Klaviyo: {}",
        env.log("run.log")
    );
    // Let it settle into the back-off.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        env.log("run.log").contains("retry after 100.0s"),
        "backing off: {}",
        env.log("run.log")
    );

    let stopping = Instant::now();
    let pid = daemon.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let exited = wait_until(Duration::from_secs(30), || {
        matches!(daemon.try_wait(), Ok(Some(_)))
    })
    .await;
    let took = stopping.elapsed();
    if !exited {
        daemon.kill().expect("SIGKILL");
    }
    let log = env.log("run.log");
    assert!(exited && took < STOP_BOUND, "stopped after {took:?}: {log}");
    println!("SIGTERM during a 100 s Retry-After: exited after {took:?}");
    let status = daemon.wait().unwrap();
    assert!(
        status.success(),
        "a requested stop is a clean stop: {status:?}: {log}"
    );
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("tiersync daemon stopped"), "{log}");
    assert!(
        profile_writes_by_email(&env).is_empty(),
        "Klaviyo accepted nothing before the stop"
    );

    // Klaviyo is back: the next run delivers everything, each profile and event once.
    faults.clear();
    let once = env
        .binary(&["once", "--config", config.to_str().unwrap()], "once.log")
        .status()
        .unwrap();
    assert!(once.success(), "{}", env.log("once.log"));
    assert_eq!(env.klaviyo_tier(ALICE.1).as_deref(), Some("Gold"));
    assert_eq!(
        env.klaviyo_tier("frank@example.com").as_deref(),
        Some("Silver")
    );
    let writes = profile_writes_by_email(&env);
    assert_eq!(
        writes,
        HashMap::from([
            (ALICE.1.to_string(), 1),
            ("frank@example.com".to_string(), 1)
        ])
    );
    let mut entered: Vec<_> = env
        .servers
        .klaviyo
        .events()
        .into_iter()
        .filter_map(|e| e.email)
        .collect();
    entered.sort();
    assert_eq!(entered, [ALICE.1, "frank@example.com"]);
    let sent = env
        .servers
        .klaviyo
        .requests()
        .iter()
        .filter(|r| r.path == "/api/events" && (200..300).contains(&r.status))
        .count();
    assert_eq!(sent, 2, "each event sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_with_klaviyo_unreachable_fails_naming_the_cause() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    // A loopback port nothing listens on: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.config_file();
    let status = env
        .binary(&["once", "--config", config.to_str().unwrap()], "once.log")
        .env(
            "TIERSYNC__KLAVIYO__BASE_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("TIERSYNC__SYNC__MAX_RETRY_TIME", "1s")
        .status()
        .unwrap();

    let log = env.log("once.log");
    assert_eq!(status.code(), Some(3), "writes left undelivered: {log}");
    assert!(
        log.to_lowercase().contains("connection refused"),
        "the cause is kept: {log}"
    );
    assert!(log.contains("event(s) were not delivered"), "{log}");
    // The writes wait in the outbox: Klaviyo back, the next run sends them.
    let status = env
        .binary(&["once", "--config", config.to_str().unwrap()], "again.log")
        .status()
        .unwrap();
    assert!(status.success(), "{}", env.log("again.log"));
    assert_eq!(profile_writes_by_email(&env).len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_off_a_terminal_carry_no_colour_codes() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    let config = env.config_file();
    // Default `log.format = "auto"`; the test's stderr is a file, as under journald.
    let status = env
        .binary(&["once", "--config", config.to_str().unwrap()], "once.log")
        .status()
        .unwrap();

    let log = env.log("once.log");
    assert!(status.success(), "{log}");
    assert!(log.contains(" INFO "), "the logs are there: {log}");
    assert!(!log.contains("\x1b["), "colour codes in: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_their_fields() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    let config = env.config_file();
    let stderr = env.dir.path().join("stderr.jsonl");
    let status = env
        .binary(
            &["once", "--config", config.to_str().unwrap()],
            "stdout.log",
        )
        .env("TIERSYNC__LOG__FORMAT", "json")
        .stderr(std::fs::File::create(&stderr).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "{}", env.log("stdout.log"));

    let text = std::fs::read_to_string(&stderr).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.len() >= 5, "{text}");
    for line in &lines {
        for key in ["timestamp", "level", "message"] {
            assert!(line.get(key).is_some(), "no `{key}` in {line}");
        }
    }
    // Fields sit beside the message, typed: the orders pages stored, with their counts.
    let page = lines
        .iter()
        .find(|l| l["message"] == "orders page stored")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(page["orders"].is_u64(), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_log_format_is_refused() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    let config = env.config_file();
    let output = env
        .binary(&["once", "--config", config.to_str().unwrap()], "once.log")
        .env("TIERSYNC__LOG__FORMAT", "xml")
        .status()
        .unwrap();
    let log = env.log("once.log");
    assert_eq!(output.code(), Some(1), "{log}");
    assert!(
        log.contains("log.format") && log.contains("\"auto\", \"text\" or \"json\""),
        "{log}"
    );
}

/// `systemd-analyze security --offline=yes` on a unit: its overall exposure, e.g. 1.1.
fn exposure(unit: &std::path::Path) -> Option<f64> {
    let output = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no score for {}: {text}{}",
                unit.display(),
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let score = line.rsplit(':').next()?.split_whitespace().next()?;
    Some(score.parse().expect("a number"))
}

#[test]
fn the_systemd_units_are_rated_ok_and_keep_what_the_service_needs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["tiersync.service", "tiersync@.service"] {
        let path = root.join("systemd").join(name);
        let unit = std::fs::read_to_string(&path).unwrap();
        // What the service needs, whatever the score: its config, its state (private to its
        // user whatever the umask) and the vendors' APIs.
        for line in [
            "StateDirectoryMode=0700",
            "UMask=0077",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        ] {
            assert!(unit.lines().any(|l| l == line), "{name} lacks {line}");
        }
        assert!(
            unit.lines()
                .any(|l| l.starts_with("LoadCredential=tiersync.toml:/etc/tiersync/"))
                && unit.contains("--config ${CREDENTIALS_DIRECTORY}/tiersync.toml"),
            "{name}: the config reaches the service user through LoadCredential"
        );
        assert!(
            !unit.contains("PrivateNetwork=yes"),
            "{name} must reach the APIs"
        );

        let Some(score) = exposure(&path) else {
            // .ci/run installs systemd-analyze, so CI never skips this.
            eprintln!("systemd-analyze is not installed: {name} not rated");
            continue;
        };
        assert!(score <= 2.0, "{name} rated {score}, above 2.0 (OK)");
        let recorded = format!(": {score:.1} OK");
        assert!(
            unit.contains(&recorded),
            "{name}: the comment must record the score, {score:.1} OK"
        );
    }
}
