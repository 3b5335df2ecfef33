//! Failures an operator must be able to read and recover from: a revoked credential stops
//! only its destination, a key without a scope says which scopes the refused call needs,
//! refused writes wait for `tiersync retry`, and a store that cannot be used says so and names
//! `tiersync rebuild`.

use crate::common::{self, hand_built_store, order, spawn, ALICE};
use tiersync::store::{Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_klaviyo_key_stops_klaviyo_only_without_a_retry_storm() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.servers.klaviyo.faults().revoke_token();

    let report = env.pass().await;

    assert_eq!(report.stopped.len(), 1, "{report}");
    assert!(
        report.stopped[0].contains("klaviyo")
            && report.stopped[0].contains("credential was refused (HTTP 401)")
            && report.stopped[0].contains("klaviyo.api_key"),
        "{:?}",
        report.stopped
    );
    let sent = env.servers.klaviyo.requests().len();
    assert!(
        sent <= env.settings.klaviyo.concurrency,
        "only the writes already in flight: {sent}"
    );
    assert_eq!(report.klaviyo_outbox.pending, 12, "nothing lost");
    assert_eq!(
        report.storefront.unwrap().0.written,
        8,
        "the storefront carries on"
    );
    let store = Store::open(&env.settings.store.path).unwrap();
    let status = tiersync::ops::status::status(&store, &env.settings).unwrap();
    assert!(status.contains("STOPPED: klaviyo"), "{status}");
    drop(store);
    // A one-shot run says so in its exit status.
    let config = env.config_file();
    let once = env
        .binary(&["once", "--config", config.to_str().unwrap()], "once.log")
        .status()
        .unwrap();
    assert!(!once.success(), "{}", env.log("once.log"));
    assert!(
        env.log("once.log")
            .contains("1 destination(s) stopped because their credential was refused"),
        "{}",
        env.log("once.log")
    );

    // The key works again (a restart with the fixed key): everything goes out, the mark clears.
    env.servers.klaviyo.faults().restore_token();
    let report = env.pass().await;
    assert!(report.stopped.is_empty());
    assert_eq!(report.delivery.written, 12);
    let store = Store::open(&env.settings.store.path).unwrap();
    let status = tiersync::ops::status::status(&store, &env.settings).unwrap();
    assert!(!status.contains("STOPPED"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiersync_retry_sends_the_refused_writes_again() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.servers.klaviyo.reject_email(
        "bob@example.com",
        400,
        "This email is on a suppression list.",
    );
    let report = env.pass().await;
    assert_eq!(report.klaviyo_outbox.failed, 1);
    env.servers.klaviyo.accept_email("bob@example.com");
    assert_eq!(
        env.pass().await.delivery.written,
        0,
        "parked writes wait for the input to change or `retry`"
    );

    let output = env
        .binary(
            &["retry", "--config", env.config_file().to_str().unwrap()],
            "retry.log",
        )
        .status()
        .unwrap();

    assert!(output.success(), "{}", env.log("retry.log"));
    let log = env.log("retry.log");
    assert!(
        log.contains("1 refused writes and events un-parked"),
        "{log}"
    );
    assert_eq!(
        env.klaviyo_tier("bob@example.com").as_deref(),
        Some("Silver")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_another_version_is_refused_and_rebuild_recovers_it() {
    let (data, expected) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    // Rewrite the schema version as a future release would.
    {
        let db = sled::open(&env.settings.store.path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let error = Store::open(&env.settings.store.path)
        .err()
        .expect("refused");
    assert!(matches!(
        error,
        StoreError::UnknownVersion { found: 99, .. }
    ));
    assert!(error.to_string().contains("tiersync rebuild"), "{error}");
    env.servers.klaviyo.clear_requests();

    let config = env.config_file();
    let status = env
        .binary(
            &["rebuild", "--config", config.to_str().unwrap()],
            "rebuild.log",
        )
        .status()
        .unwrap();

    let log = env.log("rebuild.log");
    assert!(status.success(), "{log}");
    assert!(log.contains("the old store was moved to"), "{log}");
    assert!(
        log.contains("drift: 0 missing, 0 stale, 0 foreign edit"),
        "{log}"
    );
    assert_eq!(
        env.profile_writes(),
        0,
        "what Klaviyo shows is adopted: {log}"
    );
    let kept = std::fs::read_dir(env.settings.store.path.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains(".before-rebuild-"));
    assert!(kept, "the old store is kept");
    for (email, tier) in expected {
        assert_eq!(env.klaviyo_tier(email).as_deref(), Some(tier));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_path_that_cannot_be_written_is_a_clear_error() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    // /proc refuses new directories even to root, like a read-only mount.
    let status = env
        .binary(
            &["once", "--config", env.config_file().to_str().unwrap()],
            "once.log",
        )
        .env("TIERSYNC__STORE__PATH", "/proc/tiersync-store")
        .status()
        .unwrap();

    let log = env.log("once.log");
    assert!(!status.success());
    assert!(
        log.contains("cannot use the store at /proc/tiersync-store")
            && log.contains("writable by the tiersync user"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_format_3_is_migrated_in_place_and_nothing_is_re_sent() {
    let (data, expected) = hand_built_store();
    let mut env = spawn(data).await;
    // The daily recalculation runs on the first pass of each shop-local day, whatever the
    // hour this test runs at.
    env.settings.sync.recalc_at = chrono::NaiveTime::MIN;
    env.pass().await;
    let customers: Vec<String> = {
        let store = Store::open(&env.settings.store.path).unwrap();
        store.customers().map(|r| r.unwrap().id).collect()
    };
    assert_eq!(customers.len(), expected.len());
    // What format 3 looked like: no checkpoints tree.
    {
        let db = sled::open(&env.settings.store.path).unwrap();
        assert!(db.drop_tree("checkpoints").unwrap());
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &3u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    let store = Store::open(&env.settings.store.path).expect("format 3 is migrated");
    let ids: Vec<&str> = customers.iter().map(String::as_str).collect();
    let checkpoints = store.checkpoints_sorted(&ids).unwrap();
    for (record, checkpoint) in store.customers().zip(&checkpoints) {
        let record = record.unwrap();
        assert_eq!(
            checkpoint.as_ref(),
            Some(&record.checkpoint()),
            "{}",
            record.id
        );
    }
    drop(store);
    env.servers.klaviyo.clear_requests();

    let report = env.pass_at(common::now() + chrono::Duration::days(1)).await;

    assert!(report.evaluation.recalculated, "{report}");
    assert_eq!(report.evaluation.transitions, 0, "{report}");
    assert_eq!(env.profile_writes(), 0, "nothing re-sent: {report}");
    for (email, tier) in expected {
        assert_eq!(env.klaviyo_tier(email).as_deref(), Some(tier), "{email}");
    }
}

/// Every scope the README asks a Klaviyo key for.
const DOCUMENTED_SCOPES: [&str; 5] = [
    "profiles:write",
    "lists:write",
    "profiles:read",
    "lists:read",
    "events:write",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_klaviyo_key_without_lists_write_stops_at_the_first_bulk_job_naming_the_scope() {
    let (data, _) = hand_built_store();
    let mut env = spawn(data).await;
    let without: Vec<&str> = DOCUMENTED_SCOPES
        .into_iter()
        .filter(|s| *s != "lists:write")
        .collect();
    env.settings.klaviyo.api_key = env.servers.klaviyo.create_key(&without).into();
    env.settings.klaviyo.bulk_threshold = 1;

    let report = env.pass().await;

    assert_eq!(report.stopped.len(), 1, "{report}");
    let stopped = &report.stopped[0];
    for needed in [
        "klaviyo bulk import job create",
        "HTTP 403",
        "lists:write",
        "klaviyo.api_key",
    ] {
        assert!(stopped.contains(needed), "{needed} missing from: {stopped}");
    }
    let jobs = env
        .servers
        .klaviyo
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/profile-bulk-import-jobs"))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(jobs, [403], "one refused job, no retry storm");
    assert_eq!(report.klaviyo_outbox.pending, 12, "nothing lost");
    assert!(env.servers.klaviyo.profiles().is_empty());
    let store = Store::open(&env.settings.store.path).unwrap();
    let status = tiersync::ops::status::status(&store, &env.settings).unwrap();
    assert!(
        status.contains("STOPPED: klaviyo") && status.contains("lists:write"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_klaviyo_key_with_exactly_the_documented_scopes_runs_a_pass_and_reconcile() {
    let (data, expected) = hand_built_store();
    let mut env = spawn(data).await;
    env.settings.klaviyo.api_key = env.servers.klaviyo.create_key(&DOCUMENTED_SCOPES).into();
    env.settings.klaviyo.bulk_threshold = 1;
    // One refused profile, so the job's import errors are read too.
    let (refused, tier) = expected[1];
    assert_ne!(tier, "None");
    env.servers
        .klaviyo
        .reject_email(refused, 400, "This profile is suppressed.");

    let report = env.pass().await;
    assert!(report.stopped.is_empty(), "{report}");
    assert_eq!(report.delivery.bulk_jobs, 1, "{report}");
    assert_eq!((report.delivery.written, report.delivery.parked), (11, 1));
    // Alice ($100, no level) reaches Silver: a profile write and a tier event.
    env.servers
        .shopify
        .upsert_order(order(1000, Some(ALICE), 0, "450.00").build());
    let report = env.pass().await;
    assert!(report.stopped.is_empty(), "{report}");
    assert_eq!(report.events.sent, 1, "{report}");
    let reconciled = tiersync::Pipeline::open(env.settings.clone())
        .unwrap()
        .reconcile(&tokio_util::sync::CancellationToken::new(), false)
        .await
        .expect("reconcile reads the profiles back");
    assert_eq!(reconciled.klaviyo.consistent, 11, "{reconciled}");

    let paths = |status: u16| -> Vec<String> {
        env.servers
            .klaviyo
            .requests()
            .into_iter()
            .filter(|r| r.status == status)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    };
    assert!(paths(403).is_empty(), "{:?}", paths(403));
    let called = paths(200);
    assert!(
        called.iter().any(|c| c.ends_with("/import-errors")),
        "{called:?}"
    );
    assert!(
        called.iter().any(|c| c == "GET /api/profiles"),
        "{called:?}"
    );
}
