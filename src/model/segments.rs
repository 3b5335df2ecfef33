//! RFM segments from quintile breakpoints computed at the daily recalculation.
//!
//! Scores are 1–5 per dimension. The breakpoints are the 20th, 40th, 60th and 80th
//! percentiles of the store's customers (with orders): a customer scores 1 plus the number of
//! breakpoints they beat — strictly more orders or money than the breakpoint, strictly fewer
//! days since the last order. Ties therefore share a score (60% of customers with one order
//! all score F = 1), and a customer evaluated between recalculations is scored against the
//! same breakpoints as everyone else that day. The segment comes from the R × FM grid in
//! [`super::clv::rfm`] (FM = ⌈(F + M) / 2⌉).

use serde::{Deserialize, Serialize};

use super::clv::rfm::{fm_score, segment, Segment};

/// The quintile breakpoints of each dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmBreaks {
    /// Days since the last order (fewer is better).
    pub recency_days: [f64; 4],
    /// Orders (more is better).
    pub frequency: [f64; 4],
    /// Net spend (more is better).
    pub monetary: [f64; 4],
}

/// One customer's scores and segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfm {
    /// Recency score, 1–5 (higher: ordered more recently); with `f` and `m`, shown by `explain`.
    pub r: u8,
    /// Frequency score, 1–5 (higher: more counted orders).
    pub f: u8,
    /// Monetary score, 1–5 (higher: more lifetime net spend).
    pub m: u8,
    /// The R × FM grid's segment; its name is what Klaviyo profiles carry as `rfm_segment`.
    pub segment: Segment,
}

impl RfmBreaks {
    /// Breakpoints over the population; `None` without customers.
    pub fn from_population(
        mut recency_days: Vec<f64>,
        mut frequency: Vec<f64>,
        mut monetary: Vec<f64>,
    ) -> Option<RfmBreaks> {
        Some(RfmBreaks {
            recency_days: quintiles(&mut recency_days)?,
            frequency: quintiles(&mut frequency)?,
            monetary: quintiles(&mut monetary)?,
        })
    }

    pub fn score(&self, recency_days: f64, frequency: f64, monetary: f64) -> Rfm {
        let r = 1 + self
            .recency_days
            .iter()
            .filter(|b| recency_days < **b)
            .count() as u8;
        let f = 1 + self.frequency.iter().filter(|b| frequency > **b).count() as u8;
        let m = 1 + self.monetary.iter().filter(|b| monetary > **b).count() as u8;
        Rfm {
            r,
            f,
            m,
            segment: segment(r, fm_score(f, m)),
        }
    }
}

/// The 20/40/60/80th percentiles (nearest rank) of `values`.
fn quintiles(values: &mut [f64]) -> Option<[f64; 4]> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let at = |q: usize| {
        values[((values.len() * q).div_ceil(5))
            .saturating_sub(1)
            .min(values.len() - 1)]
    };
    Some([at(1), at(2), at(3), at(4)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_the_quintiles_and_ties_share_a_score() {
        // 10 customers: recency 10..100 days, frequency mostly 1, monetary 10..100.
        let recency: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        let frequency = vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 5.0, 8.0];
        let monetary: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        let breaks = RfmBreaks::from_population(recency, frequency, monetary).unwrap();
        assert_eq!(breaks.recency_days, [20.0, 40.0, 60.0, 80.0]);
        assert_eq!(breaks.frequency, [1.0, 1.0, 1.0, 3.0]);

        let best = breaks.score(5.0, 8.0, 100.0);
        assert_eq!((best.r, best.f, best.m), (5, 5, 5));
        assert_eq!(best.segment, Segment::Champions);
        let one_timer = breaks.score(100.0, 1.0, 10.0);
        assert_eq!((one_timer.r, one_timer.f, one_timer.m), (1, 1, 1));
        assert_eq!(one_timer.segment, Segment::Hibernating);
        assert_eq!(breaks.score(15.0, 1.0, 15.0).segment, Segment::NewCustomers);
        assert_eq!(
            breaks.score(100.0, 8.0, 100.0).segment,
            Segment::CantLoseThem
        );
    }

    #[test]
    fn no_customers_no_breaks() {
        assert_eq!(RfmBreaks::from_population(vec![], vec![], vec![]), None);
    }
}
