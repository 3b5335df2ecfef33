//! `tiersync report`: every figure against a store built by hand (tests/e2e/hand_store.rs,
//! where the orders, records and transitions are listed), and the HTML page parsed with its
//! charts.

use rust_decimal_macros::dec;
use scraper::{Html, Selector};
use tiersync::ops::report::{compute, html, Report};
use tiersync::store::Store;

use crate::hand_store;

fn report() -> Report {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    hand_store::build(&store);
    compute(&store, &hand_store::settings(dir.path()), hand_store::now()).unwrap()
}

#[test]
fn the_figures_match_the_hand_built_store() {
    let report = report();

    // Rows: configured levels highest first, then no level.
    let rows: Vec<_> = report
        .levels
        .iter()
        .map(|r| {
            (
                r.level.clone(),
                (r.active, r.grace, r.lapsed, r.none),
                r.repeat_rate(),
                r.average_clv(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            // 1001: two counted orders (the cancelled one does not count), CLV 3000.00.
            (
                Some("Gold & Co".into()),
                (1, 0, 0, 0),
                Some(dec!(100.0)),
                Some(dec!(3000.00))
            ),
            // 1002 (grace, two orders) and 1003 (lapsed, one order): (800.00 + 650.02) / 2.
            (
                Some("Silver".into()),
                (0, 1, 1, 0),
                Some(dec!(50.0)),
                Some(dec!(725.01))
            ),
            // 1004: one counted order and a test order.
            (None, (0, 0, 0, 1), Some(dec!(0.0)), Some(dec!(50.00))),
        ]
    );
    assert_eq!((report.customers(), report.unevaluated), (4, 1));

    // Orders after 2025-04-01T02:00Z: 1001 500 + 700, 1002 100, 1004 50, 1005 200 = 1550;
    // VIPs now (1001 active, 1002 in grace): 1300; 1300 / 1550 = 83.87%.
    assert_eq!(
        (report.revenue.vip, report.revenue.all),
        (dec!(1300.00), dec!(1550.00))
    );
    assert_eq!(report.revenue.percent(), Some(dec!(83.9)));

    // One lapsed (1003) of three holding a level.
    assert_eq!(report.lapse_rate(), Some(dec!(33.3)));

    // The shop's March is the last month (UTC is already in April); April 2025 the first.
    let months: Vec<(String, [usize; 5])> = report
        .months
        .iter()
        .map(|m| (m.month.format("%Y-%m").to_string(), m.counts()))
        .collect();
    let expected = [
        ("2025-04", [0, 0, 0, 1, 0]),
        ("2025-05", [1, 0, 0, 0, 0]),
        ("2025-06", [1, 0, 0, 0, 0]),
        ("2025-07", [1, 0, 0, 0, 0]),
        ("2025-08", [0; 5]),
        ("2025-09", [0, 0, 0, 1, 0]),
        ("2025-10", [0, 0, 0, 0, 1]),
        ("2025-11", [0; 5]),
        ("2025-12", [0; 5]),
        ("2026-01", [0, 0, 1, 0, 0]),
        ("2026-02", [0, 1, 0, 0, 0]),
        // 1002's grace start is not movement.
        ("2026-03", [0; 5]),
    ];
    assert_eq!(
        months,
        expected
            .iter()
            .map(|(m, c)| (m.to_string(), *c))
            .collect::<Vec<_>>()
    );

    // Members 1001 (agrees) and 1002 (app says Gold & Co, tiersync Silver); the third
    // member is no customer.
    let loyalty = report
        .loyalty
        .as_ref()
        .expect("a loyalty app is configured");
    assert_eq!((loyalty.members, loyalty.count), (2, 1));

    let text = report.to_string();
    for line in [
        "VIP share of revenue, last 365 days: 83.9% (1300.00 of 1550.00 net spend since 2025-03-31)",
        "Lapse rate: 33.3% (1 lapsed of 3 customers holding a level)",
        "Loyalty-app disagreements: 1 of 2 members",
        "tiersync report, 2026-03-31 (shop time zone America/New_York): 4 customers evaluated",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn the_html_page_parses_with_its_charts_and_escaped_names() {
    let page = html::render(&report());
    let document = Html::parse_document(&page);
    assert!(
        document.errors.is_empty(),
        "the page has HTML errors: {:?}",
        document.errors
    );
    let select = |css: &str| Selector::parse(css).unwrap();
    let charts: Vec<_> = document.select(&select("svg")).collect();
    assert_eq!(charts.len(), 3, "distribution, CLV and movement charts");
    let texts = |svg: &scraper::ElementRef| -> Vec<String> {
        svg.select(&select("text"))
            .map(|t| t.text().collect())
            .collect()
    };
    let titles = |svg: &scraper::ElementRef| -> Vec<String> {
        svg.select(&select("rect.bar > title"))
            .map(|t| t.text().collect())
            .collect()
    };

    let labels = texts(&charts[0]);
    for label in ["Gold & Co", "Silver", "no level", "2 customers"] {
        assert!(labels.iter().any(|l| l == label), "{label} in {labels:?}");
    }
    assert_eq!(
        titles(&charts[0]),
        [
            "Gold & Co: 1 active",
            "Silver: 1 grace",
            "Silver: 1 lapsed",
            "no level: 1 none"
        ]
    );
    assert_eq!(
        titles(&charts[1]),
        [
            "Gold & Co: average blended CLV 3000.00",
            "Silver: average blended CLV 725.01",
            "no level: average blended CLV 50.00"
        ]
    );
    // One column per non-zero count (eight months had movement, one kind each).
    let columns = titles(&charts[2]);
    assert_eq!(columns.len(), 8, "{columns:?}");
    assert!(columns.contains(&"2026-02: 1 promotions".to_string()));
    assert!(columns.contains(&"2025-10: 1 welcome-backs".to_string()));
    assert!(texts(&charts[2]).contains(&"2025-04".to_string()));

    // Self-contained: no script, nothing loaded from anywhere.
    assert_eq!(
        document
            .select(&select("script, link, img, iframe"))
            .count(),
        0
    );
    assert_eq!(document.select(&select("[src], [href]")).count(), 0);
    // The name went in escaped: the raw `&` never appears outside an entity.
    assert!(page.contains("Gold &amp; Co") && !page.contains("Gold & Co"));
}

#[test]
fn report_and_forget_load_a_configuration_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiersync.toml");
    std::fs::write(
        &file,
        "[shopify]\nshop = \"acme\"\n[loyalty]\nplatform = \"smile\"\n",
    )
    .unwrap();

    let refused = tiersync::Settings::load(Some(&file)).expect_err("the daemon needs them");
    assert!(refused.to_string().contains("shopify"), "{refused}");
    let settings =
        tiersync::Settings::load_without_credentials(Some(&file)).expect("offline commands do not");
    assert_eq!(settings.shopify.shop, "acme");
    assert_eq!(
        settings.loyalty.platform,
        tiersync::config::LoyaltyPlatform::Smile
    );
}
