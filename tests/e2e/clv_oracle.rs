//! Oracle tests against the CDNOW sample (lifetimes 0.11.3 and published values).
//!
//! Fixture directory: `$CLV_CDNOW_DIR` if set, else
//! `$CARGO_MANIFEST_DIR/tests/fixtures/cdnow`.

use std::path::PathBuf;
use tiersync::model::clv::bgnbd::{self, BgNbdParams};
use tiersync::model::clv::gamma_gamma::{self, GammaGammaParams};
use tiersync::model::clv::lifetime_value::{customer_lifetime_value, ClvOptions};
use tiersync::model::clv::summary::{
    days_from_civil, summarize, CustomerSummary, SummaryOptions, TimeUnit, Transaction,
};

fn fixture_dir() -> PathBuf {
    match std::env::var_os("CLV_CDNOW_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdnow"),
    }
}

fn load_transactions() -> Vec<Transaction> {
    let text =
        std::fs::read_to_string(fixture_dir().join("CDNOW_sample.txt")).expect("CDNOW_sample.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let date: u32 = f[2].parse().unwrap();
            Transaction {
                customer: f[1].parse().unwrap(),
                day: days_from_civil((date / 10000) as i64, date / 100 % 100, date % 100),
                amount: f[4].parse().unwrap(),
            }
        })
        .collect()
}

fn cdnow_summary() -> Vec<CustomerSummary> {
    summarize(
        &load_transactions(),
        &SummaryOptions::cdnow(days_from_civil(1997, 9, 30)),
    )
}

/// Published lifetimes 0.11.3 parameters (peer_fit.txt).
const BG: BgNbdParams = BgNbdParams {
    r: 0.2425929283,
    alpha: 4.4135322653,
    a: 0.7928859664,
    b: 2.4257523826,
};
const GG: GammaGammaParams = GammaGammaParams {
    p: 6.2488024961,
    q: 3.7445884609,
    v: 15.4477480649,
};

fn rel_close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

fn sig3(v: f64) -> f64 {
    let e = v.abs().log10().floor() as i32 - 2;
    let s = 10f64.powi(e);
    (v / s).round() * s
}

#[test]
fn summary_reproduces_published_csv() {
    let s = cdnow_summary();
    let csv = std::fs::read_to_string(
        fixture_dir().join("cdnow_customers_summary_with_transactions.csv"),
    )
    .unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.trim_end_matches('\r')
                .split(',')
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2357);
    assert_eq!(s.len(), 2357);
    for (c, r) in s.iter().zip(&rows) {
        assert_eq!(c.customer as f64, r[0]);
        assert_eq!(c.frequency as f64, r[1], "x of {}", r[0]);
        assert_eq!(c.recency, r[2], "t_x of {}", r[0]);
        assert_eq!(c.age, r[3], "T of {}", r[0]);
        assert_eq!(c.monetary_value, r[4], "zbar of {}", r[0]);
    }
    assert_eq!(s.iter().filter(|c| c.frequency > 0).count(), 946);
    assert_eq!(s.iter().map(|c| c.frequency).sum::<u32>(), 2457);
}

#[test]
fn bgnbd_fit_matches_published() {
    let s = cdnow_summary();
    let fit = bgnbd::fit(&s).expect("fit");
    let p = fit.params;
    println!("BG/NBD fit: {fit:?}");
    assert_eq!(sig3(p.r), 0.243);
    assert_eq!(sig3(p.alpha), 4.41);
    assert_eq!(sig3(p.a), 0.793);
    assert_eq!(sig3(p.b), 2.43);
    // Published (FHL 2005): 0.2426, 4.414, 0.7929, 2.426 to 3 significant digits.
    for (got, want) in [(p.r, 0.2426), (p.alpha, 4.414), (p.a, 0.7929), (p.b, 2.426)] {
        assert!(rel_close(got, want, 5e-3), "{got} vs {want}");
    }
    assert!(
        (fit.log_likelihood - (-9582.43)).abs() <= 0.01,
        "LL {}",
        fit.log_likelihood
    );
    assert_eq!(fit.n_customers, 2357);
    // Within 1e-3 relative of lifetimes' own optimum.
    for (got, want) in [(p.r, BG.r), (p.alpha, BG.alpha), (p.a, BG.a), (p.b, BG.b)] {
        assert!(rel_close(got, want, 1e-3), "{got} vs lifetimes {want}");
    }
    // Our optimum is at least as good as lifetimes' and the published values.
    assert!(fit.log_likelihood >= BG.log_likelihood(&s) - 1e-9);
    assert!((BG.log_likelihood(&s) - (-9582.4256)).abs() < 1e-4);
}

