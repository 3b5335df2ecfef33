//! The report as text, for the terminal.

use std::fmt;

use super::{level_name, shown, Report, DEFINITIONS, MOVEMENT};

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let today = self.now.with_timezone(&self.timezone).date_naive();
        writeln!(
            f,
            "tiersync report, {today} (shop time zone {}): {} customers evaluated",
            self.timezone,
            self.customers()
        )?;
        if self.unevaluated > 0 {
            writeln!(
                f,
                "  ({} more customers have orders but were not evaluated yet: counted in revenue only)",
                self.unevaluated
            )?;
        }
        writeln!(f, "\nTier distribution, repeat purchases and CLV")?;
        writeln!(
            f,
            "  {:<14} {:>9} {:>8} {:>7} {:>7} {:>12} {:>16}",
            "level", "customers", "active", "grace", "lapsed", "repeat rate", "avg blended CLV"
        )?;
        for row in &self.levels {
            writeln!(
                f,
                "  {:<14} {:>9} {:>8} {:>7} {:>7} {:>12} {:>16}",
                level_name(row),
                row.customers(),
                row.active,
                row.grace,
                row.lapsed,
                shown(row.repeat_rate()),
                row.average_clv()
                    .map_or_else(|| "n/a".to_string(), |c| c.to_string())
            )?;
        }
        let r = &self.revenue;
        writeln!(
            f,
            "\nVIP share of revenue, last 365 days: {} ({} of {} net spend since {})",
            shown(r.percent()),
            r.vip,
            r.all,
            r.since.with_timezone(&self.timezone).date_naive()
        )?;
        writeln!(
            f,
            "Lapse rate: {} ({} lapsed of {} customers holding a level)",
            shown(self.lapse_rate()),
            self.lapsed(),
            self.holding_a_level()
        )?;
        match &self.loyalty {
            Some(l) => writeln!(
                f,
                "Loyalty-app disagreements: {} of {} members",
                l.count, l.members
            )?,
            None => writeln!(f, "Loyalty-app disagreements: no loyalty app configured")?,
        }
        writeln!(f, "\nTier movement per month (shop time zone)")?;
        write!(f, "  {:<8}", "month")?;
        for name in MOVEMENT {
            write!(f, " {name:>13}")?;
        }
        writeln!(f)?;
        for month in &self.months {
            write!(f, "  {:<8}", month.month.format("%Y-%m"))?;
            for count in month.counts() {
                write!(f, " {count:>13}")?;
            }
            writeln!(f)?;
        }
        writeln!(f, "\nDefinitions")?;
        for (term, meaning) in DEFINITIONS {
            writeln!(f, "  {term}: {meaning}.")?;
        }
        Ok(())
    }
}
