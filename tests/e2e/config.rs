//! Configuration: layering, environment overrides, secrets that never print, and errors that
//! name the key.

use std::path::Path;

use tiersync::Settings;

const VALID: &str = r#"
[shopify]
shop = "acme"
access_token = "shpat_secret_value_123"

[klaviyo]
api_key = "pk_secret_value_456"

[store]
path = "/tmp/tiersync-config-test"
"#;

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("tiersync.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), text);
    Settings::load_with_env(
        Some(&path),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let settings = load(VALID, &[]).unwrap();
    assert_eq!(settings.shopify.base_url, "https://acme.myshopify.com");
    assert_eq!(settings.shopify.api_version, "2026-10");
    assert_eq!(settings.klaviyo.base_url, "https://a.klaviyo.com");
    assert_eq!(
        settings.sync.poll_interval,
        std::time::Duration::from_secs(300)
    );
    assert_eq!(settings.tiers.window_days, 365);
    let names: Vec<_> = settings
        .tiers
        .levels
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, ["Silver", "Gold", "Platinum"]);
}

#[test]
fn environment_overrides_the_file() {
    let settings = load(
        VALID,
        &[
            ("TIERSYNC__SYNC__POLL_INTERVAL", "90s"),
            ("TIERSYNC__KLAVIYO__API_KEY", "pk_from_env"),
            ("TIERSYNC__TIERS__WINDOW_DAYS", "180"),
        ],
    )
    .unwrap();
    assert_eq!(
        settings.sync.poll_interval,
        std::time::Duration::from_secs(90)
    );
    assert_eq!(settings.tiers.window_days, 180);
    use secrecy::ExposeSecret;
    assert_eq!(settings.klaviyo.api_key.expose_secret(), "pk_from_env");
}

#[test]
fn levels_in_a_file_replace_the_default_levels() {
    let text = format!("{VALID}\n[[tiers.levels]]\nname = \"VIP\"\nmin_spend = \"250\"\n");
    let settings = load(&text, &[]).unwrap();
    assert_eq!(settings.tiers.levels.len(), 1);
    assert_eq!(settings.tiers.levels[0].name, "VIP");
    assert_eq!(settings.tiers.levels[0].min_orders, None);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = load(VALID, &[]).unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains("shpat_secret_value_123"), "{debug}");
    assert!(!debug.contains("pk_secret_value_456"), "{debug}");
}

#[test]
fn bad_values_are_refused_with_the_key_and_what_is_expected() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("[sync]\npoll_interval = \"soon\"", "sync.poll_interval", &["not a duration", "5m"]),
        ("[tiers]\nwindow_days = 0", "tiers.window_days", &["out of range"]),
        ("[shopify]\napi_version = \"latest\"", "shopify.api_version", &["YYYY-MM"]),
        ("[shopify]\nbase_url = \"not a url\"", "shopify.base_url", &["not a URL"]),
        ("[shopify]\nbackfill = \"fast\"", "shopify.backfill", &["\"bulk\" or \"pages\""]),
        ("[shopify]\npage_size = 100", "shopify.page_size", &["1 to 99"]),
        ("[klaviyo]\nrevision = \"yesterday\"", "klaviyo.revision", &["YYYY-MM-DD"]),
        ("[klaviyo]\nprofiles_per_minute = 5000", "klaviyo.profiles_per_minute", &["1 to 750"]),
        (
            "[[tiers.levels]]\nname = \"Gold\"\nmin_spend = \"-5\"",
            "tiers.levels[0].min_spend",
            &["negative"],
        ),
        (
            "[[tiers.levels]]\nname = \"Gold\"\nmin_spend = \"lots\"",
            "tiers.levels[0].min_spend",
            &["not a decimal"],
        ),
        (
            "[[tiers.levels]]\nname = \"Gold\"\nmin_spend = \"1000\"\n[[tiers.levels]]\nname = \"Silver\"\nmin_spend = \"500\"",
            "tiers.levels[1].name",
            &["lowest first"],
        ),
        ("[[tiers.levels]]\nname = \"Gold\"", "tiers.levels[0].min_clv", &["no threshold"]),
        ("[tiers]\nmode = \"ranked\"", "tiers.mode", &["\"fixed\" or \"percentile\""]),
        ("[tiers]\ngrace_days = -1", "tiers.grace_days", &["out of range"]),
        ("[sync]\nrecalc_at = \"3am\"", "sync.recalc_at", &["HH:MM"]),
        ("[sync]\nreconcile_every = \"daily\"", "sync.reconcile_every", &["not a duration"]),
        ("[storefront]\ntag_prefix = \"vip,\"", "storefront.tag_prefix", &["no commas"]),
        ("[storefront]\nmetafield_namespace = \"a b\"", "storefront.metafield_namespace", &["3 to 255"]),
        ("[storefront]\ncustomers_per_call = 100", "storefront.customers_per_call", &["1 to 40"]),
        ("[loyalty]\nplatform = \"yotpo\"", "loyalty.platform", &["smile"]),
        ("[shopify]\ntimezone = \"Mars/Olympus\"", "shopify.timezone", &["IANA"]),
        ("[clv]\nmonthly_discount = \"1.5\"", "clv.monthly_discount", &["below 1"]),
        (
            "[tiers]\nmode = \"percentile\"\n[[tiers.levels]]\nname = \"VIP\"\nmin_clv = \"100\"",
            "tiers.levels[0].top_percent",
            &["percentile mode"],
        ),
        (
            "[tiers]\nmode = \"percentile\"\n[[tiers.levels]]\nname = \"A\"\ntop_percent = \"80\"\n[[tiers.levels]]\nname = \"B\"\ntop_percent = \"30\"",
            "tiers.levels",
            &["100%"],
        ),
        (
            "[[tiers.levels]]\nname = \"Gold\"\ntop_percent = \"5\"",
            "tiers.levels[0].top_percent",
            &["only used with tiers.mode"],
        ),
    ];
    for (fragment, key, words) in cases {
        let text = merge(VALID, fragment);
        let error = load(&text, &[]).expect_err(fragment);
        assert!(error.contains(&format!("`{key}`")), "{fragment}: {error}");
        for word in *words {
            assert!(
                error.contains(word),
                "{fragment}: `{word}` missing in: {error}"
            );
        }
    }
}

