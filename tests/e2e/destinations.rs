//! One tier everywhere: after a pass Klaviyo, the storefront (Shopify tags and metafields)
//! and the loyalty app agree; reconcile finds hand edits and repairs them without touching
//! anything that is not tiersync's.

use crate::common::{hand_built_store, order, spawn, TestEnv};
use tiersync::config::{Authority, LoyaltyPlatform};
use tiersync::sync::ReconcileReport;
use tiersync::Pipeline;
use tokio_util::sync::CancellationToken;

/// The customer's tiersync tags in the fake Shopify, lower case, sorted.
fn vip_tags(env: &TestEnv, id: u64) -> Vec<String> {
    let mut tags: Vec<String> = env
        .servers
        .shopify
        .customer(id)
        .expect("customer")
        .tags
        .into_iter()
        .filter(|t| t.to_lowercase().starts_with("vip:"))
        .map(|t| t.to_lowercase())
        .collect();
    tags.sort();
    tags
}

fn metafield(env: &TestEnv, id: u64, key: &str) -> Option<String> {
    env.servers.shopify.customer_metafield(id, "tiersync", key)
}

fn id_of(env: &TestEnv, email: &str) -> u64 {
    env.servers
        .shopify
        .customers()
        .into_iter()
        .find(|c| c.email.as_deref() == Some(email))
        .expect("customer")
        .id
}

async fn reconcile(env: &TestEnv, repair: bool) -> ReconcileReport {
    Pipeline::open(env.settings.clone())
        .expect("store opens")
        .reconcile(&CancellationToken::new(), repair)
        .await
        .expect("reconcile succeeds")
}

#[tokio::test]
async fn after_a_pass_klaviyo_and_the_storefront_show_the_same_tier_for_everyone() {
    let (data, expected) = hand_built_store();
    let env = spawn(data).await;
    let mut with_foreign_tag = env.servers.shopify.customer(4).unwrap();
    with_foreign_tag.tags = vec!["wholesale".into()];
    env.servers.shopify.upsert_customer(with_foreign_tag);

    let report = env.pass().await;

    let (delivery, outbox) = report.storefront.expect("storefront on by default");
    assert_eq!(delivery.written, 8, "the eight VIPs");
    assert_eq!((outbox.pending, outbox.failed), (0, 0));
    for (email, tier) in &expected {
        let id = id_of(&env, email);
        assert_eq!(env.klaviyo_tier(email).as_deref(), Some(*tier), "{email}");
        if *tier == "None" {
            assert!(vip_tags(&env, id).is_empty(), "{email} gets no tag");
            assert_eq!(metafield(&env, id, "vip_tier"), None, "{email}");
        } else {
            assert_eq!(
                vip_tags(&env, id),
                vec![format!("vip:{}", tier.to_lowercase())],
                "{email}"
            );
            assert_eq!(metafield(&env, id, "vip_tier").as_deref(), Some(*tier));
            assert_eq!(metafield(&env, id, "vip_state").as_deref(), Some("active"));
            assert!(metafield(&env, id, "clv_blended").is_some());
        }
    }
    assert!(
        env.servers
            .shopify
            .customer(4)
            .unwrap()
            .tags
            .contains(&"wholesale".to_string()),
        "other tags are never touched"
    );

    let check = reconcile(&env, false).await;
    assert_eq!(check.drift(), 0, "{check}");
    assert_eq!(check.klaviyo.consistent, 12, "{check}");
    assert_eq!(check.storefront.as_ref().unwrap().consistent, 12, "{check}");
}

