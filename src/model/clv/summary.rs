//! Per-customer RFM/T summaries ("sufficient statistics") from a raw
//! transaction log, as used by the BG/NBD and Gamma-Gamma models.
//!
//! Why: both models never look at individual orders, only at
//! `(x, t_x, T)` (Fader, Hardie & Lee 2005, §2 and §3; notation from that paper)
//! and the mean repeat spend `z̄` (Fader & Hardie 2013, "The Gamma-Gamma Model
//! of Monetary Value", §1). The definitions follow the CDNOW summary that
//! Hardie distributes and lifetimes 0.11.3's `summary_data_from_transaction_data`:
//!
//! 1. Transactions after the calibration end day are dropped (the end day itself
//!    is included).
//! 2. Transactions of a customer on the same day are merged into one purchase
//!    whose amount is the sum of the amounts.
//! 3. `x` (frequency) = number of distinct purchase days − 1 (repeat purchases).
//! 4. `t_x` (recency) = last purchase day − first purchase day (0 when `x = 0`).
//! 5. `T` (age) = calibration end day − first purchase day.
//! 6. `z̄` (monetary_value) = mean of the merged amounts of the *repeat* purchase
//!    days (first purchase day excluded); 0 when `x = 0`.
//!
//! Time is converted to the chosen [`TimeUnit`] (`Weeks` = days / 7) and, only
//! if [`SummaryOptions::time_decimals`] is set, rounded half away from zero to
//! that many decimals. CDNOW's published summary uses weeks rounded to 2
//! decimals (`Some(2)`) and `z̄` rounded to cents (`monetary_decimals: Some(2)`);
//! real stores should keep both `None` (unrounded days are exact).
//!
//! Decimal rounding adds `1e-7` (in units of the last kept decimal) before
//! rounding half away from zero, so that binary representation error in amounts
//! like `22.345` (stored as 22.34499…) does not flip a half-cent the wrong way.
//!
//! Output is sorted by customer key; customers with no transaction on or before
//! the calibration end do not appear.

/// One raw transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transaction {
    /// Customer key.
    pub customer: u64,
    /// Day number (e.g. days since 1970-01-01; any consistent day count works).
    pub day: i64,
    /// Transaction amount (currency units).
    pub amount: f64,
}

/// Unit of `t_x` and `T` in the summary (and therefore of the fitted `alpha`
/// and of the `t` argument of all predictions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// 1 unit = 1 day.
    Days,
    /// 1 unit = 7 days.
    Weeks,
}

impl TimeUnit {
    /// Days per unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    /// Periods per month as lifetimes 0.11.3 `_customer_lifetime_value` uses
    /// them (`freq='D'` → 30, `freq='W'` → 4.345).
    pub fn lifetimes_periods_per_month(self) -> f64 {
        match self {
            TimeUnit::Days => 30.0,
            TimeUnit::Weeks => 4.345,
        }
    }
}

/// How to build summaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryOptions {
    /// Last day of the calibration period (inclusive).
    pub calibration_end_day: i64,
    /// Unit of `t_x` and `T`.
    pub unit: TimeUnit,
    /// Round `t_x` and `T` to this many decimals (`None` = exact).
    pub time_decimals: Option<u32>,
    /// Round `monetary_value` to this many decimals (`None` = exact).
    pub monetary_decimals: Option<u32>,
}

impl SummaryOptions {
    /// Exact (unrounded) summaries in the given unit.
    pub fn exact(calibration_end_day: i64, unit: TimeUnit) -> Self {
        SummaryOptions {
            calibration_end_day,
            unit,
            time_decimals: None,
            monetary_decimals: None,
        }
    }

    /// The CDNOW convention: weeks rounded to 2 decimals, `z̄` rounded to cents.
    pub fn cdnow(calibration_end_day: i64) -> Self {
        SummaryOptions {
            calibration_end_day,
            unit: TimeUnit::Weeks,
            time_decimals: Some(2),
            monetary_decimals: Some(2),
        }
    }
}

