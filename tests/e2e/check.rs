//! `tiersync check`: the configuration, each credential and scope proven with read-only calls,
//! and the store directory, one line each; nothing sent changes anything. Also the daemon's
//! own check of the Klaviyo key while nothing needs writing, and error texts that say each
//! fact once.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::{hand_built_store, spawn, spawn_with, TestEnv};
use tiersync::model::Destination;
use tiersync::ops::check::{check, Outcome};
use tiersync::store::Store;
use tiersync::Pipeline;
use tiersync_mocks::MockOptions;
use tokio_util::sync::CancellationToken;

/// Runs `tiersync check` against `env` with `vars` set; its exit status and output.
fn run_check(env: &TestEnv, vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let config = env.config_file();
    let mut command = env.binary(
        &["check", "--config", config.to_str().unwrap()],
        "check.log",
    );
    command.env("RUST_LOG", "warn");
    for (name, value) in vars {
        command.env(name, value);
    }
    let status = command.status().expect("tiersync check runs");
    (status, env.log("check.log"))
}

/// The fakes saw only reads: Shopify queries (no mutation, no bulk operation), Klaviyo and
/// loyalty-app GETs, and no state changed.
fn nothing_changed(env: &TestEnv) {
    for request in env.servers.shopify.requests() {
        assert!(
            !request.body.contains("mutation"),
            "Shopify got a mutation: {}",
            request.body
        );
    }
    for request in env.servers.klaviyo.requests() {
        assert_eq!(
            request.method, "GET",
            "Klaviyo got {} {}",
            request.method, request.path
        );
    }
    for request in env.servers.smile.requests() {
        assert_eq!(
            request.method, "GET",
            "Smile got {} {}",
            request.method, request.path
        );
    }
    assert!(env.servers.klaviyo.profiles().is_empty());
    assert!(env.servers.klaviyo.bulk_jobs().is_empty());
    assert!(env.servers.klaviyo.events().is_empty());
    assert!(env
        .servers
        .shopify
        .customers()
        .iter()
        .all(|c| c.tags.is_empty()));
}