#[tokio::test]
async fn a_demotion_moves_the_tag_and_a_second_pass_writes_nothing_to_shopify() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    env.servers.shopify.clear_requests();

    let idle = env.pass().await;
    assert_eq!(idle.storefront.unwrap().0.written, 0);
    let mutations = env
        .servers
        .shopify
        .requests()
        .iter()
        .filter(|r| r.body.contains("mutation TiersyncStorefront"))
        .count();
    assert_eq!(mutations, 0, "nothing changed, nothing written");

    // Bob (Silver on exactly $500) is refunded $100: grace first, level kept.
    let mut bob = env.servers.shopify.orders()[1].clone();
    bob.shop_refunded = "100.00".parse().unwrap();
    bob.updated_at = chrono::Utc::now();
    env.servers.shopify.upsert_order(bob);
    env.pass().await;
    assert_eq!(vip_tags(&env, 2), vec!["vip:silver"]);
    assert_eq!(metafield(&env, 2, "vip_state").as_deref(), Some("grace"));

    // A $2,000 order lifts Alice straight to Gold.
    env.servers
        .shopify
        .upsert_order(order(900, Some((1, "alice@example.com")), 0, "2000.00").build());
    env.pass().await;
    assert_eq!(vip_tags(&env, 1), vec!["vip:gold"]);
    assert_eq!(metafield(&env, 1, "vip_peak_tier").as_deref(), Some("Gold"));
}

#[tokio::test]
async fn reconcile_finds_hand_edits_and_repair_fixes_only_tiersyncs_part() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    // Dave is Gold: someone retags him Platinum by hand and adds a tag of their own.
    let mut dave = env.servers.shopify.customer(4).unwrap();
    dave.tags = vec!["vip:platinum".into(), "wholesale".into()];
    env.servers.shopify.upsert_customer(dave);
    // Alice never held a level; she gets a VIP tag by hand.
    let mut alice = env.servers.shopify.customer(1).unwrap();
    alice.tags.push("VIP:Gold".into());
    env.servers.shopify.upsert_customer(alice);
    // Erin is Platinum: her Klaviyo property is edited.
    assert!(env
        .servers
        .klaviyo
        .set_property("erin@example.com", "vip_tier", "Silver".into()));

    let found = reconcile(&env, false).await;

    assert_eq!(found.klaviyo.foreign, 1, "{found}");
    let shop = found.storefront.as_ref().unwrap();
    assert_eq!(
        (shop.foreign, shop.missing, shop.stale),
        (2, 0, 0),
        "{found}"
    );
    let text = found.to_string();
    assert!(
        text.contains("erin@example.com: foreign edit: shows vip_tier \"Silver\""),
        "{text}"
    );
    assert!(text.contains("dave@example.com: foreign edit"), "{text}");
    assert_eq!(
        vip_tags(&env, 4),
        vec!["vip:platinum"],
        "no repair without --repair"
    );

    let repaired = reconcile(&env, true).await;

    assert_eq!(repaired.drift(), 3, "{repaired}");
    let (profiles, storefront) = repaired.delivered.expect("repairs delivered");
    assert_eq!((profiles.written, storefront.written), (1, 2), "{repaired}");
    assert_eq!(vip_tags(&env, 4), vec!["vip:gold"]);
    assert!(env
        .servers
        .shopify
        .customer(4)
        .unwrap()
        .tags
        .contains(&"wholesale".to_string()));
    assert!(vip_tags(&env, 1).is_empty(), "the hand-added tag is gone");
    assert_eq!(
        env.klaviyo_tier("erin@example.com").as_deref(),
        Some("Platinum")
    );
    let after = reconcile(&env, false).await;
    assert_eq!(after.drift(), 0, "{after}");
}

#[tokio::test]
async fn a_lost_store_is_rebuilt_by_reconcile_without_writing_everyone_again() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    std::fs::remove_dir_all(&env.settings.store.path).unwrap();
    env.servers.klaviyo.clear_requests();
    env.servers.shopify.clear_requests();

    let rebuilt = reconcile(&env, true).await;

    assert_eq!(rebuilt.drift(), 0, "{rebuilt}");
    assert_eq!(rebuilt.klaviyo.adopted, 12, "{rebuilt}");
    assert_eq!(rebuilt.storefront.as_ref().unwrap().adopted, 8, "{rebuilt}");
    assert_eq!(env.profile_writes(), 0, "nothing written again");
    let report = env.pass().await;
    assert_eq!(report.delivery.written, 0);
    assert_eq!(report.storefront.unwrap().0.written, 0);
}

