//! Error texts say each fact once: a refused credential, an unreachable host and a store
//! held by another process, as the `tiersync` binary prints them (anyhow chains whose layers
//! quote their source, reqwest errors naming the URL, sled's lock error).

use crate::common::{hand_built_store, spawn, TestEnv};
use tiersync::store::Store;

/// Runs `tiersync once` with `vars`; its exit code and output.
fn once(env: &TestEnv, vars: &[(&str, &str)], log: &str) -> (Option<i32>, String) {
    let config = env.config_file();
    let mut command = env.binary(&["once", "--config", config.to_str().unwrap()], log);
    command
        .env("RUST_LOG", "warn")
        .env("TIERSYNC__SYNC__MAX_RETRY_TIME", "1s");
    for (name, value) in vars {
        command.env(name, value);
    }
    let status = command.status().expect("tiersync runs");
    (status.code(), env.log(log))
}

/// The output's line containing `marker`.
fn line_with<'a>(out: &'a str, marker: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with `{marker}` in:\n{out}"))
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_klaviyo_key_is_said_once() {
    let env = spawn(hand_built_store().0).await;
    let (code, out) = once(
        &env,
        &[("TIERSYNC__KLAVIYO__API_KEY", "pk_wrong")],
        "key.log",
    );
    println!("{out}");
    assert_eq!(code, Some(3), "{out}");
    let logged = line_with(&out, "destination stopped");
    assert_eq!(logged.matches("klaviyo.api_key").count(), 1, "{logged}");
    assert_eq!(logged.matches("HTTP 401").count(), 1, "{logged}");
    let reported = line_with(&out, "STOPPED");
    assert_eq!(reported.matches("klaviyo.api_key").count(), 1, "{reported}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_shopify_secret_is_said_once() {
    let mut env = spawn(hand_built_store().0).await;
    env.use_client_credentials();
    let (code, out) = once(
        &env,
        &[("TIERSYNC__SHOPIFY__CLIENT_SECRET", "shpss_wrong")],
        "secret.log",
    );
    println!("{out}");
    assert_eq!(code, Some(1), "{out}");
    let error = line_with(&out, "error:");
    assert_eq!(
        error
            .matches("shopify.client_id / shopify.client_secret")
            .count(),
        1,
        "{error}"
    );
    assert_eq!(
        error.matches("credential was refused").count(),
        1,
        "{error}"
    );
    assert!(
        !out.contains("shpss_wrong"),
        "the secret never prints: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_names_its_url_once_with_the_cause() {
    let env = spawn(hand_built_store().0).await;
    let url = format!("http://127.0.0.1:{}", closed_port());
    let (code, out) = once(&env, &[("TIERSYNC__SHOPIFY__BASE_URL", &url)], "down.log");
    println!("{out}");
    assert_eq!(code, Some(1), "{out}");
    let error = line_with(&out, "error:");
    assert_eq!(error.matches(&url).count(), 1, "{error}");
    assert_eq!(
        error.to_lowercase().matches("connection refused").count(),
        1,
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_held_by_the_daemon_is_said_once() {
    let env = spawn(hand_built_store().0).await;
    let held = Store::open(&env.settings.store.path).unwrap();
    let (code, out) = once(&env, &[], "locked.log");
    drop(held);
    println!("{out}");
    assert_eq!(code, Some(1), "{out}");
    let error = line_with(&out, "error:");
    let path = env.settings.store.path.display().to_string();
    assert_eq!(error.matches(&path).count(), 1, "{error}");
    assert_eq!(
        error.matches("another tiersync process").count(),
        1,
        "{error}"
    );
    assert!(error.len() < 250, "{} characters: {error}", error.len());
}