#[test]
fn gamma_gamma_fit_matches_published() {
    let s = cdnow_summary();
    let fit = gamma_gamma::fit(&s).expect("fit");
    let p = fit.params;
    println!(
        "Gamma-Gamma fit: p = {:.10}, q = {:.10}, v = {:.10}, LL = {:.4}, n = {}, iterations = {}",
        p.p, p.q, p.v, fit.log_likelihood, fit.n_customers, fit.iterations
    );
    assert_eq!(fit.n_customers, 946);
    assert_eq!(sig3(p.p), 6.25);
    assert_eq!(sig3(p.q), 3.74);
    assert_eq!(sig3(p.v), 15.4);
    for (got, want) in [(p.p, GG.p), (p.q, GG.q), (p.v, GG.v)] {
        assert!(rel_close(got, want, 1e-3), "{got} vs lifetimes {want}");
    }
    // lifetimes: "log-likelihood as lifetimes computes it (mean x N) = -4055.9232"
    let ll_lifetimes: f64 = s
        .iter()
        .filter(|c| c.frequency > 0)
        .map(|c| GG.log_likelihood_one(c.frequency as f64, c.monetary_value))
        .sum();
    assert!((ll_lifetimes - (-4055.9232)).abs() < 1e-3, "{ll_lifetimes}");
    assert!(fit.log_likelihood >= ll_lifetimes - 1e-9);
}

#[test]
fn predictions_match_lifetimes_at_its_parameters() {
    let s = cdnow_summary();
    let first5 = &s[..5];
    let tol = 1e-6;
    let check = |got: f64, want: f64, what: &str| {
        assert!(
            rel_close(got, want, tol),
            "{what}: got {got:.12}, lifetimes {want:.10}"
        );
    };
    let peer_e = [
        (
            1.0,
            [
                0.0374431933,
                0.0060646506,
                0.0055863513,
                0.0055863513,
                0.0055863513,
            ],
        ),
        (
            39.0,
            [
                1.2259104242,
                0.2032506243,
                0.1947808579,
                0.1947808579,
                0.1947808579,
            ],
        ),
        (
            52.0,
            [
                1.5585837618,
                0.2599070794,
                0.2516657254,
                0.2516657254,
                0.2516657254,
            ],
        ),
    ];
    for (t, want) in peer_e {
        for (c, w) in first5.iter().zip(want) {
            let e = BG.conditional_expected_number_of_purchases_up_to_time(
                t,
                c.frequency as f64,
                c.recency,
                c.age,
            );
            check(e, w, &format!("E[X({t})] customer {}", c.customer));
        }
    }
    let palive = [0.7266091368, 0.2122273881, 1.0, 1.0, 1.0];
    for (c, w) in first5.iter().zip(palive) {
        let p = BG.conditional_probability_alive(c.frequency as f64, c.recency, c.age);
        check(p, w, &format!("P(alive) customer {}", c.customer));
    }
    check(
        BG.expected_number_of_purchases_up_to_time(39.0),
        1.1950162284,
        "E[X(39)]",
    );
    check(
        BG.expected_number_of_purchases_up_to_time(78.0),
        1.8579717035,
        "E[X(78)]",
    );

    let em = [
        24.6586161892,
        18.9114798699,
        35.1710021525,
        35.1710021525,
        35.1710021525,
    ];
    for (c, w) in first5.iter().zip(em) {
        let e = GG.conditional_expected_average_profit(c.frequency as f64, c.monetary_value);
        check(e, w, &format!("E[M] customer {}", c.customer));
    }

    let clv_w = [
        36.2784957636,
        4.6374663286,
        8.3440931218,
        8.3440931218,
        8.3440931218,
    ];
    let clv_d = [
        140.0962176011,
        18.9434662989,
        38.1805747088,
        38.1805747088,
        38.1805747088,
    ];
    for (unit, want) in [(TimeUnit::Weeks, clv_w), (TimeUnit::Days, clv_d)] {
        let opts = ClvOptions::lifetimes_default(unit);
        for (c, w) in first5.iter().zip(want) {
            let v = customer_lifetime_value(
                &BG,
                &GG,
                c.frequency as f64,
                c.recency,
                c.age,
                c.monetary_value,
                &opts,
            );
            check(v, w, &format!("CLV {unit:?} customer {}", c.customer));
        }
    }
    // Totals over all 2357 customers (peer_fit.txt): W 71509.899319, D 266621.604410.
    for (unit, want) in [
        (TimeUnit::Weeks, 71509.899319),
        (TimeUnit::Days, 266621.604410),
    ] {
        let opts = ClvOptions::lifetimes_default(unit);
        let total: f64 = s
            .iter()
            .map(|c| {
                customer_lifetime_value(
                    &BG,
                    &GG,
                    c.frequency as f64,
                    c.recency,
                    c.age,
                    c.monetary_value,
                    &opts,
                )
            })
            .sum();
        check(total, want, &format!("CLV total {unit:?}"));
    }
}
