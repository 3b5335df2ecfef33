//! BG/NBD ("beta-geometric / negative binomial distribution") model of repeat
//! purchasing: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy
//! Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2),
//! 275–284. Equation numbers below refer to that paper.
//!
//! Why: it predicts, per customer, how many purchases to expect in the next
//! `t` time units and the probability that the customer is still "alive",
//! from only `(x, t_x, T)` (see
//! [`super::summary`]). Those drive the VIP tier.
//!
//! Model: while alive a customer buys as a Poisson process with rate
//! `λ ~ Gamma(r, α)` (shape `r`, rate `α`); after each purchase the customer
//! drops out with probability `p ~ Beta(a, b)`.
//!
//! **Units.** `alpha` is in the time unit of the data (`t_x`, `T`), and every
//! `t` passed to a prediction must be in that same unit. CDNOW: weeks.
//!
//! Formulas (δ = 1 if `x > 0` else 0):
//! * Log-likelihood, eq. (6) (written in log form as in Hardie's note 004 /
//!   lifetimes 0.11.3):
//!   `ℓ = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
//!        + ln( (α+T)^{−(r+x)} + δ · a/(b+x−1) · (α+t_x)^{−(r+x)} )`.
//!   For `x = 0` the second term inside the log is absent (it is not `0/0`).
//!   The log of the sum is evaluated as a log-sum-exp.
//! * `P(alive | x, t_x, T)` (Hardie's note 021, eq. 3 of FHL 2005 appendix):
//!   `1 / (1 + δ · a/(b+x−1) · ((α+T)/(α+t_x))^{r+x})`.
//! * Conditional expectation, eq. (10):
//!   `E[X(t) | x, t_x, T] = (a+b+x−1)/(a−1)
//!      · [1 − ((α+T)/(α+T+t))^{r+x} ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
//!      · P(alive | x, t_x, T)`.
//!   We apply Euler's transformation to the ₂F₁ (A&S 15.3.3); with `z = t/(α+T+t)`
//!   the bracket becomes the algebraically identical
//!   `1 − (1−z)^{a−1} ₂F₁(a+b−1−r, a−1; a+b+x−1; z)`, whose series has small
//!   parameters and never overflows, even for customers with hundreds of
//!   purchases (lifetimes falls back to the same identity only when the direct
//!   form overflows).
//! * Unconditional expectation for a new customer, eq. (9): the same formula with
//!   `x = t_x = T = 0`.
//!
//! Caveat: eqs. (9)/(10) have a removable singularity at `a = 1` (division by
//! `a − 1`); fitted values of exactly 1 are vanishingly unlikely, but results
//! lose precision when `|a − 1| < 1e-8`.
//!
//! **Fitting.** Maximum likelihood in log-parameter space with L-BFGS
//! ([`super::optimize`]) and the analytic gradient. Customers with identical
//! `(x, t_x, T)` are collapsed into weighted groups first (exact f64 equality),
//! and within one evaluation `ln(α+T)`, `ln(α+t_x)` are computed once per
//! distinct `T` / `t_x`, and the integer-`x` terms
//! `ln Γ(r+x) − ln Γ(r) = Σ_{k<x} ln(r+k)` (likewise for `b` and `a+b`) and their
//! digamma counterparts once per distinct `x` by running sums. The start point
//! is `r = a = b = 1`, `α = max T` (lifetimes starts from ≈1 on a time axis
//! rescaled to `max T = 1`, i.e. the same point).

use super::optimize::{minimize_lbfgs, FitError, LbfgsOptions};
use super::special::{digamma, hyp2f1, ln_gamma};
use super::summary::CustomerSummary;

/// BG/NBD parameters. `alpha` is in the data's time unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    /// Shape of the Gamma purchase-rate heterogeneity.
    pub r: f64,
    /// Rate (time scale) of the Gamma purchase-rate heterogeneity.
    pub alpha: f64,
    /// Beta dropout heterogeneity, first shape.
    pub a: f64,
    /// Beta dropout heterogeneity, second shape.
    pub b: f64,
}

