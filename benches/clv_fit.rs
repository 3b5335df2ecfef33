//! Fit timings: `cargo bench --bench clv_fit -- [repeats]` (benches/compare_lifetimes.sh runs
//! it beside lifetimes 0.11.3 and prints the ratios).
//!
//! Times (min / median over `repeats`, default 20, wall clock, one thread):
//! BG/NBD and Gamma-Gamma fits on CDNOW (2,357 customers, weeks) and on a
//! synthetic 1,000,000-customer data set simulated from the CDNOW fit with a
//! splitmix64 PRNG (day-resolution times, 2 years of acquisition, in weeks
//! unrounded), plus RFM scoring of 1,000,000 customers.
//!
//! CDNOW fixture directory: `$CLV_CDNOW_DIR`, else
//! `$CARGO_MANIFEST_DIR/tests/fixtures/cdnow`.

use std::path::PathBuf;
use std::time::Instant;
use tiersync::model::clv::bgnbd::{self, BgNbdParams};
use tiersync::model::clv::gamma_gamma::{self, GammaGammaParams};
use tiersync::model::clv::rfm::{self, RfmInput};
use tiersync::model::clv::summary::{
    days_from_civil, summarize, CustomerSummary, SummaryOptions, Transaction,
};

#[path = "support/splitmix.rs"]
mod splitmix;
use splitmix::SplitMix64;

/// Draws the shared generator does not need.
impl SplitMix64 {
    /// Gamma(shape, 1) by Marsaglia & Tsang (2000), with the shape < 1 boost.
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }
}

/// Simulate `n` customers from BG/NBD + Gamma-Gamma. Ages are whole days in
/// 1..=730, purchase times are floored to whole days; all in weeks (days / 7).
fn synthetic(n: usize, bg: &BgNbdParams, gg: &GammaGammaParams, seed: u64) -> Vec<CustomerSummary> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|i| {
            let age_days = 1 + (rng.next_u64() % 730) as i64;
            let age = age_days as f64 / 7.0;
            let lambda = rng.gamma(bg.r) / bg.alpha; // per week
            let p = rng.beta(bg.a, bg.b);
            let mut t = 0.0;
            let mut x = 0u32;
            let mut last_day = 0i64;
            loop {
                t += -rng.uniform().ln() / lambda;
                if t >= age {
                    break;
                }
                let day = ((t * 7.0).floor() as i64).min(age_days);
                if day != last_day {
                    x += 1;
                    last_day = day;
                }
                if rng.uniform() < p {
                    break;
                }
            }
            let monetary = if x > 0 {
                let nu = rng.gamma(gg.q) / gg.v;
                rng.gamma(gg.p * x as f64) / (x as f64 * nu)
            } else {
                0.0
            };
            CustomerSummary {
                customer: i as u64,
                frequency: x,
                recency: last_day as f64 / 7.0,
                age,
                monetary_value: monetary,
            }
        })
        .collect()
}

fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> (T, f64, f64) {
    let mut ts = Vec::with_capacity(repeats);
    let mut out = None;
    for _ in 0..repeats {
        let t0 = Instant::now();
        out = Some(std::hint::black_box(f()));
        ts.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    ts.sort_by(f64::total_cmp);
    (out.unwrap(), ts[0], ts[ts.len() / 2])
}

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let dir = std::env::var_os("CLV_CDNOW_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdnow"));
    let text = std::fs::read_to_string(dir.join("CDNOW_sample.txt")).expect("CDNOW_sample.txt");
    let txs: Vec<Transaction> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let d: u32 = f[2].parse().unwrap();
            Transaction {
                customer: f[1].parse().unwrap(),
                day: days_from_civil((d / 10000) as i64, d / 100 % 100, d % 100),
                amount: f[4].parse().unwrap(),
            }
        })
        .collect();
    let opts = SummaryOptions::cdnow(days_from_civil(1997, 9, 30));
    println!("repeats = {repeats}; times in ms (min / median)");
    let (cd, mn, md) = time(repeats, || summarize(&txs, &opts));
    println!(
        "summary   CDNOW ({} tx -> {} customers): {mn:.3} / {md:.3}",
        txs.len(),
        cd.len()
    );

    let (bg, mn, md) = time(repeats, || bgnbd::fit(&cd).unwrap());
    println!(
        "BG/NBD    CDNOW: {mn:.3} / {md:.3}   r={:.7} alpha={:.7} a={:.7} b={:.7} LL={:.4} iters={} evals={}",
        bg.params.r, bg.params.alpha, bg.params.a, bg.params.b, bg.log_likelihood, bg.iterations, bg.evaluations
    );
    let (gg, mn, md) = time(repeats, || gamma_gamma::fit(&cd).unwrap());
    println!(
        "GammaGamma CDNOW: {mn:.3} / {md:.3}   p={:.7} q={:.7} v={:.7} LL={:.4} iters={} evals={}",
        gg.params.p, gg.params.q, gg.params.v, gg.log_likelihood, gg.iterations, gg.evaluations
    );

    let t0 = Instant::now();
    let big = synthetic(1_000_000, &bg.params, &gg.params, 42);
    let repeat_buyers = big.iter().filter(|c| c.frequency > 0).count();
    println!(
        "synthetic 1,000,000 customers generated in {:.0} ms ({} repeat buyers)",
        t0.elapsed().as_secs_f64() * 1e3,
        repeat_buyers
    );
    let big_repeats = repeats.min(20);
    let (bgb, mn, md) = time(big_repeats, || bgnbd::fit(&big).unwrap());
    println!(
        "BG/NBD    1M: {mn:.1} / {md:.1}   r={:.5} alpha={:.5} a={:.5} b={:.5} iters={} (true {:.5} {:.5} {:.5} {:.5})",
        bgb.params.r,
        bgb.params.alpha,
        bgb.params.a,
        bgb.params.b,
        bgb.iterations,
        bg.params.r,
        bg.params.alpha,
        bg.params.a,
        bg.params.b
    );
    let (ggb, mn, md) = time(big_repeats, || gamma_gamma::fit(&big).unwrap());
    println!(
        "GammaGamma 1M: {mn:.1} / {md:.1}   p={:.5} q={:.5} v={:.5} iters={} n={} (true {:.5} {:.5} {:.5})",
        ggb.params.p, ggb.params.q, ggb.params.v, ggb.iterations, ggb.n_customers, gg.params.p, gg.params.q, gg.params.v
    );
    let rfm_in: Vec<RfmInput> = big
        .iter()
        .map(|c| RfmInput {
            days_since_last_purchase: (c.age - c.recency) * 7.0,
            frequency: c.frequency as f64 + 1.0,
            monetary: c.monetary_value,
        })
        .collect();
    let (scores, mn, md) = time(big_repeats, || rfm::score(&rfm_in));
    println!(
        "RFM score 1M: {mn:.1} / {md:.1}   ({} scored)",
        scores.len()
    );
}