#[test]
fn a_missing_shopify_credential_says_both_ways_to_provide_it() {
    let error = load(
        "[shopify]\nshop = \"acme\"\n[klaviyo]\napi_key = \"pk\"",
        &[],
    )
    .unwrap_err();
    for named in [
        "`shopify.client_id`",
        "`TIERSYNC__SHOPIFY__CLIENT_SECRET`",
        "`shopify.access_token`",
        "`TIERSYNC__SHOPIFY__ACCESS_TOKEN`",
    ] {
        assert!(error.contains(named), "{named} missing in: {error}");
    }
}

const CLIENT: &str = r#"
[shopify]
shop = "acme"
client_id = "0a1b2c3d4e5f"

[klaviyo]
api_key = "pk_secret_value_456"
"#;

#[test]
fn client_credentials_take_the_secret_from_the_environment() {
    let settings = load(
        CLIENT,
        &[("TIERSYNC__SHOPIFY__CLIENT_SECRET", "shpss_from_env_789")],
    )
    .unwrap();
    match &settings.shopify.auth {
        tiersync::config::ShopifyAuth::ClientCredentials {
            client_id,
            client_secret,
        } => {
            assert_eq!(client_id, "0a1b2c3d4e5f");
            use secrecy::ExposeSecret;
            assert_eq!(client_secret.expose_secret(), "shpss_from_env_789");
        }
        other => panic!("expected client credentials, got {other:?}"),
    }
    let debug = format!("{settings:?}");
    assert!(!debug.contains("shpss_from_env_789"), "{debug}");
    assert!(!settings.shopify.accept_partial_history);
}

#[test]
fn exactly_one_shopify_credential_is_accepted() {
    let secret = [("TIERSYNC__SHOPIFY__CLIENT_SECRET", "shpss_secret_321")];
    // Both ways at once.
    let both = load(&merge(VALID, "[shopify]\nclient_id = \"0a1b\""), &secret).unwrap_err();
    assert!(both.contains("`shopify.access_token`"), "{both}");
    assert!(both.contains("configure one way only"), "{both}");
    // A client ID without its secret, and a secret without its ID.
    let no_secret = load(CLIENT, &[]).unwrap_err();
    assert!(no_secret.contains("`shopify.client_secret`"), "{no_secret}");
    assert!(
        no_secret.contains("TIERSYNC__SHOPIFY__CLIENT_SECRET"),
        "{no_secret}"
    );
    let no_id = load(&CLIENT.replace("client_id", "# client_id"), &secret).unwrap_err();
    assert!(no_id.contains("`shopify.client_id`"), "{no_id}");
    for error in [both, no_secret, no_id] {
        assert!(!error.contains("shpss_secret_321"), "{error}");
        assert!(!error.contains("shpat_secret_value_123"), "{error}");
    }
}