/// Result of [`fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdFit {
    /// Maximum-likelihood parameters.
    pub params: BgNbdParams,
    /// Total log-likelihood (sum over customers, eq. 6) at `params`.
    pub log_likelihood: f64,
    /// Number of customers used.
    pub n_customers: usize,
    /// Optimiser iterations.
    pub iterations: usize,
    /// Log-likelihood + gradient evaluations.
    pub evaluations: usize,
}

/// Fit options.
#[derive(Debug, Clone, Copy, Default)]
pub struct FitOptions {
    /// Optimiser settings (gradient tolerance applies to the *mean* per-customer
    /// negative log-likelihood in log-parameter space).
    pub lbfgs: LbfgsOptions,
}

impl BgNbdParams {
    /// Per-customer log-likelihood, eq. (6).
    pub fn log_likelihood_one(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x) + ln_gamma(a + b);
        let a3 = -(r + x) * (alpha + t).ln();
        if x > 0.0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + t_x).ln();
            a1 + a2 + log_add_exp(a3, a4)
        } else {
            a1 + a2 + a3
        }
    }

    /// Total log-likelihood of `customers` (sum of eq. 6).
    pub fn log_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        customers
            .iter()
            .map(|c| self.log_likelihood_one(c.frequency as f64, c.recency, c.age))
            .sum()
    }

    /// `ln` of the odds-of-death ratio `δ · a/(b+x−1) · ((α+T)/(α+t_x))^{r+x}`.
    fn ln_death_odds(&self, x: f64, t_x: f64, t: f64) -> f64 {
        (self.r + x) * ((self.alpha + t) / (self.alpha + t_x)).ln()
            + (self.a / (self.b + x - 1.0)).ln()
    }

    /// `P(alive | x, t_x, T)`; exactly 1 when `x = 0`.
    pub fn conditional_probability_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        if x <= 0.0 {
            return 1.0;
        }
        1.0 / (1.0 + self.ln_death_odds(x, t_x, t).exp())
    }

    /// Expected purchases in `(T, T+t]` for a customer alive at `T` with `x`
    /// repeat purchases: the eq. (10) numerator.
    fn expected_if_alive(&self, t: f64, x: f64, age: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        if t <= 0.0 {
            return 0.0;
        }
        let z = t / (alpha + age + t);
        let one_minus_z = (alpha + age) / (alpha + age + t);
        let c = a + b + x - 1.0;
        let hyp = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z);
        let bracket = 1.0 - (one_minus_z.ln() * (a - 1.0)).exp() * hyp;
        c / (a - 1.0) * bracket
    }

    /// `E[X(t) | x, t_x, T]`, eq. (10): expected repeat purchases in the next `t`.
    pub fn conditional_expected_number_of_purchases_up_to_time(
        &self,
        t: f64,
        x: f64,
        t_x: f64,
        age: f64,
    ) -> f64 {
        self.expected_if_alive(t, x, age) * self.conditional_probability_alive(x, t_x, age)
    }

    /// `E[X(t)]` for a randomly chosen new customer, eq. (9).
    pub fn expected_number_of_purchases_up_to_time(&self, t: f64) -> f64 {
        self.expected_if_alive(t, 0.0, 0.0)
    }
}

#[inline]
fn log_add_exp(u: f64, v: f64) -> f64 {
    let (hi, lo) = if u > v { (u, v) } else { (v, u) };
    hi + (lo - hi).exp().ln_1p()
}

/// Customers collapsed by identical `(x, t_x, T)`.
struct Grouped {
    /// Distinct x values (ascending).
    xs: Vec<u32>,
    /// Distinct T values.
    ts: Vec<f64>,
    /// Distinct t_x values.
    txs: Vec<f64>,
    groups: Vec<Group>,
    n_total: f64,
}

#[derive(Clone, Copy)]
struct Group {
    n: f64,
    x: f64,
    xi: u32,
    ti: u32,
    txi: u32,
}