#[tokio::test]
async fn with_loyalty_authority_the_apps_tier_reaches_klaviyo_and_the_storefront() {
    let (data, expected) = hand_built_store();
    let mut env = spawn(data.clone()).await;
    // The app puts Alice (None by spend) in Gold and Erin (Platinum by spend) in Silver; the
    // fake Smile program has no Platinum, so Oscar has no tier there.
    let members: Vec<(String, i64, Option<String>)> = expected
        .iter()
        .map(|(email, tier)| {
            let app = match *email {
                "alice@example.com" => Some("Gold"),
                "erin@example.com" => Some("Silver"),
                _ if matches!(*tier, "None" | "Platinum") => None,
                _ => Some(*tier),
            };
            (email.to_string(), 100, app.map(str::to_string))
        })
        .collect();
    env.servers.smile.load(&data, &members);
    env.use_loyalty(LoyaltyPlatform::Smile, Authority::Loyalty);

    env.pass().await;

    for (email, _, app) in &members {
        let tier = app.as_deref().unwrap_or("None");
        let id = id_of(&env, email);
        assert_eq!(env.klaviyo_tier(email).as_deref(), Some(tier), "{email}");
        let tags = vip_tags(&env, id);
        if tier == "None" {
            assert!(tags.is_empty(), "{email}: {tags:?}");
        } else {
            assert_eq!(
                tags,
                vec![format!("vip:{}", tier.to_lowercase())],
                "{email}"
            );
        }
    }
    let check = reconcile(&env, false).await;
    assert_eq!(check.drift(), 0, "{check}");
    assert_eq!(
        check.loyalty.as_ref().unwrap().differing.count,
        0,
        "{check}"
    );
}

#[tokio::test]
async fn reconcile_repair_dry_run_plans_the_fixes_and_sends_nothing() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    let mut dave = env.servers.shopify.customer(4).unwrap();
    dave.tags = vec!["vip:platinum".into()];
    env.servers.shopify.upsert_customer(dave);

    let (report, planned) =
        tiersync::reconcile(env.settings.clone(), true, true, std::future::pending())
            .await
            .expect("dry run");

    assert_eq!(report.storefront.as_ref().unwrap().enqueued, 1, "{report}");
    assert!(report.delivered.is_none());
    assert!(
        report.to_string().contains("dry run: repairs planned"),
        "{report}"
    );
    let planned = planned.expect("the plan is printed");
    assert!(
        planned.contains("planned shopify customer writes: 1") && planned.contains("tag vip:gold"),
        "{planned}"
    );
    assert_eq!(vip_tags(&env, 4), vec!["vip:platinum"], "nothing sent");

    // The next pass sends what was planned.
    env.pass().await;
    assert_eq!(vip_tags(&env, 4), vec!["vip:gold"]);
}

#[tokio::test]
async fn the_daemon_reconciles_on_its_schedule_and_remembers_when() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    let every = std::time::Duration::from_secs(3600);
    let cancel = CancellationToken::new();

    let first = Pipeline::open(env.settings.clone())
        .unwrap()
        .reconcile_if_due(&cancel, every)
        .await
        .unwrap();
    // A restart does not run it again before `every` has passed.
    let second = Pipeline::open(env.settings.clone())
        .unwrap()
        .reconcile_if_due(&cancel, every)
        .await
        .unwrap();

    assert!(first.is_some_and(|r| r.repair && r.drift() == 0));
    assert!(second.is_none());
}