/// Sufficient statistics of one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerSummary {
    /// Customer key.
    pub customer: u64,
    /// `x`: number of repeat purchase days.
    pub frequency: u32,
    /// `t_x`: time from first to last purchase.
    pub recency: f64,
    /// `T`: time from first purchase to calibration end.
    pub age: f64,
    /// `z̄`: mean merged amount of the repeat purchase days; 0 when `x = 0`.
    pub monetary_value: f64,
}

/// Round half away from zero to `decimals`, tolerant to binary representation
/// error (see module docs).
pub fn round_decimals(v: f64, decimals: u32) -> f64 {
    let scale = 10f64.powi(decimals as i32);
    let s = v * scale;
    (s + s.signum() * 1e-7).round() / scale
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil` algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Build per-customer summaries. See the module docs for the definitions.
/// Runs in `O(n log n)` (one sort of the calibration transactions).
pub fn summarize(transactions: &[Transaction], opts: &SummaryOptions) -> Vec<CustomerSummary> {
    let mut tx: Vec<(u64, i64, f64)> = transactions
        .iter()
        .filter(|t| t.day <= opts.calibration_end_day)
        .map(|t| (t.customer, t.day, t.amount))
        .collect();
    tx.sort_unstable_by_key(|t| (t.0, t.1));

    let unit = opts.unit.days();
    let time = |days: i64| -> f64 {
        let v = days as f64 / unit;
        match opts.time_decimals {
            Some(d) => round_decimals(v, d),
            None => v,
        }
    };

    let mut out = Vec::new();
    let mut i = 0;
    while i < tx.len() {
        let cust = tx[i].0;
        let first_day = tx[i].1;
        let mut last_day = first_day;
        let mut repeat_days: u32 = 0;
        let mut repeat_sum = 0.0;
        // Skip the first day's transactions (the first purchase).
        while i < tx.len() && tx[i].0 == cust && tx[i].1 == first_day {
            i += 1;
        }
        while i < tx.len() && tx[i].0 == cust {
            let day = tx[i].1;
            let mut day_sum = 0.0;
            while i < tx.len() && tx[i].0 == cust && tx[i].1 == day {
                day_sum += tx[i].2;
                i += 1;
            }
            repeat_days += 1;
            repeat_sum += day_sum;
            last_day = day;
        }
        let monetary = if repeat_days == 0 {
            0.0
        } else {
            let m = repeat_sum / repeat_days as f64;
            match opts.monetary_decimals {
                Some(d) => round_decimals(m, d),
                None => m,
            }
        };
        out.push(CustomerSummary {
            customer: cust,
            frequency: repeat_days,
            recency: time(last_day - first_day),
            age: time(opts.calibration_end_day - first_day),
            monetary_value: monetary,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(1997, 9, 30) - days_from_civil(1997, 1, 1),
            272
        );
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
    }

    #[test]
    fn merge_same_day_and_cutoff() {
        let t = |c, d, a| Transaction {
            customer: c,
            day: d,
            amount: a,
        };
        let txs = [
            t(7, 10, 5.0),
            t(7, 10, 1.0), // same day as first purchase: merged, not a repeat
            t(7, 17, 2.0),
            t(7, 17, 4.0), // merged repeat day: 6.0
            t(7, 24, 10.0),
            t(7, 100, 99.0), // after calibration end
            t(3, 50, 1.0),
            t(9, 200, 1.0), // only after calibration end: absent
        ];
        let s = summarize(&txs, &SummaryOptions::exact(52, TimeUnit::Weeks));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].customer, 3);
        assert_eq!(
            (s[0].frequency, s[0].recency, s[0].monetary_value),
            (0, 0.0, 0.0)
        );
        assert_eq!(s[0].age, 2.0 / 7.0);
        assert_eq!(s[1].frequency, 2);
        assert_eq!(s[1].recency, 2.0);
        assert_eq!(s[1].age, 6.0);
        assert_eq!(s[1].monetary_value, 8.0);
    }

    #[test]
    fn rounding() {
        assert_eq!(round_decimals(22.345, 2), 22.35);
        assert_eq!(round_decimals(38.857142857, 2), 38.86);
        assert_eq!(round_decimals(-1.005, 2), -1.01);
    }
}