#[test]
fn the_binary_exits_non_zero_naming_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &merge(VALID, "[tiers]\nwindow_days = \"a year\""),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tiersync"))
        .args(["once", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("window_days"), "{stderr}");
    assert!(!stderr.contains("shpat_secret_value_123"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_named() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tiersync"))
        .args(["once", "--config", "/nonexistent/tiersync.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/tiersync.toml"), "{stderr}");
}

/// Merges a TOML fragment into `base`: a section header that already exists in `base` has
/// its keys inserted there (TOML forbids repeating a table).
fn merge(base: &str, fragment: &str) -> String {
    let mut text = base.to_string();
    let mut current: Option<String> = None;
    let mut tail = String::new();
    for line in fragment.lines() {
        if line.starts_with("[[") {
            current = None;
            tail.push_str(line);
            tail.push('\n');
        } else if line.starts_with('[') {
            if text.contains(&format!("{line}\n")) {
                current = Some(line.to_string());
            } else {
                current = None;
                tail.push_str(line);
                tail.push('\n');
            }
        } else if let Some(section) = &current {
            let at = text.find(&format!("{section}\n")).unwrap() + section.len() + 1;
            text.insert_str(at, &format!("{line}\n"));
        } else {
            tail.push_str(line);
            tail.push('\n');
        }
    }
    format!("{text}\n{tail}")
}

#[test]
fn the_production_example_is_valid_once_secrets_are_given() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
    let settings = Settings::load_with_env(
        Some(&path),
        [
            (
                "TIERSYNC__SHOPIFY__CLIENT_SECRET".to_string(),
                "shpss_x".to_string(),
            ),
            ("TIERSYNC__KLAVIYO__API_KEY".to_string(), "pk_x".to_string()),
        ],
    )
    .unwrap();
    assert_eq!(settings.shopify.base_url, "https://acme.myshopify.com");
}

#[test]
fn a_misspelt_key_is_refused_with_the_key_it_probably_meant() {
    let cases = [
        (
            "[sync]\npoll_intervall = \"1m\"",
            "`sync.poll_intervall`",
            "did you mean `sync.poll_interval`?",
        ),
        (
            "[syncc]\npoll_interval = \"1m\"",
            "`syncc`",
            "did you mean `sync`?",
        ),
        (
            "[klaviyo]\napi_kee = \"pk_x\"",
            "`klaviyo.api_kee`",
            "did you mean `klaviyo.api_key`?",
        ),
        (
            "[[tiers.levels]]\nname = \"Only\"\nmin_spnd = \"10.00\"",
            "`tiers.levels.0.min_spnd`",
            "did you mean `tiers.levels.N.min_spend`?",
        ),
    ];
    for (fragment, key, suggestion) in cases {
        let error = load(&merge(VALID, fragment), &[]).expect_err(fragment);
        assert!(error.contains(key), "{fragment}: {error}");
        assert!(error.contains(suggestion), "{fragment}: {error}");
        assert!(error.contains("in the configuration file"), "{error}");
    }
    // The shipped files stay free of unknown keys.
    for file in ["config/demo.toml", "config/production.example.toml"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file));
        let text = text.unwrap();
        if let Err(error) = Settings::from_toml(&text) {
            assert!(!error.to_string().contains("unknown"), "{file}: {error}");
        }
    }
}

#[test]
fn a_misspelt_environment_variable_is_named() {
    let error = load(VALID, &[("TIERSYNC__SHOPIFY__ACCES_TOKEN", "shpat_x")]).unwrap_err();
    assert!(
        error.contains(
            "`shopify.acces_token` in the environment variable TIERSYNC__SHOPIFY__ACCES_TOKEN"
        ),
        "{error}"
    );
    assert!(
        error.contains("did you mean `shopify.access_token`?"),
        "{error}"
    );
    assert!(!error.contains("shpat_x"), "{error}");
}

#[test]
fn the_endpoint_listens_on_loopback_by_default_and_is_off_when_empty() {
    let settings = load(VALID, &[]).unwrap();
    assert_eq!(
        settings.http.listen,
        Some("127.0.0.1:9184".parse().unwrap())
    );
    let off = load(VALID, &[("TIERSYNC__HTTP__LISTEN", "")]).unwrap();
    assert_eq!(off.http.listen, None);
    let v6 = load(&format!("{VALID}\n[http]\nlisten = \"[::1]:9200\"\n"), &[]).unwrap();
    assert_eq!(v6.http.listen, Some("[::1]:9200".parse().unwrap()));
    let error = load(VALID, &[("TIERSYNC__HTTP__LISTEN", "localhost:9184")]).unwrap_err();
    assert!(
        error.contains("`http.listen`") && error.contains("\"127.0.0.1:9184\""),
        "{error}"
    );
    let typo = load(&format!("{VALID}\n[http]\nlisen = \"127.0.0.1:1\"\n"), &[]).unwrap_err();
    assert!(typo.contains("did you mean `http.listen`?"), "{typo}");
}

#[test]
fn read_only_commands_load_without_credentials_but_still_check_every_other_key() {
    let dir = tempfile::tempdir().unwrap();
    let no_secrets = r#"
[shopify]
shop = "acme"
client_id = "the-app"

[store]
path = "/tmp/tiersync-config-test"
"#;
    let path = write(dir.path(), no_secrets);
    let with = |credentials, env: &[(&str, &str)]| {
        Settings::load_from(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            credentials,
        )
        .map_err(|e| e.to_string())
    };
    let refused = with(tiersync::config::Credentials::Required, &[]).unwrap_err();
    assert!(refused.contains("shopify.client_secret"), "{refused}");
    let settings = with(tiersync::config::Credentials::NotNeeded, &[]).unwrap();
    assert_eq!(
        settings.store.path,
        std::path::PathBuf::from("/tmp/tiersync-config-test")
    );
    let invalid = with(
        tiersync::config::Credentials::NotNeeded,
        &[("TIERSYNC__SYNC__POLL_INTERVAL", "soon")],
    )
    .unwrap_err();
    assert!(invalid.contains("`sync.poll_interval`"), "{invalid}");
}