fn validate(customers: &[CustomerSummary]) -> Result<(), FitError> {
    if customers.is_empty() {
        return Err(FitError::Empty);
    }
    let mut any_repeat = false;
    for (i, c) in customers.iter().enumerate() {
        if !c.recency.is_finite() || !c.age.is_finite() {
            return Err(FitError::NonFiniteInput { index: i });
        }
        if c.recency < 0.0 {
            return Err(FitError::InvalidInput {
                index: i,
                reason: "negative recency",
            });
        }
        if c.recency > c.age {
            return Err(FitError::InvalidInput {
                index: i,
                reason: "recency greater than age T",
            });
        }
        if c.frequency == 0 && c.recency != 0.0 {
            return Err(FitError::InvalidInput {
                index: i,
                reason: "x = 0 but recency != 0",
            });
        }
        if c.frequency > 0 {
            any_repeat = true;
        }
    }
    if !any_repeat {
        return Err(FitError::NoRepeatBuyers);
    }
    Ok(())
}

fn distinct_sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v.dedup();
    v
}

fn index_of(sorted: &[f64], v: f64) -> u32 {
    sorted
        .binary_search_by(|p| p.total_cmp(&v))
        .expect("value present") as u32
}

fn group(customers: &[CustomerSummary]) -> Grouped {
    // Normalise -0.0 so that total_cmp-based dedup treats it as 0.0.
    let norm = |v: f64| if v == 0.0 { 0.0 } else { v };
    let mut keys: Vec<(u32, u64, u64)> = customers
        .iter()
        .map(|c| {
            (
                c.frequency,
                norm(c.recency).to_bits(),
                norm(c.age).to_bits(),
            )
        })
        .collect();
    // Non-negative finite f64 bit patterns order like the values.
    keys.sort_unstable();
    let mut uniq: Vec<((u32, u64, u64), f64)> = Vec::new();
    for k in keys {
        match uniq.last_mut() {
            Some((last, n)) if *last == k => *n += 1.0,
            _ => uniq.push((k, 1.0)),
        }
    }
    let mut xs: Vec<u32> = uniq.iter().map(|(k, _)| k.0).collect();
    xs.dedup(); // keys are sorted by x first
    let ts = distinct_sorted(uniq.iter().map(|(k, _)| f64::from_bits(k.2)).collect());
    let txs = distinct_sorted(uniq.iter().map(|(k, _)| f64::from_bits(k.1)).collect());
    let mut groups = Vec::with_capacity(uniq.len());
    let mut xi = 0usize;
    let mut n_total = 0.0;
    for ((x, tx, t), n) in uniq {
        while xs[xi] != x {
            xi += 1;
        }
        n_total += n;
        groups.push(Group {
            n,
            x: x as f64,
            xi: xi as u32,
            ti: index_of(&ts, f64::from_bits(t)),
            txi: index_of(&txs, f64::from_bits(tx)),
        });
    }
    Grouped {
        xs,
        ts,
        txs,
        groups,
        n_total,
    }
}

/// Running sums `Σ_{k<x} ln(c+k)` and `Σ_{k<x} 1/(c+k)` at each distinct x,
/// i.e. `ln Γ(c+x) − ln Γ(c)` and `ψ(c+x) − ψ(c)`. Large gaps between
/// consecutive distinct x fall back to `ln_gamma`/`digamma`.
fn poch_tables(c: f64, xs: &[u32], ln_out: &mut [f64], inv_out: &mut [f64]) {
    const MAX_GAP: u32 = 64;
    let (mut k, mut l, mut d) = (0u32, 0.0f64, 0.0f64);
    let (lg_c, dg_c) = (ln_gamma(c), digamma(c));
    for (i, &x) in xs.iter().enumerate() {
        if x - k > MAX_GAP {
            let cx = c + x as f64;
            l = ln_gamma(cx) - lg_c;
            d = digamma(cx) - dg_c;
            k = x;
        } else {
            while k < x {
                let ck = c + k as f64;
                l += ck.ln();
                d += 1.0 / ck;
                k += 1;
            }
        }
        ln_out[i] = l;
        inv_out[i] = d;
    }
}

/// Scratch buffers reused across evaluations.
struct Workspace {
    lr: Vec<f64>,
    dr: Vec<f64>,
    lb: Vec<f64>,
    db: Vec<f64>,
    lab: Vec<f64>,
    dab: Vec<f64>,
    ln_bx1: Vec<f64>,
    inv_bx1: Vec<f64>,
    ln_at: Vec<f64>,
    inv_at: Vec<f64>,
    ln_atx: Vec<f64>,
    inv_atx: Vec<f64>,
}