/// Prefix tags and `vip_*` properties that were there before tiersync's first pass.
fn leftovers_from_an_earlier_program(env: &TestEnv) {
    // dave (Gold) carries two stale tiers and one tag of somebody else's.
    let dave = id_of(env, "dave@example.com");
    let mut customer = env.servers.shopify.customer(dave).unwrap();
    customer.tags = vec![
        "vip:platinum".into(),
        "VIP:Bronze".into(),
        "wholesale".into(),
    ];
    env.servers.shopify.upsert_customer(customer);
    // alice (no level, never held one) carries an old VIP tag.
    let alice = id_of(env, "alice@example.com");
    let mut customer = env.servers.shopify.customer(alice).unwrap();
    customer.tags = vec!["vip:gold".into(), "newsletter".into()];
    env.servers.shopify.upsert_customer(customer);
    // bob (Silver) already shows exactly Silver.
    let bob = id_of(env, "bob@example.com");
    let mut customer = env.servers.shopify.customer(bob).unwrap();
    customer.tags = vec!["vip:silver".into()];
    env.servers.shopify.upsert_customer(customer);

    // erin (Platinum, the top level) was told what the next level costs; alice held a level.
    let klaviyo = &env.servers.klaviyo;
    klaviyo.create_profile(
        "erin@example.com",
        serde_json::json!({ "vip_tier": "Gold", "vip_next_tier": "Platinum",
                            "vip_spend_to_next": 120.5, "favourite_colour": "green" }),
    );
    klaviyo.create_profile(
        "alice@example.com",
        serde_json::json!({ "vip_tier": "Gold", "vip_tier_since": "2024-03-01",
                            "vip_peak_tier": "Gold" }),
    );
}

async fn first_sync_meets_what_is_already_there(bulk_threshold: usize) {
    let (data, expected) = hand_built_store();
    let mut env = spawn(data).await;
    env.settings.klaviyo.bulk_threshold = bulk_threshold;
    leftovers_from_an_earlier_program(&env);

    let report = env.pass().await;

    let seen = report
        .storefront_seeding
        .as_ref()
        .expect("the first pass reads the storefront");
    // Consistent: the three customers without a level who show nothing. To correct: dave,
    // alice, and bob (his tag is right, the metafields are missing).
    assert_eq!(
        (seen.checked, seen.consistent, seen.stale + seen.foreign),
        (12, 3, 3),
        "{report}"
    );
    assert_eq!(report.storefront.as_ref().unwrap().0.written, 9, "{report}");
    assert!(
        report.to_string().contains("storefront read     "),
        "{report}"
    );
    for (email, tier) in &expected {
        let id = id_of(&env, email);
        let want: Vec<String> = match *tier {
            "None" => vec![],
            tier => vec![format!("vip:{}", tier.to_lowercase())],
        };
        assert_eq!(vip_tags(&env, id), want, "{email}");
        assert_eq!(env.klaviyo_tier(email).as_deref(), Some(*tier), "{email}");
    }
    let tags = |email| {
        env.servers
            .shopify
            .customer(id_of(&env, email))
            .unwrap()
            .tags
    };
    assert!(tags("dave@example.com").contains(&"wholesale".to_string()));
    assert!(tags("alice@example.com").contains(&"newsletter".to_string()));
    let props = |email| {
        env.servers
            .klaviyo
            .profile_by_email(email)
            .unwrap()
            .properties
    };
    let erin = props("erin@example.com");
    assert_eq!(erin.get("vip_next_tier"), None, "{erin:?}");
    assert_eq!(erin.get("vip_spend_to_next"), None, "{erin:?}");
    assert_eq!(
        erin.get("favourite_colour"),
        Some(&serde_json::json!("green"))
    );
    let alice = props("alice@example.com");
    assert_eq!(alice.get("vip_tier_since"), None, "{alice:?}");
    assert_eq!(alice.get("vip_peak_tier"), None, "{alice:?}");

    let shopify_writes = env
        .servers
        .shopify
        .count("POST", "/admin/api/2026-10/graphql.json");
    let check = reconcile(&env, false).await;
    assert_eq!(check.drift(), 0, "{check}");
    let idle = env.pass().await;
    assert!(idle.storefront_seeding.is_none(), "read once: {idle}");
    assert_eq!(idle.storefront.unwrap().0.written, 0);
    assert_eq!(idle.delivery.written, 0);
    assert!(shopify_writes > 0);
}

#[tokio::test]
async fn the_first_pass_replaces_earlier_vip_tags_and_properties_with_single_writes() {
    first_sync_meets_what_is_already_there(1_000).await;
}

#[tokio::test]
async fn the_first_pass_replaces_earlier_vip_tags_and_properties_through_a_bulk_job() {
    first_sync_meets_what_is_already_there(1).await;
}