/// The line of `subject` in the output.
fn line<'a>(out: &'a str, subject: &str) -> &'a str {
    out.lines()
        .find(|l| {
            l.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
                .starts_with(subject)
        })
        .unwrap_or_else(|| panic!("no `{subject}` line in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_good_passes_with_a_line_per_check_and_changes_nothing() {
    let env = spawn(hand_built_store().0).await;
    let smile = format!("{}/v1", env.servers.smile.base_url());
    let token = env.servers.smile.api_token();
    let (status, out) = run_check(
        &env,
        &[
            ("TIERSYNC__LOYALTY__PLATFORM", "smile"),
            ("TIERSYNC__LOYALTY__BASE_URL", &smile),
            ("TIERSYNC__LOYALTY__API_KEY", &token),
        ],
    );
    println!("{out}");
    assert!(status.success(), "{out}");
    assert!(line(&out, "config").starts_with("OK"), "{out}");
    let shop = line(&out, "shopify shop");
    assert!(
        shop.starts_with("OK")
            && shop.contains("shopify.access_token")
            && shop.contains("plan Basic")
            && shop.contains("America/New_York"),
        "{out}"
    );
    let scopes = line(&out, "shopify scopes");
    assert!(
        scopes.starts_with("OK") && scopes.contains("write_customers"),
        "{out}"
    );
    let limit = line(&out, "shopify limit");
    assert!(limit.contains("2000 points restoring 100/s"), "{out}");
    assert!(line(&out, "klaviyo key").starts_with("OK"), "{out}");
    assert!(line(&out, "klaviyo bulk").starts_with("OK"), "{out}");
    let writes = line(&out, "klaviyo writes");
    assert!(
        writes.starts_with("UNPROVEN")
            && writes.contains("events:write, lists:write, profiles:write"),
        "{out}"
    );
    assert!(line(&out, "loyalty app").starts_with("OK"), "{out}");
    assert!(line(&out, "store").starts_with("OK"), "{out}");
    assert!(out.contains("every check passed"), "{out}");
    assert!(!env.settings.store.path.exists(), "check creates no store");
    assert!(
        !env.servers.smile.requests().is_empty(),
        "the loyalty app was read"
    );
    nothing_changed(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_klaviyo_key_fails_naming_the_setting() {
    let env = spawn(hand_built_store().0).await;
    let (status, out) = run_check(&env, &[("TIERSYNC__KLAVIYO__API_KEY", "pk_not_a_key")]);
    assert_eq!(status.code(), Some(1), "{out}");
    let key = line(&out, "klaviyo key");
    assert!(
        key.starts_with("FAILED") && key.contains("klaviyo.api_key") && key.contains("401"),
        "{out}"
    );
    assert!(
        line(&out, "shopify shop").starts_with("OK"),
        "the rest still ran: {out}"
    );
    assert!(out.contains("error: 1 check(s) failed"), "{out}");
    assert!(!out.contains("pk_not_a_key"), "the key never prints: {out}");
    nothing_changed(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_klaviyo_key_without_the_list_scopes_fails_the_bulk_line() {
    let env = spawn(hand_built_store().0).await;
    let key = env
        .servers
        .klaviyo
        .create_key(&["profiles:read", "profiles:write", "events:write"]);
    let (status, out) = run_check(&env, &[("TIERSYNC__KLAVIYO__API_KEY", &key)]);
    assert!(!status.success(), "{out}");
    assert!(line(&out, "klaviyo key").starts_with("OK"), "{out}");
    let bulk = line(&out, "klaviyo bulk");
    assert!(
        bulk.starts_with("FAILED") && bulk.contains("lists:read"),
        "{out}"
    );
    nothing_changed(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_shopify_scope_is_named() {
    let mut options = MockOptions::default();
    options.shopify.scopes = vec!["read_orders".into(), "read_all_orders".into()];
    let env = spawn_with(hand_built_store().0, options).await;
    let (status, out) = run_check(&env, &[]);
    assert!(!status.success(), "{out}");
    let scopes = line(&out, "shopify scopes");
    assert!(
        scopes.starts_with("FAILED")
            && scopes.contains("`write_customers`")
            && scopes.contains("storefront.enabled = false"),
        "{out}"
    );
    nothing_changed(&env);
}

#[tokio::test]
async fn the_store_must_be_closed_to_others_and_a_running_daemon_is_fine() {
    let env = spawn(hand_built_store().0).await;
    let config = env.config_file();
    let path = &env.settings.store.path;
    let store = Store::open(path).expect("store opens");
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a new store is created closed to others");

    let outcome = |report: &tiersync::ops::check::CheckReport| {
        report
            .lines
            .iter()
            .find(|l| l.subject == "store")
            .expect("a store line")
            .outcome
            .clone()
    };
    let held = check(Some(&config)).await;
    match outcome(&held) {
        Outcome::Ok(text) => assert!(text.contains("the daemon runs"), "{text}"),
        other => panic!("{other:?}"),
    }
    drop(store);

    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    match outcome(&check(Some(&config)).await) {
        Outcome::Failed(text) => {
            assert!(
                text.contains("mode 0755") && text.contains("chmod 700"),
                "{text}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_revoked_klaviyo_key_stops_the_destination_while_nothing_needs_writing() {
    let (data, _) = hand_built_store();
    let mut env = spawn(data).await;
    env.pass().await;
    // Nothing left to write; the key is revoked after the first pass proved it.
    env.servers.klaviyo.faults().revoke_token();
    env.servers.klaviyo.clear_requests();
    let quiet = env.pass().await;
    assert!(
        quiet.stopped.is_empty(),
        "proven moments ago: not asked again"
    );
    assert!(env.servers.klaviyo.requests().is_empty());

    env.settings.klaviyo.key_check_interval = Duration::ZERO;
    let pipeline = Pipeline::open(env.settings.clone()).unwrap();
    let report = pipeline.pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(report.delivery.written, 0, "nothing needed writing");
    assert_eq!(report.stopped.len(), 1, "{report}");
    assert!(
        report.stopped[0].contains("klaviyo.api_key"),
        "{:?}",
        report.stopped
    );
    assert!(pipeline
        .store()
        .destination_stopped(Destination::Klaviyo)
        .unwrap()
        .is_some_and(|why| why.contains("HTTP 401")));
    let requests = env.servers.klaviyo.requests();
    assert_eq!(requests.len(), 1, "one read: {requests:?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/api/profiles")
    );
    drop(pipeline);

    // The key works again: the next pass's read clears the stop.
    env.servers.klaviyo.faults().restore_token();
    let report = env.pass().await;
    assert!(report.stopped.is_empty(), "{report}");
    let store = Store::open(&env.settings.store.path).unwrap();
    assert_eq!(
        store.destination_stopped(Destination::Klaviyo).unwrap(),
        None
    );
}