impl Workspace {
    fn new(g: &Grouped) -> Self {
        let nx = g.xs.len();
        Workspace {
            lr: vec![0.0; nx],
            dr: vec![0.0; nx],
            lb: vec![0.0; nx],
            db: vec![0.0; nx],
            lab: vec![0.0; nx],
            dab: vec![0.0; nx],
            ln_bx1: vec![0.0; nx],
            inv_bx1: vec![0.0; nx],
            ln_at: vec![0.0; g.ts.len()],
            inv_at: vec![0.0; g.ts.len()],
            ln_atx: vec![0.0; g.txs.len()],
            inv_atx: vec![0.0; g.txs.len()],
        }
    }
}

/// Total log-likelihood and its gradient w.r.t. `(ln r, ln α, ln a, ln b)`.
fn ll_and_grad(p: &BgNbdParams, g: &Grouped, w: &mut Workspace, grad: &mut [f64; 4]) -> f64 {
    let BgNbdParams { r, alpha, a, b } = *p;
    poch_tables(r, &g.xs, &mut w.lr, &mut w.dr);
    poch_tables(b, &g.xs, &mut w.lb, &mut w.db);
    poch_tables(a + b, &g.xs, &mut w.lab, &mut w.dab);
    for (i, &x) in g.xs.iter().enumerate() {
        // Only used for x > 0 (for x = 0, b + x - 1 may be <= 0).
        let bx1 = if x > 0 { b + x as f64 - 1.0 } else { 1.0 };
        w.ln_bx1[i] = bx1.ln();
        w.inv_bx1[i] = 1.0 / bx1;
    }
    for (i, &t) in g.ts.iter().enumerate() {
        w.ln_at[i] = (alpha + t).ln();
        w.inv_at[i] = 1.0 / (alpha + t);
    }
    for (i, &t) in g.txs.iter().enumerate() {
        w.ln_atx[i] = (alpha + t).ln();
        w.inv_atx[i] = 1.0 / (alpha + t);
    }
    let ln_alpha = alpha.ln();
    let w: &Workspace = w;
    // Large populations (a store's daily refit: ~750k groups at a million customers) are
    // summed in two halves on two threads; each half in order, then added in order, so the
    // result is the same on every run. Small ones (CDNOW) stay on one thread.
    let sums = if g.groups.len() >= PARALLEL_GROUPS {
        let (low, high) = g.groups.split_at(g.groups.len() / 2);
        let (low, high) = std::thread::scope(|scope| {
            let high = scope.spawn(|| group_sums(p, high, w));
            (
                group_sums(p, low, w),
                high.join().expect("a likelihood worker panicked"),
            )
        });
        low.plus(&high)
    } else {
        group_sums(p, &g.groups, w)
    };
    let GroupSums {
        mut ll,
        mut d_r,
        mut d_alpha,
        d_a,
        d_b,
    } = sums;
    let n_total = g.n_total;
    ll += n_total * r * ln_alpha;
    d_r += n_total * ln_alpha;
    d_alpha += n_total * r / alpha;
    // Chain rule to log-parameters.
    grad[0] = d_r * r;
    grad[1] = d_alpha * alpha;
    grad[2] = d_a * a;
    grad[3] = d_b * b;
    ll
}

/// Groups from which [`ll_and_grad`] sums on two threads.
const PARALLEL_GROUPS: usize = 100_000;

/// The weighted per-group sums of the log-likelihood and its gradient w.r.t. (r, α, a, b).
#[derive(Debug, Clone, Copy, Default)]
struct GroupSums {
    ll: f64,
    /// ∂ℓ/∂r
    d_r: f64,
    /// ∂ℓ/∂α minus the r/α part
    d_alpha: f64,
    d_a: f64,
    d_b: f64,
}

impl GroupSums {
    fn plus(&self, other: &GroupSums) -> GroupSums {
        GroupSums {
            ll: self.ll + other.ll,
            d_r: self.d_r + other.d_r,
            d_alpha: self.d_alpha + other.d_alpha,
            d_a: self.d_a + other.d_a,
            d_b: self.d_b + other.d_b,
        }
    }
}

/// [`GroupSums`] over `groups`, from the per-evaluation tables in `w`.
fn group_sums(p: &BgNbdParams, groups: &[Group], w: &Workspace) -> GroupSums {
    let BgNbdParams { r, a, .. } = *p;
    let ln_a = a.ln();
    let mut ll = 0.0;
    let mut d_r = 0.0;
    let mut d_alpha = 0.0;
    let mut d_a = 0.0;
    let mut d_b = 0.0;
    for gr in groups {
        let xi = gr.xi as usize;
        let ti = gr.ti as usize;
        let rx = r + gr.x;
        let a3 = -rx * w.ln_at[ti];
        let base = w.lr[xi] + w.lb[xi] - w.lab[xi];
        let (tail, w4, dr_tail, dal_tail) = if gr.x > 0.0 {
            let txi = gr.txi as usize;
            let a4 = ln_a - w.ln_bx1[xi] - rx * w.ln_atx[txi];
            // log-sum-exp with weights w3, w4 of the two terms.
            let (tail, w4) = if a3 >= a4 {
                let e = (a4 - a3).exp();
                (a3 + e.ln_1p(), e / (1.0 + e))
            } else {
                let e = (a3 - a4).exp();
                (a4 + e.ln_1p(), 1.0 / (1.0 + e))
            };
            let w3 = 1.0 - w4;
            (
                tail,
                w4,
                w3 * w.ln_at[ti] + w4 * w.ln_atx[txi],
                rx * (w3 * w.inv_at[ti] + w4 * w.inv_atx[txi]),
            )
        } else {
            (a3, 0.0, w.ln_at[ti], rx * w.inv_at[ti])
        };
        let n = gr.n;
        ll += n * (base + tail);
        d_r += n * (w.dr[xi] - dr_tail);
        d_alpha -= n * dal_tail;
        d_a += n * (-w.dab[xi] + w4 / a);
        d_b += n * (w.db[xi] - w.dab[xi] - w4 * w.inv_bx1[xi]);
    }
    GroupSums {
        ll,
        d_r,
        d_alpha,
        d_a,
        d_b,
    }
}

/// Maximum-likelihood fit with default options. See [`fit_with`].
pub fn fit(customers: &[CustomerSummary]) -> Result<BgNbdFit, FitError> {
    fit_with(customers, &FitOptions::default())
}

/// Maximum-likelihood fit of `(r, α, a, b)` on `(x, t_x, T)` of `customers`
/// (`monetary_value` is ignored).
///
/// Errors: [`FitError::Empty`], [`FitError::NoRepeatBuyers`],
/// [`FitError::NonFiniteInput`], [`FitError::InvalidInput`],
/// [`FitError::DidNotConverge`], [`FitError::Diverged`].
pub fn fit_with(customers: &[CustomerSummary], opts: &FitOptions) -> Result<BgNbdFit, FitError> {
    validate(customers)?;
    let g = group(customers);
    let mut w = Workspace::new(&g);
    let max_t = g.ts.last().copied().unwrap_or(1.0);
    let alpha0 = if max_t > 0.0 { max_t } else { 1.0 };
    let x0 = [0.0, alpha0.ln(), 0.0, 0.0];
    let n_total = g.n_total;
    let objective = |th: &[f64], gout: &mut [f64]| -> f64 {
        if th.iter().any(|v| v.abs() > 30.0) {
            return f64::INFINITY;
        }
        let p = BgNbdParams {
            r: th[0].exp(),
            alpha: th[1].exp(),
            a: th[2].exp(),
            b: th[3].exp(),
        };
        let mut gr = [0.0; 4];
        let ll = ll_and_grad(&p, &g, &mut w, &mut gr);
        for j in 0..4 {
            gout[j] = -gr[j] / n_total;
        }
        -ll / n_total
    };
    let m = minimize_lbfgs(objective, &x0, &opts.lbfgs)?;
    const NAMES: [&str; 4] = ["r", "alpha", "a", "b"];
    for (j, v) in m.x.iter().enumerate() {
        if v.abs() > 29.0 {
            return Err(FitError::Diverged {
                parameter: NAMES[j],
            });
        }
    }
    let params = BgNbdParams {
        r: m.x[0].exp(),
        alpha: m.x[1].exp(),
        a: m.x[2].exp(),
        b: m.x[3].exp(),
    };
    Ok(BgNbdFit {
        params,
        log_likelihood: -m.f * n_total,
        n_customers: customers.len(),
        iterations: m.iterations,
        evaluations: m.evaluations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(x: u32, tx: f64, t: f64) -> CustomerSummary {
        CustomerSummary {
            customer: 0,
            frequency: x,
            recency: tx,
            age: t,
            monetary_value: 0.0,
        }
    }

    /// Parameters near the CDNOW fit, where the likelihood is checked.
    fn probe_params() -> BgNbdParams {
        BgNbdParams {
            r: 0.3,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        }
    }

    #[test]
    fn a_large_population_sums_on_two_threads_to_the_one_thread_result() {
        // Distinct (x, t_x, T) for every customer: more groups than PARALLEL_GROUPS.
        let data: Vec<CustomerSummary> = (0..PARALLEL_GROUPS as u32 + 5_000)
            .map(|i| {
                let t = f64::from(i % 1_000 + 1);
                let x = i / 1_000 % 60;
                let tx = if x == 0 {
                    0.0
                } else {
                    t * f64::from(i % 7 + 1) / 8.0
                };
                cs(x, tx, t)
            })
            .collect();
        let g = group(&data);
        assert!(g.groups.len() >= PARALLEL_GROUPS, "{}", g.groups.len());
        let mut w = Workspace::new(&g);
        let p = probe_params();
        let mut grad = [0.0; 4];
        let ll = ll_and_grad(&p, &g, &mut w, &mut grad);
        let one = group_sums(&p, &g.groups, &w);
        let close = |two: f64, one: f64| (two - one).abs() <= 1e-9 * one.abs().max(1.0);
        let n = g.n_total;
        for (two, one) in [
            (ll, one.ll + n * p.r * p.alpha.ln()),
            (grad[2], one.d_a * p.a),
            (grad[3], one.d_b * p.b),
        ] {
            assert!(close(two, one), "{two} vs {one}");
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data: Vec<CustomerSummary> = vec![
            cs(0, 0.0, 30.0),
            cs(0, 0.0, 30.0),
            cs(1, 3.0, 20.0),
            cs(5, 15.0, 38.0),
            cs(2, 10.0, 10.0),
            cs(150, 30.0, 31.0),
        ];
        let g = group(&data);
        let mut w = Workspace::new(&g);
        let p = probe_params();
        let mut gr = [0.0; 4];
        let ll = ll_and_grad(&p, &g, &mut w, &mut gr);
        assert!((ll - p.log_likelihood(&data)).abs() < 1e-9 * ll.abs());
        let th = [p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()];
        for j in 0..4 {
            let h = 1e-6;
            let mut tp = th;
            tp[j] += h;
            let mut tm = th;
            tm[j] -= h;
            let mk = |t: [f64; 4]| BgNbdParams {
                r: t[0].exp(),
                alpha: t[1].exp(),
                a: t[2].exp(),
                b: t[3].exp(),
            };
            let num = (mk(tp).log_likelihood(&data) - mk(tm).log_likelihood(&data)) / (2.0 * h);
            assert!(
                (num - gr[j]).abs() < 1e-6 * (1.0 + num.abs()),
                "j={j} {num} {}",
                gr[j]
            );
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(fit(&[]), Err(FitError::Empty));
        assert_eq!(fit(&[cs(0, 0.0, 3.0)]), Err(FitError::NoRepeatBuyers));
        assert_eq!(
            fit(&[cs(1, f64::NAN, 3.0)]),
            Err(FitError::NonFiniteInput { index: 0 })
        );
        assert!(matches!(
            fit(&[cs(1, 4.0, 3.0)]),
            Err(FitError::InvalidInput { .. })
        ));
    }
}
